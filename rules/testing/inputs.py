"""Reproducible inputs for rule checks: :class:`RuleInputs` and :func:`make_rule_inputs`.

The tensors are *activated* inputs (what ``step``/``scan``/``paint`` take): bounded random logits
passed through the rule's own :meth:`~fwp.rules.base.LearningRule.activate_sequence`. This module
does not need hypothesis; :mod:`fwp.rules.testing.strategies` draws its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..base import LearningRule
from ..registry import get_rule

#: a rule instance or the name of a registered rule.
RuleLike = LearningRule | str


def resolve_rule(rule: RuleLike) -> LearningRule:
    """A rule instance from an instance or a registered name (``get_rule(name)``).

    Raises:
        TypeError: ``rule`` is neither a :class:`~fwp.rules.base.LearningRule` nor a string.
        ValueError: the name is not registered.
    """
    if isinstance(rule, LearningRule):
        return rule
    if isinstance(rule, str):
        return get_rule(rule)
    raise TypeError(f"expected a LearningRule or a registered rule name; got {rule!r}")


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
    ``"identity"``, keep ``|1 - lr |k|^2| <= 1.25`` for a rate in (0, 1)), learning-rate logits
    lie in ``[-lr_logit_bound, lr_logit_bound]`` (a sigmoid rate in about (0.018, 0.982)) and
    W0's entries in ``[-w0_scale, w0_scale]``.

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
