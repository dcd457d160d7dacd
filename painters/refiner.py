"""A U-Net that refines a painted image in one step (the paper's "FPA/U-Net").

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) adds a U-Net (Ronneberger et al.,
MICCAI 2015) after the painter to refine its output. This module maps an image in [-1, 1] to a
refined image in [-1, 1], in one of two architectures:

- "compact" (the default): fwp's small U-Net of conv blocks;
- "official": the denoising-diffusion U-Net of the official FPA code
  (:class:`~fwp.painters.unet.DiffusionUNet`); with ``base_channels`` 64 and ``depth`` 2 it is the
  paper's (``max_unet_dim`` 4), 7,985,475 parameters for RGB.

and one of two outputs:

- "residual" (the default): ``tanh(atanh(x) + head(features))`` with the head starting at zero,
  so that an untrained refiner returns its input (up to the clamp used to invert tanh);
- "direct": ``tanh(head(features))``, the official code's output (with its ``--out_tanh``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .unet import DiffusionUNet

REFINER_ARCHITECTURES = ("compact", "official")
REFINER_OUTPUTS = ("residual", "direct")


def _norm(channels: int) -> nn.GroupNorm:
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU: (B, in, H, W) -> (B, out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.SiLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class UNetRefiner(nn.Module):
    """U-Net refiner: images (B, C, H, W) in [-1, 1] -> refined images (B, C, H, W) in [-1, 1].

    Args:
        channels: image channels.
        base_channels: width of the first level; each level below doubles it.
        depth: number of down-sampling levels; H and W must be divisible by 2**depth.
        architecture: "compact" or "official" (see the module docstring).
        output: "residual" or "direct" (see the module docstring).
    """

    def __init__(
        self,
        channels: int = 3,
        base_channels: int = 32,
        depth: int = 3,
        architecture: str = "compact",
        output: str = "residual",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"refiner depth must be at least 1; got {depth}")
        if architecture not in REFINER_ARCHITECTURES:
            raise ValueError(
                f"refiner option architecture must be one of {REFINER_ARCHITECTURES}; "
                f"got {architecture!r}"
            )
        if output not in REFINER_OUTPUTS:
            raise ValueError(
                f"refiner option output must be one of {REFINER_OUTPUTS}; got {output!r}"
            )
        self.depth = depth
        self.output = output
        self.unet = (
            DiffusionUNet(channels, base_channels, depth) if architecture == "official" else None
        )
        if self.unet is None:
            self._build_compact(channels, base_channels, depth)
        self.head = nn.Conv2d(base_channels, channels, 1)
        if output == "residual":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _build_compact(self, channels: int, base_channels: int, depth: int) -> None:
        """fwp's compact U-Net: conv blocks, strided-conv down- and transposed-conv up-sampling."""
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = ConvBlock(channels, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i], 4, stride=2, padding=1),
                ConvBlock(widths[i], widths[i + 1]),
            )
            for i in range(depth)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)
        )
        self.merge = nn.ModuleList(ConvBlock(2 * widths[i], widths[i]) for i in range(depth))

    def _compact_features(self, images: Tensor) -> Tensor:
        skips = [self.stem(images)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for level in reversed(range(self.depth)):
            x = self.merge[level](torch.cat([self.up[level](x), skips[level]], dim=1))
        return x

    def forward(self, images: Tensor) -> Tensor:
        H, W = images.shape[-2:]
        if H % 2**self.depth or W % 2**self.depth:
            raise ValueError(
                f"the refiner of depth {self.depth} needs H and W divisible by {2**self.depth}; "
                f"got {H}x{W} (lower the refiner depth)"
            )
        features = self._compact_features(images) if self.unet is None else self.unet(images)
        if self.output == "direct":
            return torch.tanh(self.head(features))
        pre_activation = torch.atanh(images.clamp(-0.999, 0.999))
        return torch.tanh(pre_activation + self.head(features))
