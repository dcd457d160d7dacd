"""The configuration sections of the training objectives: how the generator is taught
(``objective``) and the cooperative objective's own options (``coop``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fields import ADVERSARIAL_LOSSES, OBJECTIVE_NAMES, PENALTY_TARGETS, ConfigError, option

if TYPE_CHECKING:
    from .train import TrainConfig


@dataclass
class ObjectiveSection:
    """How the generator is taught."""

    name: str = option("adversarial", "the training objective", choices=OBJECTIVE_NAMES)
    loss: str = option(
        "hinge",
        "adversarial loss: hinge (the paper's), or logistic, the non-saturating loss that R1 was "
        "introduced with",
        choices=ADVERSARIAL_LOSSES,
    )
    gp_weight: float = option(10.0, "weight of the gradient penalty on real images")
    gp_every: int = option(4, "apply the gradient penalty every N steps (lazy regularisation)")
    penalty: str = option(
        "one-centred",
        "gradient penalty: one-centred (||grad|| - 1)^2, or r1 ||grad||^2",
        choices=tuple(PENALTY_TARGETS),
    )
    reconstruction_weight: float = option(
        1.0, "weight of the discriminator's self-supervised reconstruction loss"
    )
    augment: str = option(
        "translation,cutout",
        "DiffAugment policy, comma-separated from color, translation, cutout; applied only when "
        "--objective-augment-probability > 0 (off by default)",
    )
    augment_probability: float = option(
        0.0, "probability of augmenting a batch (0 = augmentation off)"
    )
    diversity_weight: float = option(
        0.0, "weight of the capped diversity-sensitive generator term (0 = off, as in the paper)"
    )
    diversity_cap: float = option(
        0.5, "per-pair image/latent distance ratio above which the diversity term stops pushing"
    )
    intermediate_images: int = option(
        1,
        "N: the discriminator also judges N-1 partial paintings, after j*T/N+1 updates "
        "(official --use_intermed_loss); 1 = off",
    )
    scale_intermediate: bool = option(
        True,
        "multiply the j-th partial matrix by N/j before the output activation (official "
        "--scale_intermed_loss)",
    )


@dataclass
class CoopSection:
    """Cooperative training, objective.name "coop" (CoopNets, Xie et al., TPAMI 2018): K Langevin
    steps of the descriptor revise the painter's images; the painter regresses on the revision."""

    langevin_steps: int = option(15, "K, descriptor Langevin steps per iteration")
    step_size: float = option(
        0.002, "Langevin step delta of Y <- Y - delta^2/2 (Y / s^2 - df/dY) + delta eps"
    )
    reference_std: float = option(0.016, "s, the std of the descriptor's Gaussian reference")
    noise: bool = option(True, "the delta eps noise term of each Langevin step (off: noise-free)")
    clamp: bool = option(False, "clip Y to [-1, 1] after each Langevin step (not in CoopNets)")
    generator_std: float = option(
        0.3, "sigma of the painter's regression loss ||Y - g(z)||^2 / (2 sigma^2)"
    )
    latent_steps: int = option(
        0, "Langevin inference steps on z before the painter update (0 = off, as CoopNets)"
    )
    latent_step_size: float = option(0.1, "delta_g, the step of the latent Langevin inference")
    painter_updates: int = option(1, "painter Adam steps on each revision (CoopNets: 1)")
    descriptor: str = option(
        "coopnets", "the descriptor network: coopnets, coopnets-small or resnet"
    )
    descriptor_width: int = option(64, "channels of the descriptor's first layer")
    descriptor_outputs: int = option(100, "outputs of the descriptor's last layer; f is their sum")
    lr_descriptor: float = option(
        0.007, "Adam learning rate of the descriptor (betas from optim.beta1, optim.beta2)"
    )


def _validate_coop(config: TrainConfig) -> None:
    """Refuse bad cooperative-training options (the steps only when the objective is on)."""
    from ..networks import check_descriptor_size

    coop = config.coop
    positive = ("step_size", "reference_std", "generator_std", "latent_step_size", "lr_descriptor")
    for name in positive:
        if not getattr(coop, name) > 0:
            raise ConfigError(f"coop.{name} must be positive; got {getattr(coop, name)}")
    for name in ("langevin_steps", "latent_steps"):
        if getattr(coop, name) < 0:
            raise ConfigError(f"coop.{name} must be >= 0; got {getattr(coop, name)}")
    for name in ("painter_updates", "descriptor_width", "descriptor_outputs"):
        if getattr(coop, name) < 1:
            raise ConfigError(f"coop.{name} must be a positive integer; got {getattr(coop, name)}")
    try:
        check_descriptor_size(coop.descriptor, (config.data.size[0], config.data.size[1]))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if config.objective.name == "coop" and coop.langevin_steps < 1:
        raise ConfigError(
            "coop.langevin_steps must be at least 1 with objective.name 'coop': the painter "
            "learns from the descriptor's Langevin revision of its images"
        )
