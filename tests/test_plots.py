"""Plots: intervals drawn, one hue per series, legends inside the canvas, log axes where the
values span decades (numerics/report/plots.py).  Geometry is read back from matplotlib itself."""

from __future__ import annotations

import pytest
from matplotlib.collections import LineCollection, PolyCollection

import theory
from numerics.checks import Plot, Series
from numerics.report.plots import draw_figure, legend_inside, render_png, scale_note, spectral_weight_plot
from numerics.theory_checks import weight_curve

LONG = "a very long activation label such as 0.5*elu(x/3 - 2) + x/(1 + abs(x))"


def many_series(count: int, label: str = LONG) -> Plot:
    return Plot("many", "x", "y", [Series(f"{label} {i}", [0, 1, 2], [i, i + 1, i + 2]) for i in range(count)])


@pytest.mark.parametrize("plot", [many_series(7), many_series(16), many_series(16, "short"), many_series(3),
                                  many_series(20, LONG * 2)], ids=["7 long", "16 long", "16 short", "3", "20 huge"])
def test_the_legend_lies_inside_the_canvas(plot):
    figure, _ = draw_figure(plot)
    assert legend_inside(figure)


def test_the_spectral_weight_overlay_of_every_builtin_fits_and_has_one_hue_per_activation():
    curves = {name: weight_curve(theory.activation(name)) for name in theory.builtin_names()}
    plot = spectral_weight_plot({k: v for k, v in curves.items() if v})
    figure, _ = draw_figure(plot)
    assert legend_inside(figure)
    colors = [line.get_color() for line in figure.axes[0].get_lines()]
    assert len(colors) == len(plot.series) and len(set(colors)) == len(colors)


def test_intervals_are_drawn_as_bars_on_points_and_bands_on_lines():
    points = Plot("p", "x", "y", [Series("m", [1, 2], [1.0, 2.0], "points", low=[0.8, 1.7], high=[1.1, 2.4])])
    line = Plot("l", "x", "y", [Series("m", [1, 2], [1.0, 2.0], "line", low=[0.8, 1.7], high=[1.1, 2.4])])
    bars = [c for c in draw_figure(points)[0].axes[0].collections if isinstance(c, LineCollection)]
    assert len(bars) == 1 and len(bars[0].get_segments()) == 2
    (low_bar, high_bar) = sorted(bars[0].get_segments(), key=lambda s: s[0][0])
    assert low_bar[:, 1].tolist() == pytest.approx([0.8, 1.1]) and high_bar[:, 1].tolist() == pytest.approx([1.7, 2.4])
    bands = [c for c in draw_figure(line)[0].axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1


@pytest.mark.parametrize("values, scale", [([1e-6, 1e-3, 1.0], "log"), ([-1e-6, 1e-2, -3.0], "symlog"),
                                           ([1.0, 5.0, 900.0], "linear"), ([0.0, 0.0], "linear")])
def test_values_spanning_decades_get_a_log_axis_and_the_caption_says_so(values, scale):
    plot = Plot("eigenvalues", "k", "lambda", [Series("measured", list(range(len(values))), values, "points")])
    figure, note = draw_figure(plot)
    assert figure.axes[0].get_yscale() == scale
    assert (note == "") == (scale == "linear") and note == scale_note(plot)


def test_a_requested_scale_is_kept():
    plot = Plot("p", "x", "y", [Series("m", [1, 2, 3], [1e-8, 1.0, 1e8])], yscale="linear")
    assert draw_figure(plot)[0].axes[0].get_yscale() == "log"  # linear is the default: decades decide
    plot.yscale = "symlog"
    assert draw_figure(plot)[0].axes[0].get_yscale() == "symlog"
    assert render_png(plot)[:8] == b"\x89PNG\r\n\x1a\n"
