"""Report writers: a self-contained HTML page, Markdown with figure files and a complete JSON,
written atomically; MathML that is well-formed; plots drawn from the checks' data only."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from html.entities import name2codepoint
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sympy as sp

import theory
from numerics.checks import CheckResult, Plot, Series
from numerics.report import REPORT_FILES, ensure_writable, json_report, write_report
from numerics.report.browser import check_in_browser, find_chromium
from numerics.report.derivation import derivation_summary
from numerics.report.folder import KEEP, MANIFEST, STAGING_PREFIX
from numerics.report.formatting import short
from numerics.report.mathml import LatexSubsetError, latex_to_mathml, to_mathml
from numerics.report.model import ActivationReport, Report
from numerics.report.plots import DPI, FIGURE_SIZE, render_png, spectral_weight_plot
from theory.errors import IbcheckError

OMEGA = [0.5, 1.0, 2.0, 4.0]
LOG_PLOT = Plot("distance vs width", "width", "distance",
                [Series("measured", [10, 100, 1000], [1.0, 0.1, 0.0], "points"),  # 0 is masked on log axes
                 Series("theory", [10, 1000], [1.0, 0.01], "dashed")], xscale="log", yscale="log", note="slope -1")


def transform(label, weights, verdict="agrees"):
    return CheckResult("transform", label, prediction="closed form -1/omega**2", measured="max relative error 1e-16",
                       tolerance=1e-12, verdict=verdict, reason="closed form vs quadrature", seed=0,
                       details={"spectral_weight_curve": {"omega": OMEGA, "W": weights}}, plots=[LOG_PLOT],
                       runtime_s=0.25)


def results(label):
    return [
        transform(label, [w ** 4 for w in OMEGA]),
        CheckResult("slope", label, prediction=-2.0, measured=-1.25, tolerance=0.2, verdict="disagrees",
                    reason="slope -1.25 is not -2 +- 0.2", tolerance_note="fit error over 3 seeds", seed=3,
                    parameters={"widths": [10, 100, 1000]}, details={"per_seed": [-1.2, -1.3, -1.25]}),
        CheckResult("broken", label, None, None, None, "error", reason="internal error: RuntimeError: boom",
                    details={"traceback": "Traceback ...\nRuntimeError: boom <script>"}),
        CheckResult("bad-plot", label, None, None, None, "agrees", reason="plot data broken on purpose",
                    plots=[Plot("mismatched", "x", "y", [Series("bad", [1, 2, 3], [1, 2])])]),
    ]


@pytest.fixture(scope="module")
def report() -> Report:
    relu = theory.activation("relu")
    tanh_results = results("tanh")
    tanh_results[0] = transform("tanh", [1.0, 2.0, 30.0, 4000.0])
    activations = [
        ActivationReport("relu", "relu", "Max(0, x)", relu.description, derivation_summary(relu), results("relu"),
                         cached=["slope"]),
        ActivationReport("tanh", "tanh", "tanh(x)", "hyperbolic tangent", {"status": "error", "error": "too slow",
                                                                           "results": [], "steps": []}, tanh_results),
    ]
    checks = [{"id": i, "title": f"the {i} check", "claim": "P1"} for i in ("transform", "slope", "broken", "bad-plot")]
    return Report("test report", activations, checks, "quick", 0, {"width": "5"}, "2026-01-01T00:00:00+00:00", 1.5,
                  {"sympy": sp.__version__, "python": "3.11"}, "serial", {"hits": 1, "misses": 7},
                  command="ibcheck report --activations relu tanh")


@pytest.fixture(scope="module")
def small(report) -> Report:
    """One activation, no plots: quick to write again and again."""
    only = ActivationReport("relu", "relu", "Max(0, x)", "", {}, [r for r in results("relu") if not r.plots])
    return Report(**{**report.__dict__, "activations": [only]})


@pytest.fixture(scope="module")
def written(report, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    write_report(report, folder)
    return folder


class _Page(HTMLParser):
    """Tags, attributes and table cells of a page (standard-library parser)."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.rows, self._cell = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"  # the PNG signature
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_writes_the_three_files(written):
    assert sorted(p.name for p in written.iterdir() if p.is_file()) == sorted([*REPORT_FILES, MANIFEST])
    manifest = json.loads((written / MANIFEST).read_text())["files"]
    assert set(manifest) == {*REPORT_FILES, *(f"figures/{p.name}" for p in (written / "figures").iterdir())}
    assert not [p for p in written.iterdir() if p.name.startswith(".") and p.name != MANIFEST]  # no leftovers


