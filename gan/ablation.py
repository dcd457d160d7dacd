"""Ablation sweeps: a grid of ordinary training runs over rules, seeds and options; its report.

A sweep directory holds one ordinary run directory per *cell* (so ``fwp paint``, ``fwp fid`` and
``fwp train --resume`` work on each of them) plus the sweep's own files::

    SWEEP_DIR/
      sweep.json                 the cells of the sweep, in grid order
      delta-seed0/               a run directory (config.json, checkpoints/, samples/, metrics.csv)
        cell.json                the cell's state: pending/running/done/failed, error, wall time
        ablation_config.json     the configuration the sweep asks of this cell
        train.log                the output of every attempt at training the cell
      hebb-painter.steps=16-seed1/
      results.csv, results.md    one row per cell, then mean and std per configuration over seeds
      fid_curves.png             FID against training step per configuration (mean, band: +-std)
      paintings.png              per configuration: a sample grid beside a painting strip

A *configuration* is a cell without its seed (``hebb-painter.steps=16``); results are averaged over
the seeds of a configuration. Every cell shares one training budget (``run.steps`` /
``run.minutes``) and one FID setting (``run.fid_every`` / ``run.fid_num``).

The grid comes from a :class:`SweepSpec`: rules (names or shell patterns such as ``delta*``), seeds
and swept options (``painter.steps=16,64``: a comma-separated list of values is one axis), on top of
a base configuration built like ``fwp train`` builds one (preset, config file, options). A sweep
can also be read from a TOML file (:func:`load_sweep_file`)::

    [sweep]
    preset = "quick"                 # the base preset (default "paper")
    rules = ["delta", "hebb*"]       # rule names or shell patterns
    seeds = 2                        # a count (seeds 0..N-1) or a list such as [0, 7]
    steps = 300                      # the shared budget: steps and/or minutes
    fid_every = 100                  # the shared FID setting (optional): fid_every, fid_num
    plugins = ["my_rules.py"]        # rule plugins, relative to this file (optional)
    config = "base.toml"             # a configuration file for every cell (optional)

    [sweep.set]                      # swept options: every list is one axis of the grid
    "painter.steps" = [16, 64]
    "optim.lr_generator" = [1e-4, 2e-4]

    [base.optim]                     # [base.SECTION] tables: fixed options of every cell
    batch_size = 16

Cells are trained by a :class:`CellLauncher` (the command line supplies one that runs
``fwp train``): one after another in child processes by default, ``jobs`` at once, one per GPU
(``CUDA_VISIBLE_DEVICES``), or inside this process. A cell that fails is recorded with its error
and the traceback's tail and does not stop the others; running the sweep again skips finished
cells and resumes the others from their last checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageDraw, ImageFont

from .config import ConfigError, TrainConfig, build_config, parse_assignment
from .files import atomic_write, atomic_write_text
from .progress import format_seconds
from .rundir import CHECKPOINT_DIR, CONFIG_FILE, LAST

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "CELL_FILE",
    "FID_PNG",
    "PAINTINGS_PNG",
    "RESULTS_CSV",
    "RESULTS_MD",
    "Cell",
    "CellLauncher",
    "CellResult",
    "CellState",
    "ConfigSummary",
    "ReportFiles",
    "SweepProgress",
    "SweepSpec",
    "SweepSummary",
    "cell_status",
    "collect_results",
    "config_changes",
    "describe_cells",
    "draw_fid_curves",
    "draw_paintings",
    "expand",
    "fid_series",
    "format_value",
    "load_sweep_file",
    "nice_ticks",
    "parse_axis",
    "parse_seeds",
    "plan_path",
    "prepare_fid_references",
    "read_state",
    "resolve_rules",
    "run_sweep",
    "split_values",
    "started_run",
    "summarize",
    "write_report",
]

SWEEP_FILE = "sweep.json"
CELL_FILE = "cell.json"
PLAN_FILE = "ablation_config.json"
LOG_FILE = "train.log"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
FID_PNG = "fid_curves.png"
PAINTINGS_PNG = "paintings.png"

STATUSES = ("pending", "running", "done", "failed")

#: options that every cell shares: the training budget and the FID setting
SHARED_OPTIONS = ("run.steps", "run.minutes", "run.fid_every", "run.fid_num")
#: options swept by their own flags rather than by ``--set``
GRID_OPTIONS = {"painter.rule": "--rule/--rules", "run.seed": "--seeds"}


# -- the grid -----------------------------------------------------------------------------------
@dataclass
class SweepSpec:
    """What to sweep, on top of a base configuration built as ``fwp train`` builds one.

    Attributes:
        rules: rule names or shell patterns (``delta*``); empty: the base configuration's rule.
        seeds: seeds of every configuration; empty: the base configuration's seed.
        axes: swept options in order, ``(section.name, values)``; one value = a fixed option.
        preset, config_file, options: the base configuration (``build_config`` arguments).
        plugins: rule plugins (modules or ``.py`` files) that the cells' processes must import.
    """

    rules: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    axes: list[tuple[str, list[Any]]] = field(default_factory=list)
    preset: str = "paper"
    config_file: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)

    def base_config(self) -> TrainConfig:
        """The validated base configuration (before rules, seeds and axes)."""
        return build_config(self.preset, self.config_file, self.options)


@dataclass
class Cell:
    """One training run of the sweep: a rule, a seed and the swept options' values."""

    name: str
    configuration: str
    rule: str
    seed: int
    settings: dict[str, Any]
    config: TrainConfig
    run_dir: Path

    @property
    def options_label(self) -> str:
        """The swept options of this cell, ``section.name=value`` separated by spaces."""
        return " ".join(f"{key}={format_value(value)}" for key, value in self.settings.items())


def parse_seeds(value: str | int | Sequence[int]) -> list[int]:
    """``3`` -> seeds 0, 1, 2; ``"0,7"`` or ``[0, 7]`` -> exactly those seeds."""
    if isinstance(value, bool):
        raise ConfigError(f"seeds must be a count or a list of seeds; got {value!r}")
    if isinstance(value, int):
        count = value
        if count < 1:
            raise ConfigError(f"seeds must be a positive count; got {count}")
        return list(range(count))
    if isinstance(value, str):
        text = value.strip()
        if "," not in text:
            if not text.isdigit():
                raise ConfigError(
                    f"--seeds expects a count (3) or a comma-separated list (0,7); got {value!r}"
                )
            return parse_seeds(int(text))
        parts = [p.strip() for p in text.split(",") if p.strip()]
    else:
        parts = list(value)
    try:
        seeds = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise ConfigError(f"seeds must be integers; got {value!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative integers; got {value!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat a value: {value!r}")
    return seeds


