"""The discriminator that trains painters adversarially, in two architectures.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) trains its painters against the
discriminator of Lightweight GAN ("Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis", Liu et al., ICLR 2021): a main path of residual down-sampling blocks
with a logit head, a second head on a small copy of the input, and decoders that reconstruct real
images from the main path's features (self-supervision). :class:`LightweightDiscriminator` runs
that shape; an *architecture* builds its parts
(:class:`~fwp.gan.networks.parts.DiscriminatorParts`):

- ``"fwp"`` (the default): fwp's own design, written from the FastGAN paper
  (:mod:`fwp.gan.networks.fwp_parts`);
- ``"official"``: the discriminator of the official FPA code (lucidrains/lightweight-gan), with
  linear attention at 32x32 and one output logit by default
  (:mod:`fwp.gan.networks.official_parts`); 12,326,632 parameters at 64x64 RGB, as the official.

The forward pass has no data-dependent Python control flow (only the ``reconstruct`` flag and
static shapes); the random quarter is chosen with ``torch.randint`` on the images' device. No
operation mixes samples except the optional minibatch standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from .fwp_parts import build_fwp_parts
from .official_parts import build_official_parts
from .parts import RECONSTRUCTION_LOSSES, DiscriminatorParts, resize, short_side_size

__all__ = [
    "DISCRIMINATOR_ARCHITECTURES",
    "DiscriminatorOutput",
    "LightweightDiscriminator",
    "check_discriminator_size",
]

MIN_SIDE = 16
MAX_SIDE = 1024

#: architecture name -> (builder of its parts, default attention_resolutions, default output_size)
DISCRIMINATOR_ARCHITECTURES: dict[
    str, tuple[Callable[..., DiscriminatorParts], tuple[int, ...], int]
] = {
    "fwp": (build_fwp_parts, (), 5),
    "official": (build_official_parts, (32,), 1),
}
OUTPUT_SIZES = (1, 5)


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
        logits: (B,) main-head logits (the mean of the head's patch logits).
        small_logits: (B,) logits of the head on the downsampled copy of the input.
        reconstruction_loss: scalar self-supervised loss, or ``None`` unless ``reconstruct``.
    """

    logits: Tensor
    small_logits: Tensor
    reconstruction_loss: Tensor | None = None


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


class LightweightDiscriminator(nn.Module):
    """Lightweight-GAN-shaped discriminator with two logit heads and self-supervised decoders.

    Args:
        image_size: ``(H, W)``, each a power of two in [16, 1024] (see
            :func:`check_discriminator_size`).
        channels: image channels C.
        base_channels: width scale: the width at 64 pixels (short side; see the architecture's
            module for how widths follow from it).
        max_channels: cap on any feature width.
        minibatch_std: append the batch's feature spread before the main head (anti-collapse).
        architecture: a name in :data:`DISCRIMINATOR_ARCHITECTURES`, "fwp" or "official".
        attention_resolutions: short sides of the blocks' inputs at which a residual linear
            attention precedes the block (sides that images of ``image_size`` do not pass
            through are unused, as in the official code); ``None``: the architecture's default
            ("fwp": none, "official": (32,)).
        output_size: 5 (a 5x5 grid of patch logits on the 8x8 features, averaged) or 1 (one
            logit); ``None``: the architecture's default ("fwp": 5, "official": 1).

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
        architecture: str = "fwp",
        attention_resolutions: tuple[int, ...] | None = None,
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        check_discriminator_size(image_size)
        if channels < 1 or base_channels < 2 or max_channels < 1:
            raise ValueError(
                f"channels, base_channels and max_channels must be positive (base_channels >= 2); "
                f"got {channels}, {base_channels}, {max_channels}"
            )
        if architecture not in DISCRIMINATOR_ARCHITECTURES:
            raise ValueError(
                f"discriminator option architecture must be one of "
                f"{tuple(DISCRIMINATOR_ARCHITECTURES)}; got {architecture!r}"
            )
        build, default_attention, default_output_size = DISCRIMINATOR_ARCHITECTURES[architecture]
        attention = tuple(
            default_attention if attention_resolutions is None else attention_resolutions
        )
        output_size = default_output_size if output_size is None else output_size
        if any(not _is_power_of_two(r) or r < MIN_SIDE for r in attention):
            raise ValueError(
                f"discriminator option attention_resolutions must hold powers of two >= "
                f"{MIN_SIDE} (the blocks' input sides); got {list(attention)}"
            )
        h, w = image_size
        if output_size not in OUTPUT_SIZES:
            raise ValueError(
                f"discriminator option output_size must be one of {OUTPUT_SIZES}; "
                f"got {output_size!r}"
            )
        self.image_size = (h, w)
        self.channels = channels
        self.architecture = architecture
        self.minibatch_std = minibatch_std
        parts = build(
            (h, w), channels, base_channels, max_channels, minibatch_std, attention, output_size
        )
        self.stem = parts.stem
        self.blocks = parts.blocks
        self.head = parts.head
        self.small_body = parts.small_body
        self.small_head = parts.small_head
        self.decoder = parts.decoder
        self.part_decoder = parts.part_decoder
        self._crop_index = parts.crop_index
        self._small_size = short_side_size((h, w), parts.small_side)
        self._resize = parts.resize
        self._loss = RECONSTRUCTION_LOSSES[parts.loss]

    def _check_images(self, images: Tensor) -> None:
        expected = (self.channels, *self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"images must have shape (B, {expected[0]}, {expected[1]}, {expected[2]}) for this "
                f"discriminator; got {tuple(images.shape)}"
            )

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

        small = resize(images, self._small_size, self._resize)
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
        """FastGAN's self-supervision: the loss of the whole image decoded from the last features,
        plus (with a part decoder) that of a random quarter decoded from the same quarter of the
        crop features; targets are the images resized to the decoders' outputs."""
        whole = self.decoder(features)
        loss = self._loss(whole, resize(target, tuple(whole.shape[-2:]), self._resize))
        if self.part_decoder is None:
            return loss

        # A random quarter per sample: crop the features and the image alike.
        batch = target.shape[0]
        quarter = torch.randint(0, 4, (batch,), device=target.device)
        rows = torch.arange(batch, device=target.device)
        feature_quarters = rearrange(
            crop_features, "b c (qi h) (qj w) -> b (qi qj) c h w", qi=2, qj=2
        )
        image_quarters = rearrange(target, "b c (qi h) (qj w) -> b (qi qj) c h w", qi=2, qj=2)
        part = self.part_decoder(feature_quarters[rows, quarter])
        part_target = resize(image_quarters[rows, quarter], tuple(part.shape[-2:]), self._resize)
        return loss + self._loss(part, part_target)
