"""Controllers: sequence models that read one input per step and emit the rule's raw logits.

The LSTM of "Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023), and the Transformer its
official code offers in its place. Both map inputs (B, T, input_dim) and the latent z
(B, latent_dim) to logits (B, T, output_dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class LSTMController(nn.Module):
    """LSTM over T steps with an optional initial state computed from the latent.

    Args:
        input_dim: size of each step's input.
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers.
        output_dim: logits per step (all channels' keys, values and rates together).
        latent_dim: when given, (h0, c0) are a linear map of z; otherwise zeros.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_size: int,
        num_layers: int,
        output_dim: int,
        latent_dim: int | None = None,
        head_init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.head_init_scale = head_init_scale
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(input_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.initial_state = (
            nn.Linear(latent_dim, 2 * num_layers * hidden_size) if latent_dim is not None else None
        )
        self.head = nn.Linear(hidden_size, output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of the official FPA code (Irie & Schmidhuber, 2023).

        LSTM weights uniform in +-1/sqrt(hidden), output head uniform in +-s/sqrt(output_dim) with
        s = ``head_init_scale`` (the official code's "kvb_init_fact", 1 by default), and
        a He-normal map from z to the initial state, so that the painting depends strongly on z
        from the first step of training (with PyTorch's default initialisation the samples start
        almost identical and GAN training collapses to one image).
        """
        bound = self.hidden_size**-0.5
        for weight in self.lstm.parameters():
            nn.init.uniform_(weight, -bound, bound)
        bound = self.head_init_scale * self.head.out_features**-0.5
        nn.init.uniform_(self.head.weight, -bound, bound)
        nn.init.uniform_(self.head.bias, -bound, bound)
        if self.initial_state is not None:
            nn.init.kaiming_normal_(self.initial_state.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, inputs: Tensor, z: Tensor | None = None) -> Tensor:
        """inputs (B, T, input_dim), z (B, latent_dim) -> logits (B, T, output_dim)."""
        state = None
        if self.initial_state is not None:
            if z is None:
                raise ValueError("this controller computes its initial state from z; pass z")
            h0, c0 = rearrange(
                self.initial_state(z), "b (two l h) -> two l b h", two=2, l=self.num_layers
            )
            state = (h0.contiguous(), c0.contiguous())
        hidden, _ = self.lstm(inputs, state)
        return self.head(hidden)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention with a residual: (B, T, d) -> (B, T, d).

    Queries, keys and values come from one bias-free linear map, the heads are merged by another;
    the scores are scaled by ``1 / sqrt(d)`` (the model width, as in the official FPA code, where
    "Attention Is All You Need" uses the head width).
    """

    def __init__(self, dim: int, heads: int, causal: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scale = dim**-0.5

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = rearrange(
            self.to_qkv(self.norm(x)), "b t (h three d) -> three b h t d", three=3, h=self.heads
        )
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        return x + self.dropout(self.to_out(rearrange(out, "b h t d -> b t (h d)")))


class FeedForward(nn.Module):
    """Pre-norm position-wise MLP (linear, ReLU, linear) with a residual: (B, T, d) -> (B, T, d)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class TransformerController(nn.Module):
    """A Transformer over the T steps (Vaswani et al., NeurIPS 2017) in place of the LSTM.

    The official FPA code (Irie & Schmidhuber, ICLR 2023) offers it as ``trafo_delta_split``: each
    step's input is projected to the model width, passes ``num_layers`` pre-norm layers of
    self-attention and a ReLU MLP (no final norm, no position encoding), and a linear head emits
    the step's logits. The defaults are the official sizes: width 512, 8 heads, MLP 1024, 1 layer.

    Args:
        input_dim: size of each step's input.
        output_dim: logits per step (all channels' keys, values and rates together).
        dim: model width (the official ``rnn_hidden_size``).
        num_layers: attention + MLP layers.
        heads: attention heads; must divide ``dim``.
        feedforward_dim: hidden width of the MLP.
        causal: step t attends to steps <= t only. The official code attends over all steps
            (``causal=False``); its inputs are all known in advance, so both are valid painters.
        latent_dim: when given, a start token computed from z (a linear map) precedes the steps,
            the Transformer's counterpart of the LSTM's initial state from z; otherwise none (as
            in the official code).
        head_init_scale: scale of the output head's initial weights (as for the LSTM).
        dropout: dropout after attention and in the MLP (0 in the official code).
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        dim: int = 512,
        num_layers: int = 1,
        heads: int = 8,
        feedforward_dim: int = 1024,
        causal: bool = True,
        latent_dim: int | None = None,
        head_init_scale: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"the Transformer's width {dim} must be divisible by heads={heads}")
        self.head_init_scale = head_init_scale
        self.project = nn.Linear(input_dim, dim)
        self.start = nn.Linear(latent_dim, dim) if latent_dim is not None else None
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [
                SelfAttention(dim, heads, causal, dropout),
                FeedForward(dim, feedforward_dim, dropout),
            ]
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(dim, output_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The output head as the LSTM's (uniform in +-s/sqrt(output_dim)); PyTorch's defaults
        elsewhere, as in the official code."""
        bound = self.head_init_scale * self.head.out_features**-0.5
        nn.init.uniform_(self.head.weight, -bound, bound)
        nn.init.uniform_(self.head.bias, -bound, bound)

    def forward(self, inputs: Tensor, z: Tensor | None = None) -> Tensor:
        """inputs (B, T, input_dim), z (B, latent_dim) -> logits (B, T, output_dim)."""
        x = self.project(inputs)
        if self.start is not None:
            if z is None:
                raise ValueError("this controller computes its start token from z; pass z")
            x = torch.cat([rearrange(self.start(z), "b d -> b 1 d"), x], dim=1)
        x = self.layers(x)
        if self.start is not None:
            x = x[:, 1:]
        return self.head(x)