def split_values(raw: str) -> list[str]:
    """Split at the commas outside brackets, braces and quotes: ``16,64`` -> ``["16", "64"]``.

    ``"translation,cutout"`` (quoted) and ``{a=1,b=2}`` stay whole.
    """
    parts, depth, quote, current = [], 0, "", []
    for ch in raw:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """``section.name=v1,v2,...`` -> (``section.name``, values read as TOML when they parse)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.name=value[,value...]; got {text!r}")
    pieces = split_values(raw)
    if any(piece == "" for piece in pieces):
        raise ConfigError(f"--set {text!r} has an empty value")
    return key.strip(), [parse_assignment(f"{key}={piece}")[1] for piece in pieces]


def _check_axes(axes: Sequence[tuple[str, Sequence[Any]]]) -> None:
    seen = set()
    for key, values in axes:
        if key in GRID_OPTIONS:
            raise ConfigError(f"sweep {key} with {GRID_OPTIONS[key]}, not with --set")
        if key in SHARED_OPTIONS and len(values) > 1:
            raise ConfigError(
                f"all cells share one training budget and FID setting: {key} cannot be swept "
                f"(give it one value)"
            )
        if key in seen:
            raise ConfigError(f"option {key} is swept twice; give all its values in one --set")
        seen.add(key)
        if not values:
            raise ConfigError(f"swept option {key} has no values")
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"swept option {key} repeats a value: {list(values)!r}")


def resolve_rules(patterns: Sequence[str]) -> list[str]:
    """Registered rule names for names and shell patterns, in order, without repeats."""
    from fwp.rules import get_spec, list_rules

    names: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matched = [spec.name for spec in list_rules(pattern)]
            if not matched:
                raise ConfigError(
                    f"no registered rule matches {pattern!r}; `fwp rules` lists them "
                    f"(a plugin rule needs `fwp --plugin FILE ablate ...`)"
                )
        else:
            try:
                matched = [get_spec(pattern).name]
            except ValueError as err:
                raise ConfigError(str(err)) from None
        names += [name for name in matched if name not in names]
    return names


def format_value(value: Any) -> str:
    """A short, stable text for an option value (used in cell names and tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_MAX_NAME = 100


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "_"


def _digest(payload: Any) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:6]


def _configuration_name(rule: str, settings: dict[str, Any]) -> str:
    parts = [_safe(rule)] + [_safe(f"{k}={format_value(v)}") for k, v in settings.items()]
    name = "-".join(parts)
    if len(name) > _MAX_NAME:
        name = f"{name[: _MAX_NAME - 7]}-{_digest([rule, settings])}"
    return name


def expand(spec: SweepSpec, sweep_dir: str | Path) -> list[Cell]:
    """The cells of a sweep, in order: rules, then swept options (first axis slowest), then seeds.

    Every cell's configuration is built and validated here, before any training starts.

    Raises:
        ConfigError: an unknown rule, a pattern matching nothing, a bad option or value (the
            message names the cell), or an option that cannot be swept.
    """
    for key in spec.options:
        if key in GRID_OPTIONS:
            raise ConfigError(f"sweep {key} with {GRID_OPTIONS[key]}")
    _check_axes(spec.axes)
    base = spec.base_config()
    rules = resolve_rules(spec.rules) if spec.rules else [base.painter.rule]
    seeds = list(spec.seeds) or [base.run.seed]
    fixed = {key: values[0] for key, values in spec.axes if len(values) == 1}
    swept = [(key, values) for key, values in spec.axes if len(values) > 1]
    sweep_dir = Path(sweep_dir)
    cells: list[Cell] = []
    names: dict[str, tuple[str, dict[str, Any]]] = {}
    for rule in rules:
        for combo in product(*(values for _, values in swept)):
            settings = {key: value for (key, _), value in zip(swept, combo, strict=True)}
            configuration = _configuration_name(rule, settings)
            identity = (rule, settings)
            if names.setdefault(configuration, identity) != identity:
                configuration = f"{configuration}-{_digest([rule, settings])}"
                names[configuration] = identity
            for seed in seeds:
                name = f"{configuration}-seed{seed}"
                options = {
                    **spec.options,
                    **fixed,
                    **settings,
                    "painter.rule": rule,
                    "run.seed": seed,
                }
                try:
                    config = build_config(spec.preset, spec.config_file, options)
                except ConfigError as err:
                    raise ConfigError(f"cell {name}: {err}") from None
                cells.append(
                    Cell(name, configuration, rule, seed, settings, config, sweep_dir / name)
                )
    return cells


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a TOML sweep file (format in the module docstring) into a :class:`SweepSpec`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"cannot parse sweep file {str(path)!r}: {err}") from err
    unknown = sorted(set(data) - {"sweep", "base"})
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown table(s) {unknown}; use [sweep] and [base]")
    sweep = dict(data.get("sweep", {}))
    axes_table = sweep.pop("set", {})
    allowed = {
        "preset",
        "rules",
        "seeds",
        "steps",
        "minutes",
        "fid_every",
        "fid_num",
        "plugins",
        "config",
    }
    unknown = sorted(set(sweep) - allowed)
    if unknown:
        raise ConfigError(
            f"sweep file {path}: unknown [sweep] key(s) {unknown}; known: {sorted(allowed)}"
        )
    spec = SweepSpec(preset=str(sweep.get("preset", "paper")))
    rules = sweep.get("rules", [])
    spec.rules = [rules] if isinstance(rules, str) else [str(r) for r in rules]
    if "seeds" in sweep:
        spec.seeds = parse_seeds(sweep["seeds"])
    for key in ("steps", "minutes", "fid_every", "fid_num"):
        if key in sweep:
            spec.options[f"run.{key}"] = sweep[key]
    for section, entries in data.get("base", {}).items():
        if not isinstance(entries, dict):
            raise ConfigError(f"sweep file {path}: [base.{section}] must be a table of options")
        for name, value in entries.items():
            spec.options[f"{section}.{name}"] = value
    if not isinstance(axes_table, dict):
        raise ConfigError(f"sweep file {path}: [sweep.set] must be a table")
    for key, values in axes_table.items():
        spec.axes.append((key, list(values) if isinstance(values, list) else [values]))
    spec.plugins = [_relative_to(path, p) for p in sweep.get("plugins", [])]
    if "config" in sweep:
        spec.config_file = _relative_to(path, sweep["config"])
    return spec


