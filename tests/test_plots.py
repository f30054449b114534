"""Plots: intervals drawn, one hue per series, legends inside the canvas, log axes where the
values span decades (numerics/report/plots.py).  Geometry is read back from matplotlib itself."""

from __future__ import annotations

import gc
import hashlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import matplotlib
import pytest
from matplotlib import rc_context
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure as MatplotlibFigure

import theory
from numerics.checks import (JUDGED, REPORTED, Context, Plot, Series, all_checks, measured_series, replicate_series,
                             run_check)
from numerics.report import plots
from numerics.verdicts import Measurement
from numerics.report.plots import (band_problems, clipped_texts, draw_figure, legend_inside, render_png, scale_note,
                                   spectral_weight_plot)
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


@pytest.mark.parametrize("values, scale", [([1e-6, 1e-3, 1.0], "log"), ([-1e-6, 2e-6, -3.0, 1e-5], "symlog"),
                                           ([-1e-4, -1e-2, -3.0], "symlog"), ([1.0, 5.0, 900.0], "linear"),
                                           ([0.0, 0.0], "linear"), ([-0.8, 1e-5, 0.45, -0.5], "linear")])
def test_values_spanning_decades_get_a_log_axis_and_the_caption_says_so(values, scale):
    plot = Plot("eigenvalues", "k", "lambda", [Series("measured", list(range(len(values))), values, "points")])
    figure, note = draw_figure(plot)
    assert figure.axes[0].get_yscale() == scale
    assert (note == "") == (scale == "linear") and note == scale_note(plot)


def test_values_scattered_about_zero_keep_a_linear_axis():
    """Positions such as breakpoints (-0.8 ... 0.8, one at 1e-5) are read on a linear axis: with mixed
    signs the span counts from the median magnitude (the breakpoint plot used to get a symlog axis)."""
    plot = Plot("breakpoints", "t", "x", [Series("b", [1, 2, 3, 4], [-0.8, 1e-5, 0.45, -0.5], "points")])
    assert draw_figure(plot)[0].axes[0].get_yscale() == "linear" and scale_note(plot) == ""


def test_a_requested_scale_is_kept():
    plot = Plot("p", "x", "y", [Series("m", [1, 2, 3], [1e-8, 1.0, 1e8])], yscale="linear")
    assert draw_figure(plot)[0].axes[0].get_yscale() == "log"  # linear is the default: decades decide
    plot.yscale = "symlog"
    assert draw_figure(plot)[0].axes[0].get_yscale() == "symlog"
    assert render_png(plot)[:8] == b"\x89PNG\r\n\x1a\n"


def test_replicate_bands_are_the_intervals_the_verdict_uses():
    """The band at each x is Measurement.mean of the replicates there (Student t), so a criterion
    judging the mean at the last x has exactly the interval drawn there; one replicate: no bar."""
    rows = [[1.0, 2.0, 4.0], [1.5, 2.5, 3.0], [0.5, 2.2, 3.5]]
    series = replicate_series("m", [1, 2, 3], rows)
    last = Measurement.mean([row[-1] for row in rows])
    assert series.y[-1] == last.estimate and (series.low[-1], series.high[-1]) == last.interval
    assert band_problems(Plot("p", "x", "y", [series])) == []
    single = measured_series("one seed", [1], [Measurement.mean([2.0])])
    assert single.low == [None] and single.high == [None]
    figure, _ = draw_figure(Plot("p", "x", "y", [single]))
    assert clipped_texts(figure) == []


@pytest.mark.parametrize("low, high, problem", [([0.9, 2.1], [1.1, 1.9], "not low <= y <= high"),
                                                ([0.9], [1.1], "lengths"), ([0.9, 1.5], None, "together")])
def test_malformed_bands_are_reported(low, high, problem):
    plot = Plot("p", "x", "y", [Series("s", [1, 2], [1.0, 2.0], "points", low=low, high=high)])
    assert any(problem in p for p in band_problems(plot))


