r"""Formula strings to :class:`~theory.activations.Activation`, without ``eval``.

A small tokenizer and recursive-descent parser accept exactly this grammar::

    formula := sum
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := ("+" | "-") unary | power
    power   := atom (("^" | "**") unary)?
    atom    := NUMBER | NAME | NAME "(" [arg ("," arg)*] ")" | "(" sum ")"
    arg     := sum | NAME "=" sum

``NAME`` must be the variable ``x``, a constant (``pi``, ``e``), a declared parameter, a
known function (:data:`FUNCTIONS`) or a built-in activation used as a function
(``relu(x)``, ``leaky_relu(2*x, a=0.2)``; with no positional argument it means the
activation of ``x``).  Every other character or name is rejected with an
:class:`~theory.errors.IbcheckError` naming the offending token and its position, so no
string a user types can run code: attribute access, dunder names, imports, lambdas,
subscripts and string literals simply do not parse.

Parsing does bounded work whatever the input: the text is at most :data:`MAX_LENGTH`
characters and :data:`MAX_DEPTH` levels deep, and every number the formula builds is kept
finite, real and in range as it is built (:meth:`_Parser.checked`): zero or within
:math:`10^{\pm 100}` in absolute value (:data:`~theory.activations.MAX_MAGNITUDE`), an exact
rational with a denominator of at most :data:`MAX_BITS` bits.  A constant subexpression
(``exp(3)``, ``sinh(1e21)``, ``log(0)``, ``sqrt(-1)``) is evaluated once, to 15 digits, from
children already checked, and refused unless it is such a number.  So no huge number is ever
constructed, printed or simplified, no sympy function receives an infinite or complex
argument, and the parser calls no ``simplify``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import sympy as sp

from .activations import BUILTINS, MAX_MAGNITUDE, Activation, Parameter, coerce_value, get_activation, in_range
from .errors import IbcheckError
from .symbols import x as X

MAX_LENGTH = 500
MAX_DEPTH = 40
MAX_DIGITS = 30
MAX_EXPONENT = 64
#: largest denominator of an exact rational, in bits (a 30-digit mantissa times 10^-100 needs 432)
MAX_BITS = 1200

FUNCTIONS: dict[str, tuple[int, object]] = {
    "exp": (1, sp.exp), "log": (1, sp.log), "ln": (1, sp.log), "sqrt": (1, sp.sqrt),
    "abs": (1, sp.Abs), "sign": (1, sp.sign), "sin": (1, sp.sin), "cos": (1, sp.cos),
    "tan": (1, sp.tan), "sinh": (1, sp.sinh), "cosh": (1, sp.cosh), "tanh": (1, sp.tanh),
    "sech": (1, sp.sech), "asinh": (1, sp.asinh), "arcsinh": (1, sp.asinh), "atan": (1, sp.atan),
    "arctan": (1, sp.atan), "erf": (1, sp.erf), "erfc": (1, sp.erfc),
    "heaviside": (1, sp.Heaviside), "max": (2, sp.Max), "min": (2, sp.Min),
}
CONSTANTS = {"pi": sp.pi, "e": sp.E}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^(),=])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; any other character is an error naming it."""
    if len(text) > MAX_LENGTH:
        raise IbcheckError(f"formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = " (attribute access is not allowed)" if ch == "." else ""
            raise IbcheckError(f"unexpected character {ch!r} at position {pos}{hint}")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, params: dict[str, sp.Symbol], variable: tuple[str, sp.Symbol] = ("x", X)):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.params = params
        self.variable = variable
        self.bounded: set[sp.Expr] = set()  # constant subexpressions already checked by checked()

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> IbcheckError:
        tok = tok or self.tok
        where = "at the end" if tok.kind == "end" else f"at position {tok.pos}"
        return IbcheckError(f"{message} {where} of {self.text!r}")

    def take(self, text: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            found = "the end" if self.tok.kind == "end" else repr(self.tok.text)
            raise self.error(f"expected {text!r} but found {found}")

    def checked(self, expr: sp.Expr, tok: Token) -> sp.Expr:
        """``expr`` if every number in it is finite, real and bounded (module docstring), else an error at ``tok``.

        Constant subexpressions are evaluated once each (remembered in ``self.bounded``); their
        children were checked when they were built, so each evaluation is small.
        """
        walk = sp.preorder_traversal(expr)
        for sub in walk:
            if sub in self.bounded:
                walk.skip()
            elif sub.is_Rational:
                if not in_range(sub):
                    raise self.error(f"{_short(sub)} is out of range (numbers must be 0 or within "
                                     f"1e-{MAX_MAGNITUDE} .. 1e{MAX_MAGNITUDE} in absolute value)", tok)
                if sub.q.bit_length() > MAX_BITS:
                    raise self.error(f"a fraction in the formula has a denominator of more than {MAX_BITS} bits", tok)
            elif sub.is_number and not isinstance(sub, sp.NumberSymbol):
                try:
                    value = sub.evalf(15)
                except (ArithmeticError, ValueError, TypeError, RecursionError):
                    value = None
                if not isinstance(value, (sp.Float, sp.Rational)):
                    raise self.error(f"{_short(sub)} is not a finite real number", tok)
                if not in_range(value):
                    raise self.error(f"{_short(sub)} is out of range (numbers must be 0 or within "
                                     f"1e-{MAX_MAGNITUDE} .. 1e{MAX_MAGNITUDE} in absolute value)", tok)
                self.bounded.add(sub)
                walk.skip()
        return expr

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"formula is nested more than {MAX_DEPTH} levels deep")

    # -- grammar
    def parse(self) -> sp.Expr:
        expr = self.sum()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        return expr

    def sum(self) -> sp.Expr:
        self.enter()
        expr = self.product()
        while self.tok.kind == "op" and self.tok.text in "+-":
            tok = self.tok
            self.i += 1
            rhs = self.product()
            expr = self.checked(expr + rhs if tok.text == "+" else expr - rhs, tok)
        self.depth -= 1
        return expr

    def product(self) -> sp.Expr:
        expr = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            tok = self.tok
            self.i += 1
            rhs = self.unary()
            if tok.text == "/" and rhs == 0:
                raise self.error("division by zero", tok)
            expr = self.checked(expr * rhs if tok.text == "*" else expr / rhs, tok)
        return expr

    def unary(self) -> sp.Expr:
        if self.take("-"):
            self.enter()
            value = -self.unary()
            self.depth -= 1
            return value
        if self.take("+"):
            return self.unary()
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        if self.tok.kind == "op" and self.tok.text in ("^", "**"):
            tok = self.tok
            self.i += 1
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return self._checked_power(base, exponent, tok)
        return base

    def _checked_power(self, base, exponent, tok) -> sp.Expr:
        # base and exponent are already checked (finite, real, bounded), so float() is safe here
        if exponent.is_number:
            if abs(float(exponent)) > MAX_EXPONENT:
                raise self.error(f"exponent {exponent} is too large (at most {MAX_EXPONENT} in absolute value)", tok)
            if base.is_number and base != 0:
                magnitude = abs(float(exponent)) * abs(math.log10(abs(float(base))) if float(base) else 0.0)
                if magnitude > MAX_MAGNITUDE:
                    raise self.error("numeric power is too large", tok)
            if base == 0 and float(exponent) < 0:
                raise self.error("division by zero", tok)
        elif base.is_number and base != sp.E and abs(float(base)) > 1e6:
            raise self.error("base of a power of x is too large", tok)
        return self.checked(base**exponent, tok)

    def atom(self) -> sp.Expr:
        tok = self.tok
        if tok.kind == "number":
            self.i += 1
            return self._number(tok)
        if tok.kind == "name":
            self.i += 1
            return self._name(tok)
        if self.take("("):
            expr = self.sum()
            self.expect(")")
            return expr
        if tok.kind == "end":
            raise self.error("the formula ends too early")
        raise self.error(f"unexpected {tok.text!r}")

    def _number(self, tok: Token) -> sp.Expr:
        mantissa, _, exp = tok.text.lower().partition("e")
        digits = mantissa.replace(".", "").lstrip("0")
        if len(digits) > MAX_DIGITS:
            raise self.error(f"number {tok.text} has more than {MAX_DIGITS} digits", tok)
        if exp and abs(int(exp)) > MAX_MAGNITUDE:
            raise self.error(f"number {tok.text} is out of range", tok)
        return sp.Rational(tok.text)

    def _name(self, tok: Token) -> sp.Expr:
        name = tok.text
        if name.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed ({name!r})", tok)
        is_call = self.tok.kind == "op" and self.tok.text == "("
        if not is_call:
            if name == self.variable[0]:
                return self.variable[1]
            if name in CONSTANTS:
                return CONSTANTS[name]
            if name in self.params:
                return self.params[name]
            if name in FUNCTIONS or name in BUILTINS:
                raise self.error(f"{name!r} is a function: call it with an argument, e.g. {name}(x)", tok)
            raise self.error(f"unknown name {name!r} (use {self.variable[0]}, pi, e, declared parameters "
                             "and known functions)", tok)
        if name not in FUNCTIONS and name not in BUILTINS:
            raise self.error(f"unknown function {name!r}", tok)
        self.i += 1  # consume "("
        self.enter()
        positional, keywords = self._arguments(tok)
        self.depth -= 1
        if name in FUNCTIONS:
            arity, func = FUNCTIONS[name]
            if keywords:
                raise self.error(f"{name}() takes no keyword arguments", tok)
            if len(positional) != arity:
                raise self.error(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, "
                                 f"got {len(positional)}", tok)
            return self.checked(func(*positional), tok)
        return self.checked(self._builtin_call(name, positional, keywords, tok), tok)

    def _arguments(self, func_tok: Token) -> tuple[list[sp.Expr], dict[str, sp.Expr]]:
        positional, keywords = [], {}
        if self.take(")"):
            return positional, keywords
        while True:
            nxt = self.tokens[min(self.i + 1, len(self.tokens) - 1)]
            if self.tok.kind == "name" and nxt.kind == "op" and nxt.text == "=":
                key_tok = self.tok
                self.i += 2
                if key_tok.text in keywords:
                    raise self.error(f"keyword {key_tok.text!r} given twice", key_tok)
                keywords[key_tok.text] = (self.sum(), key_tok)
            else:
                if keywords:
                    raise self.error("positional argument after a keyword argument")
                positional.append(self.sum())
            if self.take(")"):
                return positional, keywords
            self.expect(",")

    def _builtin_call(self, name, positional, keywords, tok) -> sp.Expr:
        spec = BUILTINS[name]
        if len(positional) > 1:
            raise self.error(f"{name}() takes one positional argument (the input), got {len(positional)}", tok)
        values = {}
        for key, (value, key_tok) in keywords.items():
            if key not in spec.parameters:
                allowed = ", ".join(spec.parameters) or "none"
                raise self.error(f"{name}() has no parameter {key!r} (parameters: {allowed})", key_tok)
            if not value.is_number:
                raise self.error(f"parameter {key} of {name}() must be a number", key_tok)
            values[key] = value
        act = get_activation(name, **values)
        arg = positional[0] if positional else X
        self.builtin_root = (act, arg)
        return act.bound.subs(X, arg, simultaneous=True)


