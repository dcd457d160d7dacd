"""One image: decoding a file, flattening any PIL mode onto white, resizing so that it covers the
target and centre-cropping, and the two pixel conversions (uint8 ``[0, 255]`` <-> float
``[-1, 1]``) that every other part of fwp uses.

Shapes: a decoded image is a uint8 array ``(C, H, W)``; batches are tensors ``(N, C, H, W)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image, ImageOps

from .errors import DataError

__all__ = [
    "as_array",
    "cover_box",
    "decode_image",
    "fit",
    "fit_tensor",
    "flatten_on_white",
    "to_channels",
    "to_float",
    "to_uint8",
]

_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def flatten_on_white(img: Image.Image) -> Image.Image:
    """Any PIL image -> mode "RGB" or "L": transparency composited on white, 16-bit and float
    pixels scaled to 8 bits, palette/CMYK/YCbCr/... converted to RGB."""
    if img.mode in _HIGH_DEPTH_MODES:
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


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """An "RGB" or "L" image in the mode of ``channels`` (1: "L", ITU-R 601-2 luma; 3: "RGB")."""
    return img.convert("L") if channels == 1 else img.convert("RGB")


def cover_box(width: int, height: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred box ``(left, top, right, bottom)`` of the target's aspect ratio inside a
    ``width`` x ``height`` image; ``size`` is the target ``(H, W)``."""
    th, tw = size
    scale = max(tw / width, th / height)  # scale so that the image covers the target
    bw, bh = tw / scale, th / scale
    left, top = (width - bw) / 2.0, (height - bh) / 2.0
    return (left, top, left + bw, top + bh)


def fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize (Lanczos) so that the short side matches and centre-crop to ``size`` = (H, W), in one
    resampling."""
    th, tw = size
    if img.size == (tw, th):
        return img
    box = cover_box(img.width, img.height, size)
    return img.resize((tw, th), Image.Resampling.LANCZOS, box=box)


def fit_tensor(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Grayscale uint8 ``(N, h, w)`` -> uint8 ``(N, 1, H, W)``, ``(H, W) = size``: bicubic
    (antialiased) resize so that the image covers the target, then a centre crop."""
    th, tw = size
    h, w = images.shape[-2:]
    scale = max(th / h, tw / w)
    rh, rw = max(th, round(h * scale)), max(tw, round(w * scale))
    x = rearrange(images, "n h w -> n 1 h w").to(torch.float32)
    x = torch.nn.functional.interpolate(x, size=(rh, rw), mode="bicubic", antialias=True)
    top, left = (rh - th) // 2, (rw - tw) // 2
    x = x[:, :, top : top + th, left : left + tw]
    return x.round_().clamp_(0, 255).to(torch.uint8)


def as_array(img: Image.Image, channels: int) -> np.ndarray:
    """An "L" or "RGB" PIL image -> uint8 array ``(channels, H, W)`` (gray replicated to 3)."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = rearrange(arr, "h w -> h w 1")
    if arr.shape[2] != channels:  # grayscale source, 3 channels wanted
        arr = repeat(arr, "h w 1 -> h w c", c=channels)
    return rearrange(arr, "h w c -> c h w")


def decode_image(path: str | Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Read one image file as fwp's data pipeline does: EXIF orientation applied, flattened on
    white, converted to ``channels``, covered and centre-cropped to ``size`` = (H, W).

    Returns:
        uint8 array ``(channels, H, W)``.

    Raises:
        Whatever PIL raises for a file it cannot read (callers skip such files).
    """
    with Image.open(path) as img:
        if img.format == "JPEG":  # let libjpeg downscale by 1/2, 1/4, 1/8 when that is enough
            side = max(size)
            img.draft("RGB" if channels == 3 else "L", (side, side))
        img.load()
        img = ImageOps.exif_transpose(img)
        img = to_channels(flatten_on_white(img), channels)
        return as_array(fit(img, size), channels)


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]``, same shape (e.g. ``(N, C, H, W)``) and device."""
    if images_uint8.dtype != torch.uint8:
        raise DataError(f"to_float expects a uint8 tensor, got {images_uint8.dtype}")
    return images_uint8.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]`` (clamped, rounded), same shape and device."""
    if not images.is_floating_point():
        raise DataError(f"to_uint8 expects a floating-point tensor in [-1, 1], got {images.dtype}")
    x = images.detach().to(torch.float32)
    return ((x + 1.0) * 127.5).clamp_(0.0, 255.0).round_().to(torch.uint8)
