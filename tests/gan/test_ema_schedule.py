"""The EMA schedule: fwp's default (every step from the first) and the official one
(lucidrains/lightweight-gan, forked by the official FPA code): updates every 10 steps after step
20000, resets to the trained weights at step indices 2 mod 1000 up to 25000."""

from __future__ import annotations

import pytest
import torch
from fwp_test_utils import tiny_config
from torch import nn

from fwp.gan.config import ConfigError
from fwp.gan.ema import EMASchedule, ema_reset
from fwp.gan.trainer import Trainer

OFFICIAL = EMASchedule(0.995, start=20001, every=10, reset_every=1000, reset_until=25000)


def test_default_schedule_updates_after_every_step_and_never_resets():
    schedule = EMASchedule(0.99)
    assert all(schedule.updates_at(s) for s in range(2000))
    assert not any(schedule.resets_at(s) for s in range(2000))


def test_official_schedule_matches_the_official_conditions():
    steps = range(30_000)
    # the official Trainer.train, with `steps` the index of the step just taken:
    #   if steps % 10 == 0 and steps > 20000: EMA()
    #   if steps <= 25000 and steps % 1000 == 2: reset_parameter_averaging()
    official_updates = [s for s in steps if s % 10 == 0 and s > 20000]
    official_resets = [s for s in steps if s <= 25000 and s % 1000 == 2]
    assert [s for s in steps if OFFICIAL.updates_at(s)] == official_updates
    assert [s for s in steps if OFFICIAL.resets_at(s)] == official_resets
    assert official_resets[0] == 2 and official_resets[-1] == 24002


def test_reset_copies_parameters_and_buffers():
    torch.manual_seed(0)
    model, ema = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    model(torch.randn(8, 3))  # moves the running statistics
    nn.init.normal_(model.weight)
    ema_reset(ema, model)
    for a, b in zip(
        [*ema.parameters(), *ema.buffers()], [*model.parameters(), *model.buffers()], strict=True
    ):
        assert torch.equal(a, b)


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError, match="every >= 1"):
        EMASchedule(0.9, every=0)
    with pytest.raises(ConfigError, match=r"optim\.ema_every"):
        tiny_config(optim__ema_every=0)
    with pytest.raises(ConfigError, match=r"optim\.ema_start"):
        tiny_config(optim__ema_start=-1)


def _ema_trace(tmp_path, images, **options):
    """Per step index: (EMA changed by the step, EMA equal to the trained generator after it)."""
    trainer = Trainer(
        tiny_config(run__steps=6, optim__ema_decay=0.5, **options),
        tmp_path / "run",
        images=images,
        progress=False,
    )
    trace = []
    previous = [p.clone() for p in trainer.ema.parameters()]

    def hook(step, losses):
        nonlocal previous
        now = [p.clone() for p in trainer.ema.parameters()]
        trained = list(trainer.objective.generator.parameters())
        changed = any(not torch.equal(a, b) for a, b in zip(previous, now, strict=True))
        equal = all(torch.equal(a, b) for a, b in zip(now, trained, strict=True))
        trace.append((changed, equal))
        previous = now

    trainer.step_hook = hook
    trainer.run()
    return trace


def test_trainer_follows_the_schedule(tmp_path, tiny_emoji):
    # updates at step indices >= 3 that are even: 4 only, of 0..5
    trace = _ema_trace(tmp_path / "a", tiny_emoji, optim__ema_start=3, optim__ema_every=2)
    assert [changed for changed, _ in trace] == [False, False, False, False, True, False]
    # resets (at indices 2 mod 2, up to 2) without updates: the EMA is the trained generator
    # right after steps 0 and 2, and stays as it was after the others
    trace = _ema_trace(
        tmp_path / "b",
        tiny_emoji,
        optim__ema_start=100,
        optim__ema_reset_every=2,
        optim__ema_reset_until=2,
    )
    assert [equal for _, equal in trace] == [True, False, True, False, False, False]
    assert [changed for changed, _ in trace] == [True, False, True, False, False, False]
