"""The linear learning-rate decay (optim.lr_decay_start): its factors, the rates every optimiser
steps with, and an exact resume in the middle of the decay."""

import pytest
from fwp_test_utils import assert_same_losses, record_losses, tiny_config

from fwp.gan.config import ConfigError
from fwp.gan.objectives import LinearDecay
from fwp.gan.trainer import Trainer


def test_the_factor_is_one_until_the_start_then_falls_linearly():
    decay = LinearDecay.from_fraction(8, 0.5)
    assert decay.active
    assert [decay.factor(step) for step in range(8)] == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert decay.factor(8) == 0.0 and decay.factor(20) == 0.0
    assert not LinearDecay.from_fraction(8, 1.0).active
    assert [LinearDecay.from_fraction(4, 0.0).factor(s) for s in range(4)] == [1, 0.75, 0.5, 0.25]


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ConfigError, match=r"optim.lr_decay_start must be in \[0, 1\]"):
        tiny_config(optim__lr_decay_start=fraction).validate()


def test_every_optimiser_steps_with_the_decayed_rate(tmp_path, tiny_emoji):
    config = tiny_config(run__steps=8, optim__lr_decay_start=0.5)
    trainer = Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False)
    seen: list[dict[str, float]] = []
    original = trainer.objective.train_step

    def spy(real, step):
        seen.append(trainer.objective.learning_rates())
        return original(real, step)

    trainer.objective.train_step = spy
    trainer.run()
    factors = [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    for name, base in (
        ("generator", config.optim.lr_generator),
        ("discriminator", config.optim.lr_discriminator),
    ):
        assert [rates[name] for rates in seen] == pytest.approx([base * f for f in factors])


def test_the_constant_default_leaves_the_optimisers_untouched(tmp_path, tiny_emoji):
    trainer = Trainer(tiny_config(), tmp_path / "run", images=tiny_emoji, progress=False)
    trainer.run()
    for optimizer in trainer.objective.optimizers.values():
        assert all("initial_lr" not in group for group in optimizer.param_groups)


class _Stop(Exception):
    pass


def test_resuming_inside_the_decay_reproduces_the_uninterrupted_losses(tmp_path, tiny_emoji):
    def trainer(run_dir):
        config = tiny_config(run__steps=8, run__checkpoint_every=4, optim__lr_decay_start=0.25)
        return Trainer(config, run_dir, images=tiny_emoji, progress=False)

    full = trainer(tmp_path / "full")
    full_history = record_losses(full)
    full.run()

    first = trainer(tmp_path / "split")
    split_history = record_losses(first)
    recorded = first.step_hook

    def stop_after_the_checkpoint(step, losses):
        if step == 5:  # the checkpoint of step 4 (inside the decay) is on disk
            raise _Stop
        recorded(step, losses)

    first.step_hook = stop_after_the_checkpoint
    with pytest.raises(_Stop):
        first.run()
    resumed = trainer(tmp_path / "split")
    assert resumed.step == 4
    resumed_history = record_losses(resumed)
    resumed.run()
    split_history += resumed_history
    assert [h["step"] for h in split_history] == list(range(1, 9))
    assert_same_losses(full_history, split_history)
    assert resumed.objective.learning_rates() == full.objective.learning_rates()
