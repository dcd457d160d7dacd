"""Tests for differentiable augmentation (fwp.gan.augment)."""

from __future__ import annotations

import pytest
import torch

from fwp.gan.augment import AUGMENTATIONS, DiffAugment, cutout, translation

POLICIES = ["translation", "cutout", "color", "translation,cutout", "color,translation,cutout"]


def _images(batch: int = 8, size: tuple[int, int] = (16, 16), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, *size, generator=g) * 2 - 1


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("size", [(16, 16), (32, 16), (16, 64)])
@pytest.mark.parametrize("probability", [0.5, 1.0])
def test_shape_and_dtype_preserved(policy: str, size: tuple[int, int], probability: float) -> None:
    images = _images(size=size)
    out = DiffAugment(policy, probability)(images)
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("policy", POLICIES)
def test_probability_zero_is_identity(policy: str) -> None:
    images = _images()
    assert DiffAugment(policy, 0.0)(images) is images


def test_default_is_identity() -> None:
    images = _images()
    augment = DiffAugment()
    assert augment.policy == ("translation", "cutout")
    assert augment(images) is images


@pytest.mark.parametrize("policy", POLICIES)
def test_probability_one_changes_images(policy: str) -> None:
    torch.manual_seed(0)
    images = _images(batch=16)
    out = DiffAugment(policy, 1.0)(images)
    changed = (out - images).abs().flatten(1).amax(dim=1) > 0
    # Translation alone leaves an image unchanged when both shifts are zero (1/25 at 16x16).
    assert changed.float().mean() >= 0.75
    if "cutout" in policy or "color" in policy:
        assert changed.all()


def test_probability_is_per_sample() -> None:
    torch.manual_seed(0)
    images = _images(batch=64)
    out = DiffAugment("cutout", 0.5)(images)
    changed = (out - images).abs().flatten(1).amax(dim=1) > 0
    assert 10 < int(changed.sum()) < 54
    unchanged = ~changed
    assert torch.equal(out[unchanged], images[unchanged])


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("probability", [0.5, 1.0])
def test_gradient_flows_to_input(policy: str, probability: float) -> None:
    torch.manual_seed(0)
    images = _images().requires_grad_()
    out = DiffAugment(policy, probability)(images)
    (out * torch.randn_like(out)).sum().backward()
    assert images.grad is not None
    assert torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", POLICIES)
def test_deterministic_under_seed(policy: str) -> None:
    images = _images()
    augment = DiffAugment(policy, 0.5)
    torch.manual_seed(123)
    first = augment(images)
    torch.manual_seed(123)
    second = augment(images)
    torch.manual_seed(124)
    third = augment(images)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_unknown_policy_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="'flip'") as info:
        DiffAugment("translation,flip")
    for name in AUGMENTATIONS:
        assert name in str(info.value)


@pytest.mark.parametrize("probability", [-0.1, 1.5, float("nan")])
def test_probability_outside_unit_interval(probability: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DiffAugment("translation", probability)
    augment = DiffAugment("translation", 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment.probability = probability


def test_policy_parsing_tolerates_spaces_and_empty() -> None:
    assert DiffAugment(" color , cutout ").policy == ("color", "cutout")
    images = _images()
    assert DiffAugment("", 1.0)(images) is images


def test_translation_is_a_zero_padded_shift() -> None:
    """Every output equals the input shifted by one (dy, dx) within +-size/8, zeros outside."""
    torch.manual_seed(0)
    images = _images(batch=32, size=(16, 32)) + 3.0  # no zeros in the input
    out = translation(images)
    padded = torch.nn.functional.pad(images, (4, 4, 2, 2))
    for b in range(images.shape[0]):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-4, 5)
            if torch.equal(out[b], padded[b, :, 2 + dy : 2 + dy + 16, 4 + dx : 4 + dx + 32])
        ]
        assert len(matches) == 1


def test_cutout_zeroes_a_clipped_half_size_box() -> None:
    torch.manual_seed(0)
    images = torch.ones(64, 1, 16, 32)
    out = cutout(images)
    zeros = out == 0
    count = zeros.flatten(1).sum(dim=1)
    # At least a quarter of the 8x16 box lies inside the image, at most all of it.
    assert (count >= 4 * 8).all() and (count <= 8 * 16).all()
    # The zeroed region is a rectangle: rows x cols.
    rows, cols = zeros.any(dim=3), zeros.any(dim=2)
    assert torch.equal(zeros, rows[..., :, None] & cols[..., None, :])


def test_channels_last_input() -> None:
    torch.manual_seed(0)
    images = _images()
    augment = DiffAugment("color,translation,cutout", 1.0)
    torch.manual_seed(1)
    ref = augment(images)
    torch.manual_seed(1)
    out = augment(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref)


def test_compiles_without_graph_breaks() -> None:
    augment = torch.compile(
        DiffAugment("color,translation,cutout", 0.5), backend="eager", fullgraph=True
    )
    assert augment(_images()).shape == (8, 3, 16, 16)


def test_rejects_non_image_input() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        DiffAugment("cutout", 1.0)(torch.zeros(3, 16, 16))
