"""Drawing :class:`~numerics.checks.Plot` data with matplotlib (Agg, no display needed).

Plots are data that checks provide; this module only draws them.  :func:`spectral_weight_plot`
assembles the one cross-activation figure, the overlaid :math:`W(\\omega)` curves, from the
``spectral_weight_curve`` each ``transform`` result carries.

A suite draws a few hundred figures, so each is measured once (its margins) and drawn once, on
one figure per size and thread, cleared for each plot with its ticks kept, with one Agg renderer
per size and thread (matplotlib caches text extents per renderer; this one also keeps text
layouts, glyph layouts, glyph bitmaps and math-text parses), only the ticks in view on log axes,
each axis's ticks (while the tick space stays) and the legend laid out once, and Python's cycle
collector paused while drawing: the same PNG bytes as matplotlib's plain route
(tests/test_plots.py compares them) at under a third of its CPU (benchmarks/bench_figures.py).
The shortcuts read some private matplotlib code, reviewed for the versions in
:data:`REVIEWED_MATPLOTLIB` (tests/test_plots.py fails when that code changes); any other matplotlib
draws by its own route (:func:`own_route`), slower and the same.
"""

from __future__ import annotations

import functools
import gc
import io
import math
import sys
import textwrap
import threading
from contextlib import contextmanager, nullcontext

import numpy as np
import matplotlib
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.figure import Figure
from matplotlib.ft2font import RenderMode
from matplotlib.offsetbox import OffsetBox
from matplotlib.text import Text
from matplotlib.ticker import Locator, LogFormatterSciNotation, MaxNLocator
from PIL import Image

from numerics.checks import Plot, Series

#: figure size (inches) and resolution: 5-30 kB per palette PNG, readable on a laptop screen
FIGURE_SIZE = (6.4, 3.8)
WIDE_FIGURE_SIZE = (8.4, 4.2)
DPI = 100
PALETTE_COLORS = 256
#: a qualitative palette of distinct hues (Kelly's colours of maximum contrast, white and black
#: left out), one per series: no two curves share a hue up to 20 series
QUALITATIVE = ("#0067A5", "#F38400", "#008856", "#BE0032", "#875692", "#C2B280", "#848482", "#E68FAC",
               "#F3C300", "#604E97", "#F99379", "#882D17", "#8DB600", "#B3446C", "#2B3D26", "#A1CAF1",
               "#654522", "#E25822", "#DCD300", "#F6A600")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")
_STYLES = {  # Series.style -> matplotlib keyword arguments
    "line": {"linestyle": "-"},
    "dashed": {"linestyle": "--"},
    "points": {"linestyle": "none", "marker": "o", "markersize": 4},
    "step": {"linestyle": "-", "drawstyle": "steps-post"},
    # the judged prediction: black, dashed (a function or a constant over the whole range) or open
    # diamonds (values judged at a few points only), drawn over the measurements; reported-only: grey, dotted
    "prediction": {"linestyle": "--", "color": "black", "linewidth": 1.6, "zorder": 3},
    "prediction-points": {"linestyle": "none", "color": "black", "marker": "D", "markersize": 6,
                          "markerfacecolor": "none", "zorder": 3},
    "reported": {"linestyle": ":", "color": "#8c8c8c", "linewidth": 1.2, "marker": "x", "markersize": 5},
}
#: dash patterns of successive judged predictions in one plot (all black)
_PREDICTION_DASHES = ("--", "-.", (0, (1, 1.5)), (0, (6, 1.5, 1, 1.5, 1, 1.5)))
_PREDICTION_MARKERS = ("D", "s", "^", "v", "p")
#: styles whose colour is fixed (they take no hue of the palette)
_FIXED = ("prediction", "prediction-points", "reported")
#: more series than this: a wide figure with the legend to the right of the axes
MANY_SERIES = 5
#: a legend label longer than this is cut (the full label is in report.json)
LABEL_WIDTH = 50
#: titles are wrapped at this many characters (one line is about 80 at the default size)
TITLE_WIDTH = 72
#: title font size (points)
TITLE_SIZE = 11
#: values spanning more decades than this get a log (or symmetric log) axis
DECADES_FOR_LOG = 3


def _numbers(values) -> list[float]:
    """Floats from JSON data: None and strings such as "nan" or "inf" become their float (or nan)."""
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _scaled_values(plot: Plot) -> list[float]:
    """The finite nonzero y values the axis is fitted to: those of every series but the reported-only
    predictions (where there are others), which must not stretch the axis of the judged comparison."""
    shown = [s for s in plot.series if s.style != "reported"] or plot.series
    return [v for s in shown for v in _numbers(s.y) if math.isfinite(v) and v != 0]


