"""Running a sweep on this machine: every unfinished cell, one after another in child processes,
``jobs`` at once, one per GPU, or inside this process.

A failing cell is recorded (``cell.json``: its :class:`~fwp.gan.sweep.state.CellError`) and does
not stop the others. Ctrl-C or SIGTERM stops the children and marks their cells ``interrupted``;
running the sweep again resumes them from their last checkpoint and skips finished cells.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ..config import ConfigError
from ..progress import format_seconds
from .grid import Cell
from .launch import (
    ERROR_FILE,
    CellLauncher,
    RunLauncher,
    error_from_child,
    error_from_exception,
    prepare_run,
)
from .plan import SweepPlan
from .progress import SweepProgress
from .results import count_parameters
from .schedule import Schedule
from .state import (
    LOG_FILE,
    CellError,
    CellState,
    ask_slurm_about,
    cell_budget,
    final_step,
    new_state,
    now,
    owner_alive,
    read_state,
    unfinished_reason,
    write_state,
)
from .store import write_sweep

__all__ = [
    "SweepSummary",
    "busy_elsewhere",
    "check_changes",
    "prepare_fid_references",
    "record_sweep",
    "run_sweep",
]

#: seconds a stopped child gets to exit before it is killed
STOP_GRACE_S = 20.0


@dataclass
class SweepSummary:
    """What one :func:`run_sweep` call did; ``failed`` maps cells to their error's headline."""

    total: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    interrupted: bool = False


def check_changes(plan: SweepPlan, change: bool) -> None:
    """Refuse a plan that changes the stored sweep unless ``change`` allows it.

    Raises:
        ConfigError: listing the changes and how to apply them (``--change``).
    """
    if plan.changes and not change:
        raise ConfigError(
            f"this would change the sweep stored in {plan.sweep_dir}:\n  "
            + "\n  ".join(plan.changes)
            + "\nrun again with --change to apply these changes, or leave out the options that "
            "differ (a bare `fwp ablate SWEEP_DIR` resumes the stored sweep)"
        )


def busy_elsewhere(state: CellState | None) -> bool:
    """Whether another owner is working on the cell now: a sweep process (not this one) or a
    Slurm job that is still queued or running."""
    return (
        state is not None
        and state.status in ("running", "queued")
        and owner_alive(state.owner)
        and state.owner.get("pid") != os.getpid()
    )


def record_sweep(plan: SweepPlan) -> None:
    """Store the plan's sweep in ``sweep.json`` and a pending ``cell.json`` for each new cell."""
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    write_sweep(plan.sweep_dir, plan.spec, [cell.name for cell in plan.cells])
    for cell in plan.cells:
        if read_state(cell.run_dir) is None:
            write_state(cell.run_dir, new_state(cell))


def run_sweep(
    plan: SweepPlan,
    schedule: Schedule | None = None,
    *,
    change: bool = False,
    launcher: CellLauncher | None = None,
    retry_failed: bool = True,
    progress: bool = True,
    prepare_fid: bool = True,
    poll_s: float = 0.5,
) -> SweepSummary:
    """Train every cell of ``plan`` that is not finished; failures do not stop the others.

    Args:
        plan: from :func:`~fwp.gan.sweep.plan.plan_sweep`.
        schedule: where cells train (default: one child process at a time).
        change: allow the plan to change the stored sweep (``plan.changes``).
        launcher: how a prepared cell trains; default :class:`RunLauncher` with the sweep's
            plugins (``python -m fwp.gan.run`` children, or ``train_run`` in this process).
        retry_failed: train failed cells again (default) rather than skip them.
        progress: the progress display on stderr.
        prepare_fid: compute the FID reference statistics the cells need once, here, before
            any training (see :func:`prepare_fid_references`).

    Returns:
        a :class:`SweepSummary`. KeyboardInterrupt (or SIGTERM) stops the children, marks their
        cells ``interrupted`` and is re-raised.

    Raises:
        ConfigError: the plan changes the stored sweep and ``change`` is False, or the schedule
            does not fit the cells.
    """
    schedule = schedule or Schedule()
    check_changes(plan, change)
    schedule.check_cells(plan.cells)
    if launcher is None:
        launcher = RunLauncher(tuple(plan.spec.plugins))
    record_sweep(plan)
    cells = plan.cells
    summary = SweepSummary(total=len(cells))
    queue: list[Cell] = []
    states = {cell.name: read_state(cell.run_dir) for cell in cells}
    ask_slurm_about(states.values())
    for cell in cells:
        state = states[cell.name]
        if not unfinished_reason(cell, state):
            summary.skipped.append(cell.name)
        elif busy_elsewhere(state):
            summary.busy.append(cell.name)
        elif state is not None and state.status == "failed" and not retry_failed:
            summary.failed[cell.name] = state.error.headline() if state.error else "failed"
        else:
            queue.append(cell)
    display = SweepProgress(len(cells), schedule.slots, enabled=progress)
    display.done = len(summary.skipped)
    display.failed = len(summary.failed)
    display.durations = [
        s.wall_s for s in states.values() if s is not None and s.status == "done" and s.wall_s > 0
    ]
    if prepare_fid and queue:
        prepare_fid_references(queue, progress=progress)
    if summary.skipped:
        display.event(f"{len(summary.skipped)} of {len(cells)} cells already done; skipping them")
    for name in summary.busy:
        display.event(f"skipping {name}: another sweep process or a Slurm job has it")
    try:
        with _sigterm_as_interrupt():
            if schedule.in_process:
                _run_inline(queue, launcher, summary, display)
            else:
                _run_children(queue, launcher, summary, display, schedule, poll_s)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        display.close()
    return summary


