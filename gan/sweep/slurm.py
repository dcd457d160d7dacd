"""Sweeps on a Slurm cluster through submitit: every cell a Slurm job.

:func:`submit_sweep` plans nothing of its own: it takes the plan of
:func:`~fwp.gan.sweep.plan.plan_sweep`, prepares each cell that is neither done nor already
queued or running (its run directory, through :func:`~fwp.gan.sweep.launch.prepare_run`) and
submits it as a Slurm job, or all of them as one job array, then returns. The job ids go into the
cells' ``cell.json`` (``owner``: ``{"slurm_job": ID}``); submitting again skips cells whose jobs
Slurm still has pending or running (:mod:`.slurm_jobs`), and those that are done.

A job runs :class:`CellJob`, which trains the cell's run with
:func:`fwp.gan.run.train_run` (resuming from its last checkpoint), keeps ``cell.json`` (running,
done, failed) exactly as a local sweep does, and appends its output to the cell's ``train.log``.
Before a preemption or the job's time limit Slurm sends the job SIGUSR2 (``signal_delay_s``
before the end); submitit then calls :meth:`CellJob.checkpoint`, which marks the cell ``queued``
and hands submitit the same job to requeue, and the requeued job resumes from the run's last
checkpoint (it trains again at most ``run.checkpoint_every`` steps). A cell whose job ended
without saying so (cancelled, killed, a node failure) reads ``interrupted`` and is submitted again
by the next call. submitit's own files (sbatch scripts, pickled jobs, logs) are kept in
``SWEEP_DIR/slurm/``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..config import ConfigError
from ..rundir import RunDir
from .grid import Cell
from .launch import error_from_exception, prepare_run
from .plan import SweepPlan
from .results import count_parameters
from .runner import busy_elsewhere, check_changes, prepare_fid_references, record_sweep
from .slurm_jobs import SlurmQueryError, job_states
from .slurm_settings import SlurmSettings, parse_slurm_option
from .state import (
    LOG_FILE,
    CellError,
    CellState,
    ask_slurm_about,
    cell_budget,
    cell_status,
    final_step,
    new_state,
    now,
    read_state,
    unfinished_reason,
    write_state,
)

__all__ = [
    "SLURM_DIR",
    "CellJob",
    "SlurmSettings",
    "SubmitSummary",
    "parse_slurm_option",
    "submit_sweep",
    "wait_for_cells",
]

#: the folder of a sweep directory that holds submitit's files
SLURM_DIR = "slurm"


# -- in the job --------------------------------------------------------------------------------
def _current_job_id() -> str:
    """This Slurm job's id as submitit and squeue name it (``123``, or ``123_4`` in an array)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