def _relative_to(sweep_file: Path, item: str) -> str:
    """A path named in a sweep file is relative to the file; a dotted module stays as it is."""
    if item.endswith((".py", ".toml", ".json")) and not Path(item).is_absolute():
        return str((sweep_file.parent / item).resolve())
    return str(item)


# -- cell state ---------------------------------------------------------------------------------
@dataclass
class CellState:
    """The contents of ``cell.json``: what the sweep knows about one cell."""

    name: str
    configuration: str
    rule: str
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    error: str = ""
    traceback: str = ""
    wall_s: float = 0.0
    attempts: int = 0
    budget: dict[str, Any] = field(default_factory=dict)
    final_step: int | None = None
    parameters: int | None = None
    started_at: str = ""
    finished_at: str = ""
    owner: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    command: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CellState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def read_state(run_dir: str | Path) -> CellState | None:
    """The state of the cell in ``run_dir``; ``None`` when it has none (or it is unreadable)."""
    path = Path(run_dir) / CELL_FILE
    try:
        return CellState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_state(run_dir: str | Path, state: CellState) -> None:
    """Write ``cell.json`` atomically."""
    text = json.dumps(dataclasses.asdict(state), indent=2) + "\n"
    atomic_write_text(text, Path(run_dir) / CELL_FILE)


def _budget(config: TrainConfig) -> dict[str, Any]:
    return {key: getattr(config.run, key.split(".")[1]) for key in SHARED_OPTIONS}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the sweep process recorded as a cell's owner still runs (on this host)."""
    pid = owner.get("pid")
    if not pid or owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cell_status(state: CellState | None) -> str:
    """The status to show: ``running`` of a sweep that no longer runs reads ``interrupted``."""
    if state is None:
        return "pending"
    if state.status == "running" and not _owner_alive(state.owner):
        return "interrupted"
    return state.status


