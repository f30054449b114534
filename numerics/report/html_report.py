"""The self-contained HTML report: one file, plots embedded as base64 PNG, math as MathML.

It opens offline in any current browser (presentation MathML renders natively in Chromium
109+, Firefox and Safari); there is no script and no external resource.
"""

from __future__ import annotations

import base64
from html import escape

from numerics.checks import CheckResult
from numerics.claims import claims_of

from .figures import Figure, Figures
from .formatting import CRITERIA_HEADER, VERDICT_LABELS, criteria_rows, cut, full, seconds, slug, verdict_label
from .mathml import sanitized_mathml
from .plots import scale_note
from .model import ActivationReport, Report

_CSS = """
:root { --agrees: #1a7f37; --disagrees: #cf222e; --inconclusive: #8250df; --not_applicable: #6e7781; --error: #9a6700; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 1.5rem; color: #1f2328; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.4rem; }
.meta, .muted { color: #57606a; } code { background: #f6f8fa; padding: 0 .25em; border-radius: 4px; }
table { border-collapse: collapse; margin: .6rem 0; font-size: 13.5px; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
.scroll { overflow-x: auto; }
.badge { display: inline-block; border-radius: 1em; padding: 0 .55em; color: #fff; font-size: 12px; font-weight: 600;
         white-space: nowrap; }
.v-agrees .badge, .badge.v-agrees { background: var(--agrees); }
.v-disagrees .badge, .badge.v-disagrees { background: var(--disagrees); }
.v-not_applicable .badge, .badge.v-not_applicable { background: var(--not_applicable); }
.v-inconclusive .badge, .badge.v-inconclusive { background: var(--inconclusive); }
.v-error .badge, .badge.v-error { background: var(--error); }
td.v-disagrees { background: #ffebe9; } td.v-error { background: #fff8c5; }
.cell { font-size: 11.5px; color: #3d444d; margin-top: .15rem; max-width: 13rem; }
.matrix-wrap { overflow: auto; max-height: 80vh; }
table.matrix { font-size: 13px; margin: 0; } table.matrix td { text-align: center; padding: 0; width: 1.9rem; }
table.matrix td a { display: block; padding: .15rem 0; text-decoration: none; color: inherit; font-weight: 700; }
table.matrix th { position: sticky; top: 0; z-index: 2; background: #f6f8fa; }
table.matrix tbody th { left: 0; top: auto; z-index: 1; white-space: nowrap; font-weight: 500; }
table.matrix th.corner { left: 0; z-index: 3; vertical-align: bottom; }
table.matrix th.check { height: 9.5rem; vertical-align: bottom; padding: .3rem .1rem; }
table.matrix th.check span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
table.matrix td.v-agrees { background: #dafbe1; color: var(--agrees); }
table.matrix td.v-disagrees { background: #ffebe9; color: var(--disagrees); }
table.matrix td.v-inconclusive { background: #fbefff; color: var(--inconclusive); }
table.matrix td.v-error { background: #fff8c5; color: var(--error); }
table.matrix td.v-not_applicable { color: #8c959f; }
.legend span { margin-right: 1rem; } .legend .sym { display: inline-block; width: 1.1rem; text-align: center; }
.filter { margin-left: 0; } label { margin-right: 1.2rem; font-size: 13.5px; }
#hide-na:checked ~ .matrix-wrap td.v-not_applicable a { visibility: hidden; }
#only-problems:checked ~ .matrix-wrap tr.fine { display: none; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: 13px; color: #57606a; max-width: 640px; }
.plot-error { color: var(--error); }
math { font-size: 1.12em; font-family: "STIX Two Math", "Cambria Math", "Latin Modern Math", "DejaVu Math TeX Gyre", math; }
math[display="block"] { margin: .35rem 0; }
.formulas td:first-child { color: #57606a; width: 16rem; }
table.verdicts { width: 100%; } tr.why td { border-top: none; font-size: 12.5px; }
tr.first td { border-bottom: none; } tr.first td:nth-child(7) { white-space: nowrap; } table.verdicts td:nth-child(3), table.verdicts td:nth-child(4) { max-width: 24rem; }
details { margin: .5rem 0; } summary { cursor: pointer; color: #0969da; }
ol.steps li { margin-bottom: .5rem; } pre { white-space: pre-wrap; font-size: 12px; background: #f6f8fa; padding: .5rem; }
"""