def _automatic_scale(plot: Plot) -> tuple[str, str]:
    """The y scale to draw with and why: a linear axis whose values span more than
    :data:`DECADES_FOR_LOG` decades becomes log (all positive) or symlog (otherwise).  With mixed
    signs the span is counted from the median magnitude, not the smallest: values scattered about
    0 (positions, differences) read best on a linear axis."""
    if plot.yscale != "linear":
        return plot.yscale, ""
    values = _scaled_values(plot)
    sizes = sorted(abs(v) for v in values)
    if len(sizes) < 2:
        return "linear", ""
    positive = all(v > 0 for v in values)
    smallest = sizes[0] if positive or all(v < 0 for v in values) else sizes[len(sizes) // 2]
    if sizes[-1] / smallest <= 10 ** DECADES_FOR_LOG:
        return "linear", ""
    decades = math.log10(sizes[-1] / sizes[0])
    return ("log" if positive else "symlog"), f"(y on a {'log' if positive else 'symmetric log'} " \
        f"axis: the values span {decades:.0f} decades)"


def _linear_threshold(plot: Plot) -> float:
    """The symlog axis's linear range: the smallest magnitude drawn, at most 8 decades below the largest."""
    sizes = [abs(v) for v in _scaled_values(plot)] or [1.0]
    return 10.0 ** math.floor(math.log10(max(min(sizes), max(sizes) * 1e-8)))


def _cut_label(label: str) -> str:
    return label if len(label) <= LABEL_WIDTH else label[: LABEL_WIDTH - 1] + "\u2026"


_MATH_TEXT = threading.Lock()


class _OneAtATime:
    """A math-text parser that parses in one thread at a time and keeps every parse.

    Matplotlib's parser is one object shared by the process (two threads parsing at once break
    each other's parse), and it keeps the last 50 parses: fewer than a suite's log-axis tick
    labels at their sizes, so it parsed most of them again in every figure.  A parse is kept
    under what matplotlib keys its own by: the string, resolution, a copy of the font
    properties, antialiasing and hinting."""

    #: the most parses kept (then it starts over)
    MOST = 5000

    def __init__(self, parser):
        self.parser, self.parses = parser, {}

    def parse(self, s, dpi=72, prop=None, *, antialiased=None):
        key = (s, dpi, prop, antialiased, rcParams["text.antialiased"], get_hinting_flag())  # properties by value
        parse = self.parses.get(key)
        if parse is None:
            with _MATH_TEXT:
                parse = self.parser.parse(s, dpi, prop, antialiased=antialiased)
            if len(self.parses) >= self.MOST:
                self.parses.clear()
            # kept under a copy of the properties (the text's own may change)
            self.parses[(s, dpi, prop.copy() if prop is not None else None, *key[3:])] = parse
        return parse


class _TextLayoutCache(RendererAgg):
    """The Agg renderer, keeping each string's glyph layout (for its font, size, hinting) and each
    glyph's bitmap (for its font, size, rotation and position within a pixel).

    Matplotlib lays a string's glyphs out (shaping, one hinted glyph load per character: about
    25 us a character) and rasterizes every glyph anew each time it draws a string; a suite's
    figures draw the same tick labels, axis labels and legend entries over and over.  A glyph's
    bitmap depends on its pen position only through the position's fraction of a pixel (in
    FreeType's 1/64 units): moved by whole pixels, the same bitmap lands that many pixels over, so
    it is kept per fraction and placed where matplotlib would have drawn it.  Math text (parsed
    and cached by matplotlib) takes matplotlib's own layout but the same kept bitmaps; matplotlib
    versions without these steps take matplotlib's own route."""

    #: the most layouts and the most glyph bitmaps kept (each then starts over): about a suite's
    #: distinct strings, and its distinct (glyph, size, fraction of a pixel) triples
    MOST = 20000
    MOST_BITMAPS = 100000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.layouts, self.bitmaps, self.text_layouts = {}, {}, {}
        self.mathtext_parser = _OneAtATime(self.mathtext_parser)

    def draw_text(self, graphics, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath or not hasattr(self, "_draw_text_glyphs_and_boxes"):
            return super().draw_text(graphics, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        features, language = (mtext.get_fontfeatures(), mtext.get_language()) if mtext is not None else (None, None)
        key = (prop, s, get_hinting_flag(), features, language)  # font properties compare by value
        layout = self.layouts.get(key)
        if layout is None:
            font = self._prepare_font(prop)
            if not hasattr(font, "_layout"):
                return super().draw_text(graphics, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
            if len(self.layouts) >= self.MOST:
                self.layouts.clear()
            layout = self.layouts[(prop.copy(), *key[1:])] = [  # a copy: the text's own properties may change
                (item.ft_object, item.glyph_index, item.x, item.y)
                for item in font._layout(s, flags=key[2], features=features, language=language)]
        size = prop.get_size_in_points()
        self._draw_text_glyphs_and_boxes(graphics, x, y, angle, ((font, size, glyph, 0, 1, dx, dy)
                                                                 for font, glyph, dx, dy in layout), [])

    def text_layout(self, text):
        """``text._get_layout(self)`` (matplotlib's: the text's box, lines and their places relative
        to its anchor), kept per string, font properties, resolution, rotation, alignment, line
        spacing and hinting: all that matplotlib's layout reads.  Matplotlib measures each string's
        lines again (font lookups, metrics of every line and of "lp") each time a text is drawn or
        its extent asked for, some 40 times a figure, mostly the same tick labels."""
        key = (text._get_wrapped_text(), text._fontproperties, text.get_figure(root=True).dpi, text.get_usetex(),
               text.get_parse_math(), text._linespacing, text._get_multialignment(), text.get_rotation(),
               text.get_rotation_mode(), text._horizontalalignment, text._verticalalignment, get_hinting_flag())
        layout = self.text_layouts.get(key)
        if layout is None:
            if len(self.text_layouts) >= self.MOST:
                self.text_layouts.clear()
            layout = self.text_layouts[(key[0], key[1].copy(), *key[2:])] = _matplotlib_text_layout(text, self)
        box, lines, corner_and_size = layout
        return box.frozen(), lines, corner_and_size  # a box of its own (Bbox is mutable)

    def _draw_text_glyphs_and_boxes(self, graphics, x, y, angle, glyphs, boxes):
        """Matplotlib's glyph drawing (``RendererAgg._draw_text_glyphs_and_boxes``: pen position
        and transform in FreeType's 26.6 fixed point, y upwards) with each glyph rasterized once
        per fraction of a pixel; the boxes (math text's rules) drawn by matplotlib."""
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        flags = get_hinting_flag()
        mode = RenderMode.NORMAL if graphics.get_antialiased() else RenderMode.MONO
        bitmaps, draw, height = self.bitmaps, self._renderer.draw_text_image, self.height
        for font, size, glyph, slant, extend, dx, dy in glyphs:
            pen_x = round(0x40 * (x + dx * cos - dy * sin))
            pen_y = round(0x40 * (height - y + dx * sin + dy * cos))
            key = (font, size, glyph, slant, extend, angle, flags, mode, pen_x & 0x3F, pen_y & 0x3F)
            kept = bitmaps.get(key)
            if kept is None:  # rasterized at the fraction of a pixel; whole pixels added below
                font.set_size(size, self.dpi)
                font._set_transform((0x10000 * np.array([[cos, -sin], [sin, cos]])
                                     @ [[extend, extend * slant], [0, 1]]).round().astype(int), [key[-2], key[-1]])
                bitmap = font._render_glyph(glyph, flags, mode)
                buffer = bitmap.buffer if mode == RenderMode.NORMAL else bitmap.buffer * 0xFF
                if len(bitmaps) >= self.MOST_BITMAPS:
                    bitmaps.clear()
                kept = bitmaps[key] = (buffer, bitmap.left, buffer.shape[0] - bitmap.top)
            buffer, left, below_top = kept
            # draw_text_image's y is downwards, at the bitmap's bottom side
            draw(buffer, left + (pen_x >> 6), int(height) + below_top - (pen_y >> 6), 0, graphics)
        if boxes:  # (matplotlib's drawing of no boxes makes a graphics context, unused)
            super()._draw_text_glyphs_and_boxes(graphics, x, y, angle, (), boxes)


#: matplotlib's text layout (``Text._get_layout``, private: tests/test_plots.py fails when its source
#: changes); texts drawn or measured with a :class:`_TextLayoutCache` take its kept layouts
_matplotlib_text_layout = getattr(Text, "_get_layout", None)


def _text_layout(text: Text, renderer):
    if isinstance(renderer, _TextLayoutCache):
        return renderer.text_layout(text)
    return _matplotlib_text_layout(text, renderer)


#: the matplotlib versions whose private code the shortcuts were checked against (the digests in
#: tests/test_plots.py); with any other version every shortcut is off (:func:`own_route`)
REVIEWED_MATPLOTLIB = ("3.11.2",)
SHORTCUTS = matplotlib.__version__ in REVIEWED_MATPLOTLIB

if SHORTCUTS and callable(_matplotlib_text_layout):
    Text._get_layout = _text_layout

_PER_THREAD = threading.local()


class _SharedRendererCanvas(FigureCanvasAgg):
    """An Agg canvas that draws with one renderer (:class:`_TextLayoutCache`) per figure size and
    thread, kept for the process.

    Matplotlib caches text extents and parsed math text per renderer; a renderer per figure (what
    a plain canvas makes) measures every tick label again.  The pixel buffer is shared too: read it
    (:func:`render_png`) before another figure of the same size is drawn in the same thread."""

    def get_renderer(self):
        key = (*self.get_width_height(physical=True), self.figure.dpi)
        shared = vars(_PER_THREAD).setdefault("by_size", {})
        if key not in shared:
            shared[key] = _TextLayoutCache(*key)
        self.renderer, self._lastKey = shared[key], key
        return self.renderer


def _inside(box, canvas) -> bool:
    return box.x0 >= canvas.x0 - 0.5 and box.y0 >= canvas.y0 - 0.5 and box.x1 <= canvas.x1 + 0.5 \
        and box.y1 <= canvas.y1 + 0.5


def legend_inside(figure: Figure) -> bool:
    """Whether the legend (if any) lies inside the figure canvas (after a draw)."""
    legend = next(iter(figure.legends), None) or next((a.get_legend() for a in figure.axes if a.get_legend()), None)
    return legend is None or _inside(legend.get_window_extent(), figure.bbox)


def clipped_texts(figure: Figure) -> list[str]:
    """What of ``figure`` sticks out of the canvas (after a draw): the legend, the title, the axis
    labels, the tick labels; [] when everything is inside."""
    renderer = figure.canvas.get_renderer()
    out = [] if legend_inside(figure) else ["legend"]
    for axes in figure.axes:
        if axes.title.get_text() and not _inside(axes.title.get_window_extent(renderer), figure.bbox):
            out.append(f"title {axes.title.get_text()!r}")
        for name, axis in (("x axis", axes.xaxis), ("y axis", axes.yaxis)):  # drawn tick labels and the label
            if not _inside(axis.get_tightbbox(renderer), figure.bbox):
                out.append(f"{name} ({axis.label.get_text()!r} or its tick labels)")
    return out


class _InView(Locator):
    """The ticks of ``locator`` that lie in the axis's view (and a hair beyond: matplotlib draws
    those within a relative 1e-10 of the view, in axis coordinates).

    The log and symlog locators add a decade of ticks beyond each end, and matplotlib builds a
    costly object (lines, texts) for every tick, drawn or not.  Their formatters label from the
    view alone, so the drawn ticks and their labels stay the same."""

    def __init__(self, locator: Locator):
        self.locator = locator

    def set_axis(self, axis):
        super().set_axis(axis)
        self.locator.set_axis(axis)

    def __call__(self):
        transform = self.axis.get_transform()
        low, high = sorted(transform.transform(self.axis.get_view_interval()))
        slack = (high - low) * 1e-6
        locations = self.locator()
        return [v for v, t in zip(locations, transform.transform(locations)) if low - slack <= t <= high + slack]

    def tick_values(self, vmin, vmax):
        return self.locator.tick_values(vmin, vmax)

    def nonsingular(self, v0, v1):
        return self.locator.nonsingular(v0, v1)

    def view_limits(self, vmin, vmax):
        return self.locator.view_limits(vmin, vmax)


def _new_figure(size: tuple[float, float]) -> tuple[Figure, object]:
    """A new figure of ``size`` inches on a :class:`_SharedRendererCanvas`, with one axes."""
    figure = Figure(figsize=size, dpi=DPI)
    _SharedRendererCanvas(figure)
    return figure, figure.add_subplot()


class _KeptFigure:
    """This thread's figure of one size with its one axes, cleared for each plot (:func:`_blank_figure`).

    A cleared axes is a new one (matplotlib's ``Axes.clear`` is what ``Axes.__init__`` ends with;
    its data limits are kept, but the first artist added replaces them) but for the axis labels'
    automatic placement, which ``set_label_coords`` turns off and ``clear`` leaves off, and the
    ticks, kept (:func:`_ticks_kept`).  The figure and its ticks took their defaults from
    matplotlib's settings (``rcParams``, in ``settings``) when they were made."""

    def __init__(self, size: tuple[float, float]):
        self.figure, self.axes = _new_figure(size)
        self.settings = list(dict.values(rcParams))
        self.blank = True

    def clear(self) -> None:
        axes = self.axes
        with _ticks_kept(axes):
            axes.clear()
            for spine in axes.spines.values():  # placed now (matplotlib places them at the first draw, dropping the ticks)
                spine.get_spine_transform()
        for axis in (axes.xaxis, axes.yaxis):
            axis._autolabelpos = True
        self.blank = True


def _blank_figure(size: tuple[float, float]) -> tuple[Figure, object]:
    """A figure of ``size`` inches with one empty axes: this thread's :class:`_KeptFigure` of that
    size (a new one once a matplotlib setting has changed), cleared if a plot was drawn on it
    since :func:`_clear_kept`; the figure :func:`draw_figure` returned before is drawn over."""
    kept = vars(_PER_THREAD).setdefault("figures", {})
    if size not in kept or kept[size].settings != list(dict.values(rcParams)):  # identical objects: fast
        kept[size] = _KeptFigure(size)
    entry = kept[size]
    if not entry.blank:
        entry.clear()
    entry.blank = False
    return entry.figure, entry.axes


def _clear_kept(figure: Figure) -> None:
    """Clear ``figure`` if it is one of this thread's kept figures (its pixels read): its plot's
    artists are then garbage while the cycle collector is paused, and the young pass after the
    plot frees them (uncleared, they would outlive it and be traversed again in an older one)."""
    for entry in vars(_PER_THREAD).get("figures", {}).values():
        if entry.figure is figure:
            entry.clear()


@contextmanager
def _ticks_kept(axes):
    """Within the block, the ticks of ``axes`` survive what would drop them (``Axis.reset_ticks``:
    clearing the axes, placing a spine), and only the first of each list takes what the block
    does to all ticks; after it, the others share its clip box (as new ticks copy the first one's).

    Making a tick (five artists) costs as much as drawing it, and an axes makes 30 on average.
    Every other property a tick has is set again for each plot: its position and label by the
    tick layout, its grid by ``Axes.grid``; its transforms are the axes' own, and only the ticks
    in view are drawn."""
    axes_ = (axes.xaxis, axes.yaxis)
    kept = [(axis, name, vars(axis)[name]) for axis in axes_ for name in ("majorTicks", "minorTicks")
            if vars(axis).get(name)]
    for axis, name, ticks in kept:
        setattr(axis, name, ticks[:1])
    for axis in axes_:
        axis.reset_ticks = _keep_ticks
    try:
        yield
    finally:
        for axis in axes_:
            del axis.reset_ticks
        for axis, name, ticks in kept:
            first = getattr(axis, name)[0]
            for tick in ticks[1:]:  # the attributes set_clip_box sets (its change notices: the axes was cleared)
                tick.clipbox, tick.gridline.clipbox = first.clipbox, first.gridline.clipbox
            setattr(axis, name, [first, *ticks[1:]])


def _keep_ticks() -> None:
    """``Axis.reset_ticks`` while :func:`_ticks_kept`: the ticks stay."""


def draw_figure(plot: Plot) -> tuple[Figure, str]:
    """The matplotlib figure for ``plot`` (drawn) and the automatic-scale note ("" if none).  The
    figure is this thread's figure of its size (:func:`_blank_figure`): the next plot of that size
    drawn in this thread is drawn on it.

    Many series: one hue and marker per series, legend to the right, the axes narrowed until the
    legend fits inside the canvas.  Intervals (``Series.low/high``) as error bars or bands."""
    many = len(plot.series) > MANY_SERIES
    figure, axes = _blank_figure(WIDE_FIGURE_SIZE if many else FIGURE_SIZE)
    title = textwrap.fill(plot.title, TITLE_WIDTH)
    # fixed margins: twice as fast as a layout engine, and these figures all look alike; each
    # title line past the first lowers the top of the axes to make room
    figure.subplots_adjust(left=0.12 if many else 0.15, right=0.76 if many else 0.97, bottom=0.13,
                           top=0.91 - 0.06 * title.count("\n"))
    hues = iter(QUALITATIVE * (1 + len(plot.series) // len(QUALITATIVE)))
    dashes = iter(_PREDICTION_DASHES * len(plot.series))
    shapes = iter(_PREDICTION_MARKERS * len(plot.series))
    for number, series in enumerate(plot.series):
        style = {"linewidth": 1.4, **_STYLES.get(series.style, _STYLES["line"])}
        if series.style == "prediction":  # several judged predictions: one dash pattern each
            style["linestyle"] = next(dashes)
        elif series.style == "prediction-points":  # ... and one marker each
            style["marker"] = next(shapes)
        if series.style not in _FIXED:
            style["color"] = next(hues)
            if many and series.style in ("line", "dashed"):
                style["linestyle"] = _LINESTYLES[(number // 5) % len(_LINESTYLES)]
                style.update(marker=_MARKERS[number % len(_MARKERS)], markevery=0.12, markersize=4)
        x, y = _numbers(series.x), _numbers(series.y)
        axes.plot(x, y, label=_cut_label(series.label), **style)
        if series.low is not None and series.high is not None:
            low, high = _numbers(series.low), _numbers(series.high)
            if series.style == "points":  # no bar where the interval is unbounded (one replicate)
                below = [y0 - a if math.isfinite(a) else 0.0 for y0, a in zip(y, low)]
                above = [b - y0 if math.isfinite(b) else 0.0 for y0, b in zip(y, high)]
                axes.errorbar(x, y, yerr=[below, above], fmt="none", ecolor=style["color"], elinewidth=1, capsize=2)
            else:
                axes.fill_between(x, low, high, color=style["color"], alpha=0.18, linewidth=0)
    yscale, note = _automatic_scale(plot)
    xs = [v for s in plot.series for v in _numbers(s.x) if math.isfinite(v)]
    if plot.xscale == "linear" and xs and all(v == int(v) for v in xs) and max(xs) - min(xs) <= 20:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # indices, counts: no 0.5 ticks
    if plot.xscale != "linear":
        axes.set_xscale(plot.xscale, **({"nonpositive": "mask"} if plot.xscale == "log" else {}))
    if yscale == "log":
        axes.set_yscale(yscale, nonpositive="mask")
        judged = [v for v in _scaled_values(plot) if v > 0]
        if judged and any(s.style == "reported" for s in plot.series):  # a reported curve may run off the axis
            axes.set_ylim(bottom=max(axes.get_ylim()[0], min(judged) / 3))
    elif yscale == "symlog":
        axes.set_yscale(yscale, linthresh=_linear_threshold(plot))
    for axis, scale in ((axes.xaxis, plot.xscale), (axes.yaxis, yscale)):
        if scale == "log":  # minor ticks labelled only when the axis spans under 0.9 decades (no crowding)
            axis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(0.9, 0.4)))
        if scale != "linear":
            axis.set_major_locator(_InView(axis.get_major_locator()))
            axis.set_minor_locator(_InView(axis.get_minor_locator()))
    axes.set_title(title, fontsize=TITLE_SIZE, y=1.0)  # a fixed position: see _fit_margins
    axes.set_xlabel(plot.xlabel)
    axes.set_ylabel(plot.ylabel)
    axes.grid(True, which="major", alpha=0.3)
    renderer = figure.canvas.get_renderer()
    if many:
        legend = axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        width = legend.get_window_extent(renderer).width / figure.bbox.width  # narrow the axes until it fits
        figure.subplots_adjust(right=max(0.35, 0.97 - width - 0.02))
    elif any(s.label for s in plot.series):
        axes.legend(fontsize=8, loc="best")
    with _ticks_laid_out_once(axes):
        _fit_margins(figure, axes, renderer, [legend] if many else [])
        with _legend_laid_out_once(axes.get_legend()):
            figure.canvas.draw()
    return figure, note


class _AxisLayout:
    """One axis's tick layout, kept while the view, the room for ticks along the axis
    (``Axis.get_tick_space``), the locators and the formatters stay the same: the ticks in view
    with their positions and labels (matplotlib's ``Axis._update_ticks``); and their labels'
    extents (``Axis._get_ticklabel_bboxes``), kept while the axes' place stays the same too.

    Matplotlib works both out again for every question about the ticks: per axis, 3 layouts and
    2 rounds of label extents in a tight box (the tick labels, the axis label's place, each
    spine's extent), as many in a draw, each time with the same result.  Locators read the
    axes' size only through the tick space, and ticks are placed in data coordinates, so a margin
    widened by a fraction of a pixel (the tall labels of a log axis, in 95 of a suite's 253
    figures) keeps the ticks; their labels' extents are measured again."""

    def __init__(self, axis):
        self.axis, self.key, self.ticks, self.boxes, self.bounds, self.space = axis, None, [], {}, None, None

    def ticks_in_view(self):
        axis = self.axis
        bounds = tuple(axis.axes.bbox.bounds)
        if bounds != self.bounds:
            self.bounds, self.space = bounds, axis.get_tick_space()
        key = (tuple(axis.get_view_interval()), self.space, id(axis.get_major_locator()),
               id(axis.get_minor_locator()), id(axis.get_major_formatter()), id(axis.get_minor_formatter()))
        if key != self.key:
            self.key, self.ticks, self.boxes = key, type(axis)._update_ticks(axis), {}
        return self.ticks

    def label_boxes(self, ticks, renderer):
        key = (self.key, tuple(self.axis.axes.bbox.bounds), tuple(map(id, ticks)), id(renderer))
        if key not in self.boxes:
            self.boxes[key] = type(self.axis)._get_ticklabel_bboxes(self.axis, ticks, renderer)
        return self.boxes[key]


#: the matplotlib methods :class:`_AxisLayout` stands in for, and its replacement of each
_LAYOUT_METHODS = {"_update_ticks": "ticks_in_view", "_get_ticklabel_bboxes": "label_boxes"}


@contextmanager
def _ticks_laid_out_once(axes):
    """Within the block, each axis of ``axes`` lays its ticks out once per size and view
    (:class:`_AxisLayout`); after it, as matplotlib does.  With a matplotlib that has other
    methods, nothing changes but the speed."""
    axes_ = [axis for axis in (axes.xaxis, axes.yaxis)
             if all(callable(getattr(type(axis), name, None)) for name in _LAYOUT_METHODS)]
    for axis in axes_:
        layout = _AxisLayout(axis)
        for name, replacement in _LAYOUT_METHODS.items():
            setattr(axis, name, getattr(layout, replacement))
    try:
        yield
    finally:
        for axis in axes_:
            for name in _LAYOUT_METHODS:
                delattr(axis, name)


@contextmanager
def _legend_laid_out_once(legend):
    """Within the block (one draw), each box of ``legend`` (the packed rows and columns of
    handles and labels) lays its contents out once, and the legend is placed once.

    Matplotlib's legend measures its boxes to draw its frame, then each box measures its
    children again as it is drawn, and again at every level of nesting; it finds its place (with
    ``loc="best"``: nine places tried against the curves) for the frame and again for the boxes.
    Within one draw nothing they depend on changes.  With a matplotlib whose boxes lay out
    otherwise, nothing changes but the speed."""
    boxes, stack = [], [legend._legend_box] if legend is not None and hasattr(legend, "_legend_box") else []
    while stack:
        box = stack.pop()
        boxes.append(box)
        stack += [child for child in box.get_children() if isinstance(child, OffsetBox)]
    boxes = [box for box in boxes if callable(getattr(box, "_get_bbox_and_child_offsets", None))]
    placements = {box: box._offset for box in boxes if callable(getattr(box, "_offset", None))}
    for box in boxes:
        box._get_bbox_and_child_offsets = functools.lru_cache(maxsize=None)(box._get_bbox_and_child_offsets)
    for box, place in placements.items():
        box._offset = functools.lru_cache(maxsize=None)(place)
    try:
        yield
    finally:
        for box in boxes:
            del box._get_bbox_and_child_offsets
        for box, place in placements.items():
            box._offset = place


def _fit_margins(figure: Figure, axes, renderer, outside: list) -> None:
    """Widen a margin wherever the tick labels, axis labels, title or legend stick out of the
    canvas (long tick labels of a log axis, a two-line title).

    Measured before the one draw (the tight box lays the ticks out itself), from the axes, its
    axis and tick labels, the title and the artists ``outside`` it (a legend to the right) only:
    the curves are clipped to the axes, and a legend inside is placed within them.  The
    title sits at a fixed height (matplotlib would lay the y ticks out once more in every draw to
    place it); like matplotlib, it is lifted above a y-axis offset text (such as "1e-5") it overlaps."""
    box, canvas = axes.get_tightbbox(renderer, bbox_extra_artists=outside), figure.bbox
    offset, title = axes.yaxis.offsetText, axes.title
    if offset.get_visible() and offset.get_text():
        below, extent = offset.get_window_extent(renderer), title.get_window_extent(renderer)
        if below.overlaps(extent):  # matplotlib's rule: the title's baseline on the offset text's top, plus the pad
            lift = (below.y1 - axes.bbox.y1) * 72 / figure.dpi  # points: a margin widened later keeps it
            axes.set_title(title.get_text(), fontsize=TITLE_SIZE, y=1.0, pad=rcParams["axes.titlepad"] + lift)
            box = axes.get_tightbbox(renderer, bbox_extra_artists=outside)
    pad = 4.0  # pixels
    left, right = max(0.0, canvas.x0 + pad - box.x0), max(0.0, box.x1 - canvas.x1 + pad)
    bottom, top = max(0.0, canvas.y0 + pad - box.y0), max(0.0, box.y1 - canvas.y1 + pad)
    if left or right or bottom or top:
        p = figure.subplotpars
        figure.subplots_adjust(left=p.left + left / canvas.width, right=p.right - right / canvas.width,
                               bottom=p.bottom + bottom / canvas.height, top=p.top - top / canvas.height)
    else:  # the layout measured is the one drawn: keep the axis labels where they were placed
        for axis in (axes.xaxis, axes.yaxis):
            axis.set_label_coords(*axis.label.get_position(), transform=axis.label.get_transform())


def band_problems(plot: Plot) -> list[str]:
    """Every way the data or intervals of ``plot`` are malformed ([] when none): x and y of other
    lengths, ``low``/``high`` given alone or with a length other than ``y``'s, or a finite end on
    the wrong side of the estimate."""
    problems = []
    for series in plot.series:
        if len(series.x) != len(series.y):
            problems.append(f"{series.label}: x and y have lengths {len(series.x)} and {len(series.y)}")
            continue
        if (series.low is None) != (series.high is None):
            problems.append(f"{series.label}: low and high must be given together")
            continue
        if series.low is None:
            continue
        if not len(series.low) == len(series.high) == len(series.y):
            problems.append(f"{series.label}: x, y, low, high have lengths {len(series.x)}, {len(series.y)}, "
                            f"{len(series.low)}, {len(series.high)}")
            continue
        for x, low, y, high in zip(series.x, _numbers(series.low), _numbers(series.y), _numbers(series.high)):
            if (math.isfinite(low) and not low <= y) or (math.isfinite(high) and not y <= high):
                problems.append(f"{series.label} at x = {x}: not low <= y <= high ({low}, {y}, {high})")
    return problems


@contextmanager
def _cycle_collector_paused():
    """Python's cycle collector off within the block; after it, if it was on, on again and one
    young-generation pass.

    A figure's artists are some 10^4 linked objects: collections while they are being drawn find
    nothing to free, and move them to the older generations, where they are traversed again
    before they are freed and make the full collections that scan the whole process (a worker
    holds torch, sympy, the checks) come sooner.  Dropped inside the block, they are freed by the
    one young pass after it.  Process-wide: threads drawing at once pause it together."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
            gc.collect(0)


def _drawn_pixels(plot: Plot) -> Image.Image:
    """The figure for ``plot``, drawn, as an RGB image (the figure, dropped or cleared, is garbage)."""
    figure = draw_figure(plot)[0]
    image = Image.frombuffer("RGBA", figure.canvas.get_width_height(), figure.canvas.buffer_rgba()).convert("RGB")
    _clear_kept(figure)
    return image


def render_png(plot: Plot) -> bytes:
    """The figure for ``plot`` as PNG bytes (non-positive values are masked on log axes)."""
    with _cycle_collector_paused():
        image = _drawn_pixels(plot)
    buffer = io.BytesIO()
    # 256-colour palette (octree keeps the line colours; antialiasing blends round to the nearest
    # entry): a third of the RGBA PNG's size, indistinguishable for line plots
    image.quantize(colors=PALETTE_COLORS, method=Image.Quantize.FASTOCTREE).save(buffer, format="png")
    return buffer.getvalue()


def scale_note(plot: Plot) -> str:
    """What the caption says about an automatic log axis ("" when the axis is as asked)."""
    return _automatic_scale(plot)[1]


def spectral_weight_plot(curves: dict[str, dict]) -> Plot | None:
    """Overlaid W(omega) (log y axis) from ``{label: {"omega": [...], "W": [...]}}``; None if empty."""
    series = [Series(label, curve["omega"], curve["W"]) for label, curve in curves.items()
              if curve and curve.get("omega") and curve.get("W")]
    if not series:
        return None
    return Plot("Spectral weights W(omega) (d = 1, rho = 1)", "omega",
                "W(omega)", series, yscale="log",
                note="Tabulated by the transform check from the derived closed form W(omega) = 1/|sigma_hat(omega)|^2 "
                     "(d = 1). Larger W penalizes that frequency more: the network avoids it.")


def own_route() -> list[tuple[object, str, object]]:
    """``(owner, attribute, value)`` triples that turn every shortcut of this module into matplotlib's
    own route: all locators' ticks, no kept tick, legend or text layouts, matplotlib's glyph drawing,
    its math-text parser and a new figure per plot.  Set at import for a matplotlib version not in
    :data:`REVIEWED_MATPLOTLIB`; tests/test_plots.py sets them to compare the PNG bytes of both routes."""
    module = sys.modules[__name__]
    return [(module, "_InView", lambda locator: locator), (module, "_LAYOUT_METHODS", {}),
            (_TextLayoutCache, "draw_text", RendererAgg.draw_text),
            (_TextLayoutCache, "_draw_text_glyphs_and_boxes", RendererAgg._draw_text_glyphs_and_boxes),
            (module, "_blank_figure", _new_figure), (module, "_legend_laid_out_once", lambda legend: nullcontext()),
            (_OneAtATime, "parse", lambda self, *args, **kwargs: self.parser.parse(*args, **kwargs)),
            (_TextLayoutCache, "text_layout", lambda self, text: _matplotlib_text_layout(text, self))]


if not SHORTCUTS:
    for _owner, _name, _value in own_route():
        setattr(_owner, _name, _value)
