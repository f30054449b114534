"""Mathematics inside derivation prose, typeset: ``W ~ omega^4`` becomes ``W \\sim \\omega^{4}``.

Derivation steps are written as plain sentences ("Divide by (i omega)^2 for omega != 0") so that
``ibcheck derive`` reads well in a terminal.  Typeset renderings (Markdown, LaTeX, HTML in
Jupyter) pass each sentence through :func:`typeset_prose`, which finds the mathematical spans
(Greek letter names, powers, primes, subscripts, comparison operators between such tokens) and
returns them as inline math, leaving the words as words.  Only whole, recognizable tokens are
touched: an English word is never turned into math.
"""

from __future__ import annotations

import re

#: Greek letter names that appear in derivation prose, and their LaTeX
GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "kappa", "lambda", "mu", "nu", "xi",
         "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Omega")
_RELATIONS = {"!=": r"\neq", "<=": r"\le", ">=": r"\ge", "~": r"\sim", "->": r"\to", "=": "=", "<": "<", ">": ">"}

_NAME = r"(?:" + "|".join(GREEK) + r"|[A-Za-z])(?![A-Za-z])"
_POWER_TAIL = r"\^(?:\([^()]{1,12}\)|-?[A-Za-z0-9.]+)"
#: one mathematical atom: a Greek name or a single letter, with primes, a subscript, an argument
#: and a power; a number with a power; or a parenthesized group with a power, ``(i omega)^2``
_ATOM = (rf"(?:\b{_NAME}(?:'+)?(?:_(?:hat|\{{?[A-Za-z0-9+-]+\}}?))?(?:\([^()\s]{{1,20}}\))?(?:{_POWER_TAIL})?"
         rf"|\b\d+(?:\.\d+)?{_POWER_TAIL}|\([^()]{{1,30}}\){_POWER_TAIL}|\|[^|\s]{{1,20}}\|(?:{_POWER_TAIL})?)")
_OPERAND = rf"(?:-?{_ATOM}|-?\b\d+(?:\.\d+)?\b)"
_SPAN = re.compile(rf"{_ATOM}(?:\s*(?:!=|<=|>=|->|~|=|<|>)\s*{_OPERAND})*")
_GREEK_WORD = re.compile(r"\b(" + "|".join(GREEK) + r")\b")
_POWER = re.compile(r"\^(?:\(([^()]{1,12})\)|(-?[A-Za-z0-9.]+))")


def _is_math(span: str) -> bool:
    """A span is mathematics when it has a Greek name, a power, a prime, a subscript or a relation,
    or is a single letter used as a symbol with an argument (``W(omega)``); plain words are not."""
    if re.fullmatch(r"\|[^|]+\|", span):
        return bool(_GREEK_WORD.search(span) or re.fullmatch(r"\|[A-Za-z]\|", span))
    if re.fullmatch(r"[A-Za-z]", span):
        return span not in ("a", "A", "I")  # the article and the pronoun stay words
    return bool(_GREEK_WORD.search(span) or re.search(r"[\^'_]|!=|<=|>=|->|~|=|<|>", span)
                or re.fullmatch(r"[A-Za-z]\([^()]+\)", span))


def _latex_of(span: str) -> str:
    out = re.sub(r"\s*(!=|<=|>=|->|~|=|<|>)\s*", lambda m: f" {_RELATIONS[m[1]]} ", span)
    out = re.sub(r"\b(\w+)_hat\b", r"\\hat{\1}", out)
    out = _GREEK_WORD.sub(lambda m: "\\" + m[1] + " ", out)
    # x^(2) is the second derivative (the parentheses stay); x^(d+3) and x^2 are powers
    out = _POWER.sub(lambda m: "^{(" + m[1] + ")}" if m[1] and m[1].strip().isdigit()
                     else "^{" + (m[1] or m[2]).strip() + "}", out)
    out = re.sub(r"_([A-Za-z0-9+-]+)", r"_{\1}", out) if "_{" not in out else out
    return re.sub(r"\s+", " ", out).strip()


def _needed_closers(source: str) -> str | None:
    """The closing brackets ``source`` still needs, innermost first ("" when balanced; None when
    it closes a bracket it never opened)."""
    stack = []
    for char in source:
        if char in "([":
            stack.append(")" if char == "(" else "]")
        elif char in ")]":
            if not stack or stack.pop() != char:
                return None
    return "".join(reversed(stack))


#: text between two formulas that belongs to them: brackets, operators, digits, spaces
_GLUE = re.compile(r"[\s\[\](){}+\-*/=,^0-9.]*")


def _formula_intervals(text: str) -> list[tuple[int, int]]:
    """(start, end) of each formula in ``text``: the mathematical spans, joined where only
    :data:`_GLUE` separates them (``F[delta^j(x - c)]`` is one formula, not five) and extended
    over the closing brackets they opened; a joined formula whose brackets do not balance falls
    back to its parts."""
    spans = [(m.start(), m.end()) for m in _SPAN.finditer(text) if _is_math(m[0])]
    groups: list[list[tuple[int, int]]] = []
    for span in spans:
        gap = text[groups[-1][-1][1]:span[0]] if groups else ""
        if groups and gap.strip() not in ("", ",") and _GLUE.fullmatch(gap):
            groups[-1].append(span)
        else:
            groups.append([span])
    out = []
    for group in groups:
        start, end = group[0][0], group[-1][1]
        closers = _needed_closers(text[start:end])
        if closers is not None and text.startswith(closers, end):
            out.append((start, end + len(closers)))
            continue
        for start, end in group:  # unbalanced: each part alone, with the brackets it opened
            closers = _needed_closers(text[start:end])
            out.append((start, end + len(closers)) if closers and text.startswith(closers, end) else (start, end))
    return out


def prose_spans(text: str) -> list[tuple[str, str]]:
    """``text`` cut into ``("text", words)`` and ``("math", latex)`` pieces, in order."""
    pieces, last = [], 0
    for start, end in _formula_intervals(text):
        if start > last:
            pieces.append(("text", text[last:start]))
        pieces.append(("math", _latex_of(text[start:end])))
        last = end
    if last < len(text):
        pieces.append(("text", text[last:]))
    return pieces


def typeset_prose(text: str, inline: tuple[str, str] = ("$", "$"), words=lambda w: w) -> str:
    """``text`` with its mathematical spans as inline math between ``inline`` delimiters
    (``("$", "$")`` for Markdown, ``(r"\\(", r"\\)")`` for LaTeX and HTML with MathJax);
    ``words`` escapes the rest for the target format (LaTeX specials, HTML entities)."""
    opening, closing = inline
    return "".join(f"{opening}{piece}{closing}" if kind == "math" else words(piece) for kind, piece in prose_spans(text))


__all__ = ["GREEK", "prose_spans", "typeset_prose"]
