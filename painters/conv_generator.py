"""The convolutional baseline: the Lightweight GAN generator.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) compares its painters with the
generator of Lightweight GAN ("Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis", Liu et al., ICLR 2021), as implemented in lucidrains/lightweight-gan
and used by the official FPA code as its ``base`` model. This module is written from that
architecture:

- z (B, latent_dim) is read as a 1x1 map; a 4x4 transposed conv to 2 * latent_dim channels, batch
  norm and a GLU give (B, latent_dim, 4, 4), normalised to unit length over channels per pixel;
- one up-sampling layer per doubling up to the image size: nearest 2x up-sampling, a fixed 3x3
  blur, a 4x4 conv ("same" padding, 2 * width channels), a learned-strength noise input, batch
  norm and a GLU. The width at resolution ``s`` is ``min(8192 / s, max_channels)``, and 3 for
  layers whose input is 256 pixels or larger (as in the official code);
- at the input resolutions in ``attention_resolutions``, a residual channel-normed
  :class:`~fwp.painters.layers.LinearLocalAttention` before the layer;
- skip-layer excitation (FastGAN) from 16 to 128, 32 to 256, 64 to 512 and 128 to 1024 pixels,
  where the image is that large: a global-context gate computed from the small map multiplies
  the large one (none at 64x64);
- a 3x3 conv to the image channels, then ``output_activation``.

Weights are initialised as in the official code: He-normal for every (non-transposed) conv,
PyTorch defaults otherwise, the noise strengths at zero.

The official code trains this generator on images in [0, 1] without an output activation; fwp's
images are in [-1, 1], so the default ``output_activation`` is tanh ("none" keeps the official
unbounded output). Batch norm makes the output of a batch depend on the batch in training mode;
sampling in eval mode uses the running statistics.

A conv generator has no painting process. :meth:`ConvGenerator.paint` with ``frames=True``
describes its output as a painting of one step: one update, the whole image drawn on a blank
(zero) canvas, so that code showing painting strips works with it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from fwp.rules import PaintResult

from .layers import Blur, LinearLocalAttention, PreNormResidual
from .painter import OUTPUT_ACTIVATIONS, sample_images

#: skip-layer excitations: (log2 of the source resolution, log2 of the target resolution)
_EXCITATIONS = ((4, 7), (5, 8), (6, 9), (7, 10))
_MIN_SIDE, _MAX_SIDE = 8, 1024


@dataclass(frozen=True)
class ConvGeneratorConfig:
    """Everything that defines a :class:`ConvGenerator`.

    Attributes:
        size: side of the square images (a power of two in [8, 1024]).
        channels: image channels (1 or 3).
        latent_dim: size of z (the official ``--latent_dim``, 256).
        max_channels: cap on any layer's width (the official ``--fmap_max``, 512).
        attention_resolutions: input sides of the layers preceded by attention (the paper: 32);
            sides the generator does not have at ``size`` are unused, as in the official code.
        output_activation: "tanh" (images in [-1, 1]) or "none" (the official unbounded output).
    """

    size: int = 64
    channels: int = 3
    latent_dim: int = 256
    max_channels: int = 512
    attention_resolutions: tuple[int, ...] = (32,)
    output_activation: str = "tanh"

    def validate(self) -> None:
        """Raise ``ValueError`` naming the option to change when the configuration is invalid."""
        size = self.size
        if (
            not isinstance(size, int)
            or size < 1
            or size & (size - 1)
            or not (_MIN_SIDE <= size <= _MAX_SIDE)
        ):
            raise ValueError(
                f"conv generator option size must be a power of two between {_MIN_SIDE} and "
                f"{_MAX_SIDE}; got {size!r}"
            )
        if self.channels not in (1, 3):
            raise ValueError(
                f"conv generator option channels must be 1 or 3; got {self.channels!r}"
            )
        for name in ("latent_dim", "max_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"conv generator option {name} must be a positive integer; got {value!r}"
                )
        bad = [
            r for r in self.attention_resolutions if not isinstance(r, int) or r < 4 or r & (r - 1)
        ]
        if bad:
            raise ValueError(
                f"conv generator option attention_resolutions must hold powers of two >= 4 (layer "
                f"input sides); got {list(self.attention_resolutions)}"
            )
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"conv generator option output_activation must be one of {OUTPUT_ACTIVATIONS}; "
                f"got {self.output_activation!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ConvGeneratorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown conv generator options {unknown}; valid options are {sorted(known)}"
            )
        values = dict(values)
        if "attention_resolutions" in values:
            values["attention_resolutions"] = tuple(values["attention_resolutions"])
        return cls(**values)


class Noise(nn.Module):
    """Adds ``strength * N(0, 1)`` noise, one value per pixel shared by all channels.

    (B, C, H, W) -> (B, C, H, W); the strength is learned and starts at zero.
    """

    def __init__(self) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        return x + self.strength * torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)


class GlobalContext(nn.Module):
    """Skip-layer excitation gate: (B, C_in, h, w) -> per-channel gates (B, C_out, 1, 1) in (0, 1).

    Attention pooling (a 1x1 conv to one logit per pixel, softmax over pixels), then a 1x1 conv
    bottleneck of ``max(3, C_out / 2)`` channels with LeakyReLU(0.1) and a sigmoid (Cao et al.,
    "GCNet", as used by Lightweight GAN).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = max(3, out_channels // 2)
        self.to_logit = nn.Conv2d(in_channels, 1, 1)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, out_channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        weights = rearrange(self.to_logit(x), "b 1 h w -> b (h w)").softmax(dim=-1)
        pooled = torch.einsum("bn,bcn->bc", weights, rearrange(x, "b c h w -> b c (h w)"))
        return self.net(rearrange(pooled, "b c -> b c 1 1"))


class UpBlock(nn.Module):
    """(B, C_in, s, s) -> (B, C_out, 2s, 2s): up-sample, blur, 4x4 conv, noise, batch norm, GLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2.0, mode="nearest"),
            Blur(),
            nn.ZeroPad2d((2, 1, 2, 1)),  # "same" padding of an even kernel
            nn.Conv2d(in_channels, 2 * out_channels, 4),
            Noise(),
            nn.BatchNorm2d(2 * out_channels),
            nn.GLU(dim=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvGenerator(nn.Module):
    """The Lightweight GAN generator: z (B, latent_dim) -> images (B, C, size, size).

    Args:
        config: its :class:`ConvGeneratorConfig` (the defaults are the paper's baseline at 64x64).

    It offers the interface of :class:`~fwp.painters.Generator` that training and sampling use:
    ``forward``, :meth:`paint`, :attr:`latent_dim`, :meth:`sample_latents` and :meth:`sample`.
    """

    def __init__(self, config: ConvGeneratorConfig | None = None) -> None:
        super().__init__()
        config = config or ConvGeneratorConfig()
        config.validate()
        self.config = config
        levels = int(math.log2(config.size))  # the image is 2**levels pixels wide

        def width(level: int) -> int:
            """Channels of the layer that outputs 2**(level + 1) pixels."""
            return 3 if level >= 8 else min(2 ** (12 - level), config.max_channels)

        latent = config.latent_dim
        self.initial = nn.Sequential(
            nn.ConvTranspose2d(latent, 2 * latent, 4),
            nn.BatchNorm2d(2 * latent),
            nn.GLU(dim=1),
        )
        self.attention = nn.ModuleDict()
        self.excitation = nn.ModuleDict()
        self.layers = nn.ModuleList()
        channels = latent
        for level in range(2, levels):  # the layer whose input is 2**level pixels wide
            if 2**level in config.attention_resolutions:
                self.attention[str(level)] = PreNormResidual(
                    channels, LinearLocalAttention(channels)
                )
            self.layers.append(UpBlock(channels, width(level)))
            channels = width(level)
        for source, target in _EXCITATIONS:
            if target <= levels:
                # gate the output of the layer that reaches 2**target pixels from 2**source pixels
                self.excitation[str(target)] = GlobalContext(width(source - 1), width(target - 1))
        self.out = nn.Conv2d(channels, config.channels, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal conv weights (fan in, LeakyReLU gain with slope 0), as in the official code."""
        for module in self.modules():
            if type(module) in (nn.Conv2d, nn.Linear):
                nn.init.kaiming_normal_(
                    module.weight, a=0, mode="fan_in", nonlinearity="leaky_relu"
                )

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def forward(self, z: Tensor) -> Tensor:
        """z (B, latent_dim) -> images (B, C, size, size)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"z must have shape (B, {self.config.latent_dim}); got {tuple(z.shape)}"
            )
        x = F.normalize(self.initial(rearrange(z, "b d -> b d 1 1")), dim=1)
        gates: dict[int, Tensor] = {}
        for level, layer in zip(range(2, 2 + len(self.layers)), self.layers, strict=True):
            if str(level) in self.attention:
                x = self.attention[str(level)](x)
            x = layer(x)  # now 2**(level + 1) pixels wide
            for source, target in _EXCITATIONS:
                if source == level + 1 and str(target) in self.excitation:
                    gates[target] = self.excitation[str(target)](x)
            if level + 1 in gates:
                x = x * gates[level + 1]
        x = self.out(x)
        return torch.tanh(x) if self.config.output_activation == "tanh" else x

    def paint(self, z: Tensor, frames: bool = False) -> Tensor | PaintResult:
        """Images from latents z (B, latent_dim), like :meth:`forward`.

        With ``frames=True``: a :class:`~fwp.rules.PaintResult` of a one-step painting, T = 1:
        ``updates`` (1, B, C, H, W) is the image itself (drawn on a zero canvas) and ``partials``
        (1, B, C, H, W) too.
        """
        images = self(z)
        if not frames:
            return images
        return PaintResult(image=images, updates=images[None], partials=images[None])

    def sample_latents(
        self, num: int, rng: torch.Generator | None = None, device: torch.device | None = None
    ) -> Tensor:
        """Standard-normal latents (num, latent_dim) on the generator's device."""
        device = device or next(self.parameters()).device
        return torch.randn(num, self.config.latent_dim, generator=rng).to(device)

    def sample(self, num: int, batch_size: int = 256, seed: int = 0) -> Tensor:
        """``num`` images (num, C, H, W) from fixed-seed latents and noise, in batches, on CPU.

        The noise inputs are drawn from the global generator seeded with ``seed`` (its state is
        restored afterwards), batch by batch: the same arguments give the same images. The
        latents do not depend on ``batch_size``; the noise does, once its strengths are not zero.
        """
        device = next(self.parameters()).device
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return sample_images(self, num, batch_size, seed)