def started_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a started run (a config and a checkpoint folder): one that
    ``fwp train`` must resume rather than start again."""
    run_dir = Path(run_dir)
    return (run_dir / CONFIG_FILE).is_file() and (run_dir / CHECKPOINT_DIR).is_dir()


def plan_path(cell: Cell) -> Path:
    """Where the configuration the sweep asks of ``cell`` is written (a ``--config`` file)."""
    return cell.run_dir / PLAN_FILE


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{section}.{name}": value
        for section, entries in config.items()
        if isinstance(entries, dict)
        for name, value in entries.items()
    }


def config_changes(saved: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """``{section.name: requested value}`` for the options where ``requested`` differs."""
    old, new = _flatten(saved), _flatten(requested)
    return {key: value for key, value in new.items() if old.get(key) != value}


def _unfinished_reason(cell: Cell, state: CellState | None) -> str:
    """Why a cell must be trained (again); "" when it is finished with the sweep's settings."""
    if state is None or state.status != "done":
        return cell_status(state)
    if not (cell.run_dir / CHECKPOINT_DIR / LAST).is_file():
        return "checkpoint missing"
    if state.budget != _budget(cell.config):
        return "budget changed"
    try:
        saved = json.loads((cell.run_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return "config.json missing"
    changed = sorted(set(config_changes(saved, cell.config.to_dict())) - {"run.device"})
    if changed:
        return f"configuration changed: {', '.join(changed)}"
    return ""


def _is_finished(cell: Cell, state: CellState | None) -> bool:
    return not _unfinished_reason(cell, state)


def _write_plan(sweep_dir: Path, cells: Sequence[Cell]) -> None:
    """sweep.json (cells in grid order, earlier cells kept) and a pending cell.json per new cell."""
    path = sweep_dir / SWEEP_FILE
    order: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        order = list(json.loads(path.read_text()).get("cells", []))
    order += [cell.name for cell in cells if cell.name not in order]
    atomic_write_text(json.dumps({"version": 1, "cells": order}, indent=2) + "\n", path)
    for cell in cells:
        state = read_state(cell.run_dir)
        if state is None:
            write_state(cell.run_dir, _new_state(cell))


def _new_state(cell: Cell) -> CellState:
    return CellState(
        cell.name,
        cell.configuration,
        cell.rule,
        cell.seed,
        dict(cell.settings),
        budget=_budget(cell.config),
    )


# -- running ------------------------------------------------------------------------------------
class CellLauncher(Protocol):
    """How cells are trained: the command line supplies one that runs ``fwp train``."""

    def argv(self, cell: Cell) -> list[str]:
        """The command line of a child process that trains (or resumes) ``cell``."""

    def run_inline(self, cell: Cell) -> None:
        """Train (or resume) ``cell`` inside this process; raise on failure."""


@dataclass
class SweepSummary:
    """What one :func:`run_sweep` call did."""

    total: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    interrupted: bool = False


class SweepProgress:
    """A progress display on stderr: cells done, running, failed, pending, and the ETA.

    The ETA assumes every remaining cell takes the mean wall time of the cells finished so far,
    run ``slots`` at a time; before any cell has finished, a running cell's duration is
    extrapolated from the step its ``metrics.csv`` has reached.
    """

    def __init__(self, total: int, slots: int, enabled: bool = True) -> None:
        self.total = total
        self.slots = max(slots, 1)
        self.enabled = enabled
        self.interactive = enabled and sys.stderr.isatty()
        self.durations: list[float] = []
        self.done = self.failed = 0
        self.running: dict[str, float] = {}
        self.cells: dict[str, Cell] = {}
        self.start = time.monotonic()
        self._last_print = time.monotonic()

    def started(self, cell: Cell) -> None:
        self.running[cell.name] = time.monotonic()
        self.cells[cell.name] = cell

    def _extrapolate(self, name: str, elapsed: float) -> float | None:
        """A running cell's whole duration, from the fraction of its budget done so far."""
        cell = self.cells.get(name)
        rows = _read_metrics(cell.run_dir) if cell is not None else []
        if cell is None or not rows:
            return None
        run = cell.config.run
        fraction = int(rows[-1]["step"]) / max(run.steps, 1)
        seconds = _number(rows[-1].get("elapsed_s"))
        if run.minutes > 0 and seconds is not None:
            fraction = max(fraction, seconds / (run.minutes * 60))
        return elapsed / min(fraction, 1.0) if fraction > 0 else None

    def eta(self) -> float | None:
        now = time.monotonic()
        if self.durations:
            mean = statistics.fmean(self.durations)
        else:
            guesses = [
                g
                for name, t in self.running.items()
                if (g := self._extrapolate(name, now - t)) is not None
            ]
            if not guesses:
                return None
            mean = statistics.fmean(guesses)
        pending = self.total - self.done - self.failed - len(self.running)
        work = pending * mean + sum(max(mean - (now - t), 0.0) for t in self.running.values())
        return work / self.slots

    def counts(self) -> str:
        pending = self.total - self.done - self.failed - len(self.running)
        eta = self.eta()
        return (
            f"{self.done}/{self.total} done, {len(self.running)} running, {self.failed} failed, "
            f"{pending} pending | elapsed {format_seconds(time.monotonic() - self.start)} | "
            f"ETA {'?' if eta is None else format_seconds(eta)}"
        )

    def event(self, text: str) -> None:
        """Print one line about a cell; on a terminal the progress line is redrawn below it."""
        if not self.enabled:
            return
        if self.interactive:
            print("\r" + " " * 110 + "\r" + f"ablate: {text}", file=sys.stderr, flush=True)
            self.show(force=True)
        else:
            print(f"ablate: {text} [{self.counts()}]", file=sys.stderr, flush=True)
            self._last_print = time.monotonic()

    def show(self, force: bool = False) -> None:
        """Redraw the progress line: on a terminal at most every second, else every 60 s."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self.interactive:
            if force or now - self._last_print >= 1.0:
                self._last_print = now
                print(
                    "\r" + f"ablate: {self.counts()}".ljust(110),
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        elif now - self._last_print >= 60.0:
            self._last_print = now
            print(f"ablate: {self.counts()}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.interactive:
            print(file=sys.stderr, flush=True)


def _count_parameters(config: TrainConfig) -> int | None:
    try:
        from fwp.painters import count_parameters

        from .generators import build_generator

        return count_parameters(build_generator(config))
    except Exception:  # a report without a parameter count is better than no report
        return None


def _final_step(run_dir: Path) -> int | None:
    rows = _read_metrics(run_dir)
    return max((int(row["step"]) for row in rows), default=None)


_SIGNALS = {-int(s): s.name for s in signal.Signals}


def _tail(text: str, count: int = 25) -> str:
    """The last ``count`` lines of a log, without blank lines and ``^^^^`` marker lines."""
    lines = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and set(line.strip()) - set("^~")
    ]
    return "\n".join(lines[-count:])


def _error_from_log(text: str, returncode: int) -> tuple[str, str]:
    """(one-line error, traceback tail) from the output of a failed ``fwp train``."""
    tail = _tail(text)
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if "Traceback (most recent call last):" in text:
        after = text.rsplit("Traceback (most recent call last):", 1)[1].splitlines()
        body = [line for line in after if line.strip()]
        # the exception line is the last unindented line of the traceback
        message = next((line for line in reversed(body) if not line.startswith(" ")), "")
        if message:
            return message.strip(), tail
    errors = [line for line in lines if line.startswith("Error:")]
    if errors:
        return errors[-1][len("Error:") :].strip(), tail
    if returncode < 0:
        name = _SIGNALS.get(returncode, f"signal {-returncode}")
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}", tail
    return f"training exited with status {returncode}", tail


@dataclass
class _Running:
    cell: Cell
    process: subprocess.Popen[bytes]
    log: io.BufferedWriter
    log_offset: int
    started: float
    slot: int


def run_sweep(
    cells: Sequence[Cell],
    launcher: CellLauncher,
    *,
    jobs: int = 1,
    gpus: Sequence[str] = (),
    in_process: bool = False,
    retry_failed: bool = True,
    progress: bool = True,
    prepare_fid: bool = True,
    poll_s: float = 0.5,
) -> SweepSummary:
    """Train every cell that is not finished; failures are recorded and do not stop the others.

    Args:
        cells: from :func:`expand`; their folders share one sweep directory.
        launcher: trains a cell, in a child process (``argv``) or in this one (``run_inline``).
        jobs: child processes at once on the CPU (each gets ``OMP_NUM_THREADS`` = cores / jobs
            unless the environment sets it).
        gpus: GPU ids: one cell at a time per GPU, each child sees only its GPU.
        in_process: train in this process, one cell after another (no isolation).
        retry_failed: train failed cells again (default) rather than skip them.
        progress: the progress display on stderr.
        prepare_fid: compute the FID reference statistics the cells need once, here, before
            any training (see :func:`prepare_fid_references`).

    Returns:
        a :class:`SweepSummary`. KeyboardInterrupt stops the children, puts the cells that were
        running back to pending (they resume from their last checkpoint next time) and is
        re-raised.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1; got {jobs}")
    if gpus and jobs > 1:
        raise ConfigError("--gpus places one cell per GPU; do not combine it with --jobs")
    if in_process and (gpus or jobs > 1):
        raise ConfigError("--in-process trains one cell at a time; drop --jobs/--gpus")
    if not cells:
        raise ConfigError("the sweep has no cells")
    sweep_dir = cells[0].run_dir.parent
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _write_plan(sweep_dir, cells)
    summary = SweepSummary(total=len(cells))
    queue: list[Cell] = []
    for cell in cells:
        state = read_state(cell.run_dir)
        if _is_finished(cell, state):
            summary.skipped.append(cell.name)
        elif (
            state is not None
            and state.status == "running"
            and _owner_alive(state.owner)
            and state.owner.get("pid") != os.getpid()
        ):
            summary.busy.append(cell.name)
        elif state is not None and state.status == "failed" and not retry_failed:
            summary.failed[cell.name] = state.error
        else:
            queue.append(cell)
    slots = len(gpus) if gpus else jobs
    display = SweepProgress(len(cells), slots, enabled=progress)
    display.done = len(summary.skipped)
    display.failed = len(summary.failed)
    display.durations = [
        s.wall_s
        for s in (read_state(c.run_dir) for c in cells)
        if s is not None and s.status == "done" and s.wall_s > 0
    ]
    if prepare_fid and queue:
        prepare_fid_references(queue, progress=progress)
    if summary.skipped:
        display.event(f"{len(summary.skipped)} of {len(cells)} cells already done; skipping them")
    for name in summary.busy:
        display.event(f"skipping {name}: another sweep process is training it")
    try:
        with _sigterm_as_interrupt():
            if in_process:
                _run_inline(queue, launcher, summary, display)
            else:
                _run_children(queue, launcher, summary, display, slots, list(gpus), poll_s)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        display.close()
    return summary


def prepare_fid_references(cells: Sequence[Cell], progress: bool = True) -> int:
    """Compute (or find in the cache) the FID reference statistics that cells need.

    Cells that evaluate FID during training (``run.fid_every``) on the same data share one
    cached ``.npz``; computing it here, once, keeps cells that start together from all computing
    it, and a missing Inception network is reported before any training starts.

    Returns:
        the number of distinct reference statistics needed.

    Raises:
        ConfigError: the statistics cannot be computed (e.g. no Inception weights).
    """
    needed = dict.fromkeys(
        (
            c.config.data.source,
            tuple(c.config.data.size),
            c.config.data.channels,
            c.config.data.limit or None,
        )
        for c in cells
        if c.config.run.fid_every > 0
    )
    if not needed:
        return 0
    from . import metrics

    for source, size, channels, limit in needed:
        try:
            metrics.reference_stats(source, size, channels, limit=limit, progress=progress)
        except (OSError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"FID during training (run.fid_every) needs the reference statistics of "
                f"{source!r} at {size[0]}x{size[1]}, which cannot be computed: {err}"
            ) from err
    return len(needed)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (a scheduler stopping the sweep) like Ctrl-C: stop children, keep state."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _begin(cell: Cell, command: list[str], device: str) -> CellState:
    state = read_state(cell.run_dir) or _new_state(cell)
    cell.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(cell.config.to_dict(), indent=2) + "\n", plan_path(cell))
    state.status = "running"
    state.error = state.traceback = ""
    state.attempts += 1
    state.budget = _budget(cell.config)
    state.started_at = _now()
    state.finished_at = ""
    state.owner = {"pid": os.getpid(), "host": socket.gethostname()}
    state.device = device
    state.command = command
    write_state(cell.run_dir, state)
    return state


def _finish(cell: Cell, state: CellState, seconds: float, error: tuple[str, str] | None) -> None:
    state.wall_s = round(state.wall_s + seconds, 3)
    state.finished_at = _now()
    state.owner = {}
    state.final_step = _final_step(cell.run_dir)
    if error is None:
        state.status = "done"
        if state.parameters is None:
            state.parameters = _count_parameters(cell.config)
    else:
        state.status = "failed"
        state.error, state.traceback = error
    write_state(cell.run_dir, state)


def _interrupted(cell: Cell, seconds: float) -> None:
    state = read_state(cell.run_dir)
    if state is None:
        return
    state.status = "pending"
    state.error = "interrupted; run the sweep again to resume from the last checkpoint"
    state.wall_s = round(state.wall_s + seconds, 3)
    state.owner = {}
    state.final_step = _final_step(cell.run_dir)
    write_state(cell.run_dir, state)


def _record(
    cell: Cell, state: CellState, summary: SweepSummary, display: SweepProgress, seconds: float
) -> None:
    display.running.pop(cell.name, None)
    display.cells.pop(cell.name, None)
    if state.status == "done":
        summary.done.append(cell.name)
        display.done += 1
        display.durations.append(seconds)
        display.event(f"done {cell.name} at step {state.final_step} in {format_seconds(seconds)}")
    else:
        summary.failed[cell.name] = state.error
        display.failed += 1
        display.event(f"FAILED {cell.name}: {state.error}")


def _run_inline(
    queue: list[Cell], launcher: CellLauncher, summary: SweepSummary, display: SweepProgress
) -> None:
    for cell in queue:
        state = _begin(cell, ["(in process)"], device="")
        display.started(cell)
        display.event(f"started {cell.name} (attempt {state.attempts})")
        start = time.monotonic()
        error = None
        with (cell.run_dir / LOG_FILE).open("a") as log:
            log.write(f"=== attempt {state.attempts} at {_now()}: in process ===\n")
            log.flush()
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    launcher.run_inline(cell)
            except KeyboardInterrupt:
                _interrupted(cell, time.monotonic() - start)
                raise
            except BaseException as err:  # a failing cell must not stop the sweep
                text = "".join(traceback.format_exception(err))
                log.write(text)
                message = getattr(err, "format_message", None)
                headline = message() if callable(message) else f"{type(err).__name__}: {err}"
                error = (headline, _tail(text))
        seconds = time.monotonic() - start
        _finish(cell, state, seconds, error)
        _record(cell, state, summary, display, seconds)


def _child_env(slot: int, gpus: list[str], slots: int) -> dict[str, str]:
    env = dict(os.environ)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot]
    elif "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // slots))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run_children(
    queue: list[Cell],
    launcher: CellLauncher,
    summary: SweepSummary,
    display: SweepProgress,
    slots: int,
    gpus: list[str],
    poll_s: float,
) -> None:
    running: list[_Running] = []
    try:
        while queue or running:
            busy = {r.slot for r in running}
            for slot in range(slots):
                if slot in busy or not queue:
                    continue
                cell = queue.pop(0)
                argv = launcher.argv(cell)
                device = f"cuda (GPU {gpus[slot]})" if gpus else "cpu"
                state = _begin(cell, argv, device)
                log = (cell.run_dir / LOG_FILE).open("ab")
                log.write(
                    f"=== attempt {state.attempts} at {_now()}: {' '.join(argv)} ===\n".encode()
                )
                log.flush()
                offset = log.tell()
                try:
                    process = subprocess.Popen(
                        argv,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=_child_env(slot, gpus, slots),
                    )
                except OSError as err:  # e.g. too many processes: this cell fails, not the sweep
                    log.close()
                    _finish(cell, state, 0.0, (f"cannot start training: {err}", ""))
                    _record(cell, state, summary, display, 0.0)
                    continue
                running.append(_Running(cell, process, log, offset, time.monotonic(), slot))
                display.started(cell)
                display.event(f"started {cell.name} (attempt {state.attempts})")
            for item in list(running):
                returncode = item.process.poll()
                if returncode is None:
                    continue
                running.remove(item)
                item.log.close()
                seconds = time.monotonic() - item.started
                error = None
                if returncode != 0:
                    with (item.cell.run_dir / LOG_FILE).open("rb") as handle:
                        handle.seek(item.log_offset)
                        text = handle.read().decode(errors="replace")
                    error = _error_from_log(text, returncode)
                state = read_state(item.cell.run_dir) or _new_state(item.cell)
                _finish(item.cell, state, seconds, error)
                _record(item.cell, state, summary, display, seconds)
            display.show()
            if running:
                time.sleep(poll_s)
    except BaseException:
        _stop_children(running)
        raise


