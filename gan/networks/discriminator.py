"""The FastGAN / Lightweight-GAN style discriminator used to train painters adversarially.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) trains its painters against the
discriminator of "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image
Synthesis" (Liu et al., ICLR 2021). This module is written from that paper's description and keeps
its ideas, scaled to the image size:

- a stem (3x3 conv + LeakyReLU 0.2) at full resolution;
- residual down-sampling blocks until the short side of the features is 8. The main branch is a
  fixed 3x3 binomial blur, a stride-2 3x3 conv, LeakyReLU, a 3x3 conv, LeakyReLU; the skip branch
  is 2x2 average pooling and a 1x1 conv; the two are summed and scaled by 1/sqrt(2);
- a logit head on the 8x8 features (1x1 conv, LeakyReLU, 4x4 valid conv to one channel), whose
  5x5 patch logits are averaged into one logit per image;
- a second, smaller head that sees a copy of the input area-downsampled to
  ``min(32, size / 2)``: two 3x3 convs (width ``base_channels / 2``), the same residual blocks
  down to 8x8 and the same kind of logit head;
- a self-supervised decoder (run only with ``reconstruct=True``, on real images): from the 8x8
  features it reconstructs the whole image at ``min(32, size)``, and from a random quarter of the
  16x16 features it reconstructs the corresponding quarter of the image at ``min(32, size / 2)``;
  ``reconstruction_loss`` is the sum of the two mean L1 errors (FastGAN uses a perceptual loss; we
  use plain L1 so that the discriminator has no pretrained dependency).

Normalisation: none. FastGAN uses BatchNorm, but real and fake batches are usually forwarded
separately, so BatchNorm lets the discriminator read batch-level statistics (and makes train/eval
mode matter); the residual 1/sqrt(2) scaling with He initialisation keeps activations at unit
scale without it, as in StyleGAN2 and Lightweight GAN. No spectral norm by default.

Widths: ``base_channels`` is the width of the full-resolution stem for images up to 64 pixels
(short side), and the width doubles at every halving of resolution, capped at ``max_channels``.
Above 64 pixels the width of a resolution ``r`` is ``base_channels * 64 / r`` (never below
``base_channels / 8``), so the cost per resolution stays constant as in FastGAN.

Non-square images (H != W, both powers of two) are supported: "8x8", "16x16" and "32x32" above
refer to the short side, and the long side keeps the aspect ratio.

The forward pass has no data-dependent Python control flow (only the ``reconstruct`` flag and
static shapes); the random quarter is chosen with ``torch.randint`` on the images' device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import Tensor, nn

__all__ = [
    "DiscriminatorOutput",
    "LightweightDiscriminator",
    "check_discriminator_size",
]

MIN_SIDE = 16
MAX_SIDE = 1024
_FEATURE_SIDE = 8  # short side of the features the main head reads
_CROP_SIDE = 16  # short side of the features the quarter crop is taken from
_LOW_RES = 32  # short side of the small head's input and of the reconstructions (at most)
_SLOPE = 0.2


def _is_power_of_two(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


def check_discriminator_size(size: tuple[int, int]) -> None:
    """Raise ``ValueError`` (naming the fix) if the discriminator cannot take images of ``size``.

    Args:
        size: ``(H, W)``; each side must be a power of two between 16 and 1024. H and W may
            differ.
    """
    try:
        h, w = size
    except (TypeError, ValueError):
        raise ValueError(
            f"image size must be a pair (H, W); got {size!r}: use e.g. (64, 64) (--size 64)"
        ) from None
    if not all(_is_power_of_two(s) and MIN_SIDE <= s <= MAX_SIDE for s in (h, w)):
        raise ValueError(
            f"image size {h}x{w} is not supported by the discriminator: use a power of two "
            f"between {MIN_SIDE} and {MAX_SIDE} for each side (e.g. --size 32 or 64)"
        )


@dataclass
class DiscriminatorOutput:
    """What :class:`LightweightDiscriminator` returns.

    Attributes:
        logits: (B,) main-head logits (mean of the 5x5 patch logits on the 8x8 features).
        small_logits: (B,) logits of the head on the downsampled copy of the input.
        reconstruction_loss: scalar self-supervised L1 loss, or ``None`` unless ``reconstruct``.
    """

    logits: Tensor
    small_logits: Tensor
    reconstruction_loss: Tensor | None = None


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


class Blur(nn.Module):
    """A fixed depthwise 3x3 binomial blur ([1, 2, 1] outer [1, 2, 1] / 16), reflect padding.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    kernel: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0
        # Not persistent: a constant, kept out of checkpoints, still moved by .to(device).
        self.register_buffer(
            "kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False
        )
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


