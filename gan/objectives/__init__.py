"""Training objectives: the contract (:mod:`.base`) and the objectives that fulfil it: adversarial
(:mod:`.adversarial`) and cooperative (:mod:`.cooperative`)."""

from .adversarial import (
    AdversarialObjective,
    diversity_loss,
    diversity_ratios,
    hinge_discriminator_loss,
    hinge_generator_loss,
    real_gradient_penalty,
)
from .base import OBJECTIVES, Objective, build_objective, frozen, make_adam, register_objective
from .cooperative import (
    CooperativeObjective,
    Revision,
    descriptor_loss,
    langevin_revision,
    langevin_step,
    latent_inference,
    latent_step,
    painter_regression_loss,
)

__all__ = [
    "OBJECTIVES",
    "AdversarialObjective",
    "CooperativeObjective",
    "Objective",
    "Revision",
    "build_objective",
    "descriptor_loss",
    "diversity_loss",
    "diversity_ratios",
    "frozen",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "langevin_revision",
    "langevin_step",
    "latent_inference",
    "latent_step",
    "make_adam",
    "painter_regression_loss",
    "real_gradient_penalty",
    "register_objective",
]
