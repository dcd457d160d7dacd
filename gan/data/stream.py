"""Endless, shuffled, resumable batches from the in-memory uint8 images of
:func:`~fwp.gan.data.cache.load_images`, sharded over distributed ranks."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import torch
from einops import rearrange

from .errors import DataError
from .images import to_float

__all__ = ["DataStream"]


class DataStream:
    """Endless shuffled batches from an in-memory uint8 tensor; deterministic and resumable.

    Every epoch is a fresh permutation of all ``N`` images drawn from ``(seed, epoch)``. With
    ``world_size`` > 1 each epoch's permutation is dealt out to the ranks (``N // world_size``
    each, disjoint; the few left over are skipped that epoch), so every rank builds the same
    permutation and reads only its share. A batch that runs past the end of an epoch continues with
    the next epoch's permutation, so every image is used and ``batch_size`` may exceed ``N``.

    Args:
        images: uint8 ``(N, C, H, W)``; kept (moved) on ``device``.
        batch_size: images per batch (per rank).
        seed: the shuffling seed.
        device: where the images live and the batches are returned.
        rank, world_size: this process's share of each epoch (distributed training).
    """

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            if isinstance(images, torch.Tensor):
                got = f"{images.dtype} {tuple(images.shape)}"
            else:
                got = type(images).__name__
            raise DataError(
                f"DataStream needs a uint8 tensor (N, C, H, W) from load_images, got {got}"
            )
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"need 0 <= rank < world_size, got {rank=}, {world_size=}")
        if images.shape[0] < world_size:
            raise DataError(
                f"{images.shape[0]} images cannot be split over {world_size} ranks: use more data"
            )
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        self.position = 0  # index into this rank's share of the current epoch
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    @property
    def num_images(self) -> int:
        """``N``, the number of images the stream draws from (on all ranks together)."""
        return int(self.images.shape[0])

    @property
    def shard_size(self) -> int:
        """How many images this rank reads per epoch."""
        return self.num_images // self.world_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """This rank's image indices for ``epoch``, int64 ``(shard_size,)`` on the CPU."""
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63 - 1))
        perm = torch.randperm(self.num_images, generator=gen)
        shards = rearrange(
            perm[: self.shard_size * self.world_size], "(s w) -> w s", w=self.world_size
        )
        return shards[self.rank].contiguous()

    def _current_order(self) -> torch.Tensor:
        if self._order_epoch != self.epoch or self._order is None:
            self._order, self._order_epoch = self.epoch_order(self.epoch), self.epoch
        return self._order

    def next_indices(self) -> torch.Tensor:
        """The indices of the next batch, int64 ``(batch_size,)``; advances the stream."""
        parts, need = [], self.batch_size
        while need > 0:
            order = self._current_order()
            take = order[self.position : self.position + need]
            parts.append(take)
            need -= take.numel()
            self.position += take.numel()
            if self.position >= self.shard_size:
                self.epoch, self.position = self.epoch + 1, 0
        return torch.cat(parts)

    def next_batch(self) -> torch.Tensor:
        """float32 ``(batch_size, C, H, W)`` in ``[-1, 1]`` on ``device``."""
        idx = self.next_indices().to(self.device)
        return to_float(self.images.index_select(0, idx))

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue with exactly the same order."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "num_images": self.num_images,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`. The seed is taken from ``state``."""
        missing = {"epoch", "position", "seed"} - set(state)
        if missing:
            raise DataError(f"data stream state lacks {sorted(missing)}: is it a DataStream state?")
        n = state.get("num_images", self.num_images)
        if n != self.num_images:
            raise DataError(
                f"the saved data stream ran over {n} images but this one has {self.num_images}: "
                "load the same dataset (source, size, limit) as the run being resumed"
            )
        epoch, position = int(state["epoch"]), int(state["position"])
        if state.get("world_size", self.world_size) != self.world_size:
            warnings.warn(
                f"resuming a data stream saved with world_size={state['world_size']} on "
                f"world_size={self.world_size}: restarting epoch {epoch} from its beginning",
                stacklevel=2,
            )
            position = 0
        if epoch < 0 or not 0 <= position < self.shard_size:
            raise DataError(f"bad data stream state: epoch={epoch}, position={position}")
        self.seed, self.epoch, self.position = int(state["seed"]), epoch, position
        self._order, self._order_epoch = None, -1
