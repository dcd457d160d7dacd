"""``fwp ablate``: a grid of training runs over rules, seeds and options, and its results report.

``fwp ablate SWEEP_DIR [OPTIONS]`` is short for ``fwp ablate run SWEEP_DIR [OPTIONS]``;
``fwp ablate report SWEEP_DIR`` rebuilds the results from what is on disk. The grid, the cell
folders, the state files and the report live in :mod:`fwp.gan.ablation`; this module turns options
into a :class:`~fwp.gan.ablation.SweepSpec` and trains every cell with ``fwp train``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from fwp.gan.ablation import (
    FID_PNG,
    PAINTINGS_PNG,
    RESULTS_CSV,
    Cell,
    ConfigSummary,
    SweepSpec,
    config_changes,
    describe_cells,
    expand,
    load_sweep_file,
    parse_axis,
    parse_seeds,
    plan_path,
    run_sweep,
    started_run,
    write_report,
)
from fwp.gan.config import PRESETS, ConfigError
from fwp.gan.rundir import CONFIG_FILE
from fwp.rules import load_plugin

from .common import format_table, user_errors
from .train_cmd import _config_options, train

#: configuration options that ``fwp ablate`` sweeps with its own flags (--rule, --seeds)
_SWEPT_BY_FLAGS = {"opt__painter__rule", "opt__run__seed"}


def _train_options(command: Callable) -> Callable:
    """Every ``fwp train`` configuration option, except the rule and seed (swept here)."""
    command = _config_options(command)
    command.__click_params__ = [  # type: ignore[attr-defined]
        p
        for p in command.__click_params__
        if p.name not in _SWEPT_BY_FLAGS  # type: ignore
    ]
    return command


def _toml_literal(value: Any) -> str:
    """A value as a TOML literal, for ``fwp train --set section.name=VALUE``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    return json.dumps(str(value))


@dataclass
class TrainLauncher:
    """Trains a cell with ``fwp train``: a new run from the cell's configuration file, or
    ``--resume`` of a started one (changing only what the sweep changed, e.g. its budget)."""

    plugins: tuple[str, ...] = ()

    def train_args(self, cell: Cell) -> list[str]:
        if started_run(cell.run_dir):
            saved = json.loads((cell.run_dir / CONFIG_FILE).read_text())
            args = ["--resume", str(cell.run_dir), "--quiet"]
            for key, value in config_changes(saved, cell.config.to_dict()).items():
                args += ["--set", f"{key}={_toml_literal(value)}"]
            return args
        return [
            "--preset",
            cell.config.preset,
            "--config",
            str(plan_path(cell)),
            "--run-dir",
            str(cell.run_dir),
            "--quiet",
        ]

    def argv(self, cell: Cell) -> list[str]:
        plugin_args = [arg for plugin in self.plugins for arg in ("--plugin", plugin)]
        return [sys.executable, "-m", "fwp.cli", *plugin_args, "train", *self.train_args(cell)]

    def run_inline(self, cell: Cell) -> None:
        with train.make_context("fwp train", self.train_args(cell)) as ctx:
            train.invoke(ctx)


