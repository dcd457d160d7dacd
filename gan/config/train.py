"""The whole training configuration (:class:`TrainConfig`): its sections, validation,
conversion, overrides (``section.name=value``) and configuration files."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fwp.painters import ConvGeneratorConfig, PainterConfig

from ..naming import parse_size
from ..networks.discriminator import OUTPUT_SIZES
from .fields import ConfigError
from .introspective import IntrospectiveSection, validate_introspective
from .objectives import CoopSection, ObjectiveSection, _validate_coop
from .sections import (
    DataSection,
    DiscriminatorSection,
    GeneratorSection,
    OptimSection,
    PainterSection,
    RefinerSection,
    RunSection,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


SECTIONS: dict[str, type] = {
    "data": DataSection,
    "generator": GeneratorSection,
    "painter": PainterSection,
    "refiner": RefinerSection,
    "discriminator": DiscriminatorSection,
    "objective": ObjectiveSection,
    "coop": CoopSection,
    "introspective": IntrospectiveSection,
    "optim": OptimSection,
    "run": RunSection,
}


@dataclass
class TrainConfig:
    """The whole configuration of a training run, one attribute per section."""

    data: DataSection = field(default_factory=DataSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    painter: PainterSection = field(default_factory=PainterSection)
    refiner: RefinerSection = field(default_factory=RefinerSection)
    discriminator: DiscriminatorSection = field(default_factory=DiscriminatorSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    coop: CoopSection = field(default_factory=CoopSection)
    introspective: IntrospectiveSection = field(default_factory=IntrospectiveSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)
    preset: str = "paper"

    # -- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        config = cls()
        apply_nested(config, values, origin="configuration")
        return config

    def painter_config(self) -> PainterConfig:
        """The :class:`PainterConfig` this run trains (size and channels from the data)."""
        height, width = self.data.size
        return PainterConfig(
            height=height,
            width=width,
            channels=self.data.channels,
            fast_path=not self.run.reference,
            **dataclasses.asdict(self.painter),
        )

    def conv_generator_config(self) -> ConvGeneratorConfig:
        """The :class:`ConvGeneratorConfig` of ``generator.kind = conv`` (side from the data)."""
        gen = self.generator
        return ConvGeneratorConfig(
            size=self.data.size[0],
            channels=self.data.channels,
            latent_dim=gen.latent_dim,
            max_channels=gen.max_channels,
            attention_resolutions=tuple(gen.attention_resolutions),
            output_activation=gen.output_activation,
        )

    # -- validation ---------------------------------------------------------------------------
    def _validate_stages(self) -> None:
        """The generator kind, the refinement stage and the intermediate-image loss together."""
        gen, refiner, objective = self.generator, self.refiner, self.objective
        if gen.kind == "conv":
            if refiner.enabled:
                raise ConfigError(
                    "refiner.enabled: the conv generator takes no refiner (the paper's FPA/U-Net "
                    "refines painters only); drop --refiner or use --generator painter"
                )
            if gen.init_from:
                raise ConfigError(
                    "generator.init_from starts the refinement stage of a painter; it does not "
                    "apply to the conv generator"
                )
        if gen.init_from and not refiner.enabled:
            raise ConfigError(
                "generator.init_from starts the FPA/U-Net refinement stage from a painter run: "
                "enable the refiner (--refiner)"
            )
        if refiner.lr < 0 or refiner.match_loss_weight < 0:
            raise ConfigError(
                "refiner.lr must be >= 0 (0 = optim.lr_generator) and refiner.match_loss_weight "
                ">= 0 (0 = off)"
            )
        if (refiner.match_loss_weight > 0 or refiner.judge_painter) and not refiner.enabled:
            raise ConfigError(
                "refiner.match_loss_weight and refiner.judge_painter compare painted and refined "
                "images: enable the refiner (--refiner)"
            )
        if refiner.match_loss_weight > 0 and gen.init_from and gen.freeze_painter:
            raise ConfigError(
                "refiner.match_loss_weight pulls the painter toward the refined image, but "
                "generator.freeze_painter keeps the painter fixed: set one of them off "
                "(--no-generator-freeze-painter or --refiner-match-loss-weight 0)"
            )
        stages = objective.intermediate_images
        if stages < 1:
            raise ConfigError(f"objective.intermediate_images must be >= 1 (1 = off); got {stages}")
        if stages > 1:
            if gen.kind != "painter" or refiner.enabled:
                raise ConfigError(
                    "objective.intermediate_images judges partial paintings: it needs a painter "
                    "without refiner (--generator painter, no --refiner)"
                )
            if self.painter.steps % stages:
                raise ConfigError(
                    f"objective.intermediate_images ({stages}) must divide painter.steps "
                    f"({self.painter.steps}), as in the official code"
                )

    def validate(self) -> None:
        """Refuse invalid values and combinations before any work starts."""
        from ..augment import DiffAugment
        from ..networks import check_discriminator_size

        size = self.data.size
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
            raise ConfigError(f"data.size must be [H, W] of positive integers; got {size!r}")
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3; got {self.data.channels}")
        if self.data.limit < 0:
            raise ConfigError(f"data.limit must be >= 0 (0 = all images); got {self.data.limit}")
        try:
            if self.generator.kind == "conv":
                if size[0] != size[1]:
                    raise ValueError(
                        f"the conv generator paints square images: set data.size to N; got "
                        f"{size[0]}x{size[1]}"
                    )
                self.conv_generator_config().validate()
            else:
                self.painter_config().validate()
            check_discriminator_size((size[0], size[1]))
        except ValueError as err:
            raise ConfigError(str(err)) from err
        positive = {
            "optim.batch_size": self.optim.batch_size,
            "run.log_every": self.run.log_every,
            "run.sample_every": self.run.sample_every,
            "run.checkpoint_every": self.run.checkpoint_every,
            "objective.gp_every": self.objective.gp_every,
            "discriminator.base_channels": self.discriminator.base_channels,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value}")
        if self.run.steps < 1 and self.run.minutes <= 0:
            raise ConfigError(
                "set run.steps (--steps) or run.minutes (--minutes) to a positive value"
            )
        for name in ("lr_generator", "lr_discriminator"):
            if getattr(self.optim, name) <= 0:
                raise ConfigError(f"optim.{name} must be positive")
        if not 0.0 <= self.optim.lr_decay_start <= 1.0:
            raise ConfigError(
                f"optim.lr_decay_start must be in [0, 1] (a fraction of run.steps; 1 = no decay); "
                f"got {self.optim.lr_decay_start}"
            )
        if not 0.0 <= self.optim.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in [0, 1); got {self.optim.ema_decay}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self.optim, name) < 1.0:
                raise ConfigError(f"optim.{name} must be in [0, 1)")
        at_least = {
            "optim.ema_start": (self.optim.ema_start, 0),
            "optim.ema_every": (self.optim.ema_every, 1),
            "optim.ema_reset_every": (self.optim.ema_reset_every, 0),
            "optim.ema_reset_until": (self.optim.ema_reset_until, 0),
            "discriminator.max_channels": (self.discriminator.max_channels, 1),
        }
        for name, (value, least) in at_least.items():
            if value < least:
                raise ConfigError(f"{name} must be an integer >= {least}; got {value}")
        if self.discriminator.output_size not in OUTPUT_SIZES:
            raise ConfigError(
                f"discriminator.output_size must be one of {', '.join(map(str, OUTPUT_SIZES))}; "
                f"got {self.discriminator.output_size}"
            )
        attention = self.discriminator.attention_resolutions
        if any(r < 16 or r & (r - 1) for r in attention):
            raise ConfigError(
                f"discriminator.attention_resolutions must hold powers of two >= 16 (the blocks' "
                f"input sides); got {attention}"
            )
        for dotted, value, choices in _text_choices(self):
            if value not in choices:
                raise ConfigError(f"{dotted} must be one of {', '.join(choices)}; got {value!r}")
        self._validate_stages()
        try:
            DiffAugment(self.objective.augment, self.objective.augment_probability)
        except ValueError as err:
            raise ConfigError(f"objective.augment: {err}") from None
        _validate_coop(self)
        validate_introspective(self)
        if not 0.0 <= self.objective.augment_probability <= 1.0:
            raise ConfigError("objective.augment_probability must be in [0, 1]")
        if self.objective.diversity_weight < 0 or self.objective.diversity_cap <= 0:
            raise ConfigError(
                "objective.diversity_weight must be >= 0 (0 = off) and objective.diversity_cap > 0"
            )
        if self.objective.diversity_weight > 0 and self.optim.batch_size < 2:
            raise ConfigError(
                "objective.diversity_weight compares pairs of samples: set optim.batch_size >= 2"
            )
        if self.refiner.enabled:
            divisor = 2**self.refiner.depth
            if size[0] % divisor or size[1] % divisor:
                raise ConfigError(
                    f"the refiner of depth {self.refiner.depth} needs an image size divisible "
                    f"by {divisor}; lower refiner.depth or change data.size"
                )
        if self.run.fid_every < 0 or (self.run.fid_every and self.run.fid_num < 2):
            raise ConfigError("run.fid_num must be at least 2 when run.fid_every is set")
        if self.run.device not in ("auto", "cpu") and not self.run.device.startswith("cuda"):
            raise ConfigError(f"run.device must be auto, cpu or cuda[:N]; got {self.run.device!r}")
        if self.optim.amp and self.run.reference:
            raise ConfigError("optim.amp and run.reference exclude each other: reference is fp32")
        if self.run.compile != "off" and self.run.reference:
            raise ConfigError(
                "run.compile and run.reference exclude each other: reference mode is eager; "
                "drop --reference or set --run-compile off"
            )


def _text_choices(config: TrainConfig) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(dotted name, value, choices) of every option that declares its choices."""
    result = []
    for section in SECTIONS:
        values = getattr(config, section)
        for f in fields(values):
            choices = f.metadata.get("choices")
            if choices:
                result.append((f"{section}.{f.name}", getattr(values, f.name), choices))
    return result


