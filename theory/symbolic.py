"""Small symbolic helpers shared by the derivation modules: short forms and cached limits."""

from __future__ import annotations

import functools
import math
from functools import lru_cache
from typing import Callable

import sympy as sp

from .asymptotics import limit_at_infinity
from .errors import TimeLimitExceeded, Unsupported, time_limits_hit
from .timeouts import time_limit

#: expressions with more operations than this skip sympy's (slow) general ``simplify``
SIMPLIFY_MAX_OPS = 40
#: expressions with more operations than this are left as they are
LARGE_OPS = 150


def _rate(arg: sp.Expr, var: sp.Symbol):
    arg = sp.expand(arg)
    if not arg.is_polynomial(var) or sp.degree(arg, var) != 1 or arg.coeff(var, 0) != 0:
        return None
    return arg.coeff(var, 1)


def _hyperbolic_polynomial(poly_expr: sp.Expr, u: sp.Symbol, rate: sp.Expr, var: sp.Symbol):
    """Write a polynomial in u = e^{rate var} as (cosh/sinh form) * u^shift; return (form, shift)."""
    _, factors = sp.sqf_list(poly_expr, u)
    # the content is recomputed: sympy's sqf_list flips its sign over Gaussian-integer
    # domains, e.g. sqf_list(w**2*(w + I), u) = (w**2*(-w - I), [])
    coeff = sp.cancel(poly_expr / sp.Mul(*[f**m for f, m in factors]))
    form, shift = coeff, sp.S.Zero
    for factor, mult in factors:
        p = sp.Poly(factor, u)
        low = min(m[0] for m in p.monoms())
        if low:
            shift += low * mult
            p = sp.Poly(sp.cancel(factor / u**low), u)
            factor = p.as_expr()
        n = p.degree()
        c = p.all_coeffs()[::-1]  # c[j] multiplies u^j
        symmetric = all(sp.simplify(c[j] - c[n - j]) == 0 for j in range(n + 1))
        antisymmetric = all(sp.simplify(c[j] + c[n - j]) == 0 for j in range(n + 1))
        if n == 0 or not (symmetric or antisymmetric):
            form *= factor**mult
            continue
        half = sp.Rational(n, 2)
        terms = sp.S.Zero
        for j in range(n + 1):
            k = half - j
            if k > 0:
                terms += c[j] * (2 * sp.cosh(k * rate * var) if symmetric else -2 * sp.sinh(k * rate * var))
            elif k == 0:
                terms += c[j]
        form *= terms**mult
        shift += half * mult
    return form, shift