def test_long_titles_wrap_and_long_tick_labels_widen_the_margin():
    """A title longer than the axes and the wide tick labels of a symlog axis stay inside the canvas
    (clipped_texts is the check the suite-wide test uses; it sees a title pushed outside)."""
    plot = Plot("a title that is much longer than the axes are wide, " * 3, "x", "y",
                [Series("s", [1, 2, 3], [-1e-9, 5e4, -3e6], "points")])
    figure, _ = draw_figure(plot)
    assert clipped_texts(figure) == []
    figure.axes[0].set_title("x" * 300)
    figure.canvas.draw()
    assert clipped_texts(figure) and clipped_texts(figure)[0].startswith("title")


def test_judged_and_reported_predictions_are_drawn_apart():
    """A judged prediction is black (dashed, or open markers); a reported one grey and dotted;
    two judged predictions in one figure get different dash patterns."""
    plot = Plot("p", "x", "y", [Series("m", [1, 2], [1.0, 2.0], "points"),
                                Series(f"a ({JUDGED})", [1, 2], [1.0, 1.0], "prediction"),
                                Series(f"b ({JUDGED})", [1, 2], [2.0, 2.0], "prediction"),
                                Series(f"c ({REPORTED})", [1, 2], [1.5, 1.5], "reported")])
    lines = {line.get_label(): line for line in draw_figure(plot)[0].axes[0].get_lines()}
    a, b, c = lines[f"a ({JUDGED})"], lines[f"b ({JUDGED})"], lines[f"c ({REPORTED})"]
    assert a.get_color() == b.get_color() == "black" and a.get_linestyle() != b.get_linestyle()
    assert c.get_color() != "black" and c.get_linestyle() == ":"


# ---------------------------------------------------------------- one measurement, one draw (issue 18)

#: figures that take each route of draw_figure: log and symlog axes (ticks in view only), a reported
#: curve that sets the y limit, a margin widened for long tick labels and a two-line title, a wide
#: figure with the legend outside, a y offset text ("+1e5") under a long title, linear indices; one
#: string at two sizes (the y label and a legend entry: "distance")
ROUTES = {
    "log-log": Plot("distance vs width", "n", "distance",
                    [Series("distance", [100, 1000, 1e4], [0.3, 0.1, 0.03], "points",
                            low=[0.2, 0.05, 0.02], high=[0.4, 0.15, 0.04]),
                     Series(f"n^-1/2 ({JUDGED})", [100, 1e4], [0.3, 0.03], "prediction")], xscale="log"),
    "log y, reported": Plot("ratios", "k", "ratio",
                            [Series("m", [1, 2, 3], [1e-6, 1e-3, 1.0]),
                             Series(f"r ({REPORTED})", [1, 2, 3], [1e-12, 1e-3, 2.0], "reported")]),
    "symlog, margins": Plot("a title that is much longer than the axes are wide, " * 3, "x", "y",
                            [Series("s", [1, 2, 3], [-1e-9, 5e4, -3e6], "points")]),
    "many series": many_series(7),
    "offset text": Plot("a title long enough to reach the offset text at the top left of the axes, " * 2, "x", "y",
                        [Series("s", [1, 2, 3], [100000.001, 100000.002, 100000.004])]),
    "indices": Plot("eigenvalues", "k", "lambda",
                    [Series("measured", list(range(8)), [0.5 * k for k in range(8)], "points")]),
}


def _full_draws(monkeypatch) -> list:
    calls = []
    original = MatplotlibFigure.draw
    monkeypatch.setattr(MatplotlibFigure, "draw",
                        lambda figure, renderer: calls.append(1) or original(figure, renderer))
    return calls


