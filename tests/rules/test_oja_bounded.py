"""``oja_bounded``: Oja's update with unit-norm values and raw keys stays bounded for any logits
the controller can emit, where plain ``oja`` (raw values) grows geometrically."""

from __future__ import annotations

import pytest
import torch

from fwp.rules import get_rule


def _paint(rule_name: str, key_logits, value_logits, lr_logits) -> torch.Tensor:
    """The rule's activation, then its reference scan from W0 = 0: logits (B, C, T, .) -> W."""
    rule = get_rule(rule_name)
    return rule.scan(*rule.activate_sequence(key_logits, value_logits, lr_logits))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_energy_never_exceeds_the_keys_energy_whatever_the_logits(seed: int) -> None:
    """|W_T|_F^2 <= sum_t |k_t|^2 (the energy inequality of Oja's rule with unit values, summed
    over steps), for logits a hundred times larger than a trained painter's."""
    gen = torch.Generator().manual_seed(seed)
    B, C, T, H, Wd = 4, 3, 32, 16, 12
    keys = torch.randn(B, C, T, Wd, generator=gen, dtype=torch.float64) * 100
    values = torch.randn(B, C, T, H, generator=gen, dtype=torch.float64) * 100
    rates = torch.randn(B, C, T, 1, generator=gen, dtype=torch.float64) * 10
    W = _paint("oja_bounded", keys, values, rates)
    bound = keys.pow(2).sum((-1, -2))
    assert torch.isfinite(W).all()
    assert (W.pow(2).sum((-1, -2)) <= bound * (1 + 1e-12)).all()


def test_plain_oja_with_the_same_logits_grows_geometrically() -> None:
    """The reason for the variant: raw values of norm > sqrt(2) with a rate near 1 make each step
    flip and stretch W along v, so |W| grows by orders of magnitude in 32 steps."""
    gen = torch.Generator().manual_seed(0)
    B, C, T, H, Wd = 4, 3, 32, 16, 12
    keys = torch.randn(B, C, T, Wd, generator=gen, dtype=torch.float64)
    values = torch.randn(B, C, T, H, generator=gen, dtype=torch.float64)  # |v| ~ 4
    rates = torch.full((B, C, T, 1), 5.0, dtype=torch.float64)  # sigmoid(5) ~ 0.99
    plain = _paint("oja", keys, values, rates).pow(2).sum((-1, -2))
    bounded = _paint("oja_bounded", keys * 10, values, rates).pow(2).sum((-1, -2))
    assert plain.min() > 1e6 * bounded.max()
