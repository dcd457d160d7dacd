"""Painters: input generators, controllers, the Painter engine, the U-Net refiner, and the
convolutional baseline generator."""

from .controller import LSTMController, TransformerController
from .conv_generator import ConvGenerator, ConvGeneratorConfig
from .factory import GENERATOR_CONFIGS, build_generator
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
from .refiner import REFINER_ARCHITECTURES, REFINER_OUTPUTS, UNetRefiner
from .unet import DiffusionUNet

__all__ = [
    "CONTROLLERS",
    "GENERATOR_CONFIGS",
    "INPUT_GENERATORS",
    "PAINTER_PRESETS",
    "REFINER_ARCHITECTURES",
    "REFINER_OUTPUTS",
    "ChunkedLatentInput",
    "ConvGenerator",
    "ConvGeneratorConfig",
    "DiffusionUNet",
    "Generator",
    "LSTMController",
    "Painter",
    "PainterConfig",
    "RepeatedLatentInput",
    "SplitLatentInput",
    "TransformerController",
    "UNetRefiner",
    "build_generator",
    "count_parameters",
    "painter_preset",
]
