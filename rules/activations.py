"""Activation functions a rule can apply to the controller's raw outputs.

Two tables, because keys/values and learning rates need different things:

- :data:`VECTOR_ACTIVATIONS` for keys (..., Wd) and values (..., H), applied over the last
  dimension: ``softmax``, ``l2``, ``tanh``, ``sigmoid`` and ``identity`` (the raw logits).
- :data:`RATE_ACTIVATIONS` for learning-rate logits (..., L): ``sigmoid``, ``identity`` (the raw
  logits) and ``one`` (ignore the logits and use a rate of exactly 1, e.g. the paper's Hebbian
  "sum" baseline).

The older configuration value ``"none"`` keeps working, but it meant different things in the two
tables: for keys and values it is an alias of ``"identity"``, for rates an alias of ``"one"``
(see :data:`VECTOR_ALIASES`, :data:`RATE_ALIASES`). New configurations should use the explicit
names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

Activation = Callable[[Tensor], Tensor]


def _identity(x: Tensor) -> Tensor:
    return x


def _l2(x: Tensor) -> Tensor:
    return F.normalize(x, p=2.0, dim=-1, eps=1e-6)


def _softmax(x: Tensor) -> Tensor:
    return torch.softmax(x, dim=-1)


def _sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _rate_of_one(x: Tensor) -> Tensor:
    return torch.ones_like(x)


#: activations of keys and values, applied over the last dimension.
VECTOR_ACTIVATIONS: dict[str, Activation] = {
    "softmax": _softmax,
    "l2": _l2,
    "identity": _identity,
    "tanh": torch.tanh,
    "sigmoid": _sigmoid,
}

#: activations of learning-rate logits; "one" ignores the logits and uses a rate of 1.
RATE_ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": _sigmoid,
    "one": _rate_of_one,
    "identity": _identity,
}

#: older names still accepted for keys and values: "none" leaves them unchanged.
VECTOR_ALIASES: dict[str, str] = {"none": "identity"}

#: older names still accepted for learning rates: "none" means "no learning rate", a rate of 1.
RATE_ALIASES: dict[str, str] = {"none": "one"}


def lookup(
    table: Mapping[str, Activation],
    kind: str,
    what: str,
    aliases: Mapping[str, str] | None = None,
) -> Activation:
    """Return the activation ``table[kind]`` (after resolving ``aliases``).

    Raises:
        ValueError: ``kind`` is neither a name of ``table`` nor an alias; the message lists the
            valid choices for ``what`` (e.g. "key activation").
    """
    aliases = aliases or {}
    name = aliases.get(kind, kind)
    try:
        return table[name]
    except KeyError:
        old = "; ".join(f"{alias!r} means {target!r}" for alias, target in sorted(aliases.items()))
        hint = f" (older names: {old})" if old else ""
        raise ValueError(
            f"unknown {what} {kind!r}; choose one of: {', '.join(sorted(table))}{hint}"
        ) from None


def vector_activation(kind: str, what: str = "key or value activation") -> Activation:
    """The key/value activation named ``kind`` (``"none"`` is accepted as ``"identity"``)."""
    return lookup(VECTOR_ACTIVATIONS, kind, what, VECTOR_ALIASES)


def rate_activation(kind: str, what: str = "learning-rate activation") -> Activation:
    """The learning-rate activation named ``kind`` (``"none"`` is accepted as ``"one"``)."""
    return lookup(RATE_ACTIVATIONS, kind, what, RATE_ALIASES)


def bound_rate(lr: Tensor, projected: Tensor) -> Tensor:
    """The rate divided by max(1, |x|^2), so a step never overshoots along x.

    A delta step multiplies the recall error ``v - W k`` by ``1 - lr |k|^2``, an Oja step the
    error ``k - W^T v`` by ``1 - lr |v|^2``; with raw (unbounded) keys or values that factor leaves
    [-1, 1] once ``lr |x|^2 > 2`` and the matrix grows geometrically over a painting. Dividing the
    rate by ``max(1, |x|^2)`` keeps the factor ``1 - lr min(1, |x|^2)`` in [0, 1] for a rate in
    [0, 1] (the normalised LMS of Nagumo & Noda, 1967, applied only where |x| > 1): a no-op for
    softmax or unit-norm vectors (|x| <= 1).

    Args:
        lr: activated rates (..., L).
        projected: the vector the correction projects on, ``k`` (..., Wd) for delta rules or
            ``v`` (..., H) for Oja rules.

    Returns:
        the bounded rates (..., L).
    """
    return lr / projected.pow(2).sum(dim=-1, keepdim=True).clamp_min(1.0)


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
