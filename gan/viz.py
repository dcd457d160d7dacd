"""Pictures of images and of paintings: sample grids, painting strips and painting animations.

All functions take float images in ``[-1, 1]`` (a uint8 tensor is also accepted where noted) with
1 or 3 channels, and return or write RGB uint8 pictures. Tensors may live on any device; they are
moved to the CPU here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from PIL import Image, ImageDraw, ImageFont

from .data.images import to_float, to_uint8

__all__ = [
    "default_steps",
    "image_grid",
    "painting_strip",
    "save_image_grid",
    "save_painting_gif",
    "save_painting_strip",
]


def _check_images(images: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Validate (N, C, H, W) with C in {1, 3}; return float32 [-1, 1] on the CPU."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{what} must be a tensor (N, C, H, W), got {shape}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(
            f"{what} must have 1 or 3 channels (dim 1), got shape {tuple(images.shape)}"
        )
    if n == 0 or h == 0 or w == 0:
        raise ValueError(f"{what} is empty: shape {tuple(images.shape)}")
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        return to_float(images)
    if not images.is_floating_point():
        raise ValueError(f"{what} must be float in [-1, 1] (or uint8), got {images.dtype}")
    return images.to(torch.float32)


def image_grid(
    images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> torch.Tensor:
    """Tile images into one picture.

    Args:
        images: float ``(N, C, H, W)`` in ``[-1, 1]`` (or uint8), ``C`` 1 or 3; clamped.
        nrow: images per row; default ``ceil(sqrt(N))``.
        padding: pixels between images and around the border.
        pad_value: colour of the padding on the images' scale: 1.0 white, -1.0 black.

    Returns:
        uint8 ``(3, rows * (H + padding) + padding, nrow * (W + padding) + padding)``.
    """
    x = _check_images(images)
    n, c, h, w = x.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    x = x.clamp(-1.0, 1.0)
    if c == 1:
        x = repeat(x, "n 1 h w -> n 3 h w")
    blanks = x.new_full((rows * ncol - n, 3, h, w), pad_value)
    x = torch.cat([x, blanks])
    x = F.pad(x, (0, padding, 0, padding), value=pad_value)  # right and bottom of every tile
    grid = rearrange(x, "(r k) c h w -> c (r h) (k w)", r=rows, k=ncol)
    grid = F.pad(grid, (padding, 0, padding, 0), value=pad_value)  # the top and left border
    return to_uint8(grid)


def _to_pil(picture: torch.Tensor, scale: int) -> Image.Image:
    """uint8 (3, h, w) -> PIL RGB image, nearest-neighbour upscaled by an integer ``scale``."""
    if scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale}")
    img = Image.fromarray(rearrange(picture, "c h w -> h w c").numpy(), mode="RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def _prepare_path(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_image_grid(
    images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1
) -> Path:
    """Write :func:`image_grid` of ``images`` (N, C, H, W) as a PNG, upscaled ``scale`` times."""
    path = _prepare_path(path)
    _to_pil(image_grid(images, nrow=nrow), scale).save(path, format="PNG")
    return path


def default_steps(num_steps: int, max_columns: int = 16) -> list[int]:
    """At most ``max_columns`` evenly spaced step indices in ``[0, num_steps)``, ending at T-1."""
    if num_steps < 1 or max_columns < 1:
        raise ValueError(
            f"need num_steps >= 1 and max_columns >= 1, got {num_steps}, {max_columns}"
        )
    n = min(num_steps, max_columns)
    return [round((i + 1) * num_steps / n) - 1 for i in range(n)]


def _check_frames(frames: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(frames, torch.Tensor) or frames.ndim != 5:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"{what} must be a tensor (T, B, C, H, W), got {shape}")
    if frames.shape[2] not in (1, 3) or 0 in frames.shape:
        raise ValueError(f"{what} must be (T, B, C, H, W) with C 1 or 3, got {tuple(frames.shape)}")
    return frames.detach().cpu().to(torch.float32)


def painting_strip(
    updates: torch.Tensor,
    partials: torch.Tensor,
    steps: Sequence[int] | None = None,
    max_columns: int = 16,
) -> torch.Tensor:
    """How paintings grow: per latent, a row of rank-1 updates above a row of partial images.

    Args:
        updates: ``(T, B, C, H, W)``, the update added at each step; any range. Each update is
            min-max normalised on its own (a constant update shows mid-grey).
        partials: ``(T, B, C, H, W)``, the image after each step, in ``[-1, 1]`` (clamped).
        steps: which steps to show (negative indices count from the end); default
            :func:`default_steps` (T, max_columns).
        max_columns: the most columns the default ``steps`` has.

    Returns:
        uint8 ``(3, h, w)``: ``2 * B`` rows of ``len(steps)`` tiles, as :func:`image_grid` lays out.
    """
    up = _check_frames(updates, "updates")
    pa = _check_frames(partials, "partials")
    if up.shape != pa.shape:
        raise ValueError(
            f"updates {tuple(up.shape)} and partials {tuple(pa.shape)} must have the same shape"
        )
    t = up.shape[0]
    if steps is None:
        steps = default_steps(t, max_columns)
    steps = list(steps)
    if not steps:
        raise ValueError("steps is empty: give at least one step index")
    bad = [s for s in steps if not -t <= s < t]
    if bad:
        raise ValueError(f"steps {bad} out of range for T={t} steps")
    idx = torch.tensor([s % t for s in steps])
    up, pa = up[idx], pa[idx]  # (S, B, C, H, W)
    lo = up.amin(dim=(2, 3, 4), keepdim=True)
    hi = up.amax(dim=(2, 3, 4), keepdim=True)
    span = hi - lo
    unit = torch.where(span > 0, (up - lo) / span.clamp_min(1e-12), torch.full_like(up, 0.5))
    rows = torch.stack([unit * 2.0 - 1.0, pa.clamp(-1.0, 1.0)])  # (2, S, B, C, H, W)
    tiles = rearrange(rows, "r s b c h w -> (b r s) c h w")
    return image_grid(tiles, nrow=len(steps))


def _with_labels(
    picture: Image.Image,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    tile: tuple[int, int],
    padding: int,
) -> Image.Image:
    """``picture`` (a grid of tiles of ``tile`` = (h, w) pixels with ``padding`` between them)
    with a label left of every row and above every column, in black on white."""
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(picture)
    left = max(draw.textlength(text, font=font) for text in row_labels) + 2 * padding + 4
    top = 14 + padding
    out = Image.new("RGB", (picture.width + int(left), picture.height + top), "white")
    out.paste(picture, (int(left), top))
    draw = ImageDraw.Draw(out)
    height, width = tile
    for row, text in enumerate(row_labels):
        y = top + padding + row * (height + padding) + height // 2 - 6
        draw.text((padding, y), text, fill="black", font=font)
    for column, text in enumerate(column_labels):
        x = int(left) + padding + column * (width + padding)
        draw.text((x, padding), text, fill="black", font=font)
    return out


def save_painting_strip(
    updates: torch.Tensor,
    partials: torch.Tensor,
    path: str | Path,
    steps: Sequence[int] | None = None,
    scale: int = 2,
) -> Path:
    """Write :func:`painting_strip` as a PNG, nearest-neighbour upscaled ``scale`` times, with
    row labels (latent, "update" or "image") and the step of every column."""
    path = _prepare_path(path)
    t, b, _, h, w = updates.shape
    steps = list(steps) if steps is not None else default_steps(t)
    picture = _to_pil(painting_strip(updates, partials, steps=steps), scale)
    rows = [f"z{i + 1} {kind}" for i in range(b) for kind in ("update", "image")]
    columns = [f"t={s % t + 1}" for s in steps]
    labelled = _with_labels(picture, rows, columns, (h * scale, w * scale), 2 * scale)
    labelled.save(path, format="PNG")
    return path


def save_painting_gif(
    partials: torch.Tensor,
    path: str | Path,
    nrow: int | None = None,
    scale: int = 2,
    duration_ms: int = 80,
) -> Path:
    """Write an animated GIF: frame ``t`` is the grid of the B partial images after step ``t``.

    Args:
        partials: ``(T, B, C, H, W)`` in ``[-1, 1]``.
        nrow: images per row of each frame's grid (default ``ceil(sqrt(B))``).
        scale: nearest-neighbour upscaling.
        duration_ms: time per frame; the last frame is held for ``max(1000, 10 * duration_ms)``.
    """
    if duration_ms < 1:
        raise ValueError(f"duration_ms must be >= 1, got {duration_ms}")
    frames_t = _check_frames(partials, "partials")
    frames = [_to_pil(image_grid(frame, nrow=nrow), scale) for frame in frames_t]
    durations = [duration_ms] * (len(frames) - 1) + [max(1000, 10 * duration_ms)]
    path = _prepare_path(path)
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        optimize=False,
    )
    return path
