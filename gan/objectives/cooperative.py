"""Cooperative training of a painter and an energy-based descriptor by MCMC teaching.

"Cooperative Training of Descriptor and Generator Networks" (Xie, Lu, Gao, Zhu & Wu, TPAMI 2018,
arXiv:1609.09408, "CoopNets"). The descriptor is the energy-based model
p(x; θ) ∝ exp(f(x; θ)) N(x; 0, s²I) with a ConvNet f (:mod:`fwp.gan.networks.descriptor`); the
generator, here a painter with any registered learning rule, learns from how the descriptor's
Langevin dynamics revise its images. One iteration:

1. paint x0 = g(z), z ~ N(0, I);
2. revise: K descriptor Langevin steps from Y = x0,
   Y <- Y - (δ²/2) (Y / s² - ∂f(Y)/∂Y) + δ ε, ε ~ N(0, I) (:func:`langevin_step`);
3. optionally infer z for the revised images by Langevin dynamics on the painter's posterior,
   z <- z - (δ_g²/2) (z + ∂L/∂z) + δ_g ε with L = ||Y - g(z)||² / (2σ²) (:func:`latent_step`);
4. descriptor: maximise mean f(x_data) - mean f(Y) (Adam);
5. painter: minimise ||Y - g(z)||² / (2σ²) at the same z, Y fixed (Adam).

Options beyond the paper, off by default (the ``coop-quick`` preset uses them to learn within a
CPU budget): ``coop.clamp`` clips Y to [-1, 1] after every Langevin step, ``coop.painter_updates``
takes several painter steps on each revision, and ``objective.diversity_weight`` adds the capped
diversity-sensitive term of :mod:`.adversarial` to the painter's loss.

Random numbers are drawn from torch's global generator during training (its state is in every
checkpoint, so a resumed run draws the same noise); pictures for the run directory draw from a
generator of their own, so saving them never changes training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from einops import reduce
from torch import Tensor

from fwp.painters import Generator

from ..compiled import maybe_compile
from ..config import TrainConfig
from ..networks import build_descriptor
from .adversarial import diversity_loss, diversity_ratios
from .base import Objective, frozen, make_adam, register_objective

__all__ = [
    "CooperativeObjective",
    "Revision",
    "descriptor_loss",
    "langevin_revision",
    "langevin_step",
    "latent_inference",
    "latent_step",
    "painter_regression_loss",
]


def _normal(like: Tensor, rng: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``like``, from ``rng`` (or torch's global generator)."""
    return torch.randn(like.shape, generator=rng, device=like.device, dtype=like.dtype)


def langevin_step(
    images: Tensor, grad: Tensor, step_size: float, reference_std: float, noise: Tensor | None
) -> Tensor:
    """One Langevin step of the descriptor (CoopNets, Xie et al., TPAMI 2018, eq. 8).

    Y' = Y - (δ²/2) (Y / s² - ∂f/∂Y) + δ ε: a gradient step on the energy
    ||Y||² / (2s²) - f(Y) plus Gaussian noise.

    Args:
        images: Y (B, C, H, W).
        grad: ∂f(Y)/∂Y (B, C, H, W).
        step_size: δ > 0.
        reference_std: s > 0, the standard deviation of the reference distribution N(0, s²I).
        noise: ε (B, C, H, W), or None for the noiseless (gradient-only) step.

    Returns:
        Y' (B, C, H, W), a new tensor.
    """
    if step_size <= 0 or reference_std <= 0:
        raise ValueError(
            f"step_size and reference_std must be positive; got {step_size}, {reference_std}"
        )
    if grad.shape != images.shape or (noise is not None and noise.shape != images.shape):
        raise ValueError(
            f"images {tuple(images.shape)}, grad {tuple(grad.shape)} and noise "
            f"{None if noise is None else tuple(noise.shape)} must have one shape"
        )
    revised = images - 0.5 * step_size**2 * (images / reference_std**2 - grad)
    return revised if noise is None else revised + step_size * noise


@dataclass
class Revision:
    """What :func:`langevin_revision` returns.

    Attributes:
        images: the revised images Y (B, C, H, W), detached.
        start_scores: f of the images the chain started from (B,), detached.
        grad_norm: the mean over steps and images of ||∂f/∂Y||₂ (a scalar tensor, detached).
    """

    images: Tensor
    start_scores: Tensor
    grad_norm: Tensor


