"""Synthesis by gradient ascent in image space, and the cascade of stage critics that samples
images from noise in introspective training's classic mode.

INNg ("Introspective Neural Networks for Generative Modeling", Lazarow, Jin & Tu, ICCV 2017) and
WINN ("Wasserstein Introspective Neural Networks", Lee, Xu, Fan & Tu, CVPR 2018) have no generator
network: the critic of stage t, trained on data against every pseudo-negative of the stages
before, moves images towards higher scores, and sampling runs noise through the critics of all
stages in order. :func:`synthesise` is one such ascent (Adam in image space, clipped to [-1, 1],
stopping early once the batch's mean score reaches a threshold); :class:`CascadeSampler` holds
the frozen stage critics (as buffers: it has no parameters, so its exponential moving average is
the cascade itself) and offers the generator interface that training, ``fwp paint`` and
``fwp fid`` use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from fwp.painters.painter import sample_images
from fwp.rules import PaintResult

from .critic import Critic

__all__ = ["CascadeSampler", "Synthesis", "synthesise"]


@dataclass
class Synthesis:
    """What :func:`synthesise` returns (all detached).

    Attributes:
        images: the synthesised images (B, C, H, W) in [-1, 1].
        start_scores: the critic's scores of the starting images (B,).
        end_scores: the critic's scores of ``images`` (B,).
        steps: the Adam steps taken (at most the ``steps`` asked for).
    """

    images: Tensor
    start_scores: Tensor
    end_scores: Tensor
    steps: int


def synthesise(
    critic: Callable[[Tensor], Tensor],
    images: Tensor,
    steps: int,
    lr: float,
    threshold: float | None = None,
) -> Synthesis:
    """Ascend the critic's score in image space: Adam (lr, betas (0.9, 0.999)) on -sum f(x),
    the images clipped to [-1, 1] after every step (WINN's synthesis).

    Args:
        critic: f, images (B, C, H, W) -> (B,), each score depending on its own image only;
            its parameters get no gradient.
        images: the start (B, C, H, W) (not modified).
        steps: the most Adam steps (>= 0).
        lr: the image-space learning rate (> 0).
        threshold: stop before a step once the batch's mean score is >= threshold (None: never).
    """
    if steps < 0 or lr <= 0:
        raise ValueError(f"synthesis needs steps >= 0 and lr > 0; got {steps}, {lr}")
    current = images.detach().clone().clamp_(-1.0, 1.0).requires_grad_(True)
    optimizer = torch.optim.Adam([current], lr=lr, foreach=False)
    start_scores: Tensor | None = None
    taken = 0
    while True:
        with torch.enable_grad():
            scores = critic(current)
        if start_scores is None:
            start_scores = scores.detach()
        if taken == steps or (threshold is not None and float(scores.detach().mean()) >= threshold):
            break
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(scores.sum(), current)
        current.grad = -grad
        optimizer.step()
        with torch.no_grad():
            current.clamp_(-1.0, 1.0)
        taken += 1
    return Synthesis(current.detach(), start_scores, scores.detach(), taken)


def _as_buffers(module: nn.Module) -> None:
    """Turn every parameter of ``module`` into a buffer of the same name (no gradients, copied
    rather than averaged by the EMA); the module computes as before."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            del sub._parameters[name]
            sub.register_buffer(name, param.detach().clone())


class CascadeSampler(nn.Module):
    """Noise -> images through the stored stage critics, one :func:`synthesise` per stage.

    Args:
        channels, size: the images' C and (H, W).
        stages: the most stages the cascade holds.
        width, max_width: the critics' architecture (:class:`~fwp.gan.networks.critic.Critic`).
        synthesis_steps, synthesis_lr: each stage's ascent.
        early_stop: stop each stage's ascent at a threshold between the min and max critic
            score on data recorded for the stage (``score_range``): ``low + u (high - low)``
            with ``u`` uniform, drawn once per stage from a generator seeded with the stage's
            index, so sampling is deterministic and never touches the global random numbers.

    A latent is the flattened starting image (B, C*H*W), uniform in [-1, 1]. Buffers:
    ``filled`` (the number of stages stored) and ``score_range`` (stages, 2).
    """

    def __init__(
        self,
        channels: int,
        size: tuple[int, int],
        stages: int,
        width: int,
        max_width: int,
        synthesis_steps: int,
        synthesis_lr: float,
        early_stop: bool = True,
    ) -> None:
        super().__init__()
        self.channels, self.size = channels, (size[0], size[1])
        self.synthesis_steps, self.synthesis_lr = synthesis_steps, synthesis_lr
        self.early_stop = early_stop
        self.critics = nn.ModuleList(
            Critic(channels, self.size, width, max_width) for _ in range(stages)
        )
        for critic in self.critics:
            _as_buffers(critic)
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("score_range", torch.zeros(stages, 2))

    @property
    def latent_dim(self) -> int:
        return self.channels * self.size[0] * self.size[1]

    @property
    def num_stages(self) -> int:
        """The stages stored so far."""
        return int(self.filled)

    @torch.no_grad()
    def store_stage(self, index: int, critic: Critic, low: float, high: float) -> None:
        """Copy ``critic``'s weights into stage ``index`` with its data score range."""
        if not 0 <= index < len(self.critics) or index > self.num_stages:
            raise ValueError(
                f"stage {index} cannot be stored: {self.num_stages} of {len(self.critics)} filled"
            )
        self.critics[index].load_state_dict(critic.state_dict())
        self.score_range[index] = torch.tensor([low, high])
        self.filled.fill_(max(self.num_stages, index + 1))

    def threshold(self, index: int) -> float | None:
        """Stage ``index``'s early-stop threshold (None when early stopping is off)."""
        if not self.early_stop:
            return None
        u = float(torch.rand((), generator=torch.Generator().manual_seed(index)))
        low, high = self.score_range[index].tolist()
        return low + u * (high - low)

    def _device(self) -> torch.device:
        return self.score_range.device

    def sample_latents(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        """Starting images, flattened: (num, C*H*W) uniform in [-1, 1] on the cascade's device."""
        return (torch.rand(num, self.latent_dim, generator=rng) * 2 - 1).to(self._device())

    def stage_images(self, z: Tensor) -> list[Tensor]:
        """[x_0, x_1, ..., x_S]: the starting images of latents z (B, C*H*W) and the images after
        each stored stage, each (B, C, H, W)."""
        height, width = self.size
        images = rearrange(z, "b (c h w) -> b c h w", c=self.channels, h=height, w=width)
        chain = [images.clamp(-1.0, 1.0)]
        for index in range(self.num_stages):
            result = synthesise(
                self.critics[index],
                chain[-1],
                self.synthesis_steps,
                self.synthesis_lr,
                self.threshold(index),
            )
            chain.append(result.images)
        return chain

    def forward(self, z: Tensor) -> Tensor:
        """latents (B, C*H*W) -> images (B, C, H, W) in [-1, 1] after every stored stage."""
        return self.stage_images(z)[-1]

    def paint(self, z: Tensor, frames: bool = False) -> Tensor | PaintResult:
        """Like :meth:`forward`; with ``frames``, a :class:`~fwp.rules.PaintResult` whose
        ``partials`` (S + 1, B, C, H, W) are the noise and the images after each stage and whose
        ``updates`` are each stage's change (the noise itself first)."""
        chain = self.stage_images(z)
        if not frames:
            return chain[-1]
        partials = torch.stack(chain)
        updates = torch.cat([partials[:1], partials[1:] - partials[:-1]])
        return PaintResult(image=chain[-1], updates=updates, partials=partials)

    def sample(self, num: int, batch_size: int = 256, seed: int = 0) -> Tensor:
        """``num`` images (num, C, H, W) in [-1, 1] from fixed-seed noise, in batches, on CPU
        (with early stopping the stop is per batch, so the images depend on ``batch_size``)."""
        return sample_images(self, num, batch_size, seed)
