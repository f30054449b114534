"""The figures of a report, drawn once and shared by the HTML (embedded) and Markdown (files) writers.

A check's plots are usually drawn where the check ran (:func:`drawn_record`, in the worker
process, in parallel, and cached with the result); :func:`draw_report` draws only what is
missing, plus the overlaid spectral weights.
"""

from __future__ import annotations

import base64
import hashlib
import traceback
from dataclasses import dataclass

from numerics.checks import Plot

from .model import Report
from .plots import render_png, spectral_weight_plot


@dataclass
class Figure:
    """A drawn plot: PNG bytes, or the one-line reason it could not be drawn."""

    plot: Plot
    png: bytes | None
    error: str = ""

    @property
    def filename(self) -> str:
        """Content-addressed, so a new report never overwrites a figure an old one still uses."""
        return f"{hashlib.sha256(self.png or b'').hexdigest()[:16]}.png"


def draw(plot: Plot) -> Figure:
    try:
        return Figure(plot, render_png(plot))
    except Exception as err:  # noqa: BLE001 - bad plot data must not stop the report; say what went wrong
        return Figure(plot, None, traceback.format_exception_only(type(err), err)[-1].strip())


def drawn_record(plots: list[Plot]) -> list[dict]:
    """The plots drawn, JSON-ready: ``{"png": base64}`` or ``{"error": reason}`` each."""
    figures = [draw(plot) for plot in plots]
    return [{"png": base64.b64encode(f.png).decode()} if f.png is not None else {"error": f.error} for f in figures]


def _from_record(plot: Plot, entry: dict) -> Figure:
    if "png" in entry:
        return Figure(plot, base64.b64decode(entry["png"]))
    return Figure(plot, None, entry.get("error", "not drawn"))


@dataclass
class Figures:
    """``overview``: the overlaid spectral weights; ``by_result[(activation label, check id)]``."""

    overview: Figure | None
    by_result: dict[tuple[str, str], list[Figure]]

    def all(self) -> list[Figure]:
        figures = [self.overview] if self.overview else []
        return figures + [f for group in self.by_result.values() for f in group]


def draw_report(report: Report) -> Figures:
    curves = {}
    for activation in report.activations:
        transform = activation.result("transform")
        if transform is not None and isinstance(transform.details, dict):
            curve = transform.details.get("spectral_weight_curve")
            if curve:
                curves[activation.label] = curve
    overview = spectral_weight_plot(curves)
    by_result = {}
    for activation in report.activations:
        for result in activation.results:
            if not result.plots:
                continue
            ready = activation.drawn.get(result.check) or []
            by_result[(activation.label, result.check)] = (
                [_from_record(p, e) for p, e in zip(result.plots, ready)] if len(ready) == len(result.plots)
                else [draw(p) for p in result.plots])
    return Figures(draw(overview) if overview else None, by_result)
