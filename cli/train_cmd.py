"""``fwp train``: build and validate a configuration, save it in the run directory, train."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fwp.gan.config import PRESETS, ConfigError, build_config, option_table
from fwp.gan.trainer import read_run_config
from fwp.gan.trainer import train as run_training

from .common import user_errors

#: short names for the options researchers change most; every option also has --section-name.
ALIASES: dict[str, str] = {
    "data.source": "--data",
    "data.size": "--size",
    "painter.rule": "--rule",
    "run.steps": "--steps",
    "run.minutes": "--minutes",
    "run.seed": "--seed",
    "run.device": "--device",
    "run.fid_every": "--fid-every",
    "run.fid_num": "--fid-num",
    "run.reference": "--reference",
    "run.compile": "--compile",
    "optim.batch_size": "--batch-size",
    "optim.amp": "--amp",
    "refiner.enabled": "--refiner",
}

#: options that may change when a run is resumed (to extend its budget)
RESUMABLE = {
    "run.steps",
    "run.minutes",
    "run.device",
    "run.fid_every",
    "run.fid_num",
    "run.compile",
}


def _param_name(dotted: str) -> str:
    return "opt__" + dotted.replace(".", "__")


def _click_type(kind: str) -> Any:
    return {"int": int, "float": float, "str": str}.get(kind, str)


def _config_options(command: Callable) -> Callable:
    """Add one click option per configuration field, showing the paper preset's default."""
    for dotted, kind, default, _ in reversed(option_table()):
        section, name = dotted.split(".")
        long_name = f"--{section}-{name.replace('_', '-')}"
        names = [long_name]
        if dotted in ALIASES:
            names.insert(0, ALIASES[dotted])
        shown = json.dumps(default) if isinstance(default, list | dict) else default
        help_text = f"{dotted} [paper default: {shown}]"
        if kind == "bool":
            flags = [f"{n}/--no-{n[2:]}" for n in names]
            option = click.option(*flags, _param_name(dotted), default=None, help=help_text)
        else:
            option = click.option(
                *names,
                _param_name(dotted),
                type=_click_type(kind),
                default=None,
                help=help_text,
                metavar=kind.upper().replace("[", "<").replace("]", ">"),
            )
        command = option(command)
    return command


@click.command(context_settings={"max_content_width": 110})
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="paper",
    show_default=True,
    help="Base configuration: the paper's main setting, or 'quick' for a CPU.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML or JSON file with [section] tables of options (applied after the preset).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SECTION.NAME=VALUE",
    help="Set any option, e.g. --set painter.rule_options='{unscaled_first_update=true}'.",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write the run [default: runs/PRESET-RULE-TIMESTAMP].",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Continue the run in this directory from its last checkpoint.",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.option("--quiet", is_flag=True, help="No progress line.")
@_config_options
def train(
    preset: str,
    config_file: str | None,
    assignments: tuple[str, ...],
    run_dir: str | None,
    resume_dir: str | None,
    dry_run: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train a learning-rule painter as a GAN (Irie & Schmidhuber, ICLR 2023).

    Layers, each overriding the one before: --preset, --config FILE, the options below, --set.
    """
    given = {
        key[len("opt__") :].replace("__", "."): value
        for key, value in options.items()
        if value is not None
    }
    with user_errors():
        if resume_dir is not None:
            config = _resume_config(Path(resume_dir), given, config_file, assignments, preset)
            run_path = Path(resume_dir)
        else:
            config = build_config(preset, config_file, given, assignments)
            run_path = Path(run_dir) if run_dir else _default_run_dir(preset, config.painter.rule)
            if (run_path / "checkpoints").is_dir():
                raise ConfigError(
                    f"run directory {str(run_path)!r} already holds a run; continue it with "
                    f"--resume {run_path} or choose another --run-dir"
                )
    if dry_run:
        click.echo(json.dumps(config.to_dict(), indent=2))
        return
    click.echo(f"fwp: run directory {run_path}", err=True)
    with user_errors():
        result = run_training(config, run_path, progress=not quiet)
    losses = " ".join(f"{k}={v:.4f}" for k, v in result.last_losses.items())
    click.echo(f"fwp: finished at step {result.step} in {run_path} {losses}".rstrip())


def _default_run_dir(preset: str, rule: str) -> Path:
    return Path("runs") / f"{preset}-{rule}-{time.strftime('%Y%m%d-%H%M%S')}"


def _resume_config(
    run_dir: Path,
    given: dict[str, Any],
    config_file: str | None,
    assignments: tuple[str, ...],
    preset: str,
):
    """The saved configuration of ``run_dir``, with only budget-like options allowed to change."""
    from fwp.gan.config import parse_assignment, set_option

    if config_file is not None or preset != "paper":
        raise ConfigError(
            "--resume takes the configuration saved in the run; drop --config/--preset"
        )
    config = read_run_config(run_dir)
    changes = dict(given)
    changes.update(parse_assignment(text) for text in assignments)
    refused = sorted(set(changes) - RESUMABLE)
    if refused:
        raise ConfigError(
            f"cannot change {', '.join(refused)} when resuming; only "
            f"{', '.join(sorted(RESUMABLE))} may change (start a new run for other settings)"
        )
    for dotted, value in changes.items():
        set_option(config, dotted, value)
    config.validate()
    return config
