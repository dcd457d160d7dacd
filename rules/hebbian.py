"""Purely additive (Hebbian) rules: W <- decay * W + lr * v k^T.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) uses the Hebbian "sum" rule (softmax
keys, no learning rate) as a baseline for its delta-rule painter.
"""

from __future__ import annotations

import math

import torch
from einops import einsum
from torch import Tensor

from .activations import decay_weights, rate_activation, vector_activation
from .base import LearningRule, PaintResult, check_sequence_inputs, frames_from_partials
from .registry import register_rule


class HebbianRule(LearningRule):
    """Hebbian outer-product rule W <- decay * W + lr * v k^T.

    Args:
        key_activation: activation of the key logits k (Wd): softmax, l2, tanh, sigmoid or
            identity.
        value_activation: activation of the value logits v (H): softmax, l2, tanh, sigmoid or
            identity (the default: raw values).
        lr_activation: activation of the learning-rate logits: sigmoid, identity, or one (a
            rate of exactly 1, no learning rate).
        per_row_lr: one learning rate per row of W (H rates per step) instead of one scalar.
        decay: factor in (0, 1] that multiplies W before every update; 1 means no forgetting.
    """

    family = "hebbian"
    has_fast_path = True

    def __init__(
        self,
        key_activation: str = "softmax",
        value_activation: str = "identity",
        lr_activation: str = "sigmoid",
        per_row_lr: bool = False,
        decay: float = 1.0,
    ) -> None:
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1]; got {decay}")
        self.key_fn = vector_activation(key_activation, "key activation")
        self.value_fn = vector_activation(value_activation, "value activation")
        self.lr_fn = rate_activation(lr_activation)
        self.per_row_lr = per_row_lr
        self.decay = float(decay)
        self.zero_lr_is_identity = self.decay == 1.0

    def lr_size(self, height: int) -> int:
        return height if self.per_row_lr else 1

    def activate(self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor):
        return self.key_fn(key_logits), self.value_fn(value_logits), self.lr_fn(lr_logits)

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        update = einsum(lr * v, k, "b c h, b c d -> b c h d")
        return W * self.decay + update if self.decay != 1.0 else W + update

    def paint(
        self, K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None = None, frames: bool = False
    ) -> Tensor | PaintResult:
        """All steps as one einsum: W_T = decay^T W0 + sum_t decay^(T-1-t) lr_t v_t k_t^T."""
        T = check_sequence_inputs(self, K, V, LR, W0)[2]
        scaled = LR * V
        if not frames:
            if self.decay != 1.0:
                powers = torch.arange(T - 1, -1, -1, dtype=K.dtype, device=K.device)
                scaled = scaled * (self.decay**powers).view(1, 1, T, 1)
            W = einsum(scaled, K, "b c t h, b c t d -> b c h d")
            if W0 is not None:
                W = W + W0 * self.decay**T
            return W
        log_cumsum = torch.arange(1, T + 1, dtype=K.dtype, device=K.device) * math.log(self.decay)
        weights = decay_weights(log_cumsum, inclusive=True)
        partials = einsum(weights, scaled, K, "t s, b c s h, b c s d -> t b c h d")
        if W0 is not None:
            partials = partials + einsum(log_cumsum.exp(), W0, "t, b c h d -> t b c h d")
        return frames_from_partials(partials, W0)


register_rule("hebb", description="Hebbian: W += sigmoid(lr) v softmax(k)^T")(HebbianRule)
register_rule(
    "hebb_sum",
    lr_activation="one",
    description="the paper's 'sum' baseline: W += v softmax(k)^T, no learning rate",
)(HebbianRule)
register_rule(
    "hebb_decay",
    lr_activation="one",
    decay=0.9,
    description="decaying Hebbian: W <- 0.9 W + v softmax(k)^T",
)(HebbianRule)
register_rule(
    "hebb_rowlr",
    per_row_lr=True,
    description="Hebbian with a per-row learning rate",
)(HebbianRule)
