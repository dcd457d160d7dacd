"""The laws of Oja's rule (:class:`~fwp.rules.oja.OjaRule`): an energy inequality per step and,
from it, bounds on |W| over long runs. They hold for the plain rule, W <- W + lr v (k - W^T v)^T;
the official FPA variant, which applies the key activation again after the correction, grows
without bound and is exempt (its requirement :data:`PLAIN_OJA` is unmet).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from ..base import LearningRule
from ..oja import OjaRule
from .compare import as_tensor, default_rtol, describe_case, single_thread
from .family_registry import Requirement, family_check, register_family_check
from .inputs import RuleInputs, RuleLike, resolve_rule


def _correction_activated(rule: OjaRule) -> str | None:
    if not rule.activate_after_correction:
        return None
    return (
        f"rule {rule.name!r} applies its key activation after the correction; the norm bounds "
        f"of Oja's rule do not hold for it (W^T v grows by lr * softmax(.) at every write)"
    )


#: Oja's bounds need the plain rule: the correction k - W^T v is not passed through an activation.
PLAIN_OJA = Requirement("activate_after_correction = False", _correction_activated, family="oja")


def _oja_sequence(
    rule: LearningRule,
    B: int,
    C: int,
    H: int,
    Wd: int,
    steps: int,
    gen: torch.Generator,
    dtype: torch.dtype,
    lr_max: float,
) -> tuple[Tensor, Tensor]:
    """Keys (B, C, steps, Wd) from the rule's activation of random logits, rates in [0, lr_max]."""
    key_logits = torch.randn((B, C, steps, Wd), generator=gen, dtype=dtype) * 3
    value_logits = torch.zeros((B, C, steps, H), dtype=dtype)
    lr_logits = torch.zeros((B, C, steps, rule.lr_size(H)), dtype=dtype)
    K, _, _ = rule.activate_sequence(key_logits, value_logits, lr_logits)
    LR = torch.rand((B, C, steps, rule.lr_size(H)), generator=gen, dtype=dtype) * lr_max
    return K, LR


@family_check("oja", "oja_step_energy", requires=PLAIN_OJA)
def check_oja_step_energy(rule: RuleLike, inputs: RuleInputs) -> None:
    """One Oja step with a unit-norm value and a rate in [0, 1] obeys the energy inequality

        |W'|_F^2 <= |W|_F^2 + lr (|k|^2 - |W^T v|^2).

    Why: with a = W^T v, W' = W + lr v (k - a)^T only changes the component of W along v (the
    "row" v^T W): a becomes (1 - lr) a + lr k, the rest is untouched, so
    |W'|^2 = |W|^2 - |a|^2 + |(1 - lr) a + lr k|^2 and convexity of |.|^2 gives the bound. The
    step can only grow the norm when the key is longer than what W already recalls for v.
    The values and rates of ``inputs`` are replaced by unit-norm values and rates in [0, 1].
    """
    rule = resolve_rule(rule)
    PLAIN_OJA.ensure(rule)
    x = inputs
    gen = torch.Generator().manual_seed(x.seed + 7)
    B, C, _, H, _ = x.shape
    W = x.initial()
    k = x.K[:, :, 0]
    v = F.normalize(torch.randn((B, C, H), generator=gen, dtype=x.dtype), dim=-1).to(W.device)
    lr = torch.rand((B, C, rule.lr_size(H)), generator=gen, dtype=x.dtype).to(W.device)
    W_new = as_tensor(rule.step(W, k, v, lr), "step")
    a = torch.einsum("bchd,bch->bcd", W, v)
    bound = W.pow(2).sum((-1, -2)) + lr[..., 0] * (k.pow(2).sum(-1) - a.pow(2).sum(-1))
    energy = W_new.pow(2).sum((-1, -2))
    slack = default_rtol(x.dtype) * (1 + W.pow(2).sum((-1, -2)) + k.pow(2).sum(-1))
    if not bool((energy <= bound + slack).all()):
        worst = float((energy - bound).max())
        raise AssertionError(
            f"Oja energy inequality |W'|^2 <= |W|^2 + lr (|k|^2 - |W^T v|^2) violated by "
            f"{worst:.3e} ({describe_case(rule, x)})"
        )


