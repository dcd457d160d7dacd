"""One rank of the data-parallel checks in test_distributed.py, launched by torchrun.

    python -m torch.distributed.run --nproc-per-node 2 ddp_worker.py OUT_DIR

1. ``OUT_DIR/ddp``: trains the tiny configuration for :data:`STEPS` steps in float64 with
   per-sample randomness (:class:`SampleRandomness`), so that a single process on the global
   batch can draw the same latents; every rank saves its parameters to ``OUT_DIR/rank{R}.pt``.
   (float64: in float32 the rounding of a gradient that cancels to zero in one process is not
   zero in the other, and Adam, normalising it, turns it into a full learning-rate step; in
   float64 that rounding stays far below Adam's epsilon.) Ranks other
   than 0 list in ``OUT_DIR/rank{R}-writes.json`` every file they opened for writing, created,
   renamed or removed under the run directory (Python audit events).
2. ``OUT_DIR/straight`` and ``OUT_DIR/split``: the same run with each rank's own random draws,
   straight to :data:`STEPS` steps, and stopped at half-way then resumed from its checkpoint in
   new Trainers; the test compares their checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fwp_test_utils import tiny_config

from fwp.gan import distributed
from fwp.gan.trainer import Trainer

#: steps of every run (the gradient penalty applies at steps 0 and 2: gp_every 2)
STEPS = 4
#: images per rank and step
BATCH = 4


def worker_config():
    """The tiny configuration, without the batch-coupled diversity term (it pairs samples within
    each rank's batch, which one process on the global batch pairs differently)."""
    return tiny_config(
        optim__batch_size=BATCH,
        objective__diversity_weight=0.0,
        objective__gp_every=2,
        run__steps=STEPS,
        run__checkpoint_every=STEPS // 2,
        run__sample_every=STEPS,
        run__log_every=1,
    )


class SampleRandomness:
    """``torch.randn``/``torch.randint`` whose rows belong to samples of the global batch.

    A call for ``n`` rows on rank ``r`` of ``world`` returns rows ``[r n, (r + 1) n)`` of a
    table of ``world * n`` rows drawn from the call's own seed, so a single process asking for
    the global batch (``rank=0, world=1``, ``n`` = the global batch) gets every rank's rows,
    in rank order. Used by this worker and by the single-process reference in the test.
    """

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world, self.calls = rank, world, 0
        self.randn, self.randint = torch.randn, torch.randint

    def _generator(self) -> torch.Generator:
        self.calls += 1
        return torch.Generator().manual_seed(1000 + self.calls)

    def _rows(self, table: torch.Tensor, n: int, device: Any) -> torch.Tensor:
        return table[self.rank * n : (self.rank + 1) * n].to(device)

    def patched_randn(self, *size: Any, device: Any = None, dtype: Any = None) -> torch.Tensor:
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        n = shape[0]
        table = self.randn((self.world * n, *shape[1:]), generator=self._generator(), dtype=dtype)
        return self._rows(table, n, device)

    def patched_randint(
        self, low: int, high: int, size: tuple[int, ...], device: Any = None
    ) -> torch.Tensor:
        n = size[0]
        table = self.randint(low, high, (self.world * n, *size[1:]), generator=self._generator())
        return self._rows(table, n, device)

    def install(self, trainer: Trainer) -> None:
        """Patch torch's draws during every training step of ``trainer`` (not its set-up)."""
        step = trainer.train_step

        def patched_step() -> dict[str, torch.Tensor]:
            torch.randn, torch.randint = self.patched_randn, self.patched_randint  # type: ignore[assignment]
            try:
                return step()
            finally:
                torch.randn, torch.randint = self.randn, self.randint  # type: ignore[assignment]

        trainer.train_step = patched_step  # type: ignore[method-assign]


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Build networks (and draw latents) in float64 inside the block."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def train_in_float64(trainer: Trainer) -> None:
    """Feed ``trainer`` (built inside :func:`float64`) float64 batches and train it."""
    stream = trainer.stream
    batch = stream.next_batch
    stream.next_batch = lambda: batch().double()  # type: ignore[method-assign]
    with float64():
        trainer.run()


#: audit events of operations that change a folder
_PATH_EVENTS = ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir")


def record_writes(root: Path, found: list[str]) -> None:
    """Append to ``found`` every write-like file operation under ``root`` (audit events)."""
    root_text = str(root.resolve())
    write_flags = ("w", "a", "x", "+")

    def under_root(path: Any) -> bool:
        try:
            return str(Path(path).resolve()).startswith(root_text)
        except (TypeError, ValueError, OSError):
            return False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and args and isinstance(args[0], (str, Path)):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(f in mode for f in write_flags)) or (
                isinstance(flags, int) and flags & 0o3 != 0
            )
            if writing and under_root(args[0]):
                found.append(f"open {args[0]} {mode}")
        elif event in _PATH_EVENTS and args and under_root(args[0]):
            found.append(f"{event} {args[0]}")

    sys.addaudithook(hook)


def params_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every network's parameters and the EMA's, by name, on the CPU."""
    tensors = {
        f"{name}.{key}": value.detach().cpu().clone()
        for name, net in trainer.objective.networks.items()
        for key, value in net.state_dict().items()
    }
    tensors.update(
        {f"ema.{k}": v.detach().cpu().clone() for k, v in trainer.ema.state_dict().items()}
    )
    return tensors


def main(out: Path) -> None:
    config = worker_config()
    with distributed.session("cpu") as ranks:
        # 1. the global-batch equivalence, with per-sample randomness
        run_dir = out / "ddp"
        writes: list[str] = []
        if not ranks.is_main:
            record_writes(run_dir, writes)
        with float64():
            trainer = Trainer(config, run_dir, progress=False)
        SampleRandomness(ranks.rank, ranks.world_size).install(trainer)
        train_in_float64(trainer)
        torch.save(params_of(trainer), out / f"rank{ranks.rank}.pt")
        if not ranks.is_main:
            (out / f"rank{ranks.rank}-writes.json").write_text(json.dumps(writes))

        # 2. exact resume: straight through, and half-way then resumed by new Trainers
        Trainer(config, out / "straight", progress=False).run()
        half = worker_config()
        half.run.steps = STEPS // 2
        Trainer(half, out / "split", progress=False).run()
        resumed = Trainer(config, out / "split", progress=False)
        assert resumed.step == STEPS // 2, resumed.step
        resumed.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
