"""What Slurm says about the jobs of a sweep's cells: whether each is still pending or running.

A cell trained by a Slurm job records the job's id in its ``cell.json`` (``owner``:
``{"slurm_job": "1234"}`` or ``"1234_5"`` for an array task). This module asks Slurm about those
ids with one ``squeue`` call (answers are kept for a few seconds, so a report of many cells asks
once). It needs no accounting database: squeue knows every job until a while after it ends, and
a job it no longer knows has ended.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable

__all__ = [
    "ACTIVE_STATES",
    "SlurmQueryError",
    "active_jobs",
    "job_states",
]

#: job states of a job that will still run (or is running): its cell is not free to resubmit
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)

#: seconds an answer of :func:`job_states` is reused
CACHE_S = 2.0

_cache: dict[str, tuple[float, str]] = {}


class SlurmQueryError(RuntimeError):
    """Slurm could not be asked (no squeue here, or the controller does not answer)."""


def job_states(job_ids: Iterable[str], *, fresh: bool = False) -> dict[str, str]:
    """The state squeue shows for each job id (``PENDING``, ``RUNNING``, ``COMPLETED``, ...);
    ``""`` for a job Slurm no longer knows (it ended a while ago).

    Args:
        fresh: ask Slurm even when an answer of the last :data:`CACHE_S` seconds is known.

    Raises:
        SlurmQueryError: squeue is missing or failed for another reason than unknown ids.
    """
    ids = sorted(set(job_ids))
    now = time.monotonic()
    wanted = [i for i in ids if fresh or i not in _cache or now - _cache[i][0] > CACHE_S]
    if wanted:
        answers = _squeue(wanted)
        for job_id in wanted:
            _cache[job_id] = (now, answers.get(job_id, ""))
    return {job_id: _cache[job_id][1] for job_id in ids}


def active_jobs(job_ids: Iterable[str], *, fresh: bool = False) -> set[str]:
    """The ids among ``job_ids`` of jobs that are pending or running (:data:`ACTIVE_STATES`)."""
    return {i for i, state in job_states(job_ids, fresh=fresh).items() if state in ACTIVE_STATES}


def _squeue(job_ids: list[str]) -> dict[str, str]:
    squeue = shutil.which("squeue")
    if squeue is None:
        raise SlurmQueryError("squeue is not on PATH: cannot ask Slurm about the sweep's jobs")
    command = [
        squeue,
        "--noheader",
        "--array",
        "--states=all",
        "--format=%i|%T",
        f"--jobs={','.join(job_ids)}",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SlurmQueryError(f"squeue failed: {err}") from None
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return {}  # none of them is known any more
        raise SlurmQueryError(f"squeue failed: {result.stderr.strip() or result.stdout.strip()}")
    states: dict[str, str] = {}
    for line in result.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id:
            states[job_id] = state.strip()
    return states
