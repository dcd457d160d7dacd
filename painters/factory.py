"""One entry point that builds an image generator from its configuration.

A :class:`~fwp.painters.PainterConfig` builds a learning-rule :class:`~fwp.painters.Generator`
(the painter of "Images as Weight Matrices", Irie & Schmidhuber, ICLR 2023, optionally followed by
a U-Net refiner); a :class:`~fwp.painters.ConvGeneratorConfig` builds the paper's convolutional
baseline, the Lightweight GAN generator (Liu et al., ICLR 2021). Both kinds offer what training
and sampling use: ``forward(z)``, ``paint(z, frames=...)``, ``latent_dim``, ``sample_latents``
and ``sample``.
"""

from __future__ import annotations

from torch import nn

from .conv_generator import ConvGenerator, ConvGeneratorConfig
from .generator import Generator
from .painter import PainterConfig
from .refiner import UNetRefiner

#: generator kind -> the configuration class that selects it
GENERATOR_CONFIGS: dict[str, type] = {"painter": PainterConfig, "conv": ConvGeneratorConfig}


def build_generator(
    config: PainterConfig | ConvGeneratorConfig, refiner: UNetRefiner | None = None
) -> nn.Module:
    """The generator that ``config`` describes: z (B, latent_dim) -> images (B, C, H, W).

    Args:
        config: a :class:`PainterConfig` (a painter) or a :class:`ConvGeneratorConfig` (the conv
            baseline).
        refiner: an optional :class:`UNetRefiner` after a painter (FPA/U-Net); the conv baseline
            takes none.

    Raises:
        ValueError: for a refiner with the conv baseline, or a configuration of another type.
    """
    if isinstance(config, PainterConfig):
        return Generator(config, refiner)
    if isinstance(config, ConvGeneratorConfig):
        if refiner is not None:
            raise ValueError(
                "the conv generator takes no refiner (the paper's FPA/U-Net refines painters "
                "only); disable the refiner"
            )
        return ConvGenerator(config)
    raise ValueError(
        f"build_generator takes one of {sorted(c.__name__ for c in GENERATOR_CONFIGS.values())}; "
        f"got {type(config).__name__}"
    )