def _stop_children(running: list[_Running], grace_s: float = 20.0) -> None:
    """Stop children (they get SIGINT and save nothing more), then mark their cells pending."""
    for item in running:
        if item.process.poll() is None:
            with contextlib.suppress(OSError):
                item.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for item in running:
        try:
            item.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            item.process.kill()
            item.process.wait()
        item.log.close()
        _interrupted(item.cell, time.monotonic() - item.started)


# -- results ------------------------------------------------------------------------------------
@dataclass
class CellResult:
    """One cell's results, read from its run directory."""

    name: str
    configuration: str
    rule: str
    options: str
    seed: int
    status: str
    steps: int | None = None
    final_fid: float | None = None
    final_kid: float | None = None
    best_fid: float | None = None
    best_kid: float | None = None
    img_per_s: float | None = None
    parameters: int | None = None
    wall_s: float | None = None
    error: str = ""
    budget: dict[str, Any] = field(default_factory=dict)
    fid_curve: list[tuple[int, float]] = field(default_factory=list)
    samples: Path | None = None
    strip: Path | None = None


@dataclass
class ConfigSummary:
    """Mean and standard deviation over the finished seeds of one configuration."""

    configuration: str
    rule: str
    options: str
    seeds: int
    finished: int
    mean: dict[str, float | None]
    std: dict[str, float | None]


