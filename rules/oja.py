"""Oja's rule with the value as output and the key as input.

Oja, "A simplified neuron model as a principal component analyzer" (1982), in the form that
"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) compares against the delta rule:
W <- W + lr * v (k - W^T v)^T. The variant of the official FPA code applies the key's softmax
after the correction: W <- W + lr * v softmax(k - W^T v)^T.
"""

from __future__ import annotations

from einops import einsum
from torch import Tensor

from .activations import VECTOR_ACTIVATIONS, rate_activation, vector_activation
from .base import LearningRule
from .registry import register_rule


class OjaRule(LearningRule):
    """Oja's rule W <- W + lr v (k - W^T v)^T (scan only: W^T v makes it nonlinear in W).

    Args:
        key_activation: activation of the key logits k (Wd): softmax, l2, tanh, sigmoid or
            identity.
        value_activation: activation of the value logits v (H): softmax, l2, tanh, sigmoid or
            identity (the default: raw values).
        lr_activation: activation of the learning-rate logits: sigmoid, identity, or one (a
            rate of exactly 1).
        activate_after_correction: apply the key activation to the corrected key k - W^T v
            instead of to the key logits.
    """

    family = "oja"
    has_fast_path = False

    def __init__(
        self,
        key_activation: str = "softmax",
        value_activation: str = "identity",
        lr_activation: str = "sigmoid",
        activate_after_correction: bool = False,
    ) -> None:
        key_fn = vector_activation(key_activation, "key activation")
        self.value_fn = vector_activation(value_activation, "value activation")
        self.lr_fn = rate_activation(lr_activation)
        self.activate_after_correction = activate_after_correction
        # in the official variant the key stays raw until the correction is subtracted
        self.key_fn = VECTOR_ACTIVATIONS["identity"] if activate_after_correction else key_fn
        self.correction_fn = key_fn if activate_after_correction else VECTOR_ACTIVATIONS["identity"]

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