def prepare_fid_references(cells: Sequence[Cell], progress: bool = True) -> int:
    """Compute (or find in the cache) the FID reference statistics that cells need.

    Cells that evaluate FID during training (``run.fid_every``) on the same data share one
    cached ``.npz``; computing it here, once, keeps cells that start together from all computing
    it, and a missing Inception network is reported before any training starts.

    Returns:
        the number of distinct reference statistics needed.

    Raises:
        ConfigError: the statistics cannot be computed (e.g. no Inception weights).
    """
    needed = dict.fromkeys(
        (
            c.config.data.source,
            tuple(c.config.data.size),
            c.config.data.channels,
            c.config.data.limit or None,
        )
        for c in cells
        if c.config.run.fid_every > 0
    )
    if not needed:
        return 0
    from .. import metrics

    for source, size, channels, limit in needed:
        try:
            metrics.reference_stats(source, size, channels, limit=limit, progress=progress)
        except (OSError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"FID during training (run.fid_every) needs the reference statistics of "
                f"{source!r} at {size[0]}x{size[1]}, which cannot be computed: {err}"
            ) from err
    return len(needed)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (a scheduler stopping the sweep) like Ctrl-C: stop children, keep state."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _begin(cell: Cell, command: list[str], device: str) -> CellState:
    """Mark ``cell`` running (owned by this process) for a new attempt."""
    state = read_state(cell.run_dir) or new_state(cell)
    (cell.run_dir / ERROR_FILE).unlink(missing_ok=True)
    state.status = "running"
    state.error = None
    state.attempts += 1
    state.budget = cell_budget(cell.config)
    state.started_at = now()
    state.finished_at = ""
    state.owner = {"pid": os.getpid(), "host": socket.gethostname()}
    state.device = device
    state.command = command
    write_state(cell.run_dir, state)
    return state


def _finish(cell: Cell, state: CellState, seconds: float, error: CellError | None) -> None:
    """Record the end of an attempt: done, or failed with ``error``."""
    state.wall_s = round(state.wall_s + seconds, 3)
    state.finished_at = now()
    state.owner = {}
    state.final_step = final_step(cell.run_dir)
    state.error = error
    if error is None:
        state.status = "done"
        if state.parameters is None:
            state.parameters = count_parameters(cell.config)
    else:
        state.status = "failed"
    write_state(cell.run_dir, state)


def _interrupted(cell: Cell, seconds: float) -> None:
    """Record that the sweep stopped while training ``cell`` (it resumes next time)."""
    state = read_state(cell.run_dir)
    if state is None:
        return
    state.status = "interrupted"
    state.wall_s = round(state.wall_s + seconds, 3)
    state.finished_at = now()
    state.owner = {}
    state.final_step = final_step(cell.run_dir)
    write_state(cell.run_dir, state)


def _record(cell: Cell, state: CellState, summary: SweepSummary, display: SweepProgress) -> None:
    """Count a finished attempt and say how it ended."""
    seconds = display.stopped(cell)
    if state.error is None:
        summary.done.append(cell.name)
        display.done += 1
        display.durations.append(seconds)
        display.event(f"done {cell.name} at step {state.final_step} in {format_seconds(seconds)}")
    else:
        summary.failed[cell.name] = state.error.headline()
        display.failed += 1
        display.event(f"FAILED {cell.name}: {state.error.headline()}")