def test_html_is_self_contained(written):
    page = _Page((written / "index.html").read_text())
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object")]
    sources = [a["src"] for t, a in page.tags if t == "img"]
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for source in sources:  # every image decodes as a PNG of the figure size
        width, height = png_size(base64.b64decode(source.split(",", 1)[1]))
        assert (width, height) in {(round(FIGURE_SIZE[0] * DPI), round(FIGURE_SIZE[1] * DPI)), (840, 420)}
    assert not [a for _, a in page.tags for k, v in a.items() if k in ("src", "href") and "://" in v]


def test_html_summary_table_has_a_row_per_activation_and_a_column_per_check(written):
    page = _Page((written / "index.html").read_text())
    header = next(r for r in page.rows if r and r[0] == "activation")
    assert header == ["activation", "transform", "slope", "broken", "bad-plot"]
    body = {r[0]: r[1:] for r in page.rows[page.rows.index(header) + 1:page.rows.index(header) + 3]}
    assert list(body) == ["relu", "tanh"]
    assert body["relu"] == ["\u2713", "\u2717", "!", "\u2713"]  # agrees, disagrees, error, agrees


def test_every_summary_cell_links_to_an_existing_anchor_with_the_reason(written):
    page = _Page((written / "index.html").read_text())
    ids = {a["id"] for _, a in page.tags if "id" in a}
    links = [a for t, a in page.tags if t == "a" and a.get("href", "").startswith("#")]
    cell_links = [a for a in links if "--" in a["href"]]
    assert len(cell_links) == 2 * 4  # activations x checks
    assert all(a["href"][1:] in ids for a in links)
    assert any("slope -1.25 is not -2 +- 0.2" in a.get("title", "") for a in cell_links)


def test_html_shows_problems_errors_and_broken_plots_without_failing(written):
    text = (written / "index.html").read_text()
    assert "What did not agree (or could not be decided), and why" in text
    assert "slope -1.25 is not -2 +- 0.2" in text
    assert "RuntimeError: boom &lt;script&gt;" in text  # the traceback, escaped
    assert "could not be drawn" in text  # the mismatched plot, explained instead of crashing
    assert "The derivation failed: too slow" in text


def _entities_to_xml(fragment: str) -> str:
    """HTML named entities (e.g. &InvisibleTimes;) as numeric references, so an XML parser reads them."""
    known = {"lt", "gt", "amp", "quot", "apos"}
    return re.sub(r"&([A-Za-z]+);", lambda m: m[0] if m[1] in known else f"&#{_codepoint(m[1])};", fragment)


def _codepoint(name: str) -> int:
    if name in name2codepoint:
        return name2codepoint[name]
    return ord(html.unescape(f"&{name};"))


def test_every_math_element_is_well_formed_mathml(written):
    text = (written / "index.html").read_text()
    formulas = re.findall(r"<math .*?</math>", text, flags=re.DOTALL)
    assert len(formulas) > 10
    for formula in formulas:
        root = ElementTree.fromstring(_entities_to_xml(formula))
        assert root.tag == "{http://www.w3.org/1998/Math/MathML}math"


def test_relu_spectral_weight_is_rendered_as_omega_to_the_fourth(written):
    # spectral_bias.md, table of activations: ReLU has W(omega) = omega^4
    text = (written / "index.html").read_text()
    row = re.search(r"<tr><td>spectral weight.*?</tr>", text, flags=re.DOTALL)[0]
    assert "<mi>W</mi>" in row and "<msup><mi>\u03c9</mi><mn>4</mn></msup>" in row