class DownBlock(nn.Module):
    """Residual down-sampling block: (B, C_in, H, W) -> (B, C_out, H/2, W/2).

    Main branch: blur, stride-2 3x3 conv, LeakyReLU, 3x3 conv, LeakyReLU. Skip branch: 2x2
    average pooling, 1x1 conv. Output: (main + skip) / sqrt(2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            Blur(in_channels),
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
    """Patch logits averaged per image: (B, C, h, w) with h, w >= 4 -> (B,).

    1x1 conv, LeakyReLU, then a valid 4x4 conv to one channel ((h - 3) x (w - 3) patch logits).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(channels, channels, 1),
            _act(),
            _conv(channels, 1, 4, activated=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return reduce(self.net(x), "b 1 h w -> b", "mean")


def with_minibatch_std(x: Tensor, group: int = 4) -> Tensor:
    """Append the minibatch standard deviation as one more channel: (B, C, h, w) -> (B, C+1, h, w).

    Karras et al., "Progressive Growing of GANs" (ICLR 2018): within groups of ``group`` samples
    (or the whole batch when it does not divide), the standard deviation of every feature across
    the group, averaged to one number per group, tells the discriminator how diverse the batch
    is, which counters mode collapse. Not part of the FPA paper's discriminator; opt-in.
    """
    batch = x.shape[0]
    size = group if batch % group == 0 else batch
    grouped = rearrange(x.float(), "(g n) c h w -> g n c h w", n=size)
    # population variance across the group, written out: Tensor.var over a middle dimension is
    # about 6x slower on a CPU (forward and backward, measured on the quick preset's features)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    spread = centred.square().mean(dim=1).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    feature = repeat(spread, "g -> (g n) 1 h w", n=size, h=x.shape[2], w=x.shape[3])
    return torch.cat([x, feature.to(x.dtype)], dim=1)


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


class LightweightDiscriminator(nn.Module):
    """FastGAN-style discriminator with two logit heads and a self-supervised decoder.

    Args:
        image_size: ``(H, W)``, each a power of two in [16, 1024] (see
            :func:`check_discriminator_size`).
        channels: image channels C.
        base_channels: stem width (for images up to 64 pixels; see the module docstring).
        max_channels: cap on any feature width.

    ``forward(images, reconstruct=False)``: images (B, C, H, W) in [-1, 1] ->
    :class:`DiscriminatorOutput` with ``logits`` (B,), ``small_logits`` (B,) and, when
    ``reconstruct`` is true, a scalar ``reconstruction_loss`` (call it on real images only).
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        minibatch_std: bool = False,
    ) -> None:
        super().__init__()
        check_discriminator_size(image_size)
        if channels < 1 or base_channels < 2 or max_channels < 1:
            raise ValueError(
                f"channels, base_channels and max_channels must be positive (base_channels >= 2); "
                f"got {channels}, {base_channels}, {max_channels}"
            )
        h, w = image_size
        self.image_size = (h, w)
        self.channels = channels
        short = min(h, w)

        def width(resolution: int) -> int:
            # Image-relative doubling up to 64 pixels, resolution-relative above (FastGAN-like).
            scaled = base_channels * min(short, 64) // resolution
            return max(1, min(max_channels, max(scaled, base_channels // 8)))

        # Main path: stem at full resolution, then blocks down to a short side of 8.
        self.stem = nn.Sequential(_conv(channels, width(short), 3, padding=1), _act())
        blocks = []
        resolution = short
        while resolution > _FEATURE_SIDE:
            blocks.append(DownBlock(width(resolution), width(resolution // 2)))
            resolution //= 2
        self.blocks = nn.ModuleList(blocks)
        # features[i] (i = 0 is the stem output) has short side short / 2**i.
        self._crop_index = _log2(short // _CROP_SIDE)
        feature_channels = width(_FEATURE_SIDE)
        crop_channels = width(_CROP_SIDE)
        self.minibatch_std = minibatch_std
        self.head = LogitHead(feature_channels + int(minibatch_std))

        # Small head on a downsampled copy of the input.
        self._small_side = min(_LOW_RES, short // 2)
        small_width = max(1, base_channels // 2)

        def small_channels(resolution: int) -> int:
            return min(max_channels, small_width * (self._small_side // resolution))

        small_layers: list[nn.Module] = [
            _conv(channels, small_width, 3, padding=1),
            _act(),
            _conv(small_width, small_width, 3, padding=1),
            _act(),
        ]
        resolution = self._small_side
        while resolution > _FEATURE_SIDE:
            small_layers.append(
                DownBlock(small_channels(resolution), small_channels(resolution // 2))
            )
            resolution //= 2
        self.small_body = nn.Sequential(*small_layers)
        self.small_head = LogitHead(small_channels(_FEATURE_SIDE))

        # Decoders (self-supervision, FastGAN): whole image and a quarter.
        self._whole_side = min(_LOW_RES, short)
        self._part_side = min(_LOW_RES, short // 2)
        decoder_width = min(max_channels, base_channels)
        self.decoder = Decoder(
            feature_channels, channels, _log2(self._whole_side // _FEATURE_SIDE), decoder_width
        )
        self.part_decoder = Decoder(
            crop_channels, channels, _log2(self._part_side // _FEATURE_SIDE), decoder_width
        )

    def _check_images(self, images: Tensor) -> None:
        expected = (self.channels, *self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"images must have shape (B, {expected[0]}, {expected[1]}, {expected[2]}) for this "
                f"discriminator; got {tuple(images.shape)}"
            )

    def _downsample(self, images: Tensor, short_side: int) -> Tensor:
        """Area-downsample (B, C, H, W) so that its short side is ``short_side``."""
        factor = min(images.shape[-2:]) // short_side
        return images if factor == 1 else F.avg_pool2d(images, factor)

    def forward(self, images: Tensor, reconstruct: bool = False) -> DiscriminatorOutput:
        """Score images (B, C, H, W) in [-1, 1]; see the class docstring."""
        self._check_images(images)
        batch = images.shape[0]
        return self._score(images, (batch,), batch if reconstruct else 0)[0]

    def score_pair(
        self, real: Tensor, fake: Tensor
    ) -> tuple[DiscriminatorOutput, DiscriminatorOutput]:
        """``(self(real, reconstruct=True), self(fake))`` in one pass over both batches.

        Fewer, larger kernels (what a GPU at a small batch needs), the same values: no operation
        mixes samples except the minibatch standard deviation, which is taken within each batch,
        and the random quarter is drawn for the real images as in the separate call.

        Args:
            real: (B_real, C, H, W) images to score and reconstruct.
            fake: (B_fake, C, H, W) images to score.
        """
        self._check_images(real)
        self._check_images(fake)
        both = torch.cat([real, fake])
        return self._score(both, (real.shape[0], fake.shape[0]), real.shape[0])

    def _score(
        self, images: Tensor, parts: tuple[int, ...], num_reconstructed: int
    ) -> list[DiscriminatorOutput]:
        """Score a batch made of ``parts`` (sizes along the batch) and reconstruct its first
        ``num_reconstructed`` images; one output per part, the reconstruction loss on the first."""
        x = self.stem(images)
        crop_features = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i + 1 == self._crop_index:
                crop_features = x
        if not self.minibatch_std:
            head_input = x
        elif len(parts) == 1:
            head_input = with_minibatch_std(x)
        else:
            head_input = torch.cat([with_minibatch_std(part) for part in x.split(parts)])
        logits = self.head(head_input)

        small = self._downsample(images, self._small_side)
        small_logits = self.small_head(self.small_body(small))

        loss = None
        if num_reconstructed:
            loss = self._reconstruction_loss(
                x[:num_reconstructed],
                crop_features[:num_reconstructed],
                images[:num_reconstructed].detach(),
            )
        return [
            DiscriminatorOutput(
                logits=part_logits,
                small_logits=part_small_logits,
                reconstruction_loss=loss if index == 0 else None,
            )
            for index, (part_logits, part_small_logits) in enumerate(
                zip(logits.split(parts), small_logits.split(parts), strict=True)
            )
        ]

    def _reconstruction_loss(self, features: Tensor, crop_features: Tensor, target: Tensor):
        """FastGAN's self-supervision: L1 of the whole image decoded from the 8x8 features plus L1
        of a random quarter decoded from the same quarter of the 16x16 features."""
        whole = self.decoder(features)
        whole_target = self._downsample(target, self._whole_side)

        # A random quarter per sample: crop the 16-pixel features and the image alike.
        batch = target.shape[0]
        quarter = torch.randint(0, 4, (batch,), device=target.device)
        rows = torch.arange(batch, device=target.device)
        feature_quarters = rearrange(
            crop_features, "b c (qi h) (qj w) -> b (qi qj) c h w", qi=2, qj=2
        )
        image_quarters = rearrange(target, "b c (qi h) (qj w) -> b (qi qj) c h w", qi=2, qj=2)
        part = self.part_decoder(feature_quarters[rows, quarter])
        part_target = self._downsample(image_quarters[rows, quarter], self._part_side)
        return F.l1_loss(whole, whole_target) + F.l1_loss(part, part_target)