@contextlib.contextmanager
def _output_to(log_file: Path) -> Iterator[TextIO]:
    """Python's stdout and stderr appended to ``log_file`` inside the block."""
    with (
        log_file.open("a", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        yield log


@dataclass
class CellJob:
    """What a cell's Slurm job runs (submitit pickles it): train the cell's run and keep its
    ``cell.json``; on preemption or time limit, requeue (:meth:`checkpoint`).

    Attributes:
        run_dir: the cell's run directory (prepared by :func:`~fwp.gan.sweep.launch.prepare_run`).
        plugins: rule plugins to import first (the sweep's, from ``sweep.json``).
    """

    run_dir: str
    plugins: tuple[str, ...] = ()
    _started: float | None = field(default=None, repr=False, compare=False)

    def __call__(self) -> int:
        """Train the cell (resuming from its last checkpoint); returns the step it reached.
        A failure is recorded in ``cell.json`` and re-raised (the Slurm job fails)."""
        from fwp.rules import load_plugin

        from .. import distributed
        from ..checkpoint import load_checkpoint
        from ..run import train_run

        run = RunDir(self.run_dir)
        main = distributed.detect().is_main
        self._started = time.monotonic()
        state = self._begin() if main else None
        with _output_to(run.path / LOG_FILE) as log:
            try:
                for plugin in self.plugins:  # first: reading a checkpoint may need their rules
                    load_plugin(plugin)
                if main:
                    resumed = ""
                    if run.has_checkpoint():
                        resumed = f", from step {load_checkpoint(run.last_checkpoint)['step']}"
                    log.write(
                        f"=== attempt {state.attempts if state else '?'} at {now()}: Slurm job "
                        f"{_current_job_id()} on {socket.gethostname()}{resumed} ===\n"
                    )
                result = train_run(run.path, progress=False)
            except Exception as err:
                requeued = (saved := read_state(run.path)) is not None and saved.status == "queued"
                if state is not None and not requeued:  # a requeue's SIGTERM is no failure
                    error = error_from_exception(run.path, err)
                    log.write(f"{error.headline()} (traceback in {error.traceback_file})\n")
                    self._end(state, error)
                raise
        if state is not None:
            self._end(state, None)
        return result.step

    def checkpoint(self) -> Any:
        """Called by submitit when Slurm signals a preemption or the time limit: mark the cell
        queued and requeue this same job, which resumes from the run's last checkpoint."""
        import submitit

        state = read_state(self.run_dir)
        if state is not None:
            state.status = "queued"
            state.wall_s = round(state.wall_s + self._elapsed(), 3)
            state.final_step = final_step(self.run_dir)
            state.owner = {"slurm_job": _current_job_id(), "host": socket.gethostname()}
            write_state(self.run_dir, state)
        return submitit.helpers.DelayedSubmission(CellJob(self.run_dir, self.plugins))

    def _elapsed(self) -> float:
        return time.monotonic() - self._started if self._started is not None else 0.0

    def _begin(self) -> CellState:
        run = RunDir(self.run_dir)
        state = read_state(run.path)
        if state is None:  # cell.json deleted meanwhile: rebuild what the run knows
            config = run.read_config()
            state = CellState(run.path.name, run.path.name, config.painter.rule, config.run.seed)
        state.status = "running"
        state.error = None
        state.attempts += 1
        state.started_at = now()
        state.finished_at = ""
        state.owner = {"slurm_job": _current_job_id(), "host": socket.gethostname()}
        write_state(run.path, state)
        return state

    def _end(self, state: CellState, error: CellError | None) -> None:
        run = RunDir(self.run_dir)
        state.wall_s = round(state.wall_s + self._elapsed(), 3)
        state.finished_at = now()
        state.owner = {}
        state.final_step = final_step(run.path)
        state.error = error
        state.status = "failed" if error is not None else "done"
        if error is None and state.parameters is None:
            state.parameters = count_parameters(run.read_config())
        write_state(run.path, state)


# -- submitting ----------------------------------------------------------------------------------
@dataclass
class SubmitSummary:
    """What one :func:`submit_sweep` call did.

    Attributes:
        total: cells in the sweep.
        submitted: cells submitted now, with their job ids.
        skipped: cells already done.
        busy: cells whose job is still queued or running (or that a local sweep trains), with
            their owner's job id ("" for a local process).
        failed: cells not submitted: failed before and not retried, or whose preparation
            failed now; with their error's headline.
    """

    total: int
    submitted: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    busy: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _executor(settings: SlurmSettings, folder: Path) -> Any:
    try:
        import submitit
    except ImportError:  # pragma: no cover - a dependency of fwp
        raise ConfigError("--launcher slurm needs submitit (pip install submitit)") from None
    try:
        executor = submitit.SlurmExecutor(
            folder=folder, max_num_timeout=settings.max_timeouts, python=settings.python
        )
    except RuntimeError as err:
        raise ConfigError(
            f"--launcher slurm: {err} (Slurm's commands sbatch, srun and squeue must be on PATH)"
        ) from None
    executor.update_parameters(**settings.parameters())
    return executor


def _submit(
    executor: Any, cells: Sequence[Cell], plugins: tuple[str, ...], settings: SlurmSettings
) -> list[Any]:
    """Submit the cells' jobs (one array, or one job per cell); submitit's Job objects."""
    jobs = [CellJob(str(cell.run_dir), plugins) for cell in cells]
    try:
        if settings.array:
            sweep = cells[0].run_dir.parent.name
            executor.update_parameters(job_name=f"fwp-{sweep}")
            with executor.batch():
                return [executor.submit(job) for job in jobs]
        submitted = []
        for cell, job in zip(cells, jobs, strict=True):
            executor.update_parameters(job_name=f"fwp-{cell.name}")
            submitted.append(executor.submit(job))
        return submitted
    except Exception as err:  # sbatch refused (unknown partition, account, option, ...)
        output = getattr(err, "output", None) or getattr(err, "stderr", None) or b""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        detail = f"{err} {output}".strip()
        raise ConfigError(f"Slurm refused the submission: {detail}") from None


def submit_sweep(
    plan: SweepPlan,
    settings: SlurmSettings | None = None,
    *,
    change: bool = False,
    retry_failed: bool = True,
    prepare_fid: bool = True,
    progress: bool = True,
) -> SubmitSummary:
    """Submit every cell of ``plan`` that is neither done nor queued or running, as Slurm jobs.

    Args:
        plan: from :func:`~fwp.gan.sweep.plan.plan_sweep`.
        settings: the jobs' resources and sbatch options.
        change: allow the plan to change the stored sweep (``plan.changes``).
        retry_failed: submit failed cells again (default) rather than skip them.
        prepare_fid: compute the FID reference statistics the cells need here, once, before
            submitting (see :func:`~fwp.gan.sweep.runner.prepare_fid_references`).
        progress: progress of the FID preparation on stderr.

    Returns:
        a :class:`SubmitSummary`; the jobs run on, and :func:`wait_for_cells` waits for them.

    Raises:
        ConfigError: the plan changes the stored sweep and ``change`` is False, Slurm's
            commands are missing, or Slurm refused the submission.
    """
    settings = settings or SlurmSettings()
    check_changes(plan, change)
    record_sweep(plan)
    summary = SubmitSummary(total=len(plan.cells))
    queue: list[Cell] = []
    states = {cell.name: read_state(cell.run_dir) for cell in plan.cells}
    ask_slurm_about(states.values())
    for cell in plan.cells:
        state = states[cell.name]
        if not unfinished_reason(cell, state):
            summary.skipped.append(cell.name)
        elif busy_elsewhere(state):
            summary.busy[cell.name] = str(state.owner.get("slurm_job", "")) if state else ""
        elif state is not None and state.status == "failed" and not retry_failed:
            summary.failed[cell.name] = state.error.headline() if state.error else "failed"
        else:
            queue.append(cell)
    if not queue:
        return summary
    if prepare_fid:
        prepare_fid_references(queue, progress=progress)
    ready: list[Cell] = []
    for cell in queue:
        try:
            prepare_run(cell)
        except Exception as err:  # this cell cannot start; the others are submitted
            error = error_from_exception(cell.run_dir, err)
            _record_failure(cell, error)
            summary.failed[cell.name] = error.headline()
            continue
        ready.append(cell)
    if not ready:
        return summary
    folder = settings.folder or plan.sweep_dir / SLURM_DIR
    executor = _executor(settings, folder)
    jobs = _submit(executor, ready, tuple(plan.spec.plugins), settings)
    for cell, job in zip(ready, jobs, strict=True):
        state = read_state(cell.run_dir) or new_state(cell)
        if state.status == "running" and state.owner.get("slurm_job") == job.job_id:
            summary.submitted[cell.name] = job.job_id  # it started before we got here
            continue
        state.status = "queued"
        state.error = None
        state.budget = cell_budget(cell.config)
        state.owner = {"slurm_job": job.job_id, "host": socket.gethostname()}
        state.device = settings.describe()
        state.command = ["sbatch", str(job.paths.submission_file)]
        state.finished_at = ""
        write_state(cell.run_dir, state)
        summary.submitted[cell.name] = job.job_id
    return summary


def _record_failure(cell: Cell, error: CellError) -> None:
    state = read_state(cell.run_dir) or new_state(cell)
    state.status = "failed"
    state.error = error
    state.owner = {}
    state.finished_at = now()
    write_state(cell.run_dir, state)


def wait_for_cells(
    plan: SweepPlan,
    names: Sequence[str],
    *,
    poll_s: float = 10.0,
    timeout_s: float | None = None,
    progress: bool = True,
) -> dict[str, str]:
    """Wait until none of the cells ``names`` is queued or running any more.

    Args:
        poll_s: seconds between looks at the cells and at Slurm.
        timeout_s: give up after this long (None: wait as long as it takes).
        progress: a line on stderr whenever a cell's status changes.

    Returns:
        each cell's final status (``done``, ``failed``, ``interrupted``).

    Raises:
        TimeoutError: ``timeout_s`` passed first.
    """
    cells = {cell.name: cell for cell in plan.cells if cell.name in set(names)}
    shown: dict[str, str] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        states = {name: read_state(cell.run_dir) for name, cell in cells.items()}
        jobs = [str(s.owner["slurm_job"]) for s in states.values() if s and "slurm_job" in s.owner]
        with contextlib.suppress(SlurmQueryError):  # then cell_status keeps what cell.json says
            job_states(jobs, fresh=True)  # one squeue call for all of them
        statuses = {name: cell_status(state) for name, state in states.items()}
        for name, status in statuses.items():
            if progress and shown.get(name) != status:
                print(f"fwp: {name}: {status}", file=sys.stderr, flush=True)
        shown = statuses
        if all(status not in ("queued", "running") for status in statuses.values()):
            return statuses
        if deadline is not None and time.monotonic() > deadline:
            waiting = ", ".join(n for n, s in statuses.items() if s in ("queued", "running"))
            raise TimeoutError(f"Slurm jobs still queued or running: {waiting}")
        time.sleep(poll_s)
