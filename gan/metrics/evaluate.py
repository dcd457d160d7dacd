"""FID/KID of generators: of any object that samples images (:func:`evaluate_generator`), of a
training run's generator against its own training data (:class:`RunEvaluator`, used by the
trainer), of a finished run (:func:`evaluate_run`, what ``fwp fid RUN_DIR`` prints), and of one
image set against another (:func:`compare_image_sets`, ``fwp fid --real --fake``).

Generated images are quantised to uint8 (as if saved to PNG), so that they enter the Inception
network exactly as the real uint8 images do. Each result also counts the near-duplicate pairs
among the first :data:`DIVERSITY_SAMPLES` generated images (:func:`.diversity.near_duplicates`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

from fwp.gan.data.cache import load_images
from fwp.gan.data.errors import DataError
from fwp.gan.data.images import to_uint8
from fwp.gan.rundir import resolve_checkpoint

from .diversity import NEAR_DUPLICATE_RMS, near_duplicates
from .inception import InceptionFeatures
from .reference import reference_stats
from .stats import FeatureStats, MetricResult, compare_stats, feature_stats

if TYPE_CHECKING:
    from fwp.gan.config import TrainConfig

__all__ = [
    "DIVERSITY_SAMPLES",
    "RunEvaluator",
    "SupportsSample",
    "compare_image_sets",
    "evaluate_generator",
    "evaluate_run",
]


#: how many of the first generated images are compared pairwise for near-duplicates (a sample
#: grid's worth: 64 images, 2,016 pairs)
DIVERSITY_SAMPLES = 64


def _with_near_duplicates(result: MetricResult, fake: Tensor, threshold: float) -> MetricResult:
    """``result`` with the near-duplicate pairs among the first :data:`DIVERSITY_SAMPLES` of
    ``fake`` (uint8 ``(N, C, H, W)``)."""
    return dataclasses.replace(
        result, near_duplicates=near_duplicates(fake[:DIVERSITY_SAMPLES], threshold)
    )


class SupportsSample(Protocol):
    """Anything that generates images: ``sample(num, batch_size, seed)`` -> float ``(N, C, H, W)``
    in ``[-1, 1]``."""

    def sample(self, num: int, batch_size: int, seed: int) -> Tensor: ...


def evaluate_generator(
    generator: SupportsSample,
    reference: FeatureStats,
    model: InceptionFeatures,
    num: int = 10_000,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    *,
    fid_method: str = "sqrtm",
    near_duplicate_rms: float = NEAR_DUPLICATE_RMS,
    with_precision_recall: bool = True,
) -> MetricResult:
    """FID/KID of ``num`` generated images against ``reference`` statistics, and the
    near-duplicate pairs among the first :data:`DIVERSITY_SAMPLES` of them.

    Args:
        generator: anything with ``sample(num, batch_size, seed)`` -> float ``(num, C, H, W)`` in
            ``[-1, 1]`` (e.g. a :class:`fwp.painters.Generator`); ``C`` is 1 or 3.
        reference: statistics of the real images (e.g. :func:`reference_stats`).
        model: the feature extractor the reference was computed with.
        num: how many images to generate (at least 2).
        seed: the latents' seed, also the KID subsets' seed.
        near_duplicate_rms: the RMS pixel difference ([0, 1] scale) below which two generated
            images count as near-duplicates.
        with_precision_recall: also compute precision and recall (see :func:`compare_stats`).

    Generated images are quantised to uint8 (:func:`fwp.gan.data.to_uint8`, as if saved to PNG)
    so that they enter the Inception network exactly as the real uint8 images do.
    """
    with torch.no_grad():
        fake = to_uint8(generator.sample(num, batch_size, seed)).cpu()
    stats = feature_stats(fake, model, batch_size, progress)
    result = compare_stats(
        reference,
        stats,
        seed=seed,
        device=model.device,
        fid_method=fid_method,
        with_precision_recall=with_precision_recall,
    )
    return _with_near_duplicates(result, fake, near_duplicate_rms)


class RunEvaluator:
    """FID/KID of a run's generator against the statistics of the run's own training data (the
    same source, resolution, channels and image limit), computed once and cached on disk.

    Args:
        config: the run's configuration (its data section names the training data).
        model: the feature extractor; built on first use from ``inception_weights`` if None.
        device: where a model built here runs.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: InceptionFeatures | None = None,
        *,
        device: str | torch.device | None = None,
        inception_weights: str | Path | None = None,
        batch_size: int = 100,
        progress: bool = False,
    ) -> None:
        self.config = config
        self.model = model or InceptionFeatures(inception_weights, device=device)
        self.batch_size = batch_size
        self.progress = progress
        self._reference: FeatureStats | None = None

    @property
    def reference(self) -> FeatureStats:
        """The training data's statistics (computed, or read from the cache, on first use)."""
        if self._reference is None:
            data = self.config.data
            self._reference = reference_stats(
                data.source,
                (data.size[0], data.size[1]),
                data.channels,
                self.model,
                limit=data.limit or None,  # the training set exactly, if it was limited
                batch_size=self.batch_size,
                progress=self.progress,
            )
        return self._reference

    def evaluate(
        self,
        generator: SupportsSample,
        num: int,
        seed: int,
        fid_method: str = "eigh",
        near_duplicate_rms: float = NEAR_DUPLICATE_RMS,
        with_precision_recall: bool = True,
    ) -> MetricResult:
        """FID/KID of ``num`` samples of ``generator`` (latents drawn from ``seed``), their
        near-duplicates and precision/recall (see :func:`evaluate_generator`)."""
        return evaluate_generator(
            generator,
            self.reference,
            self.model,
            num,
            self.batch_size,
            seed,
            self.progress,
            fid_method=fid_method,
            near_duplicate_rms=near_duplicate_rms,
            with_precision_recall=with_precision_recall,
        )


