"""The pool of pseudo-negatives of introspective training (INNg, Lazarow, Jin & Tu, ICCV 2017;
WINN, Lee, Xu, Fan & Tu, CVPR 2018): every pseudo-negative synthesised so far, up to a bound
(oldest dropped first), kept as uint8 images so that it is small enough to live in every
checkpoint; the critic trains on draws from it with replacement."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data import to_float, to_uint8

__all__ = ["NegativePool"]


class NegativePool:
    """At most ``capacity`` uint8 images (N, C, H, W), newest last.

    Args:
        capacity: the most images kept (> 0); adding beyond it drops the oldest.
        shape: (C, H, W) of an image.
        device: where the images live.

    Disk and memory use: ``capacity * C * H * W`` bytes when full.
    """

    def __init__(self, capacity: int, shape: tuple[int, int, int], device: torch.device) -> None:
        if capacity < 1:
            raise ValueError(f"the pool needs a capacity of at least 1; got {capacity}")
        self.capacity = capacity
        self.images = torch.empty((0, *shape), dtype=torch.uint8, device=device)

    def __len__(self) -> int:
        return self.images.shape[0]

    def add(self, images: Tensor) -> None:
        """Append float images (B, C, H, W) in [-1, 1] (quantised to uint8), dropping the oldest
        beyond the capacity."""
        if images.shape[1:] != self.images.shape[1:]:
            raise ValueError(
                f"pool images are {tuple(self.images.shape[1:])}; got {tuple(images.shape[1:])}"
            )
        joined = torch.cat([self.images, to_uint8(images).to(self.images.device)])
        self.images = joined[-self.capacity :]

    def sample(self, num: int) -> Tensor:
        """``num`` images drawn uniformly with replacement (indices from torch's global
        generator on the pool's device), as float (num, C, H, W) in [-1, 1]."""
        if len(self) == 0:
            raise RuntimeError("cannot sample from an empty pool of pseudo-negatives")
        index = torch.randint(len(self), (num,), device=self.images.device)
        return to_float(self.images[index])

    def state_dict(self) -> Tensor:
        """The pool as it is: uint8 (N, C, H, W)."""
        return self.images

    def load_state_dict(self, images: Tensor) -> None:
        """Restore exactly the pool that :meth:`state_dict` returned."""
        if images.dtype != torch.uint8 or images.shape[1:] != self.images.shape[1:]:
            raise ValueError(
                f"a pool of uint8 images {tuple(self.images.shape[1:])} expected; got "
                f"{images.dtype} {tuple(images.shape)}"
            )
        self.images = images.to(self.images.device)[-self.capacity :].clone()
