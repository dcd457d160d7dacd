"""Training configuration: typed sections, presets, file loading, overrides and validation.

A configuration is built in layers, each overriding the one before: a preset (``paper``, the main
setting of "Images as Weight Matrices", Irie & Schmidhuber, ICLR 2023, or ``quick``, sized for a
CPU), an optional TOML/JSON file, then command-line options. The resolved configuration is written
to the run directory and is all that is needed to rebuild the run.

Rooms: :mod:`.fields` (ConfigError, :func:`option`, shared choices), :mod:`.sections` (data,
generator, painter, refiner, discriminator, optim, run), :mod:`.objectives` (objective, coop),
:mod:`.introspective` (introspective), :mod:`.train` (TrainConfig, overrides, files),
:mod:`.presets` (presets, build_config, the option table).
"""

from .fields import (
    ADVERSARIAL_LOSSES,
    COMPILE_MODES,
    GENERATOR_KINDS,
    INIT_WEIGHTS,
    OBJECTIVE_NAMES,
    PENALTY_TARGETS,
    ConfigError,
    option,
)
from .introspective import INTROSPECTIVE_LOSSES, INTROSPECTIVE_MODES, IntrospectiveSection
from .objectives import CoopSection, ObjectiveSection
from .presets import PRESETS, OptionInfo, build_config, option_table, preset_defaults
from .sections import (
    DERIVED_PAINTER_OPTIONS,
    PAINTER_OPTION_HELP,
    DataSection,
    DiscriminatorSection,
    GeneratorSection,
    OptimSection,
    PainterSection,
    RefinerSection,
    RunSection,
)
from .train import (
    RECORDED_OPTIONS,
    SECTIONS,
    TrainConfig,
    apply_nested,
    config_changes,
    flatten_config,
    load_config_file,
    parse_assignment,
    parse_toml_value,
    set_option,
)

__all__ = [
    "ADVERSARIAL_LOSSES",
    "COMPILE_MODES",
    "DERIVED_PAINTER_OPTIONS",
    "GENERATOR_KINDS",
    "INIT_WEIGHTS",
    "INTROSPECTIVE_LOSSES",
    "INTROSPECTIVE_MODES",
    "OBJECTIVE_NAMES",
    "PAINTER_OPTION_HELP",
    "PENALTY_TARGETS",
    "PRESETS",
    "RECORDED_OPTIONS",
    "SECTIONS",
    "ConfigError",
    "CoopSection",
    "DataSection",
    "DiscriminatorSection",
    "GeneratorSection",
    "IntrospectiveSection",
    "ObjectiveSection",
    "OptimSection",
    "OptionInfo",
    "PainterSection",
    "RefinerSection",
    "RunSection",
    "TrainConfig",
    "apply_nested",
    "build_config",
    "config_changes",
    "flatten_config",
    "load_config_file",
    "option",
    "option_table",
    "parse_assignment",
    "parse_toml_value",
    "preset_defaults",
    "set_option",
]
