"""The sweep's FID plot: a matplotlib figure with one line, band and legend entry per
configuration."""

import pytest

from fwp.gan.sweep import CellResult, fid_series, plot_fid_curves
from fwp.gan.sweep.plots import PALETTE


def _curve(name, configuration, seed, curve):
    return CellResult(name, configuration, configuration, "", seed, "done", fid_curve=curve)


def test_every_configuration_has_its_line_band_and_legend_entry():
    results = [
        _curve("delta-seed0", "delta", 0, [(2, 100.0), (4, 80.0)]),
        _curve("delta-seed1", "delta", 1, [(2, 120.0), (4, 90.0)]),
        _curve("hebb-seed0", "hebb", 0, [(2, 60.0), (4, 70.0)]),
        _curve("oja-seed0", "oja", 0, [(4, 50.0)]),
    ]
    figure = plot_fid_curves(fid_series(results))
    (axes,) = figure.axes
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["delta (2 seeds)", "hebb (1 seed)", "oja (1 seed)"]
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert list(lines) == labels
    assert list(lines["delta (2 seeds)"].get_xdata()) == [2, 4]
    assert list(lines["delta (2 seeds)"].get_ydata()) == [110.0, 85.0]  # the mean over seeds
    assert list(lines["oja (1 seed)"].get_ydata()) == [50.0]
    colours = [tuple(round(c * 255) for c in line.get_color()) for line in lines.values()]
    assert colours == PALETTE[:3]
    # only delta has two seeds: one band (+-std), none for single-seed configurations
    (band,) = axes.collections
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert low == pytest.approx(85.0 - 7.0710678) and high == pytest.approx(110.0 + 14.142136)


def test_a_sweep_without_fid_gets_a_plot_that_says_so():
    figure = plot_fid_curves([])
    (axes,) = figure.axes
    assert axes.get_legend() is None and axes.get_lines() == []
    assert any("no FID recorded" in text.get_text() for text in axes.texts)
