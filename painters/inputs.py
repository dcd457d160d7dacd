"""Input generators: turn a latent vector z into one controller input per painting step.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) describes two: feeding z at every step
(v1), and its input generator (v2) that maps z through a linear layer and tanh to T chunks, each
projected to the controller's input size. Its official code also splits z itself into T chunks
("split", the input of its Transformer controller ``trafo_delta_split``).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn


class RepeatedLatentInput(nn.Module):
    """v1: the same latent z at every step. z (B, latent_dim) -> (B, T, latent_dim)."""

    def __init__(self, latent_dim: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.output_dim = latent_dim

    def forward(self, z: Tensor) -> Tensor:
        return repeat(z, "b d -> b t d", t=self.steps)


class ChunkedLatentInput(nn.Module):
    """v2: tanh(A z) split into T chunks of ``step_latent_dim``, each projected by one shared map.

    z (B, latent_dim) -> (B, T, input_dim).
    """

    def __init__(self, latent_dim: int, steps: int, step_latent_dim: int, input_dim: int) -> None:
        super().__init__()
        self.steps = steps
        self.output_dim = input_dim
        self.expand = nn.Linear(latent_dim, steps * step_latent_dim)
        self.project = nn.Linear(step_latent_dim, input_dim)

    def forward(self, z: Tensor) -> Tensor:
        chunks = rearrange(torch.tanh(self.expand(z)), "b (t p) -> b t p", t=self.steps)
        return self.project(chunks)


class SplitLatentInput(nn.Module):
    """split: z cut into T consecutive chunks, one per step.

    z (B, latent_dim) -> (B, T, latent_dim / T); ``latent_dim`` must be a multiple of ``steps``.
    """

    def __init__(self, latent_dim: int, steps: int) -> None:
        super().__init__()
        if latent_dim % steps:
            raise ValueError(
                f"the split input generator needs latent_dim ({latent_dim}) divisible by steps "
                f"({steps})"
            )
        self.steps = steps
        self.output_dim = latent_dim // steps

    def forward(self, z: Tensor) -> Tensor:
        return rearrange(z, "b (t p) -> b t p", t=self.steps)
