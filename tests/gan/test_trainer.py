import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from fwp_test_utils import TINY_CLI, assert_same_losses, straight_and_resumed, tiny_config

from fwp.gan.checkpoint import load_checkpoint, load_generator
from fwp.gan.config import ConfigError
from fwp.gan.files import atomic_save
from fwp.gan.trainer import Trainer, TrainingError


def test_run_directory_holds_everything(tmp_path, tiny_emoji):
    result = Trainer(tiny_config(), tmp_path / "run", images=tiny_emoji, progress=False).run()
    run = tmp_path / "run"
    assert result.step == 6
    assert (run / "config.json").is_file()
    assert (run / "checkpoints" / "last.pt").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "raw_0000003.png",  # the trained weights, beside the EMA's grid
        "raw_0000006.png",
        "samples_0000003.png",
        "samples_0000006.png",
        "strip_0000003.png",
        "strip_0000006.png",
    ]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,elapsed_s,img_per_s,lr_generator,lr_discriminator,d_loss")
    assert [row.split(",")[0] for row in rows[1:]] == ["2", "3", "4", "6"]
    generator, config = load_generator(run)
    assert config.data.size == [16, 16]
    images = generator.sample(5, seed=3)
    assert images.shape == (5, 3, 16, 16) and images.abs().max() <= 1
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert {"objective", "ema", "rng", "data", "step", "config"} <= set(state)
    assert set(state["objective"]["optimizers"]) == {"generator", "discriminator"}


def test_resume_reproduces_the_uninterrupted_losses(tmp_path, tiny_emoji):
    def trainer(run_dir, steps):
        config = tiny_config(run__steps=steps, run__checkpoint_every=4)
        return Trainer(config, run_dir, images=tiny_emoji, progress=False)

    _, _, full_history, split_history = straight_and_resumed(trainer, tmp_path)
    assert_same_losses(full_history, split_history)


def test_nan_loss_rolls_back_and_continues(tmp_path, tiny_emoji, capsys):
    trainer = Trainer(
        tiny_config(run__steps=6), tmp_path / "run", images=tiny_emoji, progress=False
    )
    original = trainer.objective.train_step
    calls = {"n": 0}

    def flaky(real, step):
        calls["n"] += 1
        losses = original(real, step)
        if calls["n"] == 5:  # once, at step 5: after the step-3 checkpoint
            losses["g_loss"] = losses["g_loss"] * float("nan")
        return losses

    trainer.objective.train_step = flaky
    result = trainer.run()
    assert result.step == 6
    assert "rolled back to step 3" in capsys.readouterr().err
    assert all(math.isfinite(v) for v in result.last_losses.values())
    steps = [
        int(r.split(",")[0]) for r in (tmp_path / "run" / "metrics.csv").read_text().split()[1:]
    ]
    assert steps == sorted(set(steps))  # rows after the rollback point were rewritten, not doubled


def test_persistent_nan_stops_with_a_clear_error(tmp_path, tiny_emoji):
    trainer = Trainer(
        tiny_config(run__max_nan_retries=2), tmp_path / "run", images=tiny_emoji, progress=False
    )
    original = trainer.objective.train_step

    def broken(real, step):
        losses = original(real, step)
        losses["d_loss"] = losses["d_loss"] + float("inf")
        return losses

    trainer.objective.train_step = broken
    with pytest.raises(TrainingError, match=r"non-finite loss \(d_loss\).*rolled back 2 times"):
        trainer.run()
    # the checkpoint on disk is still the good one
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 0


def test_dataset_smaller_than_the_batch_is_refused(tmp_path, tiny_emoji):
    with pytest.raises(ConfigError, match=r"fewer than optim\.batch_size"):
        Trainer(tiny_config(), tmp_path / "run", images=tiny_emoji[:4], progress=False)


def test_atomic_save_never_leaves_a_torn_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    atomic_save({"step": 1}, path)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def _train_command(run_dir, steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fwp.cli",
        "train",
        *TINY_CLI,
        "--quiet",
        "--run-dir",
        str(run_dir),
        "--steps",
        str(steps),
        "--run-checkpoint-every",
        "1",
        "--run-log-every",
        "1",
        "--run-sample-every",
        "1000",
    ]


def test_kill_9_mid_run_then_resume(tmp_path, tiny_emoji):
    """SIGKILL at arbitrary moments (checkpoints are written every step) never breaks resume."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    checkpoint = run_dir / "checkpoints" / "last.pt"
    for delay in (0.05, 0.3, 0.15):
        command = _train_command(run_dir, 400)
        if checkpoint.is_file():
            command = [
                sys.executable,
                "-m",
                "fwp.cli",
                "train",
                "--resume",
                str(run_dir),
                "--quiet",
            ]
        before = load_checkpoint(checkpoint)["step"] if checkpoint.is_file() else 0
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until this process has made progress
            if checkpoint.is_file() and load_checkpoint(checkpoint)["step"] > before:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert load_checkpoint(checkpoint)["step"] > before
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "fwp.cli",
            "train",
            "--resume",
            str(run_dir),
            "--quiet",
            "--steps",
            str(load_checkpoint(checkpoint)["step"] + 2),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "finished at step" in finished.stdout
    leftovers = [p.name for p in checkpoint.parent.iterdir() if p.name != "last.pt"]
    assert all(name.endswith(".tmp") for name in leftovers)  # only torn temporaries, never used
