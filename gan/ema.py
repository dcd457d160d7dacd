"""The exponential moving average of the generator's weights (the network that is sampled), and
when it is updated.

fwp's default updates the EMA after every step from the first. The official FPA code ("Images as
Weight Matrices", Irie & Schmidhuber, ICLR 2023), like lucidrains/lightweight-gan which it forks,
updates it only every 10 steps after step 20000, and until step 25000 copies the trained weights
into it at every step index 2 mod 1000; :class:`EMASchedule` describes both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    ema_params = list(ema.parameters())
    model_params = [p.detach() for p in model.parameters()]
    if ema_params:  # a model without parameters (the introspective cascade) only copies buffers
        torch._foreach_lerp_(ema_params, model_params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


@torch.no_grad()
def ema_reset(ema: nn.Module, model: nn.Module) -> None:
    """ema <- model: parameters and buffers copied (lightweight-gan's
    ``reset_parameter_averaging``)."""
    for ema_tensor, tensor in zip(
        [*ema.parameters(), *ema.buffers()], [*model.parameters(), *model.buffers()], strict=True
    ):
        ema_tensor.copy_(tensor)


#: the step index modulo ``reset_every`` at which lightweight-gan resets its EMA
RESET_PHASE = 2


@dataclass(frozen=True)
class EMASchedule:
    """When the EMA of the generator is updated and reset, by step index (0 for the first step).

    Attributes:
        decay: the EMA decay.
        start: no update at step indices below ``start``.
        every: update at step indices that are multiples of ``every``.
        reset_every: copy the trained generator into the EMA at step indices ``s`` with
            ``s % reset_every == 2 % reset_every`` (0: never).
        reset_until: the last step index at which a reset may happen.

    After a step, the trainer updates the EMA when due, then resets it when due (lightweight-gan's
    order). ``EMASchedule(decay)`` updates after every step; the official schedule is
    ``EMASchedule(0.995, start=20001, every=10, reset_every=1000, reset_until=25000)``: its
    ``steps % 10 == 0 and steps > 20000`` and ``steps <= 25000 and steps % 1000 == 2``.
    """

    decay: float
    start: int = 0
    every: int = 1
    reset_every: int = 0
    reset_until: int = 0

    def __post_init__(self) -> None:
        if self.start < 0 or self.every < 1 or self.reset_every < 0 or self.reset_until < 0:
            raise ValueError(
                f"EMA schedule needs start >= 0, every >= 1, reset_every >= 0 and reset_until "
                f">= 0; got {self}"
            )

    def updates_at(self, step: int) -> bool:
        """True when the EMA is updated after the step of index ``step``."""
        return step >= self.start and step % self.every == 0

    def resets_at(self, step: int) -> bool:
        """True when the EMA is reset to the trained weights after the step of index ``step``."""
        if self.reset_every == 0 or step > self.reset_until:
            return False
        return step % self.reset_every == RESET_PHASE % self.reset_every