def hyperbolic_form(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    r"""Fold exponentials :math:`e^{c\,\mathrm{var}}` into cosh/sinh where the polynomial in
    :math:`u = e^{a\,\mathrm{var}}` is (anti)palindromic, e.g.
    :math:`-2\pi^2 e^{\pi\omega}(e^{2\pi\omega}+1)/(e^{2\pi\omega}-1)^2 = -\pi^2\cosh(\pi\omega)/\sinh^2(\pi\omega)`.
    Returns ``expr`` unchanged when it is not rational in such exponentials.
    """
    exps = [e for e in expr.atoms(sp.exp) if e.has(var)]
    rates = [_rate(e.args[0], var) for e in exps]
    if not exps or any(r is None for r in rates):
        return expr
    ratios = [sp.nsimplify(r / rates[0]) for r in rates]
    if not all(q.is_Rational for q in ratios):
        return expr
    base = rates[0] * sp.Rational(math.gcd(*[int(abs(q.p)) for q in ratios]),
                                  math.lcm(*[int(q.q) for q in ratios]))
    u = sp.Dummy("u", positive=True)
    replaced = expr.xreplace({e: u ** (r / base) for e, r in zip(exps, rates)})
    num, den = sp.fraction(sp.cancel(sp.together(replaced)))
    if not (num.is_polynomial(u) and den.is_polynomial(u)):
        return expr
    top, s_top = _hyperbolic_polynomial(num, u, base, var)
    bottom, s_bottom = _hyperbolic_polynomial(den, u, base, var)
    result = top / bottom * sp.exp((s_top - s_bottom) * base * var)
    return result.xreplace({u: sp.exp(base * var)})


@lru_cache(maxsize=4096)
def cached_limit(expr: sp.Expr, var: sp.Symbol, point: sp.Expr, direction: str = "+",
                 seconds: float = 10.0) -> sp.Expr:
    r"""The limit of ``expr`` as ``var`` tends to ``point``, remembered (limits repeat across
    derivation steps).

    At :math:`\pm\infty` the leading terms of :func:`theory.asymptotics.limit_at_infinity`
    answer first (exact, and 10-100x faster than sympy on the shapes activations are made of);
    elsewhere, and where that route declines, ``sympy.limit`` under a time limit.
    sympy's own failures (recursion, unimplemented leading terms) become :class:`Unsupported`.
    At infinite points erf is rewritten for sympy by the exact identity erf(z) = 1 - erfc(z):
    sympy's gruntz expands erfc at infinity directly and is about 10x faster on sums such as
    erf(z) + 1 that cancel there.
    """
    leading = limit_at_infinity(expr, var, point)
    if leading is not None:
        return leading
    target = expr.rewrite(sp.erfc) if point.is_infinite and expr.has(sp.erf) else expr
    with time_limit(seconds, f"the limit of {expr} as {var} -> {point}"):
        try:
            return sp.limit(target, var, point, direction)
        except (RecursionError, NotImplementedError, ValueError, TypeError, AttributeError) as err:
            raise Unsupported(f"sympy could not compute the limit of {expr} as {var} -> {point} "
                              f"({type(err).__name__})") from None


def remember_unless_time_limited(mark: Callable | None = None):
    """Remember a function's results per argument for the life of the process, except those
    reached while a time limit expired somewhere inside (even a caught one: a simplification
    that gave up, a rule that was skipped): such a result depends on the machine's load, so the
    next call computes it again.  ``mark(result)`` is called on those results (to flag them)."""
    def decorate(func):
        remembered: dict = {}

        @functools.wraps(func)
        def wrapper(*args):
            if args in remembered:
                return remembered[args]
            expired = time_limits_hit()
            result = func(*args)
            if time_limits_hit() == expired:
                remembered[args] = result
            elif mark is not None:
                mark(result)
            return result
        wrapper.cache_clear = remembered.clear
        return wrapper
    return decorate


def tidy(expr: sp.Expr, var: sp.Symbol | None = None, seconds: float = 2.0,
         thorough: bool = False) -> sp.Expr:
    """A short equivalent form of ``expr``: the fewest operations among a few cheap rewrites.

    Candidates: the expression itself, ``factor``, ``cancel``, the cosh/sinh fold of
    :func:`hyperbolic_form` in ``var`` and, when ``thorough`` and the expression is small,
    sympy's (slow) ``simplify``.  Each runs under a time limit and is skipped if it fails.
    Remembered per argument for the life of the process (the same form is tidied by several
    sections, e.g. :math:`|\\hat\\sigma|^2` for W, the kernel and its fast numeric path), unless a
    time limit expired (:func:`remember_unless_time_limited`).
    """
    return _tidy(expr, var, seconds, thorough)


@remember_unless_time_limited()
def _tidy(expr: sp.Expr, var: sp.Symbol | None, seconds: float, thorough: bool) -> sp.Expr:
    candidates = [expr]
    if sp.count_ops(expr) > LARGE_OPS:  # factor/cancel on huge sums cost seconds and rarely help
        return expr
    rewrites = [sp.factor, sp.cancel]
    if var is not None and expr.has(sp.exp):
        rewrites.append(lambda e: sp.factor(hyperbolic_form(e, var)))
    if thorough and sp.count_ops(expr) <= SIMPLIFY_MAX_OPS:
        rewrites.append(sp.simplify)
    for rewrite in rewrites:
        try:
            with time_limit(seconds, "simplification"):
                candidates.append(rewrite(expr))
        except (TimeLimitExceeded, ValueError, TypeError, NotImplementedError, AttributeError,
                sp.PolynomialError):
            continue
    return min(candidates, key=lambda e: (sp.count_ops(e), len(str(e))))
