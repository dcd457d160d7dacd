"""The run's scalar log: ``metrics.csv`` (one row per logged step) and, optionally, TensorBoard."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

from .files import atomic_write_text


class MetricsLog:
    """metrics.csv (append-only, truncated on rollback/resume) plus optional TensorBoard.

    Args:
        path: the CSV file.
        columns: its columns, ``step`` first.
        tensorboard_dir: where TensorBoard event files go; None for no TensorBoard.
    """

    def __init__(self, path: Path, columns: list[str], tensorboard_dir: Path | None) -> None:
        self.path = path
        self.columns = columns
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(tensorboard_dir))
            except ImportError as err:  # tensorboard is a dependency, but stay usable without it
                print(f"fwp: TensorBoard logging disabled ({err})", file=sys.stderr)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they will be logged again after a rollback)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        text_rows = [",".join(self.columns)]
        for row in rows:
            text_rows.append(",".join(str(row.get(c, "")) for c in self.columns))
        atomic_write_text("\n".join(text_rows) + "\n", self.path)

    def append(self, row: dict[str, Any]) -> None:
        """Append one row (missing columns stay empty) and send its numbers to TensorBoard."""
        new_file = not self.path.is_file()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics.csv (empty when it does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if (row.get("step") or "").strip()]
