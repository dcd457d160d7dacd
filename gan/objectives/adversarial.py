"""The adversarial objective of "Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023): a
Lightweight-GAN discriminator with hinge loss, its reconstruction loss, a gradient penalty, optional
differentiable augmentation, an optional diversity-sensitive generator term, and the official
code's options that show the discriminator more fakes per real batch: partial paintings
(intermediate-image loss) and a refiner's unrefined input, with the match loss of the refiner."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from ..augment import DiffAugment
from ..compiled import maybe_compile
from ..config import PENALTY_TARGETS, TrainConfig
from ..generators import TrainedGenerator, generator_param_groups
from ..networks import DiscriminatorOutput, LightweightDiscriminator
from .base import Objective, frozen, make_adam, register_objective


@dataclass(frozen=True)
class AdversarialLoss:
    """An adversarial loss as three elementwise terms of the logits.

    Attributes:
        real: the discriminator's loss on a real image's logit.
        fake: the discriminator's loss on a generated image's logit.
        generator: the generator's loss on a generated image's logit.
    """

    real: Callable[[Tensor], Tensor]
    fake: Callable[[Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]


#: ``objective.loss`` (the configuration's ``ADVERSARIAL_LOSSES``) -> its terms. hinge:
#: relu(1 - D(x)), relu(1 + D(G(z))), -D(G(z)) (the FPA paper's, from Lightweight GAN); logistic:
#: softplus(-D(x)), softplus(D(G(z))) and the non-saturating softplus(-D(G(z))) (Goodfellow et
#: al., NeurIPS 2014), the loss the R1 penalty was analysed with (Mescheder et al., ICML 2018)
#: and StyleGAN2 trains with.
ADVERSARIAL_LOSS_TERMS: dict[str, AdversarialLoss] = {
    "hinge": AdversarialLoss(
        real=lambda x: F.relu(1.0 - x), fake=lambda x: F.relu(1.0 + x), generator=torch.neg
    ),
    "logistic": AdversarialLoss(
        real=lambda x: F.softplus(-x), fake=F.softplus, generator=lambda x: F.softplus(-x)
    ),
}


def discriminator_loss(
    real: DiscriminatorOutput, fake: DiscriminatorOutput, loss: str = "hinge", pooled: bool = False
) -> Tensor:
    """The discriminator's loss ``loss`` (a key of :data:`ADVERSARIAL_LOSS_TERMS`) on both heads.

    Per head: mean(real term) + mean(fake term); with ``pooled``, for more fakes than reals,
    (sum of real terms + sum of fake terms) / (B_real + B_fake), the official FPA code's
    ``hinge_loss_bis``, which it uses when the discriminator judges several fakes per real image
    (partial paintings, or painted and refined images).
    """
    terms = ADVERSARIAL_LOSS_TERMS[loss]

    def head(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real_loss, fake_loss = terms.real(real_logits), terms.fake(fake_logits)
        if pooled:
            total = real_loss.sum() + fake_loss.sum()
            return total / (real_logits.shape[0] + fake_logits.shape[0])
        return real_loss.mean() + fake_loss.mean()

    return head(real.logits, fake.logits) + head(real.small_logits, fake.small_logits)


def generator_loss(fake: DiscriminatorOutput, loss: str = "hinge") -> Tensor:
    """The generator's loss ``loss`` on both heads' logits of its images: mean of the term."""
    term = ADVERSARIAL_LOSS_TERMS[loss].generator
    return term(fake.logits).mean() + term(fake.small_logits).mean()


def hinge_discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> Tensor:
    """Hinge loss of both heads: relu(1 - D(x)) + relu(1 + D(G(z)))."""
    return discriminator_loss(real, fake, "hinge")


def pooled_hinge_discriminator_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> Tensor:
    """Hinge loss of both heads pooled over all scored images, for more fakes than reals:
    (sum relu(1 - D(x)) + sum relu(1 + D(G(z)))) / (B_real + B_fake) per head (the official
    ``hinge_loss_bis``)."""
    return discriminator_loss(real, fake, "hinge", pooled=True)


def match_loss(painted: Tensor, refined: Tensor) -> Tensor:
    """mean((painted - refined.detach())^2): the official ``--use_unet_match_loss``, an MSE that
    pulls the painter's image (B, C, H, W) toward its refinement; no gradient reaches the refiner.
    """
    return F.mse_loss(painted, refined.detach())


@dataclass
class Fakes:
    """A batch of generated images as the objective uses it.

    Attributes:
        judged: what the discriminator scores, (k B, C, H, W): the final images, preceded by
            partial paintings or unrefined images when the options ask for them.
        final: the generator's images (B, C, H, W).
        painted: a refined generator's unrefined images (B, C, H, W), when needed.
    """

    judged: Tensor
    final: Tensor
    painted: Tensor | None = None


def hinge_generator_loss(fake: DiscriminatorOutput) -> Tensor:
    """Hinge generator loss of both heads: -D(G(z))."""
    return generator_loss(fake, "hinge")


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

    A Lightweight-GAN discriminator (Liu et al., ICLR 2021) with hinge loss on two heads (or the
    non-saturating logistic loss, ``objective.loss``; see :data:`ADVERSARIAL_LOSS_TERMS`), an L1
    reconstruction loss of its self-supervised decoder on real images, a gradient penalty on real
    images every ``gp_every`` steps, optional differentiable augmentation of both real and
    generated images (Zhao et al., 2020), and an optional diversity-sensitive generator term (off
    in the paper's setting; see :func:`diversity_loss`).

    Options of the official code: with ``objective.intermediate_images`` N > 1 the
    discriminator also judges N - 1 partial paintings per latent
    (:meth:`~fwp.painters.Painter.paint_stages`), with ``refiner.judge_painter`` the unrefined
    painted images; then its hinge loss is pooled over all images
    (:func:`pooled_hinge_discriminator_loss`) and the generator's loss averages over all fakes.
    ``refiner.match_loss_weight`` adds :func:`match_loss`.
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

    def __init__(
        self, config: TrainConfig, generator: TrainedGenerator, device: torch.device
    ) -> None:
        super().__init__(device, amp=config.optim.amp)
        self.config = config
        refiner = config.refiner
        #: a refined generator's painted images are needed (judged, or matched)
        self.uses_painted = refiner.enabled and (
            refiner.judge_painter or refiner.match_loss_weight > 0
        )
        if self.uses_painted:
            self.loss_names = (*self.loss_names, "match")
        disc = config.discriminator
        self.discriminator = LightweightDiscriminator(
            tuple(config.data.size),
            channels=config.data.channels,
            base_channels=disc.base_channels,
            max_channels=disc.max_channels,
            minibatch_std=disc.minibatch_std,
            architecture=disc.architecture,
            attention_resolutions=tuple(disc.attention_resolutions),
            output_size=disc.output_size,
        ).to(device)
        if device.type == "cuda" and not config.run.reference:
            self.discriminator = self.discriminator.to(memory_format=torch.channels_last)
        self.networks = {"generator": generator.to(device), "discriminator": self.discriminator}
        betas = (config.optim.beta1, config.optim.beta2)
        reference = config.run.reference
        self.optimizers = {
            "generator": make_adam(
                generator_param_groups(config, generator),
                config.optim.lr_generator,
                betas,
                device,
                reference,
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

    def _fakes(self, latents: Tensor) -> Fakes:
        """The generator's images of ``latents`` (B, latent_dim), and what the discriminator
        judges of them (see :class:`Fakes`)."""
        stages, refiner = self.config.objective.intermediate_images, self.config.refiner
        generator = self.generator
        if stages > 1:  # a painter without refiner (validated)
            painted = generator.painter.paint_stages(
                latents, stages, self.config.objective.scale_intermediate
            )
            judged = rearrange(painted, "n b c h w -> (n b) c h w")
            return Fakes(judged=judged, final=painted[-1])
        if self.uses_painted:
            painted = generator.painter(latents)
            final = generator.refiner(painted)
            judged = torch.cat([painted, final]) if refiner.judge_painter else final
            return Fakes(judged=judged, final=final, painted=painted)
        images = self.generate(latents)
        return Fakes(judged=images, final=images)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        cfg = self.config.objective
        batch = real.shape[0]
        d_opt, g_opt = self.optimizers["discriminator"], self.optimizers["generator"]

        # discriminator
        with torch.no_grad(), self.autocast():
            fake = self._fakes(self._latents(batch)).judged
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
            pooled = fake.shape[0] > batch  # several fakes per real: the official pooling
            adversarial = discriminator_loss(out_real, out_fake, cfg.loss, pooled)
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
            fakes = self._fakes(latents)
            g_loss = generator_loss(self.score(self.augment(fakes.judged)), cfg.loss)
            ratios = diversity_ratios(fakes.final.float(), latents)
            if cfg.diversity_weight > 0:
                g_loss = g_loss + cfg.diversity_weight * diversity_loss(ratios, cfg.diversity_cap)
            matched = None
            if fakes.painted is not None:
                matched = match_loss(fakes.painted.float(), fakes.final.float())
                if self.config.refiner.match_loss_weight > 0:
                    g_loss = g_loss + self.config.refiner.match_loss_weight * matched
        g_loss.backward()
        g_opt.step()

        losses = {
            "d_loss": d_loss.detach(),
            "d_real": out_real.logits.detach().float().mean(),
            "d_fake": out_fake.logits.detach().float().mean(),
            "reconstruction": reconstruction.detach().float(),
            "gradient_penalty": penalty.detach().float(),
            "g_loss": g_loss.detach().float(),
            "diversity": ratios.detach().mean(),
        }
        if matched is not None:
            losses["match"] = matched.detach().float()
        return losses
