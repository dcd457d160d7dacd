"""Training configuration: typed sections, presets, file loading, overrides and validation.

A configuration is built in layers, each overriding the one before: a preset (``paper``, the main
setting of "Images as Weight Matrices", Irie & Schmidhuber, ICLR 2023, or ``quick``, sized for a
CPU), an optional TOML/JSON file, then command-line options. The resolved configuration is written
to the run directory and is all that is needed to rebuild the run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fwp.painters import PainterConfig

from .naming import parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """An invalid configuration; the message names the option to change."""


@dataclass
class DataSection:
    """source: a built-in dataset name (``fwp data list``) or an image folder; size: [H, W]."""

    source: str = "emoji"
    size: list[int] = field(default_factory=lambda: [64, 64])
    channels: int = 3
    limit: int = 0  # 0 = all images


@dataclass
class DiscriminatorSection:
    """minibatch_std: append the batch's feature spread before the main head (anti-collapse)."""

    base_channels: int = 64
    max_channels: int = 512
    minibatch_std: bool = False


@dataclass
class RefinerSection:
    """The optional U-Net refiner after the painter (the paper's FPA/U-Net)."""

    enabled: bool = False
    base_channels: int = 32
    depth: int = 3


@dataclass
class ObjectiveSection:
    name: str = "adversarial"
    loss: str = "hinge"
    gp_weight: float = 10.0
    gp_every: int = 4
    penalty: str = "one-centred"  # (||grad|| - 1)^2 on reals, or "r1": ||grad||^2
    reconstruction_weight: float = 1.0
    augment: str = "translation,cutout"
    augment_probability: float = 0.0
    diversity_weight: float = 0.0  # diversity-sensitive generator term; 0 = off (the paper)
    diversity_cap: float = 0.5  # per-pair image/latent distance ratio above which it stops


@dataclass
class CoopSection:
    """Cooperative training, objective.name "coop" (CoopNets, Xie et al., TPAMI 2018): K Langevin
    steps of the descriptor revise the painter's images; the painter regresses on the revision."""

    langevin_steps: int = 15  # K, descriptor Langevin steps per iteration
    step_size: float = 0.002  # delta of Y <- Y - delta^2/2 (Y / s^2 - df/dY) + delta eps
    reference_std: float = 0.016  # s, of the descriptor's Gaussian reference N(0, s^2 I)
    noise: bool = True  # the delta eps term of each Langevin step
    clamp: bool = False  # clip Y to the data range [-1, 1] after each step (not in CoopNets)
    generator_std: float = 0.3  # sigma of the painter's loss ||Y - g(z)||^2 / (2 sigma^2)
    latent_steps: int = 0  # Langevin inference steps on z before the painter update; 0 = off
    latent_step_size: float = 0.1  # delta_g of z <- z - delta_g^2/2 (z + dL/dz) + delta_g eps
    painter_updates: int = 1  # painter Adam steps on each revision (CoopNets: 1)
    descriptor: str = "coopnets"  # coopnets, coopnets-small or resnet (gan/networks/descriptor)
    descriptor_width: int = 64
    descriptor_outputs: int = 100  # f is the sum of these outputs
    lr_descriptor: float = 0.007  # Adam (optim.beta1, optim.beta2) of the descriptor


def _validate_coop(config: TrainConfig) -> None:
    """Refuse bad cooperative-training options (the steps only when the objective is on)."""
    from .networks import check_descriptor_size

    coop = config.coop
    positive = ("step_size", "reference_std", "generator_std", "latent_step_size", "lr_descriptor")
    for name in positive:
        if not getattr(coop, name) > 0:
            raise ConfigError(f"coop.{name} must be positive; got {getattr(coop, name)}")
    for name in ("langevin_steps", "latent_steps"):
        if getattr(coop, name) < 0:
            raise ConfigError(f"coop.{name} must be >= 0; got {getattr(coop, name)}")
    for name in ("painter_updates", "descriptor_width", "descriptor_outputs"):
        if getattr(coop, name) < 1:
            raise ConfigError(f"coop.{name} must be a positive integer; got {getattr(coop, name)}")
    try:
        check_descriptor_size(coop.descriptor, (config.data.size[0], config.data.size[1]))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if config.objective.name == "coop" and coop.langevin_steps < 1:
        raise ConfigError(
            "coop.langevin_steps must be at least 1 with objective.name 'coop': the painter "
            "learns from the descriptor's Langevin revision of its images"
        )


@dataclass
class OptimSection:
    batch_size: int = 20
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.9
    ema_decay: float = 0.995
    amp: bool = False  # mixed precision: bf16 autocast (the painting itself stays fp32)