def _coerce(section: str, name: str, kind: Any, value: Any) -> Any:
    where = f"{section}.{name}"
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind_name == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false; got {value!r}")
        return value
    if kind_name == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{where} must be an integer; got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where} must be an integer; got {value!r}") from None
    if kind_name == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number; got {value!r}") from None
    if kind_name == "str":
        return str(value)
    if where == "data.size":
        try:
            return list(parse_size(value))
        except ValueError as err:
            raise ConfigError(f"data.size: {err}") from None
    if kind_name == "list[int]":
        return _int_list(where, value)
    if where == "painter.rule_options":
        if isinstance(value, str):
            value = parse_toml_value(value)
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where} must be a TOML inline table of rule options such as "
                f"{{decay = 0.5}} (fwp rules NAME lists them); got {value!r}"
            )
        return dict(value)
    return value


def _int_list(where: str, value: Any) -> list[int]:
    """A list of integers from a list, one integer, or text such as ``32``, ``16,32``,
    ``[16, 32]`` or ``""`` (an empty list)."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        items: list[Any] = [part.strip() for part in text.split(",") if part.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(f"{where} must be a list of integers such as 16,32; got {value!r}")
    try:
        if any(isinstance(item, bool | float) for item in items):
            raise ValueError
        return [int(item) for item in items]
    except ValueError:
        raise ConfigError(
            f"{where} must be a list of integers such as 16,32; got {value!r}"
        ) from None


def parse_toml_value(text: str) -> Any:
    """A TOML value (``{decay = 0.5}``, ``[16, 64]``, ``true``); text that is no TOML value is
    returned as it is."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_option(config: TrainConfig, dotted: str, value: Any) -> None:
    """Set ``section.name`` to ``value`` (strings are converted to the field's type)."""
    section, _, name = dotted.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"unknown option {dotted!r}: use section.name with a section among {sorted(SECTIONS)}"
        )
    target = getattr(config, section)
    types = {f.name: f.type for f in fields(target)}
    if name not in types:
        raise ConfigError(
            f"unknown option {dotted!r}; options of [{section}]: {', '.join(sorted(types))}"
        )
    setattr(target, name, _coerce(section, name, types[name], value))


