"""Drawing :class:`~numerics.checks.Plot` data with matplotlib (Agg, no display needed).

Plots are data that checks provide; this module only draws them.  :func:`spectral_weight_plot`
assembles the one cross-activation figure, the overlaid :math:`W(\\omega)` curves, from the
``spectral_weight_curve`` each ``transform`` result carries.
"""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from numerics.checks import Plot, Series

#: figure size (inches) and resolution: 5-30 kB per palette PNG, readable on a laptop screen
FIGURE_SIZE = (6.4, 3.8)
WIDE_FIGURE_SIZE = (8.4, 4.2)
DPI = 100
PALETTE_COLORS = 256
_STYLES = {  # Series.style -> matplotlib keyword arguments
    "line": {"linestyle": "-"},
    "dashed": {"linestyle": "--"},
    "points": {"linestyle": "none", "marker": "o", "markersize": 4},
    "step": {"linestyle": "-", "drawstyle": "steps-post"},
}
_LINESTYLES = ("-", "--", "-.", ":")


def _numbers(values) -> list[float]:
    """Floats from JSON data: None and strings such as "nan" or "inf" become their float (or nan)."""
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def render_png(plot: Plot) -> bytes:
    """The figure for ``plot`` as PNG bytes (non-positive values are masked on log axes)."""
    many = len(plot.series) > 6  # legend outside the axes, distinct colours and dashes
    figure = Figure(figsize=WIDE_FIGURE_SIZE if many else FIGURE_SIZE, dpi=DPI)
    # fixed margins: twice as fast as a layout engine, and these figures all look alike
    figure.subplots_adjust(left=0.12 if many else 0.15, right=0.76 if many else 0.97, bottom=0.13, top=0.91)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = matplotlib.colormaps["tab20"].colors
    for number, series in enumerate(plot.series):
        style = dict(_STYLES.get(series.style, _STYLES["line"]))
        if many:
            style.update(color=colors[number % len(colors)])
            if series.style in ("line", "dashed"):
                style["linestyle"] = _LINESTYLES[number % len(_LINESTYLES)]
        axes.plot(_numbers(series.x), _numbers(series.y), label=series.label, linewidth=1.4, **style)
    if plot.xscale != "linear":
        axes.set_xscale(plot.xscale, **({"nonpositive": "mask"} if plot.xscale == "log" else {}))
    if plot.yscale != "linear":
        axes.set_yscale(plot.yscale, **({"nonpositive": "mask"} if plot.yscale == "log" else {}))
    axes.set_title(plot.title, fontsize=11)
    axes.set_xlabel(plot.xlabel)
    axes.set_ylabel(plot.ylabel)
    axes.grid(True, which="major", alpha=0.3)
    if many:
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    elif any(s.label for s in plot.series):
        axes.legend(fontsize=8, loc="best")
    canvas = figure.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    # 256-colour palette (octree keeps the tab10/tab20 line colours; antialiasing blends round to
    # the nearest entry): a third of the RGBA PNG's size, indistinguishable for line plots
    image.quantize(colors=PALETTE_COLORS, method=Image.Quantize.FASTOCTREE).save(buffer, format="png")
    return buffer.getvalue()


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
