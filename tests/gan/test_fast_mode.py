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
