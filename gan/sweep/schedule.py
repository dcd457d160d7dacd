"""Where a sweep's cells train and how many at once: a :class:`Schedule` (child processes on the
CPU, one per GPU, or inside this process), validated before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import ConfigError
from .grid import Cell

__all__ = ["Schedule", "parse_gpus"]


def parse_gpus(text: str) -> tuple[str, ...]:
    """``"0,1,2"`` -> ``("0", "1", "2")``: distinct GPU ids (their existence is checked by
    :meth:`Schedule.check_devices`)."""
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not gpus or any(not g.isdigit() for g in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"--gpus expects distinct GPU ids such as 0,1,2; got {text!r}")
    return tuple(gpus)


@dataclass(frozen=True)
class Schedule:
    """Where and how many cells train at once.

    Attributes:
        jobs: child processes at once on the CPU (each gets ``OMP_NUM_THREADS`` = cores / jobs
            unless the environment sets it).
        gpus: GPU ids: one cell at a time per GPU, each child sees only its GPU (as ``cuda``).
        in_process: train in this process, one cell after another (no isolation).
    """

    jobs: int = 1
    gpus: tuple[str, ...] = ()
    in_process: bool = False

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1; got {self.jobs}")
        if self.gpus and self.jobs > 1:
            raise ConfigError("--gpus places one cell per GPU; do not combine it with --jobs")
        if self.in_process and (self.gpus or self.jobs > 1):
            raise ConfigError("--in-process trains one cell at a time; drop --jobs/--gpus")

    @property
    def slots(self) -> int:
        """Cells trained at once."""
        return len(self.gpus) if self.gpus else self.jobs

    def check_cells(self, cells: Sequence[Cell]) -> None:
        """Refuse a device setting that one-cell-per-GPU placement would contradict."""
        if not self.gpus:
            return
        devices = sorted({c.config.run.device for c in cells} - {"auto", "cuda", "cuda:0"})
        if devices:
            raise ConfigError(
                f"with --gpus every cell sees its one GPU as cuda:0; drop --device {devices[0]}"
            )

    def check_devices(self) -> None:
        """Refuse GPU ids this machine does not have."""
        if not self.gpus:
            return
        import torch

        available = torch.cuda.device_count()
        missing = [g for g in self.gpus if int(g) >= available]
        if missing:
            raise ConfigError(
                f"--gpus {','.join(self.gpus)}: this machine has {available} CUDA device(s); "
                f"no GPU {missing[0]}"
            )
