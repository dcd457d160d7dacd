import math

import pytest
from fwp_test_utils import tiny_config

from fwp.gan.trainer import Trainer


@pytest.mark.parametrize("rule", ["delta", "delta_gated", "hebb"])
def test_fast_and_reference_steps_give_the_same_losses(tmp_path, tiny_emoji, rule):
    """Same inputs, same seeds: the fast mode changes the speed, not the math."""
    histories = {}
    for reference in (True, False):
        trainer = Trainer(
            tiny_config(run__reference=reference, painter__rule=rule, run__steps=4),
            tmp_path / f"run-{reference}",
            images=tiny_emoji,
            progress=False,
        )
        assert trainer.ema.painter.fast_path is not reference
        history = []
        trainer.step_hook = lambda step, losses, h=history: h.append(
            {k: float(v) for k, v in losses.items()}
        )
        trainer.run()
        histories[reference] = history
    assert len(histories[True]) == 4
    for slow, fast in zip(histories[True], histories[False], strict=True):
        for name, value in slow.items():
            assert math.isclose(value, fast[name], rel_tol=1e-4, abs_tol=1e-5), (name, slow, fast)


@pytest.mark.parametrize("rule", ["delta", "delta_rowlr", "delta_gated", "hebb", "oja"])
def test_mixed_precision_step_runs_and_stays_close_to_float32(tmp_path, tiny_emoji, rule):
    """bf16 autocast (``optim.amp``) runs every rule family (the painting itself stays float32:
    the delta rule's triangular solve has no bf16 kernel) and its first step's losses agree with
    the float32 step's to bf16 precision."""
    first = {}
    for amp in (False, True):
        trainer = Trainer(
            tiny_config(optim__amp=amp, painter__rule=rule, run__steps=3),
            tmp_path / f"run-{amp}",
            images=tiny_emoji,
            progress=False,
        )
        history = []
        trainer.step_hook = lambda step, losses, h=history: h.append(
            {k: float(v) for k, v in losses.items()}
        )
        trainer.run()
        assert all(math.isfinite(v) for losses in history for v in losses.values())
        first[amp] = history[0]
    for name, value in first[False].items():
        assert math.isclose(value, first[True][name], rel_tol=2e-2, abs_tol=2e-3), name
