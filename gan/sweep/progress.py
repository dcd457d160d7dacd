"""The sweep's progress display: cells done, running, failed and pending, and the sweep's ETA,
shown through the shared :class:`~fwp.gan.progress.ProgressDisplay` (a bar on a terminal, a plain
line a minute in a log, nothing when quiet)."""

from __future__ import annotations

import statistics
import time
from typing import TextIO

from ..metrics_log import read_metrics
from ..progress import ProgressDisplay, format_seconds
from ..rundir import RunDir
from .grid import Cell
from .records import csv_number

__all__ = ["SweepProgress"]

#: seconds between progress lines when stderr is not a terminal
LOG_EVERY_S = 60.0


class SweepProgress:
    """Counts of the sweep's cells and its ETA, on stderr.

    The ETA assumes every remaining cell takes the mean wall time of the cells finished so far,
    run ``slots`` at a time; before any cell has finished, a running cell's duration is
    extrapolated from the step its ``metrics.csv`` has reached.

    Args:
        total: cells in the sweep.
        slots: cells trained at once.
        enabled: False shows nothing (``--quiet``).
        stream, interactive: passed to :class:`~fwp.gan.progress.ProgressDisplay`.
    """

    def __init__(
        self,
        total: int,
        slots: int,
        enabled: bool = True,
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.total = total
        self.slots = max(slots, 1)
        self.durations: list[float] = []
        self.done = self.failed = 0
        self.running: dict[str, float] = {}
        self.cells: dict[str, Cell] = {}
        self.start = time.monotonic()
        self.display = ProgressDisplay(
            total,
            "ablate",
            enabled=enabled,
            log_every_s=LOG_EVERY_S,
            unit="cell",
            stream=stream,
            interactive=interactive,
        )

    def started(self, cell: Cell) -> None:
        self.running[cell.name] = time.monotonic()
        self.cells[cell.name] = cell

    def stopped(self, cell: Cell) -> float:
        """Forget a running cell; returns how long it ran (seconds)."""
        self.cells.pop(cell.name, None)
        return time.monotonic() - self.running.pop(cell.name, time.monotonic())

    def _extrapolate(self, name: str, elapsed: float) -> float | None:
        """A running cell's whole duration, from the fraction of its budget done so far."""
        cell = self.cells.get(name)
        if cell is None:
            return None
        rows = read_metrics(RunDir(cell.run_dir).metrics_file)
        if not rows:
            return None
        run = cell.config.run
        fraction = int(rows[-1]["step"]) / max(run.steps, 1)
        seconds = csv_number(rows[-1].get("elapsed_s"))
        if run.minutes > 0 and seconds is not None:
            fraction = max(fraction, seconds / (run.minutes * 60))
        return elapsed / min(fraction, 1.0) if fraction > 0 else None

    def eta(self) -> float | None:
        """Seconds until every cell is trained; ``None`` before anything can be estimated."""
        now = time.monotonic()
        if self.durations:
            mean = statistics.fmean(self.durations)
        else:
            guesses = [
                g
                for name, t in self.running.items()
                if (g := self._extrapolate(name, now - t)) is not None
            ]
            if not guesses:
                return None
            mean = statistics.fmean(guesses)
        pending = self.total - self.done - self.failed - len(self.running)
        work = pending * mean + sum(max(mean - (now - t), 0.0) for t in self.running.values())
        return work / self.slots

    def _status(self) -> str:
        pending = self.total - self.done - self.failed - len(self.running)
        eta = self.eta()
        return (
            f"{len(self.running)} running, {self.failed} failed, {pending} pending | elapsed "
            f"{format_seconds(time.monotonic() - self.start)} | "
            f"ETA {'?' if eta is None else format_seconds(eta)}"
        )

    def counts(self) -> str:
        """``2/6 done, 1 running, 0 failed, 3 pending | elapsed 4m05s | ETA 9m10s``."""
        return f"{self.done}/{self.total} done, {self._status()}"

    def event(self, text: str) -> None:
        """A line about a cell: above the bar on a terminal, with the counts in a log."""
        if not self.display.enabled:
            return
        if self.display.interactive:
            self.display.message(f"ablate: {text}")
            self.show(force=True)
        else:
            self.display.message(f"ablate: {text} [{self.counts()}]")

    def show(self, force: bool = False) -> None:
        """Redraw the bar (terminal), or print the counts once a minute (log)."""
        if self.display.enabled:
            self.display.update(self.done, self._status(), force=force)

    def close(self) -> None:
        self.display.close()
