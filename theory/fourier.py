r"""The generalized Fourier transform of an activation, derived step by step and verified.

Convention: :math:`\hat\sigma(\omega) = \int_{\mathbb R} \sigma(u)\, e^{-i\omega u}\,du`.

An activation is rarely integrable, but some derivative is: ReLU'' = :math:`\delta`,
tanh' = :math:`\operatorname{sech}^2`, GELU'' = :math:`(2-u^2)\varphi(u)`.  The engine

1. refuses non-tempered activations (faster than polynomial growth, e.g. :math:`e^x`);
2. recognises trigonometric polynomials, whose transform is a sum of point masses
   (:math:`\widehat{\sin} = i\pi[\delta(\omega+1) - \delta(\omega-1)]`);
3. otherwise differentiates :math:`\sigma` (as a distribution, :mod:`theory.piecewise`) until
   the smooth part of :math:`\sigma^{(m)}` is integrable, and transforms every smooth piece with a
   rule (:func:`transform_piece`) and every point mass exactly:
   :math:`\mathcal F[\delta^{(j)}(\cdot - c)] = (i\omega)^j e^{-i\omega c}`;
4. divides, :math:`\hat\sigma(\omega) = \mathcal F[\sigma^{(m)}](\omega)/(i\omega)^m` for
   :math:`\omega \ne 0` (the *regular part*), and attaches the distributional part at 0 from the
   asymptotic polynomials :math:`p_\pm` of :math:`\sigma` at :math:`\pm\infty`: with
   :math:`q = (p_+ + p_-)/2 = \sum_j q_j x^j`,
   :math:`\hat\sigma = \mathrm{FP}[\text{regular}] + 2\pi \sum_j i^j q_j\, \delta^{(j)}(\omega)`
   (FP: Hadamard finite part).  ReLU: :math:`-\mathrm{FP}\,\omega^{-2} + i\pi\delta'`;
5. verifies the closed form of :math:`\mathcal F[\sigma^{(m)}]` against mpmath quadrature of
   :math:`\sigma^{(m)}` at five frequencies (30 digits, relative error :math:`\le 10^{-12}`), or,
   for pure point-mass transforms, by Parseval pairing with Gaussian test functions.

Rules for one smooth piece :math:`g` on an interval :math:`(a, b)`:

* exponential-polynomial, any interval: :math:`\int_a^b x^k e^{\lambda x}\,dx` with
  :math:`\lambda = s - i\omega`, by the exact antiderivative;
* Gaussian, whole line: :math:`\mathcal F[x^k e^{-\alpha x^2 + \beta x}] =
  i^k \partial_\omega^k\, \sqrt{\pi/\alpha}\, e^{(\beta - i\omega)^2/(4\alpha)}`;
* rational in :math:`e^{a x}` times a polynomial, whole line (sech², logistic', SiLU'', mish''):
  the contour through the strip :math:`0 < \operatorname{Im} z < P = 2\pi/a`, on whose top edge
  :math:`g` repeats, gives :math:`\mathcal F[g](\omega)\,(1 - e^{\omega P}) = 2\pi i
  \sum \operatorname{Res}\, g(z) e^{-i\omega z}`, and :math:`\mathcal F[x^k g] = i^k\partial^k_\omega \mathcal F[g]`;
* otherwise sympy's ``integrate`` under a time limit, trusted only after verification.

When no rule applies the result is an unevaluated ``FourierTransform`` with the reason, and
:meth:`FourierResult.regular_numeric` evaluates the transform by quadrature instead.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import mpmath
import numpy as np
import sympy as sp
from mpmath.calculus.quadrature import GaussLegendre

from .activations import Activation
from .derivation import Step, name
from .errors import IbcheckError, TimeLimitExceeded, Unsupported
from .evaluation import compile_expression
from .piecewise import Atom, PiecewiseSmooth
from .symbolic import cached_limit, remember_unless_time_limited, tidy
from .symbols import omega as W
from .symbols import omega_real as W_REAL
from .symbols import x as X
from .timeouts import time_limit

#: frequencies at which every closed form is checked against quadrature
VERIFICATION_FREQUENCIES = (sp.Rational(3, 10), sp.Rational(4, 5), sp.Rational(3, 2),
                            sp.Rational(5, 2), sp.Integer(4))
#: further frequencies drawn per activation (:func:`verification_frequencies`)
RANDOM_FREQUENCIES = 2
#: relative error a closed form must reach to count as verified
VERIFICATION_TOLERANCE = 1e-12
#: working precision (decimal digits) of the verification
VERIFICATION_DPS = 30
#: CPU seconds for one closed form's verification (the 30-digit quadratures at every frequency):
#: a legitimate form takes 0.1-6 s; extreme scales (sigmoid(1e30 x)) can make sympy's root
#: finding for the singularities run for minutes, and an unfinished verification is a failed one
VERIFICATION_SECONDS = 30.0
#: most derivatives taken while looking for an integrable one
MAX_ORDER = 10

STATUSES = ("closed_form_verified", "closed_form_unverified", "numerical_only", "not_applicable")


@dataclass
class Verification:
    """Closed form vs an independent numerical route at a few frequencies."""

    method: str
    frequencies: list[float]
    closed_form: list[complex]
    numerical: list[complex]
    max_relative_error: float
    tolerance: float = VERIFICATION_TOLERANCE

    @property
    def passed(self) -> bool:
        return math.isfinite(self.max_relative_error) and self.max_relative_error <= self.tolerance

    def as_dict(self) -> dict:
        def finite(v: float) -> float | None:
            return v if math.isfinite(v) else None
        return {"method": self.method, "frequencies": self.frequencies,
                "closed_form": [[finite(c.real), finite(c.imag)] for c in self.closed_form],
                "numerical": [[finite(c.real), finite(c.imag)] for c in self.numerical],
                "max_relative_error": finite(self.max_relative_error), "tolerance": self.tolerance,
                "passed": self.passed}


@dataclass(eq=False)
class FourierResult:
    r"""The generalized transform :math:`\hat\sigma` of one activation, with how it was found.

    ``regular`` is the transform for :math:`\omega \neq 0` (None if not found in closed form);
    ``singular`` lists the point masses in :math:`\omega` (location, derivative order, coefficient);
    ``derivative_transform`` is :math:`\mathcal F[\sigma^{(m)}]`; parameters stay symbolic in
    these expressions when ``symbolic`` is true (substitute :meth:`Activation.substitutions`).
    """

    activation: Activation
    status: str
    reason: str = ""
    order: int | None = None
    derivative: sp.Expr | None = None
    derivative_transform: sp.Expr | None = None
    regular: sp.Expr | None = None
    singular: tuple[Atom, ...] = ()
    singular_reason: str = ""
    asymptotes: tuple[sp.Expr, sp.Expr] | None = None
    verification: Verification | None = None
    steps: list[Step] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    _pieces: PiecewiseSmooth | None = None
    time_limited: bool = False
    _references: dict = field(default_factory=dict, repr=False)

    @property
    def pure_point_masses(self) -> bool:
        """True when :math:`\\hat\\sigma` is a sum of point masses (sin, cos, polynomials)."""
        return self.status != "not_applicable" and self.regular == 0

    @property
    def regular_bound(self) -> sp.Expr | None:
        """The regular part with parameter values substituted."""
        if self.regular is None:
            return None
        return self.regular.subs(self.activation.substitutions())

    def reference(self, frequency) -> complex:
        r""":math:`\hat\sigma(\omega)`, :math:`\omega > 0`, by 30-digit quadrature of
        :math:`\sigma^{(m)}` divided by :math:`(i\omega)^m`: the independent value every closed
        form derived from this transform (W, the Radon symbol) is checked against."""
        key = sp.Rational(str(frequency)) if not isinstance(frequency, sp.Basic) else frequency
        if key not in self._references:
            with mpmath.workdps(VERIFICATION_DPS):
                value = quadrature_transform(self._pieces, _mp(key)) / (1j * _mp(key)) ** self.order
            self._references[key] = complex(value)
        return self._references[key]

    def regular_numeric(self, frequency: float, dps: int = 15) -> complex:
        r""":math:`\hat\sigma(\omega)` for :math:`\omega \neq 0`: the closed form if there is one, else quadrature."""
        if self.status == "not_applicable":
            raise IbcheckError(f"{self.activation.label}: {self.reason}")
        if frequency == 0:
            raise IbcheckError("the regular part of the transform is not defined at omega = 0")
        if self.regular is not None:
            return complex(self.regular_bound.subs(W, abs(frequency)).evalf(dps)) if frequency > 0 else \
                complex(self.regular_bound.subs(W, -frequency).evalf(dps)).conjugate()
        with mpmath.workdps(dps):
            value = quadrature_transform(self._pieces, mpmath.mpf(frequency))
            return complex(value / (1j * frequency) ** self.order)


# ---------------------------------------------------------------------------------------
# rules for one smooth piece

def term_shape(term: sp.Expr):
    """(c, k, a2, a1) with term = c x^k exp(a2 x^2 + a1 x), or None."""
    term = sp.powsimp(term, combine="exp")
    coeff, k, a2, a1 = sp.S.One, 0, sp.S.Zero, sp.S.Zero
    for f in sp.Mul.make_args(term):
        if not f.has(X):
            coeff *= f
        elif f == X:
            k += 1
        elif f.is_Pow and f.base == X and f.exp.is_Integer and f.exp > 0:
            k += int(f.exp)
        elif isinstance(f, sp.exp):
            arg = sp.expand(f.args[0])
            if not arg.is_polynomial(X) or sp.degree(arg, X) > 2:
                return None
            poly = sp.Poly(arg, X)
            coeffs = dict(zip([m[0] for m in poly.monoms()], poly.coeffs()))
            a2 += coeffs.get(2, 0)
            a1 += coeffs.get(1, 0)
            coeff *= sp.exp(coeffs.get(0, 0))
        else:
            return None
    return coeff, k, a2, a1


def exp_poly_integral(k: int, lam: sp.Expr, a: sp.Expr, b: sp.Expr, decay: sp.Expr | None = None) -> sp.Expr:
    r""":math:`\int_a^b x^k e^{\lambda x}\,dx` by the antiderivative
    :math:`e^{\lambda x}\sum_{j=0}^k (-1)^j \frac{k!}{(k-j)!} \frac{x^{k-j}}{\lambda^{j+1}}`.

    ``decay`` is the real part of :math:`\lambda` (default :math:`\lambda`), checked at infinite ends.
    """
    rate = lam if decay is None else decay

    def antiderivative(point):
        if point in (sp.oo, -sp.oo):
            decays = (rate < 0) if point == sp.oo else (rate > 0)
            if decays is not sp.true:
                raise Unsupported(f"x^{k} e^({rate} x) is not integrable at {point}")
            return sp.S.Zero
        if lam == 0:
            return point ** (k + 1) / (k + 1)
        return sp.exp(lam * point) * sum((-1) ** j * sp.factorial(k) / sp.factorial(k - j)
                                         * point ** (k - j) / lam ** (j + 1) for j in range(k + 1))

    return antiderivative(b) - antiderivative(a)


def _rule_exponential_polynomial(piece, a, b):
    shapes = [term_shape(term) for term in sp.Add.make_args(sp.expand(piece))]
    if any(shape is None or shape[2] != 0 for shape in shapes):
        return None
    return sum((c * exp_poly_integral(k, s - sp.I * W, a, b, decay=s) for c, k, _, s in shapes), sp.S.Zero)


def _rule_gaussian(piece, a, b):
    if (a, b) != (-sp.oo, sp.oo):
        return None
    shapes = [term_shape(term) for term in sp.Add.make_args(sp.expand(piece))]
    if any(shape is None or shape[2] == 0 for shape in shapes):
        return None
    total = sp.S.Zero
    for c, k, a2, a1 in shapes:
        if (a2 < 0) is not sp.true:
            raise Unsupported(f"exp({a2} x^2) is not integrable")
        base = sp.sqrt(sp.pi / -a2) * sp.exp((a1 - sp.I * W) ** 2 / (-4 * a2))
        total += c * sp.I**k * sp.diff(base, W, k)
    return total


def _rational_gcd(values: list[sp.Rational]) -> sp.Rational:
    num = math.gcd(*[int(v.p) for v in values])
    den = math.lcm(*[int(v.q) for v in values])
    return sp.Rational(num, den)


def _as_exp_rational(piece):
    """(a, u, {k: (P, Q)}) with piece = sum_k x^k P(e^{ax})/Q(e^{ax}), or None."""
    expr = piece.rewrite(sp.exp)
    exps = [e for e in expr.atoms(sp.exp) if e.has(X)]
    if not exps:
        return None
    rates = {}
    for e in exps:
        arg = sp.expand(e.args[0])
        if not arg.is_polynomial(X) or sp.degree(arg, X) != 1:
            return None
        rates[e] = (arg.coeff(X, 1), arg.coeff(X, 0))
    first = next(iter(rates.values()))[0]
    ratios = [sp.nsimplify(c / first) for c, _ in rates.values()]
    if not all(r.is_Rational for r in ratios):
        return None
    a = sp.Abs(first) * _rational_gcd([abs(r) for r in ratios])
    a = sp.simplify(a)
    u = sp.Dummy("u", positive=True)
    replaced = expr.xreplace({e: sp.exp(c0) * u ** sp.simplify(c / a) for e, (c, c0) in rates.items()})
    if replaced.has(sp.exp(X)) or any(f.has(X) for f in replaced.atoms(sp.Function)):
        return None
    num, den = sp.fraction(sp.together(replaced))
    if den.has(X) or not num.is_polynomial(X):
        return None
    parts = {}
    for (k,), coeff in sp.Poly(num, X).terms():
        p, q = sp.fraction(sp.cancel(coeff / den))
        if not (p.is_polynomial(u) and q.is_polynomial(u)):
            return None
        parts[k] = (sp.Poly(p, u), sp.Poly(q, u))
    return a, u, parts


def _constant_exponentials(*exprs: sp.Expr) -> tuple[dict, dict]:
    r"""({e^c: t^{cL}}, {t: e^{1/L}}) for the constants :math:`e^c` (c rational, e included)
    in ``exprs``: as powers of one positive symbol t they stay algebraically related, so
    ``cancel`` sees :math:`(u + e^{1/2})^2 = u^2 + 2e^{1/2}u + e` (as independent generators
    e and :math:`e^{1/2}` it does not, and a residue came out as 0/0 = NaN). ({}, {}) when
    there are none or some exponent is irrational."""
    consts = {e for expr in exprs for e in expr.atoms(sp.exp) if not e.free_symbols}
    exponents = {e: e.args[0] for e in consts}
    if any(expr.has(sp.E) for expr in exprs):
        exponents[sp.E] = sp.S.One
    if not exponents or not all(c.is_Rational for c in exponents.values()):
        return {}, {}
    t = sp.Dummy("t", positive=True)
    lcm = math.lcm(*[int(c.q) for c in exponents.values()])
    return {e: t ** (c * lcm) for e, c in exponents.items()}, {t: sp.exp(sp.Rational(1, lcm))}


def _strip_transform(a, u, p: sp.Poly, q: sp.Poly) -> sp.Expr:
    r"""Transform of :math:`h(x) = P(e^{ax})/Q(e^{ax})` on the line by the strip contour."""
    forward, back = _constant_exponentials(p.as_expr(), q.as_expr())
    if forward:
        p, q = sp.Poly(p.as_expr().xreplace(forward), u), sp.Poly(q.as_expr().xreplace(forward), u)
    low_p = min(m[0] for m in p.monoms()) if not p.is_zero else 0
    low_q = min(m[0] for m in q.monoms())
    if p.degree() >= q.degree() or low_p <= low_q:
        raise Unsupported("the rational function of e^(ax) does not decay at both ends")
    roots = sp.roots(q, u)
    if sum(roots.values()) != q.degree():
        raise Unsupported(f"cannot find the roots of {q.as_expr()} in closed form")
    period = 2 * sp.pi / a
    c = -sp.I * W / a - 1
    total = sp.S.Zero
    for r, mult in roots.items():
        if r == 0:
            continue
        angle = sp.arg(r)
        if angle == 0:
            raise Unsupported("pole on the real axis: the function is not integrable")
        if (angle < 0) == sp.true:
            angle += 2 * sp.pi
        z = (sp.log(sp.Abs(r)) + sp.I * angle) / a
        f = sp.cancel((u - r) ** mult * p.as_expr() / q.as_expr())
        # r^(c - j) = e^{-i omega z} r^{-(1+j)} on the branch log r = a z
        res = sp.S.Zero
        for k in range(mult):
            j = mult - 1 - k
            res += sp.binomial(mult - 1, k) * sp.diff(f, u, k).subs(u, r) * sp.ff(c, j) * r ** (-1 - j)
        poly = sp.Poly(sp.expand(res / (a * sp.factorial(mult - 1))), W)
        res = sum((sp.simplify(coeff) * W**e for (e,), coeff in poly.terms()), sp.S.Zero)
        total += res * sp.exp(-sp.I * W * sp.expand(z))
    return (2 * sp.pi * sp.I * total / (1 - sp.exp(W * period))).subs(back)


def _rule_exp_rational(piece, a_end, b_end):
    if (a_end, b_end) != (-sp.oo, sp.oo):
        return None
    shape = _as_exp_rational(piece)
    if shape is None:
        return None
    a, u, parts = shape
    total = sp.S.Zero
    for k, (p, q) in parts.items():
        total += sp.I**k * sp.diff(_strip_transform(a, u, p, q), W, k)
    return total


def _rational_parts(piece):
    """(numerator, denominator) polynomials in x if ``piece`` is rational in x, else None."""
    if piece.has(sp.exp, sp.log, sp.erf, sp.sin, sp.cos, sp.tanh, sp.Abs) or not piece.has(X):
        return None
    num, den = sp.fraction(sp.cancel(sp.together(piece)))
    if not (num.is_polynomial(X) and den.is_polynomial(X)) or sp.degree(den, X) < 1:
        return None
    return sp.Poly(num, X), sp.Poly(den, X)


def _rule_rational_line(piece, a, b):
    r"""Rational :math:`R = P/Q` on the line, :math:`\deg Q \ge \deg P + 2`, no real poles: for
    :math:`\omega > 0` close the contour in the lower half plane,
    :math:`\mathcal F[R](\omega) = -2\pi i \sum_{\operatorname{Im} p < 0} \operatorname{Res}_p R(z)e^{-i\omega z}`."""
    parts = _rational_parts(piece) if (a, b) == (-sp.oo, sp.oo) else None
    if parts is None:
        return None
    num, den = parts
    if den.degree() < num.degree() + 2:
        raise Unsupported(f"{piece} decays too slowly to be integrable")
    roots = sp.roots(den, X)
    if sum(roots.values()) != den.degree():
        raise Unsupported(f"cannot find the poles of {piece} in closed form")
    z = sp.Dummy("z")
    total = sp.S.Zero
    for r, mult in roots.items():
        im = sp.im(r)
        if im == 0:
            raise Unsupported(f"{piece} has a pole on the real axis")
        if (im < 0) == sp.true:
            g = sp.cancel((X - r) ** mult * num.as_expr() / den.as_expr()).subs(X, z)
            res = sp.diff(g * sp.exp(-sp.I * W * z), z, mult - 1).subs(z, r) / sp.factorial(mult - 1)
            total += res
    return sp.expand(-2 * sp.pi * sp.I * total)


def _rule_rational_half_line(piece, a, b):
    r"""Rational function on :math:`(a, \infty)` or :math:`(-\infty, b)` with poles off the interval:
    partial fractions and :math:`\int_0^\infty e^{-i\omega y}(y + c)^{-n}\,dy = e^{i\omega c}c^{1-n}E_n(i\omega c)`
    for c > 0 (:math:`E_n` the generalized exponential integral)."""
    if (a == -sp.oo) == (b == sp.oo) or _rational_parts(piece) is None:
        return None
    sign, start = (1, a) if b == sp.oo else (-1, b)
    y = sp.Dummy("y", positive=True)
    # x = start + sign*y maps the interval to y in (0, oo); e^{-i omega x} = e^{-i omega start} e^{-i (sign omega) y}
    in_y = sp.apart(sp.cancel(piece.subs(X, start + sign * y)), y, full=True).doit()
    total = sp.S.Zero
    for term in sp.Add.make_args(in_y):
        coeff, rest = term.as_independent(y, as_Add=False)
        base, power = (rest.base, -rest.exp) if rest.is_Pow else (rest, -1 if rest != 1 else 0)
        if power < 2:
            raise Unsupported(f"{piece} is not integrable on ({a}, {b})")
        c = sp.simplify(base - y)
        if not c.is_number or c.is_extended_real is not True or (c > 0) != sp.true:
            return None
        k = sign * W
        total += coeff * sp.exp(sp.I * k * c) * c ** (1 - power) * sp.expint(power, sp.I * k * c)
    return sp.exp(-sp.I * W * start) * total


def _rule_sympy(piece, a, b):
    with time_limit(8.0, f"sympy's integral of ({piece}) e^(-i omega x)"):
        result = sp.integrate(piece * sp.exp(-sp.I * W * X), (X, a, b), conds="none")
    if result.has(sp.Integral) or result.has(sp.nan) or isinstance(result, sp.Piecewise):
        raise Unsupported(f"sympy could not integrate {piece} e^(-i omega x)")
    return result


#: rule name -> rule; a rule returns None when it does not apply, raises Unsupported when it
#: applies but the integral does not exist
PIECE_RULES: dict[str, Callable] = {
    "exponential-polynomial": _rule_exponential_polynomial,
    "gaussian": _rule_gaussian,
    "exp-rational strip contour": _rule_exp_rational,
    "rational residues": _rule_rational_line,
    "rational half-line (exponential integral)": _rule_rational_half_line,
}


def _by_rules(piece, a, b):
    for rule_name, rule in PIECE_RULES.items():
        try:
            with time_limit(10.0, f"the {rule_name} rule on {piece}"):
                value = rule(piece, a, b)
        except (TimeLimitExceeded, sp.PolynomialError, NotImplementedError):
            continue
        if value is not None:
            return value, rule_name
    return None


def transform_piece(piece: sp.Expr, a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, str]:
    r""":math:`\int_a^b g(x) e^{-i\omega x}\,dx` for one smooth piece, and the rule that gave it.

    Tries the rules on the whole piece, then (linearity) on the terms with and without
    exponentials separately, then sympy's integrator.
    """
    if piece == 0:
        return sp.S.Zero, "zero"
    found = _by_rules(piece, a, b)
    if found is not None:
        return found
    terms = sp.Add.make_args(sp.expand(piece))
    groups = [sp.Add(*[t for t in terms if t.has(sp.exp)]), sp.Add(*[t for t in terms if not t.has(sp.exp)])]
    if all(g != 0 for g in groups):
        try:
            parts = [_by_rules(sp.factor(g), a, b) for g in groups]
        except Unsupported:
            parts = [None]
        if all(p is not None for p in parts):
            return sum(p[0] for p in parts), "linearity: " + " + ".join(p[1] for p in parts)
    return _rule_sympy(piece, a, b), "sympy integrate"


# ---------------------------------------------------------------------------------------
# numerics: quadrature and verification

class _GaussLegendre(GaussLegendre):
    r"""mpmath's Gauss-Legendre rule (degree m: :math:`n = 3\cdot 2^{m-1}` nodes) with its node
    tables computed in integer fixed point.

    mpmath finds each node by Newton's method on :math:`P_n`, evaluating the three-term
    recurrence :math:`kP_k = (2k-1)xP_{k-1} - (k-1)P_{k-2}` in mpf arithmetic at 1.5 times the
    working precision: :math:`O(n^2)` mpf operations, 0.45 s for the tables up to m = 7 at 30
    digits, once per process.  Here the same Newton iteration, from the same starting points
    :math:`\cos(\pi(j - 1/4)/(n + 1/2))` and to the same step tolerance :math:`2^{-(p+8)}`, runs
    on integers scaled by :math:`2^P`, :math:`P = 1.5p + 2\log_2 n + 10` (the recurrence loses at
    most about n units of the last place), about 18 times faster; nodes and weights are the
    mpmath ones to the last bit of the 1.5p-bit tables (tests compare both).
    """

    def calc_nodes(self, degree, prec, verbose=False):
        if degree == 1:
            return super().calc_nodes(degree, prec, verbose)
        ctx = self.ctx
        n = 3 * 2 ** (degree - 1)
        bits = int(prec * 1.5)
        scale = bits + 2 * n.bit_length() + 10
        one = 1 << scale
        tolerance = 1 << max(scale - prec - 8, 0)
        nodes = []
        with mpmath.workprec(bits):
            for j in range(1, n // 2 + 1):
                root = int(math.cos(math.pi * (j - 0.25) / (n + 0.5)) * 2.0**53) << (scale - 53)
                while True:
                    p_k, p_before = one, 0    # P_0, P_{-1}, then P_n and P_{n-1} at root
                    for k in range(1, n + 1):
                        p_k, p_before = ((2 * k - 1) * (root * p_k >> scale) - (k - 1) * p_before) // k, p_k
                    slope = (n * ((root * p_k >> scale) - p_before) << scale) // ((root * root >> scale) - one)
                    step = (p_k << scale) // slope
                    root -= step
                    if abs(step) < tolerance:
                        break
                x, dp = ctx.ldexp(ctx.mpf(root), -scale), ctx.ldexp(ctx.mpf(slope), -scale)
                weight = 2 / ((1 - x**2) * dp**2)
                nodes += [(x, weight), (-x, weight)]
        return nodes


_GAUSS_LEGENDRE = _GaussLegendre(mpmath.mp)


def gauss_legendre(func, points):
    """``mpmath.quad(func, points, method="gauss-legendre")``, the same algorithm (per panel the
    degree ladder up to ``guess_degree``, the error estimate against ``eps/8``, 20 guard bits),
    with the node tables of :class:`_GaussLegendre`, kept for the life of the process."""
    ctx = mpmath.mp
    prec, epsilon = ctx.prec, ctx.eps / 8
    points = [ctx.convert(p) for p in points]
    with mpmath.workprec(prec + 20):
        value, _ = _GAUSS_LEGENDRE.summation(func, points, prec, epsilon, _GAUSS_LEGENDRE.guess_degree(prec))
    return +value


@lru_cache(maxsize=1024)  # ~100 entries (panels x degrees), ~1 MB per activation: about ten activations
def _symmetric_sums(func, a, b, degree: int, prec: int) -> tuple:
    r"""The rule of :class:`_GaussLegendre` of ``degree`` on [a, b] as pairs of nodes
    :math:`t = c \pm h x_j` (:math:`c, h` the panel's centre and half-width, :math:`x_j \ge 0`
    the standard nodes, weights :math:`w_j`): returns c, the offsets :math:`h x_j`, and
    :math:`h w_j (g(c + hx_j) + g(c - hx_j))`, :math:`h w_j (g(c + hx_j) - g(c - hx_j))`
    (a node at 0 counted once), at the quadrature's precision (the caller's ``prec`` + 20 bits).
    Remembered: every frequency integrates ``func`` on the same nodes."""
    centre, half = (a + b) / 2, (b - a) / 2
    offsets, sums, differences = [], [], []
    for x, w in _GAUSS_LEGENDRE.get_nodes(-1, 1, degree, prec):
        if x < 0:
            continue
        right, left = func(centre + half * x), func(centre - half * x)
        offsets.append(half * x)
        sums.append(half * w * (right + left) if x else half * w * right)
        differences.append(half * w * (right - left))
    return centre, offsets, sums, differences


def _estimated_error(results: list, prec: int, epsilon):
    """mpmath's error estimate of the last of ``results`` (successive degrees: a power of ten
    from the logarithms of their differences), with the logarithms taken in double precision:
    the estimate is read to a power of ten, and the differences are exact then rounded (mpf
    subtraction), so 53 bits hold every digit it uses; at the quadrature's precision the two
    logarithms cost as much as a third of the sums."""
    with mpmath.workprec(53):
        return _GAUSS_LEGENDRE.estimate_error(results, prec, epsilon)


def fourier_integral(func, points, frequency):
    r""":math:`\int g(t)\,e^{-i\omega t}\,dt` over the panels ``points``: per panel the
    algorithm of ``mpmath.quad(method="gauss-legendre")`` (:func:`gauss_legendre`: the degree
    ladder, the error estimate against ``eps/8``, 20 guard bits) on the integrand
    :math:`g(t)e^{-i\omega t}`.  The nodes pair up around the centre c, so one cosine and sine
    serve two of them, and the values of g are weighted once for all frequencies
    (:func:`_symmetric_sums`):

    .. math:: \sum_k w_k g(t_k) e^{-i\omega t_k} = e^{-i\omega c} \sum_j \big[S_j \cos(\omega h x_j)
       - i D_j \sin(\omega h x_j)\big]

    with :math:`S_j, D_j` the sum and difference of the weighted values at :math:`c \pm h x_j`."""
    ctx = mpmath.mp
    prec, epsilon = ctx.prec, ctx.eps / 8
    points = [ctx.convert(p) for p in points]
    total = mpmath.mpc(0)
    with mpmath.workprec(prec + 20):
        for a, b in zip(points, points[1:]):
            results = []
            for degree in range(1, _GAUSS_LEGENDRE.guess_degree(prec) + 1):
                centre, offsets, sums, differences = _symmetric_sums(func, a, b, degree, prec)
                cosines, sines = zip(*[ctx.cos_sin(frequency * offset) for offset in offsets])
                results.append(ctx.expj(-frequency * centre)
                               * (ctx.fdot(sums, cosines) - 1j * ctx.fdot(differences, sines)))
                if degree > 1 and _estimated_error(results, prec, epsilon) <= epsilon:
                    break
            total += results[-1]
    return +total


def _tail_end(func, start, sign) -> mpmath.mpf | None:
    """A point beyond which |func| is below the working precision (exponential tails), or None."""
    eps = mpmath.mpf(10) ** (-mpmath.mp.dps - 5)
    scale = max(abs(func(start + sign * mpmath.mpf(s))) for s in (0.25, 0.5, 1, 2))
    for k in range(1, 11):
        far = mpmath.mpf(2) ** k
        if abs(func(start + sign * far)) < eps * scale and abs(func(start + 2 * sign * far)) < eps * scale:
            return 2 * far
    return None


def _root_values(poly: sp.Poly) -> list[complex] | None:
    """The roots of ``poly`` (None when the root finder does not converge)."""
    if poly.degree() <= 0:
        return []
    square_free = sp.Poly(sp.sqf_part(poly.as_expr()), *poly.gens)
    if square_free.degree() <= 0:
        return []
    try:
        return [complex(r) for r in square_free.nroots(n=25, maxsteps=300)]
    except mpmath.libmp.NoConvergence:
        return None


@lru_cache(maxsize=256)
def _singular_real_parts(piece: sp.Expr) -> tuple[float, float] | None:
    """(min, max) real part of the singularities of ``piece`` continued to the complex plane,
    when the piece is rational in x, rational in e^(ax) (times polynomials: singularities on
    vertical lines Re z = log|u_k|/a), or a sum of the two kinds; None otherwise."""
    terms = sp.Add.make_args(sp.expand(piece))
    groups = [g for g in (sp.Add(*[t for t in terms if t.has(sp.exp)]),
                          sp.Add(*[t for t in terms if not t.has(sp.exp)])) if g != 0]
    reals: list[float] = []
    for group in groups:
        rational = _rational_parts(sp.factor(group))
        if rational is not None:
            roots = _root_values(rational[1])
            if roots is None:
                return None
            reals += [r.real for r in roots]
            continue
        shape = _as_exp_rational(group)
        if shape is None or shape[0].free_symbols:
            return None
        a = float(shape[0])
        for _, q in shape[2].values():
            roots = _root_values(q)
            if roots is None:
                return None
            reals += [float(np.log(abs(u))) / a for u in roots if abs(u) > 0]
    return (min(reals), max(reals)) if reals else (0.0, 0.0)


def _quad_piece(piece, a, b, frequency):
    r"""mpmath quadrature of piece(x) e^{-i omega x} on (a, b), omega > 0.

    Exponentially decaying tails are cut where they fall below the working precision and
    integrated on dyadic panels.  Algebraic tails of a rational piece are integrated along a
    ray into the lower half plane, :math:`z = T - it`, where :math:`e^{-i\omega z}` decays like
    :math:`e^{-\omega t}` (Cauchy: no poles in the swept quarter plane, T beyond every pole's
    real part); other slow tails go to ``quadosc``.
    """
    func = _compiled(piece)
    poles = _singular_real_parts(piece)

    minus_frequency = -frequency

    def integrand(t):
        return func(t) * mpmath.expj(minus_frequency * t)

    def tail(start, sign):
        end = _tail_end(func, start, sign)
        if end is not None:   # panels start +- [0, 1/2, 1, 2, 4, ..., end], in increasing x
            panels = [start + sign * d for d in
                      [mpmath.mpf(0)] + [mpmath.mpf(2) ** k for k in range(-1, int(mpmath.log(end, 2)) + 1)]]
            return fourier_integral(func, panels[::sign], frequency)
        if poles is None:
            return mpmath.quadosc(lambda s: integrand(start + sign * s), [0, mpmath.inf], omega=frequency)
        corner = max(start, mpmath.mpf(poles[1]) + 1) if sign > 0 else min(start, mpmath.mpf(poles[0]) - 1)
        straight = fourier_integral(func, sorted([start, corner]), frequency) if corner != start else 0
        ray = mpmath.quad(lambda t: func(corner - 1j * t) * mpmath.expj(-frequency * corner)
                          * mpmath.exp(-frequency * t), [0, 1, 4, 16, mpmath.inf])
        return straight - sign * 1j * ray

    if a == -mpmath.inf and b == mpmath.inf:
        return tail(0, 1) + tail(0, -1)
    if b == mpmath.inf:
        return tail(a, 1)
    if a == -mpmath.inf:
        return tail(b, -1)
    return fourier_integral(func, [a, b], frequency)


def _mp(value: sp.Expr):
    return mpmath.mpf(sp.Rational(value).p) / sp.Rational(value).q if value.is_Rational else \
        mpmath.mpf(sp.N(value, mpmath.mp.dps + 5)) if value.is_finite else \
        (mpmath.inf if value == sp.oo else -mpmath.inf)


@lru_cache(maxsize=256)
def _compiled(piece: sp.Expr):
    """The piece as an mpmath function that remembers its values (the quadrature nodes
    repeat across frequencies, so each node is evaluated once per precision)."""
    func = compile_expression(piece, "mpmath")
    memo: dict = {}

    def remembered(t):
        key = (t, mpmath.mp.prec)
        value = memo.get(key)
        if value is None:
            value = memo[key] = func(t)
        return value
    return remembered


def _separable(piece: sp.Expr) -> list[sp.Expr]:
    """[exponential terms, rational terms] when each group is integrable on its own (so each can
    use its best quadrature: truncation for the exponential tail, a complex ray for the
    algebraic one); else [piece]."""
    terms = sp.Add.make_args(sp.expand(piece))
    with_exp = sp.Add(*[t for t in terms if t.has(sp.exp)])
    rest = sp.factor(sp.Add(*[t for t in terms if not t.has(sp.exp)]))
    if with_exp == 0 or rest == 0:
        return [piece]
    rational = _rational_parts(rest)
    if rational is None or rational[1].degree() < rational[0].degree() + 2:
        return [piece]
    decays = _structural_decay(with_exp, 1) and _structural_decay(with_exp, -1)
    return [with_exp, rest] if decays else [piece]


def quadrature_transform(pieces: PiecewiseSmooth, frequency) -> complex:
    r""":math:`\mathcal F[g](\omega)` of a piecewise-smooth ``g`` with point masses, numerically."""
    total = mpmath.mpc(0)
    for a, b, piece in pieces.intervals():
        if piece == 0:
            continue
        for part in (_separable(piece) if (a, b) == (-sp.oo, sp.oo) else [piece]):
            total += _quad_piece(part, _mp(a), _mp(b), frequency)
    for atom in pieces.atoms:
        coeff = mpmath.mpmathify(complex(sp.N(atom.coefficient, mpmath.mp.dps + 5))) \
            if not atom.coefficient.is_Rational else _mp(atom.coefficient)
        total += coeff * (1j * frequency) ** atom.order * mpmath.expj(-frequency * _mp(atom.location))
    return total


def _relative_error(closed, numeric, floor=None) -> float:
    """|closed - numeric| / max(|numeric|, floor); infinite when either value is not a finite
    number (a NaN must never pass: ``max(worst, nan)`` is ``worst``)."""
    if not all(mpmath.isfinite(v.real) and mpmath.isfinite(v.imag)
               for v in (mpmath.mpmathify(closed), mpmath.mpmathify(numeric))):
        return math.inf
    floor = mpmath.mpf(10) ** (-VERIFICATION_DPS + 5) if floor is None else floor
    scale = max(abs(numeric), floor)
    return float(abs(closed - numeric) / scale)


#: values below this fraction of the largest |F[sigma^(m)]| at the verification frequencies are
#: compared in absolute terms: 30-digit quadrature of an O(1) integrand resolves ~1e-28 of the
#: scale, so a transform of 1e-30 (a Gaussian at omega = 4) has no correct relative digits, while
#: 1e-15 of the scale keeps the noise (1e-28 / 1e-15) well below the tolerance 1e-12
RESOLUTION = mpmath.mpf("1e-15")


def _evaluate(expr: sp.Expr, frequency: sp.Expr):
    """``expr`` at omega = ``frequency`` as an mpmath complex (NaN when it has no finite value)."""
    try:
        return mpmath.mpc(complex(expr.subs(W, frequency).evalf(VERIFICATION_DPS + 10)))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return mpmath.mpc(mpmath.nan)


def verification_frequencies(expr: sp.Expr) -> list[sp.Rational]:
    """:data:`VERIFICATION_FREQUENCIES` and :data:`RANDOM_FREQUENCIES` more drawn uniformly from
    (0.1, 6) with a seed taken from ``expr`` (reproducible, yet not the same points for every
    activation, so that no closed form is tuned to a fixed grid)."""
    seed = int.from_bytes(hashlib.sha256(sp.srepr(expr).encode()).digest()[:8], "big")
    drawn = np.random.default_rng(seed).uniform(0.1, 6.0, RANDOM_FREQUENCIES)
    return list(VERIFICATION_FREQUENCIES) + [sp.Rational(round(float(f) * 1000), 1000) for f in drawn]


def verify_transform(pieces: PiecewiseSmooth, order: int, derivative_transform: sp.Expr,
                     regular: sp.Expr, frequencies) -> Verification:
    r"""The forms shown, :math:`\mathcal F[\sigma^{(m)}]` and the final regular part
    :math:`\hat\sigma` (after division and tidying), against mpmath quadrature of
    :math:`\sigma^{(m)}` (30 digits): :math:`\hat\sigma(\omega)` is compared with
    :math:`Q(\omega)/(i\omega)^m`, Q the quadrature.  The error is the worse of the two forms;
    a non-finite value fails."""
    closed_values, numeric_values, worst = [], [], 0.0
    with mpmath.workdps(VERIFICATION_DPS):
        quadratures = []
        for f in frequencies:
            try:
                quadratures.append(quadrature_transform(pieces, _mp(f)))
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                quadratures.append(mpmath.mpc(mpmath.nan))   # no reference value: the form cannot pass
        finite = [abs(n) for n in quadratures if mpmath.isfinite(abs(n))]
        floor = RESOLUTION * max(finite) if finite and max(finite) > 0 else None
        for f, n in zip(frequencies, quadratures):
            reference = n / (1j * _mp(f)) ** order
            final = _evaluate(regular, f)
            worst = max(worst, _relative_error(_evaluate(derivative_transform, f), n, floor),
                        _relative_error(final, reference, None if floor is None else floor / _mp(f) ** order))
            closed_values.append(complex(final))
            numeric_values.append(complex(reference))
    return Verification("mpmath quadrature of the integrable derivative, 30 digits (final regular part "
                        "and F[sigma^(m)])", [float(f) for f in frequencies], closed_values,
                        numeric_values, worst)


#: panels (offsets from the centre c) of the Gaussian pairing integrals: beyond |x - c| = 16 the
#: weight is below e^{-128} ~ 3e-56, so for sigma of polynomial growth (degree <= 8 near
#: |x| ~ 20: a factor 1e11) the cut-off tail is below 1e-44 of a unit-size integral, far below
#: the 30 digits; Gauss-Legendre on these panels gives the tanh-sinh values over the whole
#: line (that rule samples x up to 1e30, where sin(x) at 30 digits costs a long argument
#: reduction) in half the time
PAIRING_PANELS = (-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16)


def verify_point_masses(act: Activation, masses: tuple[Atom, ...]) -> Verification:
    r"""Parseval pairing with :math:`\varphi_c(x) = e^{-(x-c)^2/2}`:
    :math:`\int \sigma\varphi_c = \frac{1}{2\pi}\sum_a c_a\, \overline{\hat\varphi_c}^{(j_a)}`-terms,
    where :math:`\hat\varphi_c(\omega) = \sqrt{2\pi}e^{-\omega^2/2 - i\omega c}`; the integrals
    on :data:`PAIRING_PANELS` around c.
    """
    func = compile_expression(act.bound, "mpmath")
    closed_values, numeric_values, worst = [], [], 0.0
    shifts = [sp.Rational(-3, 2), sp.Rational(-1, 2), sp.Rational(1, 3), sp.Integer(1), sp.Rational(5, 2)]
    c_sym = sp.Symbol("c", real=True)
    phi_hat_conj = sp.sqrt(2 * sp.pi) * sp.exp(-W**2 / 2 + sp.I * W * c_sym)
    with mpmath.workdps(VERIFICATION_DPS):
        for c in shifts:
            cm = _mp(c)
            n = gauss_legendre(lambda t: func(t) * mpmath.exp(-(t - cm) ** 2 / 2),
                               [cm + d for d in PAIRING_PANELS])
            # <delta^(j)(w - w0), g> = (-1)^j g^(j)(w0)
            closed = sum((a.coefficient * (-1) ** a.order * sp.diff(phi_hat_conj, W, a.order)
                          ).subs({W: a.location, c_sym: c}) for a in masses) / (2 * sp.pi)
            cv = _evaluate(closed, sp.S.Zero)
            worst = max(worst, _relative_error(cv, n))
            closed_values.append(complex(cv))
            numeric_values.append(complex(n))
    return Verification("Parseval pairing with shifted Gaussian test functions, 30 digits",
                        [float(c) for c in shifts], closed_values, numeric_values, worst)


# ---------------------------------------------------------------------------------------
# point-mass activations (trigonometric polynomials, polynomials)

def _point_masses(expr: sp.Expr) -> tuple[Atom, ...] | None:
    masses: list[Atom] = []
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, dep = term.as_independent(X, as_Add=False)
        if dep == 1:
            masses.append(Atom(sp.S.Zero, 0, 2 * sp.pi * coeff))
        elif dep == X or (dep.is_Pow and dep.base == X and dep.exp.is_Integer and dep.exp > 0):
            j = 1 if dep == X else int(dep.exp)
            masses.append(Atom(sp.S.Zero, j, 2 * sp.pi * sp.I**j * coeff))
        elif isinstance(dep, (sp.sin, sp.cos)):
            arg = sp.expand(dep.args[0])
            if not arg.is_polynomial(X) or sp.degree(arg, X) != 1:
                return None
            f, phase = arg.coeff(X, 1), arg.coeff(X, 0)
            if isinstance(dep, sp.sin):  # sin = (e^{i u} - e^{-i u})/(2i)
                masses += [Atom(f, 0, -sp.I * sp.pi * coeff * sp.exp(sp.I * phase)),
                           Atom(-f, 0, sp.I * sp.pi * coeff * sp.exp(-sp.I * phase))]
            else:
                masses += [Atom(f, 0, sp.pi * coeff * sp.exp(sp.I * phase)),
                           Atom(-f, 0, sp.pi * coeff * sp.exp(-sp.I * phase))]
        else:
            return None
    return tuple(masses)


def _point_mass_result(act: Activation, masses) -> FourierResult:
    # in the real frequency symbol: with omega > 0, DiracDelta(omega + 1) would evaluate to 0
    spectrum = sum((m.coefficient * (sp.DiracDelta(W_REAL - m.location, m.order) if m.order
                                     else sp.DiracDelta(W_REAL - m.location)) for m in masses), sp.S.Zero)
    steps = [Step("The activation is a trigonometric polynomial (plus a polynomial): each term "
                  "e^{i a x} transforms to 2 pi delta(omega - a), x^j to 2 pi i^j delta^{(j)}(omega).",
                  sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), spectrum)),
             Step("The transform is a sum of point masses; its regular part vanishes for every "
                  "omega away from the spike frequencies.", sp.Integer(0))]
    verification = verify_point_masses(act, masses)
    status = "closed_form_verified" if verification.passed else "closed_form_unverified"
    steps.append(Step(f"Verified by {verification.method}: max relative error "
                      f"{verification.max_relative_error:.2e}."))
    return FourierResult(act, status, "the transform is a sum of point masses", order=0,
                         derivative=act.bound, derivative_transform=spectrum, regular=sp.S.Zero,
                         singular=masses, verification=verification, steps=steps,
                         rules=["point masses"])


# ---------------------------------------------------------------------------------------
# the pipeline

def _structural_decay(piece: sp.Expr, sign: int) -> bool | None:
    """Whether ``piece`` is O(x^-2) at sign*infinity, decided from its shape when it is an
    exponential polynomial or a polynomial in x with coefficients rational in e^(ax); None
    for other shapes."""
    shapes = [term_shape(t) for t in sp.Add.make_args(sp.expand(piece))]
    if all(sh is not None for sh in shapes):
        if all(sh[2] == 0 for sh in shapes):
            return all(((sign * sh[3]) < 0) == sp.true for sh in shapes)
        if all(((sh[2] < 0) == sp.true) for sh in shapes):
            return True
        return None
    shape = _as_exp_rational(piece)
    if shape is None:
        return None
    _, _, parts = shape
    for p, q in parts.values():
        if p.is_zero:
            continue
        if sign > 0 and p.degree() >= q.degree():
            return False
        if sign < 0 and min(m[0] for m in p.monoms()) <= min(m[0] for m in q.monoms()):
            return False
    return True


def _clearly_growing(piece: sp.Expr, sign: int) -> bool:
    """Numerical pre-screen: |x^2 piece| is above 1 and growing between x = 40 and 80.

    Only used to skip a slow sympy limit; wrongly calling a piece non-integrable would just
    take one derivative more, which leaves the transform unchanged.
    """
    if piece.free_symbols - {X}:
        return False
    func = _compiled(piece)
    with mpmath.workdps(30):
        try:
            near = abs(40**2 * func(mpmath.mpf(40 * sign)))
            far = abs(80**2 * func(mpmath.mpf(80 * sign)))
        except (ZeroDivisionError, ValueError, OverflowError):
            return False
    return far > 2 * near and far > 1


def _integrable(pieces: PiecewiseSmooth) -> bool:
    r"""Both outer pieces decay like :math:`O(x^{-2})`: from their shape, else by limits
    (:func:`theory.symbolic.cached_limit`)."""
    for index, sign in ((0, -1), (-1, 1)):
        piece = pieces.pieces[index]
        if piece == 0:
            continue
        decays = _structural_decay(piece, sign)
        if decays is None and _clearly_growing(piece, sign):
            return False
        if decays is None:
            lim = cached_limit(X**2 * piece, X, sign * sp.oo)
            decays = not isinstance(lim, sp.AccumBounds) and bool(lim.is_finite)
        if not decays:
            return False
    return True


def _asymptotic_polynomial(piece: sp.Expr, end, degree: int) -> sp.Expr | None:
    """p with piece - p -> 0 at ``end`` (p a polynomial of degree <= degree), or None.

    For a polynomial in x with coefficients rational in e^(ax) the coefficients are the limits
    of the rational functions as u = e^(ax) -> 0 or infinity (read off the polynomials);
    otherwise they come from successive limits (:func:`theory.symbolic.cached_limit`).
    """
    shape = _as_exp_rational(piece)
    if shape is not None:
        _, u, parts = shape
        poly = sp.S.Zero
        for k, (p, q) in parts.items():
            if end == sp.oo:
                if p.degree() > q.degree():
                    return None
                c = p.LC() / q.LC() if p.degree() == q.degree() else 0
            else:
                if q.eval(0) == 0:
                    return None
                c = p.eval(0) / q.eval(0)
            poly += c * X**k
        return sp.simplify(poly)
    rest, poly = piece, sp.S.Zero
    for j in range(degree, -1, -1):
        c = cached_limit(rest / X**j, X, end)
        if isinstance(c, sp.AccumBounds) or not c.is_finite:
            return None
        poly += c * X**j
        rest = rest - c * X**j
    remainder = cached_limit(rest, X, end)
    return sp.simplify(poly) if remainder == 0 else None


def asymptotic_polynomials(pieces: PiecewiseSmooth, degree: int) -> tuple[sp.Expr, sp.Expr] | None:
    """(p-, p+): polynomials that sigma approaches at -infinity and +infinity, or None."""
    p_minus = _asymptotic_polynomial(pieces.pieces[0], -sp.oo, degree)
    p_plus = _asymptotic_polynomial(pieces.pieces[-1], sp.oo, degree)
    return None if p_minus is None or p_plus is None else (p_minus, p_plus)


def _singular_part(asymptotes, degree: int) -> tuple[Atom, ...]:
    p_minus, p_plus = asymptotes
    q = sp.expand((p_plus + p_minus) / 2)
    return tuple(Atom(sp.S.Zero, j, sp.simplify(2 * sp.pi * sp.I**j * q.coeff(X, j)))
                 for j in range(degree + 1) if q.coeff(X, j) != 0)


def _distributional_part(act: Activation, expr: sp.Expr):
    """(asymptotes, point masses at 0, reason when none, the step that shows them)."""
    degree = act.growth.degree or 0
    try:
        asymptotes = asymptotic_polynomials(PiecewiseSmooth.from_expr(expr), degree)
    except (Unsupported, TimeLimitExceeded):
        asymptotes = None
    if asymptotes is None:
        return None, (), "the activation is not a polynomial plus a decaying part at +-infinity", None
    singular = _singular_part(asymptotes, degree)
    shown = sum((a.coefficient * name(f"delta^({a.order})(omega)", r"\delta^{(%d)}(\omega)" % a.order) for a in singular), sp.S.Zero)
    step = Step(f"Distributional part at omega = 0 from the asymptotic polynomials "
                f"p- = {asymptotes[0]}, p+ = {asymptotes[1]}: 2 pi sum_j i^j q_j delta^(j)(omega) "
                "with q = (p+ + p-)/2; the regular part is taken as a Hadamard finite part.", shown)
    return asymptotes, singular, "", step


def _derive(act: Activation, expr: sp.Expr, symbolic: bool) -> FourierResult:
    steps: list[Step] = []
    growth = act.growth
    steps.append(Step(f"sigma is tempered ({growth.reason}), so its Fourier transform exists as a "
                      "distribution.", sp.Eq(name("sigma(x)", r"\sigma(x)"), expr)))
    pieces = PiecewiseSmooth.from_expr(expr)
    order = 0
    while not _integrable(pieces):
        order += 1
        if order > MAX_ORDER:
            raise Unsupported(f"no derivative of order <= {MAX_ORDER} has an integrable smooth part")
        pieces = pieces.derivative()
    derivative = pieces.as_expr()
    steps.append(Step(f"Differentiate in the sense of distributions until the smooth part is "
                      f"integrable: m = {order}.",
                      sp.Eq(name(f"sigma^({order})(x)", rf"\sigma^{{({order})}}(x)"), derivative)))
    transform, rules = sp.S.Zero, []
    for a, b, piece in pieces.intervals():
        value, rule = transform_piece(piece, a, b)
        if piece != 0:
            rules.append(rule)
            steps.append(Step(f"Transform the piece on ({a}, {b}) by the {rule} rule.",
                              sp.Eq(name(f"integral from {a} to {b} of ({piece}) exp(-i omega x) dx",
                                   r"\int_{%s}^{%s} (%s) e^{-i\omega x}dx" % (sp.latex(a), sp.latex(b), sp.latex(piece))), tidy(value, W))))
        transform += value
    for atom in pieces.atoms:
        transform += atom.coefficient * (sp.I * W) ** atom.order * sp.exp(-sp.I * W * atom.location)
    if pieces.atoms:
        rules.append("point masses")
        steps.append(Step("Point masses transform exactly: F[delta^(j)(x - c)] = (i omega)^j e^{-i omega c}."))
    transform = tidy(transform, W)
    steps.append(Step("Add the pieces.", sp.Eq(name(f"F[sigma^({order})](omega)", rf"\mathcal{{F}}[\sigma^{{({order})}}](\omega)"), transform)))
    regular = tidy(transform / (sp.I * W) ** order, W, thorough=True)
    steps.append(Step(f"Divide by (i omega)^{order} for omega != 0 (the regular part of the transform).",
                      sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), regular)))
    asymptotes, singular, why, step = _distributional_part(act, expr)
    if step is not None:
        steps.append(step)
    return FourierResult(act, "closed_form_unverified", "", order=order, derivative=derivative,
                         derivative_transform=transform, regular=regular, singular=singular,
                         singular_reason=why, asymptotes=asymptotes, steps=steps, rules=rules,
                         _pieces=pieces)


# ---------------------------------------------------------------------------------------
# affine arguments: sigma(x) = g(a x + b)

def _arguments(expr: sp.Expr) -> list[sp.Expr]:
    """The arguments that depend on x of every function, Max/Min and relation in ``expr``."""
    found = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Rel):
            found.append(node.lhs - node.rhs)
        elif isinstance(node, (sp.Function, sp.Max, sp.Min)):
            found += list(node.args)
    return [sp.expand(arg) for arg in found if isinstance(arg, sp.Expr) and arg.has(X)]


def _shape(arg: sp.Expr) -> tuple[int, sp.Expr, sp.Expr, sp.Expr] | None:
    """(degree, c2, c1, c0) of a polynomial argument of degree 1 or 2 with number coefficients."""
    if not arg.is_polynomial(X) or arg.free_symbols != {X}:
        return None
    degree = sp.degree(arg, X)
    if degree not in (1, 2):
        return None
    return degree, arg.coeff(X, 2), arg.coeff(X, 1), arg.coeff(X, 0)


def affine_argument(expr: sp.Expr) -> tuple[sp.Rational, sp.Rational, sp.Expr] | None:
    r"""(a, b, g) with a > 0, (a, b) != (1, 0) and :math:`\sigma(x) = g(ax + b)`, where g's
    arguments carry no shift (linear arguments :math:`c y`, quadratic :math:`c_2 y^2 + c_0`,
    relations at 0) and, for a pure scaling (b = 0), unit rates; None when no such (a, b) is
    found.  Candidates come from the linear arguments (:math:`c_1 x + c_0`: a = |c_1|,
    b = sign(c_1) c_0) and the vertices of quadratic ones (a = 1, b = c_1/(2 c_2)).
    """
    candidates = []
    for arg in _arguments(expr):
        shape = _shape(arg)
        if shape is None:
            continue
        degree, c2, c1, c0 = shape
        candidate = (abs(c1), sp.sign(c1) * c0) if degree == 1 else (sp.S.One, c1 / (2 * c2))
        if all(v.is_Rational for v in candidate) and candidate != (1, 0) and candidate not in candidates:
            candidates.append(candidate)
    for a, b in candidates:
        g = expr.subs(X, (X - b) / a)
        shapes = [_shape(arg) for arg in _arguments(g)]
        if any(sh is not None and (sh[3] != 0 if sh[0] == 1 else sh[2] != 0) for sh in shapes):
            continue
        if b == 0 and any(sh is not None and sh[0] == 1 and abs(sh[2]) != 1 for sh in shapes):
            continue
        return a, b, g
    return None


def _affine(act: Activation) -> FourierResult | None:
    r"""The transform of :math:`\sigma(x) = g(ax + b)` from a verified closed form of g by the
    shift and scale rules, :math:`\hat\sigma(\omega) = \frac{e^{i\omega b/a}}{|a|}\hat g(\omega/a)`
    (substitute :math:`y = ax + b`), or None when there is no such g with a verified transform."""
    found = affine_argument(act.bound)
    if found is None:
        return None
    a, b, g = found
    inner = fourier_transform(Activation(str(g), g))
    if inner.status != "closed_form_verified" or inner.regular is None or inner.pure_point_masses:
        return None
    order = inner.order
    regular = tidy(sp.exp(sp.I * W * b / a) / a * inner.regular_bound.subs(W, W / a), W, thorough=True)
    transform = tidy(sp.expand((sp.I * W) ** order * regular), W)
    pieces = _bound_pieces(act, order)
    steps = [Step(f"sigma is tempered ({act.growth.reason}); it is g(a x + b) with a = {a}, b = {b}:",
                  sp.Eq(name("g(y)", "g(y)"), g.subs(X, sp.Symbol("y", real=True)))),
             Step(f"The transform of g ({', '.join(inner.rules)}; verified):",
                  sp.Eq(name("g_hat(omega)", r"\hat g(\omega)"), inner.regular_bound)),
             Step("Shift and scale rule (substitute y = a x + b): sigma_hat(omega) = "
                  "e^(i omega b/a) g_hat(omega/a)/|a|; for omega != 0:",
                  sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), regular))]
    asymptotes, singular, why, step = _distributional_part(act, act.bound)
    if step is not None:
        steps.append(step)
    return FourierResult(act, "closed_form_unverified", "", order=order, derivative=pieces.as_expr(),
                         derivative_transform=transform, regular=regular, singular=singular,
                         singular_reason=why, asymptotes=asymptotes, steps=steps,
                         rules=["shift/scale of " + " + ".join(inner.rules)], _pieces=pieces)


def _sum(act: Activation) -> FourierResult | None:
    r"""Linearity at the level of the activation: :math:`\sigma = \sum_k g_k` with a verified
    closed form for every term (polynomial terms only add point masses at 0), so that
    :math:`\hat\sigma = \sum_k \hat g_k` for :math:`\omega \ne 0` (terms with different shifts,
    ``tanh(3*x+1/2) + gelu(2*x-1/2)/3``, each by the shift/scale rule); None otherwise."""
    terms = [t for t in sp.Add.make_args(act.bound) if t.has(X)]
    if len(terms) < 2:
        return None
    regular, rules, shown = sp.S.Zero, [], []
    for term in terms:
        masses = _point_masses(term)
        if masses is not None and all(m.location == 0 for m in masses):
            continue
        inner = fourier_transform(Activation(str(term), term))
        if inner.status != "closed_form_verified" or inner.regular is None or inner.pure_point_masses:
            return None
        regular += inner.regular_bound
        rules += inner.rules
        shown.append(sp.Eq(name(f"F[{term}]", r"\mathcal{F}[%s]" % sp.latex(term)), inner.regular_bound))
    pieces = PiecewiseSmooth.from_expr(act.bound)
    order = 0
    while not _integrable(pieces):
        order += 1
        if order > MAX_ORDER:
            return None
        pieces = pieces.derivative()
    regular = tidy(regular, W, thorough=True)
    steps = [Step(f"sigma is tempered ({act.growth.reason}); it is a sum of terms with verified transforms "
                  "(polynomial terms only add point masses at omega = 0):", sp.Tuple(*shown)),
             Step("Linearity: for omega != 0 the regular part is the sum.",
                  sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), regular))]
    asymptotes, singular, why, step = _distributional_part(act, act.bound)
    if step is not None:
        steps.append(step)
    return FourierResult(act, "closed_form_unverified", "", order=order, derivative=pieces.as_expr(),
                         derivative_transform=tidy(sp.expand((sp.I * W) ** order * regular), W),
                         regular=regular, singular=singular, singular_reason=why, asymptotes=asymptotes,
                         steps=steps, rules=["sum of: " + " + ".join(rules)], _pieces=pieces)


# ---------------------------------------------------------------------------------------
# the transform: candidate derivations, verification, the in-process cache

def _mark_time_limited(result: FourierResult) -> None:
    result.time_limited = True


@remember_unless_time_limited(_mark_time_limited)
def fourier_transform(act: Activation) -> FourierResult:
    """Derive, verify and explain the generalized Fourier transform of ``act`` (module docstring).

    Results are remembered per activation for the life of the process (treat them as
    read-only), except those reached while a time limit expired somewhere (a timed-out
    rewrite or rule): such a result depends on the machine's load, so it is recomputed on
    the next call; ``time_limited`` on the result says so.
    """
    return _transform(act)


def _candidates(act: Activation):
    """Closed-form derivations in the order tried: the shift/scale rule (a formula without
    parameters of the form g(a x + b)), linearity over the terms of a sum (without parameters),
    the rules with parameters symbolic, with values bound."""
    if not act.values:
        yield _affine
        yield _sum
    if act.symbolic != act.bound:
        yield lambda act: _derive(act, act.symbolic, True)
    yield lambda act: _derive(act, act.bound, False)


def _transform(act: Activation) -> FourierResult:
    if not act.growth.tempered:
        return FourierResult(act, "not_applicable", act.growth.reason,
                             steps=[Step(f"No tempered Fourier transform: {act.growth.reason}.")])
    masses = _point_masses(act.bound)
    if masses is not None:
        if all(m.location == 0 for m in masses):
            return FourierResult(act, "not_applicable",
                                 "the activation is a polynomial: its transform lives at omega = 0 only, "
                                 "so every nonzero frequency has infinite penalty",
                                 regular=sp.S.Zero, singular=masses,
                                 steps=[Step("A polynomial transforms to derivatives of delta at omega = 0.")])
        return _point_mass_result(act, masses)
    problems: list[str] = []
    rejected: list[Step] = []
    frequencies = verification_frequencies(act.bound)
    for derivation in _candidates(act):
        try:
            result = derivation(act)
        except (Unsupported, TimeLimitExceeded) as err:
            problems.append(str(err))
            continue
        if result is None:
            continue
        bound = act.substitutions()
        result._pieces = _bound_pieces(act, result.order) if act.values else result._pieces
        try:
            with time_limit(VERIFICATION_SECONDS, f"the verification of the closed form by {', '.join(result.rules)}"):
                v = verify_transform(result._pieces, result.order, result.derivative_transform.subs(bound),
                                     result.regular_bound, frequencies)
        except TimeLimitExceeded as err:   # unverified is never used: try the next rule
            problems.append(str(err))
            continue
        result.verification = v
        summary = (f"Verified the final sigma_hat and F[sigma^({result.order})] against {v.method} at "
                   f"omega in {v.frequencies}: max relative error {v.max_relative_error:.2e} "
                   f"(tolerance {v.tolerance:g})")
        if v.passed:
            result.status = "closed_form_verified"
            result.steps.append(Step(summary + ": passed."))
            return result
        problems.append(f"the closed form by {', '.join(result.rules)} failed verification "
                        f"(relative error {v.max_relative_error:.1e})")
        rejected.append(Step(summary + ": FAILED, so this closed form is not used.",
                             sp.Eq(name("rejected sigma_hat(omega)", r"\hat\sigma_{\mathrm{rejected}}(\omega)"),
                                   result.regular)))
    result = _numerical_only(act, "; ".join(problems) or "no rule gives a closed form")
    result.steps[:0] = rejected
    return result


def _bound_pieces(act: Activation, order: int) -> PiecewiseSmooth:
    pieces = PiecewiseSmooth.from_expr(act.bound)
    for _ in range(order):
        pieces = pieces.derivative()
    return pieces


def _numerical_only(act: Activation, reason: str) -> FourierResult:
    pieces = PiecewiseSmooth.from_expr(act.bound)
    order = 0
    while not _integrable(pieces):
        order += 1
        if order > MAX_ORDER:
            return FourierResult(act, "not_applicable", reason + "; and no derivative is integrable, "
                                 "so there is no numerical route either")
        pieces = pieces.derivative()
    unevaluated = sp.FourierTransform(pieces.as_expr(), X, W / (2 * sp.pi)) / (sp.I * W) ** order
    steps = [Step(f"No closed form: {reason}. The transform is left unevaluated and computed by "
                  f"quadrature of sigma^({order}) when numbers are needed.",
                  sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), unevaluated))]
    asymptotes, singular, why, _ = _distributional_part(act, act.bound)
    return FourierResult(act, "numerical_only", reason, order=order, derivative=pieces.as_expr(),
                         derivative_transform=None, regular=None, singular=singular,
                         singular_reason=why, asymptotes=asymptotes, steps=steps, _pieces=pieces)