#: the numeric columns of a cell that are averaged over seeds
METRICS = (
    "steps",
    "final_fid",
    "best_fid",
    "final_kid",
    "best_kid",
    "img_per_s",
    "parameters",
    "wall_s",
)


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_metrics(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if (row.get("step") or "").strip()]


def _latest(folder: Path, prefix: str) -> Path | None:
    files = sorted(folder.glob(f"{prefix}_*.png")) if folder.is_dir() else []
    return files[-1] if files else None


def _cell_dirs(sweep_dir: Path) -> list[Path]:
    """The cell folders of a sweep: those named in sweep.json first (grid order), then others."""
    found = {path.parent.name: path.parent for path in sweep_dir.glob(f"*/{CELL_FILE}")}
    order: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        order = list(json.loads((sweep_dir / SWEEP_FILE).read_text()).get("cells", []))
    names = [name for name in order if name in found]
    names += sorted(set(found) - set(names))
    return [found[name] for name in names]


def _cell_result(run_dir: Path) -> CellResult | None:
    state = read_state(run_dir)
    if state is None:
        return None
    options = " ".join(f"{k}={format_value(v)}" for k, v in state.settings.items())
    result = CellResult(
        name=state.name,
        configuration=state.configuration,
        rule=state.rule,
        options=options,
        seed=state.seed,
        status=cell_status(state),
        parameters=state.parameters,
        wall_s=state.wall_s or None,
        error=state.error,
        budget=dict(state.budget),
    )
    rows = _read_metrics(run_dir)
    if rows:
        result.steps = max(int(row["step"]) for row in rows)
        speeds = [v for v in (_number(row.get("img_per_s")) for row in rows) if v is not None]
        if speeds:
            result.img_per_s = statistics.median(speeds)
        scored = [
            (int(row["step"]), fid, _number(row.get("kid")))
            for row in rows
            if (fid := _number(row.get("fid"))) is not None
        ]
        if scored:
            result.fid_curve = [(step, fid) for step, fid, _ in scored]
            _, result.final_fid, result.final_kid = scored[-1]
            _, result.best_fid, result.best_kid = min(scored, key=lambda item: item[1])
    if result.parameters is None and (run_dir / CONFIG_FILE).is_file():
        with contextlib.suppress(Exception):
            result.parameters = _count_parameters(
                TrainConfig.from_dict(json.loads((run_dir / CONFIG_FILE).read_text()))
            )
    result.samples = _latest(run_dir / "samples", "samples")
    result.strip = _latest(run_dir / "samples", "strip")
    return result


def collect_results(sweep_dir: str | Path) -> list[CellResult]:
    """Every cell found on disk under ``sweep_dir`` (any status), in grid order."""
    results = [_cell_result(path) for path in _cell_dirs(Path(sweep_dir))]
    return [r for r in results if r is not None]


def summarize(results: Iterable[CellResult]) -> list[ConfigSummary]:
    """Per configuration: mean and sample standard deviation over its finished (done) seeds."""
    groups: dict[str, list[CellResult]] = {}
    for result in results:
        groups.setdefault(result.configuration, []).append(result)
    summaries = []
    for configuration, members in groups.items():
        done = [m for m in members if m.status == "done"]
        mean: dict[str, float | None] = {}
        std: dict[str, float | None] = {}
        for metric in METRICS:
            values = [float(v) for m in done if (v := getattr(m, metric)) is not None]
            mean[metric] = statistics.fmean(values) if values else None
            std[metric] = statistics.stdev(values) if len(values) > 1 else None
        first = members[0]
        summaries.append(
            ConfigSummary(
                configuration, first.rule, first.options, len(members), len(done), mean, std
            )
        )
    return summaries


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return ""
    if metric in ("steps", "parameters"):
        return f"{round(value):,}" if metric == "parameters" else str(round(value))
    if metric in ("final_kid", "best_kid"):
        return f"{value:.4g}"
    if metric == "wall_s":
        return f"{value:.1f}s" if value < 60 else format_seconds(value)
    if metric == "img_per_s":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _csv_number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


CSV_COLUMNS = [
    "row",
    "configuration",
    "cell",
    "status",
    "rule",
    "options",
    "seed",
    "seeds",
    *METRICS,
    "error",
]


def _write_csv(path: Path, results: list[CellResult], summaries: list[ConfigSummary]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow(
            {
                "row": "cell",
                "configuration": r.configuration,
                "cell": r.name,
                "status": r.status,
                "rule": r.rule,
                "options": r.options,
                "seed": r.seed,
                "seeds": 1,
                **{m: _csv_number(getattr(r, m)) for m in METRICS},
                "error": r.error,
            }
        )
    for s in summaries:
        for kind, values in (("mean", s.mean), ("std", s.std)):
            writer.writerow(
                {
                    "row": kind,
                    "configuration": s.configuration,
                    "rule": s.rule,
                    "options": s.options,
                    "seeds": s.finished,
                    **{m: _csv_number(values[m]) for m in METRICS},
                }
            )
    atomic_write_text(buffer.getvalue(), path)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) or "–" for c in row) + " |" for row in rows]
    return lines


METRIC_HEADERS = {
    "steps": "steps",
    "final_fid": "final FID",
    "best_fid": "best FID",
    "final_kid": "final KID",
    "best_kid": "best KID",
    "img_per_s": "train img/s",
    "parameters": "parameters",
    "wall_s": "wall time",
}


