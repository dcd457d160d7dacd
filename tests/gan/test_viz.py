"""Tests of fwp.gan.viz: grids, painting strips, PNG and GIF files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fwp.gan.data import to_float
from fwp.gan.viz import (
    default_steps,
    image_grid,
    painting_strip,
    save_image_grid,
    save_painting_gif,
    save_painting_strip,
)


def constant_images(values: list[float], c: int = 3, h: int = 4, w: int = 5) -> torch.Tensor:
    """Images (N, c, h, w), image i filled with values[i]."""
    v = torch.tensor(values, dtype=torch.float32)
    return v.reshape(-1, 1, 1, 1).expand(-1, c, h, w).clone()


def tile(grid: torch.Tensor, row: int, col: int, h: int, w: int, pad: int = 2) -> torch.Tensor:
    top, left = pad + row * (h + pad), pad + col * (w + pad)
    return grid[:, top : top + h, left : left + w]


def test_grid_shape_layout_and_padding() -> None:
    values = [-1.0, -0.5, 0.0, 0.5, 1.0, -1.0, 0.25, 0.75, -0.25, 0.1]
    grid = image_grid(constant_images(values, h=4, w=5), nrow=4)
    assert grid.dtype == torch.uint8
    assert grid.shape == (3, 3 * (4 + 2) + 2, 4 * (5 + 2) + 2)
    for k, v in enumerate(values):
        expected = round((v + 1) * 127.5)
        assert (tile(grid, k // 4, k % 4, 4, 5) == expected).all(), k
    assert (grid[:, :2] == 255).all() and (grid[:, :, :2] == 255).all()  # white border
    assert (tile(grid, 2, 3, 4, 5) == 255).all()  # the empty slot is padding colour


def test_grid_defaults_grayscale_clamping_and_pad_value() -> None:
    images = constant_images([-5.0] * 9, c=1, h=3, w=3)  # out of range: clamped to black
    grid = image_grid(images, padding=1, pad_value=-1.0)
    assert grid.shape == (3, 3 * 4 + 1, 3 * 4 + 1)  # ceil(sqrt(9)) = 3 per row
    assert (grid == 0).all()
    assert image_grid(constant_images([0.0] * 3), nrow=10).shape == (3, 8, 3 * 7 + 2)


def test_grid_accepts_uint8_and_rejects_bad_shapes() -> None:
    u8 = torch.full((2, 3, 4, 4), 200, dtype=torch.uint8)
    assert torch.equal(image_grid(u8), image_grid(to_float(u8)))
    with pytest.raises(ValueError, match="channels"):
        image_grid(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        image_grid(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="nrow"):
        image_grid(torch.zeros(2, 3, 4, 4), nrow=0)


def test_save_image_grid_writes_an_upscaled_png(tmp_path: Path) -> None:
    images = torch.rand(5, 3, 6, 7) * 2 - 1
    path = save_image_grid(images, tmp_path / "deep" / "grid.png", nrow=3, scale=3)
    assert path == tmp_path / "deep" / "grid.png" and path.is_file()
    grid = image_grid(images, nrow=3)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        assert img.size == (grid.shape[2] * 3, grid.shape[1] * 3)
        pixels = np.asarray(img)
    assert np.array_equal(pixels[::3, ::3], grid.permute(1, 2, 0).numpy())


def test_default_steps() -> None:
    assert default_steps(5, 16) == [0, 1, 2, 3, 4]
    steps = default_steps(100, 16)
    assert len(steps) == 16 and steps[-1] == 99 and steps == sorted(set(steps))
    gaps = np.diff(steps)
    assert gaps.min() >= 6 and gaps.max() <= 7
    assert default_steps(64, 4) == [15, 31, 47, 63]


def test_painting_strip_layout_and_normalisation() -> None:
    t, b, c, h, w = 10, 2, 3, 4, 4
    gen = torch.Generator().manual_seed(0)
    updates = torch.randn(t, b, c, h, w, generator=gen)
    partials = torch.randn(t, b, c, h, w, generator=gen) * 2  # partly out of range
    strip = painting_strip(updates, partials, max_columns=4)
    steps = default_steps(t, 4)
    assert strip.dtype == torch.uint8
    assert strip.shape == (3, 2 * b * (h + 2) + 2, len(steps) * (w + 2) + 2)
    # the partial row of latent 1 at the last column is the clamped last partial image
    expected = ((partials[-1, 1].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(tile(strip, 3, len(steps) - 1, h, w), expected)
    # every update tile spans the full range after min-max normalisation
    first_update = tile(strip, 0, 0, h, w)
    assert first_update.min() == 0 and first_update.max() == 255
    # and the normalisation is per update: scaling one update changes nothing
    scaled = updates.clone()
    scaled[steps[0], 0] *= 1000.0
    assert torch.equal(painting_strip(scaled, partials, max_columns=4), strip)


def test_painting_strip_steps_grayscale_and_constant_updates() -> None:
    t, b = 6, 1
    updates = torch.zeros(t, b, 1, 3, 3)  # constant: mid-grey
    partials = torch.zeros(t, b, 1, 3, 3)
    strip = painting_strip(updates, partials, steps=[0, -1])
    assert strip.shape == (3, 2 * 5 + 2, 2 * 5 + 2)
    assert (tile(strip, 0, 0, 3, 3, pad=2) == 128).all()
    with pytest.raises(ValueError, match="out of range"):
        painting_strip(updates, partials, steps=[6])
    with pytest.raises(ValueError, match="same shape"):
        painting_strip(updates, partials[:3])
    with pytest.raises(ValueError, match=r"\(T, B, C, H, W\)"):
        painting_strip(updates[0], partials[0])


def test_save_painting_strip_png(tmp_path: Path) -> None:
    updates, partials = torch.randn(8, 3, 3, 5, 5), torch.rand(8, 3, 3, 5, 5) * 2 - 1
    path = save_painting_strip(updates, partials, tmp_path / "strip.png", steps=[1, 3, 7], scale=2)
    strip = painting_strip(updates, partials, steps=[1, 3, 7])
    with Image.open(path) as img:
        assert img.format == "PNG"
        picture = np.asarray(img.convert("RGB"))
    # the upscaled strip is the picture's lower-right part, pixel for pixel ...
    expected = strip.permute(1, 2, 0).numpy().repeat(2, axis=0).repeat(2, axis=1)
    height, width = expected.shape[:2]
    assert picture.shape[0] > height and picture.shape[1] > width
    assert (picture[-height:, -width:] == expected).all()
    # ... with dark label text in the left margin (rows) and the top margin (columns)
    assert (picture[-height:, :-width] < 100).any()
    assert (picture[:-height, -width:] < 100).any()


def test_save_painting_gif_frames_and_durations(tmp_path: Path) -> None:
    t = 5
    levels = torch.linspace(-1, 1, t).reshape(t, 1, 1, 1, 1)
    partials = levels.expand(t, 4, 3, 6, 6).clone()  # each step a different grey
    path = save_painting_gif(partials, tmp_path / "paint.gif", nrow=2, scale=2, duration_ms=50)
    with Image.open(path) as img:
        assert img.format == "GIF" and img.n_frames == t
        assert img.size == (2 * (2 * 8 + 2), 2 * (2 * 8 + 2))
        durations = []
        for i in range(t):
            img.seek(i)
            durations.append(img.info["duration"])
            centre = np.asarray(img.convert("RGB"))[6, 6]
            assert abs(int(centre[0]) - round((float(levels[i]) + 1) * 127.5)) <= 2
    assert durations[:-1] == [50] * (t - 1) and durations[-1] >= 1000
