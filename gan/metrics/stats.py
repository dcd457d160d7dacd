"""Summaries of image sets in Inception feature space, the FID/KID between two of them, and their
``.npz`` files.

A statistics file is data, never code: it holds plain numeric and string arrays, is read with
``numpy.load(allow_pickle=False)``, and one holding a pickled object is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from fwp.gan.files import atomic_write
from fwp.gan.progress import progress_iter

from .distances import PRECISION_RECALL_K, frechet_distance, kid, precision_recall
from .diversity import NearDuplicates

if TYPE_CHECKING:
    from .inception import InceptionFeatures

__all__ = [
    "KID_FEATURES",
    "STATS_VERSION",
    "FeatureStats",
    "MetricResult",
    "compare_stats",
    "feature_stats",
    "load_stats",
    "save_stats",
]

#: Version of the stats file format and of the feature pipeline (part of the cache key).
STATS_VERSION = 1
#: How many feature rows a :class:`FeatureStats` keeps for KID by default.
KID_FEATURES = 10_000

_STATS_FIELDS = ("version", "mean", "cov", "features", "num_images", "weights_origin")


@dataclass
class FeatureStats:
    """Summary of one image set's Inception features.

    Attributes:
        mean: float64 ``(2048,)``.
        cov: float64 ``(2048, 2048)``, unbiased (divides by ``N - 1``) as in pytorch-fid.
        features: float32 ``(M, 2048)``, ``M = min(N, kid_features)`` rows kept for KID (a random
            subset when ``N`` is larger).
        num_images: ``N``, the number of images the mean and covariance come from.
        weights_origin: which Inception weights produced the features.
    """

    mean: np.ndarray
    cov: np.ndarray
    features: np.ndarray
    num_images: int
    weights_origin: str

    @classmethod
    def from_features(
        cls,
        features: Tensor | np.ndarray,
        weights_origin: str,
        kid_features: int = KID_FEATURES,
        seed: int = 0,
    ) -> FeatureStats:
        """Statistics of a feature matrix ``(N, D)``, ``N >= 2``."""
        feats = np.asarray(
            features.detach().cpu().numpy() if isinstance(features, Tensor) else features
        )
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"need features (N >= 2, D), got shape {feats.shape}")
        f64 = feats.astype(np.float64)
        keep = _subset_rows(feats.shape[0], kid_features, seed)
        return cls(
            mean=f64.mean(axis=0),
            cov=np.cov(f64, rowvar=False),
            features=np.ascontiguousarray(feats[keep], dtype=np.float32),
            num_images=int(feats.shape[0]),
            weights_origin=weights_origin,
        )


def _subset_rows(n: int, keep: int, seed: int) -> np.ndarray:
    if keep >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=keep, replace=False))


def _batches(
    images: Tensor | Iterable[Tensor], batch_size: int
) -> tuple[Iterator[Tensor], int | None]:
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
        chunks = images.split(batch_size)
        return iter(chunks), len(chunks)

    def split_each() -> Iterator[Tensor]:
        for batch in images:
            yield from batch.split(batch_size)

    total = None
    with contextlib.suppress(TypeError):
        total = len(images)  # type: ignore[arg-type]
    return split_each(), total


def feature_stats(
    images: Tensor | Iterable[Tensor],
    model: InceptionFeatures,
    batch_size: int = 100,
    progress: bool = True,
    *,
    kid_features: int = KID_FEATURES,
    seed: int = 0,
) -> FeatureStats:
    """Inception statistics of an image set.

    Args:
        images: uint8 ``(N, C, H, W)`` (or float in ``[-1, 1]``), or an iterable of such batches.
        model: the feature extractor.
        batch_size: images per forward pass.
        progress: show a progress bar on stderr.
        kid_features: at most this many feature rows are kept for KID (random, from ``seed``).

    Returns:
        :class:`FeatureStats` over all ``N >= 2`` images.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches, total = _batches(images, batch_size)
    parts = [
        model(batch).cpu()
        for batch in progress_iter(batches, total, "Inception features", progress)
    ]
    if not parts:
        raise ValueError("no images given")
    return FeatureStats.from_features(torch.cat(parts), model.weights_origin, kid_features, seed)


