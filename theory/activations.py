r"""Activations: the built-in registry and the :class:`Activation` object.

An activation is a sympy expression :math:`\sigma(x)` in the real symbol ``x``, possibly with
parameters (sympy symbols with values).  Everything the theory needs to know about
:math:`\sigma` alone lives here: derivatives, positive homogeneity, the kink jump
:math:`\kappa = \sigma'(0^+) - \sigma'(0^-)`, limits at :math:`\pm\infty` and the growth class
(a tempered distribution needs at most polynomial growth).

Build one with :func:`get_activation` (built-ins, by name) or
:func:`theory.parsing.parse_activation` (any formula a user types).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Callable

import mpmath
import sympy as sp

from .errors import IbcheckError, Unsupported
from .evaluation import compile_expression
from .piecewise import PiecewiseSmooth
from .symbols import x as X
from .symbolic import cached_limit

#: largest power of x tried when classifying polynomial growth
MAX_GROWTH_DEGREE = 8


@dataclass(frozen=True)
class Parameter:
    """A parameter of a built-in activation.

    ``structural`` parameters (such as the integer power of ``relu_k``) change how many
    derivatives a derivation takes, so derivations always substitute their value; the others
    stay symbolic in derivations and get their value for numbers.
    """

    name: str
    symbol: sp.Symbol
    default: sp.Rational
    description: str
    check: Callable[[sp.Rational], bool] = field(default=lambda v: True, compare=False)
    allowed: str = "any real number"
    structural: bool = False


@dataclass(frozen=True)
class Growth:
    """Growth of :math:`\\sigma` at :math:`\\pm\\infty`: ``degree`` g means :math:`|\\sigma| = O(|x|^g)`."""

    tempered: bool
    degree: int | None
    reason: str


@dataclass(frozen=True)
class Activation:
    """An activation function :math:`\\sigma(x)` with parameter values.

    ``expr`` keeps parameters as symbols (for derivations a teacher can read);
    :attr:`bound` substitutes their values (for numbers).
    """

    name: str
    expr: sp.Expr
    values: tuple[tuple[Parameter, sp.Rational], ...] = ()
    description: str = ""
    builtin: bool = False

    # ---- identity -----------------------------------------------------------------
    @property
    def label(self) -> str:
        """``name`` with non-default parameter values, e.g. ``leaky_relu(a=1/5)``."""
        if not self.values:
            return self.name
        inner = ", ".join(f"{p.name}={v}" for p, v in self.values)
        return f"{self.name}({inner})"

    @property
    def parameters(self) -> dict[str, sp.Rational]:
        return {p.name: v for p, v in self.values}

    @cached_property
    def bound(self) -> sp.Expr:
        """``expr`` with every parameter replaced by its value."""
        return self.expr.subs({p.symbol: v for p, v in self.values})

    @cached_property
    def symbolic(self) -> sp.Expr:
        """``expr`` with structural parameters bound and the others left symbolic."""
        return self.expr.subs({p.symbol: v for p, v in self.values if p.structural})

    def substitutions(self) -> dict[sp.Symbol, sp.Rational]:
        """Parameter symbol -> value, for turning symbolic results into numbers."""
        return {p.symbol: v for p, v in self.values}

    # ---- calculus -----------------------------------------------------------------
    def derivative(self, n: int = 1, *, bound: bool = True) -> sp.Expr:
        r""":math:`\sigma^{(n)}(x)` (ordinary derivative; ``DiracDelta`` at jumps, sifted by :func:`sift_deltas`)."""
        return sift_deltas(sp.diff(self.bound if bound else self.symbolic, X, n))

    @cached_property
    def pieces(self) -> PiecewiseSmooth:
        """The bound activation split at its breakpoints (see :mod:`theory.piecewise`)."""
        return PiecewiseSmooth.from_expr(self.bound)

    @cached_property
    def homogeneity_degree(self) -> int | None:
        r"""k if :math:`\sigma(\lambda x) = \lambda^k \sigma(x)` for all :math:`\lambda > 0`, else None.

        True exactly when every smooth piece is :math:`c\,x^k` with one common k and the only
        possible breakpoint is 0.
        """
        ps = self.pieces
        if any(b != 0 for b in ps.breaks):
            return None
        degrees = set()
        for piece in ps.pieces:
            if piece == 0:
                continue
            coeff, power = sp.S(piece).as_coeff_exponent(X)
            if coeff.has(X) or sp.simplify(coeff * X**power - piece) != 0:
                return None
            degrees.add(power)
        if len(degrees) != 1:
            return None
        degree = degrees.pop()
        return int(degree) if degree.is_Integer and degree >= 0 else None

    @cached_property
    def is_discontinuous(self) -> bool:
        """True if :math:`\\sigma` itself jumps somewhere (the step function)."""
        return any(a.order == 0 for a in self.pieces.derivative().atoms)

    @cached_property
    def kink_jump(self) -> sp.Expr | None:
        r""":math:`\kappa = \sigma'(0^+) - \sigma'(0^-)`; None if :math:`\sigma` jumps at 0."""
        first = self.pieces.derivative()
        if any(a.location == 0 and a.order == 0 for a in first.atoms):
            return None
        return sp.simplify(first.value_at(sp.S.Zero, "+") - first.value_at(sp.S.Zero, "-"))

    def limit(self, direction: int) -> sp.Expr:
        """:math:`\\lim_{x\\to\\pm\\infty} \\sigma(x)` (``direction`` = +1 or -1)."""
        piece = self.pieces.pieces[-1 if direction > 0 else 0]
        return cached_limit(piece, X, sp.oo if direction > 0 else -sp.oo)

    @cached_property
    def limits(self) -> tuple[sp.Expr, sp.Expr]:
        r"""(:math:`\sigma(-\infty)`, :math:`\sigma(+\infty)`), possibly ``oo`` or ``AccumBounds``."""
        return self.limit(-1), self.limit(+1)

    @cached_property
    def growth(self) -> Growth:
        """Polynomial growth degree at both ends, or 'not tempered' (faster than any power)."""
        degree = 0
        for direction in (-1, 1):
            piece = self.pieces.pieces[-1 if direction > 0 else 0]
            end = sp.oo if direction > 0 else -sp.oo
            for g in range(MAX_GROWTH_DEGREE + 1):
                lim = cached_limit(piece / X**g, X, end)
                if isinstance(lim, sp.AccumBounds) or lim.is_finite:
                    degree = max(degree, g)
                    break
            else:
                side = "+" if direction > 0 else "-"
                return Growth(False, None, f"{self.label} grows faster than any power of x at "
                                           f"{side}infinity, so it has no tempered Fourier transform")
        return Growth(True, degree, "bounded" if degree == 0 else f"grows like |x|^{degree}")

    # ---- numbers ------------------------------------------------------------------
    def numeric(self, backend: str = "numpy", derivative: int = 0) -> Callable:
        """A numeric function for :math:`\\sigma^{(n)}` on ``backend`` ('numpy', 'mpmath', 'torch')."""
        expr = self.bound if derivative == 0 else self.derivative(derivative)
        return compile_expression(expr, backend)

    def __str__(self) -> str:
        return self.label


def sift_deltas(expr: sp.Expr) -> sp.Expr:
    r"""Products :math:`g(x)\,\delta^{(j)}(x - c)` rewritten with constant coefficients:
    :math:`g\,\delta^{(j)}_c = \sum_{i=0}^{j} (-1)^i \binom{j}{i} g^{(i)}(c)\, \delta^{(j-i)}_c`
    (so that :math:`x\,\delta(x) = 0` and :math:`(x \mathbf 1_{x>0})' = H(x)`, not
    :math:`H(x) + x\delta(x)`)."""
    if not expr.has(sp.DiracDelta):
        return expr
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(expr)):
        deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.DiracDelta)]
        arg = deltas[0].args[0] if len(deltas) == 1 else None
        if arg is None or not arg.is_polynomial(X) or sp.degree(arg, X) != 1 or arg.coeff(X) != 1:
            total += term
            continue
        delta, c = deltas[0], X - arg
        j = int(delta.args[1]) if len(delta.args) > 1 else 0
        g = term / delta
        total += sum((-1) ** i * sp.binomial(j, i) * sp.diff(g, X, i).subs(X, c)
                     * (sp.DiracDelta(X - c, j - i) if j - i else sp.DiracDelta(X - c)) for i in range(j + 1))
    return total


# ---------------------------------------------------------------------------------------
# the registry

def _nonneg_below_one(v):
    return 0 <= v < 1


_a = sp.Symbol("a", real=True)
_k = sp.Symbol("k", integer=True, positive=True)
_beta = sp.Symbol("beta", positive=True)
_alpha = sp.Symbol("alpha", positive=True)

_PARAMS = {
    "a": Parameter("a", _a, sp.Rational(1, 10), "slope for x < 0", _nonneg_below_one, "0 <= a < 1"),
    "k": Parameter("k", _k, sp.Integer(2), "power of the truncated power x_+^k",
                   lambda v: v.is_Integer and 1 <= v <= 8, "an integer from 1 to 8", structural=True),
    "beta": Parameter("beta", _beta, sp.Integer(1), "sharpness", lambda v: v > 0, "a positive number"),
    "alpha": Parameter("alpha", _alpha, sp.Integer(1), "saturation value -alpha for x -> -infinity",
                       lambda v: v > 0, "a positive number"),
}


@dataclass(frozen=True)
class BuiltinSpec:
    name: str
    expr: sp.Expr
    description: str
    parameters: tuple[str, ...] = ()


_SQRT2 = sp.sqrt(2)
BUILTINS: dict[str, BuiltinSpec] = {s.name: s for s in [
    BuiltinSpec("relu", sp.Max(0, X), "rectified linear unit max(0, x)"),
    BuiltinSpec("leaky_relu", sp.Piecewise((_a * X, X < 0), (X, True)), "leaky ReLU, slope a for x < 0", ("a",)),
    BuiltinSpec("abs", sp.Abs(X), "absolute value |x|"),
    BuiltinSpec("relu_k", sp.Max(0, X) ** _k, "truncated power max(0, x)^k", ("k",)),
    BuiltinSpec("step", sp.Heaviside(X), "Heaviside step H(x)"),
    BuiltinSpec("softplus", sp.log(1 + sp.exp(_beta * X)) / _beta, "softplus log(1 + e^(beta x))/beta", ("beta",)),
    BuiltinSpec("sigmoid", 1 / (1 + sp.exp(-X)), "logistic sigmoid 1/(1 + e^-x)"),
    BuiltinSpec("tanh", sp.tanh(X), "hyperbolic tangent"),
    BuiltinSpec("erf", sp.erf(X), "error function erf(x)"),
    BuiltinSpec("gelu", X * (1 + sp.erf(X / _SQRT2)) / 2, "GELU x Phi(x), Phi the standard normal CDF"),
    BuiltinSpec("silu", X / (1 + sp.exp(-X)), "SiLU / swish x sigmoid(x)"),
    BuiltinSpec("elu", sp.Piecewise((_alpha * (sp.exp(X) - 1), X < 0), (X, True)),
                "ELU: x for x >= 0, alpha (e^x - 1) for x < 0", ("alpha",)),
    BuiltinSpec("gaussian", sp.exp(-X**2 / 2), "Gaussian bump exp(-x^2/2)"),
    BuiltinSpec("sin", sp.sin(X), "sine"),
    BuiltinSpec("cos", sp.cos(X), "cosine"),
    BuiltinSpec("exp", sp.exp(X), "exponential (not tempered: no Fourier transform)"),
]}


#: every nonzero number an activation holds lies within 10^-MAX_MAGNITUDE .. 10^MAX_MAGNITUDE in
#: absolute value: far beyond any sensible scale, and squares and cubes stay finite in float64
MAX_MAGNITUDE = 100
#: largest numerator or denominator of a parameter value, in bits (a 30-digit mantissa times 10^-100 needs 432)
MAX_VALUE_BITS = 1200


def in_range(value: sp.Expr) -> bool:
    r"""True if the real number ``value`` is 0 or within :math:`10^{\pm m}`, m = :data:`MAX_MAGNITUDE`, in absolute value."""
    return value == 0 or sp.Integer(10) ** -MAX_MAGNITUDE <= abs(value) <= sp.Integer(10) ** MAX_MAGNITUDE


def coerce_value(param: Parameter, value) -> sp.Rational:
    r"""An exact rational parameter value, checked against the parameter's allowed range.

    Accepted: ``int``, ``Fraction``, sympy rationals, and finite ``float``, ``Decimal`` or sympy
    ``Float`` (by their decimal digits: ``0.2`` is 1/5), zero or of magnitude within
    :math:`10^{\pm 100}` (:data:`MAX_MAGNITUDE`).  Anything else (``None``, ``True``, text, lists, complex numbers,
    irrational constants, NaN, infinities, rationals of more than :data:`MAX_VALUE_BITS` bits)
    is an :class:`IbcheckError`; nothing is simplified or evaluated.
    """
    v = _rational(value)
    if v is None:
        # a sympy Float's own digits can take a minute to print when its exponent is huge
        text = format(float(value), "g") if isinstance(value, sp.Float) else \
            sp.sstr(value) if isinstance(value, sp.Basic) else repr(value)
        raise IbcheckError(f"parameter {param.name} must be a finite rational number (an int, a fraction, "
                           f"or a float or Decimal), got {text[:40]}")
    if v.p.bit_length() > MAX_VALUE_BITS or v.q.bit_length() > MAX_VALUE_BITS or not in_range(v):
        raise IbcheckError(f"parameter {param.name}: the value must be 0 or within 1e-{MAX_MAGNITUDE} .. "
                           f"1e{MAX_MAGNITUDE} in absolute value")
    if not param.check(v):
        raise IbcheckError(f"parameter {param.name}={v} is out of range: it must be {param.allowed}")
    return v


def _rational(value) -> sp.Rational | None:
    """``value`` as an exact sympy rational, or None if it is not a number of an accepted kind."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Fraction, sp.Rational)):
        return sp.Rational(value)
    if isinstance(value, (float, Decimal, sp.Float)):
        try:
            magnitude = abs(float(value))
        except (OverflowError, ValueError):  # a Decimal or Float beyond the float range
            return None
        if not math.isfinite(magnitude) or (magnitude == 0) != (value == 0) or \
                (value and not 10.0**-MAX_MAGNITUDE <= magnitude <= 10.0**MAX_MAGNITUDE):
            return None
        # shortest round-trip digits of a float; a Decimal's or Float's own digits, at most 400 of them
        digits = repr(value) if isinstance(value, float) else str(value)
        return sp.Rational(digits) if len(digits) <= 400 else None
    return None


