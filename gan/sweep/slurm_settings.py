"""How a sweep's cells are submitted to Slurm (:class:`SlurmSettings`: partition, time limit,
CPUs, GPUs, memory, account, job arrays, requeues, further sbatch options), checked before any job
is submitted, and turned into submitit's executor parameters."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError

__all__ = ["SlurmSettings", "parse_slurm_option"]

#: sbatch options that fwp sets from its own settings (give them through those)
_OWN_OPTIONS = {
    "time": "--slurm-time",
    "partition": "--slurm-partition",
    "cpus-per-task": "--slurm-cpus",
    "gpus-per-node": "--slurm-gpus",
    "mem": "--slurm-mem",
    "account": "--slurm-account",
    "array": "--slurm-array",
    "signal": "--slurm-signal-delay",
    "job-name": "(set by fwp)",
    "output": "(set by submitit)",
    "error": "(set by submitit)",
    "open-mode": "(set by submitit)",
}
_OPTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_MEMORY = re.compile(r"[1-9][0-9]*[KMGT]?")


def parse_slurm_option(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``("KEY", "VALUE")``; ``"KEY"`` alone is a flag (``("KEY", "")``).

    Raises:
        ConfigError: not an sbatch option name, or an option fwp sets itself.
    """
    key, _, value = text.partition("=")
    key = key.strip().lstrip("-")
    if not _OPTION_NAME.fullmatch(key):
        raise ConfigError(
            f"--slurm-option expects an sbatch option as KEY=VALUE (e.g. qos=high, "
            f"constraint=a100) or a flag KEY (e.g. exclusive); got {text!r}"
        )
    canonical = key.replace("_", "-")
    if canonical in _OWN_OPTIONS:
        raise ConfigError(
            f"--slurm-option {key}: fwp sets this sbatch option itself; use "
            f"{_OWN_OPTIONS[canonical]}"
        )
    return key, value.strip()


@dataclass(frozen=True)
class SlurmSettings:
    """How each cell's Slurm job is submitted.

    Attributes:
        partition: sbatch ``--partition`` (None: the cluster's default partition).
        time_min: the job's time limit in minutes (``--time``); a cell that needs longer is
            requeued at its limit and resumes (see ``max_timeouts``).
        cpus_per_cell: ``--cpus-per-task`` of the cell's one task.
        gpus_per_cell: ``--gpus-per-node`` (0: none; the cell's ``run.device`` auto picks it).
        mem: ``--mem`` per job, e.g. ``16G`` (None: the partition's default).
        account: ``--account`` to charge (None: the user's default).
        array: submit the cells as one job array instead of one job per cell.
        max_timeouts: how often a cell's job may be requeued at its time limit (preemptions
            do not count).
        signal_delay_s: seconds before the time limit at which Slurm signals the job to
            requeue itself.
        options: further sbatch options ``(KEY, VALUE)``; an empty VALUE is a flag.
        python: the Python that runs the jobs (this one by default).
        folder: where submitit keeps its files (default: ``SWEEP_DIR/slurm``).
    """

    partition: str | None = None
    time_min: int = 60
    cpus_per_cell: int = 1
    gpus_per_cell: int = 0
    mem: str | None = None
    account: str | None = None
    array: bool = False
    max_timeouts: int = 3
    signal_delay_s: int = 90
    options: tuple[tuple[str, str], ...] = ()
    python: str = field(default_factory=lambda: sys.executable)
    folder: Path | None = None

    def __post_init__(self) -> None:
        positive = {
            "--slurm-time": self.time_min,
            "--slurm-cpus": self.cpus_per_cell,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be at least 1; got {value}")
        for name, value in {
            "--slurm-gpus": self.gpus_per_cell,
            "--slurm-max-timeouts": self.max_timeouts,
            "--slurm-signal-delay": self.signal_delay_s,
        }.items():
            if value < 0:
                raise ConfigError(f"{name} must not be negative; got {value}")
        if self.mem is not None and not _MEMORY.fullmatch(self.mem):
            raise ConfigError(
                f"--slurm-mem expects a size such as 16G, 500M or 8000 (megabytes); "
                f"got {self.mem!r}"
            )
        named = (("--slurm-partition", self.partition), ("--slurm-account", self.account))
        for name, text in named:
            if text is not None and not text.strip():
                raise ConfigError(f"{name} must not be empty")
        for key, _ in self.options:
            parse_slurm_option(key)

    def parameters(self) -> dict[str, Any]:
        """submitit's SlurmExecutor parameters (without the job name)."""
        params: dict[str, Any] = {
            "time": self.time_min,
            "cpus_per_task": self.cpus_per_cell,
            "ntasks_per_node": 1,
            "nodes": 1,
            "signal_delay_s": self.signal_delay_s,
            "stderr_to_stdout": True,
        }
        if self.gpus_per_cell:
            params["gpus_per_node"] = self.gpus_per_cell
        for name in ("partition", "mem", "account"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        extra = {key: (value if value else True) for key, value in self.options}
        if extra:
            params["additional_parameters"] = extra
        return params

    def describe(self) -> str:
        """One line for ``cell.json``'s device: ``slurm: 1 CPU, 60 min[, 1 GPU][, partition P]``."""
        parts = [f"{self.cpus_per_cell} CPU", f"{self.time_min} min"]
        if self.gpus_per_cell:
            parts.append(f"{self.gpus_per_cell} GPU")
        if self.partition:
            parts.append(f"partition {self.partition}")
        return "slurm: " + ", ".join(parts)
