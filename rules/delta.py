"""Delta rules: the Fast Weight Painter's update and its gated variant.

- delta ("Images as Weight Matrices", Irie & Schmidhuber, ICLR 2023, the FPA update):
  W <- W + lr * (v - W k) k^T, with softmax keys and a sigmoid learning rate.
- gated delta (Yang, Kautz & Hatamizadeh, "Gated Delta Networks", 2024):
  W <- alpha W + beta (v - alpha W k) k^T.

The fast paths use the WY / UT-transform form of Yang et al., "Parallelizing Linear Transformers
with the Delta Rule over Sequence Length" (NeurIPS 2024): every update is u_t k_t^T with
u_t = beta_t (v_t - W_{t-1} k_t), and the u_t solve one unit lower-triangular system
(I + diag(beta) tril(K K^T, -1)) U = diag(beta) (V - K W0^T), so W_T = W0 + U^T K. With a
per-row rate every row has its own system; that path works chunk by chunk, as the same paper's
chunkwise form does (see :func:`_per_row_updates`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor

from .activations import bound_rate, decay_weights, rate_activation, vector_activation
from .base import (
    LearningRule,
    PaintResult,
    check_sequence_inputs,
    frames_from_partials,
    frames_from_updates,
)
from .registry import register_rule


def _solve_unit_lower(strictly_lower: Tensor, rhs: Tensor) -> Tensor:
    """Solve ``(I + strictly_lower) @ x = rhs`` for a strictly lower-triangular (..., T, T).

    The identity is never added: with ``unitriangular=True`` the solver reads only the part below
    the diagonal and takes the diagonal as ones, which saves building one more (..., T, T) tensor
    (a third of the per-row rule's fast-path time on a CPU).
    """
    return torch.linalg.solve_triangular(strictly_lower, rhs, upper=False, unitriangular=True)


def _key_overlaps(K: Tensor) -> Tensor:
    """tril(K K^T, -1): keys (..., T, D) -> (..., T, T) with entry [t, s] = k_t . k_s for s < t."""
    return einsum(K, K, "... t d, ... s d -> ... t s").tril(-1)


def _residual_targets(V: Tensor, K: Tensor, W0: Tensor | None, scale: Tensor | None = None):
    """V - scale_t * W0 k_t, (B, C, T, H); just V when W0 is None."""
    if W0 is None:
        return V
    recalled = einsum(W0, K, "b c h d, b c t d -> b c t h")
    if scale is not None:
        recalled = recalled * scale.unsqueeze(-1)
    return V - recalled


#: steps per chunk of the per-row-rate fast path. On a 2-core CPU at the paper's size
#: (T = 64, 64 x 64, C = 3) forward+backward took 80 ms with 8 at B = 20 (16: 111 ms; the scan:
#: 91 ms; one 64 x 64 system per row: 271 ms); at B = 128, 4 and the scan tie and 8 is 30% slower.
PER_ROW_CHUNK = 8


def _per_row_updates(
    K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None, chunk: int = PER_ROW_CHUNK
) -> Tensor:
    """The updates U (B, C, T, H) of the delta rule with a per-row rate (LR: (B, C, T, H)),
    computed chunk by chunk; W_T = W0 + U^T K as for the scalar rate.

    Row h is its own delta rule with rates beta_{t,h}. Within a chunk of c steps that starts from
    W, the chunk's updates u (c, H) solve, row by row,
    (I + diag(beta_h) A) u_h = diag(beta_h) (v_h - K W[h]^T), A = tril(K K^T, -1) over the
    chunk's keys. So u_h = P_h (v_h - K W[h]^T) with P_h = (I + diag(beta_h) A)^-1 diag(beta_h),
    which one batched triangular solve gives for every chunk and row at once; then T / c
    sequential chunk steps carry W <- W + u^T K. Memory grows as B C H T c instead of the
    B C H T^2 of one T x T system per row, and there are T / c sequential steps instead of T.
    T is padded to a multiple of c with beta = 0 steps, which change nothing.
    """
    steps = K.shape[2]
    pad = -steps % chunk
    if pad:
        K, V, LR = (F.pad(x, (0, 0, 0, pad)) for x in (K, V, LR))
    keys = rearrange(K, "b c (n i) d -> n b c i d", i=chunk)
    values = rearrange(V, "b c (n i) h -> n b c i h", i=chunk)
    beta = rearrange(LR, "b c (n i) h -> n b c h i", i=chunk)
    system = rearrange(beta, "n b c h i -> n b c h i 1") * rearrange(
        _key_overlaps(keys), "n b c i j -> n b c 1 i j"
    )
    solvers = _solve_unit_lower(system, torch.diag_embed(beta))  # P: (n, B, C, H, c, c)
    W = W0
    chunk_updates = []
    for chunk_keys, chunk_values, solver in zip(keys, values, solvers, strict=True):
        residual = chunk_values
        if W is not None:
            residual = residual - einsum(W, chunk_keys, "b c h d, b c i d -> b c i h")
        U = einsum(solver, residual, "b c h i s, b c s h -> b c i h")
        chunk_updates.append(U)
        update = einsum(U, chunk_keys, "b c i h, b c i d -> b c h d")
        W = update if W is None else W + update
    return torch.cat(chunk_updates, dim=2)[:, :, :steps]


class DeltaRule(LearningRule):
    """Delta rule W <- W + lr (v - W k) k^T (or gated: alpha W + beta (v - alpha W k) k^T).

    Args:
        key_activation: activation of the key logits k (Wd): softmax, l2, tanh, sigmoid or
            identity.
        value_activation: activation of the value logits v (H): softmax, l2, tanh, sigmoid or
            identity (the default: raw values).
        lr_activation: activation of the learning-rate logits: sigmoid, identity, or one (a
            rate of exactly 1); for the gated rule it applies to both alpha and beta.
        per_row_lr: one learning rate per row of W (H rates per step) instead of one scalar.
        unscaled_first_update: write the first value at full strength (rate 1 at t = 0), as the
            official FPA code does.
        gated: the gated delta rule (Yang et al. 2024): two rate logits per step, a decay gate
            alpha and a write strength beta.
        bounded_rate: divide the rate (the write strength beta of the gated rule) by
            max(1, |k|^2), so that a step never overshoots along k: the recall error v - W k
            shrinks by 1 - lr min(1, |k|^2), in [0, 1]. A no-op for softmax and L2 keys; it keeps
            raw keys (``delta_raw``) from growing the matrix geometrically.
    """

    family = "delta"
    has_fast_path = True

    def __init__(
        self,
        key_activation: str = "softmax",
        value_activation: str = "identity",
        lr_activation: str = "sigmoid",
        per_row_lr: bool = False,
        unscaled_first_update: bool = False,
        gated: bool = False,
        bounded_rate: bool = False,
    ) -> None:
        if gated and per_row_lr:
            raise ValueError("the gated delta rule takes a scalar rate; set per_row_lr=False")
        self.key_fn = vector_activation(key_activation, "key activation")
        self.value_fn = vector_activation(value_activation, "value activation")
        self.lr_fn = rate_activation(lr_activation)
        self.per_row_lr = per_row_lr
        self.unscaled_first_update = unscaled_first_update
        self.gated = gated
        self.bounded_rate = bounded_rate
        # with gating, lr = 0 means alpha = 0 as well: the matrix is erased, not kept
        self.zero_lr_is_identity = not gated

    def lr_size(self, height: int) -> int:
        """1 (scalar), ``height`` (per row), or 2 for the gated rule: (alpha, beta) logits."""
        if self.gated:
            return 2
        return height if self.per_row_lr else 1

    def activate(self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor):
        k, v, lr = self.key_fn(key_logits), self.value_fn(value_logits), self.lr_fn(lr_logits)
        if self.bounded_rate:
            if self.gated:  # only the write strength beta; the decay gate alpha stays
                lr = torch.cat([lr[..., :1], bound_rate(lr[..., 1:], k)], dim=-1)
            else:
                lr = bound_rate(lr, k)
        return k, v, lr

    def activate_sequence(self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor):
        k, v, lr = self.activate(key_logits, value_logits, lr_logits)
        if self.unscaled_first_update:
            # the official FPA code writes the first value at full strength
            lr = torch.cat([torch.ones_like(lr[:, :, :1]), lr[:, :, 1:]], dim=2)
        return k, v, lr

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        if self.gated:
            alpha, beta = lr[..., :1], lr[..., 1:]
            W = W * alpha.unsqueeze(-1)
        else:
            beta = lr
        recalled = einsum(W, k, "b c h d, b c d -> b c h")
        return W + einsum(beta * (v - recalled), k, "b c h, b c d -> b c h d")

    def paint(
        self, K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None = None, frames: bool = False
    ) -> Tensor | PaintResult:
        """The WY / UT-transform fast path: one triangular solve instead of T sequential steps."""
        check_sequence_inputs(self, K, V, LR, W0)
        if self.gated:
            return self._paint_gated(K, V, LR, W0, frames)
        if LR.shape[-1] == 1:
            U = _solve_unit_lower(LR * _key_overlaps(K), LR * _residual_targets(V, K, W0))
        else:  # a separate system per row: chunk by chunk
            U = _per_row_updates(K, V, LR, W0)
        if frames:
            return frames_from_updates(einsum(U, K, "b c t h, b c t d -> t b c h d"), W0)
        W = einsum(U, K, "b c t h, b c t d -> b c h d")
        return W if W0 is None else W + W0

    def _paint_gated(
        self, K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None, frames: bool
    ) -> Tensor | PaintResult:
        """Gated fast path.

        With gamma_t = prod_{s<=t} alpha_s and L_t = log gamma_t,
        u_t = beta_t (v_t - gamma_t W0 k_t - sum_{s<t} exp(L_t - L_s) (k_s . k_t) u_s) and
        W_t = gamma_t W0 + sum_{s<=t} exp(L_t - L_s) u_s k_s^T; only ratios with s <= t appear,
        so nothing overflows.
        """
        alpha, beta = LR[..., 0], LR[..., 1:]
        log_gamma = torch.log(alpha.clamp_min(torch.finfo(alpha.dtype).tiny)).cumsum(dim=-1)
        system = beta * _key_overlaps(K) * decay_weights(log_gamma, inclusive=False)
        U = _solve_unit_lower(system, beta * _residual_targets(V, K, W0, log_gamma.exp()))
        if frames:
            weights = decay_weights(log_gamma, inclusive=True)
            partials = einsum(weights, U, K, "b c t s, b c s h, b c s d -> t b c h d")
            if W0 is not None:
                partials = partials + einsum(log_gamma.exp(), W0, "b c t, b c h d -> t b c h d")
            return frames_from_partials(partials, W0)
        last = (log_gamma[..., -1:] - log_gamma).exp()
        W = einsum(U * last.unsqueeze(-1), K, "b c t h, b c t d -> b c h d")
        if W0 is not None:
            W = W + W0 * log_gamma[..., -1].exp()[..., None, None]
        return W


register_rule("delta", description="the FPA delta rule: W += sigmoid(lr) (v - W k) k^T, softmax k")(
    DeltaRule
)
register_rule(
    "delta_official",
    unscaled_first_update=True,
    description="delta, first update unscaled by the learning rate (official FPA code)",
)(DeltaRule)
register_rule("delta_l2", key_activation="l2", description="delta with L2-normalised keys")(
    DeltaRule
)
register_rule("delta_raw", key_activation="identity", description="delta with raw (linear) keys")(
    DeltaRule
)
register_rule("delta_rowlr", per_row_lr=True, description="delta with a per-row learning rate")(
    DeltaRule
)
register_rule(
    "delta_gated",
    gated=True,
    description="gated delta: W <- a W + b (v - a W k) k^T (Yang et al. 2024)",
)(DeltaRule)
