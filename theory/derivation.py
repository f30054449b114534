"""Derivations as data: numbered steps, each a sentence and a formula, plus named results.

A :class:`Derivation` is what ``ibcheck derive`` prints and what a notebook shows.  It is made
of :class:`Section` objects (the spectral penalty, the adaptive-regime conditions, the
rank/margin constants, ...), each an ordered list of :class:`Step` and a dict of results.
It renders as plain text, Markdown (formulas in ``$$...$$``), LaTeX, or a JSON-ready dict,
and displays itself in Jupyter (``_repr_html_``, ``_repr_markdown_``, ``_repr_latex_``), the
mathematics inside its sentences typeset by :func:`theory.prose.typeset_prose`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .prose import prose_spans, typeset_prose


#: LaTeX spellings of the named quantities that appear on the left of derivation steps
_LATEX_NAMES: dict[sp.Symbol, str] = {}


def name(plain: str, latex: str, **assumptions) -> sp.Symbol:
    """A symbol standing for a named quantity: ``plain`` in text output, ``latex`` in LaTeX.

    The spelling is global (sympy's printer looks it up by symbol), so one plain name has one
    LaTeX spelling: a second, different one is a bug that would make every derivation's LaTeX
    depend on which module ran first, and raises."""
    symbol = sp.Symbol(plain, **assumptions)
    if _LATEX_NAMES.setdefault(symbol, latex) != latex:
        raise ValueError(f"{plain!r} is already spelled {_LATEX_NAMES[symbol]!r} in LaTeX, not {latex!r}")
    return symbol


#: inline-math delimiters of LaTeX documents and of MathJax in HTML
INLINE_LATEX = (r"\(", r"\)")


class _LatexPrinter(LatexPrinter):
    """sympy's LaTeX, with the Heaviside step written :math:`\\operatorname{step}(x)`: sympy's
    :math:`\\theta(x)` would clash with :math:`\\theta = w/\\rho` of the RS coordinates."""

    def _print_Heaviside(self, expr, exp=None):
        tex = r"\operatorname{step}\left(%s\right)" % self._print(expr.args[0])
        return tex if exp is None else f"{tex}^{{{exp}}}"


def _latex(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _LatexPrinter({"symbol_names": _LATEX_NAMES}).doprint(value)


def _latex_text(text: str) -> str:
    """Words for a LaTeX document (its special characters escaped)."""
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%") \
        .replace("&", r"\&").replace("#", r"\#").replace("$", r"\$").replace("^", r"\^{}")


def exported_name(symbol: sp.Symbol) -> str:
    """The name ``symbol`` gets in exported strings: its own, unless ``sympy.sympify`` would read
    that name as something else (``beta`` is sympy's beta function, ``gamma``, ``zeta``, ``E``,
    ``I``, ``N``, ``S``, ``O``, ``Q`` likewise); then the name with a trailing underscore (``beta_``)."""
    if not symbol.name.isidentifier():  # a display name such as \\partial_\\beta: not parsed back
        return symbol.name
    try:
        read_back = sp.sympify(symbol.name)
    except (sp.SympifyError, SyntaxError, TypeError):
        read_back = None
    clashes = not (isinstance(read_back, sp.Symbol) and read_back.name == symbol.name)
    return symbol.name + "_" if clashes else symbol.name


def export_string(value: sp.Basic) -> str:
    """``str(value)`` with every free symbol renamed by :func:`exported_name`, so that
    ``sympy.sympify`` on the string reads back the same expression (up to symbol assumptions)."""
    renames = {s: sp.Symbol(exported_name(s), **s.assumptions0) for s in value.free_symbols
               if isinstance(s, sp.Symbol) and exported_name(s) != s.name}
    return str(value.xreplace(renames) if renames else value)


def _plain(value: Any) -> Any:
    """JSON-ready form: sympy objects become strings (:func:`export_string`), containers recurse."""
    if isinstance(value, sp.Basic):
        return export_string(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) or isinstance(value, (int, str, bool)) or value is None:
        return value
    return str(value)


def _bind(value: Any, values: dict[sp.Symbol, Any]) -> Any:
    """``value`` with parameter symbols replaced by their values (containers recurse)."""
    if not values:
        return value
    if isinstance(value, sp.Basic):
        return value.subs(values)
    if isinstance(value, dict):
        return {k: _bind(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_bind(v, values) for v in value)
    return value


def _has_expression(value: Any) -> bool:
    if isinstance(value, sp.Basic):
        return True
    if isinstance(value, dict):
        return any(_has_expression(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_expression(v) for v in value)
    return False


#: version of the ``derive --format json`` layout (``theory/schemas/derive.schema.json``)
DERIVE_SCHEMA_VERSION = "1.0"


def _unavailable_tag(section: "Section") -> str:
    return f" (unavailable: {section.reason})" if section.status != "available" else ""


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
    """A titled group of steps and the results they establish.

    ``status`` is ``"available"``, or ``"unavailable"`` with the ``reason`` (a section that could
    not be derived: the others still are).
    """

    title: str
    steps: list[Step] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    status: str = "available"
    reason: str = ""

    @classmethod
    def unavailable(cls, title: str, reason: str) -> "Section":
        return cls(title, [Step(f"Unavailable: {reason}.")], {}, "unavailable", reason)

    def step(self, text: str, formula: Any = None) -> Step:
        s = Step(text, formula)
        self.steps.append(s)
        return s


@dataclass
class Derivation:
    """An ordered set of sections about one subject (an activation or an architecture).

    ``parameters`` maps each parameter symbol to its exact value.  Results and the expression
    are kept in the symbols (:attr:`general`); every rendering shows them with the values
    substituted (:attr:`bound_results`) and lists the general form beside them.
    """

    subject: str
    expression: Any
    status: str
    sections: list[Section] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    parameters: dict[sp.Symbol, Any] = field(default_factory=dict)

    @property
    def results(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for s in self.sections:
            merged.update(s.results)
        return merged

    @property
    def bound_expression(self) -> Any:
        return _bind(self.expression, self.parameters)

    @property
    def bound_results(self) -> dict[str, Any]:
        """:attr:`results` with the parameter values substituted."""
        return {k: _bind(v, self.parameters) for k, v in self.results.items()}

    @property
    def general(self) -> dict[str, Any]:
        """The expression and every expression-valued result in the parameter symbols."""
        general = {"expression": self.expression}
        general.update({k: v for k, v in self.results.items() if _has_expression(v)})
        return general

    @property
    def parameter_values(self) -> dict[str, Any]:
        """Parameter name -> exact value."""
        return {p.name: v for p, v in self.parameters.items()}

    def _general_differs(self, key: str, value: Any) -> bool:
        return bool(self.parameters) and _has_expression(value) and _bind(value, self.parameters) != value

    def numbered_steps(self):
        n = 0
        for section in self.sections:
            for step in section.steps:
                n += 1
                yield n, section, step

    # ---- renderers ----------------------------------------------------------------
    def to_text(self) -> str:
        lines = [f"Derivation for {self.subject}", f"  expression: {_plain(self.bound_expression)}"]
        if self.parameters:
            lines += [f"  parameters: {', '.join(f'{k} = {v}' for k, v in self.parameter_values.items())} "
                      f"(steps in the symbols; results with the values, general form beside them)",
                      f"  general expression: {_plain(self.expression)}"]
        lines += [f"  status: {self.status}", ""]
        current = None
        for n, section, step in self.numbered_steps():
            if section is not current:
                current = section
                lines += [f"== {section.title} ==" + _unavailable_tag(section)]
            lines.append(f"{n:>3}. {step.text}")
            if step.formula is not None:
                lines.append(f"       {step.plain_formula()}")
        lines += ["", "Results:"]
        for key, value in self.results.items():
            general = f"   (general: {_plain(value)})" if self._general_differs(key, value) else ""
            lines.append(f"  {key}: {_plain(_bind(value, self.parameters))}{general}")
        if self.verification:
            lines += ["", "Verification:"]
            for key, value in self.verification.items():
                lines.append(f"  {key}: {_plain(value)}")
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [f"# Derivation for `{self.subject}`", "",
                 f"$$\\sigma(x) = {_latex(self.bound_expression)}$$", ""]
        if self.parameters:
            lines += ["Parameters: " + ", ".join(f"${_latex(p)} = {_latex(v)}$" for p, v in self.parameters.items())
                      + f"; in general $\\sigma(x) = {_latex(self.expression)}$ (the steps keep the symbols).", ""]
        lines += [f"Status: **{self.status}**", ""]
        current = None
        for n, section, step in self.numbered_steps():
            if section is not current:
                current = section
                lines += [f"## {section.title}" + _unavailable_tag(section), ""]
            lines.append(f"{n}. {typeset_prose(step.text)}")
            if step.formula is not None:  # indented under the item's text, whatever the number's width
                lines += ["", f"{' ' * len(f'{n}. ')}$$ {step.latex} $$", ""]
        lines += ["## Results", ""]
        for key, value in self.results.items():
            if isinstance(value, sp.Basic):
                general = (f" (general: ${_latex(value)}$)" if self._general_differs(key, value) else "")
                lines.append(f"- {key}: ${_latex(_bind(value, self.parameters))}${general}")
            elif value is not None and not isinstance(value, dict):
                lines.append(f"- {key}: {_plain(_bind(value, self.parameters))}")
        if self.verification:
            lines += ["", "## Verification", ""]
            lines += [f"- {k}: {_plain(v)}" for k, v in self.verification.items()]
        lines += [f"\n> {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        esc = _latex_text

        lines = [f"\\section*{{Derivation for \\texttt{{{esc(self.subject)}}}}}",
                 f"\\[ \\sigma(x) = {_latex(self.bound_expression)} \\]"]
        if self.parameters:
            lines.append("Parameters: " + ", ".join(f"${_latex(p)} = {_latex(v)}$" for p, v in self.parameters.items())
                         + f"; in general \\( \\sigma(x) = {_latex(self.expression)} \\).")
        lines.append(f"Status: {esc(self.status)}.")
        current = None
        for _, section, step in self.numbered_steps():
            if section is not current:
                if current is not None:
                    lines.append("\\end{enumerate}")
                current = section
                lines += [f"\\subsection*{{{esc(section.title + _unavailable_tag(section))}}}", "\\begin{enumerate}"]
            lines.append("  \\item " + typeset_prose(step.text, INLINE_LATEX, esc))
            if step.formula is not None:
                lines.append(f"  \\[ {step.latex} \\]")
        if current is not None:
            lines.append("\\end{enumerate}")
        expressions = [(k, v) for k, v in self.results.items() if isinstance(v, sp.Basic)]
        if expressions:
            lines += ["\\subsection*{Results}", "\\begin{itemize}"]
            for key, value in expressions:
                general = (f" (general: \\( {_latex(value)} \\))" if self._general_differs(key, value) else "")
                lines.append(f"  \\item {esc(key)}: \\( {_latex(_bind(value, self.parameters))} \\){general}")
            lines.append("\\end{itemize}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        data = {"schema_version": DERIVE_SCHEMA_VERSION, "activation": self.subject,
                "expression": _plain(self.bound_expression), "status": self.status,
                "parameters": _plain(self.parameter_values),
                "parameter_symbols": {p.name: exported_name(p) for p in self.parameters}}
        data.update(_plain(self.bound_results))
        data["general"] = _plain(self.general)
        data["sections"] = [{"title": s.title, "status": s.status, "reason": s.reason} for s in self.sections]
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

    def _repr_html_(self) -> str:  # Jupyter (MathJax typesets the \\( \\) and \\[ \\] spans)
        def words(text: str) -> str:
            return html.escape(text).replace("$", "&#36;")

        def prose(text: str) -> str:
            return typeset_prose(text, INLINE_LATEX, words)

        parts = [f"<h3>Derivation for <code>{words(self.subject)}</code></h3>",
                 f"<p>\\[ \\sigma(x) = {_latex(self.bound_expression)} \\]</p>",
                 f"<p>Status: <b>{words(self.status)}</b></p>"]
        current = None
        for n, section, step in self.numbered_steps():
            if section is not current:
                parts.append("</ol>" if current is not None else "")
                current = section
                parts += [f"<h4>{words(section.title + _unavailable_tag(section))}</h4>", "<ol>"]
            formula = f"<div>\\[ {step.latex} \\]</div>" if step.formula is not None else ""
            parts.append(f'<li value="{n}">{prose(step.text)}{formula}</li>')
        parts.append("</ol>" if current is not None else "")
        parts += [f"<p><i>{prose(note)}</i></p>" for note in self.notes]
        return "".join(parts)

    def _repr_latex_(self) -> str:  # Jupyter front ends that take LaTeX: one MathJax array
        def line(text: str) -> str:
            return "".join(f"\\text{{{_latex_text(piece)}}}" if kind == "text" else piece
                           for kind, piece in prose_spans(text))

        rows = [line(f"Derivation for {self.subject} ({self.status})"),
                f"\\sigma(x) = {_latex(self.bound_expression)}"]
        for n, section, step in self.numbered_steps():
            rows.append(line(f"{n}. {step.text}"))
            if step.formula is not None:
                rows.append(f"\\quad {step.latex}")
        return "$$\\begin{array}{l} " + " \\\\ ".join(rows) + " \\end{array}$$"
