"""Reference statistics of real data, computed once per (dataset, resolution, channels, image
limit, preprocessing, Inception weights) and cached as ``.npz`` in ``<cache_dir>/fid/``.

Real images are the uint8 tensors of :func:`fwp.gan.data.load_images` at the training resolution,
i.e. the training data exactly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from fwp.gan.data.cache import dataset_identity, default_cache_dir, load_images
from fwp.gan.naming import digest, slug

from .inception import InceptionFeatures
from .stats import STATS_VERSION, FeatureStats, feature_stats, load_stats, save_stats
from .weights import find_inception_weights

__all__ = ["reference_stats", "reference_stats_path"]

_PREPROCESSING = "u8/255|pytorch-fid bilinear 299 align_corners=False|2x-1|fp32"


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
