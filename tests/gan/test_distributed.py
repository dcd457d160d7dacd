"""Data-parallel training: two CPU processes with gloo, launched by torchrun.

- Two ranks on batch B equal one process on the global batch 2B (both ranks' shards, the same
  latents and random crops), after steps with and without the gradient penalty: gradients are
  averaged over ranks, the penalty's double backward included, and the EMA follows. Every rank
  ends with exactly the same parameters, and only rank 0 writes the run directory.
- Rank 0's checkpoint resumes every rank exactly (each rank's RNG state is in it).
- Killing one rank fails the run (no hang), and ``--resume`` continues it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fwp_test_utils import TINY_CLI

from fwp.gan import distributed
from fwp.gan.checkpoint import load_checkpoint
from fwp.gan.config import ConfigError
from fwp.gan.data import DataStream
from fwp.gan.metrics_log import read_metrics
from fwp.gan.trainer import Trainer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ddp_worker import (  # noqa: E402
    BATCH,
    STEPS,
    SampleRandomness,
    float64,
    params_of,
    train_in_float64,
    worker_config,
)

WORLD = 2
#: two ranks on this machine, meeting on a free port (not torchrun's fixed default port)
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc-per-node",
    str(WORLD),
]


def torchrun(*args: str, timeout: float, env: dict[str, str] | None = None):
    """``torchrun --standalone --nproc-per-node 2 ARGS`` (run to completion)."""
    return subprocess.run(
        [*TORCHRUN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# -- launch environment --------------------------------------------------------------------------
def test_torchrun_and_slurm_environments_name_the_ranks() -> None:
    torchrun_env = {
        "RANK": "1",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
    }
    info = distributed.detect(torchrun_env)
    assert (info.rank, info.world_size, info.local_rank, info.launcher) == (1, 4, 1, "torchrun")
    assert info.init_method == "env://" and not info.is_main and info.distributed

    slurm = {
        "SLURM_PROCID": "2",
        "SLURM_STEP_NUM_TASKS": "3",
        "SLURM_LOCALID": "0",
        "SLURM_STEP_NODELIST": "nodeb,nodec",
        "SLURM_JOB_ID": "20007",
    }
    info = distributed.detect(slurm)
    assert (info.rank, info.world_size, info.launcher) == (2, 3, "slurm")
    assert info.init_method == "tcp://nodeb:20007"
    assert distributed.detect({**slurm, "MASTER_ADDR": "m", "MASTER_PORT": "9"}).init_method == (
        "tcp://m:9"
    )
    # torchrun's environment wins over Slurm's (torchrun inside a Slurm job)
    assert distributed.detect({**slurm, **torchrun_env}).launcher == "torchrun"


def test_one_process_is_not_distributed() -> None:
    assert not distributed.detect({}).distributed
    # a Slurm batch script (no job step) of a multi-task job is one process, not rank 0 of N
    batch_step = {"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"}
    assert distributed.detect(batch_step) == distributed.DistInfo()
    assert not distributed.detect({"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"}).distributed
    assert distributed.current() == distributed.DistInfo()
    with distributed.session("cpu", env={}) as info:
        assert info == distributed.DistInfo()


def test_bad_launch_environments_are_refused() -> None:
    with pytest.raises(distributed.DistributedError, match="does not fit"):
        distributed.detect({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    with pytest.raises(distributed.DistributedError, match="MASTER_ADDR"):
        distributed.detect({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(distributed.DistributedError, match="not an integer"):
        distributed.detect({"SLURM_PROCID": "x", "SLURM_STEP_NUM_TASKS": "2"})
    with pytest.raises(ConfigError, match="FWP_DIST_TIMEOUT"):
        distributed.timeout_from_env({"FWP_DIST_TIMEOUT": "soon"})
    assert distributed.timeout_from_env({"FWP_DIST_TIMEOUT": "30"}).total_seconds() == 30


def test_ranks_draw_from_distinct_seeds() -> None:
    seeds = {
        distributed.rank_seed(seed, distributed.DistInfo(rank, 4, rank, "torchrun", "env://"))
        for seed in range(3)
        for rank in range(4)
    }
    assert len(seeds) == 12
    assert distributed.rank_seed(5, distributed.DistInfo()) == 5  # one process: the run's seed


# -- two ranks against one process ---------------------------------------------------------------
class BothShards:
    """The global batch: rank 0's batch, then rank 1's (each from its shard of the epoch)."""

    def __init__(self, images: torch.Tensor, seed: int) -> None:
        self.streams = [DataStream(images, BATCH, seed, rank=r, world_size=WORLD) for r in (0, 1)]

    def next_batch(self) -> torch.Tensor:
        return torch.cat([stream.next_batch() for stream in self.streams])

    def state_dict(self) -> dict:
        return self.streams[0].state_dict()


@pytest.fixture(scope="module")
def ddp_worker_run(tmp_path_factory) -> Path:
    """The worker's outputs (see ddp_worker.py): one torchrun launch of two ranks."""
    out = tmp_path_factory.mktemp("ddp")
    result = torchrun(str(HERE / "ddp_worker.py"), str(out), timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_the_global_batch(ddp_worker_run, tmp_path, tiny_emoji):
    out = ddp_worker_run
    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    # the ranks agree exactly: gradients are averaged, so every step is the same on both
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name

    # rank 0 saved exactly what it holds
    state = load_checkpoint(out / "ddp" / "checkpoints" / "last.pt")
    assert state["step"] == STEPS
    for name, value in state["objective"]["networks"]["discriminator"].items():
        assert torch.equal(value, rank0[f"discriminator.{name}"]), name
    for name, value in state["ema"].items():
        assert torch.equal(value, rank0[f"ema.{name}"]), name

    # one process, batch 2B: both shards and the same per-sample draws
    config = worker_config()
    config.optim.batch_size = WORLD * BATCH
    with float64():
        reference = Trainer(config, tmp_path / "reference", images=tiny_emoji, progress=False)
    reference.stream = BothShards(tiny_emoji, config.run.seed)  # type: ignore[assignment]
    SampleRandomness(rank=0, world=1).install(reference)
    initial = params_of(reference)
    train_in_float64(reference)
    expected = params_of(reference)
    assert expected.keys() == rank0.keys()
    for name, value in expected.items():
        assert value.dtype in (torch.float64, torch.int64), (name, value.dtype)
        torch.testing.assert_close(rank0[name], value, rtol=1e-9, atol=1e-10, msg=name)
    trained = [name for name in expected if not torch.equal(expected[name], initial[name])]
    assert len(trained) > len(expected) // 2  # the comparison is about trained weights

    # a reference with only rank 0's shard does not match: the comparison can fail
    single = worker_config()
    with float64():
        alone = Trainer(single, tmp_path / "alone", images=tiny_emoji, progress=False)
    alone.stream = DataStream(tiny_emoji, BATCH, single.run.seed, rank=0, world_size=WORLD)
    SampleRandomness(rank=0, world=WORLD).install(alone)
    train_in_float64(alone)
    differs = params_of(alone)
    for part in ("generator.", "discriminator.", "ema."):
        assert any(
            not torch.allclose(differs[name], rank0[name], rtol=1e-9, atol=1e-10)
            for name in rank0
            if name.startswith(part)
        ), part


@pytest.mark.slow
def test_only_rank_zero_writes_the_run_directory(ddp_worker_run):
    writes = json.loads((ddp_worker_run / "rank1-writes.json").read_text())
    assert writes == []
    run = ddp_worker_run / "ddp"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    assert [int(row["step"]) for row in read_metrics(run / "metrics.csv")] == [1, 2, 3, 4]


@pytest.mark.slow
def test_rank_zero_checkpoint_resumes_every_rank_exactly(ddp_worker_run):
    straight = load_checkpoint(ddp_worker_run / "straight" / "checkpoints" / "last.pt")
    split = load_checkpoint(ddp_worker_run / "split" / "checkpoints" / "last.pt")
    assert straight["step"] == split["step"] == STEPS
    ranks = straight["rng_ranks"]
    assert len(ranks) == WORLD and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])
    assert torch.equal(straight["rng"]["torch"], ranks[0]["torch"])
    for part in ("generator", "discriminator"):
        for name, value in straight["objective"]["networks"][part].items():
            assert torch.equal(value, split["objective"]["networks"][part][name]), (part, name)
    for name, value in straight["ema"].items():
        assert torch.equal(value, split["ema"][name]), name
    for rank in range(WORLD):
        assert torch.equal(ranks[rank]["torch"], split["rng_ranks"][rank]["torch"])