def langevin_revision(
    descriptor: Callable[[Tensor], Tensor],
    images: Tensor,
    steps: int,
    step_size: float,
    reference_std: float,
    noise: bool = True,
    rng: torch.Generator | None = None,
    clamp: bool = False,
) -> Revision:
    """K Langevin steps of the descriptor from ``images`` (CoopNets' MCMC revision).

    Args:
        descriptor: f, images (B, C, H, W) -> (B,); each image's f must depend on that image
            only (then ∂(sum_b f)/∂Y is each image's own gradient).
        images: x0 (B, C, H, W), the chains' start (not modified).
        steps: K >= 1.
        step_size, reference_std: δ and s of :func:`langevin_step`.
        noise: add δ ε at every step (False: deterministic gradient steps).
        rng: where the noise comes from (default: torch's global generator).
        clamp: clip the chain to the data range [-1, 1] after every step (not in CoopNets; a
            common safeguard of short-run EBM sampling).
    """
    if steps < 1:
        raise ValueError(f"the Langevin revision needs at least one step; got {steps}")
    current = images.detach()
    start_scores: Tensor | None = None
    grad_norm = torch.zeros((), device=images.device)
    for _ in range(steps):
        chain = current.requires_grad_(True)
        with torch.enable_grad():
            scores = descriptor(chain)
            (grad,) = torch.autograd.grad(scores.sum(), chain)
        if start_scores is None:
            start_scores = scores.detach()
        grad_norm = grad_norm + reduce(grad.float() ** 2, "b c h w -> b", "sum").sqrt().mean()
        epsilon = _normal(chain, rng) if noise else None
        current = langevin_step(chain.detach(), grad, step_size, reference_std, epsilon)
        if clamp:
            current = current.clamp(-1.0, 1.0)
    assert start_scores is not None
    return Revision(current.detach(), start_scores, (grad_norm / steps).detach())


def painter_regression_loss(painted: Tensor, revised: Tensor, sigma: float) -> Tensor:
    """||Y - g(z)||² / (2σ²) per image, averaged over the batch (CoopNets' generator loss).

    Args:
        painted: g(z) (B, C, H, W).
        revised: Y (B, C, H, W), the regression target (no gradient flows into it).
        sigma: σ > 0, the generator's observation noise.
    """
    if painted.shape != revised.shape:
        raise ValueError(
            f"painted {tuple(painted.shape)} and revised {tuple(revised.shape)} images differ"
        )
    squared = (revised.detach() - painted) ** 2
    return reduce(squared, "b c h w -> b", "sum").mean() / (2.0 * sigma**2)


def descriptor_loss(data_scores: Tensor, revised_scores: Tensor) -> Tensor:
    """mean f(Y) - mean f(x_data): minimising it maximises the descriptor's log-likelihood
    gradient estimate (CoopNets, eq. 5). Scores are (B,) each."""
    return revised_scores.mean() - data_scores.mean()


def latent_step(latents: Tensor, grad: Tensor, step_size: float, noise: Tensor | None) -> Tensor:
    """One Langevin step of latent inference: z' = z - (δ_g²/2) (z + ∂L/∂z) + δ_g ε.

    Args:
        latents: z (B, D).
        grad: ∂L/∂z (B, D), L = ||Y - g(z)||² / (2σ²) per image.
        step_size: δ_g > 0.
        noise: ε (B, D), or None for no noise.
    """
    if step_size <= 0:
        raise ValueError(f"step_size must be positive; got {step_size}")
    moved = latents - 0.5 * step_size**2 * (latents + grad)
    return moved if noise is None else moved + step_size * noise