def _budget_line(results: list[CellResult]) -> str:
    budgets = [r.budget for r in results if r.budget]
    if not budgets:
        return ""
    budget = budgets[0]
    parts = []
    if budget.get("run.steps"):
        parts.append(f"{budget['run.steps']:,} steps")
    if budget.get("run.minutes"):
        parts.append(f"{budget['run.minutes']:g} minutes")
    text = "Budget per cell: " + " or ".join(parts) + " (whichever comes first)" * (len(parts) > 1)
    if budget.get("run.fid_every"):
        text += (
            f"; FID/KID every {budget['run.fid_every']:,} steps on "
            f"{budget['run.fid_num']:,} samples."
        )
    else:
        text += "; no FID during training (run.fid_every = 0)."
    if any(b != budget for b in budgets):
        text += " (Cells were trained with different budgets.)"
    return text


def _markdown(title: str, results: list[CellResult], summaries: list[ConfigSummary]) -> str:
    counts = {
        status: sum(r.status == status for r in results)
        for status in ("done", "running", "failed", "interrupted", "pending")
    }
    shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    lines = [f"# Ablation: {title}", "", f"{len(results)} cells: {shown}.", ""]
    budget = _budget_line(results)
    if budget:
        lines += [budget, ""]
    lines += ["## Configurations (mean ± std over finished seeds)", ""]
    rows = []
    for s in summaries:
        cells = []
        for metric in METRICS:
            mean, std = s.mean[metric], s.std[metric]
            text = _fmt(mean, metric)
            if text and std is not None and metric != "parameters":
                text += f" ± {_fmt(std, metric)}"
            cells.append(text)
        rows.append([s.configuration, s.rule, s.options, f"{s.finished}/{s.seeds}", *cells])
    lines += _md_table(
        ["configuration", "rule", "options", "seeds done", *(METRIC_HEADERS[m] for m in METRICS)],
        rows,
    )
    lines += ["", "## Cells", ""]
    rows = [
        [
            r.name,
            r.status,
            r.rule,
            r.options,
            str(r.seed),
            *(_fmt(getattr(r, m), m) for m in METRICS),
        ]
        for r in results
    ]
    lines += _md_table(
        ["cell", "status", "rule", "options", "seed", *(METRIC_HEADERS[m] for m in METRICS)], rows
    )
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines += ["", "## Failed cells", ""]
        lines += [
            f"- `{r.name}`: {_md_escape(r.error)} (see `{r.name}/{CELL_FILE}` and "
            f"`{r.name}/{LOG_FILE}`)"
            for r in failed
        ]
    lines += [
        "",
        "## FID during training",
        "",
        f"![FID against training step]({FID_PNG})",
        "",
        "## Samples and painting strips",
        "",
        f"![A sample grid and a painting strip per configuration]({PAINTINGS_PNG})",
        "",
    ]
    return "\n".join(lines)


@dataclass
class ReportFiles:
    """The paths :func:`write_report` wrote, and what it read."""

    csv: Path
    markdown: Path
    fid_plot: Path
    paintings: Path
    results: list[CellResult]
    summaries: list[ConfigSummary]


def write_report(sweep_dir: str | Path) -> ReportFiles:
    """Rebuild results.csv, results.md, fid_curves.png and paintings.png from what is on disk.

    Raises:
        ConfigError: ``sweep_dir`` holds no cell (no ``*/cell.json``).
    """
    sweep_dir = Path(sweep_dir)
    results = collect_results(sweep_dir)
    if not results:
        raise ConfigError(
            f"{str(sweep_dir)!r} holds no ablation cells (no */{CELL_FILE}); run `fwp ablate "
            f"{sweep_dir} ...` first"
        )
    summaries = summarize(results)
    files = ReportFiles(
        sweep_dir / RESULTS_CSV,
        sweep_dir / RESULTS_MD,
        sweep_dir / FID_PNG,
        sweep_dir / PAINTINGS_PNG,
        results,
        summaries,
    )
    _write_csv(files.csv, results, summaries)
    atomic_write_text(_markdown(sweep_dir.resolve().name, results, summaries), files.markdown)
    _save_png(draw_fid_curves(fid_series(results)), files.fid_plot)
    _save_png(draw_paintings(results), files.paintings)
    return files


def _save_png(image: Image.Image, path: Path) -> None:
    atomic_write(path, lambda handle: image.save(handle, format="PNG"))


# -- pictures (PIL only) ------------------------------------------------------------------------
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Any) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


@dataclass
class FidSeries:
    """One configuration's FID curve: mean and standard deviation over seeds at each step."""

    label: str
    steps: list[int]
    mean: list[float]
    std: list[float]
    seeds: int


