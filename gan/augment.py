"""Differentiable augmentation for data-efficient GAN training.

"Differentiable Augmentation for Data-Efficient GAN Training" (Zhao et al., NeurIPS 2020):
the same random, differentiable transformations are applied to real and generated images before
the discriminator sees them, so the generator is trained through them. Policies:

- ``color``: random brightness (add U(-0.5, 0.5)), saturation (scale the deviation from the
  per-pixel channel mean by U(0, 2)) and contrast (scale the deviation from the per-image mean by
  U(0.5, 1.5));
- ``translation``: shift by a random integer number of pixels in [-size/8, size/8] per axis, with
  zero padding;
- ``cutout``: zero a random square (rectangle for non-square images) of half the size, whose
  centre is uniform over the image (the square is clipped at the borders).

Policies are applied in the order given. Each image is augmented (by the whole chain) with
probability ``probability``, decided per sample with torch random ops on the images' device (no
host synchronisation). Images are expected in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["AUGMENTATIONS", "DiffAugment", "color", "cutout", "translation"]

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(images: Tensor) -> Tensor:
    """Per-sample U(0, 1) of shape (B, 1, 1, 1) on the images' device and dtype."""
    return torch.rand(images.shape[0], 1, 1, 1, device=images.device, dtype=images.dtype)


def color(images: Tensor) -> Tensor:
    """Random brightness, saturation and contrast: (B, C, H, W) -> (B, C, H, W)."""
    x = images + (_uniform(images) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(images) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(images) + 0.5) + mean


def translation(images: Tensor, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by up to ``ratio`` of its size, zero padding: (B, C, H, W) -> same."""
    b, _, h, w = images.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    device = images.device
    dy = torch.randint(-max_dy, max_dy + 1, (b, 1), device=device)
    dx = torch.randint(-max_dx, max_dx + 1, (b, 1), device=device)
    # Index into a one-pixel zero border; indices that fall outside land on the border.
    rows = (torch.arange(h, device=device) + dy + 1).clamp(0, h + 1)  # (B, H)
    cols = (torch.arange(w, device=device) + dx + 1).clamp(0, w + 1)  # (B, W)
    padded = rearrange(F.pad(images, (1, 1, 1, 1)), "b c h w -> b h w c")
    batch = torch.arange(b, device=device)
    shifted = padded[batch[:, None, None], rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return rearrange(shifted, "b h w c -> b c h w")


def cutout(images: Tensor, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero a random box of ``ratio`` of the size in each image: (B, C, H, W) -> same."""
    b, _, h, w = images.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    device = images.device
    top = torch.randint(0, h + (1 - cut_h % 2), (b, 1), device=device) - cut_h // 2
    left = torch.randint(0, w + (1 - cut_w % 2), (b, 1), device=device) - cut_w // 2
    row = torch.arange(h, device=device)
    col = torch.arange(w, device=device)
    inside_rows = (row >= top) & (row < top + cut_h)  # (B, H)
    inside_cols = (col >= left) & (col < left + cut_w)  # (B, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])  # (B, H, W)
    return images * rearrange(keep, "b h w -> b 1 h w").to(images.dtype)


AUGMENTATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


class DiffAugment(nn.Module):
    """Differentiable augmentation (Zhao et al., NeurIPS 2020): translation and cutout.

    Args:
        policy: comma-separated names from ``color``, ``translation``, ``cutout``, applied in the
            given order; an empty string means no augmentation.
        probability: chance in [0, 1] that each image is augmented (by the whole chain). Can be
            changed later (e.g. adaptively) through the ``probability`` attribute.

    ``forward(images)``: (B, C, H, W) -> (B, C, H, W); with probability 0 (or no policy) the
    input itself is returned. Gradients flow to the input.
    """

    def __init__(self, policy: str = "translation,cutout", probability: float = 0.0) -> None:
        super().__init__()
        names = [name.strip() for name in policy.split(",") if name.strip()]
        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            raise ValueError(
                f"unknown augmentation policy {', '.join(map(repr, unknown))} in {policy!r}: "
                f"valid names are {', '.join(AUGMENTATIONS)} (comma-separated)"
            )
        self.policy = tuple(names)
        self.probability = probability

    @property
    def probability(self) -> float:
        """Chance that each image is augmented, in [0, 1]."""
        return self._probability

    @probability.setter
    def probability(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"augmentation probability must be in [0, 1]; got {value}")
        self._probability = value

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)!r}, probability={self.probability}"

    def forward(self, images: Tensor) -> Tensor:
        """Augment images (B, C, H, W); see the class docstring."""
        if images.dim() != 4:
            raise ValueError(f"images must have shape (B, C, H, W); got {tuple(images.shape)}")
        if self.probability == 0.0 or not self.policy:
            return images
        augmented = images
        for name in self.policy:
            augmented = AUGMENTATIONS[name](augmented)
        if self.probability == 1.0:
            return augmented
        apply = torch.rand(images.shape[0], device=images.device) < self.probability
        return torch.where(rearrange(apply, "b -> b 1 1 1"), augmented, images)
