r"""Limits at :math:`\pm\infty` from leading terms, for the shapes activations are made of.

An expression built from powers of x, exponentials of polynomials of degree at most 2, the
hyperbolic functions, erf/erfc of linear arguments and logarithms has, as
:math:`t = \pm x \to +\infty`, a leading term

.. math:: c\, e^{Q t^2 + L t}\, t^K \qquad (c \ne 0),

and the *scales* :math:`(Q, L, K)` are ordered lexicographically: a larger scale dominates
(Hardy's orders of infinity restricted to these functions).  Sums keep the largest scale,
products add scales, :math:`\operatorname{erfc}(ct + b) \sim e^{-(ct+b)^2}/((ct + b)\sqrt\pi)`
for c > 0, :math:`\log(c\,e^{Qt^2+Lt}t^K)` leads with :math:`Qt^2`, then :math:`Lt`.  The limit
is then 0, :math:`\pm\infty` or c, read off the scale of numerator over denominator.

The route is exact where it answers and declines (None) wherever it would need more than the
leading term: leading terms of a sum that cancel, a coefficient or scale whose sign sympy cannot
decide, a finite limit that is not a rational number, Floats, any other function (sin:
oscillation; sympy answers with ``AccumBounds``).  :func:`theory.symbolic.cached_limit` asks it
first and falls back to ``sympy.limit``, whose answers it reproduces (tests compare the two on
every built-in and on generated formulas); it is some 10-100x faster than sympy's Gruntz
algorithm on these shapes (tanh': 2 ms vs 0.18 s).
"""

from __future__ import annotations

import sympy as sp

#: hyperbolic functions rewritten in exponentials before the leading terms are taken
_HYPERBOLIC = (sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch)
#: expressions with more operations than this are left to sympy (expansion could blow up)
MAX_OPS = 120

_T = sp.Dummy("t", positive=True)
_ZERO = (sp.S.Zero, sp.S.Zero, sp.S.Zero)


class _Declined(Exception):
    """The leading term needs more than this module knows (the caller falls back to sympy)."""


def limit_at_infinity(expr: sp.Expr, var: sp.Symbol, point: sp.Expr) -> sp.Expr | None:
    r""":math:`\lim_{var \to point} expr` for point = :math:`\pm\infty` from leading terms
    (module docstring): 0, ``oo``, ``-oo`` or a rational number, or None when the route declines."""
    if point not in (sp.oo, -sp.oo) or expr.has(sp.Float) or sp.count_ops(expr) > MAX_OPS:
        return None
    if not expr.has(var):
        return expr
    try:
        scale, coeff = _ratio(_rewritten(expr.xreplace({var: _T if point == sp.oo else -_T})))
    except _Declined:
        return None
    order = _order(scale)
    if order < 0:
        return sp.S.Zero
    if order == 0:
        return coeff if coeff.is_Rational else None
    if coeff.is_extended_real is not True:
        return None
    return sp.oo if _sign(coeff) > 0 else -sp.oo


def _sign(value: sp.Expr) -> int:
    """-1, 0 or 1; declines when sympy cannot decide."""
    if value.is_zero:
        return 0
    if value.is_extended_positive:
        return 1
    if value.is_extended_negative:
        return -1
    raise _Declined


def _linear(arg: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """(c, b) with arg = c t + b, c != 0; declines otherwise."""
    poly = _polynomial(arg)
    if poly is None or poly.degree() != 1:
        raise _Declined
    return poly.coeff_monomial(_T), poly.coeff_monomial(1)


def _polynomial(arg: sp.Expr) -> sp.Poly | None:
    """``arg`` as a polynomial in t with t-free coefficients, or None."""
    arg = sp.expand(arg)
    if not arg.is_polynomial(_T):
        return None
    return sp.Poly(arg, _T)


def _rewritten(expr: sp.Expr) -> sp.Expr:
    r"""Hyperbolic functions in exponentials, every erf/erfc as an erfc whose argument tends to
    :math:`+\infty` (:math:`\operatorname{erf}(a) = 1 - \operatorname{erfc}(a)
    = \operatorname{erfc}(-a) - 1`, :math:`\operatorname{erfc}(a) = 2 - \operatorname{erfc}(-a)`):
    exact identities, so that constants that cancel at infinity meet in one sum."""
    replacements = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _HYPERBOLIC):
            replacements[node] = node.rewrite(sp.exp)
        elif isinstance(node, (sp.erf, sp.erfc)):
            c, _ = _linear(node.args[0])
            rising = _sign(c) > 0
            if isinstance(node, sp.erf):
                replacements[node] = 1 - sp.erfc(node.args[0]) if rising else sp.erfc(-node.args[0]) - 1
            elif not rising:
                replacements[node] = 2 - sp.erfc(-node.args[0])
    return expr.xreplace(replacements) if replacements else expr


