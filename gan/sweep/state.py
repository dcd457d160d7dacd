"""The state of a cell: ``cell.json`` in its run directory, its statuses and its error record.

A cell is in one of :data:`STATUSES` (in the order reports count them):

- ``done``: trained to the budget recorded in ``budget``;
- ``running``: a sweep process, or a Slurm job, is training it (``owner`` names that process,
  ``{"pid", "host"}``, or that job, ``{"slurm_job", "host"}``);
- ``queued``: submitted to Slurm, waiting to start, or requeued after a preemption or its time
  limit (it resumes from its checkpoint);
- ``failed``: its training raised, or its process died; ``error`` says how (:class:`CellError`);
- ``interrupted``: its sweep was stopped (Ctrl-C, SIGTERM) while training it, or the process or
  Slurm job that was training it is gone; the next run of the sweep resumes it;
- ``pending``: not trained yet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..config import TrainConfig, config_changes
from ..files import atomic_write_json
from ..rundir import RunDir
from .grid import SHARED_OPTIONS, Cell
from .records import (
    SweepFileError,
    is_int,
    is_list_of,
    is_number,
    is_optional,
    is_str,
    is_table,
    read_optional,
    take,
)

__all__ = [
    "CELL_FILE",
    "EXITED",
    "KILLED_BY_SIGNAL",
    "LOG_FILE",
    "STATUSES",
    "TRACEBACK_FILE",
    "CellError",
    "CellState",
    "CellStatus",
    "ask_slurm_about",
    "cell_budget",
    "cell_status",
    "final_step",
    "new_state",
    "now",
    "owner_alive",
    "read_state",
    "started_run",
    "unfinished_reason",
    "write_state",
]

CELL_FILE = "cell.json"
LOG_FILE = "train.log"
TRACEBACK_FILE = "traceback.txt"

CellStatus = Literal["done", "running", "queued", "failed", "interrupted", "pending"]
#: every status a cell can have, stored in cell.json and shown (meanings in the module docstring)
STATUSES: tuple[CellStatus, ...] = get_args(CellStatus)

#: :attr:`CellError.type` of a cell whose process was killed by a signal
KILLED_BY_SIGNAL = "KilledBySignal"
#: :attr:`CellError.type` of a cell whose process exited non-zero without an error record
EXITED = "ExitStatus"

_CELL_HINT = (
    "fix the file, or delete it to make the cell pending (its run resumes from its checkpoint)"
)


@dataclass
class CellError:
    """Why a cell failed.

    Attributes:
        type: the exception's class name (``RuntimeError``, ``ConfigError``), or
            :data:`KILLED_BY_SIGNAL` / :data:`EXITED` when the process died without one.
        message: the exception's message (or what happened to the process).
        traceback_file: the file holding the full traceback, relative to the cell's folder.
        exit_status: the exit status of the cell's process (negative: the signal's number).
        signal: the signal's name (``SIGKILL``) when a signal ended the process.
    """

    type: str
    message: str
    traceback_file: str | None = None
    exit_status: int | None = None
    signal: str | None = None

    def headline(self) -> str:
        """One line: ``Type: message``, or the message alone for a process that died."""
        if self.type in (KILLED_BY_SIGNAL, EXITED) or not self.message:
            return self.message or self.type
        return f"{self.type}: {self.message}"

    @classmethod
    def from_json(cls, values: Any, path: Path) -> CellError:
        if not isinstance(values, dict):
            raise SweepFileError(f"{path}: 'error' must be null or an object; {_CELL_HINT}")

        def get(key: str, check: Any, expected: str, *default: Any) -> Any:
            return take(values, key, check, expected, path, _CELL_HINT, *default)

        return cls(
            type=get("type", is_str, "a string"),
            message=get("message", is_str, "a string"),
            traceback_file=get("traceback_file", is_optional(is_str), "a path or null", None),
            exit_status=get("exit_status", is_optional(is_int), "an integer or null", None),
            signal=get("signal", is_optional(is_str), "a signal name or null", None),
        )


@dataclass
class CellState:
    """The contents of ``cell.json``: what the sweep knows about one cell."""

    name: str
    configuration: str
    rule: str
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    status: CellStatus = "pending"
    error: CellError | None = None
    wall_s: float = 0.0
    attempts: int = 0
    budget: dict[str, Any] = field(default_factory=dict)
    final_step: int | None = None
    parameters: int | None = None
    started_at: str = ""
    finished_at: str = ""
    owner: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    command: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any], path: Path) -> CellState:
        """Read a ``cell.json`` object, refusing missing keys and wrong types by name."""

        def get(key: str, check: Any, expected: str, *default: Any) -> Any:
            return take(values, key, check, expected, path, _CELL_HINT, *default)

        error = values.get("error")
        return cls(
            name=get("name", is_str, "a string"),
            configuration=get("configuration", is_str, "a string"),
            rule=get("rule", is_str, "a string"),
            seed=get("seed", is_int, "an integer"),
            settings=get("settings", is_table, "an object of swept option values"),
            status=get("status", lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
            error=None if error is None else CellError.from_json(error, path),
            wall_s=float(get("wall_s", is_number, "a number of seconds", 0.0)),
            attempts=get("attempts", is_int, "an integer", 0),
            budget=get("budget", is_table, "an object", {}),
            final_step=get("final_step", is_optional(is_int), "an integer or null", None),
            parameters=get("parameters", is_optional(is_int), "an integer or null", None),
            started_at=get("started_at", is_str, "a string", ""),
            finished_at=get("finished_at", is_str, "a string", ""),
            owner=get("owner", is_table, "an object", {}),
            device=get("device", is_str, "a string", ""),
            command=get("command", is_list_of(is_str), "a list of strings", []),
        )


def read_state(run_dir: str | Path) -> CellState | None:
    """The state of the cell in ``run_dir``; ``None`` when it has no ``cell.json`` yet.

    Raises:
        SweepFileError: ``cell.json`` is not valid JSON, lacks a key or has a wrong type.
    """
    return read_optional(Path(run_dir) / CELL_FILE, _CELL_HINT, CellState.from_json)


def write_state(run_dir: str | Path, state: CellState) -> None:
    """Write ``cell.json`` atomically."""
    atomic_write_json(state.to_json(), Path(run_dir) / CELL_FILE)


def cell_budget(config: TrainConfig) -> dict[str, Any]:
    """The options every cell shares (training budget, FID setting) of ``config``."""
    return {key: getattr(config.run, key.split(".")[1]) for key in SHARED_OPTIONS}


def new_state(cell: Cell) -> CellState:
    """The state of a cell that was never trained."""
    return CellState(
        cell.name,
        cell.configuration,
        cell.rule,
        cell.seed,
        dict(cell.settings),
        budget=cell_budget(cell.config),
    )


def now() -> str:
    """The local time, as written in ``cell.json``."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the owner recorded for a cell still works on it: a sweep process that still runs
    (on this host), or a Slurm job that is still pending or running. When Slurm cannot be asked
    (no squeue here), its job counts as alive: the cell is not trained twice."""
    if owner.get("slurm_job"):
        from .slurm_jobs import SlurmQueryError, active_jobs

        job = str(owner["slurm_job"])
        try:
            return job in active_jobs([job])
        except SlurmQueryError:
            return True
    pid = owner.get("pid")
    if not pid or owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ask_slurm_about(states: Iterable[CellState | None]) -> None:
    """Ask Slurm once about the jobs of every queued or running cell among ``states``, so that
    :func:`owner_alive` and :func:`cell_status` of each then use that answer (for a few seconds)
    instead of asking once per cell. Nothing happens without such cells; when Slurm cannot be
    asked, each cell's own question says so later."""
    jobs = [
        str(state.owner["slurm_job"])
        for state in states
        if state is not None
        and state.status in ("running", "queued")
        and state.owner.get("slurm_job")
    ]
    if not jobs:
        return
    from .slurm_jobs import SlurmQueryError, job_states

    with contextlib.suppress(SlurmQueryError):
        job_states(jobs)


