"""Checks every rule must pass, whatever its family: the rule contract as executable properties.

Each check is ``check(rule, inputs)`` on one batch of :class:`~fwp.rules.testing.RuleInputs` and
raises ``AssertionError`` naming the rule, the property and a :func:`make_rule_inputs` call that
rebuilds the inputs. :data:`GENERIC_REQUIREMENTS` says which rules a check applies to, from the
rule's own declarations (``zero_lr_is_identity``, ``has_fast_path``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..base import LearningRule, PaintResult
from .compare import (
    Check,
    as_result,
    as_tensor,
    assert_close,
    cotangent,
    default_rtol,
    describe_case,
    grads,
    has_parallel_paint,
    painters,
)
from .family_registry import Requirement
from .inputs import RuleInputs, RuleLike, resolve_rule


def _zero_lr_unmet(rule: LearningRule) -> str | None:
    if rule.zero_lr_is_identity:
        return None
    return f"rule {rule.name!r} declares zero_lr_is_identity = False (a step with lr = 0 changes W)"


def _fast_path_unmet(rule: LearningRule) -> str | None:
    if has_parallel_paint(rule):
        return None
    return (
        "the rule has no parallel paint (has_fast_path is False and paint is not overridden), "
        "so the scan is its only path"
    )


#: the conditions under which generic checks apply; a check not listed applies to every rule.
GENERIC_REQUIREMENTS: dict[str, Requirement] = {
    "zero_lr_identity": Requirement("zero_lr_is_identity = True", _zero_lr_unmet),
    "fast_path_matches_scan": Requirement("a parallel paint", _fast_path_unmet),
}


def check_shapes_and_dtype(rule: RuleLike, inputs: RuleInputs) -> None:
    """``step``, ``scan`` and ``paint`` (with and without frames) return W's shape, dtype, device.

    ``step`` -> (B, C, H, Wd); ``scan``/``paint`` -> (B, C, H, Wd), or with ``frames=True`` a
    :class:`PaintResult` whose ``updates`` and ``partials`` are (T, B, C, H, Wd).
    """
    rule = resolve_rule(rule)
    B, C, T, H, Wd = inputs.shape
    W = inputs.initial()

    def expect(t: Tensor, shape: tuple[int, ...], what: str) -> None:
        problems = []
        if tuple(t.shape) != shape:
            problems.append(f"shape {tuple(t.shape)} instead of {shape}")
        if t.dtype != inputs.dtype:
            problems.append(f"dtype {t.dtype} instead of {inputs.dtype}")
        if t.device != inputs.K.device:
            problems.append(f"device {t.device} instead of {inputs.K.device}")
        if problems:
            raise AssertionError(
                f"{what} has {'; '.join(problems)} ({describe_case(rule, inputs)})"
            )

    step_out = as_tensor(
        rule.step(W, inputs.K[:, :, 0], inputs.V[:, :, 0], inputs.LR[:, :, 0]), "step"
    )
    expect(step_out, (B, C, H, Wd), "step(W, k, v, lr)")
    for name, method in painters(rule):
        out = as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        expect(out, (B, C, H, Wd), f"{name}(K, V, LR)")
        res = as_result(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0, frames=True), name)
        expect(res.image, (B, C, H, Wd), f"{name}(frames=True).image")
        expect(res.updates, (T, B, C, H, Wd), f"{name}(frames=True).updates")
        expect(res.partials, (T, B, C, H, Wd), f"{name}(frames=True).partials")


def check_inputs_not_mutated(rule: RuleLike, inputs: RuleInputs) -> None:
    """``step``, ``scan`` and ``paint`` leave K, V, LR, W0 (and W) bit-for-bit unchanged.

    ``step`` must also return a new tensor rather than W itself.
    """
    rule = resolve_rule(rule)
    work = inputs.clone()
    W = work.initial()
    W_before = W.clone()
    out = rule.step(W, work.K[:, :, 0], work.V[:, :, 0], work.LR[:, :, 0])
    where = describe_case(rule, inputs)
    if out is W:
        raise AssertionError(f"step returned W itself instead of a new tensor ({where})")
    if not torch.equal(W, W_before):
        raise AssertionError(f"step modified W in place ({where})")
    called = ["step"]
    for name, method in painters(rule):
        method(work.K, work.V, work.LR, W0=work.W0)
        method(work.K, work.V, work.LR, W0=work.W0, frames=True)
        called.append(name)
    for name in ("K", "V", "LR", "W0"):
        before, after = getattr(inputs, name), getattr(work, name)
        if before is not None and not torch.equal(before, after):
            raise AssertionError(
                f"{name} was modified in place by one of: {', '.join(called)} ({where})"
            )


def check_finite_for_bounded_inputs(rule: RuleLike, inputs: RuleInputs) -> None:
    """For the bounded inputs of :func:`make_rule_inputs` every result and frame is finite."""
    rule = resolve_rule(rule)
    for name, method in painters(rule):
        out = as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        res = as_result(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0, frames=True), name)
        for what, t in (
            ("result", out),
            ("frames.updates", res.updates),
            ("frames.partials", res.partials),
        ):
            if not torch.isfinite(t).all():
                bad = int((~torch.isfinite(t)).sum())
                raise AssertionError(
                    f"{name} {what} has {bad} non-finite entries ({describe_case(rule, inputs)})"
                )


def check_zero_lr_identity(rule: RuleLike, inputs: RuleInputs) -> None:
    """With an (activated) learning rate of 0, ``step`` returns W and ``scan``/``paint`` return W0.

    Only meaningful for rules that declare ``zero_lr_is_identity = True``.

    Raises:
        ValueError: the rule declares ``zero_lr_is_identity = False``.
    """
    rule = resolve_rule(rule)
    GENERIC_REQUIREMENTS["zero_lr_identity"].ensure(rule)
    rtol = default_rtol(inputs.dtype) * 1e-3
    zeros = torch.zeros_like(inputs.LR)
    W = inputs.initial()
    out = rule.step(W, inputs.K[:, :, 0], inputs.V[:, :, 0], zeros[:, :, 0])
    assert_close(out, W, rtol, f"step with lr = 0 vs W ({describe_case(rule, inputs)})")
    for name, method in painters(rule):
        out = as_tensor(method(inputs.K, inputs.V, zeros, W0=inputs.W0), name)
        assert_close(out, W, rtol, f"{name} with LR = 0 vs W0 ({describe_case(rule, inputs)})")


def check_fast_path_matches_scan(
    rule: RuleLike,
    inputs: RuleInputs,
    dtype: torch.dtype | None = None,
    rtol: float | None = None,
    frames: bool = True,
) -> None:
    """``paint`` equals the reference ``scan``: values and gradients w.r.t. K, V, LR and W0.

    Gradients are those of ``sum(G * W_T)`` for a random cotangent ``G`` (torch.autograd.grad).
    With ``frames`` the ``PaintResult`` of both (image, updates, partials) is compared too, with
    the gradients of ``sum(G1 * updates) + sum(G2 * partials)``.

    Args:
        dtype: compare in this dtype (default: the inputs' dtype).
        rtol: norm-relative tolerance (default :func:`default_rtol`: 1e-9 float64, 1e-4 float32).
    """
    rule = resolve_rule(rule)
    x = inputs if dtype is None else inputs.to(dtype)
    rtol = default_rtol(x.dtype) if rtol is None else rtol
    where = describe_case(rule, x)
    names = ["K", "V", "LR"] + (["W0"] if x.W0 is not None else [])
    leaves = [getattr(x, n).detach().clone().requires_grad_(True) for n in names]
    K, V, LR = leaves[:3]
    W0 = leaves[3] if x.W0 is not None else None

    ref = as_tensor(rule.scan(K, V, LR, W0=W0), "scan")
    out = as_tensor(rule.paint(K, V, LR, W0=W0), "paint")
    assert_close(out, ref, rtol, f"paint vs scan, W_T ({where})")
    G = cotangent(ref, x.seed + 1)
    for name, g_out, g_ref in zip(
        names, grads(out, leaves, G, "paint"), grads(ref, leaves, G, "scan"), strict=True
    ):
        assert_close(g_out, g_ref, rtol, f"paint vs scan, gradient w.r.t. {name} ({where})")
    if not frames:
        return
    ref_f = as_result(rule.scan(K, V, LR, W0=W0, frames=True), "scan")
    out_f = as_result(rule.paint(K, V, LR, W0=W0, frames=True), "paint")
    for field in ("image", "updates", "partials"):
        assert_close(
            getattr(out_f, field),
            getattr(ref_f, field),
            rtol,
            f"paint vs scan, frames.{field} ({where})",
        )
    G1, G2 = cotangent(ref_f.updates, x.seed + 2), cotangent(ref_f.partials, x.seed + 3)

    def functional(res: PaintResult) -> Tensor:
        return (res.updates * G1).sum() + (res.partials * G2).sum()

    one = torch.ones((), dtype=x.dtype, device=x.K.device)
    for name, g_out, g_ref in zip(
        names,
        grads(functional(out_f), leaves, one, "paint(frames=True)"),
        grads(functional(ref_f), leaves, one, "scan(frames=True)"),
        strict=True,
    ):
        assert_close(
            g_out, g_ref, rtol, f"paint vs scan with frames, gradient w.r.t. {name} ({where})"
        )


def check_frames_consistent(rule: RuleLike, inputs: RuleInputs, rtol: float | None = None) -> None:
    """With ``frames=True``: ``partials[-1] == image``, ``W0 + cumsum(updates) == partials``,
    and ``image`` equals the result without frames (for ``scan`` and ``paint``)."""
    rule = resolve_rule(rule)
    rtol = default_rtol(inputs.dtype) if rtol is None else rtol
    where = describe_case(rule, inputs)
    for name, method in painters(rule):
        res = as_result(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0, frames=True), name)
        plain = as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        assert_close(res.partials[-1], res.image, rtol, f"{name}: partials[-1] vs image ({where})")
        summed = res.updates.cumsum(dim=0) + inputs.initial().unsqueeze(0)
        assert_close(
            summed, res.partials, rtol, f"{name}: W0 + cumsum(updates) vs partials ({where})"
        )
        assert_close(res.image, plain, rtol, f"{name}: frames image vs frames=False ({where})")


#: the generic checks, for every rule (:data:`GENERIC_REQUIREMENTS` says when each applies).
GENERIC_CHECKS: dict[str, Check] = {
    "shapes_and_dtype": check_shapes_and_dtype,
    "inputs_not_mutated": check_inputs_not_mutated,
    "finite_for_bounded_inputs": check_finite_for_bounded_inputs,
    "zero_lr_identity": check_zero_lr_identity,
    "fast_path_matches_scan": check_fast_path_matches_scan,
    "frames_consistent": check_frames_consistent,
}
