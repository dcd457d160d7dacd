"""``fwp train``: build and validate a configuration, save it in the run directory, train."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from fwp.gan import distributed
from fwp.gan.config import PRESETS, ConfigError, build_config, parse_assignment
from fwp.gan.run import check_runnable, new_run, resume_config, run_finished, train_run
from fwp.gan.rundir import RunDir
from fwp.gan.stages import check_init_source

from .common import plugin_option, user_errors
from .options import GroupedHelpCommand, config_options, given_options

#: kept for fwp ablate, which offers the same configuration options
_config_options = config_options


@click.command(cls=GroupedHelpCommand, context_settings={"max_content_width": 110})
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="paper",
    show_default=True,
    help="Base configuration: the paper's main setting, 'quick' for a CPU; 'coop' and "
    "'coop-quick' train cooperatively (CoopNets' official setting, and for a CPU); "
    "'introspective' and 'introspective-quick' introspectively (WINN's setting, and for a CPU).",
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
@plugin_option
@config_options
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
    """Train a generator: a learning-rule painter (Irie & Schmidhuber, ICLR 2023) or the LightGAN
    conv baseline (--generator conv); as a GAN by default, or with --objective coop by an
    energy-based descriptor's Langevin revisions (CoopNets), or with --objective introspective by
    a critic and the pseudo-negatives its gradient ascent synthesises (INNg/WINN). --init-from
    RUN_DIR --refiner trains the U-Net refiner after a trained painter.

    Layers, each overriding the one before: --preset, --config FILE, the options below, --set.

    Data parallel on several processes: `torchrun --nproc-per-node N -m fwp.cli train ...`, or
    `srun --ntasks N fwp train ...` in a Slurm job; --batch-size is then per process.
    """
    given = given_options(options)
    ctx = click.get_current_context()
    with user_errors():
        if resume_dir is not None:
            preset_given = ctx.get_parameter_source("preset") != click.core.ParameterSource.DEFAULT
            if config_file is not None or preset_given or run_dir is not None:
                raise ConfigError(
                    "--resume takes the configuration saved in the run; drop "
                    "--config/--preset/--run-dir"
                )
            changes = dict(given)
            changes.update(parse_assignment(text) for text in assignments)
            config = resume_config(resume_dir, changes)
            run_path = Path(resume_dir)
        else:
            config = build_config(preset, config_file, given, assignments)
            label = "conv" if config.generator.kind == "conv" else config.painter.rule
            if config.objective.name == "introspective" and config.introspective.mode == "classic":
                label = "cascade"  # no painter: the cascade of stage critics samples
            run_path = Path(run_dir) if run_dir else _default_run_dir(preset, label)
    with user_errors():
        check_runnable(config)
        if dry_run and resume_dir is None:
            check_init_source(config)
    if dry_run:
        click.echo(json.dumps(config.to_dict(), indent=2))
        return
    with user_errors(), _launch_errors(), distributed.session(config.run.device) as ranks:
        if resume_dir is None:
            run_path = Path(distributed.broadcast_object(str(run_path)))  # rank 0's timestamp
            distributed.on_main(new_run, config, run_path)
            config = RunDir(run_path).read_config()  # every rank trains what rank 0 wrote
        elif run_finished(run_path, config):
            if ranks.is_main:
                click.echo(
                    f"fwp: run {run_path} is finished (its budget of {config.run.steps} steps "
                    f"is done); extend it with fwp train --resume {run_path} --steps N (N larger)"
                )
            return
        if ranks.is_main:
            where = f" ({ranks.world_size} ranks)" if ranks.distributed else ""
            click.echo(f"fwp: run directory {run_path}{where}", err=True)
        result = train_run(run_path, config, progress=not quiet)
    if ranks.is_main:
        losses = " ".join(f"{k}={v:.4f}" for k, v in result.last_losses.items())
        click.echo(f"fwp: finished at step {result.step} in {run_path} {losses}".rstrip())


@contextlib.contextmanager
def _launch_errors() -> Iterator[None]:
    """A distributed launch that cannot work, or a failure on rank 0, as a one-line error."""
    try:
        yield
    except distributed.DistributedError as err:
        raise click.ClickException(str(err)) from err


def _default_run_dir(preset: str, label: str) -> Path:
    return Path("runs") / f"{preset}-{label}-{time.strftime('%Y%m%d-%H%M%S')}"