@dataclass
class RunSection:
    steps: int = 100_000
    minutes: float = 0.0  # wall-clock budget; 0 = none
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    fid_every: int = 0  # 0 = no FID during training
    fid_num: int = 5000
    num_samples: int = 64
    strip_latents: int = 4
    max_nan_retries: int = 3
    deterministic: bool = False
    reference: bool = False  # reference mode: scan painting, eager, fp32
    compile: str = "off"  # torch.compile of G and D: off, default, reduce-overhead, max-autotune
    tensorboard: bool = True


#: gradient-penalty kinds of ``objective.penalty`` and the gradient norm each pulls toward
PENALTY_TARGETS = {"one-centred": 1.0, "r1": 0.0}

#: training objectives of ``objective.name`` (each registered in :mod:`fwp.gan.objectives`)
OBJECTIVE_NAMES = ("adversarial", "coop")

#: torch.compile modes of ``run.compile`` ("off": eager)
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


#: painter options that the training configuration derives instead of setting
DERIVED_PAINTER_OPTIONS = ("height", "width", "channels", "fast_path")


def _painter_section_fields() -> list[tuple[str, Any, Any]]:
    """The fields of :class:`PainterConfig`, less the derived ones, with the same defaults."""
    result = []
    for f in fields(PainterConfig):
        if f.name in DERIVED_PAINTER_OPTIONS:
            continue
        if f.default_factory is not dataclasses.MISSING:
            result.append((f.name, f.type, field(default_factory=f.default_factory)))
        else:
            result.append((f.name, f.type, field(default=f.default)))
    return result


#: painter options of a run: :class:`PainterConfig` without its size, channels and fast-path
#: flag, which follow the data and run sections (one source of truth for names and defaults).
PainterSection = dataclasses.make_dataclass(
    "PainterSection",
    _painter_section_fields(),
    namespace={"__doc__": "Painter options; image size and channels follow the data section."},
)


SECTIONS: dict[str, type] = {
    "data": DataSection,
    "painter": PainterSection,
    "refiner": RefinerSection,
    "discriminator": DiscriminatorSection,
    "objective": ObjectiveSection,
    "coop": CoopSection,
    "optim": OptimSection,
    "run": RunSection,
}


@dataclass
class TrainConfig:
    """The whole configuration of a training run, one attribute per section."""

    data: DataSection = field(default_factory=DataSection)
    painter: PainterSection = field(default_factory=PainterSection)
    refiner: RefinerSection = field(default_factory=RefinerSection)
    discriminator: DiscriminatorSection = field(default_factory=DiscriminatorSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    coop: CoopSection = field(default_factory=CoopSection)
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

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse invalid values and combinations before any work starts."""
        from .networks import check_discriminator_size

        size = self.data.size
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
            raise ConfigError(f"data.size must be [H, W] of positive integers; got {size!r}")
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3; got {self.data.channels}")
        if self.data.limit < 0:
            raise ConfigError(f"data.limit must be >= 0 (0 = all images); got {self.data.limit}")
        try:
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
        if not 0.0 <= self.optim.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in [0, 1); got {self.optim.ema_decay}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self.optim, name) < 1.0:
                raise ConfigError(f"optim.{name} must be in [0, 1)")
        if self.objective.name not in OBJECTIVE_NAMES:
            raise ConfigError(
                f"objective.name {self.objective.name!r} is unknown; choose one of "
                f"{', '.join(OBJECTIVE_NAMES)}"
            )
        _validate_coop(self)
        if self.objective.loss != "hinge":
            raise ConfigError(f"objective.loss {self.objective.loss!r} unknown; choose 'hinge'")
        if self.objective.penalty not in PENALTY_TARGETS:
            raise ConfigError(
                f"objective.penalty {self.objective.penalty!r} unknown; "
                f"choose {' or '.join(repr(name) for name in PENALTY_TARGETS)}"
            )
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
        if self.run.compile not in COMPILE_MODES:
            raise ConfigError(
                f"run.compile must be one of {', '.join(COMPILE_MODES)}; got {self.run.compile!r}"
            )
        if self.run.compile != "off" and self.run.reference:
            raise ConfigError(
                "run.compile and run.reference exclude each other: reference mode is eager; "
                "drop --reference or set --run-compile off"
            )


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
    if where == "painter.rule_options":
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table of rule options; got {value!r}")
        return dict(value)
    return value


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


def config_changes(saved: TrainConfig, requested: TrainConfig) -> dict[str, Any]:
    """``{"section.name": requested value}`` for the options where ``requested`` differs."""
    old, new = flatten_config(saved), flatten_config(requested)
    return {key: value for key, value in new.items() if old[key] != value}


def parse_assignment(text: str) -> tuple[str, Any]:
    """``section.name=value`` -> (dotted, value); the value is read as TOML when it parses."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set expects section.name=value; got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a .toml or .json configuration file into a nested mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {str(path)!r} does not exist")
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return tomllib.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot parse configuration file {str(path)!r}: {err}") from err