class _RunByDefault(click.Group):
    """A group whose first argument, when it is not a subcommand, starts ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_RunByDefault, context_settings={"max_content_width": 110})
def ablate() -> None:
    """Ablation sweeps: train a grid of runs over learning rules, seeds and options.

    \b
      fwp ablate SWEEP_DIR [OPTIONS]     run (or resume) a sweep; short for `fwp ablate run`
      fwp ablate report SWEEP_DIR        rebuild its results from what is on disk

    Every cell of the grid is an ordinary run directory under SWEEP_DIR (fwp paint, fwp fid
    and fwp train --resume work on it). The results are results.csv and results.md (one row per
    cell, then mean and std per configuration over seeds), fid_curves.png and paintings.png.

    \b
    Example: the three rule families on emoji with the quick preset, the three cells at once
    (about 30 minutes on 2 CPU cores, including the one-off FID statistics of emoji):
      fwp ablate runs/rule-families --preset quick --rule delta --rule hebb --rule oja \\
          --steps 1000 --fid-every 250 --fid-num 500 --jobs 3
    """


def _root_plugins() -> tuple[str, ...]:
    """The --plugin values given to `fwp` itself (the cells' processes import them too)."""
    root = click.get_current_context().find_root()
    return tuple(root.params.get("plugins") or ())


def _absolute_plugin(plugin: str) -> str:
    return str(Path(plugin).resolve()) if plugin.endswith(".py") else plugin


def _parse_gpus(text: str) -> list[str]:
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not gpus or any(not g.isdigit() for g in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"--gpus expects distinct GPU ids such as 0,1,2; got {text!r}")
    import torch

    available = torch.cuda.device_count()
    missing = [g for g in gpus if int(g) >= available]
    if missing:
        raise ConfigError(
            f"--gpus {text}: this machine has {available} CUDA device(s); no GPU {missing[0]}"
        )
    return gpus


def _sweep_spec(
    sweep_file: str | None,
    preset: str | None,
    config_file: str | None,
    options: dict[str, Any],
    rules: tuple[str, ...],
    seeds: str | None,
    assignments: tuple[str, ...],
) -> SweepSpec:
    """The sweep file (if any), then the command line on top of it."""
    spec = load_sweep_file(sweep_file) if sweep_file else SweepSpec()
    for plugin in spec.plugins:
        load_plugin(plugin)
    spec.plugins = list(dict.fromkeys([*map(_absolute_plugin, _root_plugins()), *spec.plugins]))
    if preset is not None:
        spec.preset = preset
    if config_file is not None:
        spec.config_file = config_file
    spec.options.update(options)
    if rules:
        spec.rules = list(rules)
    if seeds is not None:
        spec.seeds = parse_seeds(seeds)
    for text in assignments:
        key, values = parse_axis(text)
        spec.axes = [(k, v) for k, v in spec.axes if k != key] + [(key, values)]
    return spec


def _summary_table(summaries: list[ConfigSummary]) -> str:
    def show(s: ConfigSummary, metric: str, digits: str) -> str:
        mean, std = s.mean[metric], s.std[metric]
        if mean is None:
            return "-"
        return f"{mean:{digits}}" + (f" ± {std:{digits}}" if std is not None else "")

    rows = [
        [
            s.configuration,
            f"{s.finished}/{s.seeds}",
            show(s, "steps", ".0f"),
            show(s, "final_fid", ".2f"),
            show(s, "best_fid", ".2f"),
            show(s, "img_per_s", ".1f"),
        ]
        for s in summaries
    ]
    return format_table(
        ["configuration", "seeds done", "steps", "final FID", "best FID", "img/s"], rows
    )


def _echo_report(sweep_dir: Path) -> list[str]:
    """Rebuild the report, print the per-configuration table; return the failed cells' lines."""
    files = write_report(sweep_dir)
    click.echo(_summary_table(files.summaries))
    click.echo(f"results: {files.markdown} (and {RESULTS_CSV}, {FID_PNG}, {PAINTINGS_PNG})")
    return [f"{r.name}: {r.error}" for r in files.results if r.status == "failed"]


@ablate.command("run", context_settings={"max_content_width": 110})
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@click.option(
    "--rule",
    "--rules",
    "rules",
    multiple=True,
    metavar="NAME|PATTERN",
    help="A rule to sweep, or a shell pattern of rule names ('delta*'). Repeatable "
    "[default: the base configuration's rule].",
)
@click.option(
    "--seeds",
    default=None,
    metavar="N|S1,S2,..",
    help="Seeds of every configuration: a count (3 = seeds 0,1,2) or a list (0,7) "
    "[default: the base configuration's seed, 0].",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SECTION.NAME=V1[,V2..]",
    help="Sweep an option over comma-separated values (painter.steps=16,64); one value "
    "sets it for every cell. Values are read as TOML: quote a string holding a "
    "comma ('objective.augment=\"translation,cutout\"'). Repeatable.",
)
@click.option(
    "--sweep",
    "sweep_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A TOML sweep file ([sweep] rules/seeds/preset/steps/minutes/fid_every/"
    "fid_num/plugins/config, [sweep.set] swept options, [base.SECTION] fixed "
    "options); "
    "the command line adds to and overrides it.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="Base configuration of every cell [default: the sweep file's, else paper].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A TOML/JSON configuration file applied to every cell (as in fwp train).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Cells trained at once on the CPU, each in its own process with "
    "OMP_NUM_THREADS = cores / jobs (unless set).",
)
@click.option(
    "--gpus",
    default=None,
    metavar="ID,ID,..",
    help="Train one cell per listed GPU at once (CUDA_VISIBLE_DEVICES per cell).",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Train the cells one after another inside this process, without isolation "
    "(for debugging; a crash stops the sweep).",
)
@click.option(
    "--retry-failed/--skip-failed",
    default=True,
    show_default=True,
    help="Whether a re-run trains failed cells again.",
)
@click.option("--dry-run", is_flag=True, help="List the cells and their status; train nothing.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@_train_options
def run(
    sweep_dir: str,
    rules: tuple[str, ...],
    seeds: str | None,
    assignments: tuple[str, ...],
    sweep_file: str | None,
    preset: str | None,
    config_file: str | None,
    jobs: int,
    gpus: str | None,
    in_process: bool,
    retry_failed: bool,
    dry_run: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train (or resume) every cell of a sweep in SWEEP_DIR, then write its results.

    The grid is rules x swept options x seeds; every cell shares one training budget (--steps
    and/or --minutes, whichever comes first) and one FID setting (--fid-every, --fid-num). The
    base configuration of every cell is built as in fwp train: --preset, --config, the options
    below. Running the same command again skips finished cells and resumes the others; raising
    --steps extends finished cells. A failing cell is recorded (SWEEP_DIR/CELL/cell.json,
    train.log) and the others go on; the command then exits with status 1.

    \b
    Sweep file (--sweep), TOML:
      [sweep]
      preset = "quick"
      rules = ["delta", "hebb*"]       # names or shell patterns
      seeds = 2                        # a count, or a list [0, 7]
      steps = 300                      # and/or minutes = 10; fid_every, fid_num
      plugins = ["my_rules.py"]        # relative to the sweep file
      config = "base.toml"             # a configuration file (as --config)
      [sweep.set]                      # every list is an axis of the grid
      "painter.steps" = [16, 64]
      [base.optim]                     # fixed options of every cell
      batch_size = 16
    """
    given = {
        key[len("opt__") :].replace("__", "."): value
        for key, value in options.items()
        if value is not None
    }
    sweep_path = Path(sweep_dir).resolve()
    with user_errors():
        if gpus is not None and jobs > 1:
            raise ConfigError("--gpus places one cell per GPU; do not combine it with --jobs")
        if in_process and (gpus is not None or jobs > 1):
            raise ConfigError("--in-process trains one cell at a time; drop --jobs/--gpus")
        gpu_ids: list[str] = []
        if gpus is not None:
            device = given.get("run.device", "auto")
            if device not in ("auto", "cuda", "cuda:0"):
                raise ConfigError(
                    f"with --gpus every cell sees its one GPU as cuda:0; drop --device {device}"
                )
            given["run.device"] = "cuda"
            if not dry_run:
                gpu_ids = _parse_gpus(gpus)
        spec = _sweep_spec(sweep_file, preset, config_file, given, rules, seeds, assignments)
        cells = expand(spec, sweep_path)
    if dry_run:
        rows = list(describe_cells(cells))
        click.echo(format_table(["cell", "rule", "options", "seed", "status"], rows))
        run_cfg = cells[0].config.run
        budget = f"{run_cfg.steps:,} steps" + (
            f" or {run_cfg.minutes:g} minutes" if run_cfg.minutes else ""
        )
        fid = (
            f"FID every {run_cfg.fid_every:,} steps on {run_cfg.fid_num:,} samples"
            if run_cfg.fid_every
            else "no FID"
        )
        click.echo(
            f"{len(cells)} cells in {sweep_path}; each trains for {budget}; {fid}. "
            f"Nothing was run (--dry-run)."
        )
        return
    launcher = TrainLauncher(tuple(spec.plugins))
    try:
        with user_errors():
            summary = run_sweep(
                cells,
                launcher,
                jobs=jobs,
                gpus=gpu_ids,
                in_process=in_process,
                retry_failed=retry_failed,
                progress=not quiet,
            )
    except KeyboardInterrupt:
        with user_errors():
            _echo_report(sweep_path)
        click.echo("ablate: interrupted; run the same command again to resume", err=True)
        raise SystemExit(130) from None
    trained = len(summary.done)
    click.echo(
        f"ablate: {len(cells)} cells in {sweep_path}: {trained} trained, "
        f"{len(summary.skipped)} already done, {len(summary.failed)} failed"
        + (f", {len(summary.busy)} busy in another sweep process" if summary.busy else "")
    )
    with user_errors():
        _echo_report(sweep_path)
    if summary.failed:
        lines = "\n".join(f"  {name}: {error}" for name, error in summary.failed.items())
        raise click.ClickException(
            f"{len(summary.failed)} of {len(cells)} cells failed (details in "
            f"SWEEP_DIR/CELL/cell.json and train.log):\n{lines}"
        )


@ablate.command("report")
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
def report(sweep_dir: str) -> None:
    """Rebuild results.csv, results.md, fid_curves.png and paintings.png of SWEEP_DIR.

    Reads whatever is on disk, so it also works on a sweep that is still running, was
    interrupted, or had failures.
    """
    with user_errors():
        failed = _echo_report(Path(sweep_dir))
    for line in failed:
        click.echo(f"failed {line}")
