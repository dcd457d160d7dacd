"""The U-Net of the official FPA/U-Net: a denoising-diffusion U-Net without time conditioning.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) refines the painter's output with the
U-Net (Ronneberger et al., MICCAI 2015) of denoising diffusion models (Ho et al., NeurIPS 2020),
as implemented in lucidrains/denoising-diffusion-pytorch, without its time embedding. This module
is written from that architecture (``dim`` = ``base_channels``, ``dim_mults`` = 1, 2, ...,
``2**depth``):

- a 7x7 conv from the image channels to ``base_channels``;
- ``depth + 1`` levels of widths ``base_channels * 2**i``: two residual blocks (3x3 conv, group
  norm (8 groups), SiLU, twice; a 1x1 conv on the skip when the width changes), a residual
  channel-normed :class:`~fwp.painters.layers.LinearAttention`, and a stride-2 4x4 conv
  down-sampling after every level but the last;
- a middle of a residual block, residual channel-normed
  :class:`~fwp.painters.layers.SpatialAttention` and another residual block;
- the mirrored levels upwards, each reading its input concatenated with the skip of its level, with
  a stride-2 4x4 transposed conv up-sampling after every level but the last;
- a residual block over the result concatenated with the 7x7 conv's output.

It returns features (B, base_channels, H, W); the refiner's 1x1 head maps them to the image
channels (the official U-Net's last conv).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import LinearAttention, PreNormResidual, SpatialAttention


class ConvNormAct(nn.Module):
    """3x3 conv, group norm, SiLU: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ResidualBlock(nn.Module):
    """Two :class:`ConvNormAct` plus a skip (1x1 conv when widths differ): C_in -> C_out."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 8) -> None:
        super().__init__()
        self.block1 = ConvNormAct(in_channels, out_channels, groups)
        self.block2 = ConvNormAct(out_channels, out_channels, groups)
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block2(self.block1(x)) + self.skip(x)


class Level(nn.Module):
    """One U-Net level: two residual blocks and residual linear attention, C_in -> C_out."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            ResidualBlock(in_channels, out_channels),
            ResidualBlock(out_channels, out_channels),
            PreNormResidual(out_channels, LinearAttention(out_channels)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class DiffusionUNet(nn.Module):
    """Images (B, C, H, W) -> features (B, base_channels, H, W); H, W divisible by 2**depth.

    Args:
        channels: image channels C.
        base_channels: width of the first level (the official ``dim``, the image size there).
        depth: number of down-samplings; the levels have widths ``base_channels * 2**i`` for
            i = 0..depth (the official ``max_unet_dim`` is ``2**depth``).
    """

    def __init__(self, channels: int, base_channels: int, depth: int) -> None:
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = nn.Conv2d(channels, base_channels, 7, padding=3)
        inputs = [base_channels, *widths[:-1]]
        self.down = nn.ModuleList(
            Level(c_in, c_out) for c_in, c_out in zip(inputs, widths, strict=True)
        )
        self.downsample = nn.ModuleList(
            nn.Conv2d(w, w, 4, stride=2, padding=1) for w in widths[:-1]
        )
        middle = widths[-1]
        self.middle = nn.Sequential(
            ResidualBlock(middle, middle),
            PreNormResidual(middle, SpatialAttention(middle)),
            ResidualBlock(middle, middle),
        )
        # up[i] mirrors down[i]: it reads (its input, down[i]'s output) and returns inputs[i]
        self.up = nn.ModuleList(
            Level(2 * c_out, c_in) for c_in, c_out in zip(inputs, widths, strict=True)
        )
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(w, w, 4, stride=2, padding=1) for w in inputs[1:]
        )
        self.out = ResidualBlock(2 * base_channels, base_channels)

    def forward(self, images: Tensor) -> Tensor:
        x = first = self.stem(images)
        skips = []
        for level, down in enumerate(self.down):
            x = down(x)
            skips.append(x)
            if level < len(self.downsample):
                x = self.downsample[level](x)
        x = self.middle(x)
        for level in reversed(range(len(self.up))):
            x = self.up[level](torch.cat([x, skips[level]], dim=1))
            if level > 0:
                x = self.upsample[level - 1](x)
        return self.out(torch.cat([x, first], dim=1))