@pytest.mark.parametrize("name", ROUTES)
def test_each_figure_is_drawn_once_and_fits(name, monkeypatch):
    """Margins are measured before the one full draw (before issue 18: 1.48 draws per figure)."""
    calls = _full_draws(monkeypatch)
    figure, _ = draw_figure(ROUTES[name])
    assert len(calls) == 1
    assert clipped_texts(figure) == [] and legend_inside(figure)


def test_the_shortcuts_draw_the_pixels_of_matplotlib_s_own_route(monkeypatch):
    """Ticks in view only, each axis's tick layout kept, the legend laid out once, glyph layouts,
    glyph bitmaps, text layouts and math-text parses kept across figures, one figure per size
    cleared for each plot with its ticks kept (plots._InView, plots._AxisLayout,
    plots._legend_laid_out_once, plots._TextLayoutCache, plots._OneAtATime, plots._blank_figure)
    are pure speed: without them, matplotlib's locators, tick and legend layout, text layout and
    drawing, parser and new figures give the same PNG bytes."""
    for plot in ROUTES.values():  # every string's glyph layout kept: the next round draws from the cache
        render_png(plot)
    fast = {name: render_png(plot) for name, plot in ROUTES.items()}
    for owner, name, value in plots.own_route():
        monkeypatch.setattr(owner, name, value)
    assert {name: render_png(plot) for name, plot in ROUTES.items()} == fast


def test_a_kept_text_layout_is_matplotlib_s_after_any_change_of_the_text():
    """plots._TextLayoutCache.text_layout keys a layout by everything matplotlib's Text._get_layout
    reads: one text changed property by property (each change moves its box or lines) gets
    matplotlib's own layout every time, in a renderer that has kept all the earlier ones."""
    figure, axes = plots._new_figure(plots.FIGURE_SIZE)
    renderer = figure.canvas.get_renderer()
    changes = [{}, {"text": "two lines,\nthe second one longer"}, {"fontsize": 13}, {"rotation": 90},
               {"rotation": 30}, {"rotation_mode": "anchor"}, {"ha": "right"}, {"va": "top"}, {"linespacing": 2.0},
               {"multialignment": "center"}, {"ha": "left"}, {"fontweight": "bold"}, {"fontfamily": "serif"},
               {"text": "$10^{-3}$"}, {"parse_math": False}, {"text": ""}]
    for round_ in range(2):  # the second round from kept layouts
        text = axes.text(0.5, 0.5, "x")
        for change in changes:
            text.update(change)
            kept, own = plots._text_layout(text, renderer), plots._matplotlib_text_layout(text, renderer)
            assert kept[0].bounds == own[0].bounds and kept[1:] == own[1:], (round_, change)


#: digests of the private matplotlib code the shortcuts in plots.py read or copy (matplotlib 3.11.2)
PRIVATE_MATPLOTLIB = {
    # what plots._TextLayoutCache.text_layout keys a kept layout by is what this reads
    "Text._get_layout": "4c79896b10ada776",
    # plots._ticks_kept sets the attribute this sets
    "Artist.set_clip_box": "ac5d81ba798afe4a",
    # plots._AxisLayout keeps ticks while the view and tick space stay: ticks are placed in data
    # coordinates and locators read the axes' size through the tick space only
    "Axis._update_ticks": "122a695355d09d27",
    "XAxis.get_tick_space": "8756c9f2efc559de",
    "YAxis.get_tick_space": "aa64ac23a14d6d7a",
    "matplotlib.ticker": "49d4586a18a44883",
    # plots._TextLayoutCache._draw_text_glyphs_and_boxes is this with kept bitmaps
    "RendererAgg._draw_text_glyphs_and_boxes": "ccc4749c98095394",
}


