"""The trained image generator: a painter, optionally followed by the U-Net refiner."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fwp.rules import PaintResult

from .painter import Painter, PainterConfig, sample_images
from .refiner import UNetRefiner


class Generator(nn.Module):
    """z (B, latent_dim) -> images (B, C, H, Wd): ``refiner(painter(z))`` or ``painter(z)``.

    Args:
        config: the painter's configuration.
        refiner: an optional :class:`UNetRefiner` applied to the painted image (FPA/U-Net).
    """

    def __init__(self, config: PainterConfig, refiner: UNetRefiner | None = None) -> None:
        super().__init__()
        self.painter = Painter(config)
        self.refiner = refiner

    @property
    def config(self) -> PainterConfig:
        return self.painter.config

    @property
    def latent_dim(self) -> int:
        return self.painter.latent_dim

    def forward(self, z: Tensor) -> Tensor:
        images = self.painter(z)
        return images if self.refiner is None else self.refiner(images)

    def paint(self, z: Tensor, frames: bool = False) -> Tensor | PaintResult:
        """Like :meth:`Painter.paint`; the refiner (if any) applies to the final image only."""
        result = self.painter.paint(z, frames=frames)
        if self.refiner is None:
            return result
        if not frames:
            return self.refiner(result)
        return PaintResult(self.refiner(result.image), result.updates, result.partials)

    def sample_latents(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        """Standard-normal latents (num, latent_dim); ``rng`` draws them reproducibly."""
        return self.painter.sample_latents(num, rng)

    def sample(self, num: int, batch_size: int = 256, seed: int = 0) -> Tensor:
        """``num`` images (num, C, H, Wd) in [-1, 1] from fixed-seed latents, on CPU."""
        return sample_images(self, num, batch_size, seed)
