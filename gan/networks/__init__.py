"""Networks that judge images: the adversarial discriminator (and, beside it, the critics and
descriptors of other objectives)."""

from .discriminator import (
    DiscriminatorOutput,
    LightweightDiscriminator,
    check_discriminator_size,
)

__all__ = ["DiscriminatorOutput", "LightweightDiscriminator", "check_discriminator_size"]