def apply_nested(config: TrainConfig, values: dict[str, Any], origin: str) -> None:
    """Apply a nested mapping {section: {name: value}} (as read from TOML/JSON)."""
    for section, entries in values.items():
        if section == "preset":
            config.preset = str(entries)
            continue
        if not isinstance(entries, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table of options; got {entries!r}")
        for name, value in entries.items():
            set_option(config, f"{section}.{name}", value)


def flatten_config(config: TrainConfig) -> dict[str, Any]:
    """``{"section.name": value}`` for every option of ``config``."""
    return {
        f"{section}.{f.name}": getattr(getattr(config, section), f.name)
        for section in SECTIONS
        for f in fields(getattr(config, section))
    }


#: options fwp records about a run rather than takes as requests (where its rule code came from)
RECORDED_OPTIONS = frozenset({"run.plugins"})


def config_changes(saved: TrainConfig, requested: TrainConfig) -> dict[str, Any]:
    """``{"section.name": requested value}`` for the options where ``requested`` differs
    (options fwp records, :data:`RECORDED_OPTIONS`, are no requests and never differ)."""
    old, new = flatten_config(saved), flatten_config(requested)
    return {
        key: value
        for key, value in new.items()
        if old[key] != value and key not in RECORDED_OPTIONS
    }


def parse_assignment(text: str) -> tuple[str, Any]:
    """``section.name=value`` -> (dotted, value); the value is read as TOML when it parses."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set expects section.name=value; got {text!r}")
    return key.strip(), parse_toml_value(raw)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a .toml or .json configuration file into a nested mapping {section: {name: value}}.

    Raises:
        ConfigError: naming the file and what is wrong: missing or unreadable, bad TOML/JSON
            (with its line), not a table of sections, or an unknown section, option or value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as err:  # JSON, TOML and UTF-8 errors are ValueErrors
        raise ConfigError(f"cannot parse configuration file {str(path)!r}: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"configuration file {str(path)!r} must hold [section] tables of options; "
            f"got {type(values).__name__}"
        )
    for section, entries in values.items():
        if section != "preset" and not isinstance(entries, dict):
            raise ConfigError(
                f"configuration file {str(path)!r}: [{section}] must be a table of options; "
                f"got {entries!r}"
            )
    try:  # every name and value is checked here, so that errors name this file
        apply_nested(TrainConfig(), values, origin=str(path))
    except ConfigError as err:
        raise ConfigError(f"configuration file {str(path)!r}: {err}") from None
    return values
