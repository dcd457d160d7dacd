"""Oja's rule with the value as output and the key as input.

Oja, "A simplified neuron model as a principal component analyzer" (1982), in the form that
"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) compares against the delta rule:
W <- W + lr * v (k - W^T v)^T. The variant of the official FPA code applies the key's softmax
after the correction: W <- W + lr * v softmax(k - W^T v)^T.
"""

from __future__ import annotations

from einops import einsum
from torch import Tensor

from .activations import RATE_ACTIVATIONS, VECTOR_ACTIVATIONS, lookup
from .base import LearningRule
from .registry import register_rule


class OjaRule(LearningRule):
    """Oja's rule W <- W + lr v (k - W^T v)^T (scan only: W^T v makes it nonlinear in W)."""

    family = "oja"
    has_fast_path = False

    def __init__(
        self,
        key_activation: str = "softmax",
        value_activation: str = "none",
        lr_activation: str = "sigmoid",
        activate_after_correction: bool = False,
    ) -> None:
        key_fn = lookup(VECTOR_ACTIVATIONS, key_activation, "key activation")
        self.value_fn = lookup(VECTOR_ACTIVATIONS, value_activation, "value activation")
        self.lr_fn = lookup(RATE_ACTIVATIONS, lr_activation, "learning-rate activation")
        self.activate_after_correction = activate_after_correction
        # in the official variant the key stays raw until the correction is subtracted
        self.key_fn = VECTOR_ACTIVATIONS["none"] if activate_after_correction else key_fn
        self.correction_fn = key_fn if activate_after_correction else VECTOR_ACTIVATIONS["none"]

    def activate(self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor):
        return self.key_fn(key_logits), self.value_fn(value_logits), self.lr_fn(lr_logits)

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        back_projected = einsum(W, v, "b c h d, b c h -> b c d")
        corrected = self.correction_fn(k - back_projected)
        return W + einsum(lr * v, corrected, "b c h, b c d -> b c h d")


register_rule("oja", description="Oja: W += sigmoid(lr) v (softmax(k) - W^T v)^T")(OjaRule)
register_rule(
    "oja_official",
    activate_after_correction=True,
    description="Oja as in the official FPA code: W += lr v softmax(k - W^T v)^T",
)(OjaRule)
