"""``fwp ablate``: a grid of training runs over rules, seeds and options, and its results report.

``fwp ablate SWEEP_DIR [OPTIONS]`` is short for ``fwp ablate run SWEEP_DIR [OPTIONS]``;
``fwp ablate report SWEEP_DIR`` rebuilds the results from what is on disk. Everything about a
sweep lives in :mod:`fwp.gan.sweep`; this module turns options into a
:class:`~fwp.gan.sweep.SweepRequest`, calls the library and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fwp.gan.config import PRESETS, ConfigError
from fwp.gan.sweep import (
    FID_CSV,
    FID_PNG,
    PAINTINGS_PNG,
    RESULTS_CSV,
    TRACEBACK_FILE,
    ConfigSummary,
    Schedule,
    SlurmSettings,
    SweepPlan,
    SweepRequest,
    budget_text,
    describe_cells,
    load_sweep_file,
    parse_axis,
    parse_gpus,
    parse_seeds,
    parse_slurm_option,
    plan_sweep,
    read_state,
    run_sweep,
    submit_sweep,
    wait_for_cells,
    write_report,
)

from .common import format_table, given_plugins, plugin_option, user_errors
from .train_cmd import _config_options

#: configuration options that ``fwp ablate`` sweeps with its own flags (--rule, --seeds)
_SWEPT_BY_FLAGS = {"opt__painter__rule", "opt__run__seed"}


def _train_options(command: Callable) -> Callable:
    """Every ``fwp train`` configuration option, except the rule and seed (swept here)."""
    command = _config_options(command)
    command.__click_params__ = [  # type: ignore[attr-defined]
        p
        for p in command.__click_params__  # type: ignore[attr-defined]
        if p.name not in _SWEPT_BY_FLAGS
    ]
    return command


class _RunByDefault(click.Group):
    """A group whose first argument, when it is not a subcommand, starts ``run``, and whose help
    shows ``run``'s options too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        run_command = self.commands["run"]
        records = [
            record
            for param in run_command.get_params(ctx)
            if param.name != "help" and (record := param.get_help_record(ctx)) is not None
        ]
        with formatter.section("Options of fwp ablate SWEEP_DIR (= fwp ablate run SWEEP_DIR)"):
            formatter.write_dl(records)


@click.group(cls=_RunByDefault, context_settings={"max_content_width": 110})
def ablate() -> None:
    """Ablation sweeps: train a grid of runs over learning rules, seeds and options.

    \b
      fwp ablate SWEEP_DIR [OPTIONS]     run (or resume) a sweep; short for `fwp ablate run`
      fwp ablate report SWEEP_DIR        rebuild its results from what is on disk

    Every cell of the grid is an ordinary run directory under SWEEP_DIR (fwp paint, fwp fid
    and fwp train --resume work on it). The results are results.csv and results.md (one row per
    cell, then mean and std per configuration over seeds), fid_curves.png (and its data,
    fid_curves.csv) and paintings.png.

    The sweep is stored in SWEEP_DIR/sweep.json: `fwp ablate SWEEP_DIR` alone resumes exactly
    that sweep, and options left out of a re-run keep their stored values. Changing the grid,
    budget or options of an existing sweep needs --change (the command says what changes).

    \b
    Example: the three rule families on emoji with the quick preset, three seeds, two cells at once
    (about 30 minutes on 2 CPU cores):
      fwp ablate runs/rule-families --preset quick --rule delta --rule hebb_sum --rule oja \\
          --seeds 3 --steps 1500 --fid-every 1500 --fid-num 500 --jobs 2
    """


def _root_plugins() -> list[str]:
    """The --plugin values given to `fwp` or to this command (stored in the sweep for its cells)."""
    return given_plugins(click.get_current_context())


def _sweep_request(
    sweep_file: str | None,
    preset: str | None,
    config_file: str | None,
    options: dict[str, Any],
    rules: tuple[str, ...],
    seeds: str | None,
    assignments: tuple[str, ...],
) -> SweepRequest:
    """The sweep file (if any), then the command line on top of it."""
    axes: dict[str, list[Any]] = {}
    for text in assignments:  # a later --set of the same option replaces an earlier one
        key, values = parse_axis(text)
        axes.pop(key, None)
        axes[key] = values
    command_line = SweepRequest(
        preset=preset,
        config_file=config_file,
        rules=list(rules) or None,
        seeds=parse_seeds(seeds) if seeds is not None else None,
        axes=list(axes.items()),
        options=options,
        plugins=_root_plugins(),
    )
    from_file = load_sweep_file(sweep_file) if sweep_file else SweepRequest()
    return from_file.then(command_line)


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
    click.echo(
        f"results: {files.markdown} (and {RESULTS_CSV}, {FID_PNG}, {FID_CSV}, {PAINTINGS_PNG})"
    )
    return [f"{r.name}: {r.error}" for r in files.results if r.status == "failed"]


