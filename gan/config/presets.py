"""Presets (``paper``, the main setting of "Images as Weight Matrices", Irie & Schmidhuber, ICLR
2023; ``quick``, sized for a CPU; the other objectives' presets: coop, introspective) and
building a configuration from them in layers; the option table the command line shows."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fwp.painters import PAINTER_PRESETS, PainterConfig

from .fields import ConfigError
from .sections import DERIVED_PAINTER_OPTIONS
from .train import (
    SECTIONS,
    TrainConfig,
    apply_nested,
    flatten_config,
    load_config_file,
    parse_assignment,
    set_option,
)


def _painter_preset_overrides(name: str) -> dict[str, Any]:
    """The painter options in which the painters package's preset ``name`` differs from the
    defaults (size and channels aside: they belong to the data section)."""
    preset, default = PAINTER_PRESETS[name], PainterConfig()
    return {
        f.name: getattr(preset, f.name)
        for f in fields(PainterConfig)
        if f.name not in DERIVED_PAINTER_OPTIONS
        and getattr(preset, f.name) != getattr(default, f.name)
    }


#: presets as nested overrides of the defaults. The defaults are the paper's main setting, except
#: for options added later, whose defaults keep fwp's earlier behaviour (a saved run that lacks
#: them takes their defaults) and which the paper preset sets here.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        # the official code's discriminator (12,326,632 parameters at 64x64 RGB) and U-Net
        # (the official --max_unet_dim 4 with its tanh output; painter + U-Net 14,423,366)
        "discriminator": {
            "architecture": "official",
            "attention_resolutions": [32],
            "output_size": 1,
        },
        "refiner": {
            "architecture": "official",
            "output": "direct",
            "base_channels": 64,
            "depth": 2,
        },
    },
    "quick": {
        # the painter architecture is the painters package's "quick" preset (one table) with a
        # Transformer controller in place of its LSTM (0.88M parameters instead of 0.42M): over
        # three seeds it gave lower KID than the LSTM in this budget (README, "Quality at a small
        # budget")
        "data": {"size": [PAINTER_PRESETS["quick"].height, PAINTER_PRESETS["quick"].width]},
        "painter": {**_painter_preset_overrides("quick"), "controller": "transformer"},
        # the conv baseline (1.4M parameters) keeps its earlier width; the paper's is 3x the
        # painter's size
        "generator": {"latent_dim": 64, "max_channels": 128},
        "refiner": {"architecture": "compact", "output": "residual"},
        # with the paper's training setting, every latent paints one of one or two images within
        # a CPU budget; these changes (see the README) give varied emoji-like samples
        "discriminator": {
            "architecture": "fwp",
            "attention_resolutions": [],
            "output_size": 5,
            "base_channels": 16,
            "max_channels": 128,
            "minibatch_std": True,
        },
        # the zero-centred R1 penalty (Mescheder et al., ICML 2018) in place of the one-centred
        "objective": {"diversity_weight": 1.0, "penalty": "r1", "gp_weight": 1.0},
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
    "painter": {**_painter_preset_overrides("quick"), "head_init_scale": 10.0},
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


# Introspective training (objective.name "introspective"): "introspective" is WINN's setting
# (Lee et al., CVPR 2018, official code): the critic of 3x3 convs with swish and layer norm,
# Adam lr 1e-4 betas (0, 0.9), 3 critic passes per step, 50 data + 50 pseudo-negatives, image
# Adam lr 0.01 clipped to [-1, 1] with the early stop between the data scores, Wasserstein loss
# with gradient penalty 10; 20 stages of 500 critic steps, 1000 pseudo-negatives per stage.
PRESETS["introspective"] = {
    "objective": {"name": "introspective"},
    "introspective": {
        "mode": "classic",
        "loss": "wasserstein",
        "stages": 20,
        "stage_steps": 500,
        "stage_negatives": 1000,
        "synthesis_steps": 100,
    },
    "optim": {"batch_size": 50},
    "run": {"steps": 10000, "sample_every": 500, "checkpoint_every": 500, "log_every": 50},
}
# "introspective-quick": a CPU budget of 10 minutes on 2 cores with the emoji at 16x16. The same
# losses and optimisers; what changes is size: a narrow critic (16 channels, at most 64), 8
# stages of 60 steps (each stage's critic sees the pool grow by 400 images, enough for a visible
# step towards the data per stage), and at most 40 synthesis steps per stage (lr 0.02: twice the
# image step, so the shorter ascents still travel as far as WINN's at their early stop). It finishes
# in under 5 minutes on one core; more stages did not help within 10 minutes (FID of 500
# samples: 156 after 8 stages, 168 after 14 stages of the same run; noise alone: 369). FID
# during training is off: sampling runs every stage's ascent, so run `fwp fid` afterwards. With
# --introspective-mode painter the painter is the painters package's quick preset (LSTM).
PRESETS["introspective-quick"] = {
    "data": {"size": [16, 16]},
    "painter": _painter_preset_overrides("quick"),
    "objective": {"name": "introspective"},
    "introspective": {
        "mode": "classic",
        "loss": "wasserstein",
        "stages": 8,
        "stage_steps": 60,
        "stage_negatives": 400,
        "pool_size": 4000,
        "critic_width": 16,
        "critic_max_width": 64,
        "synthesis_steps": 40,
        "synthesis_lr": 0.02,
    },
    "optim": {"batch_size": 50},
    "run": {
        "steps": 480,
        "minutes": 10.0,
        "log_every": 10,
        "sample_every": 60,
        "checkpoint_every": 60,
        "num_samples": 64,
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


@dataclass(frozen=True)
class OptionInfo:
    """One configuration option as the command line shows it."""

    dotted: str
    section: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] | None
    cli: bool


def option_table() -> list[OptionInfo]:
    """Every option with its type name, paper default, meaning and choices, in section order."""
    defaults = TrainConfig()
    rows = []
    for section in SECTIONS:
        values = getattr(defaults, section)
        for f in fields(values):
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            rows.append(
                OptionInfo(
                    dotted=f"{section}.{f.name}",
                    section=section,
                    kind=kind,
                    default=getattr(values, f.name),
                    help=f.metadata.get("help", ""),
                    choices=f.metadata.get("choices"),
                    cli=f.metadata.get("cli", True),
                )
            )
    return rows


def preset_defaults(preset: str) -> dict[str, Any]:
    """``{"section.name": value}`` of a preset (before any file or option)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = TrainConfig(preset=preset)
    apply_nested(config, PRESETS[preset], origin=f"preset {preset}")
    return flatten_config(config)