def _badge(verdict: str, label: str | None = None) -> str:
    return f'<span class="badge v-{verdict}">{escape(label or VERDICT_LABELS.get(verdict, verdict))}</span>'


def _criteria(result: CheckResult) -> str:
    """The criteria, control and premises of a result as a table (empty when it has none)."""
    if not result.criteria:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in CRITERIA_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in criteria_rows(result))
    return f'<table class="criteria"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def anchors(report: Report) -> dict[str, str]:
    """Activation label -> unique id of its section (the index keeps similar formulas apart)."""
    return {a.label: f"act-{n}-{slug(a.label)}" for n, a in enumerate(report.activations, start=1)}


def _figure(figure: Figure, caption: str) -> str:
    plot = figure.plot
    note = " ".join(n for n in (plot.note, scale_note(plot)) if n)
    note = f" {escape(note)}" if note else ""
    text = f"<figcaption><b>{escape(caption)}</b>{note}</figcaption>"
    if figure.png is None:
        return f'<figure><p class="plot-error">The plot &ldquo;{escape(plot.title)}&rdquo; could not be drawn: ' \
               f"{escape(figure.error)}</p>{text}</figure>"
    data = base64.b64encode(figure.png).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(plot.title, quote=True)}">{text}</figure>'


#: the symbol of each outcome in the summary matrix
SYMBOLS = {"agrees": "\u2713", "disagrees": "\u2717", "inconclusive": "?", "not_applicable": "\u00b7",
           "error": "!"}


def result_anchor(activation_anchor: str, check_id: str) -> str:
    """The id of one check's row in an activation's section (the summary matrix links to it)."""
    return f"{activation_anchor}--{slug(check_id)}"


def _summary_matrix(report: Report, anchor: dict[str, str]) -> str:
    """Activations x checks as outcome symbols: sticky first column and header, rotated check ids,
    every cell a link to its check's row; CSS-only filters (no script) hide n/a cells or keep only
    the rows with a disagreement, an undecided claim or an error."""
    head = "".join(f'<th class="check" title="{escape(c["title"], quote=True)}"><span>{escape(c["id"])}</span></th>'
                   for c in report.checks)
    rows = []
    for activation in report.activations:
        cells = []
        for check in report.checks:
            result = activation.result(check["id"])
            if result is None:
                cells.append("<td></td>")
                continue
            tip = f"{check['id']}: {verdict_label(result)}. {result.reason}"
            cells.append(f'<td class="v-{result.verdict}"><a href="#{result_anchor(anchor[activation.label], check["id"])}"'
                         f' title="{escape(cut(tip, 400), quote=True)}">{SYMBOLS[result.verdict]}</a></td>')
        problem = any(r.verdict in ("disagrees", "inconclusive", "error") for r in activation.results)
        rows.append(f'<tr class="{"problem" if problem else "fine"}"><th><a href="#{anchor[activation.label]}">'
                    f'{escape(cut(activation.label, 28))}</a></th>{"".join(cells)}</tr>')
    legend = " ".join(f'<span class="v-{v}"><b class="sym">{SYMBOLS[v]}</b> {escape(VERDICT_LABELS[v])}</span>'
                      for v in SYMBOLS)
    return ('<input type="checkbox" id="hide-na" class="filter"><label for="hide-na">hide n/a</label> '
            '<input type="checkbox" id="only-problems" class="filter"><label for="only-problems">only rows with a '
            'disagreement, an undecided claim or an error</label>'
            f'<p class="legend">{legend}</p>'
            f'<div class="matrix-wrap"><table class="matrix"><thead><tr><th class="corner">activation</th>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div>')


def _formula(entry: dict) -> str:
    """MathML when the summary has it (and it is nothing but presentation MathML), else the
    plain-text formula, escaped."""
    mathml = sanitized_mathml(entry["mathml"]) if entry.get("mathml") else None
    return mathml or f"<code>{escape(str(entry.get('text') or entry.get('formula') or ''))}</code>"


