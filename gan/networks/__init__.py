"""Networks that judge images: the adversarial discriminator and the cooperative descriptor
(and, beside them, the critics of other objectives)."""

from .cascade import CascadeSampler, Synthesis, synthesise
from .critic import Critic
from .descriptor import (
    DESCRIPTORS,
    ConvDescriptor,
    Descriptor,
    ResidualDescriptor,
    build_descriptor,
    check_descriptor_size,
)
from .discriminator import (
    DISCRIMINATOR_ARCHITECTURES,
    DiscriminatorOutput,
    LightweightDiscriminator,
    check_discriminator_size,
)

__all__ = [
    "DESCRIPTORS",
    "DISCRIMINATOR_ARCHITECTURES",
    "CascadeSampler",
    "ConvDescriptor",
    "Critic",
    "Descriptor",
    "DiscriminatorOutput",
    "LightweightDiscriminator",
    "ResidualDescriptor",
    "Synthesis",
    "build_descriptor",
    "check_descriptor_size",
    "check_discriminator_size",
    "synthesise",
]