def test_the_private_matplotlib_code_the_shortcuts_rely_on_is_unchanged():
    """Fails when matplotlib's code that plots.py relies on beyond its public API has changed in a
    version the shortcuts are on for (plots.REVIEWED_MATPLOTLIB): check what the comment at each entry
    says against the new code, then update the digest.  Other versions draw by matplotlib's own route."""
    if not plots.SHORTCUTS:
        pytest.skip(f"matplotlib {matplotlib.__version__} is not reviewed: plots.py takes matplotlib's own route")
    import hashlib
    import inspect

    import matplotlib.axis
    import matplotlib.ticker
    from matplotlib.artist import Artist

    code = {"Text._get_layout": plots._matplotlib_text_layout, "Artist.set_clip_box": Artist.set_clip_box,
            "Axis._update_ticks": matplotlib.axis.Axis._update_ticks,
            "XAxis.get_tick_space": matplotlib.axis.XAxis.get_tick_space,
            "YAxis.get_tick_space": matplotlib.axis.YAxis.get_tick_space, "matplotlib.ticker": matplotlib.ticker,
            "RendererAgg._draw_text_glyphs_and_boxes": RendererAgg._draw_text_glyphs_and_boxes}
    digests = {name: hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16] for name, obj in code.items()}
    assert digests == PRIVATE_MATPLOTLIB


def test_drawing_leaves_the_cycle_collector_as_it_was():
    """render_png pauses Python's cycle collector while it draws, and leaves it on or off as it found it."""
    assert gc.isenabled()
    render_png(ROUTES["log-log"])
    assert gc.isenabled()
    gc.disable()
    try:
        render_png(ROUTES["log-log"])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_title_clears_a_y_offset_text():
    """With the title at a fixed height, draw_figure lifts it over the y axis's offset text as matplotlib
    would (its baseline on the offset text's top), and a margin widened afterwards keeps the gap."""
    figure, _ = draw_figure(ROUTES["offset text"])
    axes, renderer = figure.axes[0], figure.canvas.get_renderer()
    assert axes.yaxis.offsetText.get_text() == "+1e5"
    offset, title = axes.yaxis.offsetText.get_window_extent(renderer), axes.title.get_window_extent(renderer)
    assert title.y0 > offset.y1 and clipped_texts(figure) == []


def test_a_figure_does_not_depend_on_what_was_drawn_before():
    """Renderers and glyph layouts are shared by the figures of a process (plots._SharedRendererCanvas):
    a figure drawn after others has the bytes of the same figure drawn first."""
    first = {name: render_png(plot) for name, plot in ROUTES.items()}
    assert {name: render_png(plot) for name, plot in reversed(ROUTES.items())} == first


def test_a_plot_that_cannot_be_drawn_leaves_nothing_behind():
    """The kept figure (plots._blank_figure) is cleared for the next plot even when drawing stopped
    half way (x and y of other lengths: matplotlib raises after the first series was added)."""
    first = {name: render_png(plot) for name, plot in ROUTES.items()}
    broken = Plot("broken", "x", "y", [Series("fine", [1, 2], [1.0, 2.0]), Series("bad", [1, 2, 3], [1.0, 2.0])])
    for name, plot in ROUTES.items():
        with pytest.raises(ValueError):
            render_png(broken)
        assert render_png(plot) == first[name]


def test_a_changed_matplotlib_setting_gets_a_new_figure(monkeypatch):
    """The kept figure and its ticks (plots._blank_figure) took matplotlib's settings of when they were
    made: under other settings (longer, thicker ticks) a plot is drawn as on a new figure."""
    for plot in ROUTES.values():
        render_png(plot)
    with rc_context({"xtick.major.size": 7, "ytick.minor.width": 2, "xtick.labelsize": 9}):
        kept = {name: render_png(plot) for name, plot in ROUTES.items()}
        monkeypatch.setattr(plots, "_blank_figure", plots._new_figure)
        assert {name: render_png(plot) for name, plot in ROUTES.items()} == kept
    monkeypatch.undo()
    assert render_png(ROUTES["log-log"]) != kept["log-log"]


