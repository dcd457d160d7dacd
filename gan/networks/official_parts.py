"""The discriminator architecture of the official FPA code ("official").

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) trains its painters against the
discriminator of Lightweight GAN (Liu et al., "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis", ICLR 2021) as implemented in lucidrains/lightweight-gan,
with the flags ``attn_res_layers [32]``, ``disc_output_size 1`` and no anti-aliasing. This
architecture is written from that implementation; at 64x64 RGB with those flags it has 12,326,632
parameters, as the official one. All LeakyReLUs have slope 0.1; there is no normalisation.

- Widths: the feature map of side ``s`` has ``min(max_channels, base_channels * 64 / s)``
  channels (the official ``fmap_inverse_coef`` 12 with ``base_channels`` 64).
- Stem: for images above 256 pixels, one stride-2 4x4 conv (+ LeakyReLU) per halving down to 256,
  keeping the image channels except the last; otherwise none (the first block reads the image).
- Blocks, down to a short side of 8: the sum of a main branch (stride-2 4x4 conv, LeakyReLU, 3x3
  conv, LeakyReLU) and a skip branch (2x2 average pooling, 1x1 conv, LeakyReLU), unscaled. At the
  input sides in ``attention_resolutions`` a residual channel-normed
  :class:`~fwp.painters.layers.LinearLocalAttention` precedes the block.
- Head on the 8x8 features: ``output_size`` 1: stride-2 3x3 conv, LeakyReLU, 4x4 valid conv (one
  logit); ``output_size`` 5: 1x1 conv, LeakyReLU, 4x4 valid conv (5x5 patch logits, averaged
  here to one logit per image, where the official loss averages the per-patch losses).
- Small head on the input resized (nearest) to a short side of 32: 3x3 conv to ``base_channels``,
  attention, one block to ``base_channels / 2`` channels, attention, adaptive average pooling to
  4x4 and a 4x4 valid conv.
- Decoders (on real images): from the 8x8 features, four stages of (nearest 2x up-sampling, 3x3
  conv, GLU), halving the width, the last to the image channels, reconstruct the image at 16 times
  the features' size (128 pixels for 64x64 images), compared by mean squared error with the image
  resized (nearest) to that size. From 512 pixels on, a second decoder reconstructs a random
  quarter of the image from that quarter of the 16x16 features (the official code draws one
  quarter per batch; here each image draws its own).
- Initialisation: He-normal conv weights (fan in, LeakyReLU gain with slope 0), PyTorch's default
  biases.
"""

from __future__ import annotations

from torch import Tensor, nn

from fwp.painters.layers import LinearLocalAttention, PreNormResidual

from .parts import DiscriminatorParts, LogitMean

FEATURE_SIDE = 8
_SLOPE = 0.1
_STEM_SIDE = 256  # the blocks start at this short side at most
_SMALL_SIDE = 32
_PART_DECODER_SIDE = 512  # quarter reconstruction from this short side on


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(_SLOPE)


class ResidualDownBlock(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H/2, W/2): main branch + skip branch (module docstring)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1),
            _act(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            _act(),
        )
        self.skip = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(in_channels, out_channels, 1),
            _act(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.skip(x)


class GLUDecoder(nn.Module):
    """(B, C_in, h, w) -> (B, C_out, 16h, 16w): four stages of up-sampling, 3x3 conv and GLU.

    Stage ``i`` maps ``C_in / 2**i`` channels to as many (the last to ``2 * C_out``) and the GLU
    halves them.
    """

    def __init__(self, in_channels: int, out_channels: int, stages: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(stages):
            conv_out = 2 * out_channels if stage == stages - 1 else channels
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                nn.Conv2d(channels, conv_out, 3, padding=1),
                nn.GLU(dim=1),
            ]
            channels //= 2
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _attention(channels: int) -> PreNormResidual:
    return PreNormResidual(channels, LinearLocalAttention(channels))


def build_official_parts(
    image_size: tuple[int, int],
    channels: int,
    base_channels: int,
    max_channels: int,
    minibatch_std: bool,
    attention_resolutions: tuple[int, ...],
    output_size: int,
) -> DiscriminatorParts:
    """The parts of the official architecture (module docstring) for images of ``image_size``."""
    short = min(image_size)

    def width(side: int) -> int:
        return max(1, min(max_channels, base_channels * 64 // side))

    stem_layers: list[nn.Module] = []
    side = short
    while side > _STEM_SIDE:
        out = width(_STEM_SIDE) if side == 2 * _STEM_SIDE else channels
        stem_layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), _act()]
        side //= 2
    stem = nn.Sequential(*stem_layers)
    block_input = channels if short <= _STEM_SIDE else width(_STEM_SIDE)

    blocks: list[nn.Module] = []
    in_channels = block_input
    while side > FEATURE_SIDE:
        block: nn.Module = ResidualDownBlock(in_channels, width(side // 2))
        if side in attention_resolutions:
            block = nn.Sequential(_attention(in_channels), block)
        blocks.append(block)
        in_channels = width(side // 2)
        side //= 2

    last = width(FEATURE_SIDE)
    head_input = last + int(minibatch_std)
    if output_size == 1:
        head_layers: list[nn.Module] = [nn.Conv2d(head_input, last, 3, stride=2, padding=1)]
    else:
        head_layers = [nn.Conv2d(head_input, last, 1)]
    head = LogitMean(nn.Sequential(*head_layers, _act(), nn.Conv2d(last, 1, 4)))

    small_width = base_channels
    small_body = nn.Sequential(
        nn.Conv2d(channels, small_width, 3, padding=1),
        _attention(small_width),
        ResidualDownBlock(small_width, small_width // 2),
        _attention(small_width // 2),
        nn.AdaptiveAvgPool2d((4, 4)),
    )
    small_head = LogitMean(nn.Conv2d(small_width // 2, 1, 4))

    decoder = GLUDecoder(width(FEATURE_SIDE), channels)
    part_decoder = (
        GLUDecoder(width(2 * FEATURE_SIDE), channels) if short >= _PART_DECODER_SIDE else None
    )
    parts = DiscriminatorParts(
        stem=stem,
        blocks=nn.ModuleList(blocks),
        head=head,
        small_body=small_body,
        small_head=small_head,
        decoder=decoder,
        part_decoder=part_decoder,
        crop_index=len(blocks) - 1,  # the output of the second-to-last block (16x16)
        small_side=_SMALL_SIDE,
        resize="nearest",
        loss="mse",
    )
    for module in (stem, *blocks, head, small_body, small_head, decoder, part_decoder):
        if module is not None:
            _init_official(module)
    return parts


def _init_official(module: nn.Module) -> None:
    """He-normal weights for every conv (fan in, LeakyReLU gain with slope 0), default biases."""
    for m in module.modules():
        if type(m) is nn.Conv2d:
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", nonlinearity="leaky_relu")
