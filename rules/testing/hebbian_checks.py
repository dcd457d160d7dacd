"""The laws of the Hebbian family (:class:`~fwp.rules.hebbian.HebbianRule`): purely additive
updates, W_T = decay^T W0 + sum_t decay^(T-1-t) lr_t v_t k_t^T, are linear in their
contributions and, without decay, independent of the order of the steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..hebbian import HebbianRule
from .compare import as_tensor, assert_close, default_rtol, describe_case, painters
from .family_registry import Requirement, family_check
from .inputs import RuleInputs, RuleLike, resolve_rule


def _decay_unmet(rule: HebbianRule) -> str | None:
    if rule.decay == 1.0:
        return None
    return f"rule {rule.name!r} decays (decay = {rule.decay}); order invariance needs decay == 1"


#: the additive laws that need W to be kept as it is between writes.
NO_DECAY = Requirement("decay == 1", _decay_unmet, family="hebbian")


@family_check("hebbian", "hebbian_order_invariance", requires=NO_DECAY)
def check_additive_order_invariance(rule: RuleLike, inputs: RuleInputs) -> None:
    """Permuting time leaves W_T unchanged for a purely additive rule (Hebbian, decay == 1).

    W_T = W0 + sum_t lr_t v_t k_t^T is a sum, so the order of the steps cannot matter. The
    permutation is drawn from ``inputs.seed``; ``scan`` and ``paint`` are both checked.

    Raises:
        ValueError: the rule has a ``decay`` different from 1.
    """
    rule = resolve_rule(rule)
    NO_DECAY.ensure(rule)
    T = inputs.shape[2]
    gen = torch.Generator().manual_seed(inputs.seed + 4)
    perm = torch.randperm(T, generator=gen).to(inputs.K.device)
    rtol = default_rtol(inputs.dtype)
    for name, method in painters(rule):
        ref = as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        out = as_tensor(
            method(inputs.K[:, :, perm], inputs.V[:, :, perm], inputs.LR[:, :, perm], W0=inputs.W0),
            name,
        )
        assert_close(
            out,
            ref,
            rtol,
            f"{name} with time permuted by {perm.tolist()} vs original order "
            f"({describe_case(rule, inputs)})",
        )


@family_check("hebbian", "hebbian_linearity")
def check_additive_linearity(rule: RuleLike, inputs: RuleInputs) -> None:
    """W_T is linear in the ``lr_t v_t`` contributions (Hebbian, any decay).

    With W_T(V, LR, W0) = decay^T W0 + sum_t decay^(T-1-t) lr_t v_t k_t^T:

    - W(a V1 + b V2, LR, 0) = a W(V1, LR, 0) + b W(V2, LR, 0);
    - W(V, LR1 + LR2, 0) = W(V, LR1, 0) + W(V, LR2, 0);
    - W(V, LR, W0) = W(V, LR, 0) + W(0, LR, W0) (the initial matrix is superposed, not mixed).
    """
    rule = resolve_rule(rule)
    x = inputs
    gen = torch.Generator().manual_seed(x.seed + 5)
    V2 = torch.randn(x.V.shape, generator=gen, dtype=x.dtype).to(x.K.device)
    LR2 = torch.rand(x.LR.shape, generator=gen, dtype=x.dtype).to(x.K.device)
    a, b = (torch.rand(2, generator=gen, dtype=torch.float64) * 4 - 2).tolist()
    rtol = default_rtol(x.dtype) * 10
    where = describe_case(rule, x)
    for name, method in painters(rule):

        def W(V: Tensor, LR: Tensor, W0: Tensor | None, method=method, name=name) -> Tensor:
            return as_tensor(method(x.K, V, LR, W0=W0), name)

        assert_close(
            W(a * x.V + b * V2, x.LR, None),
            a * W(x.V, x.LR, None) + b * W(V2, x.LR, None),
            rtol,
            f"{name}: linearity in V, a = {a:.3f}, b = {b:.3f} ({where})",
        )
        assert_close(
            W(x.V, x.LR + LR2, None),
            W(x.V, x.LR, None) + W(x.V, LR2, None),
            rtol,
            f"{name}: additivity in LR ({where})",
        )
        if x.W0 is not None:
            assert_close(
                W(x.V, x.LR, x.W0),
                W(x.V, x.LR, None) + W(torch.zeros_like(x.V), x.LR, x.W0),
                rtol,
                f"{name}: superposition of W0 ({where})",
            )