def _run_inline(
    queue: list[Cell], launcher: CellLauncher, summary: SweepSummary, display: SweepProgress
) -> None:
    for cell in queue:
        state = _begin(cell, ["(in process)"], device="")
        display.started(cell)
        display.event(f"started {cell.name} (attempt {state.attempts})")
        start = time.monotonic()
        error = None
        with (cell.run_dir / LOG_FILE).open("a") as log:
            log.write(f"=== attempt {state.attempts} at {now()}: in process ===\n")
            log.flush()
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    prepare_run(cell)
                    launcher.train_inline(cell)
            except KeyboardInterrupt:
                _interrupted(cell, time.monotonic() - start)
                raise
            except (Exception, SystemExit) as err:  # a failing cell must not stop the sweep
                error = error_from_exception(cell.run_dir, err)
                log.write(f"{error.headline()} (traceback in {error.traceback_file})\n")
        _finish(cell, state, time.monotonic() - start, error)
        _record(cell, state, summary, display)


def _child_env(slot: int, schedule: Schedule) -> dict[str, str]:
    env = dict(os.environ)
    if schedule.gpus:
        env["CUDA_VISIBLE_DEVICES"] = schedule.gpus[slot]
    elif "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // schedule.slots))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class _Child:
    """A cell training in a child process."""

    cell: Cell
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float
    slot: int


def _start_child(
    cell: Cell, slot: int, schedule: Schedule, launcher: CellLauncher
) -> tuple[CellState, _Child | CellError]:
    """Prepare ``cell`` and start its child; a cell that cannot start gets its error instead."""
    error_file = cell.run_dir / ERROR_FILE
    command = launcher.command(cell, error_file)
    gpu = schedule.gpus[slot] if schedule.gpus else None
    state = _begin(cell, command, f"cuda (GPU {gpu})" if gpu is not None else "cpu")
    log = (cell.run_dir / LOG_FILE).open("ab")
    log.write(f"=== attempt {state.attempts} at {now()}: {' '.join(command)} ===\n".encode())
    log.flush()
    try:
        prepare_run(cell, device="cuda" if gpu is not None else None)
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_child_env(slot, schedule),
        )
    except Exception as err:  # e.g. too many processes: this cell fails, not the sweep
        log.close()
        return state, error_from_exception(cell.run_dir, err)
    return state, _Child(cell, process, log, time.monotonic(), slot)


def _run_children(
    queue: list[Cell],
    launcher: CellLauncher,
    summary: SweepSummary,
    display: SweepProgress,
    schedule: Schedule,
    poll_s: float,
) -> None:
    running: list[_Child] = []
    try:
        while queue or running:
            busy = {child.slot for child in running}
            for slot in range(schedule.slots):
                if slot in busy or not queue:
                    continue
                cell = queue.pop(0)
                display.started(cell)
                state, started = _start_child(cell, slot, schedule, launcher)
                if isinstance(started, CellError):
                    _finish(cell, state, 0.0, started)
                    _record(cell, state, summary, display)
                    continue
                running.append(started)
                display.event(f"started {cell.name} (attempt {state.attempts})")
            for child in list(running):
                returncode = child.process.poll()
                if returncode is None:
                    continue
                running.remove(child)
                child.log.close()
                cell = child.cell
                error = None
                if returncode != 0:
                    error = error_from_child(cell.run_dir, returncode, cell.run_dir / ERROR_FILE)
                if error is not None and error.type == "KeyboardInterrupt":  # SIGINT to the child
                    _interrupted(cell, display.stopped(cell))
                    display.event(f"interrupted {cell.name}; the next run resumes it")
                    continue
                state = read_state(cell.run_dir) or new_state(cell)
                _finish(cell, state, time.monotonic() - child.started, error)
                _record(cell, state, summary, display)
            display.show()
            if running:
                time.sleep(poll_s)
    except BaseException:
        _stop_children(running)
        raise


def _stop_children(running: list[_Child], grace_s: float = STOP_GRACE_S) -> None:
    """Stop children (SIGINT, then SIGKILL after ``grace_s``) and mark their cells interrupted."""
    for child in running:
        if child.process.poll() is None:
            with contextlib.suppress(OSError):
                child.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for child in running:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        child.log.close()
        (child.cell.run_dir / ERROR_FILE).unlink(missing_ok=True)
        _interrupted(child.cell, time.monotonic() - child.started)