def test_figures_drawn_in_threads_at_once_are_those_drawn_one_by_one():
    """Threads (the Dask executor's workers) draw with a renderer each and parse math text one at a
    time: matplotlib's math-text parser is one object per process, and without the lock these 16
    log axes (tick labels 10^-12 ... 10^11) failed to parse in 5 of 5 runs."""
    decades = [Plot("d", "n", "d", [Series("m", [10.0 ** k, 10.0 ** (k + 3)], [10.0 ** -k, 10.0 ** (-k - 4)])],
                    xscale="log") for k in range(-8, 8)]
    alone = [render_png(plot) for plot in decades]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(render_png, decades)) == alone


# ---------------------------------------------------------------- every check's figures (issue 19)

#: every check at small sizes, each plot kind it draws at least once: (check, activation, options)
SMALL_RUNS = [
    ("transform", "relu", {}),
    ("fd-theorems", "relu", {"trials": "12"}),
    ("fd-sampling", "relu", {"architecture": "1-4-1", "draws": "30", "scale": "1.0"}),
    pytest.param("fd-training", "relu", {"architecture": "16-4-4-10", "seeds": "5", "n_train": "30",
                                         "n_test": "30", "epochs": "0,10"},
                 marks=pytest.mark.slow),  # ~15 s: F10 and F11 run at fixed sizes
    ("stable-rank", "relu", {"T": "300", "seeds": "3"}),             # mask limit (no attractor)
    ("stable-rank", "leaky_relu", {"T": "300", "seeds": "3"}),       # rank-one attractor: the rate plot too
    ("margins", "relu", {"T": "300", "seeds": "3"}),
    ("one-step-collapse", "leaky_relu", {"T": "300", "seeds": "3"}),
    ("rank-conditions", "relu", {"T": "300", "seeds": "3"}),
    ("kernel-fit-1d", "relu", {"widths": "200,400,800", "seeds": "2", "spacing": "0.05"}),
    ("kernel-fit-2d", "relu", {"widths": "200,400", "seeds": "2", "spacing": "0.3"}),
    ("kernel-training", "tanh", {"widths": "50,100", "seeds": "2", "steps": "20", "spacing": "0.05"}),
    ("kernel-rate", "relu", {"width": "2000", "seeds": "2"}),
    ("activation-specificity", "relu", {"activations": "tanh", "width": "2000", "seeds": "2", "spacing": "0.05"}),
    ("design-round-trip", "relu", {"width": "2000", "seeds": "2"}),
    ("pinning", "relu", {"steps": "500", "seeds": "3", "width": "50"}),   # hard pinning
    ("pinning", "tanh", {"field_steps": "500"}),                           # soft pinning
    ("zero-plane-clusters", "relu", {"steps": "500", "seeds": "3", "width": "50"}),
    ("attractor-stability", "relu", {"steps": "6000", "seeds": "3", "field_steps": "500"}),  # fixed points reached
    ("digits-zero-planes", "relu", {"images": "30", "width": "30", "steps": "300", "seeds": "2"}),
]


@lru_cache(maxsize=None)
def small_run(check: str, name: str, options: tuple):
    return run_check(all_checks()[check], theory.activation(name), Context(options=dict(options)))


def _values(run) -> tuple:
    return run.values if hasattr(run, "values") else run


def _options(check: str, name: str) -> dict:
    return next(_values(run)[2] for run in SMALL_RUNS if _values(run)[:2] == (check, name))


def test_the_small_runs_cover_every_check():
    assert {_values(run)[0] for run in SMALL_RUNS} == set(all_checks())


@pytest.mark.parametrize("check, name, options", SMALL_RUNS,
                         ids=[f"{_values(run)[0]}-{_values(run)[1]}" for run in SMALL_RUNS])
