"""The sweep's report, rebuilt from what is on disk: results.csv and results.md (one row per cell,
then mean and std per configuration over seeds), fid_curves.csv and fid_curves.png (FID against
step per configuration), paintings.png (a sample grid and a painting strip per configuration)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..files import atomic_write_text
from ..progress import format_seconds
from ..tables import markdown_escape, markdown_table
from .plots import draw_paintings, fid_series, plot_fid_curves, save_figure, save_image
from .results import METRICS, CellResult, ConfigSummary, collect_results, summarize
from .state import CELL_FILE, LOG_FILE, STATUSES

__all__ = [
    "CSV_COLUMNS",
    "FID_CSV",
    "FID_PNG",
    "PAINTINGS_PNG",
    "RESULTS_CSV",
    "RESULTS_MD",
    "ReportFiles",
    "write_report",
]

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
FID_CSV = "fid_curves.csv"
FID_PNG = "fid_curves.png"
PAINTINGS_PNG = "paintings.png"

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


@dataclass
class ReportFiles:
    """The paths :func:`write_report` wrote, and what it read."""

    csv: Path
    markdown: Path
    fid_data: Path
    fid_plot: Path
    paintings: Path
    results: list[CellResult]
    summaries: list[ConfigSummary]


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return ""
    if metric == "parameters":
        return f"{round(value):,}"
    if metric == "steps":
        return str(round(value))
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


def _csv_text(header: Sequence[str], rows: Sequence[dict[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _results_csv(results: list[CellResult], summaries: list[ConfigSummary]) -> str:
    rows: list[dict[str, object]] = [
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
        for r in results
    ]
    for s in summaries:
        for kind, values in (("mean", s.mean), ("std", s.std)):
            rows.append(
                {
                    "row": kind,
                    "configuration": s.configuration,
                    "rule": s.rule,
                    "options": s.options,
                    "seeds": s.finished,
                    **{m: _csv_number(values[m]) for m in METRICS},
                }
            )
    return _csv_text(CSV_COLUMNS, rows)


def _fid_csv(results: list[CellResult]) -> str:
    """The data of fid_curves.png, to plot in another way: one row per configuration and step."""
    rows = [
        {
            "configuration": s.label,
            "step": step,
            "fid_mean": _csv_number(mean),
            "fid_std": _csv_number(std),
            "seeds": s.seeds,
        }
        for s in fid_series(results)
        for step, mean, std in zip(s.steps, s.mean, s.std, strict=True)
    ]
    return _csv_text(["configuration", "step", "fid_mean", "fid_std", "seeds"], rows)


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
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    shown = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
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
    headers = [METRIC_HEADERS[m] for m in METRICS]
    lines += markdown_table(["configuration", "rule", "options", "seeds done", *headers], rows)
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
    lines += markdown_table(["cell", "status", "rule", "options", "seed", *headers], rows)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        lines += ["", "## Failed cells", ""]
        lines += [
            f"- `{r.name}`: {markdown_escape(r.error)} (see `{r.name}/{CELL_FILE}` and "
            f"`{r.name}/{LOG_FILE}`)"
            for r in failed
        ]
    lines += [
        "",
        "## FID during training",
        "",
        f"![FID against training step]({FID_PNG}) (data: `{FID_CSV}`)",
        "",
        "## Samples and painting strips",
        "",
        f"![A sample grid and a painting strip per configuration]({PAINTINGS_PNG})",
        "",
    ]
    return "\n".join(lines)


def write_report(sweep_dir: str | Path) -> ReportFiles:
    """Rebuild the report files of ``sweep_dir`` from what is on disk.

    Raises:
        ConfigError: ``sweep_dir`` holds no cell (no ``*/cell.json``), or a sweep file there is
            unusable (:class:`~fwp.gan.sweep.records.SweepFileError`).
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
        sweep_dir / FID_CSV,
        sweep_dir / FID_PNG,
        sweep_dir / PAINTINGS_PNG,
        results,
        summaries,
    )
    atomic_write_text(_results_csv(results, summaries), files.csv)
    atomic_write_text(_markdown(sweep_dir.resolve().name, results, summaries), files.markdown)
    atomic_write_text(_fid_csv(results), files.fid_data)
    save_figure(plot_fid_curves(fid_series(results)), files.fid_plot)
    save_image(draw_paintings(results), files.paintings)
    return files
