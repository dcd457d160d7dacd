"""What a discriminator architecture builds: the parts that
:class:`~fwp.gan.networks.discriminator.LightweightDiscriminator` runs.

Every architecture has the same shape (Liu et al., "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis", ICLR 2021): a main path of down-sampling blocks with a
logit head, a second head on a small copy of the input, and decoders that reconstruct the input
from the main path's features (self-supervision, run on real images only). An architecture is a
function that builds these parts; the discriminator owns the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

RESIZE_MODES = ("area", "nearest")
RECONSTRUCTION_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
}


@dataclass
class DiscriminatorParts:
    """The modules and settings of one discriminator architecture.

    Attributes:
        stem: images (B, C, H, W) -> features at the first block's input.
        blocks: down-sampling blocks, each halving the resolution; the last one's output is
            read by ``head`` and ``decoder``.
        head: last features (B, C', h, w) (one channel more with the minibatch standard
            deviation) -> logits (B,).
        small_body: the input resized to a short side of ``small_side`` -> features.
        small_head: ``small_body``'s features -> logits (B,).
        decoder: last features -> a reconstruction of the whole image, in image channels.
        part_decoder: one quarter of the crop features -> a reconstruction of that quarter of
            the image, or ``None`` (no quarter reconstruction).
        crop_index: which features the quarter is cut from: 0 is the stem's output, ``i`` the
            output of ``blocks[i - 1]``.
        small_side: short side of the small head's input.
        resize: how images are resized for the small head and the reconstruction targets:
            "area" (average pooling by an integer factor) or "nearest".
        loss: reconstruction loss, "l1" or "mse".
    """

    stem: nn.Module
    blocks: nn.ModuleList
    head: nn.Module
    small_body: nn.Module
    small_head: nn.Module
    decoder: nn.Module
    part_decoder: nn.Module | None
    crop_index: int
    small_side: int
    resize: str
    loss: str

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}; got {self.resize!r}")
        if self.loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"loss must be one of {tuple(RECONSTRUCTION_LOSSES)}; got {self.loss!r}"
            )


def resize(images: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Resize images (B, C, H, W) to (B, C, *size).

    "area" averages blocks of an integer factor (``size`` must divide (H, W) by the same factor);
    "nearest" picks the nearest pixel (up or down).
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if mode == "area":
        return F.avg_pool2d(images, images.shape[-2] // size[0])
    return F.interpolate(images, size=size, mode="nearest")


def short_side_size(shape: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(h, w) with the aspect ratio of ``shape`` (powers of two) and short side ``short_side``."""
    h, w = shape
    short = min(h, w)
    return (h * short_side // short, w * short_side // short)


class LogitMean(nn.Module):
    """Patch logits (B, 1, h, w) from ``net`` averaged to one logit per image (B,)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).mean(dim=(1, 2, 3))
