"""Activation functions a rule can apply to the controller's raw outputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _identity(x: Tensor) -> Tensor:
    return x


def _l2(x: Tensor) -> Tensor:
    return F.normalize(x, p=2.0, dim=-1, eps=1e-6)


def _softmax(x: Tensor) -> Tensor:
    return torch.softmax(x, dim=-1)


def _sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _ones(x: Tensor) -> Tensor:
    return torch.ones_like(x)


#: activations of keys and values, applied over the last dimension.
VECTOR_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "softmax": _softmax,
    "l2": _l2,
    "none": _identity,
    "tanh": torch.tanh,
    "sigmoid": _sigmoid,
}

#: activations of learning-rate logits; "none" ignores the logits and uses a rate of 1.
RATE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": _sigmoid,
    "none": _ones,
    "identity": _identity,
}


def lookup(table: dict[str, Callable[[Tensor], Tensor]], kind: str, what: str) -> Callable:
    """Return ``table[kind]`` or raise a ValueError that lists the valid choices for ``what``."""
    try:
        return table[kind]
    except KeyError:
        raise ValueError(
            f"unknown {what} {kind!r}; choose one of: {', '.join(sorted(table))}"
        ) from None


def decay_weights(log_decay_cumsum: Tensor, inclusive: bool) -> Tensor:
    """exp(L_t - L_s) for s < t (or s <= t when ``inclusive``), else 0.

    Args:
        log_decay_cumsum: L, the cumulative sum over time of log decay factors, (..., T).

    Returns:
        (..., T, T) with rows indexed by t and columns by s. Masking happens before the
        exponential, so entries above the diagonal never overflow.
    """
    T = log_decay_cumsum.shape[-1]
    diff = log_decay_cumsum.unsqueeze(-1) - log_decay_cumsum.unsqueeze(-2)
    keep = torch.ones(T, T, dtype=torch.bool, device=diff.device).tril(0 if inclusive else -1)
    return diff.masked_fill(~keep, float("-inf")).exp()
