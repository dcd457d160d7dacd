import copy
import math

import pytest
import torch
from fwp_test_utils import record_losses, tiny_config

from fwp.gan.trainer import Trainer


def _gradients(objective) -> dict[str, torch.Tensor]:
    return {
        f"{net_name}.{name}": p.grad.clone()
        for net_name, net in objective.networks.items()
        for name, p in net.named_parameters()
        if p.grad is not None
    }


# batch 6: the minibatch-std groups (4) do not divide it, so each batch is one group
# the last case: the logistic loss and a learned initial matrix (W_0 through the WY fast path)
@pytest.mark.parametrize(
    ("rule", "batch", "options"),
    [
        ("delta", 8, {}),
        ("delta_gated", 8, {}),
        ("hebb", 8, {}),
        ("delta", 6, {}),
        ("delta", 8, {"objective__loss": "logistic", "painter__initial_matrix": "learned"}),
    ],
)
def test_fast_and_reference_steps_give_the_same_losses_and_gradients(
    tmp_path, tiny_emoji, rule, batch, options
):
    """Same inputs, same parameters: the fast mode changes the speed, not the math.

    Before every step the fast objective gets the reference's networks and optimiser state, the
    same real batch and the same random seed; then both steps' losses and every parameter's
    gradient must agree. Adam's epsilon is raised from 1e-8 to 1e-4 in both: a gradient that is
    exactly zero in theory, such as the last discriminator bias's under the hinge loss, comes out
    as +-1e-8 in one summation order and 0 in another, and with the default epsilon Adam's first
    step turns that rounding noise into most of a learning rate before the generator's half of
    the same step reads the discriminator.
    """
    trainers = {
        reference: Trainer(
            tiny_config(
                run__reference=reference, painter__rule=rule, optim__batch_size=batch, **options
            ),
            tmp_path / f"run-{reference}",
            images=tiny_emoji,
            progress=False,
        )
        for reference in (True, False)
    }
    slow, fast = trainers[True].objective, trainers[False].objective
    assert trainers[False].ema.painter.fast_path and not trainers[True].ema.painter.fast_path
    assert fast.pair_pass and not slow.pair_pass
    for objective in (slow, fast):
        for optimizer in objective.optimizers.values():
            optimizer.param_groups[0]["eps"] = 1e-4
    for step in range(5):  # steps 0 and 4 carry the gradient penalty
        fast.load_state_dict(copy.deepcopy(slow.state_dict()))
        real = trainers[True].stream.next_batch()
        results = {}
        for reference, objective in ((True, slow), (False, fast)):
            torch.manual_seed(100 + step)
            losses = objective.train_step(real, step)
            results[reference] = ({k: float(v) for k, v in losses.items()}, _gradients(objective))
        (slow_losses, slow_grads), (fast_losses, fast_grads) = results[True], results[False]
        for name, value in slow_losses.items():
            assert math.isclose(value, fast_losses[name], rel_tol=1e-4, abs_tol=1e-5), (step, name)
        assert slow_grads.keys() == fast_grads.keys()
        for name, grad in slow_grads.items():
            scale = grad.abs().max().item()
            torch.testing.assert_close(
                fast_grads[name], grad, rtol=1e-3, atol=1e-4 * scale + 1e-7, msg=f"{step} {name}"
            )


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
        history = record_losses(trainer)
        trainer.run()
        assert all(math.isfinite(v) for losses in history for v in losses.values())
        first[amp] = history[0]
    for name, value in first[False].items():
        assert math.isclose(value, first[True][name], rel_tol=2e-2, abs_tol=2e-3), name
