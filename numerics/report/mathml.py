"""Formulas as presentation MathML, which browsers render natively and offline.

sympy's presentation printer does most of the work; :class:`_Printer` adds what it lacks for
derivations: ``Piecewise`` as a brace with cases, ``DiracDelta`` and ``Heaviside`` as
:math:`\\delta` and :math:`\\operatorname{step}`, and the *named* quantities of a derivation
(:func:`theory.derivation.name`, e.g. ``W(omega)`` spelled ``W(\\omega)``), whose LaTeX
spelling is converted by :func:`latex_to_mathml`, a converter for the small LaTeX subset
those names use.  Anything the printer cannot render falls back to the plain text formula.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from xml.dom.minidom import Document, Element

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from theory.derivation import _LATEX_NAMES  # the LaTeX spellings of named quantities

_GREEK = {name: chr(code) for name, code in [
    ("alpha", 0x3B1), ("beta", 0x3B2), ("gamma", 0x3B3), ("delta", 0x3B4), ("epsilon", 0x3B5),
    ("varepsilon", 0x3B5), ("zeta", 0x3B6), ("eta", 0x3B7), ("theta", 0x3B8), ("iota", 0x3B9),
    ("kappa", 0x3BA), ("lambda", 0x3BB), ("mu", 0x3BC), ("nu", 0x3BD), ("xi", 0x3BE), ("pi", 0x3C0),
    ("rho", 0x3C1), ("sigma", 0x3C3), ("tau", 0x3C4), ("phi", 0x3C6), ("varphi", 0x3C6),
    ("chi", 0x3C7), ("psi", 0x3C8), ("omega", 0x3C9), ("Gamma", 0x393), ("Delta", 0x394),
    ("Theta", 0x398), ("Lambda", 0x39B), ("Xi", 0x39E), ("Pi", 0x3A0), ("Sigma", 0x3A3),
    ("Phi", 0x3A6), ("Psi", 0x3A8), ("Omega", 0x3A9), ("partial", 0x2202), ("infty", 0x221E),
]}
_OPERATORS = {"int": "\u222B", "sum": "\u2211", "cdot": "\u00B7", "to": "\u2192", "le": "\u2264",
              "ge": "\u2265", "neq": "\u2260", "pm": "\u00B1", "quad": "\u2003", ",": "\u2009"}
_FUNCTIONS = {"log", "ln", "exp", "sin", "cos", "tan", "sinh", "cosh", "tanh", "coth", "sech", "csch",
              "arctan", "operatorname", "max", "min", "sign", "lim"}
_SPACES = {",", ":", ";", "!", " "}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d+(?:\.\d+)?|\S")


class LatexSubsetError(ValueError):
    """A LaTeX command outside the subset :func:`latex_to_mathml` knows."""


class _LatexParser:
    """Recursive descent over the subset: groups, ^ and _, \\hat, \\mathcal, \\frac, \\sqrt,
    \\left/\\right, Greek letters, function names, a few operators, digits, letters, punctuation."""

    def __init__(self, text: str, dom: Document):
        self.tokens = _TOKEN.findall(text)
        self.position = 0
        self.dom = dom

    def node(self, tag: str, *children, text: str | None = None, **attributes) -> Element:
        element = self.dom.createElement(tag)
        for key, value in attributes.items():
            element.setAttribute(key, value)
        if text is not None:
            element.appendChild(self.dom.createTextNode(text))
        for child in children:
            element.appendChild(child)
        return element

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise LatexSubsetError("unexpected end of formula")
        self.position += 1
        return token

    def parse(self) -> Element:
        row = self.sequence()
        if self.peek() is not None:
            raise LatexSubsetError(f"unbalanced {self.peek()!r}")
        return row

    def sequence(self) -> Element:
        row = self.node("mrow")
        while self.peek() not in (None, "}"):
            row.appendChild(self.scripted())
        return row

    def scripted(self) -> Element:
        base = self.atom()
        sub = sup = None
        while self.peek() in ("^", "_"):
            if self.take() == "^":
                sup = self.atom()
            else:
                sub = self.atom()
        if sub is not None and sup is not None:
            return self.node("msubsup", base, sub, sup)
        if sup is not None:
            return self.node("msup", base, sup)
        if sub is not None:
            return self.node("msub", base, sub)
        return base

    def atom(self) -> Element:
        token = self.take()
        if token == "{":
            row = self.sequence()
            if self.take() != "}":
                raise LatexSubsetError("missing }")
            return row
        if token.startswith("\\"):
            return self.command(token[1:])
        if token[0].isdigit():
            return self.node("mn", text=token)
        if token.isalpha():
            return self.node("mi", text=token)
        return self.node("mo", text=token, stretchy="false") if token in "()[]|" else self.node("mo", text=token)

    def command(self, name: str) -> Element:
        if name in _GREEK:
            return self.node("mi", text=_GREEK[name])
        if name in _OPERATORS:
            return self.node("mo", text=_OPERATORS[name])
        if name == "hat":
            return self.node("mover", self.atom(), self.node("mo", text="^"), accent="true")
        if name == "mathcal":
            inner = self.atom()
            return self.node("mi", text=_text_of(inner), mathvariant="script")
        if name == "frac":
            return self.node("mfrac", self.atom(), self.atom())
        if name in ("left", "right"):
            delimiter = self.take()
            return self.node("mo", text=delimiter.lstrip("\\"))
        if name == "sqrt":
            return self.node("msqrt", self.atom())
        if name in _SPACES:
            return self.node("mrow")
        if name in _FUNCTIONS - {"operatorname"}:
            return self.node("mi", text=name, mathvariant="normal")
        if name in ("operatorname", "mathrm", "text"):
            return self.node("mi", text=_text_of(self.atom()), mathvariant="normal")
        raise LatexSubsetError(f"unknown command \\{name}")


def _text_of(element: Element) -> str:
    return "".join(n.data if n.nodeType == n.TEXT_NODE else _text_of(n) for n in element.childNodes)


def latex_to_mathml(latex: str, dom: Document | None = None) -> Element:
    """An ``<mrow>`` for ``latex`` (the subset above); raises :class:`LatexSubsetError` outside it."""
    return _LatexParser(latex, dom or Document()).parse()


_BARE_AMPERSAND = re.compile(r"&(?![A-Za-z]+;|#[0-9]+;|#x[0-9A-Fa-f]+;)")


class _Printer(MathMLPresentationPrinter):
    def __init__(self, settings=None):
        super().__init__(settings)
        # sympy writes text nodes unescaped (to keep entities such as &InvisibleTimes;), which
        # leaves a bare "<" in relations; escape everything that is not an entity
        raw = self.dom.createTextNode
        self.dom.createTextNode = lambda data: raw(
            _BARE_AMPERSAND.sub("&amp;", data).replace("<", "&lt;").replace(">", "&gt;"))

    def _print_Symbol(self, sym, style="plain"):
        latex = _LATEX_NAMES.get(sym) or (sym.name if sym.name.startswith("\\") else None)
        if latex:
            try:
                return latex_to_mathml(latex, self.dom)
            except LatexSubsetError:
                element = self.dom.createElement("mtext")
                element.appendChild(self.dom.createTextNode(sym.name))
                return element
        return super()._print_Symbol(sym, style)

    def _function(self, symbol: str, *arguments, superscript: str | None = None):
        row = self.dom.createElement("mrow")
        head = self.dom.createElement("mi")
        head.appendChild(self.dom.createTextNode(symbol))
        if superscript is not None:
            sup = self.dom.createElement("msup")
            index = self.dom.createElement("mn")
            index.appendChild(self.dom.createTextNode(f"({superscript})"))
            sup.appendChild(head)
            sup.appendChild(index)
            head = sup
        row.appendChild(head)
        fenced = self.dom.createElement("mrow")
        for text, content in [("(", None)] + [(None, a) for a in arguments] + [(")", None)]:
            if content is None:
                paren = self.dom.createElement("mo")
                paren.appendChild(self.dom.createTextNode(text))
                fenced.appendChild(paren)
            else:
                fenced.appendChild(self._print(content))
        row.appendChild(fenced)
        return row

    def _print_Exp1(self, expr):  # plain e and i read better than the double-struck entities
        return self._identifier("e")

    def _print_ImaginaryUnit(self, expr):
        return self._identifier("i")

    def _identifier(self, text: str):
        element = self.dom.createElement("mi")
        element.setAttribute("mathvariant", "normal")
        element.appendChild(self.dom.createTextNode(text))
        return element

    def _print_DiracDelta(self, expr):
        order = expr.args[1] if len(expr.args) > 1 and expr.args[1] != 0 else None
        return self._function("\u03B4", expr.args[0], superscript=None if order is None else str(order))

    def _print_Heaviside(self, expr):  # "step", as in the LaTeX: theta is theta = w / rho
        return self._function("step", expr.args[0])

    def _print_Piecewise(self, expr):
        row = self.dom.createElement("mrow")
        brace = self.dom.createElement("mo")
        brace.setAttribute("stretchy", "true")
        brace.appendChild(self.dom.createTextNode("{"))
        row.appendChild(brace)
        table = self.dom.createElement("mtable")
        table.setAttribute("columnalign", "left left")
        for value, condition in expr.args:
            line = self.dom.createElement("mtr")
            left = self.dom.createElement("mtd")
            left.appendChild(self._print(value))
            right = self.dom.createElement("mtd")
            if condition is sp.true:
                right.appendChild(self._text("otherwise"))
            else:
                right.appendChild(self._text("if\u2002"))
                right.appendChild(self._print(condition))
            line.appendChild(left)
            line.appendChild(right)
            table.appendChild(line)
        row.appendChild(table)
        return row

    def _text(self, text: str):
        element = self.dom.createElement("mtext")
        element.appendChild(self.dom.createTextNode(text))
        return element


def _math(inner: str, latex: str) -> str:
    return (f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block" '
            f'alttext="{escape(latex, quote=True)}">{inner}</math>')


def to_mathml(value, lhs_latex: str | None = None) -> str:
    """A ``<math display="block">`` element for a sympy value, optionally as ``lhs = value``.

    The LaTeX (from :func:`sympy.latex`, named quantities spelled as in the derivation) goes in
    ``alttext``; if the printer fails, the element holds the plain-text formula.
    """
    expr = sp.Integer(value) if isinstance(value, int) else value
    if not isinstance(expr, sp.Basic):
        return _math(f"<mtext>{escape(str(value))}</mtext>", str(value))
    latex = sp.latex(expr, symbol_names=_LATEX_NAMES)
    try:
        inner = _Printer()._print(expr).toxml()
        if lhs_latex is not None:
            inner = f"{latex_to_mathml(lhs_latex).toxml()}<mo>=</mo>{inner}"
            latex = f"{lhs_latex} = {latex}"
        return _math(f"<mrow>{inner}</mrow>", latex)
    except Exception:  # noqa: BLE001 - any printer failure degrades to text, never breaks a report
        text = sp.sstr(expr) if lhs_latex is None else f"{lhs_latex} = {sp.sstr(expr)}"
        return _math(f"<mtext>{escape(text)}</mtext>", latex)


#: presentation-MathML elements and attributes a report may contain (everything else is refused)
SAFE_ELEMENTS = frozenset({"math", "mrow", "mi", "mn", "mo", "mtext", "msup", "msub", "msubsup", "mfrac", "msqrt",
                           "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mfenced", "mspace",
                           "mstyle", "mpadded", "mphantom", "semantics", "annotation"})
SAFE_ATTRIBUTES = frozenset({"display", "alttext", "xmlns", "mathvariant", "stretchy", "accent", "accentunder",
                             "fence", "separators", "open", "close", "columnalign", "rowspacing", "columnspacing",
                             "linethickness", "form", "lspace", "rspace", "width", "encoding"})


class _Sanitizer(HTMLParser):
    """Re-serializes markup keeping only :data:`SAFE_ELEMENTS` / :data:`SAFE_ATTRIBUTES`;
    ``refused`` is set at the first thing outside them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.refused = False

    def handle_starttag(self, tag, attrs):
        if tag not in SAFE_ELEMENTS or any(name not in SAFE_ATTRIBUTES for name, _ in attrs):
            self.refused = True
            return
        shown = "".join(f' {name}="{escape(value or "", quote=True)}"' for name, value in attrs)
        self.out.append(f"<{tag}{shown}>")

    def handle_endtag(self, tag):
        if tag not in SAFE_ELEMENTS:
            self.refused = True
            return
        self.out.append(f"</{tag}>")

    def handle_data(self, data):
        self.out.append(escape(data))

    def handle_comment(self, data):
        self.refused = True

    def handle_decl(self, decl):
        self.refused = True

    def handle_pi(self, data):
        self.refused = True

    def unknown_decl(self, data):
        self.refused = True


def sanitized_mathml(markup: str) -> str | None:
    """``markup`` rebuilt from presentation-MathML elements only, every text and attribute value
    escaped; None when it holds anything else (a script, an event handler, a style, a link).
    Reports pass every stored MathML string through this: a tampered cache cannot inject markup."""
    parser = _Sanitizer()
    try:
        parser.feed(str(markup))
        parser.close()
    except Exception:  # noqa: BLE001 - whatever the parser chokes on is refused
        return None
    if parser.refused or not str(markup).lstrip().startswith("<math"):
        return None
    return "".join(parser.out)
