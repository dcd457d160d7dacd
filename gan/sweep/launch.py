"""How one cell is trained: its run directory is prepared through the library's run entry point
(:mod:`fwp.gan.run`), then trained in a child process ``python -m fwp.gan.run RUN_DIR`` or in
this process; a failure becomes a :class:`~fwp.gan.sweep.state.CellError`.

No command line of ``fwp train`` is built and no output is parsed: the child writes its error as
JSON (``--error-file``), and the sweep keeps the type and message in ``cell.json`` and the
traceback in ``traceback.txt`` beside it.
"""

from __future__ import annotations

import copy
import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import TrainConfig, config_changes
from ..files import atomic_write_text
from ..run import error_record, new_run, resume_config, train_run
from ..rundir import RunDir
from .grid import Cell
from .state import EXITED, KILLED_BY_SIGNAL, LOG_FILE, TRACEBACK_FILE, CellError, started_run

__all__ = [
    "ERROR_FILE",
    "CellLauncher",
    "RunLauncher",
    "error_from_child",
    "error_from_exception",
    "prepare_run",
]

#: where a cell's child process writes its error (read, then removed, by the sweep)
ERROR_FILE = "error.json"

_SIGNAL_NAMES = {int(s): s.name for s in signal.Signals}


def prepare_run(cell: Cell, device: str | None = None) -> TrainConfig:
    """Write the configuration the sweep asks of ``cell`` into its run directory: a new run
    (:func:`~fwp.gan.run.new_run`), or a started one continued under the resume policy
    (:func:`~fwp.gan.run.resume_config`, e.g. a larger budget).

    Args:
        device: ``run.device`` for this attempt (``cuda`` for a cell placed on one GPU).

    Returns:
        the configuration written to the run's config.json.
    """
    config = cell.config
    if device is not None and device != config.run.device:
        config = copy.deepcopy(config)
        config.run.device = device
    run = RunDir(cell.run_dir)
    if started_run(run.path):
        config = resume_config(run.path, config_changes(run.read_config(), config))
        run.write_config(config)
    else:
        new_run(config, run.path)
    return config


class CellLauncher(Protocol):
    """Trains a prepared cell (its config.json written by :func:`prepare_run`)."""

    def command(self, cell: Cell, error_file: Path) -> list[str]:
        """The command of a child process that trains ``cell`` and writes a failure to
        ``error_file`` as JSON ``{type, message, traceback}``."""
        ...

    def train_inline(self, cell: Cell) -> None:
        """Train ``cell`` inside this process; raise on failure."""
        ...


@dataclass(frozen=True)
class RunLauncher:
    """Trains cells with the library's run entry point, importing ``plugins`` first."""

    plugins: tuple[str, ...] = ()

    def command(self, cell: Cell, error_file: Path) -> list[str]:
        plugin_args = [arg for plugin in self.plugins for arg in ("--plugin", plugin)]
        return [
            sys.executable,
            "-m",
            "fwp.gan.run",
            str(cell.run_dir),
            "--quiet",
            "--error-file",
            str(error_file),
            *plugin_args,
        ]

    def train_inline(self, cell: Cell) -> None:
        train_run(cell.run_dir, progress=False)


def _error_from_record(
    run_dir: Path, record: Mapping[str, str], exit_status: int | None = None
) -> CellError:
    """A :class:`CellError` from ``{type, message, traceback}``, the traceback saved beside it."""
    atomic_write_text(record["traceback"], run_dir / TRACEBACK_FILE)
    return CellError(record["type"], record["message"], TRACEBACK_FILE, exit_status)


def error_from_exception(run_dir: Path, err: BaseException) -> CellError:
    """The error of a cell whose training (or preparation) raised ``err`` in this process."""
    return _error_from_record(run_dir, error_record(err))


def _read_error_file(path: Path) -> dict[str, str] | None:
    """The child's error record, or ``None`` when it wrote none (or an unusable one)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    keys = ("type", "message", "traceback")
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in keys):
        return None
    return {key: record[key] for key in keys}


def error_from_child(run_dir: Path, returncode: int, error_file: Path) -> CellError:
    """The error of a cell whose child process exited with ``returncode`` (non-zero): the
    exception it recorded in ``error_file``, else the signal that killed it, else its status."""
    record = _read_error_file(error_file)
    error_file.unlink(missing_ok=True)
    if record is not None:
        return _error_from_record(run_dir, record, returncode)
    if returncode < 0:
        name = _SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return CellError(
            KILLED_BY_SIGNAL, f"killed by {name}{hint}", exit_status=returncode, signal=name
        )
    return CellError(
        EXITED,
        f"training exited with status {returncode} without an error record (see {LOG_FILE})",
        exit_status=returncode,
    )
