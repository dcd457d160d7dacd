"""Oja's rule with the value as output and the key as input.

Oja, "A simplified neuron model as a principal component analyzer" (1982), in the form that
"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) compares against the delta rule:
W <- W + lr * v (k - W^T v)^T, with k = softmax(key logits).

The variant of the official FPA code (``oja_official``) applies the key activation twice: once
to the key logits, k = softmax(key logits), and once more to the corrected key,
W <- W + lr * v softmax(k - W^T v)^T, at every step and with the learning rate applied from the
first step. The official loop skips the correction at its first step, where its matrix is still
zero, so the correction is zero there anyway; here ``step`` always subtracts W^T v, which gives
the same images from W0 = 0 and keeps ``step`` independent of the step index.

``oja_bounded`` keeps the update and changes the activations so that every step of a painting is
a contraction: unit-norm (L2) values and raw keys. With |v| = 1 and a rate in [0, 1] a step moves
only the component of W along v, W^T v -> (1 - lr) W^T v + lr k, and leaves the rest alone, so
|W|_F^2 grows by at most |k|^2 per step, never geometrically; the raw keys carry the image's
contrast, which softmax keys (entries in [0, 1]) would cap. With raw values, as in ``oja``, a step
multiplies the component of W along v by 1 - lr |v|^2, which flips and grows once lr |v|^2 > 2:
the painter's values grow in training until its images saturate or overflow.
"""

from __future__ import annotations

from einops import einsum
from torch import Tensor

from .activations import bound_rate, rate_activation, vector_activation
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
        activate_after_correction: apply the key activation once more to the corrected key,
            W <- W + lr v act(k - W^T v)^T, as the official FPA code does.
        bounded_rate: divide the rate by max(1, |v|^2), so that a step never overshoots along v:
            the error k - W^T v shrinks by 1 - lr min(1, |v|^2), in [0, 1]. A no-op for unit-norm
            or softmax values; it keeps raw values (``oja``) from growing the matrix
            geometrically.
    """

    family = "oja"
    has_fast_path = False

    def __init__(
        self,
        key_activation: str = "softmax",
        value_activation: str = "identity",
        lr_activation: str = "sigmoid",
        activate_after_correction: bool = False,
        bounded_rate: bool = False,
    ) -> None:
        self.key_fn = vector_activation(key_activation, "key activation")
        self.value_fn = vector_activation(value_activation, "value activation")
        self.lr_fn = rate_activation(lr_activation)
        self.activate_after_correction = activate_after_correction
        self.bounded_rate = bounded_rate

    def activate(self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor):
        k, v, lr = self.key_fn(key_logits), self.value_fn(value_logits), self.lr_fn(lr_logits)
        return k, v, bound_rate(lr, v) if self.bounded_rate else lr

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        """W (B, C, H, Wd), activated k (B, C, Wd), v (B, C, H), lr (B, C, 1) -> W'."""
        back_projected = einsum(W, v, "b c h d, b c h -> b c d")
        corrected = k - back_projected
        if self.activate_after_correction:
            corrected = self.key_fn(corrected)
        return W + einsum(lr * v, corrected, "b c h, b c d -> b c h d")


register_rule("oja", description="Oja: W += sigmoid(lr) v (softmax(k) - W^T v)^T")(OjaRule)
register_rule(
    "oja_official",
    activate_after_correction=True,
    description="Oja as in the official FPA code: W += lr v softmax(softmax(k) - W^T v)^T",
)(OjaRule)
register_rule(
    "oja_bounded",
    key_activation="identity",
    value_activation="l2",
    description="Oja with unit-norm values and raw keys: every step a contraction along v",
)(OjaRule)
