"""Sweeps on a real Slurm cluster: a one-node cluster on this machine (tests/slurm_cluster.py),
started for this module and stopped after it.

- ``fwp ablate --launcher slurm`` submits the cells (a job array, with a rule plugin the jobs must
  load), re-running it submits nothing new, ``--wait`` waits and reports, and ``fwp ablate
  report`` collects the results like those of local cells.
- A cell whose job is preempted (SIGUSR2, the signal Slurm sends before a preemption or the time
  limit) is requeued through submitit's checkpoint and resumes from its checkpoint.
- ``srun --ntasks 2 fwp train`` trains one run data-parallel over the two tasks.

Without Slurm these tests fail (they do not skip): CI installs slurm-wlm and munge (.ci/run).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fwp_test_utils import TINY, TINY_CLI
from submitit.core.utils import DelayedSubmission

from fwp.cli.main import cli
from fwp.gan.checkpoint import load_checkpoint
from fwp.gan.metrics_log import read_metrics
from fwp.gan.sweep import (
    RESULTS_MD,
    SlurmSettings,
    SweepRequest,
    plan_sweep,
    read_state,
    submit_sweep,
    wait_for_cells,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slurm_cluster import LocalSlurm, SlurmUnavailable

PLUGIN = """
from fwp.rules import register_rule
from fwp.rules.hebbian import HebbianRule


@register_rule("slurm_probe_hebb", description="Hebbian, registered by a plugin file")
class SlurmProbeHebb(HebbianRule):
    family = "slurm-probe"
"""

#: how long a test waits for its jobs before failing with the cluster's logs
JOB_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def slurm():
    """A running one-node Slurm cluster; ``SLURM_CONF`` points the process (and its jobs) at it.
    Its folder is not under pytest's (private) temporary folder: munged, running as the munge
    user, must reach its files."""
    cluster = LocalSlurm(Path(tempfile.mkdtemp(prefix="fwp-slurm-")))
    try:
        cluster.start()
    except SlurmUnavailable as err:
        cluster.stop()
        message = f"cannot start a local Slurm cluster: {err}"
        shutil.rmtree(cluster.root, ignore_errors=True)
        pytest.fail(message, pytrace=False)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


@pytest.fixture
def plugin(tmp_path):
    from fwp.rules import unregister_rule

    path = tmp_path / "slurm_probe_plugin.py"
    path.write_text(PLUGIN)
    yield path
    unregister_rule("slurm_probe_hebb")
    sys.modules.pop("fwp_plugin_slurm_probe_plugin", None)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def jobs_known(cluster: LocalSlurm) -> list[str]:
    """Every job id Slurm knows (pending, running or recently ended)."""
    result = subprocess.run(
        ["squeue", "--noheader", "--array", "--states=all", "--format=%i"],
        capture_output=True,
        text=True,
        env=cluster.env,
        check=True,
    )
    return sorted(result.stdout.split())


def explain(cluster: LocalSlurm, sweep: Path) -> str:
    """The cluster's and the jobs' logs, for a failure message."""
    logs = [cluster.logs()]
    for path in sorted((sweep / "slurm").glob("*.out")) if (sweep / "slurm").is_dir() else []:
        logs.append(f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}")
    for path in sorted(sweep.glob("*/train.log")):
        logs.append(f"--- {path.parent.name}/train.log ---\n{path.read_text()[-3000:]}")
    return "\n".join(logs)


@pytest.mark.slow
def test_a_sweep_runs_as_slurm_jobs_and_reports_like_local_cells(slurm, tmp_path, plugin):
    sweep = tmp_path / "sweep"
    args = [
        "--plugin",
        str(plugin),
        "ablate",
        str(sweep),
        "--rule",
        "delta",
        "--rule",
        "slurm_probe_hebb",
        *TINY_CLI,
        "--steps",
        "4",
        "--run-checkpoint-every",
        "2",
        "--run-sample-every",
        "4",
        "--quiet",
        "--launcher",
        "slurm",
        "--slurm-array",
        "--slurm-time",
        "10",
        "--slurm-option",
        "comment=fwp-test",
    ]
    submitted = invoke(*args)
    assert submitted.exit_code == 0, submitted.output
    assert "2 submitted to Slurm" in submitted.output
    cells = sorted(p.parent for p in sweep.glob("*/cell.json"))
    assert len(cells) == 2
    job_ids = {read_state(cell).owner["slurm_job"] for cell in cells}
    array = {job.split("_")[0] for job in job_ids}
    assert len(job_ids) == 2 and len(array) == 1, job_ids  # one array, two tasks
    assert {read_state(cell).status for cell in cells} <= {"queued", "running"}
    known = jobs_known(slurm)
    assert job_ids <= set(known)
    for job in job_ids:  # each job trains its cell after loading the sweep's plugins
        delayed = DelayedSubmission.load(sweep / "slurm" / f"{job}_submitted.pkl")
        assert delayed.function.plugins == (str(plugin.resolve()),)
        assert Path(delayed.function.run_dir).parent == sweep

    # again, while the jobs are queued or running: nothing is submitted twice
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "0 submitted to Slurm" in again.output and "2 queued or running" in again.output
    assert jobs_known(slurm) == known

    # --wait waits for them and writes the report
    waited = invoke(*args, "--wait")
    assert waited.exit_code == 0, waited.output + explain(slurm, sweep)
    for cell in cells:
        state = read_state(cell)
        assert state.status == "done", explain(slurm, sweep)
        assert state.final_step == 4 and state.attempts == 1 and state.owner == {}
        assert state.parameters and state.wall_s > 0
        assert state.command[0] == "sbatch" and state.device.startswith("slurm: 1 CPU")
        assert "=== attempt 1 at " in (cell / "train.log").read_text()
        assert load_checkpoint(cell / "checkpoints" / "last.pt")["step"] == 4
        script = Path(state.command[1]).read_text()
        assert "#SBATCH --comment=fwp-test" in script and "#SBATCH --time=10" in script
        assert f"{shlex.quote(sys.executable)} -u -m submitit.core._submit" in script

    # the report, as for local cells
    report = invoke("ablate", "report", str(sweep))
    assert report.exit_code == 0, report.output
    results = (sweep / RESULTS_MD).read_text()
    assert "2 done" in results
    for rule in ("delta", "slurm_probe_hebb"):
        assert rule in results

    # finished cells are not submitted again
    done = invoke(*args)
    assert done.exit_code == 0, done.output
    assert "0 submitted to Slurm, 2 already done" in done.output
    assert jobs_known(slurm) == known


#: a delta rule that, once its run has logged a step (step 2, checkpointed right after the log),
#: waits while a hold file exists: the test then preempts the job at a known step, however fast
#: the machine trains
PAUSED_PLUGIN = """
import glob
import os
import time