def cell_status(state: CellState | None) -> CellStatus:
    """The status to show: ``running`` or ``queued`` of an owner (process, Slurm job) that is
    gone reads ``interrupted``."""
    if state is None:
        return "pending"
    if state.status in ("running", "queued") and not owner_alive(state.owner):
        return "interrupted"
    return state.status


def final_step(run_dir: str | Path) -> int | None:
    """The last step in the run's metrics.csv (None before the first logged step)."""
    from ..metrics_log import read_metrics

    rows = read_metrics(RunDir(run_dir).metrics_file)
    return max((int(row["step"]) for row in rows), default=None)


def started_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a started run (a config and a checkpoint folder): one to resume
    rather than start again."""
    run = RunDir(run_dir)
    return run.is_run() and run.checkpoint_dir.is_dir()


def unfinished_reason(cell: Cell, state: CellState | None) -> str:
    """Why a cell must be trained (again); ``""`` when it is done with the sweep's settings."""
    if state is None or state.status != "done":
        return cell_status(state)
    run = RunDir(cell.run_dir)
    if not run.has_checkpoint():
        return "checkpoint missing"
    if state.budget != cell_budget(cell.config):
        return "budget changed"
    if not run.is_run():
        return "config.json missing"
    changed = sorted(set(config_changes(run.read_config(), cell.config)) - {"run.device"})
    if changed:
        return f"configuration changed: {', '.join(changed)}"
    return ""
