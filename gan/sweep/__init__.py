"""Ablation sweeps: a grid of ordinary training runs over rules, seeds and options; its report.

A sweep directory holds one ordinary run directory per *cell* (so ``fwp paint``, ``fwp fid`` and
``fwp train --resume`` work on each of them) plus the sweep's own files::

    SWEEP_DIR/
      sweep.json                 the whole sweep (grid, preset, configuration, budget, FID
                                 setting, plugins) and its cells in grid order
      delta-seed0/               a run directory (config.json, checkpoints/, samples/, metrics.csv)
        cell.json                the cell's state: status, attempts, wall time, error
        train.log                the output of every attempt at training the cell
        traceback.txt            the traceback of the last failure (a failed cell)
      hebb-painter.steps=16-seed1/
      results.csv, results.md    one row per cell, then mean and std per configuration over seeds
      fid_curves.png, .csv       FID against training step per configuration (mean, band: +-std)
      paintings.png              per configuration: a sample grid beside a painting strip

From a notebook or a cluster launcher::

    from fwp.gan.sweep import Schedule, SweepRequest, plan_sweep, run_sweep, write_report

    plan = plan_sweep("runs/rules", SweepRequest(preset="quick", rules=["delta", "hebb"]))
    run_sweep(plan, Schedule(jobs=2))
    write_report("runs/rules")

On a Slurm cluster every cell is a Slurm job (submitted through submitit)::

    from fwp.gan.sweep import SlurmSettings, submit_sweep, wait_for_cells

    summary = submit_sweep(plan, SlurmSettings(partition="gpu", gpus_per_cell=1, time_min=240))
    wait_for_cells(plan, list(summary.submitted))  # or come back later: write_report

The modules, one concern each: :mod:`.grid` (the grid and its cells), :mod:`.request` (what a
command line or sweep file asks), :mod:`.store` (``sweep.json``), :mod:`.state` (``cell.json``),
:mod:`.plan` (which sweep runs and what it changes), :mod:`.launch` (how one cell trains),
:mod:`.schedule` (where cells train), :mod:`.runner` (running them here), :mod:`.slurm` (as
Slurm jobs), :mod:`.slurm_jobs` (asking Slurm about them), :mod:`.progress`, :mod:`.results`,
:mod:`.report`, :mod:`.plots`.
"""

from .grid import (
    GRID_OPTIONS,
    SHARED_OPTIONS,
    Cell,
    SweepSpec,
    expand,
    format_value,
    parse_axis,
    parse_seeds,
    resolve_rules,
    split_values,
)
from .launch import CellLauncher, RunLauncher, prepare_run
from .plan import SweepPlan, budget_text, describe_cells, plan_sweep
from .plots import PALETTE, FidSeries, draw_paintings, fid_series, plot_fid_curves
from .progress import SweepProgress
from .records import SweepFileError
from .report import FID_CSV, FID_PNG, PAINTINGS_PNG, RESULTS_CSV, RESULTS_MD, write_report
from .request import SweepRequest, load_sweep_file
from .results import CellResult, ConfigSummary, collect_results, summarize
from .runner import SweepSummary, prepare_fid_references, run_sweep
from .schedule import Schedule, parse_gpus
from .slurm import (
    SLURM_DIR,
    CellJob,
    SlurmSettings,
    SubmitSummary,
    parse_slurm_option,
    submit_sweep,
    wait_for_cells,
)
from .state import (
    CELL_FILE,
    STATUSES,
    TRACEBACK_FILE,
    CellError,
    CellState,
    cell_status,
    read_state,
    write_state,
)
from .store import SWEEP_FILE, read_sweep

__all__ = [
    "CELL_FILE",
    "FID_CSV",
    "FID_PNG",
    "GRID_OPTIONS",
    "PAINTINGS_PNG",
    "PALETTE",
    "RESULTS_CSV",
    "RESULTS_MD",
    "SHARED_OPTIONS",
    "SLURM_DIR",
    "STATUSES",
    "SWEEP_FILE",
    "TRACEBACK_FILE",
    "Cell",
    "CellError",
    "CellJob",
    "CellLauncher",
    "CellResult",
    "CellState",
    "ConfigSummary",
    "FidSeries",
    "RunLauncher",
    "Schedule",
    "SlurmSettings",
    "SubmitSummary",
    "SweepFileError",
    "SweepPlan",
    "SweepProgress",
    "SweepRequest",
    "SweepSpec",
    "SweepSummary",
    "budget_text",
    "cell_status",
    "collect_results",
    "describe_cells",
    "draw_paintings",
    "expand",
    "fid_series",
    "format_value",
    "load_sweep_file",
    "parse_axis",
    "parse_gpus",
    "parse_seeds",
    "parse_slurm_option",
    "plan_sweep",
    "plot_fid_curves",
    "prepare_fid_references",
    "prepare_run",
    "read_state",
    "read_sweep",
    "resolve_rules",
    "run_sweep",
    "split_values",
    "submit_sweep",
    "summarize",
    "wait_for_cells",
    "write_report",
    "write_state",
]
