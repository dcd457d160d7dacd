"""fwp's own discriminator architecture ("fwp", the default), written from the FastGAN paper.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) trains its painters against the
discriminator of "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image
Synthesis" (Liu et al., ICLR 2021). This architecture is written from that paper's description and
keeps its ideas, scaled to the image size:

- a stem (3x3 conv + LeakyReLU 0.2) at full resolution;
- residual down-sampling blocks until the short side of the features is 8. The main branch is a
  fixed 3x3 binomial blur, a stride-2 3x3 conv, LeakyReLU, a 3x3 conv, LeakyReLU; the skip branch
  is 2x2 average pooling and a 1x1 conv; the two are summed and scaled by 1/sqrt(2). Optionally
  (``attention_resolutions``) a residual channel-normed attention precedes the block;
- a logit head on the 8x8 features: with ``output_size`` 5 a 1x1 conv, LeakyReLU and a 4x4 valid
  conv to one channel, whose 5x5 patch logits are averaged into one logit per image; with
  ``output_size`` 1 a blur, a stride-2 3x3 conv, LeakyReLU and the 4x4 valid conv;
- a second, smaller head that sees a copy of the input area-downsampled to
  ``min(32, size / 2)``: two 3x3 convs (width ``base_channels / 2``), the same residual blocks
  down to 8x8 and the 5x5 logit head;
- a self-supervised decoder (run only on real images): from the 8x8 features it reconstructs the
  whole image at ``min(32, size)``, and from a random quarter of the 16x16 features it
  reconstructs the corresponding quarter of the image at ``min(32, size / 2)``; the loss is the
  sum of the two mean L1 errors (FastGAN uses a perceptual loss; we use plain L1 so that the
  discriminator has no pretrained dependency).

Normalisation: none. FastGAN uses BatchNorm, but real and fake batches are usually forwarded
separately, so BatchNorm lets the discriminator read batch-level statistics (and makes train/eval
mode matter); the residual 1/sqrt(2) scaling with He initialisation keeps activations at unit
scale without it, as in StyleGAN2 and Lightweight GAN. No spectral norm.

Widths: ``base_channels`` is the width of the full-resolution stem for images up to 64 pixels
(short side), and the width doubles at every halving of resolution, capped at ``max_channels``.
Above 64 pixels the width of a resolution ``r`` is ``base_channels * 64 / r`` (never below
``base_channels / 8``), so the cost per resolution stays constant as in FastGAN.

Non-square images (H != W, both powers of two) are supported: "8x8", "16x16" and "32x32" above
refer to the short side, and the long side keeps the aspect ratio.
"""

from __future__ import annotations

import math

from einops import reduce
from torch import Tensor, nn

from fwp.painters.layers import Blur, LinearLocalAttention, PreNormResidual

from .parts import DiscriminatorParts

FEATURE_SIDE = 8  # short side of the features the main head reads
CROP_SIDE = 16  # short side of the features the quarter crop is taken from
_LOW_RES = 32  # short side of the small head's input and of the reconstructions (at most)
_SLOPE = 0.2