def _echo_dry_run(plan: SweepPlan, change: bool) -> None:
    rows = list(describe_cells(plan))
    click.echo(format_table(["cell", "rule", "options", "seed", "status"], rows))
    if plan.changes:
        click.echo(f"This changes the sweep stored in {plan.sweep_dir}:")
        for line in plan.changes:
            click.echo(f"  {line}")
        if not change:
            click.echo("Running it needs --change.")
    click.echo(
        f"{len(plan.cells)} cells in {plan.sweep_dir}; each trains for "
        f"{budget_text(plan.cells[0].config)}. Nothing was run (--dry-run)."
    )


@ablate.command("run", context_settings={"max_content_width": 110})
@click.argument("sweep_dir", type=click.Path(file_okay=False))
@click.option(
    "--rule",
    "--rules",
    "rules",
    multiple=True,
    metavar="NAME|PATTERN|NAME{TABLE}",
    help="A rule to sweep, or a shell pattern of rule names ('delta*'), or a rule with options "
    "for its cells only ('oja{bounded_rate = true}', a TOML inline table; `fwp rules NAME` lists "
    "them). Repeatable [default: the base configuration's rule].",
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
    help="A TOML sweep file: [sweep] with rules, seeds, preset, steps, minutes, fid_every, "
    "fid_num, plugins, config; [sweep.set] swept options; [base.SECTION] fixed options. "
    "The command line adds to and overrides it.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="Base configuration of every cell [default: the stored sweep's, else the sweep "
    "file's, else paper].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A TOML/JSON configuration file applied to every cell (as in fwp train); its "
    "contents are stored in the sweep.",
)
@click.option(
    "--change",
    is_flag=True,
    help="Allow this command to change the sweep stored in SWEEP_DIR (its cells, budget or "
    "options); without it a re-run that differs is refused and told what differs.",
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
@click.option(
    "--launcher",
    type=click.Choice(["local", "slurm"]),
    default="local",
    show_default=True,
    help="Where cells train: on this machine, or each as a Slurm job (submitted through "
    "submitit; the command returns once they are submitted, unless --wait).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="With --launcher slurm: wait for the jobs to end, then write the results.",
)
@click.option("--slurm-partition", default=None, help="Slurm partition of the cells' jobs.")
@click.option(
    "--slurm-time",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    metavar="MINUTES",
    help="Time limit of each job; a cell that needs longer is requeued and resumes.",
)
@click.option(
    "--slurm-cpus",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPUs of each cell's job (--cpus-per-task).",
)
@click.option(
    "--slurm-gpus",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="GPUs of each cell's job (--gpus-per-node).",
)
@click.option("--slurm-mem", default=None, metavar="SIZE", help="Memory of each job: 16G, 500M.")
@click.option("--slurm-account", default=None, help="Slurm account to charge.")
@click.option(
    "--slurm-array", is_flag=True, help="Submit the cells as one job array, not a job per cell."
)
@click.option(
    "--slurm-max-timeouts",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How often a cell's job may be requeued at its time limit (preemptions do not count).",
)
@click.option(
    "--slurm-signal-delay",
    type=click.IntRange(min=0),
    default=90,
    show_default=True,
    metavar="SECONDS",
    help="Slurm signals a job this long before its time limit, to requeue itself.",
)
@click.option(
    "--slurm-option",
    "slurm_options",
    multiple=True,
    metavar="KEY[=VALUE]",
    help="Any other sbatch option of the jobs (qos=high, constraint=a100, exclusive). Repeatable.",
)
@click.option("--dry-run", is_flag=True, help="List the cells and their status; train nothing.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@plugin_option
@_train_options
def run(
    sweep_dir: str,
    rules: tuple[str, ...],
    seeds: str | None,
    assignments: tuple[str, ...],
    sweep_file: str | None,
    preset: str | None,
    config_file: str | None,
    change: bool,
    jobs: int,
    gpus: str | None,
    in_process: bool,
    retry_failed: bool,
    launcher: str,
    wait: bool,
    slurm_partition: str | None,
    slurm_time: int,
    slurm_cpus: int,
    slurm_gpus: int,
    slurm_mem: str | None,
    slurm_account: str | None,
    slurm_array: bool,
    slurm_max_timeouts: int,
    slurm_signal_delay: int,
    slurm_options: tuple[str, ...],
    dry_run: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train (or resume) every cell of a sweep in SWEEP_DIR, then write its results.

    The grid is rules x swept options x seeds; every cell shares one training budget (--steps
    and/or --minutes, whichever comes first) and one FID setting (--fid-every, --fid-num). The
    base configuration of every cell is built as in fwp train: --preset, --config, the options
    below. The sweep is stored in SWEEP_DIR/sweep.json: running `fwp ablate SWEEP_DIR` again
    skips finished cells and resumes the others; options left out keep their stored values, and
    changing the stored sweep (e.g. raising --steps to extend finished cells) needs --change. A
    failing cell is recorded (SWEEP_DIR/CELL/cell.json, traceback.txt, train.log) and the others
    go on; the command then exits with status 1.

    \b
    Sweep file (--sweep), TOML:
      [sweep]
      preset = "quick"
      rules = ["delta", "hebb*"]       # names, shell patterns, NAME{TABLE}
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
    ctx = click.get_current_context()
    slurm_given = [
        f"--{name.replace('_', '-')}"
        for name in ctx.params
        if name.startswith("slurm_")
        and ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
    ]
    with user_errors():
        if launcher == "local" and (slurm_given or wait):
            raise ConfigError(
                f"{(slurm_given or ['--wait'])[0]} applies to Slurm jobs: add --launcher slurm"
            )
        if launcher == "slurm" and (jobs > 1 or gpus is not None or in_process):
            raise ConfigError(
                "--jobs, --gpus and --in-process place cells on this machine; with --launcher "
                "slurm give each job's resources with --slurm-cpus/--slurm-gpus"
            )
        schedule = Schedule(
            jobs=jobs, gpus=parse_gpus(gpus) if gpus is not None else (), in_process=in_process
        )
        settings = SlurmSettings(
            partition=slurm_partition,
            time_min=slurm_time,
            cpus_per_cell=slurm_cpus,
            gpus_per_cell=slurm_gpus,
            mem=slurm_mem,
            account=slurm_account,
            array=slurm_array,
            max_timeouts=slurm_max_timeouts,
            signal_delay_s=slurm_signal_delay,
            options=tuple(parse_slurm_option(text) for text in slurm_options),
        )
        request = _sweep_request(sweep_file, preset, config_file, given, rules, seeds, assignments)
        plan = plan_sweep(sweep_path, request)
        schedule.check_cells(plan.cells)
    if dry_run:
        with user_errors():
            _echo_dry_run(plan, change)
        return
    if launcher == "slurm":
        _submit_to_slurm(plan, settings, change, retry_failed, wait, quiet)
        return
    try:
        with user_errors():
            schedule.check_devices()
            summary = run_sweep(
                plan, schedule, change=change, retry_failed=retry_failed, progress=not quiet
            )
    except KeyboardInterrupt:
        with user_errors():
            _echo_report(sweep_path)
        click.echo("ablate: interrupted; run `fwp ablate SWEEP_DIR` again to resume", err=True)
        raise SystemExit(130) from None
    click.echo(
        f"ablate: {len(plan.cells)} cells in {sweep_path}: {len(summary.done)} trained, "
        f"{len(summary.skipped)} already done, {len(summary.failed)} failed"
        + (f", {len(summary.busy)} busy in another sweep process" if summary.busy else "")
    )
    with user_errors():
        _echo_report(sweep_path)
    if summary.failed:
        lines = "\n".join(f"  {name}: {error}" for name, error in summary.failed.items())
        raise click.ClickException(
            f"{len(summary.failed)} of {len(plan.cells)} cells failed (details in "
            f"SWEEP_DIR/CELL/cell.json, {TRACEBACK_FILE} and train.log):\n{lines}"
        )


def _submit_to_slurm(
    plan: SweepPlan,
    settings: SlurmSettings,
    change: bool,
    retry_failed: bool,
    wait: bool,
    quiet: bool,
) -> None:
    """``fwp ablate --launcher slurm``: submit, say what happened, and wait when asked."""
    with user_errors():
        summary = submit_sweep(
            plan, settings, change=change, retry_failed=retry_failed, progress=not quiet
        )
    jobs = ", ".join(f"{name} ({job})" for name, job in summary.submitted.items())
    click.echo(
        f"ablate: {summary.total} cells in {plan.sweep_dir}: {len(summary.submitted)} submitted "
        f"to Slurm, {len(summary.skipped)} already done, {len(summary.busy)} queued or running, "
        f"{len(summary.failed)} failed" + (f"\nsubmitted: {jobs}" if jobs else "")
    )
    if not wait:
        if summary.submitted or summary.busy:
            click.echo(
                f"collect the results with: fwp ablate report {plan.sweep_dir} (run the same "
                f"command again to submit cells whose jobs end unfinished)"
            )
        if summary.failed:
            raise click.ClickException(_failed_lines(summary.failed, summary.total))
        return
    with user_errors():
        statuses = wait_for_cells(
            plan, [*summary.submitted, *summary.busy], progress=not quiet, poll_s=5.0
        )
        _echo_report(plan.sweep_dir)
    failed = dict(summary.failed)
    for name, status in statuses.items():
        if status != "done":
            state = read_state(plan.sweep_dir / name)
            failed[name] = state.error.headline() if state and state.error else status
    if failed:
        raise click.ClickException(_failed_lines(failed, summary.total))


def _failed_lines(failed: dict[str, str], total: int) -> str:
    lines = "\n".join(f"  {name}: {error}" for name, error in failed.items())
    return (
        f"{len(failed)} of {total} cells failed or did not finish (details in "
        f"SWEEP_DIR/CELL/cell.json, {TRACEBACK_FILE} and train.log):\n{lines}"
    )


@ablate.command("report")
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
def report(sweep_dir: str) -> None:
    """Rebuild results.csv, results.md, fid_curves.png/.csv and paintings.png of SWEEP_DIR.

    Reads whatever is on disk, so it also works on a sweep that is still running, was
    interrupted, or had failures.
    """
    with user_errors():
        failed = _echo_report(Path(sweep_dir))
    for line in failed:
        click.echo(f"failed {line}")