def test_json_has_every_number(written, report):
    data = json.loads((written / "report.json").read_text())
    assert data["schema"] == json_report.SCHEMA
    assert data["profile"] == "quick" and data["seed"] == 0 and data["options"] == {"width": "5"}
    assert data["environment"]["sympy"] == sp.__version__ and data["runtime_s"] == 1.5
    assert data["counts"] == {"agrees": 4, "disagrees": 2, "inconclusive": 0, "not_applicable": 0, "error": 2}
    for activation, saved in zip(report.activations, data["activations"]):
        for result, record in zip(activation.results, saved["results"]):
            assert record == dict(result.to_dict(), cached=result.check in activation.cached)  # lossless
    assert data["activations"][0]["derivation"]["results"][1]["latex"] == "W(\\omega) = \\omega^{4}"
    assert "mathml" not in json.dumps(data)


def test_markdown_tables_and_figure_files(written):
    text = (written / "report.md").read_text()
    assert "| activation | transform | slope | broken | bad-plot |" in text
    assert ("| relu | **agrees**: max relative error 1e-16 vs closed form -1/omega**2 | **disagrees**: -1.25 vs -2 "
            "| **error**: internal error: RuntimeError: boom | **agrees**: \u2014 vs \u2014 |") in text
    assert "$$ W(\\omega) = \\omega^{4} $$" in text
    figures = re.findall(r"!\[[^\]]*\]\((figures/[0-9a-f]{16}\.png)\)", text)
    assert figures and all((written / f).is_file() for f in figures)
    assert {p.name for p in (written / "figures").iterdir()} == {Path(f).name for f in figures}


def test_rewriting_prunes_figures_no_longer_used(report, small, tmp_path):
    write_report(report, tmp_path)
    old = set((tmp_path / "figures").iterdir())
    write_report(small, tmp_path)  # no plots: every figure of the first report is stale
    assert old and not any(p.exists() for p in old)


