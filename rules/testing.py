"""Property checks for learning rules: hypothesis strategies and plain check functions.

Everything here works on *any* rule: an instance of :class:`~fwp.rules.base.LearningRule` or the
name of a registered rule (built-in or plugin). A plugin author runs every applicable check with
one call::

    from fwp.rules.testing import run_rule_checks

    def test_my_rule():
        run_rule_checks("my_rule")          # or run_rule_checks(MyRule())

The pieces can also be used one by one:

- :func:`make_rule_inputs` builds one reproducible batch of *activated* inputs (the rule's own
  :meth:`~fwp.rules.base.LearningRule.activate_sequence` is applied to bounded random logits);
  :func:`rule_inputs` is the hypothesis strategy over its shapes and seeds.
- generic checks, each ``check(rule, inputs)`` raising ``AssertionError`` with a clear message:
  :func:`check_shapes_and_dtype`, :func:`check_inputs_not_mutated`,
  :func:`check_finite_for_bounded_inputs`, :func:`check_zero_lr_identity`,
  :func:`check_fast_path_matches_scan`, :func:`check_frames_consistent`;
- family checks: :func:`check_additive_order_invariance`, :func:`check_additive_linearity`
  (Hebbian), :func:`check_delta_exact_recall`, :func:`check_delta_no_interference` (delta),
  :func:`check_oja_step_energy`, :func:`check_oja_rows_bounded`, :func:`check_oja_norm_bounded`
  (Oja);
- :func:`run_check` runs one check under hypothesis; :func:`run_rule_checks` runs them all.

Tolerances are *norm-relative*: ``max|actual - expected| <= rtol * max(1, max|expected|)``, with
``rtol`` 1e-9 in float64 and 1e-4 in float32 by default (:func:`default_rtol`).

This module needs ``hypothesis`` (``pip install 'fwp[dev]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fwp.rules.testing needs hypothesis; install it with `pip install 'fwp[dev]'` "
        "or `pip install hypothesis`"
    ) from err

from .base import LearningRule, PaintResult
from .delta import DeltaRule
from .hebbian import HebbianRule
from .oja import OjaRule
from .registry import get_rule

__all__ = [
    "FAMILY_CHECKS",
    "FAMILY_RUN_CHECKS",
    "GENERIC_CHECKS",
    "Check",
    "RuleInputs",
    "applicable_checks",
    "assert_close",
    "check_additive_linearity",
    "check_additive_order_invariance",
    "check_delta_exact_recall",
    "check_delta_no_interference",
    "check_fast_path_matches_scan",
    "check_finite_for_bounded_inputs",
    "check_frames_consistent",
    "check_inputs_not_mutated",
    "check_oja_norm_bounded",
    "check_oja_rows_bounded",
    "check_oja_step_energy",
    "check_shapes_and_dtype",
    "check_zero_lr_identity",
    "default_rtol",
    "make_rule_inputs",
    "resolve_rule",
    "rule_inputs",
    "run_check",
    "run_rule_checks",
    "single_thread",
]

RuleLike = LearningRule | str

# ---------------------------------------------------------------------------------------------
# rules, inputs and tolerances
# ---------------------------------------------------------------------------------------------


def resolve_rule(rule: RuleLike) -> LearningRule:
    """A rule instance from an instance or a registered name (``get_rule(name)``)."""
    if isinstance(rule, LearningRule):
        return rule
    if isinstance(rule, str):
        return get_rule(rule)
    raise TypeError(f"expected a LearningRule or a registered rule name; got {rule!r}")


def default_rtol(dtype: torch.dtype) -> float:
    """The norm-relative tolerance used to compare a fast path with the scan in ``dtype``."""
    if dtype == torch.float64:
        return 1e-9
    if dtype == torch.float32:
        return 1e-4
    return 1e-2  # half precision


@dataclass(frozen=True)
class RuleInputs:
    """One batch of activated inputs for a rule.

    Attributes:
        K: keys (B, C, T, Wd). V: values (B, C, T, H). LR: rates (B, C, T, L), L = lr_size(H).
        W0: initial matrix (B, C, H, Wd) or ``None`` (start from zeros).
        seed: the seed the tensors were made from; checks derive further randomness from it.
        recipe: a :func:`make_rule_inputs` call that rebuilds these inputs (shown on failure).
    """

    K: Tensor
    V: Tensor
    LR: Tensor
    W0: Tensor | None = None
    seed: int = 0
    recipe: str = "RuleInputs(...)"

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """(B, C, T, H, Wd)."""
        B, C, T, Wd = self.K.shape
        return B, C, T, self.V.shape[-1], Wd

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    def initial(self) -> Tensor:
        """W0, or zeros of shape (B, C, H, Wd) when there is none."""
        if self.W0 is not None:
            return self.W0
        B, C, _, H, Wd = self.shape
        return self.K.new_zeros(B, C, H, Wd)

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> RuleInputs:
        """The same inputs cast to ``dtype`` and/or moved to ``device``."""

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        note = f" cast to {dtype}" if dtype is not None and dtype != self.dtype else ""
        return RuleInputs(
            move(self.K), move(self.V), move(self.LR), move(self.W0), self.seed, self.recipe + note
        )

    def clone(self) -> RuleInputs:
        """Deep copies of every tensor."""
        return RuleInputs(
            self.K.clone(),
            self.V.clone(),
            self.LR.clone(),
            None if self.W0 is None else self.W0.clone(),
            self.seed,
            self.recipe,
        )

    def replace(self, **tensors: Tensor | None) -> RuleInputs:
        """A copy with some of ``K``, ``V``, ``LR``, ``W0`` replaced."""
        fields = {"K": self.K, "V": self.V, "LR": self.LR, "W0": self.W0, **tensors}
        return RuleInputs(**fields, seed=self.seed, recipe=self.recipe + " (modified)")

    def __repr__(self) -> str:
        return self.recipe


def _bounded_vectors(
    shape: tuple[int, ...], bound: float, gen: torch.Generator, dtype: torch.dtype
) -> Tensor:
    """Random vectors over the last dimension with L2 norm uniform in [0, bound]."""
    direction = F.normalize(torch.randn(shape, generator=gen, dtype=dtype), dim=-1, eps=1e-12)
    radius = torch.rand((*shape[:-1], 1), generator=gen, dtype=dtype) * bound
    return direction * radius


def make_rule_inputs(
    rule: RuleLike,
    *,
    batch: int = 1,
    channels: int = 1,
    steps: int = 4,
    height: int = 4,
    width: int = 4,
    seed: int = 0,
    with_w0: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    logit_norm: float = 1.5,
    lr_logit_bound: float = 4.0,
    w0_scale: float = 1.0,
) -> RuleInputs:
    """Reproducible activated inputs for ``rule``: bounded logits through ``activate_sequence``.

    The raw controller outputs are bounded so that every rule stays numerically tame: each key
    and value logit vector has L2 norm at most ``logit_norm`` (so raw keys and values, activation
    ``"none"``, keep ``|1 - lr |k|^2| <= 1.25`` for a rate in (0, 1)), learning-rate logits lie in
    ``[-lr_logit_bound, lr_logit_bound]`` (a sigmoid rate in about (0.018, 0.982)) and W0's
    entries in ``[-w0_scale, w0_scale]``.

    Args:
        rule: a rule or a registered name.
        batch, channels, steps, height, width: B, C, T, H, Wd.
        seed: seed of the ``torch.Generator`` every tensor is drawn from (on the CPU).
        with_w0: also draw an initial matrix W0 (else ``W0 is None``).
        dtype, device: of the returned tensors.

    Returns:
        :class:`RuleInputs` with K (B, C, T, Wd), V (B, C, T, H), LR (B, C, T, lr_size(H)).
    """
    rule = resolve_rule(rule)
    B, C, T, H, Wd = batch, channels, steps, height, width
    if min(B, C, T, H, Wd) < 1:
        raise ValueError(
            f"batch, channels, steps, height and width must be >= 1; got {(B, C, T, H, Wd)}"
        )
    L = rule.lr_size(H)
    gen = torch.Generator().manual_seed(seed)
    key_logits = _bounded_vectors((B, C, T, Wd), logit_norm, gen, dtype)
    value_logits = _bounded_vectors((B, C, T, H), logit_norm, gen, dtype)
    lr_logits = (torch.rand((B, C, T, L), generator=gen, dtype=dtype) * 2 - 1) * lr_logit_bound
    W0 = None
    if with_w0:
        W0 = (torch.rand((B, C, H, Wd), generator=gen, dtype=dtype) * 2 - 1) * w0_scale
    with torch.no_grad():
        K, V, LR = rule.activate_sequence(key_logits, value_logits, lr_logits)
    for name, tensor, shape in (
        ("K", K, (B, C, T, Wd)),
        ("V", V, (B, C, T, H)),
        ("LR", LR, (B, C, T, L)),
    ):
        if tuple(tensor.shape) != shape:
            raise AssertionError(
                f"rule {rule.name!r}: activate_sequence returned {name} of shape "
                f"{tuple(tensor.shape)}; expected {shape} (B, C, T, ...)"
            )
    recipe = (
        f"make_rule_inputs({rule.name!r}, batch={B}, channels={C}, steps={T}, height={H}, "
        f"width={Wd}, seed={seed}, with_w0={with_w0}, dtype={dtype}"
    )
    defaults = {"logit_norm": 1.5, "lr_logit_bound": 4.0, "w0_scale": 1.0}
    for name, value in (
        ("logit_norm", logit_norm),
        ("lr_logit_bound", lr_logit_bound),
        ("w0_scale", w0_scale),
    ):
        if value != defaults[name]:
            recipe += f", {name}={value}"
    inputs = RuleInputs(K, V, LR, W0, seed, recipe + ")")
    return inputs if device is None else inputs.to(device=device)


def rule_inputs(
    rule: RuleLike,
    dtype: torch.dtype = torch.float64,
    max_batch: int = 3,
    max_channels: int = 3,
    max_steps: int = 8,
    max_size: int = 8,
    *,
    min_size: int = 1,
    with_w0: bool | None = None,
    device: torch.device | str | None = None,
    logit_norm: float = 1.5,
    lr_logit_bound: float = 4.0,
) -> st.SearchStrategy[RuleInputs]:
    """Hypothesis strategy of :class:`RuleInputs` for ``rule``.

    Hypothesis draws the shapes (B in [1, max_batch], C in [1, max_channels], T in
    [1, max_steps], H and Wd in [min_size, max_size]), whether there is a W0 (unless
    ``with_w0`` fixes it) and a seed; :func:`make_rule_inputs` makes the tensors from the seed,
    which is much faster than drawing every float and still shrinks to small shapes.
    """
    rule = resolve_rule(rule)
    return st.builds(
        make_rule_inputs,
        st.just(rule),
        batch=st.integers(1, max_batch),
        channels=st.integers(1, max_channels),
        steps=st.integers(1, max_steps),
        height=st.integers(min_size, max_size),
        width=st.integers(min_size, max_size),
        seed=st.integers(0, 2**32 - 1),
        with_w0=st.booleans() if with_w0 is None else st.just(with_w0),
        dtype=st.just(dtype),
        device=st.just(device),
        logit_norm=st.just(logit_norm),
        lr_logit_bound=st.just(lr_logit_bound),
    )


def assert_close(actual: Tensor, expected: Tensor, rtol: float, what: str) -> None:
    """Assert ``max|actual - expected| <= rtol * max(1, max|expected|)`` (and equal shapes).

    Raises:
        AssertionError: naming ``what``, the error and the allowed error.
    """
    if not isinstance(actual, Tensor):
        raise AssertionError(f"{what}: expected a tensor, got {type(actual).__name__}")
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what}: shape {tuple(actual.shape)} differs from the reference "
            f"{tuple(expected.shape)}"
        )
    if actual.numel() == 0:
        return
    diff = (actual.detach().double() - expected.detach().double()).abs().max().item()
    scale = max(1.0, expected.detach().double().abs().max().item())
    if not diff <= rtol * scale:  # also catches NaN
        raise AssertionError(
            f"{what}: max abs error {diff:.3e} exceeds {rtol:.1e} x max(1, max|reference|) "
            f"= {rtol * scale:.3e}"
        )


def _where(rule: LearningRule, inputs: RuleInputs) -> str:
    return f"rule {rule.name!r} ({type(rule).__qualname__}) on {inputs!r}"


def _paint_overridden(rule: LearningRule) -> bool:
    return getattr(type(rule), "paint", None) is not LearningRule.paint


def _as_result(out: Tensor | PaintResult, what: str) -> PaintResult:
    if not isinstance(out, PaintResult):
        raise AssertionError(
            f"{what} with frames=True returned {type(out).__name__}, not a PaintResult"
        )
    return out


def _as_tensor(out: Tensor | PaintResult, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise AssertionError(f"{what} returned {type(out).__name__}, not a Tensor")
    return out


def _painters(rule: LearningRule) -> list[tuple[str, Callable[..., Tensor | PaintResult]]]:
    """The scan, plus ``paint`` when the rule overrides it."""
    methods: list[tuple[str, Callable[..., Tensor | PaintResult]]] = [("scan", rule.scan)]
    if _paint_overridden(rule):
        methods.append(("paint", rule.paint))
    return methods


# ---------------------------------------------------------------------------------------------
# generic checks
# ---------------------------------------------------------------------------------------------


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
            raise AssertionError(f"{what} has {'; '.join(problems)} ({_where(rule, inputs)})")

    step_out = _as_tensor(
        rule.step(W, inputs.K[:, :, 0], inputs.V[:, :, 0], inputs.LR[:, :, 0]), "step"
    )
    expect(step_out, (B, C, H, Wd), "step(W, k, v, lr)")
    for name, method in _painters(rule):
        out = _as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        expect(out, (B, C, H, Wd), f"{name}(K, V, LR)")
        res = _as_result(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0, frames=True), name)
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
    where = _where(rule, inputs)
    if out is W:
        raise AssertionError(f"step returned W itself instead of a new tensor ({where})")
    if not torch.equal(W, W_before):
        raise AssertionError(f"step modified W in place ({where})")
    called = ["step"]
    for name, method in _painters(rule):
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
    for name, method in _painters(rule):
        out = _as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        res = _as_result(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0, frames=True), name)
        for what, t in (
            ("result", out),
            ("frames.updates", res.updates),
            ("frames.partials", res.partials),
        ):
            if not torch.isfinite(t).all():
                bad = int((~torch.isfinite(t)).sum())
                raise AssertionError(
                    f"{name} {what} has {bad} non-finite entries ({_where(rule, inputs)})"
                )


def check_zero_lr_identity(rule: RuleLike, inputs: RuleInputs) -> None:
    """With an (activated) learning rate of 0, ``step`` returns W and ``scan``/``paint`` return W0.

    Only meaningful for rules that declare ``zero_lr_is_identity = True``.

    Raises:
        ValueError: the rule declares ``zero_lr_is_identity = False``.
    """
    rule = resolve_rule(rule)
    if not rule.zero_lr_is_identity:
        raise ValueError(f"rule {rule.name!r} declares zero_lr_is_identity = False")
    rtol = default_rtol(inputs.dtype) * 1e-3
    zeros = torch.zeros_like(inputs.LR)
    W = inputs.initial()
    out = rule.step(W, inputs.K[:, :, 0], inputs.V[:, :, 0], zeros[:, :, 0])
    assert_close(out, W, rtol, f"step with lr = 0 vs W ({_where(rule, inputs)})")
    for name, method in _painters(rule):
        out = _as_tensor(method(inputs.K, inputs.V, zeros, W0=inputs.W0), name)
        assert_close(out, W, rtol, f"{name} with LR = 0 vs W0 ({_where(rule, inputs)})")


def _cotangent(like: Tensor, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape, generator=gen, dtype=like.dtype).to(like.device)


def _grads(output: Tensor, leaves: Sequence[Tensor], cotangent: Tensor, what: str) -> list[Tensor]:
    if not output.requires_grad:
        raise AssertionError(
            f"{what} does not require grad although its inputs do: the rule is not "
            f"differentiable with respect to its inputs"
        )
    grads = torch.autograd.grad(output, leaves, grad_outputs=cotangent, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)]


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
    where = _where(rule, x)
    names = ["K", "V", "LR"] + (["W0"] if x.W0 is not None else [])
    leaves = [getattr(x, n).detach().clone().requires_grad_(True) for n in names]
    K, V, LR = leaves[:3]
    W0 = leaves[3] if x.W0 is not None else None

    ref = _as_tensor(rule.scan(K, V, LR, W0=W0), "scan")
    out = _as_tensor(rule.paint(K, V, LR, W0=W0), "paint")
    assert_close(out, ref, rtol, f"paint vs scan, W_T ({where})")
    G = _cotangent(ref, x.seed + 1)
    for name, g_out, g_ref in zip(
        names, _grads(out, leaves, G, "paint"), _grads(ref, leaves, G, "scan"), strict=True
    ):
        assert_close(g_out, g_ref, rtol, f"paint vs scan, gradient w.r.t. {name} ({where})")
    if not frames:
        return
    ref_f = _as_result(rule.scan(K, V, LR, W0=W0, frames=True), "scan")
    out_f = _as_result(rule.paint(K, V, LR, W0=W0, frames=True), "paint")
    for field in ("image", "updates", "partials"):
        assert_close(
            getattr(out_f, field),
            getattr(ref_f, field),
            rtol,
            f"paint vs scan, frames.{field} ({where})",
        )
    G1, G2 = _cotangent(ref_f.updates, x.seed + 2), _cotangent(ref_f.partials, x.seed + 3)

    def functional(res: PaintResult) -> Tensor:
        return (res.updates * G1).sum() + (res.partials * G2).sum()

    one = torch.ones((), dtype=x.dtype, device=x.K.device)
    for name, g_out, g_ref in zip(
        names,
        _grads(functional(out_f), leaves, one, "paint(frames=True)"),
        _grads(functional(ref_f), leaves, one, "scan(frames=True)"),
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
    where = _where(rule, inputs)
    for name, method in _painters(rule):
        res = _as_result(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0, frames=True), name)
        plain = _as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        assert_close(res.partials[-1], res.image, rtol, f"{name}: partials[-1] vs image ({where})")
        summed = res.updates.cumsum(dim=0) + inputs.initial().unsqueeze(0)
        assert_close(
            summed, res.partials, rtol, f"{name}: W0 + cumsum(updates) vs partials ({where})"
        )
        assert_close(res.image, plain, rtol, f"{name}: frames image vs frames=False ({where})")


# ---------------------------------------------------------------------------------------------
# Hebbian (additive) rules
# ---------------------------------------------------------------------------------------------


def _require_additive(rule: LearningRule) -> None:
    if getattr(rule, "decay", 1.0) != 1.0:
        raise ValueError(
            f"rule {rule.name!r} decays (decay = {rule.decay}); order invariance needs decay == 1"
        )


def check_additive_order_invariance(rule: RuleLike, inputs: RuleInputs) -> None:
    """Permuting time leaves W_T unchanged for a purely additive rule (Hebbian, decay == 1).

    W_T = W0 + sum_t lr_t v_t k_t^T is a sum, so the order of the steps cannot matter. The
    permutation is drawn from ``inputs.seed``; ``scan`` and ``paint`` are both checked.

    Raises:
        ValueError: the rule has a ``decay`` different from 1.
    """
    rule = resolve_rule(rule)
    _require_additive(rule)
    T = inputs.shape[2]
    gen = torch.Generator().manual_seed(inputs.seed + 4)
    perm = torch.randperm(T, generator=gen).to(inputs.K.device)
    rtol = default_rtol(inputs.dtype)
    for name, method in _painters(rule):
        ref = _as_tensor(method(inputs.K, inputs.V, inputs.LR, W0=inputs.W0), name)
        out = _as_tensor(
            method(inputs.K[:, :, perm], inputs.V[:, :, perm], inputs.LR[:, :, perm], W0=inputs.W0),
            name,
        )
        assert_close(
            out,
            ref,
            rtol,
            f"{name} with time permuted by {perm.tolist()} vs original order "
            f"({_where(rule, inputs)})",
        )


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
    where = _where(rule, x)
    for name, method in _painters(rule):

        def W(V: Tensor, LR: Tensor, W0: Tensor | None, method=method, name=name) -> Tensor:
            return _as_tensor(method(x.K, V, LR, W0=W0), name)

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


# ---------------------------------------------------------------------------------------------
# delta rules
# ---------------------------------------------------------------------------------------------


def _is_gated(rule: LearningRule) -> bool:
    return bool(getattr(rule, "gated", False))


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
    W_new = _as_tensor(rule.step(x.initial(), k, v, rates), "step")
    assert_close(
        _read(W_new, k),
        v,
        default_rtol(x.dtype) * 10,
        f"recall W' k after writing v at a unit key k with lr = 1 ({_where(rule, x)})",
    )


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
    where = _where(rule, x)
    rtol = default_rtol(x.dtype) * 10
    keys = _unit_keys(x, max(2, min(T + 1, Wd)))
    k1, k2 = keys[:, :, 0], keys[:, :, 1]
    W1 = _as_tensor(rule.step(x.initial(), k1, x.V[:, :, 0], _unit_rates(rule, x)), "step")
    lr2 = x.LR[:, :, -1].clone()
    if _is_gated(rule):
        lr2[..., :1] = 1.0
    W2 = _as_tensor(rule.step(W1, k2, x.V[:, :, -1], lr2), "step")
    assert_close(
        _read(W2, k1), _read(W1, k1), rtol, f"W k1 after writing at k2 ⟂ k1 vs before ({where})"
    )
    n = min(T, Wd)
    Kn, Vn = keys[:, :, :n].contiguous(), x.V[:, :, :n].contiguous()
    LRn = _unit_rates(rule, x).unsqueeze(2).expand(B, C, n, -1).contiguous()
    for name, method in _painters(rule):
        Wn = _as_tensor(method(Kn, Vn, LRn, W0=x.W0), name)
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


# ---------------------------------------------------------------------------------------------
# Oja's rule
# ---------------------------------------------------------------------------------------------


def _require_plain_oja(rule: LearningRule) -> None:
    if getattr(rule, "activate_after_correction", False):
        raise ValueError(
            f"rule {rule.name!r} applies its key activation after the correction; the norm bounds "
            f"of Oja's rule do not hold for it (W^T v grows by lr * softmax(.) at every write)"
        )


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
    _require_plain_oja(rule)
    x = inputs
    gen = torch.Generator().manual_seed(x.seed + 7)
    B, C, _, H, _ = x.shape
    W = x.initial()
    k = x.K[:, :, 0]
    v = F.normalize(torch.randn((B, C, H), generator=gen, dtype=x.dtype), dim=-1).to(W.device)
    lr = torch.rand((B, C, rule.lr_size(H)), generator=gen, dtype=x.dtype).to(W.device)
    W_new = _as_tensor(rule.step(W, k, v, lr), "step")
    a = torch.einsum("bchd,bch->bcd", W, v)
    bound = W.pow(2).sum((-1, -2)) + lr[..., 0] * (k.pow(2).sum(-1) - a.pow(2).sum(-1))
    energy = W_new.pow(2).sum((-1, -2))
    slack = default_rtol(x.dtype) * (1 + W.pow(2).sum((-1, -2)) + k.pow(2).sum(-1))
    if not bool((energy <= bound + slack).all()):
        worst = float((energy - bound).max())
        raise AssertionError(
            f"Oja energy inequality |W'|^2 <= |W|^2 + lr (|k|^2 - |W^T v|^2) violated by "
            f"{worst:.3e} ({_where(rule, x)})"
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
    _require_plain_oja(rule)
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
    _require_plain_oja(rule)
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


# ---------------------------------------------------------------------------------------------
# running checks
# ---------------------------------------------------------------------------------------------

#: a check on one batch of inputs
Check = Callable[[LearningRule, RuleInputs], None]

#: the generic checks, for every rule (see :func:`applicable_checks` for when each applies).
GENERIC_CHECKS: dict[str, Check] = {
    "shapes_and_dtype": check_shapes_and_dtype,
    "inputs_not_mutated": check_inputs_not_mutated,
    "finite_for_bounded_inputs": check_finite_for_bounded_inputs,
    "zero_lr_identity": check_zero_lr_identity,
    "fast_path_matches_scan": check_fast_path_matches_scan,
    "frames_consistent": check_frames_consistent,
}

#: per-input checks of the built-in families: (family class, applies to the instance?, check).
FAMILY_CHECKS: dict[str, tuple[type[LearningRule], Callable[[LearningRule], bool], Check]] = {
    "hebbian_order_invariance": (
        HebbianRule,
        lambda r: getattr(r, "decay", 1.0) == 1.0,
        check_additive_order_invariance,
    ),
    "hebbian_linearity": (HebbianRule, lambda r: True, check_additive_linearity),
    "delta_exact_recall": (DeltaRule, lambda r: True, check_delta_exact_recall),
    "delta_no_interference": (DeltaRule, lambda r: True, check_delta_no_interference),
    "oja_step_energy": (
        OjaRule,
        lambda r: not getattr(r, "activate_after_correction", False),
        check_oja_step_energy,
    ),
}


#: whole-run checks of the built-in families: (family class, applies?, check(rule)).
FAMILY_RUN_CHECKS: dict[
    str, tuple[type[LearningRule], Callable[[LearningRule], bool], Callable[[LearningRule], None]]
] = {
    "oja_rows_bounded": (
        OjaRule,
        lambda r: not getattr(r, "activate_after_correction", False),
        lambda r: check_oja_rows_bounded(r, height=4, width=3, steps=200),
    ),
    "oja_norm_bounded": (
        OjaRule,
        lambda r: not getattr(r, "activate_after_correction", False),
        lambda r: check_oja_norm_bounded(r, height=2, width=1, steps=500),
    ),
}


def applicable_checks(rule: RuleLike, families: bool = True) -> dict[str, Check]:
    """The checks that apply to ``rule``, by name.

    Every generic check applies, except ``zero_lr_identity`` when the rule declares
    ``zero_lr_is_identity = False`` and ``fast_path_matches_scan`` when the rule neither declares
    ``has_fast_path`` nor overrides ``paint``. With ``families``, the checks of
    :data:`FAMILY_CHECKS` whose family class the rule is an instance of are added.
    """
    rule = resolve_rule(rule)
    checks = dict(GENERIC_CHECKS)
    if not rule.zero_lr_is_identity:
        del checks["zero_lr_identity"]
    if not (rule.has_fast_path or _paint_overridden(rule)):
        del checks["fast_path_matches_scan"]
    if families:
        for name, (cls, applies, check) in FAMILY_CHECKS.items():
            if isinstance(rule, cls) and applies(rule):
                checks[name] = check
    return checks


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one intra-op CPU thread, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_check(
    rule: RuleLike,
    check: Check | str,
    *,
    max_examples: int = 25,
    dtype: torch.dtype = torch.float64,
    **strategy_options: Any,
) -> None:
    """Run one check under hypothesis on inputs drawn by :func:`rule_inputs`.

    Args:
        check: a check function ``check(rule, inputs)`` or a name from :data:`GENERIC_CHECKS`
            or :data:`FAMILY_CHECKS`.
        max_examples: hypothesis examples (derandomized, no deadline: reproducible in CI).
        dtype: of the inputs.
        **strategy_options: passed to :func:`rule_inputs` (``max_steps``, ``with_w0``, ...).

    Raises:
        AssertionError: from the check, after hypothesis has shrunk the failing example; the
            report names the inputs as a :func:`make_rule_inputs` call.

    The inputs are tiny, so on the CPU the check runs with one intra-op thread (thread pools
    only add overhead there, a lot of it on a busy CI machine); the setting is restored after.
    """
    rule = resolve_rule(rule)
    if isinstance(check, str):
        known = {**GENERIC_CHECKS, **{n: c for n, (_, _, c) in FAMILY_CHECKS.items()}}
        if check not in known:
            raise ValueError(f"unknown check {check!r}; choose one of: {', '.join(sorted(known))}")
        check = known[check]

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(inputs=rule_inputs(rule, dtype=dtype, **strategy_options))
    def property_holds(inputs: RuleInputs) -> None:
        check(rule, inputs)

    with single_thread():
        property_holds()


def run_rule_checks(
    rule_or_name: RuleLike,
    max_examples: int = 25,
    *,
    dtypes: Sequence[torch.dtype] = (torch.float64, torch.float32),
    families: bool = True,
    **strategy_options: Any,
) -> list[str]:
    """Run every applicable check on a rule: the one call a plugin author needs.

    For each dtype, each check of :func:`applicable_checks` runs under hypothesis
    (:func:`run_check`). Rules of the built-in families (instances of ``HebbianRule``,
    ``DeltaRule``, ``OjaRule``, subclasses included) also get their family checks, and the
    whole-run checks of :data:`FAMILY_RUN_CHECKS` (e.g. Oja's norm bounds) run once.

    Args:
        rule_or_name: a rule instance or a registered name.
        max_examples: hypothesis examples per check and dtype.
        dtypes: dtypes to run in; tolerances follow :func:`default_rtol`.
        families: also run the family checks.
        **strategy_options: passed to :func:`rule_inputs` (``max_steps``, ``max_size``, ...).

    Returns:
        The names of the checks that ran.

    Raises:
        AssertionError: the first failing check, naming it, with a reproducible example.
    """
    rule = resolve_rule(rule_or_name)
    checks = applicable_checks(rule, families=families)
    for dtype in dtypes:
        for name, check in checks.items():
            try:
                run_check(rule, check, max_examples=max_examples, dtype=dtype, **strategy_options)
            except AssertionError as err:
                raise AssertionError(
                    f"check {name!r} failed for rule {rule.name!r} in {dtype}: {err}"
                ) from err
    ran = list(checks)
    if families:
        for name, (cls, applies, run) in FAMILY_RUN_CHECKS.items():
            if isinstance(rule, cls) and applies(rule):
                with single_thread():
                    run(rule)
                ran.append(name)
    return ran