def _derivation(activation: ActivationReport) -> str:
    summary = activation.derivation or {}
    parts = ["<h3>Derivation summary</h3>"]
    if summary.get("expression"):
        parts.append(_formula(summary["expression"]))
    if summary.get("parameters"):
        values = ", ".join(f"{escape(k)} = {escape(v)}" for k, v in summary["parameters"].items())
        parts.append(f'<p class="muted">Parameter values: {values}. Formulas keep them symbolic.</p>')
    if summary.get("error"):
        parts.append(f'<p class="plot-error">The derivation failed: {escape(summary["error"])}</p>')
    rows = "".join(f'<tr><td>{escape(r.get("meaning", r.get("key", "")))}</td><td>{_formula(r)}</td></tr>'
                   for r in summary.get("results", []))
    if rows:
        parts.append(f'<table class="formulas">{rows}</table>')
    parts += [f'<p class="muted">{escape(note)}</p>' for note in summary.get("notes", [])]
    steps = summary.get("steps", [])
    if steps:
        items = []
        for step in steps:
            formula = _formula(step) if step.get("formula") else ""
            items.append(f"<li><span class=\"muted\">[{escape(step['section'])}]</span> {escape(step['text'])}{formula}</li>")
        parts.append(f'<details><summary>All {len(steps)} derivation steps</summary>'
                     f'<ol class="steps">{"".join(items)}</ol></details>')
    return "".join(parts)


