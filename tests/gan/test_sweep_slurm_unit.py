"""The Slurm launcher's parts that need no cluster: settings and their errors, what squeue's
answers mean for a cell (a stand-in ``squeue`` on PATH), and a cell's job callable run in this
process (training, ``cell.json``, the requeue hand-off). test_sweep_slurm.py runs it all on a
real Slurm."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from fwp_test_utils import TINY, TINY_CLI_SHORT_RUN

from fwp.cli.main import cli
from fwp.gan.config import ConfigError
from fwp.gan.sweep import (
    CellJob,
    SlurmSettings,
    SweepRequest,
    cell_status,
    parse_slurm_option,
    plan_sweep,
    read_state,
    slurm_jobs,
    write_state,
)
from fwp.gan.sweep.runner import record_sweep


# -- settings -------------------------------------------------------------------------------------
def test_settings_become_sbatch_parameters() -> None:
    settings = SlurmSettings(
        partition="gpu",
        time_min=240,
        cpus_per_cell=8,
        gpus_per_cell=1,
        mem="32G",
        account="lab",
        options=(parse_slurm_option("qos=high"), parse_slurm_option("exclusive")),
    )
    params = settings.parameters()
    assert params["partition"] == "gpu" and params["time"] == 240
    assert params["cpus_per_task"] == 8 and params["gpus_per_node"] == 1
    assert params["mem"] == "32G" and params["account"] == "lab"
    assert params["additional_parameters"] == {"qos": "high", "exclusive": True}
    assert params["ntasks_per_node"] == 1  # a cell is one process
    assert "gpus_per_node" not in SlurmSettings().parameters()
    assert settings.describe() == "slurm: 8 CPU, 240 min, 1 GPU, partition gpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_min": 0}, "--slurm-time must be at least 1"),
        ({"cpus_per_cell": 0}, "--slurm-cpus must be at least 1"),
        ({"gpus_per_cell": -1}, "--slurm-gpus must not be negative"),
        ({"mem": "lots"}, "--slurm-mem expects a size"),
        ({"partition": " "}, "--slurm-partition must not be empty"),
    ],
)
def test_bad_settings_are_refused(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SlurmSettings(**kwargs)


def test_sbatch_options_are_checked() -> None:
    assert parse_slurm_option("--constraint=a100") == ("constraint", "a100")
    with pytest.raises(ConfigError, match="use --slurm-time"):
        parse_slurm_option("time=10")
    with pytest.raises(ConfigError, match="use --slurm-partition"):
        parse_slurm_option("partition=x")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_slurm_option("=3")


def test_slurm_options_need_the_slurm_launcher(tmp_path) -> None:
    base = ["ablate", str(tmp_path / "sweep"), *TINY_CLI_SHORT_RUN]
    result = CliRunner().invoke(cli, [*base, "--slurm-time", "30"])
    assert result.exit_code != 0 and "--slurm-time applies to Slurm jobs" in result.output
    result = CliRunner().invoke(cli, [*base, "--wait"])
    assert result.exit_code != 0 and "add --launcher slurm" in result.output
    result = CliRunner().invoke(cli, [*base, "--launcher", "slurm", "--jobs", "2"])
    assert result.exit_code != 0 and "--slurm-cpus" in result.output
    result = CliRunner().invoke(cli, [*base, "--launcher", "slurm", "--slurm-option", "mem=4G"])
    assert result.exit_code != 0 and "use --slurm-mem" in result.output
    assert not (tmp_path / "sweep").exists()  # refused before anything was written


# -- what squeue says ----------------------------------------------------------------------------
@pytest.fixture
def fake_squeue(tmp_path, monkeypatch):
    """A ``squeue`` on PATH that prints ``answer`` (or fails with ``error``); returns a setter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "squeue"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(slurm_jobs, "_cache", {})

    def answer(text: str = "", error: str = "", status: int = 0) -> None:
        script.write_text(
            f"#!/bin/sh\nprintf '%s' '{text}'\nprintf '%s' '{error}' >&2\nexit {status}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        slurm_jobs._cache.clear()

    return answer


def test_squeue_answers_name_each_job(fake_squeue) -> None:
    fake_squeue("12|RUNNING\n13_0|PENDING\n13_1|COMPLETED\n")
    states = slurm_jobs.job_states(["12", "13_0", "13_1", "14"])
    assert states == {"12": "RUNNING", "13_0": "PENDING", "13_1": "COMPLETED", "14": ""}
    assert slurm_jobs.active_jobs(["12", "13_0", "13_1", "14"]) == {"12", "13_0"}
    fake_squeue(error="slurm_load_jobs error: Invalid job id specified", status=1)
    assert slurm_jobs.job_states(["99"], fresh=True) == {"99": ""}
    fake_squeue(error="Unable to contact slurm controller", status=1)
    with pytest.raises(slurm_jobs.SlurmQueryError, match="Unable to contact"):
        slurm_jobs.job_states(["99"], fresh=True)


def test_a_cell_whose_job_is_gone_reads_interrupted(fake_squeue, tmp_path) -> None:
    plan = plan_sweep(tmp_path / "sweep", SweepRequest(preset="quick", options=dict(TINY)))
    record_sweep(plan)
    run_dir = plan.cells[0].run_dir
    state = read_state(run_dir)
    state.status, state.owner = "queued", {"slurm_job": "41", "host": "login"}
    write_state(run_dir, state)
    fake_squeue("41|PENDING\n")
    assert cell_status(read_state(run_dir)) == "queued"
    fake_squeue("41|CANCELLED\n")
    assert cell_status(read_state(run_dir)) == "interrupted"
    fake_squeue(error="Invalid job id specified", status=1)
    assert cell_status(read_state(run_dir)) == "interrupted"
    # when Slurm cannot be asked, the cell is left to its job (not trained twice)
    fake_squeue(error="Unable to contact slurm controller", status=1)
    assert cell_status(read_state(run_dir)) == "queued"


# -- the job's callable, in this process ----------------------------------------------------------
def test_a_cells_job_trains_it_and_keeps_its_record(tmp_path, monkeypatch) -> None:
    plan = plan_sweep(tmp_path / "sweep", SweepRequest(preset="quick", options=dict(TINY)))
    record_sweep(plan)
    cell = plan.cells[0]
    from fwp.gan.sweep import prepare_run

    prepare_run(cell)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    job = CellJob(str(cell.run_dir))

    # submitit's checkpoint (preemption, time limit) hands over the same cell and marks it queued
    requeued = job.checkpoint()
    assert requeued.function == CellJob(str(cell.run_dir))
    state = read_state(cell.run_dir)
    assert state.status == "queued" and state.owner["slurm_job"] == "77"

    assert job() == TINY["run.steps"]
    state = read_state(cell.run_dir)
    assert state.status == "done" and state.attempts == 1 and state.owner == {}
    assert state.final_step == TINY["run.steps"] and state.parameters
    log = (cell.run_dir / "train.log").read_text()
    assert "=== attempt 1 at " in log and "Slurm job 77 on " in log

    # a failure is recorded and raised (the job fails)
    (cell.run_dir / "config.json").write_text("{")
    with pytest.raises(ValueError, match=r"config\.json"):
        job()
    state = read_state(cell.run_dir)
    assert state.status == "failed" and state.attempts == 2
    assert "config.json" in state.error.message
    assert (cell.run_dir / state.error.traceback_file).is_file()


def test_submitting_without_slurm_says_so(tmp_path, monkeypatch) -> None:
    from fwp.gan.sweep import submit_sweep

    monkeypatch.setenv("PATH", str(tmp_path))  # no srun, no sbatch
    plan = plan_sweep(tmp_path / "sweep", SweepRequest(preset="quick", options=dict(TINY)))
    with pytest.raises(ConfigError, match="sbatch, srun and squeue must be on PATH"):
        submit_sweep(plan, SlurmSettings(), progress=False)
