"""Reports: render check results as a self-contained HTML page, Markdown and JSON.

Reports compute nothing: every number and plot comes from the
:class:`~numerics.checks.CheckResult` records (and their :class:`~numerics.checks.Plot` data)
and from the derivation summary (:mod:`numerics.report.derivation`) held in a
:class:`~numerics.report.model.Report`.  :func:`write_report` writes ``index.html``,
``report.md`` (with ``figures/``) and ``report.json`` as one set into a folder the report owns:
everything is rendered first, written to a staging folder, and only then moved into place, so
an interrupted run leaves the previous report intact; a folder holding files the report did
not write is refused unless ``force`` (:mod:`numerics.report.folder`).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import folder
from .figures import draw_report
from .html_report import render_html
from .json_report import render_json, report_dict
from .markdown_report import FIGURE_FOLDER, render_markdown
from .model import ActivationReport, Report

REPORT_FILES = ("index.html", "report.md", "report.json")


def ensure_writable(directory: str | os.PathLike, force: bool = False) -> Path:
    """Create ``directory`` if needed and check that the report may be written there (one-line error if not).

    The folder must be writable and hold only what earlier reports wrote, unless ``force``
    (:mod:`numerics.report.folder`); leftovers of interrupted runs are removed.
    """
    return folder.prepare(directory, REPORT_FILES, FIGURE_FOLDER, force)


def write_report(report: Report, directory: str | os.PathLike, force: bool = False) -> dict[str, Path]:
    """Render and write the three report files (and the figures the Markdown uses) as one set; returns their paths."""
    directory = ensure_writable(directory, force)
    figures = draw_report(report)
    contents = {"index.html": render_html(report, figures), "report.md": render_markdown(report, figures),
                "report.json": render_json(report)}
    pictures = {f.filename: f.png for f in figures.all() if f.png is not None}
    folder.write_set(directory, {name: text.encode() for name, text in contents.items()}, FIGURE_FOLDER, pictures)
    return {name: directory / name for name in REPORT_FILES}


__all__ = ["REPORT_FILES", "ActivationReport", "Report", "ensure_writable", "report_dict", "write_report"]