from fwp.rules import register_rule
from fwp.rules.delta import DeltaRule

HOLD = {hold!r}
LOGGED = {logged!r}


@register_rule("slurm_paused_delta", description="delta; pauses after the first logged step")
class SlurmPausedDelta(DeltaRule):
    def activate_sequence(self, key_logits, value_logits, lr_logits):
        while os.path.exists(HOLD) and glob.glob(LOGGED):
            time.sleep(0.05)
        return super().activate_sequence(key_logits, value_logits, lr_logits)
"""


@pytest.fixture
def paused_plugin(tmp_path):
    """The plugin file (registered here too: the test reads the run's checkpoints) and its hold
    file; the sweep goes in ``tmp_path / "sweep"``."""
    from fwp.rules import load_plugin, unregister_rule

    hold = tmp_path / "hold"
    hold.touch()
    path = tmp_path / "slurm_paused_plugin.py"
    logged = str(tmp_path / "sweep" / "*" / "metrics.csv")
    path.write_text(PAUSED_PLUGIN.format(hold=str(hold), logged=logged))
    load_plugin(str(path))
    yield path, hold
    unregister_rule("slurm_paused_delta")
    sys.modules.pop("fwp_plugin_slurm_paused_plugin", None)


@pytest.mark.slow
def test_a_preempted_cell_is_requeued_and_resumes_from_its_checkpoint(
    slurm, tmp_path, paused_plugin
):
    plugin, hold = paused_plugin
    steps = 24
    options = {
        **TINY,
        "run.steps": steps,
        "run.checkpoint_every": 2,
        "run.log_every": 2,
        "run.sample_every": 1000,
    }
    sweep = tmp_path / "sweep"
    request = SweepRequest(
        preset="quick", rules=["slurm_paused_delta"], options=options, plugins=[str(plugin)]
    )
    plan = plan_sweep(sweep, request)
    summary = submit_sweep(plan, SlurmSettings(time_min=10), progress=False)
    assert not summary.failed, summary.failed
    [(name, job)] = summary.submitted.items()
    run = sweep / name

    # the job trains to its checkpoint of step 2, then waits on the hold file
    deadline = time.monotonic() + JOB_TIMEOUT_S
    step = -1
    while time.monotonic() < deadline and step < 2:
        with contextlib.suppress(FileNotFoundError, ValueError):
            step = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
        time.sleep(0.5)
    assert step == 2, f"step {step}\n" + explain(slurm, sweep)
    assert read_state(run).status == "running"

    # what Slurm sends before a preemption or the time limit: submitit checkpoints and requeues
    subprocess.run(["scancel", "--signal=USR2", job], env=slurm.env, check=True)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:  # requeued: the cell is queued (or already running again)
        state = read_state(run)
        if state.status == "queued" or state.attempts >= 2:
            break
        time.sleep(0.2)
    hold.unlink()  # the requeued job trains on to the end
    statuses = wait_for_cells(plan, [name], poll_s=1.0, timeout_s=JOB_TIMEOUT_S, progress=False)
    assert statuses == {name: "done"}, explain(slurm, sweep)

    state = read_state(run)
    assert state.attempts == 2 and state.final_step == steps, (state, explain(slurm, sweep))
    attempts = [line for line in (run / "train.log").read_text().splitlines() if "===" in line]
    assert len(attempts) == 2 and f"Slurm job {job} " in attempts[0]
    resumed_from = int(attempts[1].rsplit("from step ", 1)[1].split()[0])
    assert resumed_from == 2
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == steps
    logged = [int(row["step"]) for row in read_metrics(run / "metrics.csv")]
    assert logged == list(range(2, steps + 1, 2))  # resumed, not restarted: no step twice
    submitit_log = "".join(p.read_text() for p in (sweep / "slurm").glob(f"{job}_*.out"))
    assert "Calling checkpoint method" in submitit_log and "Requeued job" in submitit_log


@pytest.mark.slow
def test_srun_tasks_train_one_run_data_parallel(slurm, tmp_path):
    run = tmp_path / "run"
    result = subprocess.run(
        [
            "srun",
            "--ntasks=2",
            "--cpus-per-task=1",
            "--time=5",
            sys.executable,
            "-m",
            "fwp.cli",
            "train",
            *TINY_CLI,
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--quiet",
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
        env={**slurm.env, "FWP_DIST_TIMEOUT": "120"},
        timeout=JOB_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr + slurm.logs()
    assert "(2 ranks)" in result.stderr
    assert result.stdout.count("finished at step 2") == 1  # rank 0 alone reports
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["step"] == 2 and len(state["rng_ranks"]) == 2
    assert state["data"]["world_size"] == 2