def _conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    activated: bool = True,
) -> nn.Conv2d:
    """A conv with He initialisation for a following LeakyReLU(0.2) (or linear gain) and 0 bias."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
    if activated:
        nn.init.kaiming_normal_(conv.weight, a=_SLOPE, nonlinearity="leaky_relu")
    else:
        nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
    nn.init.zeros_(conv.bias)
    return conv


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(_SLOPE)


class DownBlock(nn.Module):
    """Residual down-sampling block: (B, C_in, H, W) -> (B, C_out, H/2, W/2).

    Main branch: blur, stride-2 3x3 conv, LeakyReLU, 3x3 conv, LeakyReLU. Skip branch: 2x2
    average pooling, 1x1 conv. Output: (main + skip) / sqrt(2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            Blur(),
            _conv(in_channels, out_channels, 3, stride=2, padding=1),
            _act(),
            _conv(out_channels, out_channels, 3, padding=1),
            _act(),
        )
        self.skip = nn.Sequential(
            nn.AvgPool2d(2),
            _conv(in_channels, out_channels, 1, activated=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.skip(x)) * (1.0 / math.sqrt(2.0))


class LogitHead(nn.Module):
    """Patch logits averaged per image: (B, C, h, w) with h, w >= 4 (``output_size`` 5) or
    h, w >= 8 (``output_size`` 1) -> (B,).

    ``output_size`` 5: 1x1 conv, LeakyReLU, then a valid 4x4 conv to one channel ((h - 3) x
    (w - 3) patch logits). ``output_size`` 1: blur, stride-2 3x3 conv, LeakyReLU, the 4x4 conv.
    """

    def __init__(self, channels: int, output_size: int = 5) -> None:
        super().__init__()
        if output_size == 5:
            first: list[nn.Module] = [_conv(channels, channels, 1)]
        else:
            first = [Blur(), _conv(channels, channels, 3, stride=2, padding=1)]
        self.net = nn.Sequential(*first, _act(), _conv(channels, 1, 4, activated=False))

    def forward(self, x: Tensor) -> Tensor:
        return reduce(self.net(x), "b 1 h w -> b", "mean")


class Decoder(nn.Module):
    """Small upsampling decoder: (B, C_in, h, w) -> (B, C_out, h * 2**n, w * 2**n) in [-1, 1].

    ``n`` stages of (nearest 2x upsampling, 3x3 conv, LeakyReLU), widths ``width, width/2, ...``,
    then a 3x3 conv to ``out_channels`` and tanh. With ``n = 0`` it is a 3x3 conv, LeakyReLU and
    the output conv.
    """

    def __init__(self, in_channels: int, out_channels: int, upsamplings: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        if upsamplings == 0:
            layers += [_conv(channels, width, 3, padding=1), _act()]
            channels = width
        for i in range(upsamplings):
            out = max(width >> i, 8)
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                _conv(channels, out, 3, padding=1),
                _act(),
            ]
            channels = out
        layers += [_conv(channels, out_channels, 3, padding=1, activated=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _log2(n: int) -> int:
    return n.bit_length() - 1


def _attended(block: nn.Module, channels: int, attention: bool) -> nn.Module:
    """``block``, preceded by residual channel-normed attention when ``attention``."""
    if not attention:
        return block
    return nn.Sequential(PreNormResidual(channels, LinearLocalAttention(channels)), block)


def build_fwp_parts(
    image_size: tuple[int, int],
    channels: int,
    base_channels: int,
    max_channels: int,
    minibatch_std: bool,
    attention_resolutions: tuple[int, ...],
    output_size: int,
) -> DiscriminatorParts:
    """The parts of fwp's architecture (see the module docstring) for images of ``image_size``."""
    short = min(image_size)

    def width(resolution: int) -> int:
        # Image-relative doubling up to 64 pixels, resolution-relative above (FastGAN-like).
        scaled = base_channels * min(short, 64) // resolution
        return max(1, min(max_channels, max(scaled, base_channels // 8)))

    # Main path: stem at full resolution, then blocks down to a short side of 8.
    stem = nn.Sequential(_conv(channels, width(short), 3, padding=1), _act())
    blocks = []
    resolution = short
    while resolution > FEATURE_SIDE:
        block = DownBlock(width(resolution), width(resolution // 2))
        blocks.append(_attended(block, width(resolution), resolution in attention_resolutions))
        resolution //= 2
    feature_channels = width(FEATURE_SIDE)
    head = LogitHead(feature_channels + int(minibatch_std), output_size)

    # Small head on a downsampled copy of the input.
    small_side = min(_LOW_RES, short // 2)
    small_width = max(1, base_channels // 2)

    def small_channels(resolution: int) -> int:
        return min(max_channels, small_width * (small_side // resolution))

    small_layers: list[nn.Module] = [
        _conv(channels, small_width, 3, padding=1),
        _act(),
        _conv(small_width, small_width, 3, padding=1),
        _act(),
    ]
    resolution = small_side
    while resolution > FEATURE_SIDE:
        small_layers.append(DownBlock(small_channels(resolution), small_channels(resolution // 2)))
        resolution //= 2
    small_head = LogitHead(small_channels(FEATURE_SIDE))

    # Decoders (self-supervision, FastGAN): whole image and a quarter.
    whole_side = min(_LOW_RES, short)
    part_side = min(_LOW_RES, short // 2)
    decoder_width = min(max_channels, base_channels)
    decoder = Decoder(feature_channels, channels, _log2(whole_side // FEATURE_SIDE), decoder_width)
    part_decoder = Decoder(
        width(CROP_SIDE), channels, _log2(part_side // FEATURE_SIDE), decoder_width
    )
    return DiscriminatorParts(
        stem=stem,
        blocks=nn.ModuleList(blocks),
        head=head,
        small_body=nn.Sequential(*small_layers),
        small_head=small_head,
        decoder=decoder,
        part_decoder=part_decoder,
        crop_index=_log2(short // CROP_SIDE),  # features[i] has short side short / 2**i
        small_side=small_side,
        resize="area",
        loss="l1",
    )
