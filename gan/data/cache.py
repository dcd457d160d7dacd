"""Preprocessed data, computed once: :func:`load_images` resolves a source, and either reads its
uint8 tensor from ``<cache_dir>/datasets`` or builds it and writes it there (atomically).

The cache key is :func:`dataset_identity`: it changes whenever the source files, the size, the
channels, the limit or the preprocessing (:data:`PREPROCESS_VERSION`) change. A cache file is data,
never code: it is read with ``torch.load(weights_only=True)``, and a file that is unreadable, holds
anything but plain tensors (a pickled object is refused) or belongs to another key is ignored with
a warning and rebuilt.
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from einops import repeat

from fwp.gan.files import atomic_save
from fwp.gan.naming import digest, slug
from fwp.gan.progress import report

from .errors import DataError
from .folders import Source
from .sources import resolve_source

__all__ = [
    "PREPROCESS_VERSION",
    "cache_file",
    "dataset_identity",
    "default_cache_dir",
    "load_images",
]

#: Bump whenever the preprocessing changes what the pixels are: old caches are then ignored.
PREPROCESS_VERSION = 1


def default_cache_dir() -> Path:
    """``$FWP_CACHE`` if set, else ``~/.cache/fwp``."""
    env = os.environ.get("FWP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fwp"


def _check_arguments(
    size: Sequence[int], channels: int, limit: int | None
) -> tuple[tuple[int, int], int, int | None]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"size must be a pair (height, width) of ints, got {size!r}") from None
    if h < 1 or w < 1:
        raise DataError(f"size must be positive, got {size!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be None or a positive int, got {limit!r}")
    return (h, w), channels, limit


def _identity(src: Source, size: tuple[int, int], channels: int, limit: int | None) -> str:
    h, w = size
    return f"fwp-data/v{PREPROCESS_VERSION}|{src.identity}|{h}x{w}|c{channels}|limit={limit}"


def dataset_identity(
    source: str | os.PathLike[str],
    size: Sequence[int],
    channels: int = 3,
    limit: int | None = None,
) -> str:
    """A stable string naming the preprocessed data exactly (used as a cache key).

    It contains the source's identity (for a folder: its absolute path and a fingerprint of the
    file names, sizes and mtimes; for a built-in: the providing package's version), the size
    ``(H, W)``, the channels, the limit and :data:`PREPROCESS_VERSION`. Raises :class:`DataError`
    for sources that cannot be loaded, before anything is decoded.
    """
    hw, channels, limit = _check_arguments(size, channels, limit)
    return _identity(resolve_source(source), hw, channels, limit)


def cache_file(cache_dir: Path, name: str, identity: str) -> Path:
    """Where the preprocessed data of ``identity`` (labelled ``name``) is cached."""
    return cache_dir / "datasets" / f"{slug(name)}-{digest(identity)}.pt"


def _read_cache(path: Path, identity: str) -> torch.Tensor | None:
    """The cached uint8 ``(N, C, H, W)``, or ``None`` (with a warning if a file was there but is
    unusable: it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        # weights_only: tensors and plain containers only; a pickled object raises here.
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or not isinstance(blob.get("images"), torch.Tensor):
            raise ValueError("not an fwp data cache (no images tensor)")
        images = blob["images"]
        if blob.get("identity") != identity or images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("cache content does not match its key")
        if blob.get("gray_as_rgb", False):  # stored once, replicated to 3 channels on load
            images = repeat(images, "n 1 h w -> n c h w", c=3).contiguous()
        return images
    except pickle.UnpicklingError:  # torch's own message would suggest weights_only=False
        why = "not a file of plain tensors: fwp reads caches as data and never unpickles objects"
    except Exception as err:
        why = f"{type(err).__name__}: {err}"
    warnings.warn(f"ignoring unreadable data cache {path} ({why}); rebuilding it", stacklevel=3)
    return None


def _write_cache(path: Path, identity: str, images: torch.Tensor) -> None:
    gray = images.shape[1] == 3 and bool(
        torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])
    )
    stored = images[:, :1] if gray else images
    blob = {"identity": identity, "images": stored.contiguous(), "gray_as_rgb": gray}
    atomic_save(blob, path)  # readers see the old file or the whole new one


def load_images(
    source: str | os.PathLike[str],
    size: Sequence[int],
    channels: int = 3,
    *,
    cache_dir: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Load a dataset as a uint8 tensor ``(N, channels, H, W)`` with ``(H, W) = size``.

    ``source`` is a built-in name (see :func:`~fwp.gan.data.datasets.list_datasets`) or a folder of
    images. The first call preprocesses and caches the result in ``<cache_dir>/datasets``
    (``cache_dir`` defaults to :func:`default_cache_dir`); later calls with the same
    :func:`dataset_identity` load the cache. ``limit`` keeps the first ``limit`` images in a
    deterministic order (sorted file names; for textures the first crops of the fixed sequence).
    Unreadable files are skipped with one warning. Messages go to stderr only if ``progress``.

    Raises:
        DataError: a bad source or argument; the message says how to fix it.
    """
    (h, w), channels, limit = _check_arguments(size, channels, limit)
    src = resolve_source(source)
    identity = _identity(src, (h, w), channels, limit)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_file(root, src.name, identity)
    cached = _read_cache(path, identity)
    if cached is not None:
        report(progress, f"fwp data: {source}: {cached.shape[0]} images {h}x{w} from cache {path}")
        return cached
    start = time.monotonic()
    images = src.build((h, w), channels, limit, progress).contiguous()
    try:
        _write_cache(path, identity, images)
    except OSError as err:
        warnings.warn(
            f"could not write the data cache {path} ({err}); the data will be preprocessed again "
            "next time. Set FWP_CACHE (or cache_dir) to a writable folder.",
            stacklevel=2,
        )
    report(
        progress,
        f"fwp data: {source}: {images.shape[0]} images {h}x{w} ready in "
        f"{time.monotonic() - start:.1f}s, cached at {path}",
    )
    return images
