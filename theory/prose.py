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
    out = _POWER.sub(lambda m: "^{" + (m[1] or m[2]).strip() + "}", out)
    out = re.sub(r"_([A-Za-z0-9+-]+)", r"_{\1}", out) if "_{" not in out else out
    return re.sub(r"\s+", " ", out).replace(" (", "(").replace("\\ (", "(").strip()


def typeset_prose(text: str, inline: tuple[str, str] = ("$", "$")) -> str:
    """``text`` with its mathematical spans as inline math between ``inline`` delimiters
    (``("$", "$")`` for Markdown, ``(r"\\(", r"\\)")`` for LaTeX and HTML with MathJax)."""
    opening, closing = inline
    pieces, last = [], 0
    for match in _SPAN.finditer(text):
        span = match[0]
        if not _is_math(span):
            continue
        pieces += [text[last:match.start()], f"{opening}{_latex_of(span)}{closing}"]
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


__all__ = ["GREEK", "typeset_prose"]
