"""Derivations as data: numbered steps, each a sentence and a formula, plus named results.

A :class:`Derivation` is what ``ibcheck derive`` prints and what a notebook shows.  It is made
of :class:`Section` objects (the spectral penalty, the adaptive-regime conditions, the
rank/margin constants, ...), each an ordered list of :class:`Step` and a dict of results.
It renders as plain text, Markdown (formulas in ``$$...$$``), LaTeX, or a JSON-ready dict,
and displays itself in Jupyter through ``_repr_markdown_``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sympy as sp


#: LaTeX spellings of the named quantities that appear on the left of derivation steps
_LATEX_NAMES: dict[sp.Symbol, str] = {}


def name(plain: str, latex: str) -> sp.Symbol:
    """A symbol standing for a named quantity: ``plain`` in text output, ``latex`` in LaTeX."""
    symbol = sp.Symbol(plain)
    _LATEX_NAMES[symbol] = latex
    return symbol


def _latex(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return sp.latex(value, symbol_names=_LATEX_NAMES)


def _plain(value: Any) -> Any:
    """JSON-ready form: sympy objects become strings, containers recurse."""
    if isinstance(value, sp.Basic):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) or isinstance(value, (int, str, bool)) or value is None:
        return value
    return str(value)


@dataclass
class Step:
    """One step: a sentence and (optionally) the formula it arrives at."""

    text: str
    formula: Any = None

    @property
    def latex(self) -> str:
        return _latex(self.formula)

    def plain_formula(self) -> str:
        if self.formula is None:
            return ""
        if isinstance(self.formula, str):
            return self.formula
        if isinstance(self.formula, sp.Equality):
            return f"{sp.sstr(self.formula.lhs)} = {sp.sstr(self.formula.rhs)}"
        return sp.sstr(self.formula)


@dataclass
class Section:
    """A titled group of steps and the results they establish."""

    title: str
    steps: list[Step] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    def step(self, text: str, formula: Any = None) -> Step:
        s = Step(text, formula)
        self.steps.append(s)
        return s


@dataclass
class Derivation:
    """An ordered set of sections about one subject (an activation or an architecture)."""

    subject: str
    expression: Any
    status: str
    sections: list[Section] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def results(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for s in self.sections:
            merged.update(s.results)
        return merged

    def numbered_steps(self):
        n = 0
        for section in self.sections:
            for step in section.steps:
                n += 1
                yield n, section, step

    # ---- renderers ----------------------------------------------------------------
    def to_text(self) -> str:
        lines = [f"Derivation for {self.subject}", f"  expression: {_plain(self.expression)}",
                 f"  status: {self.status}", ""]
        current = None
        for n, section, step in self.numbered_steps():
            if section is not current:
                current = section
                lines += [f"== {section.title} =="]
            lines.append(f"{n:>3}. {step.text}")
            if step.formula is not None:
                lines.append(f"       {step.plain_formula()}")
        lines += ["", "Results:"]
        for key, value in self.results.items():
            lines.append(f"  {key}: {_plain(value)}")
        if self.verification:
            lines += ["", "Verification:"]
            for key, value in self.verification.items():
                lines.append(f"  {key}: {_plain(value)}")
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [f"# Derivation for `{self.subject}`", "",
                 f"$$\\sigma(x) = {_latex(self.expression)}$$", "", f"Status: **{self.status}**", ""]
        current = None
        for n, section, step in self.numbered_steps():
            if section is not current:
                current = section
                lines += [f"## {section.title}", ""]
            lines.append(f"{n}. {step.text}")
            if step.formula is not None:
                lines += ["", f"   $$ {step.latex} $$", ""]
        if self.verification:
            lines += ["", "## Verification", ""]
            lines += [f"- {k}: {_plain(v)}" for k, v in self.verification.items()]
        lines += [f"\n> {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        def esc(text: str) -> str:
            return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%") \
                .replace("&", r"\&").replace("#", r"\#")

        lines = [f"\\section*{{Derivation for \\texttt{{{esc(self.subject)}}}}}",
                 f"\\[ \\sigma(x) = {_latex(self.expression)} \\]", f"Status: {esc(self.status)}."]
        current = None
        for _, section, step in self.numbered_steps():
            if section is not current:
                if current is not None:
                    lines.append("\\end{enumerate}")
                current = section
                lines += [f"\\subsection*{{{esc(section.title)}}}", "\\begin{enumerate}"]
            lines.append(f"  \\item {esc(step.text)}")
            if step.formula is not None:
                lines.append(f"  \\[ {step.latex} \\]")
        if current is not None:
            lines.append("\\end{enumerate}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        data = {"activation": self.subject, "expression": _plain(self.expression), "status": self.status}
        data.update(_plain(self.results))
        data["steps"] = [{"section": s.title, "text": st.text, "latex": st.latex}
                         for _, s, st in self.numbered_steps()]
        data["verification"] = _plain(self.verification)
        data["notes"] = list(self.notes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render(self, fmt: str) -> str:
        renderers = {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex,
                     "json": self.to_json}
        return renderers[fmt]()

    def _repr_markdown_(self) -> str:  # Jupyter
        return self.to_markdown()
