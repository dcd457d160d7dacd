"""Descriptors: the ConvNets f(x; θ) of the energy-based models that teach painters cooperatively.

"Cooperative Training of Descriptor and Generator Networks" (Xie, Lu, Gao, Zhu & Wu, TPAMI 2018,
arXiv:1609.09408, "CoopNets") defines the descriptor as the exponential tilting of a Gaussian
reference distribution, p(x; θ) ∝ exp(f(x; θ)) N(x; 0, s²I), with a bottom-up ConvNet f that maps
an image to one number. Its MCMC (Langevin dynamics, :mod:`fwp.gan.objectives.cooperative`) needs
∂f/∂x, so every descriptor here is smooth enough almost everywhere (LeakyReLU or SiLU) and has no
batch-dependent layers: f of one image never depends on the other images of the batch.

Descriptors are registered configurations of two families (``coop.descriptor`` picks one):

- ``coopnets``: the descriptor of CoopNets' official implementation for natural images at 64x64:
  conv 5x5/2 -> w, conv 3x3/2 -> 2w, conv 3x3/1 -> 4w (each followed by LeakyReLU 0.2), then a
  fully connected layer over the whole (H/4 x W/4) feature map to 100 outputs whose sum is f.
  Weights start as N(0, 0.01²), biases at 0, as there. At 32x32 the same layers read 8x8 features.
- ``coopnets-small``: the official implementation's variant for small (28x28) images: three
  conv 4x4/2 layers (w, 2w, 4w) and the same head; at 32x32 its head reads 4x4 features.
- ``resnet``: a stronger option (not in the paper): a 3x3 stem, residual blocks with SiLU ("swish")
  that halve the resolution until its short side is 4, summed over positions, then a linear layer
  to the outputs. He initialisation, residual branches scaled by 1/sqrt(2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

__all__ = [
    "DESCRIPTORS",
    "ConvDescriptor",
    "Descriptor",
    "DescriptorSpec",
    "ResidualDescriptor",
    "build_descriptor",
    "check_descriptor_size",
]

_SLOPE = 0.2  # LeakyReLU slope of the CoopNets descriptor


class Descriptor(nn.Module):
    """Base class: images (B, C, H, W) -> the descriptor's f, one number per image (B,).

    ``outputs(x)`` gives the (B, num_outputs) head before the sum; f is their sum, as in the
    official CoopNets implementation (whose losses sum its 100 outputs).
    """

    def outputs(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, images: Tensor) -> Tensor:
        """f(x): (B, C, H, W) -> (B,)."""
        return self.outputs(images).sum(dim=1)


def _check_images(images: Tensor, channels: int, size: tuple[int, int]) -> None:
    if images.ndim != 4 or images.shape[1] != channels or tuple(images.shape[2:]) != size:
        raise ValueError(
            f"the descriptor takes images (B, {channels}, {size[0]}, {size[1]}); "
            f"got shape {tuple(images.shape)}"
        )


@dataclass(frozen=True)
class ConvLayer:
    """One convolution of a :class:`ConvDescriptor`: kernel side, stride, width as a multiple of
    the base width."""

    kernel: int
    stride: int
    width_multiple: int


def _out_side(side: int, layer: ConvLayer) -> int:
    # "same" padding of TensorFlow: the output side is ceil(side / stride)
    return math.ceil(side / layer.stride)


def _same_padding(side: int, layer: ConvLayer) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's "SAME" along one side (after >= before)."""
    total = max((_out_side(side, layer) - 1) * layer.stride + layer.kernel - side, 0)
    return total // 2, total - total // 2


