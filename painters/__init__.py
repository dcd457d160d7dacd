"""Painters: input generators, controllers, the Painter engine and the U-Net refiner."""

from .controller import LSTMController, TransformerController
from .generator import Generator
from .inputs import ChunkedLatentInput, RepeatedLatentInput, SplitLatentInput
from .painter import (
    CONTROLLERS,
    INPUT_GENERATORS,
    PAINTER_PRESETS,
    Painter,
    PainterConfig,
    count_parameters,
    painter_preset,
)
from .refiner import UNetRefiner

__all__ = [
    "CONTROLLERS",
    "INPUT_GENERATORS",
    "PAINTER_PRESETS",
    "ChunkedLatentInput",
    "Generator",
    "LSTMController",
    "Painter",
    "PainterConfig",
    "RepeatedLatentInput",
    "SplitLatentInput",
    "TransformerController",
    "UNetRefiner",
    "count_parameters",
    "painter_preset",
]
