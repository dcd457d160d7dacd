"""Networks that judge images: the adversarial discriminator (and, beside it, the critics and
descriptors of other objectives)."""

from .discriminator import (
    DISCRIMINATOR_ARCHITECTURES,
    DiscriminatorOutput,
    LightweightDiscriminator,
    check_discriminator_size,
)

__all__ = [
    "DISCRIMINATOR_ARCHITECTURES",
    "DiscriminatorOutput",
    "LightweightDiscriminator",
    "check_discriminator_size",
]
