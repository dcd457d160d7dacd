"""Training objectives: the contract (:mod:`.base`) and the objectives that fulfil it."""

from .adversarial import (
    AdversarialObjective,
    diversity_loss,
    diversity_ratios,
    hinge_discriminator_loss,
    hinge_generator_loss,
    real_gradient_penalty,
)
from .base import OBJECTIVES, Objective, build_objective, frozen, make_adam, register_objective

__all__ = [
    "OBJECTIVES",
    "AdversarialObjective",
    "Objective",
    "build_objective",
    "diversity_loss",
    "diversity_ratios",
    "frozen",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "make_adam",
    "real_gradient_penalty",
    "register_objective",
]