def test_an_interrupted_write_leaves_the_previous_report(small, tmp_path, monkeypatch):
    write_report(small, tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in REPORT_FILES}

    def interrupted(_report):
        raise KeyboardInterrupt

    monkeypatch.setattr("numerics.report.render_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(small, tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in REPORT_FILES} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.name != MANIFEST]


def test_a_failing_rename_is_one_line_and_leaves_no_staging(small, tmp_path, monkeypatch):
    import os

    real_replace = os.replace

    def failing(source, target):
        if str(target).endswith("report.md"):
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(IbcheckError, match="No space left on device"):
        write_report(small, tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.name != MANIFEST]
    monkeypatch.setattr(os, "replace", real_replace)
    write_report(small, tmp_path)  # what the failed run wrote is still the report's: no --force needed


# ---- the output folder belongs to the report (issue 20: a user's files were deleted or overwritten)
def test_a_folder_with_user_files_is_refused_and_left_untouched(small, tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "my_own_plot.png").write_bytes(b"mine")
    (tmp_path / "index.html").write_text("my page")
    with pytest.raises(IbcheckError, match="did not write .*figures/my_own_plot.png.*--force") as info:
        write_report(small, tmp_path)
    assert "\n" not in str(info.value)
    assert (tmp_path / "index.html").read_text() == "my page"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["figures", "index.html", "my_own_plot.png"]


def test_force_writes_but_never_deletes_a_user_file(report, small, tmp_path):
    (tmp_path / "figures").mkdir()
    mine = tmp_path / "figures" / "my_own_plot.png"
    mine.write_bytes(b"mine")
    write_report(report, tmp_path, force=True)
    write_report(small, tmp_path, force=True)  # prunes the first report's figures, not the user's
    assert mine.read_bytes() == b"mine" and sorted(p.name for p in (tmp_path / "figures").iterdir()) == [mine.name]
    with pytest.raises(IbcheckError, match="my_own_plot"):
        write_report(small, tmp_path)  # the user's file is still not the report's


def test_a_rerun_and_other_reports_and_kept_files_are_fine(small, tmp_path):
    write_report(small, tmp_path / "relu")  # e.g. `ibcheck check relu` writes reports/relu/
    write_report(small, tmp_path / "tanh")
    (tmp_path / "tanh" / MANIFEST).unlink()  # one written before manifests existed
    (tmp_path / "README.md").write_text("what this folder is")
    (tmp_path / KEEP).write_text("# files the report shares the folder with\nREADME.md\n")
    write_report(small, tmp_path)
    write_report(small, tmp_path)
    assert (tmp_path / "README.md").read_text() == "what this folder is"


def test_a_report_written_before_manifests_is_adopted(small, tmp_path):
    write_report(small, tmp_path)
    (tmp_path / MANIFEST).unlink()
    write_report(small, tmp_path)  # recognized by its report.json schema


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("blocker", ["report.json", "figures"])
def test_a_destination_of_the_wrong_kind_replaces_nothing(small, tmp_path, blocker, force):
    write_report(small, tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in REPORT_FILES if name != blocker}
    target = tmp_path / blocker
    if target.is_dir():
        shutil.rmtree(target)
        target.write_text("a file where the figures folder belongs")
    else:
        target.unlink()
        target.mkdir()
    with pytest.raises(IbcheckError) as info:
        write_report(small, tmp_path, force=force)
    assert blocker in str(info.value) and "\n" not in str(info.value)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_leftovers_of_a_killed_run_are_removed(small, tmp_path):
    write_report(small, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a process id that no longer runs
    (tmp_path / f"{STAGING_PREFIX}{dead}-0123abcd").mkdir()
    (tmp_path / f"{STAGING_PREFIX}{dead}-0123abcd" / "index.html").write_text("half")
    (tmp_path / ".index.html.0123456789ab.tmp").write_text("an older version's temporary")
    (tmp_path / "figures" / ".x.png.0123456789ab.tmp").write_text("half a figure")
    live = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-0123abcd"  # a run still going: not ours to remove
    live.mkdir()
    write_report(small, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == sorted([MANIFEST, live.name])
    assert not list((tmp_path / "figures").glob(".*"))


def test_unwritable_output_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(IbcheckError) as info:
        ensure_writable(tmp_path / "file" / "reports")
    assert "cannot write the report" in str(info.value) and "\n" not in str(info.value)


def test_plots_drawn_where_the_check_ran_are_not_drawn_again(report, monkeypatch):
    from numerics.report import figures

    ready = figures.drawn_record([LOG_PLOT])
    assert png_size(base64.b64decode(ready[0]["png"]))[0] == round(FIGURE_SIZE[0] * DPI)
    activation = ActivationReport("relu", "relu", "Max(0, x)", "", {}, [transform("relu", [1, 2, 3, 4])],
                                  drawn={"transform": ready})
    monkeypatch.setattr(figures, "render_png", lambda plot: (_ for _ in ()).throw(AssertionError("redrawn")))
    drawn = figures.draw_report(Report(**{**report.__dict__, "activations": [activation]}))
    assert drawn.by_result[("relu", "transform")][0].png == base64.b64decode(ready[0]["png"])
    assert drawn.overview.png is None and "redrawn" in drawn.overview.error  # only the overview was drawn here


def test_spectral_weight_overlay_comes_from_the_transform_details(report):
    curves = {a.label: a.result("transform").details["spectral_weight_curve"] for a in report.activations}
    plot = spectral_weight_plot(curves)
    assert plot.yscale == "log" and [s.label for s in plot.series] == ["relu", "tanh"]
    assert plot.series[1].y == [1.0, 2.0, 30.0, 4000.0]
    assert spectral_weight_plot({"exp": None}) is None


def test_render_png_handles_log_axes_nan_strings_and_many_series():
    png_size(render_png(LOG_PLOT))
    with_nan = Plot("nan", "x", "y", [Series("s", [1, 2, 3], [1.0, "nan", "inf"])], yscale="log")
    png_size(render_png(with_nan))
    many = Plot("many", "x", "y", [Series(f"s{i}", [1, 2], [i + 1, i + 2]) for i in range(15)], yscale="log")
    assert png_size(render_png(many)) == (840, 420)  # the wide figure, legend outside


def test_palette_png_keeps_the_line_colours():
    """Independent decoder (Pillow) on the palette PNG: every line colour drawn is still in the
    palette within 12/255 per channel (octree bins average a few antialiased shades)."""
    import io

    from PIL import Image

    from numerics.report.plots import QUALITATIVE

    plot = Plot("colours", "x", "y", [Series(f"s{i}", [0, 1], [i, i + 1]) for i in range(5)])
    image = Image.open(io.BytesIO(render_png(plot)))
    assert image.mode == "P"
    palette = image.getpalette()
    used = [tuple(palette[3 * index:3 * index + 3]) for _, index in image.getcolors()]
    for colour in QUALITATIVE[:5]:
        target = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        assert min(max(abs(a - b) for a, b in zip(entry, target)) for entry in used) <= 12, colour


@pytest.mark.parametrize("latex, expected", [
    (r"W(\omega)", "<mrow><mi>W</mi><mo stretchy=\"false\">(</mo><mi>\u03c9</mi><mo stretchy=\"false\">)</mo></mrow>"),
    (r"\hat\sigma", "<mrow><mover accent=\"true\"><mi>\u03c3</mi><mo>^</mo></mover></mrow>"),
    (r"\sigma^{(2)}", ("<mrow><msup><mi>\u03c3</mi><mrow><mo stretchy=\"false\">(</mo><mn>2</mn>"
                       "<mo stretchy=\"false\">)</mo></mrow></msup></mrow>")),
    (r"\frac{1}{2}", "<mrow><mfrac><mrow><mn>1</mn></mrow><mrow><mn>2</mn></mrow></mfrac></mrow>"),
    (r"x_{0}^{2}", "<mrow><msubsup><mi>x</mi><mrow><mn>0</mn></mrow><mrow><mn>2</mn></mrow></msubsup></mrow>"),
])
def test_latex_subset_to_mathml(latex, expected):
    assert latex_to_mathml(latex).toxml() == expected


@pytest.mark.parametrize("latex", [r"\begin{cases}", r"{x", r"x}"])
def test_latex_outside_the_subset_is_refused(latex):
    with pytest.raises(LatexSubsetError):
        latex_to_mathml(latex)


def test_mathml_for_piecewise_relations_and_constants():
    x = sp.Symbol("x", real=True)
    piecewise = to_mathml(sp.Piecewise((sp.exp(x) - 1, x < 0), (x, True)))
    assert "<mtable" in piecewise and "<mtext>otherwise</mtext>" in piecewise
    assert "<mo>&lt;</mo>" in piecewise  # sympy leaves '<' raw; it must be escaped
    assert '<mi mathvariant="normal">e</mi>' in piecewise
    assert "\u03b4" in to_mathml(sp.DiracDelta(x)) and ">step<" in to_mathml(sp.Heaviside(x))
    assert to_mathml(3) == to_mathml(sp.Integer(3))
    assert "<mtext>not sympy</mtext>" in to_mathml("not sympy")


@pytest.mark.parametrize("value, text", [
    (None, "\u2014"), (0.123456789, "0.1235"), (12, "12"), (True, "true"),
    ([1.0, 2.0, 3.0, 4.0, 5.0], "[1, 2, 3, 4, \u2026 (5 values)]"), ({"a": 1.5}, "a=1.5"), ("x" * 60, "x" * 47 + "\u2026"),
])
def test_short_values(value, text):
    assert short(value) == text


# ---- the real browser -----------------------------------------------------------------
needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="Chromium is not installed (apt-get install -y chromium)")


@pytest.mark.slow
@needs_chromium
def test_report_renders_in_headless_chromium(written):
    seen = check_in_browser(written / "index.html")
    assert seen.problems() == []
    assert seen.page["title"] == "test report"
    assert len(seen.page["images"]) == 3 and all(i["width"] > 0 for i in seen.page["images"])  # overview + 2 plots
    assert "math" in seen.page["fractionDisplay"]  # MathML laid out natively, not as inline text
    assert seen.page["fractionHeight"] > seen.page["lineHeight"]  # a real fraction is taller than a line


@pytest.mark.slow
@needs_chromium
def test_the_browser_check_notices_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>broken</title></head><body><p>text</p>'
                    '<img alt="corrupt" src="data:image/png;base64,AAAA">'
                    "<script>console.error('something failed')</script></body></html>")
    problems = check_in_browser(page).problems()
    assert "image did not load: corrupt" in problems
    assert any("something failed" in p for p in problems)


# ---- markup injection ------------------------------------------------------------------------
EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def _evil_report() -> Report:
    from numerics.verdicts import Criterion, Measurement, Premise, control, within

    m = Measurement.mean([1.0, 1.01, 0.99, 1.0, 1.0])
    plot = Plot(EVIL, EVIL, EVIL, [Series(EVIL, [1, 2], [1, 2])], note=EVIL)
    result = CheckResult(EVIL, EVIL, EVIL, EVIL, EVIL, "disagrees", reason=EVIL, tolerance_note=EVIL,
                         details={EVIL: EVIL, "traceback": EVIL}, parameters={EVIL: EVIL}, plots=[plot],
                         criteria=[Criterion(EVIL, EVIL, m, within(5.0, 0.1), EVIL)],
                         control=control(EVIL, EVIL, m, within(9.0, 0.1), EVIL),
                         premises=[Premise(EVIL, EVIL, True, EVIL)], setup=EVIL)
    error = CheckResult("broken", EVIL, None, None, None, "error", reason=EVIL, details={"traceback": EVIL})
    formula = {"key": EVIL, "meaning": EVIL, "text": EVIL, "latex": EVIL, "mathml": f"<math>{EVIL}</math>"}
    summary = {"expression": formula, "parameters": {EVIL: EVIL}, "results": [formula], "notes": [EVIL],
               "steps": [{"section": EVIL, "text": EVIL, "formula": EVIL, "mathml": EVIL}], "error": EVIL}
    activations = [ActivationReport(EVIL + str(i), EVIL, EVIL, EVIL, summary, [result, error], cached=[EVIL],
                                    drawn={EVIL: [{"error": EVIL}]}) for i in range(2)]
    checks = [{"id": EVIL, "title": EVIL, "claim": EVIL}, {"id": "broken", "title": EVIL, "claim": EVIL}]
    return Report(EVIL, activations, checks, EVIL, 0, {EVIL: EVIL}, EVIL, 1.0, {EVIL: EVIL}, EVIL, {EVIL: EVIL},
                  command=EVIL)


def test_no_field_can_inject_markup_into_the_html(tmp_path):
    write_report(_evil_report(), tmp_path)
    text = (tmp_path / "index.html").read_text()
    page = _Page(text)
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed")]
    handlers = [(t, k) for t, a in page.tags for k in a if k.startswith("on")]
    assert not handlers
    assert not [a for t, a in page.tags if t == "img" and not a.get("src", "").startswith("data:image/png;base64,")]
    assert "alert(1)" in text  # shown, as text


def test_stored_mathml_is_kept_only_when_it_is_pure_presentation_mathml():
    from numerics.report.mathml import sanitized_mathml, to_mathml

    genuine = to_mathml(sp.sympify("x**2/(1 + x)"))
    assert sanitized_mathml(genuine) is not None and "<mfrac>" in sanitized_mathml(genuine)
    for tampered in ("<math><script>alert(1)</script></math>", '<math onload="alert(1)"><mi>x</mi></math>',
                     '<math><mi style="background:url(x)">x</mi></math>', "<b>x</b>", "<math><!-- x --></math>",
                     '<math><a href="javascript:alert(1)">x</a></math>'):
        assert sanitized_mathml(tampered) is None, tampered


def test_every_registered_check_judges_named_claims_and_docs_list_them():
    from pathlib import Path

    from numerics.checks import all_checks
    from numerics.claims import CHECK_CLAIMS, CLAIMS, claims_markdown

    assert set(all_checks()) <= set(CHECK_CLAIMS), set(all_checks()) - set(CHECK_CLAIMS)
    assert all(c in CLAIMS for ids in CHECK_CLAIMS.values() for c in ids)
    docs = (Path(__file__).resolve().parent.parent / "docs" / "claims.md").read_text()
    for claim in CLAIMS.values():  # the committed docs list every claim with its statement
        assert f"### {claim.id}\n\n{claim.statement}\n" in docs
    assert claims_markdown().startswith("# Claims")


def test_reports_link_claim_ids_to_their_statements(tmp_path):
    from numerics.claims import claims_of

    result = CheckResult("transform", "relu", None, None, None, "not_applicable", reason="none")
    report = Report("t", [ActivationReport("relu", "relu", "x", "", {}, [result])],
                    [{"id": "transform", "title": "T", "claim": "P1"}], "quick", 0, {}, "now", 1.0, {}, "serial", {})
    write_report(report, tmp_path)
    text = (tmp_path / "index.html").read_text()
    claim = claims_of("transform")[0]
    assert f'href="#claim-{claim.id.lower()}"' in text and f'id="claim-{claim.id.lower()}"' in text
    assert claim.statement in text


# ---- Jupyter displays -------------------------------------------------------------------------
def _judged() -> CheckResult:
    from numerics.verdicts import Criterion, Measurement, Premise, control, within

    m = Measurement.mean([1.01, 0.99, 1.0, 1.02, 0.98])
    return CheckResult.from_dict(dict(CheckResult(
        "slope", "relu", None, None, None, "disagrees", criteria=[Criterion("slope_a", 2.0, m, within(2.0, 0.1))],
        control=control("slope_b", 1.0, m, within(1.0, 0.1)), premises=[Premise("lazy {regime}", 0.01, True)],
        plots=[LOG_PLOT]).to_dict(), verdict="agrees"))  # re-judged on reading: disagrees


def test_check_result_displays_its_verdict_criteria_and_plots_in_jupyter():
    result = _judged()
    page = _Page(result._repr_html_())
    assert [t for t, _ in page.tags].count("img") == 1
    assert not [t for t, _ in page.tags if t == "script"]
    rows = [r for r in page.rows if r]
    assert rows[0] == CRITERIA_HEADER_CELLS
    assert rows[1][:3] == ["judged", "slope_a", "2"] and rows[1][-1] == "fail"
    assert rows[2][0] == "control" and rows[2][-1] == "not rejected"  # estimate 1.0 sits on the wrong slope
    assert rows[3][:2] == ["premise", "lazy {regime}"]
    latex = result._repr_latex_()
    assert latex.startswith("$$\\text{slope on relu: disagrees}$$") and latex.endswith("\\end{array}$$")
    assert "\\text{slope\\_a}" in latex and "\\text{lazy \\{regime\\}}" in latex
    assert latex.count("{") == latex.count("}") + latex.count("\\}") - latex.count("\\{")


def test_a_suite_report_displays_its_counts_and_matrix_in_jupyter(report):
    page = _Page(report._repr_html_())
    assert sum(1 for t, a in page.tags if t == "a" and "--" in a.get("href", "")) == 2 * 4
    text = report._repr_html_()
    assert "test report" in text
    for outcome, count in report.counts().items():  # the five counts, each after its badge
        assert f'<span class="badge v-{outcome}">{VERDICT_LABELS[outcome]}</span> {count}' in text
    latex = report._repr_latex_()
    assert "\\text{relu}" in latex and "\\text{disagrees}" in latex and latex.count("\\\\") == 2


from numerics.report.formatting import VERDICT_LABELS  # noqa: E402

CRITERIA_HEADER_CELLS = ["role", "criterion", "prediction", "estimate", "95% interval", "accepted", "outcome"]


@pytest.mark.slow
@needs_chromium
def test_the_standard_suite_matrix_fits_a_1280_px_window_and_every_link_lands(tmp_path):
    """Every built-in x every registered check (plus room for two more), long check ids, at
    1280 x 800: no horizontal scrolling, sticky first column and header, no dangling link."""
    from numerics.checks import all_checks

    ids = list(all_checks()) + ["activation-specificity", "design-round-trip"]
    verdicts = ["agrees", "disagrees", "not_applicable", "error"]
    activations = [ActivationReport(name, name, name, "", {}, [
        CheckResult(check, name, None, None, None, verdicts[(i + j) % 4], reason="r") for j, check in enumerate(ids)])
        for i, name in enumerate(theory.builtin_names())]
    report = Report("suite", activations, [{"id": c, "title": c, "claim": "P1"} for c in ids], "quick", 0, {}, "now",
                    1.0, {}, "serial", {})
    write_report(report, tmp_path)
    seen = check_in_browser(tmp_path / "index.html")
    assert seen.problems() == []
    assert seen.page["matrix"]["cells"] == len(activations) * len(ids)