def test_every_figure_of_every_check_fits_its_canvas_with_consistent_bands(check, name, options):
    """Each figure drawn: legend, title, axis and tick labels inside the canvas; every interval
    low <= mean <= high; a judged prediction drawn as one and labelled so, a reported one never in
    the judged style; every band the check draws from the seeds of a judged criterion."""
    result = small_run(check, name, tuple(options.items()))
    assert result.verdict != "error", result.reason
    assert result.plots, f"{check} on {name} drew no figure"
    for plot in result.plots:
        assert band_problems(plot) == [], plot.title
        figure, _ = draw_figure(plot)
        assert clipped_texts(figure) == [], plot.title
        for series in plot.series:
            judged_style = series.style in ("prediction", "prediction-points")
            assert judged_style == (f"({JUDGED}" in series.label), (plot.title, series.label)
            assert (series.style == "reported") <= (REPORTED in series.label), (plot.title, series.label)


@pytest.mark.parametrize("check, name, titles", [
    ("stable-rank", "leaky_relu", ("Stable rank / predicted limit", "Per-class sr - 1 vs mean margin")),
    ("attractor-stability", "relu", ("Planes placed next to", "Pinned fixed points")),
    ("pinning", "relu", ("Breakpoints over training", "P10 and P11")),
    ("pinning", "tanh", ("Soft pinning", "Stable equilibria vs sharpness")),
    ("kernel-fit-2d", "relu", ("relu in 2D", "relu: distance vs width")),
])
def test_the_small_runs_draw_every_kind_of_figure(check, name, titles):
    """The figures a check draws only in some cases (an attractor, a reached fixed point, hard or soft
    pinning, 2D data) are among those the test above checks."""
    drawn = [p.title for p in small_run(check, name, tuple(_options(check, name).items())).plots]
    assert [any(t.startswith(title) for t in drawn) for title in titles] == [True] * len(titles), drawn


@pytest.mark.parametrize("check, name, options, title, label, criterion, x", [
    ("kernel-fit-1d", "relu", _options("kernel-fit-1d", "relu"), "relu: distance vs width", "to the exact prediction",
     "random features (n = 800) -> exact", 800),
    ("kernel-training", "tanh", _options("kernel-training", "tanh"), "tanh: training vs predictions",
     "to the exact infinite-width", "trained network", 100),
    ("kernel-rate", "relu", _options("kernel-rate", "relu"), "relu: decay-rate ratios", "networks",
     "rate(2)/rate(1) vs the exact", 2),
    ("activation-specificity", "relu", _options("activation-specificity", "relu"), "separation margins", "relu network",
     "relu network: closer to its own prediction than to tanh", 1),
])
def test_the_band_at_a_judged_point_is_that_criterion_s_interval(check, name, options, title, label, criterion, x):
    """Not a second computation: the plotted mean and interval at the judged x are the criterion's."""
    result = small_run(check, name, tuple(options.items()))
    plot = next(p for p in result.plots if p.title.startswith(title))
    series = next(s for s in plot.series if s.label.startswith(label))
    judged = next(c for c in result.criteria if c.name.startswith(criterion)).measurement
    at = series.x.index(x)
    assert (series.y[at], series.low[at], series.high[at]) == (judged.estimate, *judged.interval)


def test_an_unreviewed_matplotlib_draws_by_its_own_route():
    """With a matplotlib version not in plots.REVIEWED_MATPLOTLIB every shortcut is off at import
    (plots.own_route), and the figure is the one the shortcuts draw (a fresh process: the version
    is read when plots is imported)."""
    script = (
        "import hashlib, matplotlib\n"
        "matplotlib.__version__ = '0.0.unreviewed'\n"
        "from numerics.report import plots\n"
        "from matplotlib.text import Text\n"
        "assert not plots.SHORTCUTS and plots._blank_figure is plots._new_figure and plots._LAYOUT_METHODS == {}\n"
        "assert Text._get_layout is plots._matplotlib_text_layout\n"
        "import tests.test_plots as t\n"
        "print(hashlib.sha256(plots.render_png(t.ROUTES['log-log'])).hexdigest())\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == hashlib.sha256(render_png(ROUTES["log-log"])).hexdigest()
