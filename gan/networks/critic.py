"""The critic of introspective training: a ConvNet f(x) scoring how data-like an image is.

After the official code of WINN ("Wasserstein Introspective Neural Networks", Lee, Xu, Fan & Tu,
CVPR 2018), written anew: 3x3 convolutions, each followed by layer norm and swish, mean-pool
downsampling, and a linear output. INNg ("Introspective Neural Networks for Generative Modeling",
Lazarow, Jin & Tu, ICCV 2017) reads the score as the logit of "data"; WINN as a Wasserstein
critic. Every layer works on one image at a time (layer norm, not batch norm), so an image's score
does not depend on the rest of its batch: the synthesis ascent and the gradient penalty need it.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

__all__ = ["Critic", "critic_output_side"]


def critic_output_side(size: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) of the critic's last feature map: halved until the shorter side is <= 4."""
    height, width = size
    while min(height, width) > 4:
        height, width = height // 2, width // 2
    return height, width


def _conv_block(inputs: int, outputs: int) -> list[nn.Module]:
    """3x3 convolution, layer norm over (C, H, W) with per-channel affine, swish."""
    return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.GroupNorm(1, outputs), nn.SiLU()]


class Critic(nn.Module):
    """f: images (B, C, H, W) in [-1, 1] -> scores (B,).

    Args:
        channels: C of the images (1 or 3).
        size: (H, W) of the images (each at least 1).
        width: channels of the first convolutions; they double at every downsampling.
        max_width: the most channels of a convolution.

    Layout: conv(C -> width); then, while the shorter side is > 4, two convolutions (the second
    widening) and a 2x2 mean pool; a linear map of the flattened features to one number.
    """

    def __init__(self, channels: int, size: tuple[int, int], width: int = 64, max_width: int = 256):
        super().__init__()
        if channels < 1 or width < 1 or max_width < 1 or min(size) < 1:
            raise ValueError(
                f"critic needs positive channels, width, max_width and size; got {channels}, "
                f"{width}, {max_width}, {size}"
            )
        current = min(width, max_width)
        layers: list[nn.Module] = _conv_block(channels, current)
        height, side_w = size
        while min(height, side_w) > 4:
            wider = min(2 * current, max_width)
            layers += _conv_block(current, current) + _conv_block(current, wider)
            layers.append(nn.AvgPool2d(2))
            current, height, side_w = wider, height // 2, side_w // 2
        self.features = nn.Sequential(*layers)
        self.size = (size[0], size[1])
        self.channels = channels
        self.out = nn.Linear(current * height * side_w, 1)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) -> scores (B,)."""
        features = self.features(images)
        return self.out(rearrange(features, "b c h w -> b (c h w)"))[:, 0]
