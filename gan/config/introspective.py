"""The introspective objective's options (``introspective``): INNg ("Introspective Neural Networks
for Generative Modeling", Lazarow, Jin & Tu, ICCV 2017) and WINN ("Wasserstein Introspective
Neural Networks", Lee, Xu, Fan & Tu, CVPR 2018). The defaults follow the official WINN code: a
critic of 3x3 convolutions with swish and layer norm, Adam lr 1e-4 with betas (0, 0.9), three
critic passes per iteration, 50 + 50 images per pass, image-space Adam lr 0.01 clipped to
[-1, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fields import ConfigError, option

if TYPE_CHECKING:
    from .train import TrainConfig

#: how the pseudo-negatives are made: a cascade of critics from noise, or the run's painter
INTROSPECTIVE_MODES = ("classic", "painter")

#: the critic's loss: INNg's logistic (cross-entropy) loss or WINN's Wasserstein loss with GP
INTROSPECTIVE_LOSSES = ("wasserstein", "logistic")


@dataclass
class IntrospectiveSection:
    """Introspective training, objective.name "introspective" (INNg, ICCV 2017; WINN, CVPR 2018):
    a critic tells data from pseudo-negatives synthesised by gradient ascent on its own score."""

    mode: str = option(
        "classic",
        "classic: pseudo-negatives from noise through a cascade of stage critics (no generator "
        "network); painter: the run's painter paints them and regresses onto their refinement",
        choices=INTROSPECTIVE_MODES,
    )
    loss: str = option(
        "wasserstein",
        "critic loss: wasserstein (WINN, with gradient penalty) or logistic (INNg)",
        choices=INTROSPECTIVE_LOSSES,
    )
    gp_weight: float = option(
        10.0, "weight of the WINN gradient penalty (||grad f|| - 1)^2 at data/negative mixtures"
    )
    stages: int = option(
        20,
        "classic: the most stages (critics) of the cascade; later stages retrain the last one. "
        "Checkpoints hold every stage's critic twice (the cascade and its EMA copy): 2*stages*4 "
        "bytes per critic parameter (2.9M parameters at 64x64 with the default widths)",
    )
    stage_steps: int = option(500, "training steps (critic iterations) per stage")
    stage_negatives: int = option(
        1000, "classic: pseudo-negatives synthesised (and added to the pool) at each stage's end"
    )
    pool_size: int = option(
        20000,
        "the most pseudo-negatives kept (oldest dropped first); saved in every checkpoint as "
        "uint8, pool_size*C*H*W bytes (3*64*64 = 12 KiB per image)",
    )
    critic_passes: int = option(3, "critic Adam steps per training step")
    negative_batch: int = option(50, "pseudo-negatives per critic pass (drawn with replacement)")
    lr_critic: float = option(1e-4, "Adam learning rate of the critic")
    critic_beta1: float = option(0.0, "Adam beta1 of the critic")
    critic_beta2: float = option(0.9, "Adam beta2 of the critic")
    critic_width: int = option(
        64, "channels of the critic's first convolutions (doubling per level)"
    )
    critic_max_width: int = option(256, "the most channels of a critic convolution")
    synthesis_steps: int = option(
        100, "the most image-space Adam steps of one synthesis (stops early at the threshold)"
    )
    synthesis_lr: float = option(0.01, "image-space Adam learning rate (images clipped to [-1, 1])")
    early_stop: bool = option(
        True,
        "stop a synthesis once the batch's mean score reaches a threshold drawn uniformly between "
        "the min and max critic score on data",
    )
    painter_updates: int = option(1, "painter mode: painter Adam steps on each refinement")


def validate_introspective(config: TrainConfig) -> None:
    """Refuse bad introspective options (before any work; each message names the option)."""
    intro = config.introspective
    if intro.gp_weight < 0:
        raise ConfigError(f"introspective.gp_weight must be >= 0; got {intro.gp_weight}")
    for name in ("lr_critic", "synthesis_lr"):
        if not getattr(intro, name) > 0:
            raise ConfigError(f"introspective.{name} must be positive; got {getattr(intro, name)}")
    for name in ("critic_beta1", "critic_beta2"):
        if not 0.0 <= getattr(intro, name) < 1.0:
            raise ConfigError(f"introspective.{name} must be in [0, 1); got {getattr(intro, name)}")
    counts = (
        "stages",
        "stage_steps",
        "stage_negatives",
        "pool_size",
        "critic_passes",
        "negative_batch",
        "critic_width",
        "critic_max_width",
        "synthesis_steps",
        "painter_updates",
    )
    for name in counts:
        if getattr(intro, name) < 1:
            raise ConfigError(
                f"introspective.{name} must be a positive integer; got {getattr(intro, name)}"
            )
    if intro.pool_size < intro.stage_negatives:
        raise ConfigError(
            f"introspective.pool_size ({intro.pool_size}) must hold at least one stage's "
            f"pseudo-negatives (introspective.stage_negatives, {intro.stage_negatives})"
        )
    if config.objective.name != "introspective":
        return
    if intro.mode == "classic" and (config.refiner.enabled or config.generator.init_from):
        raise ConfigError(
            "introspective.mode classic samples through its cascade of critics, not a painter: "
            "drop --refiner/--init-from or use --introspective-mode painter"
        )
