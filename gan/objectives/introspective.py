"""Introspective training: a critic learns to tell data from pseudo-negatives that gradient ascent
on its own score synthesises.

INNg: "Introspective Neural Networks for Generative Modeling" (Lazarow, Jin & Tu, ICCV 2017),
logistic loss. WINN: "Wasserstein Introspective Neural Networks" (Lee, Xu, Fan & Tu, CVPR 2018),
Wasserstein loss with gradient penalty. Both accumulate the pseudo-negatives of every stage in a
pool (:class:`~fwp.gan.objectives.negative_pool.NegativePool`) that the critic trains against.

Two modes (``introspective.mode``):

- ``classic`` (the papers): no generator network. The pool starts with noise. Every step takes
  ``introspective.critic_passes`` critic Adam steps on the run's data batch against draws from
  the pool; every ``introspective.stage_steps`` steps a stage ends: the critic ascends the
  previous stage's final pseudo-negatives (:func:`~fwp.gan.networks.cascade.synthesise`), they
  join the pool, and a frozen copy of the critic joins the cascade
  (:class:`~fwp.gan.networks.cascade.CascadeSampler`, the run's "generator"), which turns noise
  into samples by the same ascents, stage by stage.
- ``painter`` (amortised, beyond the papers): the run's painter paints the initial
  pseudo-negatives, a short critic ascent refines them, they join the pool, and the painter
  regresses onto the refined images (as the cooperative objective's MCMC teaching does), so a
  sample is one painter pass.

Random numbers (pool draws, thresholds, noise, latents) come from torch's global generator, whose
state every checkpoint holds; the pool, the current chain and the last synthesis' statistics are
in :meth:`IntrospectiveObjective.state_dict`, so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor

from ..config import TrainConfig
from ..networks.cascade import CascadeSampler, Synthesis, synthesise
from ..networks.critic import Critic
from .adversarial import diversity_loss, diversity_ratios
from .base import Objective, make_adam, register_objective
from .negative_pool import NegativePool

__all__ = ["IntrospectiveObjective", "critic_loss", "gradient_penalty"]


def gradient_penalty(critic: Any, real: Tensor, fake: Tensor, mix: Tensor) -> Tensor:
    """WGAN-GP's penalty as WINN uses it: mean over the batch of (||∂f(x̂)/∂x̂||₂ - 1)² at
    x̂ = mix * real + (1 - mix) * fake, differentiable in the critic's parameters.

    Args:
        critic: f, images (B, C, H, W) -> (B,).
        real, fake: (B, C, H, W).
        mix: (B,) in [0, 1], each pair's interpolation weight.
    """
    mixed = (mix[:, None, None, None] * real + (1 - mix[:, None, None, None]) * fake).detach()
    mixed.requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    norms = reduce(grad**2, "b c h w -> b", "sum").add(1e-12).sqrt()
    return ((norms - 1.0) ** 2).mean()


def critic_loss(kind: str, data_scores: Tensor, negative_scores: Tensor) -> Tensor:
    """The critic's loss without penalty: ``wasserstein`` mean f(neg) - mean f(data) (WINN), or
    ``logistic`` -log σ(f(data)) - log(1 - σ(f(neg))) averaged (INNg). Scores (B,) each."""
    if kind == "wasserstein":
        return negative_scores.mean() - data_scores.mean()
    if kind == "logistic":
        return F.softplus(-data_scores).mean() + F.softplus(negative_scores).mean()
    raise ValueError(f"unknown introspective loss {kind!r}")


@register_objective("introspective")
class IntrospectiveObjective(Objective):
    """Introspective training (INNg, ICCV 2017; WINN, CVPR 2018) in classic or painter mode.

    Networks: ``critic`` and ``generator`` (the :class:`CascadeSampler` in classic mode, trained
    by no optimizer; the painter in painter mode, Adam with ``optim.lr_generator``, ``optim.beta1``
    and ``optim.beta2``). The critic: Adam with ``introspective.lr_critic`` and betas
    (``critic_beta1``, ``critic_beta2``). Runs eager and in float32: ``optim.amp`` and
    ``run.compile`` do not apply to it. With several ranks the critic's gradients are averaged
    (the base :meth:`~fwp.gan.objectives.base.Objective.distribute`), but each rank keeps its own
    pool and a checkpoint holds rank 0's.

    Losses (detached scalars): ``critic_loss`` (with penalty), ``score_data``, ``score_negative``
    (critic scores of the last pass's batches), ``gradient_penalty``, ``synthesis_steps`` (Adam
    steps of the last synthesis, mean over its batches), ``score_synthesised`` (critic score of
    the last synthesised pseudo-negatives), ``pool_size``, ``stage`` (stages completed); in
    painter mode also ``painter_gap`` (mean squared distance per pixel between the painter's
    images and their refinement, before the painter's step) and ``diversity`` (the painter's mean
    image/latent distance ratio over pairs; 0 = collapse).
    """

    progress_losses = ("critic_loss", "stage")

    def __init__(self, config: TrainConfig, generator: Any, device: torch.device) -> None:
        super().__init__(device, amp=False)
        self.config = config
        intro = config.introspective
        self.classic = intro.mode == "classic"
        height, width = config.data.size
        shape = (config.data.channels, height, width)
        self.critic = Critic(
            config.data.channels, (height, width), intro.critic_width, intro.critic_max_width
        ).to(device)
        reference = config.run.reference
        self.networks = {"generator": generator.to(device), "critic": self.critic}
        self.optimizers = {
            "critic": make_adam(
                self.critic.parameters(),
                intro.lr_critic,
                (intro.critic_beta1, intro.critic_beta2),
                device,
                reference,
            )
        }
        names = [
            "critic_loss",
            "score_data",
            "score_negative",
            "gradient_penalty",
            "synthesis_steps",
            "score_synthesised",
            "pool_size",
            "stage",
        ]
        if self.classic:
            if not isinstance(generator, CascadeSampler):
                raise TypeError("introspective.mode classic trains a CascadeSampler generator")
        else:
            betas = (config.optim.beta1, config.optim.beta2)
            self.optimizers["generator"] = make_adam(
                generator.parameters(), config.optim.lr_generator, betas, device, reference
            )
            names += ["painter_gap", "diversity"]
            self.progress_losses = ("critic_loss", "painter_gap")
        self.loss_names = tuple(names)
        self.pool = NegativePool(intro.pool_size, shape, device)
        self.chain = torch.empty((0, *shape), device=device)
        self.last_steps = torch.zeros((), device=device)
        self.last_score = torch.zeros((), device=device)
        self.stages_done = 0
        if self.classic:  # stage 0's pseudo-negatives: noise
            noise = generator.sample_latents(intro.stage_negatives)
            self.chain = rearrange(noise, "n (c h w) -> n c h w", c=shape[0], h=height, w=width)
            self.pool.add(self.chain)

    @property
    def cascade(self) -> CascadeSampler:
        return self.networks["generator"]  # type: ignore[return-value]

    # -- the parts of a step --------------------------------------------------------------------
    def update_critic(self, real: Tensor, negatives: Tensor) -> dict[str, Tensor]:
        """One critic Adam step on data ``real`` (B, C, H, W) against ``negatives`` (N, C, H, W);
        returns the detached loss, mean scores and penalty from before the step."""
        intro = self.config.introspective
        optimizer = self.optimizers["critic"]
        optimizer.zero_grad(set_to_none=True)
        scores = self.critic(torch.cat([real, negatives]))
        data_scores, negative_scores = scores.split([real.shape[0], negatives.shape[0]])
        loss = critic_loss(intro.loss, data_scores, negative_scores)
        penalty = torch.zeros((), device=real.device)
        if intro.loss == "wasserstein" and intro.gp_weight > 0:
            pairs = min(real.shape[0], negatives.shape[0])
            mix = torch.rand(pairs, device=real.device)
            penalty = gradient_penalty(self.critic, real[:pairs], negatives[:pairs], mix)
            loss = loss + intro.gp_weight * penalty
        loss.backward()
        optimizer.step()
        return {
            "critic_loss": loss.detach(),
            "score_data": data_scores.detach().mean(),
            "score_negative": negative_scores.detach().mean(),
            "gradient_penalty": penalty.detach(),
        }

    def data_range(self, real: Tensor) -> tuple[float, float]:
        """(min, max) of the critic's scores on ``real`` (B, C, H, W)."""
        with torch.no_grad():
            scores = self.critic(real)
        return float(scores.min()), float(scores.max())

    def synthesise(
        self, images: Tensor, score_range: tuple[float, float]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Ascend the critic from ``images`` (N, C, H, W) in batches of
        ``introspective.negative_batch``; each batch stops at its own threshold, drawn uniformly
        from ``score_range``, the (min, max) critic score on data (:meth:`data_range`; no early
        stop when ``introspective.early_stop`` is off).

        Returns:
            (images (N, C, H, W), mean Adam steps per batch, mean final score), detached.
        """
        intro = self.config.introspective
        low, high = score_range
        results: list[Synthesis] = []
        for chunk in images.split(intro.negative_batch):
            u = float(torch.rand(()))
            threshold = low + u * (high - low) if intro.early_stop else None
            results.append(
                synthesise(self.critic, chunk, intro.synthesis_steps, intro.synthesis_lr, threshold)
            )
        steps = torch.tensor(sum(r.steps for r in results) / len(results), device=self.device)
        score = torch.cat([r.end_scores for r in results]).mean()
        return torch.cat([r.images for r in results]), steps, score

    def end_stage(self, real: Tensor) -> None:
        """Classic mode: synthesise the next pseudo-negatives from the chain, pool them, and
        freeze the critic into the cascade (the last slot once the cascade is full)."""
        low, high = self.data_range(real)
        self.chain, self.last_steps, self.last_score = self.synthesise(self.chain, (low, high))
        self.pool.add(self.chain)
        slot = min(self.stages_done, len(self.cascade.critics) - 1)
        self.cascade.store_stage(slot, self.critic, low, high)
        self.stages_done += 1

    def update_painter(self, latents: Tensor, refined: Tensor) -> tuple[Tensor, Tensor]:
        """Painter mode: ``introspective.painter_updates`` Adam steps of the painter on the mean
        squared distance to the refined images, plus the capped diversity-sensitive term of
        ``objective.diversity_weight`` when it is positive (not in INNg/WINN; see
        :func:`~fwp.gan.objectives.adversarial.diversity_loss`).

        Returns:
            (the distance, the mean image/latent distance ratio of the batch's pairs), detached,
            from before the first step.
        """
        optimizer = self.optimizers["generator"]
        weight, cap = self.config.objective.diversity_weight, self.config.objective.diversity_cap
        gap = diversity = torch.zeros((), device=self.device)
        for update in range(self.config.introspective.painter_updates):
            optimizer.zero_grad(set_to_none=True)
            painted = self.generator(latents).float()
            distance = F.mse_loss(painted, refined.detach())
            ratios = diversity_ratios(painted, latents)
            loss = distance + weight * diversity_loss(ratios, cap) if weight > 0 else distance
            loss.backward()
            optimizer.step()
            if update == 0:
                gap, diversity = distance.detach(), ratios.detach().mean()
        return gap, diversity

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        intro = self.config.introspective
        real = real.float()
        gap = None
        if not self.classic:
            latents = torch.randn(real.shape[0], self.generator.latent_dim, device=self.device)
            with torch.no_grad():
                painted = self.generator(latents).float()
            refined, self.last_steps, self.last_score = self.synthesise(
                painted, self.data_range(real)
            )
            self.pool.add(refined)
        for _ in range(intro.critic_passes):
            losses = self.update_critic(real, self.pool.sample(intro.negative_batch))
        if self.classic and (step + 1) % intro.stage_steps == 0:
            self.end_stage(real)
        if not self.classic:
            gap, diversity = self.update_painter(latents, refined)
            self.stages_done = (step + 1) // intro.stage_steps
        losses.update(
            synthesis_steps=self.last_steps,
            score_synthesised=self.last_score,
            pool_size=torch.tensor(float(len(self.pool)), device=self.device),
            stage=torch.tensor(float(self.stages_done), device=self.device),
        )
        if gap is not None:
            losses.update(painter_gap=gap, diversity=diversity)
        return losses

    # -- pictures and state ---------------------------------------------------------------------
    def extra_sample_grids(self, latents: Tensor) -> dict[str, Tensor]:
        """``negatives``: the pool's newest pseudo-negatives (as many as ``latents``)."""
        newest = self.pool.images[-latents.shape[0] :]
        return {"negatives": newest.float().div(127.5).sub(1.0)} if len(newest) else {}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["introspective"] = {
            "pool": self.pool.state_dict(),
            "chain": self.chain,
            "last_steps": self.last_steps,
            "last_score": self.last_score,
            "stages_done": self.stages_done,
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        own = state["introspective"]
        self.pool.load_state_dict(own["pool"])
        self.chain = own["chain"].to(self.device).clone()
        self.last_steps = own["last_steps"].to(self.device).clone()
        self.last_score = own["last_score"].to(self.device).clone()
        self.stages_done = int(own["stages_done"])
