"""What every check shares: tolerances, :func:`assert_close`, typed results and failure context."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from ..base import LearningRule, PaintResult
from .inputs import RuleInputs

#: a way to paint a whole sequence: ``scan`` or ``paint`` of a rule.
PaintMethod = Callable[..., Tensor | PaintResult]


def default_rtol(dtype: torch.dtype) -> float:
    """The norm-relative tolerance used to compare a fast path with the scan in ``dtype``."""
    if dtype == torch.float64:
        return 1e-9
    if dtype == torch.float32:
        return 1e-4
    return 1e-2  # half precision


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


def describe_case(rule: LearningRule, inputs: RuleInputs) -> str:
    """``rule 'name' (Class) on make_rule_inputs(...)``: the context of a failure message."""
    return f"rule {rule.name!r} ({type(rule).__qualname__}) on {inputs!r}"


def overrides_paint(rule: LearningRule) -> bool:
    """Whether the rule's class replaces the default ``paint`` (the scan) with its own."""
    return type(rule).paint is not LearningRule.paint


def has_parallel_paint(rule: LearningRule) -> bool:
    """Whether there is a fast path to compare with the scan: declared, or ``paint`` replaced."""
    return rule.has_fast_path or overrides_paint(rule)


def as_result(out: Tensor | PaintResult, what: str) -> PaintResult:
    """``out`` if it is a :class:`~fwp.rules.base.PaintResult`, else an ``AssertionError``."""
    if not isinstance(out, PaintResult):
        raise AssertionError(
            f"{what} with frames=True returned {type(out).__name__}, not a PaintResult"
        )
    return out


def as_tensor(out: Tensor | PaintResult, what: str) -> Tensor:
    """``out`` if it is a tensor, else an ``AssertionError`` naming ``what``."""
    if not isinstance(out, Tensor):
        raise AssertionError(f"{what} returned {type(out).__name__}, not a Tensor")
    return out


def painters(rule: LearningRule) -> list[tuple[str, PaintMethod]]:
    """The scan, plus ``paint`` when the rule overrides it: every way the rule paints."""
    methods: list[tuple[str, PaintMethod]] = [("scan", rule.scan)]
    if overrides_paint(rule):
        methods.append(("paint", rule.paint))
    return methods


def cotangent(like: Tensor, seed: int) -> Tensor:
    """A seeded standard-normal tensor shaped like ``like`` (a random output gradient)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape, generator=gen, dtype=like.dtype).to(like.device)


def grads(output: Tensor, leaves: Sequence[Tensor], cotangent: Tensor, what: str) -> list[Tensor]:
    """Gradients of ``sum(cotangent * output)`` w.r.t. ``leaves`` (zeros where unused)."""
    if not output.requires_grad:
        raise AssertionError(
            f"{what} does not require grad although its inputs do: the rule is not "
            f"differentiable with respect to its inputs"
        )
    found = torch.autograd.grad(output, leaves, grad_outputs=cotangent, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, found, strict=True)]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one intra-op CPU thread, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: a check on one batch of inputs: raises ``AssertionError`` when the rule breaks the property.
Check = Callable[[LearningRule, RuleInputs], None]

#: a check that draws its own inputs and runs once per rule (e.g. a long sequence of steps).
RunCheck = Callable[[LearningRule], None]