def check_oja_rows_bounded(
    rule: RuleLike,
    *,
    height: int = 8,
    width: int = 8,
    steps: int = 500,
    seed: int = 0,
    batch: int = 2,
    channels: int = 1,
    dtype: torch.dtype = torch.float64,
) -> None:
    """Exact bound: values from one orthonormal basis keep every "row" within max(|row0|, |k|).

    Let Q be an orthonormal basis of R^H and every value v_t a column q_j of Q, with rates in
    [0, 1]. In that basis a step replaces the row r_j = q_j^T W by (1 - lr) r_j + lr k and leaves
    the other rows alone (see :func:`check_oja_step_energy`), so each row stays in the convex hull
    of its initial value and the keys: for all t and j,
    |q_j^T W_t| <= max(|q_j^T W_0|, max_s |k_s|), hence |W_t|_F <= sqrt(H) times that. This holds
    deterministically, for any number of steps; it is checked after each of ``steps`` random
    steps (random basis, random j, keys from the rule's activation of random logits).
    """
    rule = resolve_rule(rule)
    PLAIN_OJA.ensure(rule)
    with single_thread():
        B, C, H, Wd = batch, channels, height, width
        gen = torch.Generator().manual_seed(seed)
        Q, _ = torch.linalg.qr(torch.randn((B, C, H, H), generator=gen, dtype=dtype))
        W = torch.randn((B, C, H, Wd), generator=gen, dtype=dtype)
        K, LR = _oja_sequence(rule, B, C, H, Wd, steps, gen, dtype, lr_max=1.0)
        pick = torch.randint(0, H, (steps, B, C), generator=gen)
        row_bound = torch.einsum("bchj,bchd->bcjd", Q, W).norm(dim=-1).amax(-1)
        for t in range(steps):
            v = torch.gather(Q, 3, pick[t][:, :, None, None].expand(B, C, H, 1))[..., 0]
            W = rule.step(W, K[:, :, t], v, LR[:, :, t])
            row_bound = torch.maximum(row_bound, K[:, :, t].norm(dim=-1))
            rows = torch.einsum("bchj,bchd->bcjd", Q, W).norm(dim=-1).amax(-1)
            if not bool((rows <= row_bound * (1 + 1e-9) + 1e-12).all()):
                raise AssertionError(
                    f"rule {rule.name!r}: after step {t + 1} with basis values a row of Q^T W "
                    f"has norm {float(rows.max()):.6g} > bound {float(row_bound.max()):.6g} "
                    f"(height={H}, width={Wd}, seed={seed})"
                )


def check_oja_norm_bounded(
    rule: RuleLike,
    *,
    height: int = 8,
    width: int = 8,
    steps: int = 500,
    seed: int = 0,
    batch: int = 4,
    channels: int = 1,
    factor: float = 4.0,
    dtype: torch.dtype = torch.float64,
) -> None:
    """Statistical bound: with random unit values and rates in [0, 1], |W|_F stays bounded.

    With v uniform on the unit sphere (independent of W and of the rate) and |k_t| <= kappa,
    the energy inequality of :func:`check_oja_step_energy` and E[|W^T v|^2] = |W|_F^2 / H give
    E[|W'|^2 | W] <= (1 - lr / H) |W|^2 + lr kappa^2, hence for every t
    E|W_t|_F^2 <= M := max(|W_0|_F^2, H kappa^2) (the expected energy is pulled towards H kappa^2).
    No deterministic bound exists for arbitrary unit values: values chosen in the left null space
    of W grow |W|_F^2 by |k|^2 per step. So this checks, over ``steps`` random steps, that the
    running maximum of |W_t|_F^2 stays below ``factor * M``. Empirically (10^4 runs of 500 steps,
    H, Wd in 1..16, softmax keys) the worst ratio max_t |W_t|^2 / M is about 2.6, at H = 2,
    Wd = 1; ``factor = 4`` leaves margin. Seeds are fixed, so the check is deterministic.
    """
    rule = resolve_rule(rule)
    PLAIN_OJA.ensure(rule)
    with single_thread():
        B, C, H, Wd = batch, channels, height, width
        gen = torch.Generator().manual_seed(seed)
        W = (
            torch.randn((B, C, H, Wd), generator=gen, dtype=dtype)
            * torch.rand((B, C, 1, 1), generator=gen, dtype=dtype)
            * 3
        )
        K, LR = _oja_sequence(rule, B, C, H, Wd, steps, gen, dtype, lr_max=1.0)
        V = F.normalize(torch.randn((B, C, steps, H), generator=gen, dtype=dtype), dim=-1)
        energy0 = W.pow(2).sum((-1, -2))
        kappa2 = K.pow(2).sum(-1).amax(-1)
        bound = factor * torch.maximum(energy0, H * kappa2)
        for t in range(steps):
            W = rule.step(W, K[:, :, t], V[:, :, t], LR[:, :, t])
            energy = W.pow(2).sum((-1, -2))
            if not bool(torch.isfinite(energy).all() and (energy <= bound).all()):
                raise AssertionError(
                    f"rule {rule.name!r}: |W|_F^2 = {float(energy.max()):.6g} after step {t + 1} "
                    f"exceeds {factor} x max(|W0|^2, H max|k|^2) = {float(bound.max()):.6g} "
                    f"(height={H}, width={Wd}, seed={seed})"
                )


register_family_check(
    "oja",
    "oja_rows_bounded",
    partial(check_oja_rows_bounded, height=4, width=3, steps=200),
    requires=PLAIN_OJA,
    whole_run=True,
)
register_family_check(
    "oja",
    "oja_norm_bounded",
    partial(check_oja_norm_bounded, height=2, width=1, steps=500),
    requires=PLAIN_OJA,
    whole_run=True,
)
