"""The ``bounded_rate`` option of the delta and Oja families: the rate divided by max(1, |x|^2)
(x = k for delta, v for Oja), so that raw keys or values cannot grow a painting geometrically.

The option acts in ``activate``; ``step`` and the fast path see ordinary activated rates, so the
fast path stays compared with the scan by test_fast_paths.py. Here: the bound's laws for any
logits, a no-op where vectors are already short, and the reason for it (the unbounded rule
overflows on the same logits).
"""

from __future__ import annotations

import pytest
import torch
from einops import einsum
from hypothesis import given, settings
from hypothesis import strategies as st

from fwp.rules import get_rule
from fwp.rules.base import LearningRule

B, C, T, H, WD = 2, 3, 24, 10, 12


def _logits(seed: int, scale: float, lr_size: int = 1) -> tuple[torch.Tensor, ...]:
    """Key (B, C, T, Wd), value (B, C, T, H) and rate (B, C, T, L) logits, float64."""
    gen = torch.Generator().manual_seed(seed)
    keys = torch.randn(B, C, T, WD, generator=gen, dtype=torch.float64) * scale
    values = torch.randn(B, C, T, H, generator=gen, dtype=torch.float64) * scale
    rates = torch.randn(B, C, T, lr_size, generator=gen, dtype=torch.float64) * 4
    return keys, values, rates


def _projected(rule: LearningRule, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The vector a step's correction projects on: k for delta rules, v for Oja rules."""
    return k if rule.family == "delta" else v


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["delta_raw", "oja", "delta_rowlr", "oja_official"]),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 100.0),
)
def test_the_bounded_rate_times_the_squared_norm_is_at_most_one(
    name: str, seed: int, scale: float
) -> None:
    """lr |x|^2 <= 1 after the bound (rates are sigmoids, in [0, 1]), and lr is unchanged where
    |x| <= 1."""
    plain = get_rule(name)
    bounded = get_rule(name, bounded_rate=True)
    logits = _logits(seed, scale, plain.lr_size(H))
    k, v, lr = bounded.activate(*logits)
    _, _, raw_lr = plain.activate(*logits)
    squared = _projected(bounded, k, v).pow(2).sum(-1, keepdim=True)
    assert (lr * squared <= 1 + 1e-12).all()
    short = (squared <= 1).expand_as(lr)
    assert torch.equal(lr[short], raw_lr[short])
    assert (lr <= raw_lr).all()