# -- failure and resume through the command line --------------------------------------------------
def _worker_pids(launcher_pid: int) -> dict[int, int]:
    """{rank: pid} of the processes torchrun started (its children with RANK in their env)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent != launcher_pid:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        for item in env:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(entry.name)
    return found


def _checkpoint_step(run: Path) -> int:
    """The step of the run's last checkpoint (-1 while there is none)."""
    try:
        return int(load_checkpoint(run / "checkpoints" / "last.pt")["step"])
    except (FileNotFoundError, ValueError):
        return -1


@pytest.mark.slow
def test_killing_a_rank_fails_the_run_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    common = [*TINY_CLI, "--batch-size", "4", "--quiet"]
    env = {**os.environ, "FWP_DIST_TIMEOUT": "60", "PYTHONUNBUFFERED": "1"}
    command = TORCHRUN
    launcher = subprocess.Popen(
        [
            *command,
            "-m",
            "fwp.cli",
            "train",
            *common,
            "--steps",
            "2000",
            "--run-checkpoint-every",
            "2",
            "--run-log-every",
            "2",
            "--run-sample-every",
            "1000",
            "--run-dir",
            str(run),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and launcher.poll() is None:
            if _checkpoint_step(run) >= 4:
                break
            time.sleep(0.5)
        assert launcher.poll() is None, launcher.communicate()[0].decode()[-3000:]
        pids = _worker_pids(launcher.pid)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[1], signal.SIGKILL)
        output, _ = launcher.communicate(timeout=120)  # fails, does not hang
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode != 0, output.decode()[-3000:]
    stopped = load_checkpoint(run / "checkpoints" / "last.pt")  # intact: written atomically
    assert 2 <= stopped["step"] < 2000

    target = stopped["step"] + 4
    resumed = torchrun(
        "-m", "fwp.cli", "train", "--resume", str(run), "--steps", str(target), "--quiet",
        timeout=300,
        env={"FWP_DIST_TIMEOUT": "60"},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"finished at step {target}" in resumed.stdout
    assert resumed.stdout.count("finished at step") == 1  # rank 0 alone reports
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == target
    steps = [int(row["step"]) for row in read_metrics(run / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == target
