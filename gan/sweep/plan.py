"""Planning a sweep: the stored sweep, what a request changes in it, its cells and their status.

:func:`plan_sweep` is the one place that decides which sweep runs in a sweep directory:

- a new directory: the request is the sweep (nothing given at all is refused: a mistyped
  directory must not start a sweep of the defaults);
- an existing one: the stored sweep (``sweep.json``) with what the request gives on top; what it
  leaves out keeps its stored value. When that differs from the stored sweep (other cells, other
  options, a bigger budget), :attr:`SweepPlan.changes` says how, and running it needs
  ``change=True`` (``fwp ablate --change``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, TrainConfig, config_changes
from ..run import resume_config
from ..rundir import RunDir
from .grid import Cell, SweepSpec, expand, format_value
from .records import SweepFileError
from .request import SweepRequest
from .state import read_state, started_run, unfinished_reason
from .store import SWEEP_FILE, StoredSweep, read_sweep

__all__ = ["SweepPlan", "budget_text", "describe_cells", "plan_sweep", "sweep_changes"]

_LISTED = 6  # cell names listed in a change before "and N more"


@dataclass
class SweepPlan:
    """The sweep to run in ``sweep_dir``.

    Attributes:
        sweep_dir: the sweep directory.
        spec: the sweep (frozen: rule names, seeds and budget explicit).
        cells: its cells, in grid order.
        stored: what ``sweep.json`` holds; ``None`` for a new sweep.
        changes: how ``spec`` differs from the stored sweep, one line each (empty: it does not).
    """

    sweep_dir: Path
    spec: SweepSpec
    cells: list[Cell]
    stored: StoredSweep | None
    changes: list[str]

    @property
    def is_new(self) -> bool:
        return self.stored is None


def budget_text(config: TrainConfig) -> str:
    """A cell's budget and FID setting in words: ``1,000 steps; FID every 500 steps on 500
    samples``."""
    run = config.run
    budget = f"{run.steps:,} steps" + (f" or {run.minutes:g} minutes" if run.minutes else "")
    if run.fid_every:
        return f"{budget}; FID every {run.fid_every:,} steps on {run.fid_num:,} samples"
    return f"{budget}; no FID"


def _load_plugins(plugins: Sequence[str], origin: str) -> None:
    from fwp.rules import load_plugin

    for plugin in plugins:
        try:
            load_plugin(plugin)
        except ValueError as err:
            raise ConfigError(f"{origin}: {err}") from None


def plan_sweep(sweep_dir: str | Path, request: SweepRequest) -> SweepPlan:
    """The sweep that ``request`` asks for in ``sweep_dir`` (see the module docstring).

    Every cell's configuration is built and validated, and every started cell is checked to be
    resumable with it, before anything is written.

    Raises:
        ConfigError: a bad request, a bad stored sweep (:class:`SweepFileError`), a bare request
            for a directory without a sweep, or a started cell that its new configuration would
            make a different run.
    """
    sweep_dir = Path(sweep_dir)
    stored = read_sweep(sweep_dir)
    if stored is None and request.is_empty():
        raise ConfigError(
            f"{sweep_dir} holds no sweep (no {SWEEP_FILE}): give the sweep to start there (e.g. "
            f"--preset quick --rule delta --rule hebb --steps 1000), or check the directory"
        )
    stored_cells: list[Cell] = []
    if stored is not None:
        where = sweep_dir / SWEEP_FILE
        _load_plugins(stored.spec.plugins, f"{where}: plugin")
        try:
            stored_cells = expand(stored.spec, sweep_dir)
        except ConfigError as err:
            raise SweepFileError(f"{where}: the stored sweep is not valid here: {err}") from None
    _load_plugins(request.plugins, "plugin")
    spec = request.apply(stored.spec if stored is not None else SweepSpec())
    cells = expand(spec, sweep_dir)
    spec = spec.frozen()
    changes: list[str] = []
    if stored is not None:
        changes = sweep_changes(stored.spec, stored_cells, spec, cells)
        if not changes:
            spec, cells = stored.spec, stored_cells
    _check_resumable(cells)
    return SweepPlan(sweep_dir, spec, cells, stored, changes)


def _check_resumable(cells: Sequence[Cell]) -> None:
    """Refuse a started cell whose requested configuration would make it a different run."""
    for cell in cells:
        if not started_run(cell.run_dir):
            continue
        saved = RunDir(cell.run_dir).read_config()
        try:
            resume_config(cell.run_dir, config_changes(saved, cell.config))
        except ConfigError as err:
            raise ConfigError(
                f"cell {cell.name} was started with other settings: {err}. Use a new sweep "
                f"directory for these settings, or delete {cell.run_dir} to train that cell anew"
            ) from None


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def sweep_changes(
    old_spec: SweepSpec, old_cells: Sequence[Cell], new_spec: SweepSpec, new_cells: Sequence[Cell]
) -> list[str]:
    """How a new sweep differs from an old one, one line per difference: cells added or left
    out, options whose value changes (``run.steps: 1000 -> 2000``) and plugins."""
    old = {cell.name: cell for cell in old_cells}
    new = {cell.name: cell for cell in new_cells}
    lines: list[str] = []
    added = [name for name in new if name not in old]
    dropped = [name for name in old if name not in new]
    if added:
        lines.append(f"new cells: {_names(added)}")
    if dropped:
        lines.append(f"cells left out of the sweep (their folders stay): {_names(dropped)}")
    common = [name for name in new if name in old]
    changed: dict[str, dict[tuple[str, str], int]] = {}
    for name in common:
        before, after = old[name].config, new[name].config
        previous = config_changes(after, before)
        for key, value in config_changes(before, after).items():
            pair = (format_value(previous[key]), format_value(value))
            counts = changed.setdefault(key, {})
            counts[pair] = counts.get(pair, 0) + 1
    for key, pairs in changed.items():
        for (before_text, after_text), count in pairs.items():
            where = "" if count == len(common) else f" (in {count} of {len(common)} cells)"
            lines.append(f"{key}: {before_text} -> {after_text}{where}")
    added_plugins = [p for p in new_spec.plugins if p not in old_spec.plugins]
    if added_plugins:
        lines.append(f"plugins added: {', '.join(added_plugins)}")
    return lines


def describe_cells(plan: SweepPlan) -> Iterator[list[str]]:
    """Rows (cell, rule, options, seed, status on disk) for a dry run."""
    for cell in plan.cells:
        state = read_state(cell.run_dir)
        reason = unfinished_reason(cell, state)
        if not reason:
            status = "done"
        elif state is not None and state.status == "done":
            status = f"done ({reason}): will resume"
        else:
            status = reason
        yield [cell.name, cell.rule, cell.options_label, str(cell.seed), status]
