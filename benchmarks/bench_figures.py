"""Benchmark: CPU seconds and full Agg draws per report figure (``render_png``).

Renders real plots one after the other in this process and prints per figure the CPU time
(``time.process_time()``), the number of full figure draws and the PNG size, then the mean CPU
per figure (weighted by how often each kind occurs in the suite) and a digest of all PNG bytes
(equal digests: byte-identical figures).  By default the plots are
``benchmarks/figure_sample.json``: one plot of each of the 44 kinds a cold quick suite draws
(taken from a real run's report.json, floats rounded to 6 digits) plus the overlaid spectral
weights.  ``--report REPORT.json`` renders every plot of a report instead, as a suite worker does
(the same tick labels and legend entries recur: the kept glyph layouts pay off there).
``--like-worker`` first imports what a suite worker holds (torch, theory, every check), which sets
the cost of Python's full garbage collections.  ``--save DIR`` writes the PNGs (to compare two
versions pixel by pixel); ``--make-sample REPORT.json`` rebuilds the sample.  The first figure is
drawn once before timing (fonts and imports).  CPU time is what a loaded machine distorts least:
compare runs made in one time window, and note the load.

Measured on the 2-core development machine, base = main c61a859 and this version run alternately
(2026-12-07, load 5-7 from other sessions, CPU s per figure):

- ``--report`` (the 253 figures of a cold quick suite, one process): base 0.112-0.114 (1.48 full
  draws per figure), new 0.056-0.058 (1.00) before the collector pause: 0.50-0.51x; PNG digests
  equal (every figure byte-identical).
- the sample (each kind once, weighted by its count): base 0.111-0.113, new 0.065: 0.58x (fewer
  repeated strings than in a suite).
- the collector pause, with a worker's heap: a further 0.86-0.90x (0.049-0.055 -> 0.044-0.047).
- all of it, ``--report --like-worker`` (load 8-9): base 0.109-0.112, new 0.052-0.055: 0.48-0.49x,
  1.48 -> 1.00 full draws per figure, digests equal.

Second round (issue 18, 2026-12-07 13:22-13:28, load 9-12 from other sessions; base = main
9cd1fdb, new = this version, alternately, ``--report --like-worker``, CPU s per figure):

- base 0.0646-0.0676, new 0.0370-0.0379: 0.56x (the idle machine's 0.053 scaled by that ratio:
  about 0.030, -0.023 s per figure, -5.9 CPU-s over a suite's 253 figures), PNG digests equal
  (every figure byte-identical).
- Where it went (in-process A/B of successive versions, same bytes each): each glyph rasterized
  once per fraction of a pixel 0.93x; the figure freed by one young collection (it used to survive
  into generation 1 and be traversed twice: collector time per 253 figures 2.3 -> 0.9 s); one figure per size with its ticks kept 0.78x (making
  the ~30 ticks of an axes was a fifth of the CPU); the legend laid out and placed once per draw
  0.95x; math-text parses kept (matplotlib keeps 50) -2% of the samples.
- Left: the PNG encoding (zlib level 6) is ~2.6 ms of a figure at this load; level 3 would take
  0.8 ms for files 22% larger (12.9 instead of 10.6 kB), other bytes, the same pixels: not done.

Third round (issue 18, 2026-12-07 18:35-18:40, load 8-10 from other sessions; base = main
1042244, new = this version, alternately, ``--report --like-worker``, CPU s per figure):

- base 0.0327 / 0.0342 / 0.0379, new 0.0300 / 0.0297 / 0.0315 (pairs 0.92, 0.87, 0.83; means
  0.0349 -> 0.0304, 0.87x: about -1.1 CPU-s over a suite's 253 figures at this load), PNG digests
  equal (every figure byte-identical).  Both versions in one process, figure by figure in
  alternating order (each figure's bytes compared): 43.4 -> 38.1 ms on first drawing (0.88x),
  33.8 -> 29.3 ms on a second round (0.87x).
- What: text layouts kept per renderer (matplotlib measured every string again, ~40 times a
  figure); an axis's ticks kept while the tick space stays (the bottom margin of 95 of the 253
  figures widens by 0.1-0.6 px for the tall labels of a log x axis: 714 -> 506 tick layouts);
  the kept ticks' clip boxes set by attribute; the glyph loop trimmed.
- Left: a cold round still spends ~15% of its CPU on first measurements of each string (native
  FreeType layout ~0.5 ms a string, 63 math-text parses at ~4 ms), paid once per worker process.
  PNG encoding (quantize 1.9 ms + zlib level 6 1.7 ms a figure): zlib strategy Z_RLE would take
  0.6 ms for files 29% larger (13.5 instead of 10.5 kB), level 3 0.8 ms for 21% larger, same
  pixels; Z_FILTERED gives 1% smaller files at the same time: not done.  Quantizing the RGBA
  buffer directly (no RGB copy) picks other palette colours: not done.

    python benchmarks/bench_figures.py [--report REPORT.json] [--like-worker] [--save DIR] [--repeat N]
    python benchmarks/bench_figures.py --make-sample REPORT.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import OrderedDict
from pathlib import Path

from matplotlib.figure import Figure

from numerics.checks import Plot, Series
from numerics.report.plots import render_png, spectral_weight_plot

SAMPLE = Path(__file__).with_name("figure_sample.json")


def _plot(data: dict) -> Plot:
    return Plot(data["title"], data["xlabel"], data["ylabel"], [Series(**s) for s in data["series"]],
                data.get("xscale", "linear"), data.get("yscale", "linear"), data.get("note", ""))


def _plot_data(plot: Plot) -> dict:
    return {"title": plot.title, "xlabel": plot.xlabel, "ylabel": plot.ylabel, "xscale": plot.xscale,
            "yscale": plot.yscale, "note": plot.note,
            "series": [{"label": s.label, "x": s.x, "y": s.y, "style": s.style, "low": s.low, "high": s.high}
                       for s in plot.series]}


def report_plots(report: dict) -> list[tuple[str, dict]]:
    """Every plot of a report.json as (``check/activation``, plot data), the overview last."""
    plots, curves = [], {}
    for activation in report["activations"]:
        for result in activation["results"]:
            plots += [(f"{result['check']}/{activation['label']}", p) for p in result.get("plots") or []]
            details = result.get("details")
            if result["check"] == "transform" and isinstance(details, dict) and details.get("spectral_weight_curve"):
                curves[activation["label"]] = details["spectral_weight_curve"]
    overview = spectral_weight_plot(curves)
    return plots + ([("overview", _plot_data(overview))] if overview else [])


def _kind(name: str, plot: dict) -> tuple:
    """Plots of one kind: same check, title (activation names and numbers left out), scales, series count."""
    check, activation = name.split("/", 1) if "/" in name else (name, "")
    title = plot["title"].replace(activation, "A").replace(activation.split("(")[0] or "\0", "A")
    return check, re.sub(r"\d+(\.\d+)?", "N", title), plot["yscale"], plot["xscale"], len(plot["series"])


def _rounded(value):
    """``value`` with every float rounded to 6 significant digits (a smaller sample file, the same figures' cost)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def make_sample(report_path: Path) -> None:
    """The first plot of each kind in ``report_path``, with how many plots of the report are of that kind."""
    kinds: OrderedDict = OrderedDict()
    for name, plot in report_plots(json.loads(report_path.read_text())):
        kinds.setdefault(_kind(name, plot), {"name": name, "count": 0, "plot": _rounded(plot)})["count"] += 1
    SAMPLE.write_text(json.dumps(list(kinds.values()), separators=(",", ":")) + "\n")
    print(f"{len(kinds)} kinds of {sum(k['count'] for k in kinds.values())} plots -> {SAMPLE}")


class _DrawCounter:
    """Counts full figure draws (``Figure.draw``) while active."""

    def __init__(self):
        self.count = 0
        self._original = Figure.draw

    def __enter__(self):
        original = self._original

        def counted(figure, renderer):
            self.count += 1
            return original(figure, renderer)

        Figure.draw = counted
        return self

    def __exit__(self, *exc):
        Figure.draw = self._original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="render every plot of this report.json (weight 1 each)")
    parser.add_argument("--save", type=Path, metavar="DIR", help="write the PNGs here")
    parser.add_argument("--repeat", type=int, default=1, help="render each figure this many times (mean CPU)")
    parser.add_argument("--make-sample", type=Path, metavar="REPORT", help="rebuild the sample from a report.json")
    parser.add_argument("--like-worker", action="store_true", help="first import torch, theory and every check")
    args = parser.parse_args()
    if args.like_worker:
        from numerics.checks import all_checks
        all_checks()
    if args.make_sample:
        make_sample(args.make_sample)
        return 0
    if args.report:
        entries = [{"name": n, "count": 1, "plot": p} for n, p in report_plots(json.loads(args.report.read_text()))]
    else:
        entries = json.loads(SAMPLE.read_text())
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    render_png(_plot(entries[0]["plot"]))  # warm-up: fonts, glyph caches, imports
    total_cpu = total_draws = weight = 0.0
    digest = hashlib.sha256()
    print(f"{'cpu s':>7} {'draws':>5} {'kB':>5} {'count':>5}  figure")
    for number, entry in enumerate(entries):
        plot = _plot(entry["plot"])
        with _DrawCounter() as draws:
            start = time.process_time()
            for _ in range(args.repeat):
                png = render_png(plot)
            cpu = (time.process_time() - start) / args.repeat
        digest.update(png)
        if args.save:
            (args.save / f"{number:03d}.png").write_bytes(png)
        count = entry["count"]
        total_cpu, total_draws, weight = total_cpu + cpu * count, total_draws + draws.count / args.repeat * count, \
            weight + count
        print(f"{cpu:7.4f} {draws.count / args.repeat:5.1f} {len(png) / 1e3:5.1f} {count:5d}  "
              f"{entry['name']}: {plot.title[:60]}")
    print(f"\n{int(weight)} figures: {total_cpu / weight:.4f} CPU s and {total_draws / weight:.2f} full draws per "
          f"figure (weighted by count), {total_cpu:.1f} CPU s in all; PNG digest {digest.hexdigest()[:16]}; "
          f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