def _ratio(expr: sp.Expr) -> tuple[tuple, sp.Expr]:
    """Leading (scale, coefficient) of ``expr`` as one fraction: sums that cancel exactly meet
    in the expanded numerator (1 - tanh^2 = 4u/(1 + u)^2)."""
    numerator, denominator = sp.fraction(sp.together(expr))
    top, c_top = _leading(sp.expand(numerator))
    bottom, c_bottom = _leading(sp.expand(denominator))
    return tuple(a - b for a, b in zip(top, bottom)), c_top / c_bottom


def _leading(expr: sp.Expr) -> tuple[tuple, sp.Expr]:
    """(scale (Q, L, K), coefficient c != 0) of the leading term of ``expr`` as t -> +oo."""
    if not expr.has(_T):
        if expr.is_zero is not False:
            raise _Declined
        return _ZERO, expr
    if expr == _T:
        return (sp.S.Zero, sp.S.Zero, sp.S.One), sp.S.One
    if expr.is_Add:
        return _dominant([_leading(term) for term in expr.args])
    if expr.is_Mul:
        scale, coeff = _ZERO, sp.S.One
        for factor in expr.args:
            s, c = _leading(factor)
            scale, coeff = tuple(a + b for a, b in zip(scale, s)), coeff * c
        return scale, coeff
    if expr.is_Pow:
        base, exponent = expr.args
        if exponent.has(_T) or not exponent.is_Rational:
            raise _Declined
        scale, coeff = _leading(base)
        if not exponent.is_Integer and coeff.is_positive is not True:
            raise _Declined
        return tuple(s * exponent for s in scale), coeff**exponent
    if isinstance(expr, sp.exp):
        poly = _polynomial(expr.args[0])
        if poly is None or poly.degree() > 2:
            raise _Declined
        return (poly.coeff_monomial(_T**2), poly.coeff_monomial(_T), sp.S.Zero), sp.exp(poly.coeff_monomial(1))
    if isinstance(expr, sp.erfc):
        c, b = _linear(expr.args[0])
        if _sign(c) < 0:  # sympy may have turned erfc(c t + b) back into 2 - erfc(-c t - b)
            raise _Declined
        return (-c**2, -2 * b * c, -sp.S.One), sp.exp(-b**2) / (c * sp.sqrt(sp.pi))
    if isinstance(expr, sp.log):
        return _logarithm(expr.args[0])
    raise _Declined


def _logarithm(arg: sp.Expr) -> tuple[tuple, sp.Expr]:
    r"""Leading term of :math:`\log(\mathrm{arg})`, arg > 0: :math:`\log(c e^{Qt^2+Lt}t^K(1 + o(1)))
    = Qt^2 + Lt + K\log t + \log c + o(1)`; when arg tends to 1, :math:`\log(1 + w) \sim w`."""
    (q, l, k), c = _ratio(arg)
    if c.is_positive is not True:
        raise _Declined
    if _sign(q):
        return (sp.S.Zero, sp.S.Zero, sp.Integer(2)), q
    if _sign(l):
        return (sp.S.Zero, sp.S.Zero, sp.S.One), l
    if _sign(k):
        raise _Declined  # K log t: a scale this module does not have
    if _sign(c - 1):
        return _ZERO, sp.log(c)
    scale, coeff = _ratio(arg - 1)
    if _order(scale) >= 0:
        raise _Declined
    return scale, coeff


def _dominant(terms: list[tuple[tuple, sp.Expr]]) -> tuple[tuple, sp.Expr]:
    """The largest scale among ``terms`` and the sum of its coefficients (declines when that sum
    is 0 or undecided: the limit then depends on lower terms)."""
    best, coeff = terms[0]
    for scale, c in terms[1:]:
        order = _compare(scale, best)
        if order > 0:
            best, coeff = scale, c
        elif order == 0:
            coeff = coeff + c
    if coeff.is_zero is not False:
        raise _Declined
    return best, coeff


def _compare(a: tuple, b: tuple) -> int:
    """Lexicographic order of two scales (declines when a sign is undecided)."""
    return _order(tuple(x - y for x, y in zip(a, b)))


def _order(scale: tuple) -> int:
    """1 when the scale grows, -1 when it decays, 0 for a constant: the sign of its first
    nonzero entry."""
    for entry in scale:
        order = _sign(entry)
        if order:
            return order
    return 0
