"""The Markdown report: the same tables as the HTML, formulas as ``$$ LaTeX $$``, plots as
PNG files in ``figures/`` next to it (content-addressed names)."""

from __future__ import annotations

from .figures import Figure, Figures
from .formatting import CRITERIA_HEADER, VERDICT_LABELS, criteria_rows, cut, full, seconds, short, verdict_label
from .model import ActivationReport, Report
from .plots import scale_note

FIGURE_FOLDER = "figures"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _figure(figure: Figure, caption: str) -> list[str]:
    note = " ".join(n for n in (figure.plot.note, scale_note(figure.plot)) if n)
    note = f" {note}" if note else ""
    if figure.png is None:
        return [f"*The plot \u201c{figure.plot.title}\u201d could not be drawn: {figure.error}*", ""]
    return [f"![{figure.plot.title}]({FIGURE_FOLDER}/{figure.filename})", "", f"*{caption}*{note}", ""]


def _derivation(summary: dict) -> list[str]:
    lines = ["### Derivation summary", ""]
    if summary.get("expression"):
        lines += [f"$$ {summary['expression']['latex']} $$", ""]
    if summary.get("parameters"):
        lines += ["Parameter values: " + ", ".join(f"{k} = {v}" for k, v in summary["parameters"].items())
                  + ". Formulas keep them symbolic.", ""]
    if summary.get("error"):
        lines += [f"The derivation failed: {summary['error']}", ""]
    for result in summary.get("results", []):
        lines += [f"- {result['meaning']}:", "", f"  $$ {result['latex']} $$", ""]
    lines += [f"> {note}" for note in summary.get("notes", [])]
    return lines + [""]


def _activation(activation: ActivationReport, report: Report, figures: Figures) -> list[str]:
    titles = {c["id"]: c for c in report.checks}
    lines = [f"## {activation.label}", "",
             f"{activation.description or 'user formula'}; asked as `{activation.spec}`; `{activation.expression}`", ""]
    lines += _derivation(activation.derivation or {})
    rows = []
    for r in activation.results:
        check = titles.get(r.check, {"title": r.check, "claim": ""})
        why = r.reason + (f" (tolerance: {r.tolerance_note})" if r.tolerance_note else "")
        rows.append([f"**{r.check}** {check['title']} [{check['claim']}]", verdict_label(r),
                     full(r.prediction), full(r.measured), full(r.tolerance), why, str(r.seed),
                     seconds(r.runtime_s) + (" (cached)" if r.check in activation.cached else "")])
    lines += ["### Verdicts", ""]
    lines += _table(["check", "verdict", "predicted", "measured", "tolerance", "why", "seed", "time"], rows)
    for r in activation.results:
        if r.criteria:
            lines += [f"**{r.check}**: criteria, control and premises", ""]
            lines += _table(CRITERIA_HEADER, criteria_rows(r))
    groups = [(r, figures.by_result.get((activation.label, r.check), [])) for r in activation.results]
    if any(group for _, group in groups):
        lines += ["### Plots", ""]
        for result, group in groups:
            for figure in group:
                lines += _figure(figure, f"{result.check}: {figure.plot.title}.")
    return lines


def render_markdown(report: Report, figures: Figures) -> str:
    counts = ", ".join(f"{VERDICT_LABELS[v]}: {n}" for v, n in report.counts().items())
    lines = [f"# {report.title}", "",
             (f"{len(report.activations)} activation(s), {len(report.checks)} check(s), profile **{report.profile}**, "
              f"seed {report.seed}, {report.started}, {seconds(report.runtime_s)}. Verdicts: {counts}."), "",
             ("The HTML version (`index.html`) has the same content with the formulas rendered; `report.json` has "
              "every number."), ""]
    if len(report.activations) > 1:
        rows = []
        for activation in report.activations:
            row = [activation.label]
            for check in report.checks:
                r = activation.result(check["id"])
                if r is None:
                    row.append("\u2014")
                elif r.verdict in ("agrees", "disagrees"):
                    row.append(f"**{VERDICT_LABELS[r.verdict]}**: {short(r.measured, 32)} vs {short(r.prediction, 32)}")
                else:
                    row.append(f"**{verdict_label(r)}**: {cut(r.reason, 60)}")
            rows.append(row)
        lines += ["## Summary", "", "Cells: verdict, then measured vs predicted (or why there is no verdict).", ""]
        lines += _table(["activation"] + [c["id"] for c in report.checks], rows)
    problems = report.problems()
    if problems:
        lines += ["## What did not agree (or could not be decided), and why", ""]
        lines += [f"- {label} / **{r.check}** ({verdict_label(r)}): {r.reason}" for label, r in problems]
        lines.append("")
    if figures.overview is not None:
        lines += ["## Spectral weights", ""] + _figure(figures.overview, figures.overview.plot.title + ".")
    for activation in report.activations:
        lines += _activation(activation, report, figures)
    lines += ["## How this report was made", ""]
    lines += _table(["", ""], [["command", f"`{report.command}`"], ["profile", report.profile],
                               ["seed", str(report.seed)], ["options", str(report.options or "none")],
                               ["started", report.started], ["run time", seconds(report.runtime_s)],
                               ["executor", report.executor],
                               ["cache", ", ".join(f"{k}: {v}" for k, v in report.cache.items())]]
                    + [[f"version: {k}", str(v)] for k, v in report.environment.items()])
    return "\n".join(lines) + "\n"