def _verdict_table(activation: ActivationReport, report: Report, anchor: str) -> str:
    """One row of numbers per check, then a full-width row saying why (and how the tolerance was chosen)."""
    titles = {c["id"]: c for c in report.checks}
    rows = []
    for result in activation.results:
        check = titles.get(result.check, {"title": result.check, "claim": ""})
        why = f"<b>Why:</b> {escape(result.reason)}"
        if result.tolerance_note:
            why += f'<br><span class="muted"><b>Tolerance:</b> {escape(result.tolerance_note)}</span>'
        cached = " (cached)" if result.check in activation.cached else ""
        rows.append(
            f'<tr class="v-{result.verdict} first" id="{result_anchor(anchor, result.check)}"><td><b>{escape(result.check)}</b><br>'
            f'<span class="muted">{escape(check["title"])} {_claim_links(result.check, check["claim"])}</span></td>'
            f"<td>{_badge(result.verdict, verdict_label(result))}</td><td>{escape(full(result.prediction))}</td>"
            f"<td>{escape(full(result.measured))}</td><td>{escape(full(result.tolerance))}</td>"
            f"<td>{escape(str(result.seed))}</td><td>{seconds(result.runtime_s)}{cached}</td></tr>"
            f'<tr class="why"><td colspan="7">{why}{_criteria(result)}</td></tr>')
    return ('<div class="scroll"><table class="verdicts"><thead><tr><th>check</th><th>verdict</th><th>predicted</th>'
            "<th>measured</th><th>tolerance</th><th>seed</th><th>time</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _claim_links(check_id: str, fallback: str) -> str:
    """The check's claim ids, each linked to its entry in the report's claims section."""
    claims = claims_of(check_id)
    if not claims:
        return f"[{escape(fallback)}]"
    return "[" + ", ".join(f'<a href="#claim-{slug(c.id)}">{escape(c.id)}</a>' for c in claims) + "]"


def _claims_section(report: Report) -> str:
    """The statement and source of every claim the report's checks judge (docs/claims.md has all)."""
    seen = []
    for check in report.checks:
        seen += [c for c in claims_of(check["id"]) if c not in seen]
    if not seen:
        return ""
    items = "".join(f'<li id="claim-{slug(c.id)}"><b>{escape(c.id)}</b> ({escape(c.kind)}): {escape(c.statement)} '
                    f'<span class="muted">{escape(c.source)}, {escape(c.section)}.</span></li>' for c in seen)
    return ('<section id="claims"><h2>Claims judged here</h2><p class="muted">Every claim of ibcheck, with the '
            "criteria that judge it, is listed in docs/claims.md of the project.</p>"
            f"<ul>{items}</ul></section>")


def _errors(results: list[CheckResult]) -> str:
    parts = []
    for result in results:
        trace = result.details.get("traceback") if isinstance(result.details, dict) else None
        if result.verdict == "error" and trace:
            parts.append(f"<details><summary>Traceback of {escape(result.check)}</summary>"
                         f"<pre>{escape(str(trace))}</pre></details>")
    return "".join(parts)


def _activation_section(activation: ActivationReport, report: Report, figures: Figures, anchor: str) -> str:
    parts = [f'<section class="activation" id="{anchor}"><h2>{escape(activation.label)}</h2>',
             (f'<p class="muted">{escape(activation.description or "user formula")} &middot; asked as '
              f"<code>{escape(activation.spec)}</code> &middot; <code>{escape(activation.expression)}</code></p>"),
             _derivation(activation), "<h3>Verdicts</h3>", _verdict_table(activation, report, anchor),
             _errors(activation.results)]
    plotted = [(r, figures.by_result.get((activation.label, r.check), [])) for r in activation.results]
    if any(group for _, group in plotted):
        parts.append("<h3>Plots</h3>")
        for result, group in plotted:
            parts += [_figure(f, f"{result.check}: {f.plot.title}.") for f in group]
    parts.append("</section>")
    return "".join(parts)


def _run_details(report: Report) -> str:
    rows = [("command", report.command), ("profile", report.profile), ("seed", report.seed),
            ("options", ", ".join(f"{k}={v}" for k, v in report.options.items()) or "none"),
            ("started", report.started), ("run time", seconds(report.runtime_s)), ("executor", report.executor),
            ("cache", ", ".join(f"{k}: {v}" for k, v in report.cache.items()))]
    rows += [(f"version: {k}", v) for k, v in report.environment.items()]
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<section id="run"><h2>How this report was made</h2><table>{body}</table>' \
           "<p class=\"muted\">Every number, tolerance and parameter is in <code>report.json</code> next to this file.</p></section>"


def render_html(report: Report, figures: Figures) -> str:
    anchor = anchors(report)
    counts = report.counts()
    tally = " &middot; ".join(f"{_badge(v)} {n}" for v, n in counts.items())
    parts = [('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
              '<meta name="viewport" content="width=device-width, initial-scale=1">'
              f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>"),
             (f"<header><h1>{escape(report.title)}</h1><p class=\"meta\">{len(report.activations)} activation(s) "
              f"&middot; {len(report.checks)} check(s) &middot; profile <b>{escape(report.profile)}</b> &middot; seed "
              f"{report.seed} &middot; {escape(report.started)} &middot; {seconds(report.runtime_s)}</p>"
              f"<p>{tally}</p></header>")]
    if len(report.activations) > 1:
        parts += [('<section id="summary"><h2>Summary</h2><p class="muted">Rows: activations; columns: checks. '
                   "Each cell is the outcome; it links to the check's criteria, interval and control below (hover "
                   "for the reason). Claim ids are explained in docs/claims.md of the project.</p>"),
                  _summary_matrix(report, anchor), "</section>"]
    problems = report.problems()
    if problems:
        items = "".join(f'<li><a href="#{anchor[label]}">{escape(label)}</a> &middot; <b>{escape(r.check)}</b> '
                        f"{_badge(r.verdict, verdict_label(r))} {escape(r.reason)}</li>" for label, r in problems)
        parts.append(f'<section id="problems"><h2>What did not agree (or could not be decided), and why</h2><ul>{items}</ul></section>')
    if figures.overview is not None:
        parts += ['<section id="spectral-weights"><h2>Spectral weights</h2>',
                  _figure(figures.overview, figures.overview.plot.title + "."), "</section>"]
    parts += [_activation_section(a, report, figures, anchor[a.label]) for a in report.activations]
    parts += [_claims_section(report), _run_details(report), "</body></html>\n"]
    return "\n".join(parts)


def result_fragment(result: CheckResult) -> str:
    """One result as an HTML fragment for Jupyter: the outcome, the reason, the criteria,
    control and premises, and its plots (drawn here)."""
    from .figures import draw

    figures = "".join(_figure(draw(plot), f"{result.check}: {plot.title}.") for plot in result.plots)
    return (f"<div><style>{_CSS.replace('body {', '.ibcheck-none {')}</style>"
            f"<p><b>{escape(result.check)}</b> on <code>{escape(result.activation)}</code>: "
            f"{_badge(result.verdict, verdict_label(result))}</p><p>{escape(result.reason)}</p>"
            f"{_criteria(result)}{figures}</div>")


def report_fragment(report: Report) -> str:
    """A run's results as an HTML fragment for Jupyter: the five counts and the outcome matrix."""
    anchor = anchors(report)
    tally = " &middot; ".join(f"{_badge(v)} {n}" for v, n in report.counts().items())
    return (f"<div><style>{_CSS.replace('body {', '.ibcheck-none {')}</style><p><b>{escape(report.title)}</b>: "
            f"{len(report.activations)} activation(s) x {len(report.checks)} check(s), profile "
            f"{escape(report.profile)}, seed {report.seed}</p><p>{tally}</p>{_summary_matrix(report, anchor)}</div>")
