"""The results of a sweep, read from whatever is on disk: one :class:`CellResult` per cell folder
(any status), and per configuration the mean and standard deviation over its finished seeds."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..metrics_log import read_metrics
from ..rundir import RunDir
from .grid import settings_label
from .records import csv_number
from .state import CELL_FILE, ask_slurm_about, cell_status, read_state
from .store import read_sweep

__all__ = [
    "METRICS",
    "CellResult",
    "ConfigSummary",
    "cell_folders",
    "collect_results",
    "count_parameters",
    "summarize",
]

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


@dataclass
class CellResult:
    """One cell's results, read from its run directory; ``error`` is its error's headline."""

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


def count_parameters(config: TrainConfig) -> int | None:
    """The generator's parameter count of ``config`` (``None`` when it cannot be built)."""
    try:
        from fwp.painters import count_parameters as count

        from ..generators import build_generator

        return count(build_generator(config))
    except Exception:  # a report without a parameter count is better than no report
        return None


def cell_folders(sweep_dir: Path) -> list[Path]:
    """The cell folders of a sweep: those named in sweep.json first (grid order), then others."""
    found = {path.parent.name: path.parent for path in sweep_dir.glob(f"*/{CELL_FILE}")}
    stored = read_sweep(sweep_dir)
    order = stored.cells if stored is not None else []
    names = [name for name in order if name in found]
    names += sorted(set(found) - set(names))
    return [found[name] for name in names]


def _cell_result(run_dir: Path) -> CellResult | None:
    state = read_state(run_dir)
    if state is None:
        return None
    result = CellResult(
        name=state.name,
        configuration=state.configuration,
        rule=state.rule,
        options=settings_label(state.settings),
        seed=state.seed,
        status=cell_status(state),
        parameters=state.parameters,
        wall_s=state.wall_s or None,
        error=state.error.headline() if state.error is not None else "",
        budget=dict(state.budget),
    )
    run = RunDir(run_dir)
    rows = read_metrics(run.metrics_file)
    if rows:
        result.steps = max(int(row["step"]) for row in rows)
        speeds = [v for v in (csv_number(row.get("img_per_s")) for row in rows) if v is not None]
        if speeds:
            result.img_per_s = statistics.median(speeds)
        scored = [
            (int(row["step"]), fid, csv_number(row.get("kid")))
            for row in rows
            if (fid := csv_number(row.get("fid"))) is not None
        ]
        if scored:
            result.fid_curve = [(step, fid) for step, fid, _ in scored]
            _, result.final_fid, result.final_kid = scored[-1]
            _, result.best_fid, result.best_kid = min(scored, key=lambda item: item[1])
    if result.parameters is None and run.is_run():
        try:
            config = run.read_config()
        except ValueError:  # an unreadable config.json: the report goes on without the count
            config = None
        result.parameters = count_parameters(config) if config is not None else None
    result.samples = run.latest_sample("samples")
    result.strip = run.latest_sample("strip")
    return result


def collect_results(sweep_dir: str | Path) -> list[CellResult]:
    """Every cell found on disk under ``sweep_dir`` (any status), in grid order."""
    folders = cell_folders(Path(sweep_dir))
    ask_slurm_about(read_state(path) for path in folders)  # one squeue call for all cells
    results = [_cell_result(path) for path in folders]
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
