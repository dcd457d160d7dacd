"""The adversarial objective of "Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023): a
Lightweight-GAN discriminator with hinge loss, its reconstruction loss, a gradient penalty, optional
differentiable augmentation and an optional diversity-sensitive generator term."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor

from fwp.painters import Generator

from ..augment import DiffAugment
from ..compiled import maybe_compile
from ..config import PENALTY_TARGETS, TrainConfig
from ..networks import DiscriminatorOutput, LightweightDiscriminator
from .base import Objective, frozen, make_adam, register_objective


def hinge_discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> Tensor:
    """Hinge loss of both heads: relu(1 - D(x)) + relu(1 + D(G(z)))."""
    loss = F.relu(1.0 - real.logits).mean() + F.relu(1.0 + fake.logits).mean()
    return loss + F.relu(1.0 - real.small_logits).mean() + F.relu(1.0 + fake.small_logits).mean()


def hinge_generator_loss(fake: DiscriminatorOutput) -> Tensor:
    """Hinge generator loss of both heads: -D(G(z))."""
    return -(fake.logits.mean() + fake.small_logits.mean())


def real_gradient_penalty(real: Tensor, output: DiscriminatorOutput, target: float = 1.0) -> Tensor:
    """(||grad_x D(x)|| - target)^2 on real images x (B, C, H, W) that require grad.

    ``target`` 1 is the penalty of the FPA paper's Lightweight-GAN setting; ``target`` 0 is the
    R1 penalty (Mescheder et al., ICML 2018), ||grad_x D(x)||^2.
    """
    (grads,) = torch.autograd.grad(
        (output.logits.sum() + output.small_logits.sum()), real, create_graph=True
    )
    return (grads.flatten(1).norm(dim=1) - target).pow(2).mean()


def diversity_ratios(images: Tensor, latents: Tensor) -> Tensor:
    """||G(z1) - G(z2)||_1 / ||z1 - z2||_1 per element, for each pair: (B // 2,).

    images (B, C, H, W) painted from latents (B, D); the first and second halves of the batch are
    paired. This is the distance ratio of the diversity-sensitive term of Yang et al. (ICLR 2019,
    "Diversity-Sensitive Conditional GANs") and of Mao et al. (CVPR 2019, "Mode Seeking GANs"):
    a generator that ignores its latent has ratio 0. Two random 32x32 emoji, with 64-dimensional
    standard-normal latents, have a mean ratio of about 0.56.
    """
    half = images.shape[0] // 2
    image_distance = (images[:half] - images[half : 2 * half]).abs().flatten(1).mean(1)
    latent_distance = (latents[:half] - latents[half : 2 * half]).abs().mean(1)
    return image_distance / latent_distance.clamp_min(1e-8)


def diversity_loss(ratios: Tensor, cap: float) -> Tensor:
    """-mean(min(ratio, cap)) over pairs: pushes apart each pair that is closer than ``cap``.

    Capping per pair (Yang et al., 2019) means pairs that already differ (two modes) cannot pay for
    pairs that do not (the same mode twice), so collapse onto a few modes is penalised too.
    """
    return -ratios.clamp(max=cap).mean()


@register_objective("adversarial")
class AdversarialObjective(Objective):
    """The GAN objective of "Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023).

    A Lightweight-GAN discriminator (Liu et al., ICLR 2021) with hinge loss on two heads, an L1
    reconstruction loss of its self-supervised decoder on real images, a gradient penalty on real
    images every ``gp_every`` steps, optional differentiable augmentation of both real and
    generated images (Zhao et al., 2020), and an optional diversity-sensitive generator term (off
    in the paper's setting; see :func:`diversity_loss`).
    """

    loss_names = (
        "d_loss",
        "d_real",
        "d_fake",
        "reconstruction",
        "gradient_penalty",
        "g_loss",
        "diversity",
    )

    def __init__(self, config: TrainConfig, generator: Generator, device: torch.device) -> None:
        super().__init__(device, amp=config.optim.amp)
        self.config = config
        self.discriminator = LightweightDiscriminator(
            tuple(config.data.size),
            channels=config.data.channels,
            base_channels=config.discriminator.base_channels,
            max_channels=config.discriminator.max_channels,
            minibatch_std=config.discriminator.minibatch_std,
        ).to(device)
        if device.type == "cuda" and not config.run.reference:
            self.discriminator = self.discriminator.to(memory_format=torch.channels_last)
        self.networks = {"generator": generator.to(device), "discriminator": self.discriminator}
        betas = (config.optim.beta1, config.optim.beta2)
        reference = config.run.reference
        self.optimizers = {
            "generator": make_adam(
                generator.parameters(), config.optim.lr_generator, betas, device, reference
            ),
            "discriminator": make_adam(
                self.discriminator.parameters(),
                config.optim.lr_discriminator,
                betas,
                device,
                reference,
            ),
        }
        self.augment = DiffAugment(config.objective.augment, config.objective.augment_probability)
        # the calls the step makes; compiled ones share the networks' parameters. The penalised
        # real pass stays eager: compiled graphs do not support the double backward it needs.
        mode = config.run.compile
        self.generate = maybe_compile(generator, mode, device, "generator")
        self.score = maybe_compile(self.discriminator, mode, device, "discriminator")
        self.score_pair = maybe_compile(
            self.discriminator.score_pair, mode, device, "discriminator"
        )

    def distribute(self) -> None:
        """Data parallel: the generator in DistributedDataParallel, the discriminator averaged
        explicitly.

        The generator is an ordinary DDP network: called through ``forward``, once with gradients
        per step, every parameter used; DDP all-reduces its gradients during the generator loss's
        backward. The discriminator cannot be: its loss has a double backward (the gradient
        penalty differentiates ``autograd.grad(..., create_graph=True)``, which DDP does not
        support), it is called through ``score_pair`` rather than ``forward`` (DDP would not
        synchronise at all) and it is frozen in the generator's backward. Its optimizer averages
        the gradients over ranks with one all-reduce right before it steps, after the whole
        backward, penalty included (:meth:`Objective.distribute`).
        """
        from torch.nn.parallel import DistributedDataParallel

        from .. import distributed

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # rank 0's parameters and buffers are broadcast now; the buffers never change in
        # training, so they are not synchronised at every forward (newer torch spells that
        # forward_sync_buffers, older torch broadcast_buffers)
        parameters = inspect.signature(DistributedDataParallel).parameters
        no_buffer_sync = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers" in parameters
            else {"broadcast_buffers": False}
        )
        wrapped = DistributedDataParallel(self.generator, device_ids=device_ids, **no_buffer_sync)
        self.generate = maybe_compile(wrapped, self.config.run.compile, self.device, "generator")
        distributed.broadcast_module(self.discriminator)
        distributed.average_gradients_before_step(self.optimizers["discriminator"])

    @property
    def pair_pass(self) -> bool:
        """Fast mode scores real and fake images in one discriminator pass (same values)."""
        return not self.config.run.reference

    def _latents(self, batch: int) -> Tensor:
        return torch.randn(batch, self.generator.latent_dim, device=self.device)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        cfg = self.config.objective
        batch = real.shape[0]
        d_opt, g_opt = self.optimizers["discriminator"], self.optimizers["generator"]

        # discriminator
        with torch.no_grad(), self.autocast():
            fake = self.generate(self._latents(batch))
        penalise = step % cfg.gp_every == 0
        real = real.detach().requires_grad_(penalise)
        d_opt.zero_grad(set_to_none=True)
        with self.autocast():
            real_input, fake_input = self.augment(real), self.augment(fake.detach())
            if self.pair_pass:
                score_pair = self.discriminator.score_pair if penalise else self.score_pair
                out_real, out_fake = score_pair(real_input, fake_input)
            else:  # the reference mode (never compiled): two plain calls
                out_real = self.discriminator(real_input, reconstruct=True)
                out_fake = self.discriminator(fake_input)
            adversarial = hinge_discriminator_loss(out_real, out_fake)
            reconstruction = out_real.reconstruction_loss
            d_loss = adversarial + cfg.reconstruction_weight * reconstruction
        if penalise:
            penalty = real_gradient_penalty(real, out_real, PENALTY_TARGETS[cfg.penalty])
            d_loss = d_loss + cfg.gp_weight * penalty
        else:
            penalty = torch.zeros((), device=self.device)
        d_loss.backward()
        d_opt.step()

        # generator
        g_opt.zero_grad(set_to_none=True)
        with frozen(self.discriminator), self.autocast():
            latents = self._latents(batch)
            images = self.generate(latents)
            g_loss = hinge_generator_loss(self.score(self.augment(images)))
            ratios = diversity_ratios(images.float(), latents)
            if cfg.diversity_weight > 0:
                g_loss = g_loss + cfg.diversity_weight * diversity_loss(ratios, cfg.diversity_cap)
        g_loss.backward()
        g_opt.step()

        return {
            "d_loss": d_loss.detach(),
            "d_real": out_real.logits.detach().float().mean(),
            "d_fake": out_fake.logits.detach().float().mean(),
            "reconstruction": reconstruction.detach().float(),
            "gradient_penalty": penalty.detach().float(),
            "g_loss": g_loss.detach().float(),
            "diversity": ratios.detach().mean(),
        }