def evaluate_run(
    run_dir_or_checkpoint: str | Path,
    num: int = 10_000,
    *,
    raw: bool = False,
    best: bool = False,
    seed: int = 0,
    model: InceptionFeatures | None = None,
    device: str | torch.device | None = None,
    inception_weights: str | Path | None = None,
    batch_size: int = 100,
    progress: bool = True,
    fid_method: str = "sqrtm",
    near_duplicate_rms: float = NEAR_DUPLICATE_RMS,
) -> MetricResult:
    """FID/KID of a trained run's generator (EMA weights unless ``raw``; the best checkpoint
    with ``best``) against its training data: what ``fwp fid RUN_DIR`` prints.

    ``model`` (else one built from ``inception_weights`` on ``device``) extracts the features; it
    is built only once the run's checkpoint is found.

    Raises:
        FileNotFoundError: ``run_dir_or_checkpoint`` is not a run directory (or the run has no
            checkpoint yet); the message (:class:`fwp.gan.rundir.RunDir`'s) names the folder.
    """
    from fwp.gan.checkpoint import load_generator

    # Found first, so that a folder that is not a run fails before any network is built.
    checkpoint = resolve_checkpoint(run_dir_or_checkpoint, best=best)
    model = model or InceptionFeatures(inception_weights, device=device)
    generator, config = load_generator(checkpoint, ema=not raw, device=model.device)
    evaluator = RunEvaluator(config, model, batch_size=batch_size, progress=progress)
    return evaluator.evaluate(
        generator, num, seed, fid_method=fid_method, near_duplicate_rms=near_duplicate_rms
    )


def compare_image_sets(
    real: str | Path,
    fake: str | Path,
    size: tuple[int, int] = (64, 64),
    channels: int = 3,
    *,
    limit: int | None = None,
    model: InceptionFeatures | None = None,
    device: str | torch.device | None = None,
    inception_weights: str | Path | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
    fid_method: str = "sqrtm",
    near_duplicate_rms: float = NEAR_DUPLICATE_RMS,
) -> MetricResult:
    """FID/KID of the images of ``fake`` against those of ``real`` (what ``fwp fid --real
    --fake`` prints), both prepared by :func:`fwp.gan.data.load_images` at ``size`` = (H, W)
    with ``channels``.

    Args:
        real: a built-in dataset or a folder; its statistics are cached
            (:func:`reference_stats`), over its first ``limit`` images if given.
        fake: a built-in dataset or a folder of at least 2 images.
        model: the feature extractor, else one built from ``inception_weights`` on ``device``.

    Raises:
        DataError: either set cannot be loaded, or ``fake`` has fewer than 2 images.
    """
    model = model or InceptionFeatures(inception_weights, device=device)
    reference = reference_stats(
        str(real), size, channels, model, limit=limit, batch_size=batch_size, progress=progress
    )
    fake_images = load_images(fake, size, channels, progress=progress)
    if fake_images.shape[0] < 2:
        raise DataError(f"{fake}: need at least 2 generated images, found {fake_images.shape[0]}")
    generated = feature_stats(fake_images, model, batch_size, progress)
    result = compare_stats(
        reference, generated, seed=seed, device=model.device, fid_method=fid_method
    )
    return _with_near_duplicates(result, fake_images, near_duplicate_rms)