@pytest.mark.parametrize("name", ["delta_raw", "oja"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_step_shrinks_its_own_error(name: str, seed: int) -> None:
    """A bounded delta step multiplies v - W k by 1 - lr |k|^2 in [0, 1] (Oja: k - W^T v by
    1 - lr |v|^2), so the error at the step's own vectors never grows, for logits far larger than
    a trained painter's."""
    rule = get_rule(name, bounded_rate=True)
    K, V, LR = rule.activate_sequence(*_logits(seed, 30.0))
    W = torch.randn(B, C, H, WD, dtype=torch.float64)
    for t in range(T):
        k, v = K[:, :, t], V[:, :, t]
        W_next = rule.step(W, k, v, LR[:, :, t])
        if name == "delta_raw":
            before = v - einsum(W, k, "b c h d, b c d -> b c h")
            after = v - einsum(W_next, k, "b c h d, b c d -> b c h")
        else:
            before = k - einsum(W, v, "b c h d, b c h -> b c d")
            after = k - einsum(W_next, v, "b c h d, b c h -> b c d")
        assert (after.norm(dim=-1) <= before.norm(dim=-1) * (1 + 1e-9) + 1e-9).all(), t
        W = W_next


@pytest.mark.parametrize("name", ["delta_raw", "oja"])
def test_the_spectral_norm_grows_at_most_additively(name: str) -> None:
    """With the bound, W' = W (I - lr k k^T) + lr v k^T (Oja: (I - lr v v^T) W + lr v k^T) and
    the bracket has norm <= 1, so |W_T|_2 <= sum_t lr_t |k_t| |v_t|; the same logits without the
    bound overflow by many orders of magnitude (the divergence the option prevents)."""
    logits = _logits(3, 5.0)
    bounded = get_rule(name, bounded_rate=True)
    K, V, LR = bounded.activate_sequence(*logits)
    W = bounded.scan(K, V, LR)
    budget = (LR[..., 0] * K.norm(dim=-1) * V.norm(dim=-1)).sum(-1)
    assert (torch.linalg.matrix_norm(W, ord=2) <= budget * (1 + 1e-9)).all()

    plain = get_rule(name)
    W_plain = plain.scan(*plain.activate_sequence(*logits))
    assert W_plain.abs().amax() > 1e6 * W.abs().amax()


@pytest.mark.parametrize("name", ["delta", "delta_l2", "delta_gated", "oja_bounded"])
def test_a_no_op_for_softmax_and_unit_norm_vectors(name: str) -> None:
    """Softmax and L2 vectors have |x| <= 1, so the bound leaves their rates as they are."""
    plain = get_rule(name)
    logits = _logits(5, 10.0, plain.lr_size(H))
    _, _, lr = get_rule(name, bounded_rate=True).activate(*logits)
    assert torch.allclose(lr, plain.activate(*logits)[2], rtol=1e-12, atol=0)


def test_the_gated_rule_bounds_only_its_write_strength() -> None:
    """The gated rule's rates are (alpha, beta): alpha (the decay gate) is left alone."""
    rule = get_rule("delta_gated", key_activation="identity", bounded_rate=True)
    plain = get_rule("delta_gated", key_activation="identity")
    logits = _logits(6, 10.0, 2)
    k, _, lr = rule.activate(*logits)
    raw = plain.activate(*logits)[2]
    assert torch.equal(lr[..., 0], raw[..., 0])
    assert torch.allclose(lr[..., 1], raw[..., 1] / k.pow(2).sum(-1).clamp_min(1))


@pytest.mark.parametrize("name", ["delta_raw", "delta_rowlr"])
def test_the_fast_path_matches_the_scan_through_the_bound(name: str) -> None:
    """Logits -> bounded rates -> paint, against logits -> bounded rates -> scan: values and the
    gradients with respect to every logit (the bound depends on the keys)."""
    options = {"bounded_rate": True}
    if name == "delta_rowlr":
        options["key_activation"] = "identity"
    rule = get_rule(name, **options)
    results = []
    for method in (rule.paint, rule.scan):
        logits = [x.clone().requires_grad_() for x in _logits(7, 3.0, rule.lr_size(H))]
        W = method(*rule.activate_sequence(*logits))
        (W * torch.linspace(-1, 1, WD, dtype=W.dtype)).sum().backward()
        results.append((W.detach(), [x.grad for x in logits]))
    (fast, fast_grads), (ref, ref_grads) = results
    assert torch.allclose(fast, ref, rtol=1e-9, atol=1e-12)
    for got, want in zip(fast_grads, ref_grads, strict=True):
        assert torch.allclose(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("scale", [0.1, 1.0, 100.0])
def test_bounded_oja_with_softmax_keys_cannot_exceed_one_per_step(scale: float) -> None:
    """Why ``oja{bounded_rate = true}`` keeps softmax keys from painting contrast: each step adds
    at most |k| <= 1 to the largest singular value, so |W_T|_2 <= T for any values, while an
    n x n matrix of ones (a flat white picture) has n."""
    rule = get_rule("oja", bounded_rate=True)
    K, V, LR = rule.activate_sequence(*_logits(11, scale))
    W = rule.scan(K, V, LR)
    assert (torch.linalg.matrix_norm(W, ord=2) <= T * (1 + 1e-9)).all()
    assert (K.norm(dim=-1) <= 1 + 1e-12).all()