def fid_series(results: Iterable[CellResult]) -> list[FidSeries]:
    """Per configuration with FID rows: mean and std over the seeds that reached each step."""
    groups: dict[str, list[CellResult]] = {}
    for result in results:
        if result.fid_curve:
            groups.setdefault(result.configuration, []).append(result)
    series = []
    for label, members in groups.items():
        at: dict[int, list[float]] = {}
        for member in members:
            for step, fid in member.fid_curve:
                at.setdefault(step, []).append(fid)
        steps = sorted(at)
        series.append(
            FidSeries(
                label,
                steps,
                [statistics.fmean(at[s]) for s in steps],
                [statistics.stdev(at[s]) if len(at[s]) > 1 else 0.0 for s in steps],
                len(members),
            )
        )
    return series


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) covering [low, high];
    ``integer`` keeps the spacing at 1 or more."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"tick range must be finite; got {low}, {high}")
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(step, 1)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _tick_label(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def draw_fid_curves(
    series: Sequence[FidSeries], width: int = 960, height: int = 560
) -> Image.Image:
    """A line plot of FID against training step: one line per configuration, a band of +-std.

    Without FID data the picture says so (FID during training needs ``run.fid_every``).
    """
    image = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    title_font, font = _font(16), _font(12)
    title = "FID against training step (mean over seeds, band: ± std)"
    draw.text((width // 2, 12), title, fill="black", font=title_font, anchor="mt")
    if not series:
        message = "no FID recorded: set --fid-every (run.fid_every) to evaluate FID in training"
        draw.text((width // 2, height // 2), message, fill=(90, 90, 90), font=font, anchor="mm")
        return image.convert("RGB")
    legends = [f"{s.label} ({s.seeds} seed{'s' * (s.seeds != 1)})" for s in series]
    legend_w = min(320, max(_text_size(draw, text, font)[0] for text in legends) + 40)
    left, right, top, bottom = 70, width - legend_w - 20, 44, height - 56
    steps = [step for s in series for step in s.steps]
    lows = [m - d for s in series for m, d in zip(s.mean, s.std, strict=True)]
    highs = [m + d for s in series for m, d in zip(s.mean, s.std, strict=True)]
    x_ticks = nice_ticks(0.0, float(max(steps)), 6, integer=True)
    y_ticks = nice_ticks(max(min(lows), 0.0) if min(lows) >= 0 else min(lows), max(highs), 5)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def to_px(step: float, value: float) -> tuple[float, float]:
        x = left + (step - x0) / (x1 - x0) * (right - left)
        y = bottom - (value - y0) / (y1 - y0) * (bottom - top)
        return x, y

    grey = (225, 225, 225)
    for tick in x_ticks:
        x, _ = to_px(tick, y0)
        draw.line([(x, top), (x, bottom)], fill=grey)
        draw.line([(x, bottom), (x, bottom + 5)], fill="black")
        draw.text((x, bottom + 8), _tick_label(tick), fill="black", font=font, anchor="mt")
    for tick in y_ticks:
        _, y = to_px(x0, tick)
        draw.line([(left, y), (right, y)], fill=grey)
        draw.line([(left - 5, y), (left, y)], fill="black")
        draw.text((left - 8, y), _tick_label(tick), fill="black", font=font, anchor="rm")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(
        ((left + right) / 2, height - 14), "training step", fill="black", font=font, anchor="mb"
    )
    label = Image.new("RGBA", _text_size(draw, "FID", font), (0, 0, 0, 0))
    ImageDraw.Draw(label).text((0, 0), "FID", fill="black", font=font, anchor="lt")
    rotated = label.rotate(90, expand=True)
    image.alpha_composite(rotated, (12, int((top + bottom) / 2 - rotated.height / 2)))

    bands = Image.new("RGBA", image.size, (0, 0, 0, 0))
    band_draw = ImageDraw.Draw(bands)
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        if len(s.steps) > 1 and any(s.std):
            upper = [to_px(x, m + d) for x, m, d in zip(s.steps, s.mean, s.std, strict=True)]
            lower = [to_px(x, m - d) for x, m, d in zip(s.steps, s.mean, s.std, strict=True)]
            band_draw.polygon(upper + lower[::-1], fill=(*colour, 56))
    image.alpha_composite(bands)
    draw = ImageDraw.Draw(image)
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        points = [to_px(x, m) for x, m in zip(s.steps, s.mean, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2, joint="curve")
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        if len(s.steps) == 1 and s.std[0]:
            x, _ = points[0]
            _, ya = to_px(s.steps[0], s.mean[0] + s.std[0])
            _, yb = to_px(s.steps[0], s.mean[0] - s.std[0])
            draw.line([(x, ya), (x, yb)], fill=colour, width=1)
        # legend
        ly = top + 6 + index * 20
        lx = right + 16
        draw.rectangle([lx, ly + 2, lx + 14, ly + 12], fill=colour)
        text = legends[index]
        while _text_size(draw, text, font)[0] > legend_w - 24 and len(text) > 4:
            text = text[:-2] + "…"
        draw.text((lx + 20, ly + 7), text, fill="black", font=font, anchor="lm")
    return image.convert("RGB")


def _fit_height(picture: Image.Image, low: int = 128, high: int = 360) -> Image.Image:
    """Scale up by an integer factor (nearest) to at least ``low``, or down to at most ``high``."""
    if picture.height < low:
        factor = math.ceil(low / picture.height)
        if picture.height * factor <= high * 1.5:
            return picture.resize(
                (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
            )
    if picture.height > high:
        width = max(1, round(picture.width * high / picture.height))
        return picture.resize((width, high), Image.Resampling.LANCZOS)
    return picture


def _placeholder(text: str, size: tuple[int, int] = (160, 128)) -> Image.Image:
    image = Image.new("RGB", size, (238, 238, 238))
    draw = ImageDraw.Draw(image)
    draw.text((size[0] // 2, size[1] // 2), text, fill=(110, 110, 110), font=_font(12), anchor="mm")
    return image


def _open(path: Path | None) -> Image.Image | None:
    if path is None:
        return None
    try:
        with Image.open(path) as picture:
            return picture.convert("RGB")
    except OSError:
        return None


def draw_paintings(results: Sequence[CellResult], gap: int = 12) -> Image.Image:
    """Per configuration, one row: its label, the latest sample grid and painting strip.

    The pictures come from the configuration's first seed that has samples (finished seeds
    first); a configuration without samples gets a grey placeholder.
    """
    groups: dict[str, list[CellResult]] = {}
    for result in results:
        groups.setdefault(result.configuration, []).append(result)
    font, title_font = _font(13), _font(16)
    rows: list[tuple[str, Image.Image, Image.Image]] = []
    for configuration, members in groups.items():
        ranked = sorted(members, key=lambda m: (m.status != "done", m.seed))
        chosen = next((m for m in ranked if m.samples is not None), ranked[0])
        grid, strip = _open(chosen.samples), _open(chosen.strip)
        step = ""
        if chosen.samples is not None:
            step = str(int(chosen.samples.stem.rsplit("_", 1)[-1]))
        label = f"{configuration}" + (f"  (seed {chosen.seed}, step {step})" if step else "")
        if chosen.status == "failed":
            label += "  [failed]"
        rows.append(
            (
                label,
                _fit_height(grid) if grid else _placeholder("no samples"),
                _fit_height(strip) if strip else _placeholder("no painting strip"),
            )
        )
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_h = 22
    width = (
        max(
            max(g.width + gap + s.width for _, g, s in rows),
            max(_text_size(probe, label, font)[0] for label, _, _ in rows),
            560,
        )
        + 2 * gap
    )
    header_h = 36
    height = header_h + sum(label_h + max(g.height, s.height) + gap for _, g, s in rows) + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (gap, 10),
        "Samples (left) and painting strips (right) per configuration",
        fill="black",
        font=title_font,
    )
    y = header_h
    for label, grid, strip in rows:
        draw.text((gap, y + 4), label, fill="black", font=font)
        y += label_h
        canvas.paste(grid, (gap, y))
        canvas.paste(strip, (gap + grid.width + gap, y))
        y += max(grid.height, strip.height) + gap
    return canvas


# -- dry run ------------------------------------------------------------------------------------
def describe_cells(cells: Sequence[Cell]) -> Iterator[list[str]]:
    """Rows (cell, rule, options, seed, status on disk) for a dry run."""
    for cell in cells:
        state = read_state(cell.run_dir)
        reason = _unfinished_reason(cell, state)
        if not reason:
            status = "done"
        elif state is not None and state.status == "done":
            status = f"done ({reason}): will resume"
        else:
            status = reason
        yield [cell.name, cell.rule, cell.options_label, str(cell.seed), status]
