"""Training objectives: the contract (:mod:`.base`) and the objectives that fulfil it: adversarial
(:mod:`.adversarial`), cooperative (:mod:`.cooperative`) and introspective
(:mod:`.introspective`)."""

from .adversarial import (
    AdversarialObjective,
    diversity_loss,
    diversity_ratios,
    hinge_discriminator_loss,
    hinge_generator_loss,
    real_gradient_penalty,
)
from .base import (
    OBJECTIVES,
    LinearDecay,
    Objective,
    build_objective,
    frozen,
    make_adam,
    register_objective,
)
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
from .introspective import IntrospectiveObjective, critic_loss, gradient_penalty
from .negative_pool import NegativePool

__all__ = [
    "OBJECTIVES",
    "AdversarialObjective",
    "CooperativeObjective",
    "IntrospectiveObjective",
    "LinearDecay",
    "NegativePool",
    "Objective",
    "Revision",
    "build_objective",
    "critic_loss",
    "descriptor_loss",
    "diversity_loss",
    "diversity_ratios",
    "frozen",
    "gradient_penalty",
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
