"""The controller: an LSTM that reads one input per step and emits the rule's raw logits."""

from __future__ import annotations

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
