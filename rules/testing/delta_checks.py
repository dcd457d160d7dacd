"""The laws of the delta family (:class:`~fwp.rules.delta.DeltaRule`): a write with lr = 1 at a
unit key stores its value exactly, and writes at orthogonal keys do not interfere.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from ..base import LearningRule
from ..delta import DeltaRule
from .compare import as_tensor, assert_close, default_rtol, describe_case, painters
from .family_registry import family_check
from .inputs import RuleInputs, RuleLike, resolve_rule


def _is_gated(rule: LearningRule) -> bool:
    """The delta family's gated configuration; a rule of another family counts as ungated."""
    return rule.family == DeltaRule.family and cast(DeltaRule, rule).gated


def _unit_rates(rule: LearningRule, inputs: RuleInputs, alpha: Tensor | None = None) -> Tensor:
    """Activated rates (B, C, L) meaning "lr = 1" for a delta rule.

    All ones; for the gated rule, whose rates are ``(alpha, beta)``, beta = 1 and alpha as given
    (default 1: no decay).
    """
    B, C, _, H, _ = inputs.shape
    rates = inputs.K.new_ones(B, C, rule.lr_size(H))
    if _is_gated(rule) and alpha is not None:
        rates[..., :1] = alpha
    return rates


def _unit_keys(inputs: RuleInputs, count: int) -> Tensor:
    """``count`` orthonormal keys per (b, c), (B, C, count, Wd), from ``inputs.seed``."""
    B, C, _, _, Wd = inputs.shape
    gen = torch.Generator().manual_seed(inputs.seed + 6)
    raw = torch.randn((B, C, Wd, count), generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(raw)  # orthonormal columns
    return q.transpose(-1, -2).to(dtype=inputs.dtype, device=inputs.K.device)


def _read(W: Tensor, k: Tensor) -> Tensor:
    """W k: (B, C, H, Wd), (B, C, Wd) -> (B, C, H)."""
    return torch.einsum("bchd,bcd->bch", W, k)


@family_check("delta", "delta_exact_recall")
def check_delta_exact_recall(rule: RuleLike, inputs: RuleInputs) -> None:
    """One delta step with lr = 1 at a unit-norm key stores the value exactly: W' k = v.

    (W + (v - W k) k^T) k = W k + v - W k = v when |k| = 1; for the gated rule
    (alpha W + (v - alpha W k) k^T) k = v for any alpha, so alpha keeps its random value. The
    key is built directly (``step`` takes activated inputs), whatever the rule's key activation.
    """
    rule = resolve_rule(rule)
    x = inputs
    k = _unit_keys(x, 1)[:, :, 0]
    v = x.V[:, :, 0]
    rates = _unit_rates(rule, x, alpha=x.LR[:, :, 0, :1])
    W_new = as_tensor(rule.step(x.initial(), k, v, rates), "step")
    assert_close(
        _read(W_new, k),
        v,
        default_rtol(x.dtype) * 10,
        f"recall W' k after writing v at a unit key k with lr = 1 ({describe_case(rule, x)})",
    )


@family_check("delta", "delta_no_interference")
def check_delta_no_interference(rule: RuleLike, inputs: RuleInputs) -> None:
    """Writing at a key orthogonal to k1 leaves W k1 unchanged (delta rules, without decay).

    - two steps: W1 = step(W, k1, v1, lr = 1), W2 = step(W1, k2, v2, lr) with k2 ⟂ k1 and the
      drawn lr: W2 k1 = W1 k1 + lr (v2 - W1 k2)(k2 . k1) = W1 k1 (= v1);
    - a whole sequence through ``scan`` and ``paint``: n = min(T, Wd) values written at
      orthonormal keys with lr = 1 are all recalled exactly, W_n k_i = v_i, and a key orthogonal
      to all of them (when n < Wd) still reads W0 k.

    For the gated rule the decay gate alpha is 1 (a decay scales every stored memory). Needs
    Wd >= 2: returns without checking when Wd == 1.
    """
    rule = resolve_rule(rule)
    x = inputs
    B, C, T, _, Wd = x.shape
    if Wd < 2:
        return
    where = describe_case(rule, x)
    rtol = default_rtol(x.dtype) * 10
    keys = _unit_keys(x, max(2, min(T + 1, Wd)))
    k1, k2 = keys[:, :, 0], keys[:, :, 1]
    W1 = as_tensor(rule.step(x.initial(), k1, x.V[:, :, 0], _unit_rates(rule, x)), "step")
    lr2 = x.LR[:, :, -1].clone()
    if _is_gated(rule):
        lr2[..., :1] = 1.0
    W2 = as_tensor(rule.step(W1, k2, x.V[:, :, -1], lr2), "step")
    assert_close(
        _read(W2, k1), _read(W1, k1), rtol, f"W k1 after writing at k2 ⟂ k1 vs before ({where})"
    )
    n = min(T, Wd)
    Kn, Vn = keys[:, :, :n].contiguous(), x.V[:, :, :n].contiguous()
    LRn = _unit_rates(rule, x).unsqueeze(2).expand(B, C, n, -1).contiguous()
    for name, method in painters(rule):
        Wn = as_tensor(method(Kn, Vn, LRn, W0=x.W0), name)
        assert_close(
            torch.einsum("bchd,bctd->bcth", Wn, Kn),
            Vn,
            rtol,
            f"{name}: recall of {n} values written at orthonormal keys with lr = 1 ({where})",
        )
        if keys.shape[2] > n:
            k_free = keys[:, :, n]
            assert_close(
                _read(Wn, k_free),
                _read(x.initial(), k_free),
                rtol,
                f"{name}: W k at a key orthogonal to every written key vs W0 k ({where})",
            )