#: presets as nested overrides of the defaults (the defaults are the paper's main setting).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "quick": {
        "data": {"size": [32, 32]},
        "painter": {
            "steps": 16,
            "latent_dim": 64,
            "controller_input_dim": 64,
            "hidden_size": 256,
        },
        # with the paper's training setting, every latent paints one of one or two images within
        # a CPU budget; these three changes (see the README) give varied emoji-like samples
        "discriminator": {"base_channels": 16, "max_channels": 128, "minibatch_std": True},
        "objective": {"diversity_weight": 1.0},
        "optim": {
            "batch_size": 32,
            "ema_decay": 0.99,
            "lr_generator": 1e-3,
            "lr_discriminator": 1e-3,
        },
        "run": {
            "steps": 2500,
            "log_every": 25,
            "sample_every": 250,
            "checkpoint_every": 250,
            "fid_num": 1000,
        },
    },
}


# Cooperative training (objective.name "coop"): "coop" is the official CoopNets setting (Xie et al.,
# TPAMI 2018: batch 100, 15 Langevin steps of size 0.002 with s = 0.016, descriptor Adam lr 0.007,
# painter Adam lr 1e-4, beta1 0.5, TensorFlow's beta2 0.999) with the paper's painter. In a CPU
# budget that setting makes every latent paint one striped image (see the README), so
# "coop-quick" changes five things, each an ordinary option: ten times the Langevin step size and
# reference s (the same pull towards 0 per step, a 100 times larger push by the descriptor, so f
# need not grow as large), the revision clipped to [-1, 1], four painter steps per revision, a
# painter head initialised ten times larger (varied first paintings) and the capped
# diversity-sensitive painter term of the quick GAN preset.
PRESETS["coop"] = {
    "objective": {"name": "coop"},
    "coop": {"langevin_steps": 15, "descriptor": "coopnets", "descriptor_width": 64},
    "optim": {"batch_size": 100, "lr_generator": 1e-4, "beta1": 0.5, "beta2": 0.999},
}
PRESETS["coop-quick"] = {
    "data": {"size": [32, 32]},
    "painter": {**PRESETS["quick"]["painter"], "head_init_scale": 10.0},
    "objective": {"name": "coop", "diversity_weight": 1000.0, "diversity_cap": 0.5},
    "coop": {
        "langevin_steps": 8,
        "step_size": 0.02,
        "reference_std": 0.16,
        "clamp": True,
        "painter_updates": 4,
        "descriptor": "coopnets",
        "descriptor_width": 16,
    },
    "optim": {
        "batch_size": 32,
        "ema_decay": 0.99,
        "lr_generator": 1e-3,
        "beta1": 0.5,
        "beta2": 0.999,
    },
    "run": {
        "steps": 1500,
        "minutes": 10.0,
        "log_every": 25,
        "sample_every": 100,
        "checkpoint_every": 100,
        "fid_num": 1000,
    },
}


def build_config(
    preset: str = "paper",
    config_file: str | Path | None = None,
    options: dict[str, Any] | None = None,
    assignments: list[str] | tuple[str, ...] = (),
) -> TrainConfig:
    """Preset, then file, then ``options`` ({"section.name": value}), then ``--set`` strings."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = TrainConfig(preset=preset)
    apply_nested(config, PRESETS[preset], origin=f"preset {preset}")
    if config_file is not None:
        apply_nested(config, load_config_file(config_file), origin=str(config_file))
    for dotted, value in (options or {}).items():
        set_option(config, dotted, value)
    for text in assignments:
        set_option(config, *parse_assignment(text))
    config.validate()
    return config


def option_table() -> list[tuple[str, str, Any, str]]:
    """(dotted name, type name, paper default, section doc) for every option, for the CLI."""
    defaults = TrainConfig()
    rows = []
    for section in SECTIONS:
        for f in fields(getattr(defaults, section)):
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            rows.append(
                (
                    f"{section}.{f.name}",
                    kind,
                    getattr(getattr(defaults, section), f.name),
                    SECTIONS[section].__doc__ or "",
                )
            )
    return rows
