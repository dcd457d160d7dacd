"""A one-node Slurm cluster on this machine, for tests: munged, slurmctld and slurmd with every
file (configuration, key, state, spool, logs, sockets) in one temporary folder.

It needs Debian's ``slurm-wlm`` and ``munge`` and root (slurmd runs jobs as their users; munged
runs as the ``munge`` user). ``SLURM_CONF`` in :attr:`LocalSlurm.env` points Slurm's commands
(sbatch, squeue, scontrol, srun) at it; jobs inherit it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: the daemons and commands the cluster needs
DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scontrol", "srun", "scancel", "sinfo")


class SlurmUnavailable(RuntimeError):
    """Slurm is not installed, or its daemons did not start (the message holds their logs)."""


def _find(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin")


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited one waiting to be reaped does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalSlurm:
    """A Slurm cluster of one node (this machine, ``hostname -s``) under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge-run" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- set-up ------------------------------------------------------------------------------------
    def check_installed(self) -> None:
        """Raise :class:`SlurmUnavailable` naming what is missing."""
        missing = [p for p in (*DAEMONS, *COMMANDS) if _find(p) is None]
        if missing:
            raise SlurmUnavailable(
                f"Slurm is not installed ({', '.join(missing)} not found): install Debian's "
                f"slurm-wlm and munge (apt-get install slurm-wlm munge; .ci/run does)"
            )
        if os.geteuid() != 0:
            raise SlurmUnavailable("a local Slurm cluster needs root (slurmd runs the jobs)")
        try:
            pwd.getpwnam("munge")
        except KeyError:
            raise SlurmUnavailable("the munge user does not exist (reinstall munge)") from None

    def _write_munge_files(self) -> None:
        munge = pwd.getpwnam("munge")
        folders = {"munge-run": 0o755, "munge-etc": 0o700, "munge-log": 0o700, "munge-lib": 0o711}
        for name, mode in folders.items():
            folder = self.root / name
            folder.mkdir()
            folder.chmod(mode)
        key = self.root / "munge-etc" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in [*(self.root / name for name in folders), key]:
            os.chown(path, munge.pw_uid, munge.pw_gid)

    def _write_slurm_conf(self) -> None:
        for name in ("state", "spool"):
            (self.root / name).mkdir()
        cpus = os.cpu_count() or 1
        root = self.root
        lines = [
            "ClusterName=fwptest",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # a requeued job waits cred_expire seconds (default 120) before it may start again
            f"AuthInfo=socket={self.munge_socket},cred_expire=5",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=bf_interval=1,sched_interval=1",
            "ReturnToService=2",
            "MpiDefault=none",
            "KillWait=5",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MailProg=/bin/true",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        program = _find(command[0]) or command[0]
        return subprocess.run(
            [program, *command[1:]], capture_output=True, text=True, env=self.env, check=check
        )

    def start(self, timeout_s: float = 60.0) -> None:
        """Write the configuration, start the daemons and wait for the node to be idle.

        Raises:
            SlurmUnavailable: not installed, or a daemon failed (with every log so far).
        """
        self.check_installed()
        self.root.chmod(0o755)  # munged (the munge user) reaches its folders through it
        self._write_munge_files()
        self._write_slurm_conf()
        munged = _find("munged")
        started = [
            [
                "runuser",
                "-u",
                "munge",
                "--",
                str(munged),
                f"--socket={self.munge_socket}",
                f"--key-file={self.root / 'munge-etc' / 'munge.key'}",
                f"--log-file={self.root / 'munge-log' / 'munged.log'}",
                f"--pid-file={self.root / 'munge-run' / 'munged.pid'}",
                f"--seed-file={self.root / 'munge-lib' / 'munged.seed'}",
            ],
            [str(_find("slurmctld"))],
            [str(_find("slurmd"))],
        ]
        for command in started:
            result = subprocess.run(command, capture_output=True, text=True, env=self.env)
            if result.returncode != 0:
                raise SlurmUnavailable(
                    f"{Path(command[0]).name if command[0] != 'runuser' else 'munged'} did not "
                    f"start (status {result.returncode}): {result.stdout}{result.stderr}\n"
                    + self.logs()
                )
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            result = self._run("sinfo", "--noheader", "--format=%T", check=False)
            state = result.stdout.strip()
            if result.returncode == 0 and state == "idle":
                return
            time.sleep(0.5)
        raise SlurmUnavailable(
            f"the Slurm node did not become idle in {timeout_s:.0f} s (state {state!r})\n"
            + self.logs()
        )

    def stop(self) -> None:
        """Cancel every job and stop the daemons (by the process ids in their pid files)."""
        if self.conf.is_file():
            self._run("scancel", "--full", "--partition=debug", check=False)
        pid_files = [
            self.root / "slurmd.pid",
            self.root / "slurmctld.pid",
            self.root / "munge-run" / "munged.pid",
        ]
        for pid_file in pid_files:
            try:
                pid = int(pid_file.read_text().strip())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue  # never started, or already gone
            deadline = time.monotonic() + 10
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    # -- use -----------------------------------------------------------------------------------
    def logs(self) -> str:
        """Every daemon's log (for failure messages)."""
        parts = []
        for log in ("slurmctld.log", "slurmd.log", "munge-log/munged.log"):
            path = self.root / log
            text = path.read_text(errors="replace") if path.is_file() else "(none)"
            parts.append(f"--- {log} ---\n{text[-4000:]}")
        return "\n".join(parts)

    def version(self) -> str:
        return self._run("sinfo", "--version").stdout.strip()

    def job_state(self, job_id: str) -> str:
        """The state squeue shows for a job ("" once it is no longer known)."""
        result = self._run(
            "squeue", "--noheader", "--array", "--states=all", "--format=%T", f"--jobs={job_id}",
            check=False,
        )  # fmt: skip
        return result.stdout.strip() if result.returncode == 0 else ""
