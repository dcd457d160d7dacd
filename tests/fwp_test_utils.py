"""Tiny training configurations shared by the gan and cli tests."""

from __future__ import annotations

import math

from fwp.gan.config import TrainConfig, build_config

TINY = {
    "data.size": [16, 16],
    "data.limit": 64,
    "painter.steps": 6,
    "painter.latent_dim": 16,
    "painter.controller_input_dim": 16,
    "painter.hidden_size": 32,
    "discriminator.base_channels": 8,
    "discriminator.max_channels": 32,
    "optim.batch_size": 8,
    "run.steps": 6,
    "run.log_every": 2,
    "run.sample_every": 3,
    "run.checkpoint_every": 3,
    "run.num_samples": 8,
    "run.strip_latents": 2,
    "run.device": "cpu",
    "run.tensorboard": False,
    "run.deterministic": True,
}

#: the same configuration as ``fwp train`` command-line options
TINY_CLI = [
    "--preset",
    "quick",
    "--size",
    "16",
    "--data-limit",
    "64",
    "--painter-steps",
    "6",
    "--painter-latent-dim",
    "16",
    "--painter-controller-input-dim",
    "16",
    "--painter-hidden-size",
    "32",
    "--discriminator-base-channels",
    "8",
    "--discriminator-max-channels",
    "32",
    "--batch-size",
    "8",
    "--device",
    "cpu",
    "--no-run-tensorboard",
    "--run-num-samples",
    "8",
    "--run-strip-latents",
    "2",
]


#: a short run of the tiny configuration on the command line: 4 steps, samples and checkpoints
#: every 2, no progress output
TINY_CLI_SHORT_RUN = [
    *TINY_CLI,
    "--steps",
    "4",
    "--run-sample-every",
    "2",
    "--run-checkpoint-every",
    "2",
    "--quiet",
]


def record_losses(trainer) -> list[dict[str, float]]:
    """Make ``trainer`` append {"step", loss name: value} after every step to the returned list."""
    history: list[dict[str, float]] = []
    trainer.step_hook = lambda step, losses: history.append(
        {"step": step, **{k: float(v) for k, v in losses.items()}}
    )
    return history


def straight_and_resumed(make_trainer, root, steps: int = 8, split: int = 4):
    """Train ``steps`` steps straight through in ``root / "full"``, and in ``root / "split"``
    first to step ``split``, then on to ``steps`` by a new trainer resuming from the checkpoint.

    Args:
        make_trainer: ``(run_dir, steps) -> Trainer`` (checkpointing at ``split``).

    Returns:
        (the straight trainer, the resumed trainer, the straight run's losses per step, the
        split run's losses per step), the histories as :func:`record_losses` records them.
    """
    full = make_trainer(root / "full", steps)
    full_history = record_losses(full)
    full.run()
    first = make_trainer(root / "split", split)
    split_history = record_losses(first)
    first.run()
    resumed = make_trainer(root / "split", steps)
    assert resumed.step == split
    resumed_history = record_losses(resumed)
    resumed.run()
    split_history += resumed_history
    assert [h["step"] for h in split_history] == list(range(1, steps + 1))
    return full, resumed, full_history, split_history


def assert_same_losses(expected: list[dict[str, float]], got: list[dict[str, float]]) -> None:
    """Every step's every loss equal to 1e-6 (relative or absolute), naming the first that is
    not."""
    assert len(expected) == len(got), (len(expected), len(got))
    for want, have in zip(expected, got, strict=True):
        assert want.keys() == have.keys(), (want, have)
        for name in want:
            assert math.isclose(want[name], have[name], rel_tol=1e-6, abs_tol=1e-6), (
                name,
                want,
                have,
            )


def tiny_config(**overrides) -> TrainConfig:
    """TINY with overrides given as section__name=value."""
    options = dict(TINY)
    options.update({k.replace("__", "."): v for k, v in overrides.items()})
    return build_config("quick", options=options)


def tiny_sweep_request(**fields):
    """A sweep request of the quick preset with the TINY options (``fields`` of
    :class:`~fwp.gan.sweep.SweepRequest` on top)."""
    from fwp.gan.sweep import SweepRequest

    fields.setdefault("options", dict(TINY))
    return SweepRequest(preset="quick", **fields)


def random_inception_weights(path, seed: int = 0):
    """A randomly initialised FID Inception state dict (pytorch-fid layout) saved at ``path``.

    Same architecture and cost as the real network, so the FID plumbing is exercised without the
    real weights.
    """
    import torch
    from torch import nn

    from fwp.gan import metrics

    torch.manual_seed(seed)
    net = metrics._fid_inception_skeleton()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path