class ConvDescriptor(Descriptor):
    """The CoopNets descriptor family: plain strided convolutions with LeakyReLU 0.2, then one
    fully connected layer over the last feature map to ``num_outputs`` numbers (their sum is f).

    Args:
        size: (H, W) of the images.
        channels: image channels (1 or 3).
        layers: the convolutions, in order.
        width: the base width w (the official implementation's is 64).
        num_outputs: outputs of the fully connected layer (100 in the official implementation).
        init_std: standard deviation of the initial weights (0.01 there; biases start at 0).
    """

    def __init__(
        self,
        size: tuple[int, int],
        channels: int,
        layers: tuple[ConvLayer, ...],
        width: int = 64,
        num_outputs: int = 100,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        self.size, self.channels = (int(size[0]), int(size[1])), channels
        self.convs = nn.ModuleList()
        self.paddings: list[tuple[int, int, int, int]] = []
        height, wide, in_channels = self.size[0], self.size[1], channels
        for layer in layers:
            out_channels = width * layer.width_multiple
            self.convs.append(nn.Conv2d(in_channels, out_channels, layer.kernel, layer.stride))
            top, bottom = _same_padding(height, layer)
            left, right = _same_padding(wide, layer)
            self.paddings.append((left, right, top, bottom))
            height, wide = _out_side(height, layer), _out_side(wide, layer)
            in_channels = out_channels
        self.feature_shape = (in_channels, height, wide)
        self.head = nn.Linear(in_channels * height * wide, num_outputs)
        for module in (*self.convs, self.head):
            nn.init.normal_(module.weight, std=init_std)
            nn.init.zeros_(module.bias)

    def outputs(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_outputs)."""
        _check_images(images, self.channels, self.size)
        x = images
        for conv, padding in zip(self.convs, self.paddings, strict=True):
            x = F.leaky_relu(conv(F.pad(x, padding)), _SLOPE)
        return self.head(rearrange(x, "b c h w -> b (c h w)"))


class _ResidualBlock(nn.Module):
    """x -> (avgpool(1x1 conv x) + avgpool(conv(silu(conv(silu x))))) / sqrt(2), halving H, W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.conv2(F.silu(self.conv1(F.silu(x))))
        return F.avg_pool2d(self.skip(x) + branch, 2) / math.sqrt(2.0)


class ResidualDescriptor(Descriptor):
    """A residual descriptor with SiLU ("swish") activations (an option beyond the paper).

    A 3x3 stem of width w, then residual blocks that halve the resolution (doubling the width, at
    most 8w) until the short side is 4 or odd, SiLU, the sum over positions, and a linear layer to
    ``num_outputs`` numbers whose sum is f.
    """

    def __init__(
        self, size: tuple[int, int], channels: int, width: int = 64, num_outputs: int = 100
    ) -> None:
        super().__init__()
        self.size, self.channels = (int(size[0]), int(size[1])), channels
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        blocks, side, current = [], min(self.size), width
        while side > 4 and side % 2 == 0:
            wider = min(current * 2, 8 * width)
            blocks.append(_ResidualBlock(current, wider))
            current, side = wider, side // 2
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(current, num_outputs)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def outputs(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_outputs)."""
        _check_images(images, self.channels, self.size)
        features = F.silu(self.blocks(self.stem(images)))
        return self.head(reduce(features, "b c h w -> b c", "sum"))


@dataclass(frozen=True)
class DescriptorSpec:
    """A registered descriptor: how to build it and the smallest image side it takes."""

    build: Callable[[tuple[int, int], int, int, int], Descriptor]
    min_side: int
    description: str


def _conv_family(layers: tuple[ConvLayer, ...]) -> Callable[..., Descriptor]:
    def build(size: tuple[int, int], channels: int, width: int, num_outputs: int) -> Descriptor:
        return ConvDescriptor(size, channels, layers, width=width, num_outputs=num_outputs)

    return build


#: descriptor architectures by name (``coop.descriptor``)
DESCRIPTORS: dict[str, DescriptorSpec] = {
    "coopnets": DescriptorSpec(
        _conv_family((ConvLayer(5, 2, 1), ConvLayer(3, 2, 2), ConvLayer(3, 1, 4))),
        min_side=4,
        description="CoopNets' 64x64 descriptor: conv 5x5/2, 3x3/2, 3x3/1, fc to 100 outputs",
    ),
    "coopnets-small": DescriptorSpec(
        _conv_family((ConvLayer(4, 2, 1), ConvLayer(4, 2, 2), ConvLayer(4, 2, 4))),
        min_side=8,
        description="CoopNets' small-image descriptor: three conv 4x4/2, fc to 100 outputs",
    ),
    "resnet": DescriptorSpec(
        lambda size, channels, width, outputs: ResidualDescriptor(size, channels, width, outputs),
        min_side=4,
        description="residual blocks with SiLU, summed over positions, linear to the outputs",
    ),
}


def check_descriptor_size(name: str, size: tuple[int, int]) -> None:
    """Raise ``ValueError`` naming the option when descriptor ``name`` cannot take ``size``."""
    if name not in DESCRIPTORS:
        raise ValueError(
            f"coop.descriptor {name!r} is unknown; choose one of {', '.join(DESCRIPTORS)}"
        )
    if min(size) < DESCRIPTORS[name].min_side:
        raise ValueError(
            f"coop.descriptor {name!r} needs images of at least {DESCRIPTORS[name].min_side} "
            f"pixels a side; got {size[0]}x{size[1]} (data.size)"
        )


def build_descriptor(
    name: str, size: tuple[int, int], channels: int, width: int = 64, num_outputs: int = 100
) -> Descriptor:
    """The registered descriptor ``name`` for images (C, H, W) = (channels, *size).

    Args:
        name: a key of :data:`DESCRIPTORS`.
        size: (H, W).
        channels: 1 or 3.
        width: base width w.
        num_outputs: outputs of the last layer (their sum is f).
    """
    check_descriptor_size(name, size)
    if width < 1 or num_outputs < 1:
        raise ValueError(
            f"coop.descriptor_width and coop.descriptor_outputs must be positive; got {width}, "
            f"{num_outputs}"
        )
    return DESCRIPTORS[name].build((size[0], size[1]), channels, width, num_outputs)