def get_activation(name: str, **values) -> Activation:
    """The built-in activation ``name`` with parameter values (defaults for those not given)."""
    spec = BUILTINS.get(name)
    if spec is None:
        raise IbcheckError(f"unknown activation {name!r}; built-ins: {', '.join(BUILTINS)}")
    unknown = set(values) - set(spec.parameters)
    if unknown:
        allowed = ", ".join(spec.parameters) or "none"
        raise IbcheckError(f"{name} has no parameter {sorted(unknown)[0]!r} (parameters: {allowed})")
    bound = tuple((_PARAMS[p], coerce_value(_PARAMS[p], values.get(p, _PARAMS[p].default)))
                  for p in spec.parameters)
    return Activation(name, spec.expr, bound, spec.description, builtin=True)


def builtin_names() -> list[str]:
    return list(BUILTINS)


#: points at which an activation must be real and finite (none is a typical breakpoint)
REALITY_PROBES = (-2.7, -0.9, -0.3, 0.4, 1.3, 3.1)


def ensure_real_valued(act: Activation) -> None:
    """Raise :class:`IbcheckError` unless ``act`` is real and finite at a few probe points of the line
    (``log(x)``, ``sqrt(x)`` are complex for x < 0: not an activation on the real line)."""
    func = act.numeric("mpmath")
    for point in REALITY_PROBES:
        try:
            with mpmath.workdps(20):
                value = mpmath.mpmathify(func(mpmath.mpf(point)))
        except (ValueError, ZeroDivisionError, TypeError) as err:
            raise IbcheckError(f"{act.label} cannot be evaluated at x = {point} ({err}): an activation "
                               "must be a real function on the whole line") from None
        if not mpmath.isfinite(value) or (isinstance(value, mpmath.mpc) and abs(value.imag) > 1e-15 * max(1, abs(value))):
            raise IbcheckError(f"{act.label} is not real-valued at x = {point} (value {mpmath.nstr(value, 6)}): "
                               "an activation must be a real function on the whole line")


def ensure_tempered(act: Activation) -> None:
    """Raise :class:`Unsupported` with the reason if ``act`` has no tempered transform."""
    if not act.growth.tempered:
        raise Unsupported(act.growth.reason)
