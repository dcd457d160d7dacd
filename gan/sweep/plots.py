"""The sweep's pictures: FID against training step per configuration (matplotlib, Agg) and a
sample grid beside a painting strip per configuration (composed with PIL)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from ..files import atomic_write
from .results import CellResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FID_PLOT_SIZE",
    "PALETTE",
    "FidSeries",
    "draw_paintings",
    "fid_series",
    "plot_fid_curves",
    "save_figure",
    "save_image",
]

#: one colour per configuration, in order (matplotlib's "tab10"), as 8-bit RGB
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
#: the FID plot's size in pixels (width, height)
FID_PLOT_SIZE = (960, 560)
_DPI = 100


@dataclass
class FidSeries:
    """One configuration's FID curve: mean and standard deviation over seeds at each step."""

    label: str
    steps: list[int]
    mean: list[float]
    std: list[float]
    seeds: int

    @property
    def legend(self) -> str:
        """The configuration and how many seeds its curve averages."""
        return f"{self.label} ({self.seeds} seed{'s' * (self.seeds != 1)})"


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


def plot_fid_curves(series: Sequence[FidSeries]) -> Figure:
    """FID against training step: per configuration, a line of the mean over seeds and a band of
    +-std over seeds. Without FID data the figure says so (it needs ``run.fid_every``)."""
    from matplotlib.figure import Figure

    width, height = FID_PLOT_SIZE
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title("FID against training step (mean over seeds, band: ± std)")
    axes.set_xlabel("training step")
    axes.set_ylabel("FID")
    if not series:
        axes.text(
            0.5,
            0.5,
            "no FID recorded: set --fid-every (run.fid_every) to evaluate FID in training",
            transform=axes.transAxes,
            ha="center",
            va="center",
            color="0.35",
        )
        axes.set_xticks([])
        axes.set_yticks([])
        return figure
    for index, curve in enumerate(series):
        colour = tuple(c / 255 for c in PALETTE[index % len(PALETTE)])
        axes.plot(
            curve.steps,
            curve.mean,
            color=colour,
            linewidth=2,
            marker="o",
            markersize=5,
            label=curve.legend,
        )
        lower = [m - s for m, s in zip(curve.mean, curve.std, strict=True)]
        upper = [m + s for m, s in zip(curve.mean, curve.std, strict=True)]
        if len(curve.steps) > 1 and any(curve.std):
            axes.fill_between(curve.steps, lower, upper, color=colour, alpha=0.2, linewidth=0)
        elif any(curve.std):  # one step: an error bar instead of a band
            axes.vlines(curve.steps, lower, upper, color=colour, linewidth=1)
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Save a matplotlib figure as PNG, atomically (rendered with Agg: no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png"))


def save_image(image: Image.Image, path: Path) -> Path:
    """Save a PIL image as PNG, atomically."""
    return atomic_write(path, lambda handle: image.save(handle, format="PNG"))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed-size bitmap font
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


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
        label = configuration
        if chosen.samples is not None:
            step = int(chosen.samples.stem.rsplit("_", 1)[-1])
            label += f"  (seed {chosen.seed}, step {step})"
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
    label_h, header_h = 22, 36
    width = (
        max(
            max(g.width + gap + s.width for _, g, s in rows),
            max(_text_width(probe, label, font) for label, _, _ in rows),
            560,
        )
        + 2 * gap
    )
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
