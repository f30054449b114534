"""What a report shows: check results per activation and how the run was made.

:class:`Report` is the input of every writer (HTML, Markdown, JSON).  It is produced by
:func:`numerics.suite.run_suite` and holds only data: :class:`~numerics.checks.CheckResult`
records (with their :class:`~numerics.checks.Plot` data) and the derivation summary of each
activation (:func:`numerics.report.derivation.derivation_summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from numerics.checks import CheckResult
from numerics.verdicts import OUTCOMES


@dataclass
class ActivationReport:
    """One activation: how it was asked for, its derivation summary and its check results."""

    label: str
    spec: str
    expression: str
    description: str
    derivation: dict
    results: list[CheckResult]
    cached: list[str] = field(default_factory=list)  # check ids (and "derivation") served from the cache
    drawn: dict[str, list[dict]] = field(default_factory=dict)  # check id -> plots already drawn (figures.drawn_record)

    def result(self, check_id: str) -> CheckResult | None:
        return next((r for r in self.results if r.check == check_id), None)


@dataclass
class Report:
    """A run: activations x checks, with everything needed to reproduce it."""

    title: str
    activations: list[ActivationReport]
    checks: list[dict]  # {"id", "title", "claim"} in report order
    profile: str
    seed: int
    options: dict
    started: str  # ISO 8601, local time with offset
    runtime_s: float
    environment: dict
    executor: str
    cache: dict
    command: str = ""

    def counts(self) -> dict[str, int]:
        """How many results have each of the five outcomes."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for activation in self.activations:
            for result in activation.results:
                counts[result.verdict] = counts.get(result.verdict, 0) + 1
        return counts

    def _repr_html_(self) -> str:  # Jupyter: the five counts and the outcome matrix
        from .html_report import report_fragment

        return report_fragment(self)

    def _repr_latex_(self) -> str:  # Jupyter (LaTeX front ends): the outcome matrix as a table
        from .formatting import latex_table, verdict_label

        rows = [[a.label] + [verdict_label(r) if (r := a.result(c["id"])) else "" for c in self.checks]
                for a in self.activations]
        return latex_table(["activation"] + [c["id"] for c in self.checks], rows)

    def problems(self) -> list[tuple[str, CheckResult]]:
        """(activation label, result) for every ``disagrees``, ``inconclusive`` and ``error``, in report order."""
        return [(a.label, r) for a in self.activations for r in a.results
                if r.verdict in ("disagrees", "inconclusive", "error")]
