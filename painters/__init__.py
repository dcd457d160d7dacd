"""Painters: input generators, the LSTM controller, the Painter engine and the U-Net refiner."""

from .controller import LSTMController
from .generator import Generator
from .inputs import ChunkedLatentInput, RepeatedLatentInput
from .painter import (
    PAINTER_PRESETS,
    Painter,
    PainterConfig,
    count_parameters,
    painter_preset,
)
from .refiner import UNetRefiner

__all__ = [
    "PAINTER_PRESETS",
    "ChunkedLatentInput",
    "Generator",
    "LSTMController",
    "Painter",
    "PainterConfig",
    "RepeatedLatentInput",
    "UNetRefiner",
    "count_parameters",
    "painter_preset",
]
