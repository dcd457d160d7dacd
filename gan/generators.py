"""The generator a training configuration describes (a learning-rule painter, optionally followed
by the U-Net refiner of "Images as Weight Matrices", Irie & Schmidhuber, ICLR 2023)."""

from __future__ import annotations

from fwp.painters import Generator, UNetRefiner

from .config import TrainConfig


def build_generator(config: TrainConfig) -> Generator:
    """A freshly initialised :class:`Generator` with the architecture of ``config``."""
    refiner = None
    if config.refiner.enabled:
        refiner = UNetRefiner(
            channels=config.data.channels,
            base_channels=config.refiner.base_channels,
            depth=config.refiner.depth,
        )
    return Generator(config.painter_config(), refiner)