@dataclass
class MetricResult:
    """FID and KID of a generated set against a real set, with what they were computed from,
    the near-duplicate pairs among the first generated images (:mod:`.diversity`), and the
    improved precision and recall of the kept feature rows."""

    fid: float
    kid: float
    kid_std: float
    num_real: int
    num_fake: int
    weights_origin: str
    near_duplicates: NearDuplicates | None = None
    #: improved precision and recall (:func:`~.distances.precision_recall`), k = 3
    precision: float | None = None
    recall: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` (JSON/CSV friendly)."""
        return asdict(self)


def compare_stats(
    real: FeatureStats,
    fake: FeatureStats,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = "cpu",
    fid_method: str = "sqrtm",
    with_precision_recall: bool = True,
) -> MetricResult:
    """FID, KID, precision and recall between two :class:`FeatureStats` made with the same
    Inception weights.

    ``num_subsets``, ``subset_size``, ``seed``, ``device`` go to :func:`kid`; ``fid_method`` to
    :func:`frechet_distance`. Precision and recall use the kept feature rows (all of them up to
    :data:`KID_FEATURES` images); they are None when a side keeps 3 rows or fewer, or without
    ``with_precision_recall`` (their nearest-neighbour passes are skipped).
    """
    if real.weights_origin != fake.weights_origin:
        raise ValueError(
            "statistics come from different Inception weights: "
            f"{real.weights_origin!r} vs {fake.weights_origin!r}; recompute one of them"
        )
    fid = frechet_distance(real.mean, real.cov, fake.mean, fake.cov, method=fid_method)
    kid_mean, kid_std = kid(
        real.features, fake.features, num_subsets, subset_size, seed, device=device
    )
    precision = recall = None
    if with_precision_recall and min(len(real.features), len(fake.features)) > PRECISION_RECALL_K:
        precision, recall = precision_recall(real.features, fake.features, device=device)
    return MetricResult(
        fid=fid,
        kid=kid_mean,
        kid_std=kid_std,
        num_real=real.num_images,
        num_fake=fake.num_images,
        weights_origin=real.weights_origin,
        precision=precision,
        recall=recall,
    )


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def save_stats(stats: FeatureStats, path: str | Path) -> None:
    """Write ``stats`` to an ``.npz`` file of plain arrays (atomically)."""
    arrays = {
        "version": np.int64(STATS_VERSION),
        "mean": np.asarray(stats.mean, dtype=np.float64),
        "cov": np.asarray(stats.cov, dtype=np.float64),
        "features": np.asarray(stats.features, dtype=np.float32),
        "num_images": np.int64(stats.num_images),
        "weights_origin": np.str_(stats.weights_origin),
    }
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def _read_field(data: Any, name: str, path: Path) -> np.ndarray:
    try:
        return data[name]
    except ValueError as err:  # an object array: numpy refuses to unpickle it
        raise ValueError(
            f"{path}: field {name!r} holds a pickled Python object, which fwp never loads "
            "(statistics files hold plain arrays only); delete the file and compute it again"
        ) from err


def load_stats(path: str | Path) -> FeatureStats:
    """Read a file written by :func:`save_stats`, with ``numpy.load(allow_pickle=False)``.

    Raises:
        ValueError: not an fwp statistics file, another format version, arrays of the wrong
            shapes, or pickled Python objects (refused, never unpickled).
        OSError: the file cannot be read.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as err:  # numpy falls back to unpickling non-array files: refused
        raise ValueError(f"{path} is not an .npz statistics file ({err})") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is a single .npy array, not an .npz statistics file")
    with data:
        missing = [name for name in _STATS_FIELDS if name not in data.files]
        if missing:
            raise ValueError(f"{path} is not an fwp statistics file: it lacks {missing}")
        fields = {name: _read_field(data, name, path) for name in _STATS_FIELDS}
    version = int(fields["version"])
    if version != STATS_VERSION:
        raise ValueError(f"{path}: stats format v{version}, expected v{STATS_VERSION}")
    mean, cov, features = fields["mean"], fields["cov"], fields["features"]
    dim = mean.shape[0] if mean.ndim == 1 else -1
    if cov.shape != (dim, dim) or features.ndim != 2 or features.shape[1] != dim:
        raise ValueError(
            f"{path}: arrays of shapes mean {mean.shape}, cov {cov.shape}, features "
            f"{features.shape}; expected (D,), (D, D), (M, D)"
        )
    return FeatureStats(
        mean=mean,
        cov=cov,
        features=features,
        num_images=int(fields["num_images"]),
        weights_origin=str(fields["weights_origin"]),
    )