def _short(expr: sp.Expr) -> str:
    """A constant subexpression for an error message, cut to 60 characters."""
    text = sp.sstr(expr)
    return text if len(text) <= 60 else text[:57] + "..."


def _declare(params: dict[str, object] | None) -> tuple[dict[str, sp.Symbol], tuple]:
    symbols, values = {}, []
    for name, value in (params or {}).items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) or name == "x" or name in FUNCTIONS \
                or name in BUILTINS or name in CONSTANTS:
            raise IbcheckError(f"{name!r} cannot be a parameter name (letters and digits, "
                               "not x, a constant or a function name)")
        sym = sp.Symbol(name, real=True)
        p = Parameter(name, sym, sp.S.Zero, "user parameter")
        symbols[name] = sym
        values.append((p, coerce_value(p, value)))
    return symbols, tuple(values)


def parse_formula(text: str, params: dict[str, object] | None = None,
                  variable: tuple[str, sp.Symbol] = ("x", X)) -> sp.Expr:
    """The sympy expression of ``text`` (parameters stay symbols).

    ``variable`` names the free variable and its symbol (default ``x``; the activation design
    reads target penalties in ``omega``).
    """
    symbols, _ = _declare(params)
    return _Parser(text, symbols, variable).parse()


def parse_activation(text: str, params: dict[str, object] | None = None) -> Activation:
    """An :class:`Activation` from a built-in name, a built-in call or a formula in ``x``.

    ``params`` declares the formula's parameters with their values, e.g.
    ``parse_activation("x*tanh(b*x)", {"b": 2})``.
    """
    text = text.strip()
    if not text:
        raise IbcheckError("empty activation: give a built-in name or a formula in x")
    if text in BUILTINS and not params:
        return get_activation(text)
    symbols, values = _declare(params)
    parser = _Parser(text, symbols)
    expr = parser.parse()
    root = getattr(parser, "builtin_root", None)
    if root is not None and root[1] == X and expr == root[0].bound and not params:
        return root[0]
    if not expr.has(X):
        raise IbcheckError(f"{text!r} does not depend on x: an activation is a function of x")
    unused = [p.name for p, _ in values if not expr.has(p.symbol)]
    if unused:
        raise IbcheckError(f"parameter {unused[0]!r} is declared but not used in {text!r}")
    return Activation(text, expr, values, "user formula", builtin=False)
