"""Reports: render check results as a self-contained HTML page, Markdown and JSON.

Reports compute nothing: every number and plot comes from the
:class:`~numerics.checks.CheckResult` records (and their :class:`~numerics.checks.Plot` data)
and from the derivation summary (:mod:`numerics.report.derivation`) held in a
:class:`~numerics.report.model.Report`.  :func:`write_report` writes ``index.html``,
``report.md`` (with ``figures/``) and ``report.json`` atomically: everything is rendered
first, each file goes to a temporary file in the same folder, and only then are they renamed
into place, so an interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path

from theory.errors import IbcheckError

from .figures import draw_report
from .html_report import render_html
from .json_report import render_json, report_dict
from .markdown_report import FIGURE_FOLDER, render_markdown
from .model import ActivationReport, Report

REPORT_FILES = ("index.html", "report.md", "report.json")


def ensure_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and check that files can be written there (one-line error if not)."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(dir=path, prefix=".ibcheck-probe-")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as err:
        raise IbcheckError(f"cannot write the report to {str(path)!r}: {err.strerror or err}; "
                           "choose another folder with --out") from None
    return path


def _temporary(directory: Path, name: str, data: bytes) -> Path:
    """``data`` in a new hidden file next to its destination (mode 0666 less the umask, like open())."""
    temporary = directory / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def write_report(report: Report, directory: str | os.PathLike) -> dict[str, Path]:
    """Render and write the three report files (and the figures the Markdown uses); returns their paths."""
    directory = ensure_writable(directory)
    figures = draw_report(report)
    contents = {"index.html": render_html(report, figures), "report.md": render_markdown(report, figures),
                "report.json": render_json(report)}
    figure_folder = directory / FIGURE_FOLDER
    figure_folder.mkdir(exist_ok=True)
    used = {f.filename for f in figures.all() if f.png is not None}
    for figure in figures.all():
        target = figure_folder / figure.filename
        if figure.png is not None and not target.exists():  # content-addressed: same name, same bytes
            os.replace(_temporary(figure_folder, figure.filename, figure.png), target)
    temporaries: dict[str, Path] = {}
    try:
        for name, text in contents.items():
            temporaries[name] = _temporary(directory, name, text.encode())
        for name, temporary in list(temporaries.items()):
            os.replace(temporary, directory / name)
            del temporaries[name]
    finally:
        for temporary in temporaries.values():
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    for stale in figure_folder.glob("*.png"):  # figures only an older report used
        if stale.name not in used:
            with contextlib.suppress(OSError):
                stale.unlink()
    return {name: directory / name for name in REPORT_FILES}


__all__ = ["REPORT_FILES", "ActivationReport", "Report", "ensure_writable", "report_dict", "write_report"]