def latent_inference(
    generator: Callable[[Tensor], Tensor],
    latents: Tensor,
    target: Tensor,
    steps: int,
    step_size: float,
    sigma: float,
    noise: bool = True,
    rng: torch.Generator | None = None,
) -> Tensor:
    """Langevin inference of z for targets Y under the painter (CoopNets, eq. 11).

    Args:
        generator: g, latents (B, D) -> images (B, C, H, W), each image from its own latent.
        latents: the starting z (B, D) (not modified).
        target: Y (B, C, H, W).
        steps: number of steps (0 returns the latents unchanged).
        step_size: δ_g; sigma: σ of the regression.

    Returns:
        the inferred latents (B, D), detached.
    """
    current = latents.detach()
    for _ in range(steps):
        z = current.requires_grad_(True)
        with torch.enable_grad():
            painted = generator(z).float()
            per_image = reduce((target.detach() - painted) ** 2, "b c h w -> b", "sum")
            (grad,) = torch.autograd.grad(per_image.sum() / (2.0 * sigma**2), z)
        epsilon = _normal(z, rng) if noise else None
        current = latent_step(z.detach(), grad, step_size, epsilon)
    return current.detach()


@register_objective("coop")
class CooperativeObjective(Objective):
    """Cooperative training (CoopNets, Xie et al., TPAMI 2018) of any painter with a descriptor.

    Networks: ``generator`` (the painter) and ``descriptor``; Adam for each (the descriptor's
    learning rate is ``coop.lr_descriptor``, the painter's ``optim.lr_generator``; both use
    ``optim.beta1`` and ``optim.beta2``). With ``optim.amp`` only the painter runs under bf16
    autocast: the descriptor and its Langevin dynamics stay float32 (steps of δ²/2 = 2e-6 would
    vanish in bf16).

    Losses (all detached scalars): ``descriptor_loss`` (mean f(Y) - mean f(x_data)), ``f_data``,
    ``f_painted`` (f of x0), ``f_revised`` (f of Y), ``langevin_grad_norm`` (mean ||∂f/∂Y||₂ over
    the chain), ``revision_rms`` (root mean square of Y - x0 per pixel), ``painter_loss``
    (||Y - g(z)||² / (2σ²), before the last of the ``coop.painter_updates`` steps) and
    ``diversity`` (the painter's mean image/latent distance ratio over pairs; 0 = collapse).
    """

    loss_names = (
        "descriptor_loss",
        "f_data",
        "f_painted",
        "f_revised",
        "langevin_grad_norm",
        "revision_rms",
        "painter_loss",
        "diversity",
    )
    progress_losses = ("descriptor_loss", "painter_loss")

    def __init__(self, config: TrainConfig, generator: Generator, device: torch.device) -> None:
        super().__init__(device, amp=config.optim.amp)
        self.config = config
        coop = config.coop
        self.descriptor = build_descriptor(
            coop.descriptor,
            (config.data.size[0], config.data.size[1]),
            config.data.channels,
            width=coop.descriptor_width,
            num_outputs=coop.descriptor_outputs,
        ).to(device)
        self.networks = {"generator": generator.to(device), "descriptor": self.descriptor}
        betas = (config.optim.beta1, config.optim.beta2)
        reference = config.run.reference
        self.optimizers = {
            "generator": make_adam(
                generator.parameters(), config.optim.lr_generator, betas, device, reference
            ),
            "descriptor": make_adam(
                self.descriptor.parameters(), coop.lr_descriptor, betas, device, reference
            ),
        }
        mode = config.run.compile
        self.generate = maybe_compile(generator, mode, device, "generator")
        self.score = maybe_compile(self.descriptor, mode, device, "descriptor")

    def _latents(self, batch: int) -> Tensor:
        return torch.randn(batch, self.generator.latent_dim, device=self.device)

    # -- the parts of a step (public: the tests and benchmarks call them one by one) -------------
    def paint(self, latents: Tensor) -> Tensor:
        """x0 = g(z) without gradients, float32: latents (B, D) -> (B, C, H, W)."""
        with torch.no_grad(), self.autocast():
            return self.generate(latents).float()

    def revise(self, images: Tensor, rng: torch.Generator | None = None) -> Revision:
        """The descriptor's Langevin revision of ``images`` (B, C, H, W) with ``coop``'s options;
        the descriptor's parameters get no gradients."""
        coop = self.config.coop
        with frozen(self.descriptor):
            return langevin_revision(
                self.score,
                images,
                coop.langevin_steps,
                coop.step_size,
                coop.reference_std,
                noise=coop.noise,
                rng=rng,
                clamp=coop.clamp,
            )

    def infer_latents(self, latents: Tensor, revised: Tensor) -> Tensor:
        """``coop.latent_steps`` Langevin steps of z (B, D) towards the revised images."""
        coop = self.config.coop
        with frozen(self.generator), self.autocast():
            return latent_inference(
                self.generate,
                latents,
                revised,
                coop.latent_steps,
                coop.latent_step_size,
                coop.generator_std,
                noise=coop.noise,
            )

    def update_descriptor(self, real: Tensor, revised: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One Adam step on mean f(Y) - mean f(x_data); returns (loss, f(x_data), f(Y)) as
        detached (B,)-means, from before the step. real and revised: (B, C, H, W)."""
        optimizer = self.optimizers["descriptor"]
        optimizer.zero_grad(set_to_none=True)
        real, revised = real.detach().float(), revised.detach()
        if self.config.run.reference:
            data_scores, revised_scores = self.descriptor(real), self.descriptor(revised)
        else:  # one pass over both halves: the same values (f has no batch-level layers)
            data_scores, revised_scores = self.score(torch.cat([real, revised])).split(
                [real.shape[0], revised.shape[0]]
            )
        loss = descriptor_loss(data_scores, revised_scores)
        loss.backward()
        optimizer.step()
        return loss.detach(), data_scores.detach().mean(), revised_scores.detach().mean()

    def update_painter(self, latents: Tensor, revised: Tensor) -> tuple[Tensor, Tensor]:
        """One Adam step of the painter on ||Y - g(z)||² / (2σ²), plus the diversity-sensitive
        term of ``objective.diversity_weight`` when it is positive (not in CoopNets; see
        :func:`~fwp.gan.objectives.adversarial.diversity_loss`).

        Args:
            latents: z (B, D); revised: Y (B, C, H, W).

        Returns:
            (the regression loss, the mean image/latent distance ratio of the batch's pairs),
            detached, from before the step.
        """
        optimizer = self.optimizers["generator"]
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            painted = self.generate(latents).float()
        regression = painter_regression_loss(painted, revised, self.config.coop.generator_std)
        ratios = diversity_ratios(painted, latents)
        loss = regression
        weight = self.config.objective.diversity_weight
        if weight > 0:
            loss = loss + weight * diversity_loss(ratios, self.config.objective.diversity_cap)
        loss.backward()
        optimizer.step()
        return regression.detach(), ratios.detach().mean()

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        latents = self._latents(real.shape[0])
        painted = self.paint(latents)
        revision = self.revise(painted)
        if self.config.coop.latent_steps > 0:
            latents = self.infer_latents(latents, revision.images)
        d_loss, f_data, f_revised = self.update_descriptor(real, revision.images)
        for _ in range(self.config.coop.painter_updates):
            painter_loss, diversity = self.update_painter(latents, revision.images)
        return {
            "descriptor_loss": d_loss,
            "f_data": f_data,
            "f_painted": revision.start_scores.mean(),
            "f_revised": f_revised,
            "langevin_grad_norm": revision.grad_norm,
            "revision_rms": (revision.images - painted).pow(2).mean().sqrt(),
            "painter_loss": painter_loss,
            "diversity": diversity,
        }

    # -- pictures for the run directory ---------------------------------------------------------
    def extra_sample_grids(self, latents: Tensor) -> dict[str, Tensor]:
        """``revision``: per latent, the painter's x0 (left) beside the descriptor's revision Y
        (right, clipped to [-1, 1]) as one (C, H, 2W + 2) tile; (N, C, H, 2W + 2) in all.

        The noise comes from a generator seeded with ``run.seed``, so the grids of one run are
        comparable across steps and saving them leaves the training RNG untouched.
        """
        rng = torch.Generator(device=self.device).manual_seed(self.config.run.seed + 3)
        tiles = []
        for chunk in latents.split(64):
            painted = self.paint(chunk)
            revised = self.revise(painted, rng=rng).images.clamp(-1.0, 1.0)
            gap = painted.new_ones(*painted.shape[:3], 2)  # a white line between the two
            tiles.append(torch.cat([painted, gap, revised], dim=3))
        return {"revision": torch.cat(tiles)}
