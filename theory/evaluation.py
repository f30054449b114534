r"""Compile a sympy expression in ``x`` into a numeric function, without ``eval``.

One compiler, several backends: ``mpmath`` (scalars, arbitrary precision, used by the
verification of closed forms), ``numpy`` (arrays, float64) and, registered by
``numerics``, ``torch`` (tensors with autograd).  The compiler walks the expression tree once
and builds nested closures; where a formula as written loses every digit in float64 (or in
mpmath's working precision) it evaluates an equal one that does not, recognised in the sympy
tree of any formula, not by name (:func:`_stable_form`):

* :math:`\log(1 + e^{u})` is evaluated as ``softplus(u)`` (no overflow for large ``u``);
* :math:`1/(1 + e^{-u})` is evaluated as ``sigmoid(u)``, written :math:`S(u)`;
* a rational function of :math:`t = e^u` over :math:`t^m (1 + t^d)^n` (the derivatives of
  softplus, sigmoid and SiLU as sympy writes them; tanh written with exponentials) is evaluated
  through :math:`t^k/(1+t)^n = S(u)^k S(-u)^{n-k}` (:func:`_sigmoid_form`): no inf/inf or
  inf * 0 for large :math:`|u|`, and no cancellation in :math:`1 - S(u)`;
* :math:`a + a\,\mathrm{erf}(v)`, :math:`a - a\,\mathrm{erf}(v)`, :math:`a - a\tanh^2 v` are
  evaluated as :math:`a\,\mathrm{erfc}(-v)`, :math:`a\,\mathrm{erfc}(v)`, :math:`a\,\mathrm{sech}^2 v`
  (:func:`_complement_form`).

At :math:`\pm\infty` and NaN a program gives the formula's limit and NaN (:class:`_Program`).
A distribution (``DiracDelta``) cannot be evaluated pointwise and raises
:class:`~theory.errors.IbcheckError`.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import mpmath
import numpy as np
import sympy as sp

from .asymptotics import limit_at_infinity
from .errors import IbcheckError
from .symbols import x as X


@dataclass(frozen=True)
class Backend:
    """The primitives one numeric library offers to the compiler."""

    name: str
    constant: Callable[[sp.Expr], Any]
    functions: dict[type, Callable]
    power: Callable[[Any, Any], Any]
    where: Callable[[Any, Any, Any], Any]
    softplus: Callable[[Any], Any]
    sigmoid: Callable[[Any], Any]
    comparisons: dict[type, Callable] = field(default_factory=dict)
    logical: dict[type, Callable] = field(default_factory=dict)
    maximum: Callable[[Any, Any], Any] = max
    minimum: Callable[[Any, Any], Any] = min
    heaviside: Callable[[Any, float], Any] = None  # type: ignore[assignment]
    #: False if some entry of the argument is infinite or NaN (True may never be answered wrongly;
    #: a False for finite entries only costs the slow path of :class:`_Program`)
    all_finite: Callable[[Any], bool] = None  # type: ignore[assignment]
    #: the three points -inf, +inf, NaN as one argument (None: the backend takes scalars only)
    edges: Callable[[], Any] | None = None
    #: a context in which overflow and invalid operations are silent
    quiet: Callable[[], ContextManager] = contextlib.nullcontext


_COMPARISONS_PY = {
    sp.StrictLessThan: lambda a, b: a < b,
    sp.LessThan: lambda a, b: a <= b,
    sp.StrictGreaterThan: lambda a, b: a > b,
    sp.GreaterThan: lambda a, b: a >= b,
    sp.Equality: lambda a, b: a == b,
    sp.Unequality: lambda a, b: a != b,
}


def _mp_where(cond, a, b):
    return a if cond else b


def _mp_softplus(u):
    return u + mpmath.log1p(mpmath.exp(-u)) if u > 0 else mpmath.log1p(mpmath.exp(u))


def _mp_sigmoid(u):
    return 1 / (1 + mpmath.exp(-u))


def _mp_all_finite(u) -> bool:
    return bool(mpmath.isfinite(u))


def _mp_constant(c: sp.Expr):
    if c.is_Rational:
        return mpmath.mpf(c.p) / c.q
    if not c.is_finite:                          # oo, -oo, nan
        return mpmath.mpf(float(c))
    return mpmath.mpmathify(sp.N(c, mpmath.mp.dps + 5))


MPMATH = Backend(
    name="mpmath",
    constant=_mp_constant,
    functions={
        sp.exp: mpmath.exp, sp.log: mpmath.log, sp.sin: mpmath.sin, sp.cos: mpmath.cos,
        sp.tan: mpmath.tan, sp.sinh: mpmath.sinh, sp.cosh: mpmath.cosh, sp.tanh: mpmath.tanh,
        sp.sech: mpmath.sech, sp.coth: mpmath.coth, sp.csch: mpmath.csch, sp.erf: mpmath.erf, sp.erfc: mpmath.erfc, sp.atan: mpmath.atan,
        sp.asinh: mpmath.asinh, sp.Abs: abs, sp.sign: mpmath.sign,
    },
    power=lambda a, b: a**b,
    where=_mp_where,
    softplus=_mp_softplus,
    sigmoid=_mp_sigmoid,
    comparisons=_COMPARISONS_PY,
    logical={sp.And: lambda *a: all(a), sp.Or: lambda *a: any(a), sp.Not: lambda a: not a},
    maximum=max,
    minimum=min,
    heaviside=lambda u, h0: mpmath.mpf(1) if u > 0 else (mpmath.mpf(0) if u < 0 else mpmath.mpf(h0)),
    all_finite=_mp_all_finite,
)


def _np_power(a, b):
    """``a**b``; a negative integer power as ``(1/a)**|b|``: numpy's pow is ~30x slower for it
    (3 ms vs 0.1 ms on 5e4 numbers), the two differ by rounding, and 1/a first keeps a**-2 from
    underflowing through an overflowing a**2.  Exponents -1 and +-2 skip np.power's call (the same bits:
    ``u**1`` is u, and numpy computes ``u**2`` as ``square(u)``): 1/a is returned as it is (np.power
    copied it, one more pass over the array), a square is one multiply pass (np.power: ~2x the time
    on 5e4 numbers).  Sigmoid-like derivatives (``(1 + e^{-u})^{-1}``, ``^{-2}``) and the Gaussian's
    ``u**2`` evaluate them at every training step."""
    if isinstance(b, (int, np.integer)) or (isinstance(b, float) and b.is_integer()):
        k = int(b)
        base = a if k >= 0 else 1.0 / np.asarray(a, dtype=float)
        if k == -1:
            return base
        return np.square(base) if abs(k) == 2 else np.power(base, abs(k))
    return np.power(a, b)


def _np_softplus(u):
    r""":math:`\log(1 + e^u) = \max(u, 0) + \log(1 + e^{-|u|})`: numpy's own formula for
    ``logaddexp(0, u)``, written with the vectorized exp and log1p (~5x faster than logaddexp)."""
    return np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u)))


def _np_sigmoid(u):
    r""":math:`1/(1 + e^{-u})` for u >= 0 and :math:`e^{u}/(1 + e^{u})` below, from one
    :math:`e^{-|u|} \le 1` (never overflows; the numerator is max(e^{-|u|}, [u >= 0]))."""
    small = np.exp(-np.abs(u))
    return np.maximum(small, np.greater_equal(u, 0)) / (1.0 + small)


#: below this many entries :func:`_np_where` is numpy's own: the select's extra calls cost ~3 us, as
#: much as np.where's mispredicted branches on ~1000 entries (measured with a fresh condition per call)
SELECT_MIN_SIZE = 2048


def _np_where(cond, a, b):
    r"""``np.where(cond, a, b)``, bit for bit, without branching when it is an elementwise choice
    between float64 values (a Piecewise activation on a batch of pre-activations).

    numpy's where branches per element, and on pre-activations of either sign the branch is a
    coin flip: 3.7 ns per element (a fresh condition per call, 4e3-4e6 entries) where a sorted
    condition takes 0.5.  On the 64-bit patterns :math:`b \oplus ((a \oplus b)\cdot[\mathrm{cond}])`
    copies the same bits (NaN, infinities and signed zeros included) in three passes that never
    branch, into the one array it allocates (a second temporary costs more than the branches where
    fresh pages fault in): 1.2-1.7 ns per element, 0.5 between two constants.  Anything but a boolean array of at least :data:`SELECT_MIN_SIZE`
    entries and float64 branches goes to np.where."""
    if not (isinstance(cond, np.ndarray) and cond.dtype == np.bool_ and cond.size >= SELECT_MIN_SIZE):
        return np.where(cond, a, b)
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.float64 or b.dtype != np.float64:
        return np.where(cond, a, b)
    bits_b = b.view(np.int64)
    bits = np.bitwise_xor(a.view(np.int64), bits_b)
    shape = np.broadcast_shapes(np.shape(bits), cond.shape)
    bits = np.multiply(bits, cond, out=bits if np.shape(bits) == shape else None)  # x * 1 = x, x * 0 = 0
    bits ^= bits_b
    return bits.view(np.float64)


#: numpy's vectorized float64 exp takes a slow path for arguments below about -708 (where the result
#: is no longer a normal float64); below this bound :func:`_np_exp` handles the arguments apart
EXP_FAST_ABOVE = -700.0
#: e^u < 2^-1075 (half the smallest subnormal) below this: np.exp rounds it to 0
EXP_ZERO_BELOW = -746.0


def _np_exp(u, out=None):
    r"""``np.exp(u)``, bit for bit, without numpy's slow path where the result underflows.

    numpy's vectorized float64 exp takes 0.5 ns per element, but 5-7 where the arguments go below
    about -708 (measured on the 2-core EPYC of issue 18, 1.9e5 entries): the Gaussian activation
    :math:`e^{-u^2/2}` does so for :math:`|u| > 37.6`, half of a random-feature block with offsets up
    to 80.  On a float64 array of at least :data:`SELECT_MIN_SIZE` entries with such arguments, exp runs
    on the arguments clipped at :data:`EXP_FAST_ABOVE`, the entries below it are multiplied by 0 (what
    np.exp gives below :data:`EXP_ZERO_BELOW`), and only those in between go through np.exp
    itself.  ``out`` may be ``u``."""
    if not (isinstance(u, np.ndarray) and u.dtype == np.float64 and u.size >= SELECT_MIN_SIZE) \
            or not u.min() < EXP_FAST_ABOVE:  # NaN compares false: np.exp keeps it
        return np.exp(u, out=out)
    fast = u >= EXP_FAST_ABOVE
    between = ~fast & (u >= EXP_ZERO_BELOW)
    apart = u[between]  # a copy, before ``out`` (perhaps ``u``) is written
    result = np.maximum(u, EXP_FAST_ABOVE, out=out)
    np.exp(result, out=result)
    result *= fast  # a positive float times 1 or 0: a mask without branches (np.copyto's where branches)
    result[between] = np.exp(apart)
    return result


def _np_heaviside(u, h0):
    """H(u) with H(0) = h0; for h0 = 1/2 as (1 + sign u)/2 (the same numbers, NaN included, ~5x faster
    than np.heaviside: the slope of every ReLU-like network), in place on the one array sign allocates."""
    if h0 == 0.5:
        step = np.sign(np.asarray(u, dtype=float))
        step += 1.0
        step *= 0.5
        return step
    return np.heaviside(u, h0)


def _np_sech(u):
    """1/cosh(u) in the one array cosh allocates (1.1 CPU-ms for 1e6 entries, a third of
    ``1 / np.cosh(u)``); cosh's overflow above |u| = 710 is silent and gives 1/inf = 0, the value
    (< 1e-308) rounded to zero."""
    with np.errstate(over="ignore"):
        out = np.cosh(u)
    return np.reciprocal(out, out=out) if isinstance(out, np.ndarray) else 1.0 / out


def _np_all_finite(u) -> bool:
    """Whether every entry of ``u`` is finite, from its sum (inf and NaN propagate into it: 0.2-0.35 CPU-ms
    for 1e6 entries, a third of one exp over them; a BLAS dot product takes 2.5 CPU-ms in its threads);
    a sum that overflows answers False, which only sends the call to the slow path."""
    if isinstance(u, float):
        return math.isfinite(u)
    return bool(np.isfinite(np.sum(u)))


def _np_quiet() -> ContextManager:
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _scipy_special(name: str) -> Callable:
    """``scipy.special.<name>``, imported at the first call: importing scipy.special costs more than
    the rest of ``import theory`` together, and most commands (``ibcheck list``) never call it."""
    def call(*args):
        import scipy.special

        return getattr(scipy.special, name)(*args)
    return call


NUMPY = Backend(
    name="numpy",
    constant=lambda c: float(c),
    functions={
        sp.exp: _np_exp, sp.log: np.log, sp.sin: np.sin, sp.cos: np.cos, sp.tan: np.tan,
        sp.sinh: np.sinh, sp.cosh: np.cosh, sp.tanh: np.tanh, sp.sech: _np_sech,
        sp.coth: lambda u: 1 / np.tanh(u), sp.csch: lambda u: 1 / np.sinh(u),
        sp.erf: _scipy_special("erf"), sp.erfc: _scipy_special("erfc"), sp.atan: np.arctan, sp.asinh: np.arcsinh,
        sp.Abs: np.abs, sp.sign: np.sign,
    },
    power=_np_power,
    where=_np_where,
    softplus=_np_softplus,
    sigmoid=_np_sigmoid,
    comparisons=_COMPARISONS_PY,
    logical={sp.And: lambda *a: np.logical_and.reduce(a), sp.Or: lambda *a: np.logical_or.reduce(a),
             sp.Not: np.logical_not},
    maximum=np.maximum,
    minimum=np.minimum,
    heaviside=_np_heaviside,
    all_finite=_np_all_finite,
    edges=lambda: np.array([-np.inf, np.inf, np.nan]),
    quiet=_np_quiet,
)

_BACKENDS: dict[str, Backend] = {"mpmath": MPMATH, "numpy": NUMPY}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` available to :func:`compile_expression` by its name (returned, for chaining)."""
    _BACKENDS[backend.name] = backend
    return backend


def _softplus_argument(expr: sp.Expr):
    """``u`` if ``expr`` is log(1 + exp(u)), else None."""
    if isinstance(expr, sp.log):
        inner = expr.args[0]
        if isinstance(inner, sp.Add) and len(inner.args) == 2 and sp.S.One in inner.args:
            other = inner.args[0] if inner.args[1] == 1 else inner.args[1]
            if isinstance(other, sp.exp):
                return other.args[0]
    return None


def _sigmoid_argument(expr: sp.Expr):
    """``u`` if ``expr`` is (1 + exp(-u))**(-1), else None."""
    if isinstance(expr, sp.Pow) and expr.exp == -1:
        base = expr.base
        if isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
            other = base.args[0] if base.args[1] == 1 else base.args[1]
            if isinstance(other, sp.exp):
                return -other.args[0]
    return None


class _Sigmoid(sp.Function):
    r"""The logistic function :math:`S(u) = 1/(1 + e^{-u})` as one sympy node, so that the
    rewritten expressions of :func:`_sigmoid_form` keep it whole (``(1 + e^{-u})^{-k}`` would merge
    its powers); lowered to the backend's ``sigmoid``."""

    nargs = 1


def _exponential_unit(expr: sp.Expr):
    """``u`` with every exponential in ``expr`` an integer power of :math:`e^u` (the arguments'
    rational greatest common divisor: ``x`` for :math:`e^{x}, e^{-x}, e^{2x}`), or None where two
    arguments have an irrational ratio or there is none."""
    arguments = list(dict.fromkeys(node.args[0] for node in sp.preorder_traversal(expr) if isinstance(node, sp.exp)))
    if not arguments:
        return None
    ratios = [sp.cancel(argument / arguments[0]) for argument in arguments]
    if not all(ratio.is_Rational for ratio in ratios):
        return None
    return functools.reduce(sp.gcd, ratios) * arguments[0]


def _sigmoid_form(expr: sp.Expr):
    r"""``expr`` as :math:`\sum_k \frac{c_k(x)}{c(x)}\, S(du)^{q_k/d} S(-du)^{n-q_k/d}` when, with
    :math:`t = e^u` and every exponential in ``expr`` an integer power of ``t``
    (:func:`_exponential_unit`), ``expr`` is the rational function
    :math:`\sum_k c_k(x)\, t^{m + q_k} / (c(x)\, t^m (1 + t^d)^n)` of ``t`` (``c_k`` and ``c`` free
    of ``t``): sympy's derivatives of softplus, sigmoid and SiLU (d = 1), tanh written with
    exponentials :math:`(e^x - e^{-x})/(e^x + e^{-x})` (d = 2).  In a sum or product with other
    terms or factors (:math:`x \tanh(\log(1+e^x))`'s derivative
    :math:`x\,(1 - \tanh^2(\ldots))\, e^x/(1 + e^x) + \ldots`) the terms or factors that are
    rational functions of ``t`` are rewritten together and the others kept.  None where nothing
    is rewritten.

    With :math:`s = t^d`, :math:`t^q/(1+s)^n = (s/(1+s))^{q/d} (1/(1+s))^{n-q/d} = S(du)^{q/d}
    S(-du)^{n-q/d}`; for :math:`0 \le q \le dn` every factor lies in [0, 1], so each term is
    finite and accurate to a few ulps where :math:`e^u` overflows and where a difference of the
    original form cancels: softplus' :math:`e^u/(1 + e^u)` is inf/inf = NaN above u = 709.78;
    sympy's softplus'' :math:`(1 - e^u/(1+e^u))\, e^u/(1+e^u)` is :math:`S(u) S(-u)` but loses
    every digit above u = 37; SiLU' :math:`x e^{-x}/(1 + e^{-x})^2 + S(x)` is 0 above x = 356
    (:math:`(1 + e^{-x})^2` underflows in the reciprocal of its overflowing inverse) and NaN
    below x = -709.  A term's own rounding is unchanged, so a sum of terms of opposite signs
    cancels near a zero of ``expr`` exactly as the original sum did (absolute error a few ulps of
    its largest term)."""
    if not any(isinstance(node, sp.Pow) and node.exp.is_negative and node.base.has(sp.exp)
               for node in sp.preorder_traversal(expr)):
        return None
    u = _exponential_unit(expr)
    if u is None:
        return None
    t = sp.Dummy("t")
    in_t = expr.subs(sp.exp(u), t)
    if isinstance(expr, (sp.Add, sp.Mul)) and not in_t.is_rational_function(t):
        parts = [(part, part.subs(sp.exp(u), t)) for part in expr.args]
        rational = [part for part, part_t in parts if part_t.is_rational_function(t)]
        core = _sigmoid_form(expr.func(*rational)) if 0 < len(rational) < len(parts) else None
        kept = [part for part in expr.args if part not in rational]
        return None if core is None else expr.func(core, *kept)
    try:
        numerator, denominator = sp.fraction(sp.cancel(sp.together(in_t)))
        top, bottom = sp.Poly(numerator, t), sp.Poly(denominator, t)
    except sp.PolynomialError:
        return None
    if any(c.has(t) for c in top.coeffs() + bottom.coeffs()):
        return None
    m = min(monomial[0] for monomial in bottom.monoms())
    degree = bottom.degree() - m
    scale = bottom.LC()
    shapes = [(d, degree // d) for d in range(1, degree + 1) if degree % d == 0]
    shape = next(((d, n) for d, n in shapes if bottom == sp.Poly(scale * t**m * (1 + t**d) ** n, t)), None)
    if shape is None:
        return None
    d, n = shape
    return sp.Add(*(coefficient / scale * _Sigmoid(d * u) ** sp.Rational(k - m, d) * _Sigmoid(-d * u) ** (n - sp.Rational(k - m, d))
                    for (k,), coefficient in top.terms()))


#: the complement pairs :func:`_complement_form` writes as one function: ``(f, g, s, p, h)`` says
#: :math:`a + s\,a\, f(v)^p = a\, h(g(v))`
_COMPLEMENTS = (
    (sp.erf, lambda v: -v, 1, 1, lambda w: sp.erfc(w, evaluate=False)),    # 1 + erf(v) = erfc(-v)
    (sp.erf, lambda v: v, -1, 1, lambda w: sp.erfc(w, evaluate=False)),    # 1 - erf(v) = erfc(v)
    (sp.tanh, lambda v: v, -1, 2, lambda w: sp.sech(w, evaluate=False) ** 2),  # 1 - tanh(v)^2 = sech(v)^2
)


def _complement_form(expr: sp.Add):
    r"""``expr`` with a pair of its terms :math:`a + a\,\mathrm{erf}(v)`, :math:`a - a\,\mathrm{erf}(v)`
    or :math:`a - a \tanh(v)^2` written :math:`a\,\mathrm{erfc}(-v)`, :math:`a\,\mathrm{erfc}(v)`,
    :math:`a\,\mathrm{sech}(v)^2` (the same values); None if it has no such pair.

    The left sides cancel in float64 where the function is near :math:`\mp 1`: 1 + erf(v) is 0
    below v = -5.9 (GELU :math:`x(1 + \mathrm{erf}(x/\sqrt 2))/2` is 0 at x = -30, where it is
    :math:`-1.47\cdot 10^{-196}`) and :math:`1 - \tanh^2` is 0 above |v| = 19.1 (tanh', where it is
    :math:`4 e^{-2|v|}`); erfc and sech keep every digit down to the underflow."""
    constant, _ = expr.as_coeff_Add()
    if constant == 0:
        return None
    for term in expr.args:
        coefficient, factor = term.as_coeff_Mul()
        for function, argument, sign, power, complement in _COMPLEMENTS:
            base, exponent = factor.as_base_exp()
            if isinstance(base, function) and exponent == power and coefficient == sign * constant:
                return expr - constant - term + constant * complement(argument(base.args[0]))
    return None


@functools.lru_cache(maxsize=4096)
def _stable_form(expr: sp.Expr, var: sp.Symbol):
    """``expr`` rewritten by :func:`_sigmoid_form` or :func:`_complement_form` (the same function,
    evaluated without overflow or cancellation), or None where neither applies or a primitive of the
    backend already evaluates it stably (softplus, sigmoid).  Cached: one formula is compiled for
    several backends, and sympy's cancel costs milliseconds."""
    if not isinstance(expr, (sp.Add, sp.Mul, sp.Pow)) or not expr.has(var) \
            or _softplus_argument(expr) is not None or _sigmoid_argument(expr) is not None:
        return None
    rewritten = _sigmoid_form(expr)
    if rewritten is None and isinstance(expr, sp.Add):
        rewritten = _complement_form(expr)
    return rewritten


def _sum(*values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def _product(*values):
    total = values[0]
    for v in values[1:]:
        total = total * v
    return total


def _lower(expr, be: Backend, var: sp.Symbol) -> tuple[Callable, tuple]:
    """One node of the expression tree as ``(operation, children)``: the backend operation applied to
    the values of the child expressions (a constant is an operation without children)."""
    if not expr.has(var):
        if expr.is_real is False or (expr.is_number and expr.as_real_imag()[1] != 0):
            raise IbcheckError(f"the expression contains the complex constant {expr}; "
                               "only real-valued activations can be evaluated")
        value = be.constant(expr)
        return (lambda: value), ()
    arg = _softplus_argument(expr)
    if arg is not None:
        return be.softplus, (arg,)
    arg = _sigmoid_argument(expr)
    if arg is not None:
        return be.sigmoid, (arg,)
    if isinstance(expr, _Sigmoid):
        return be.sigmoid, expr.args
    if isinstance(expr, sp.Pow) and isinstance(expr.base, _Sigmoid) and not expr.exp.is_Integer:
        # S(v)^r = exp(-r softplus(-v)): S(v) would underflow first (sech = 2 S(2x)^(1/2) S(-2x)^(1/2) at |x| > 372)
        rate, exp = be.constant(-expr.exp), be.functions[sp.exp]
        return (lambda softplus: exp(rate * softplus)), (sp.log(1 + sp.exp(-expr.base.args[0])),)
    if isinstance(expr, sp.Add):
        return _sum, expr.args
    if isinstance(expr, sp.Mul):
        return _product, expr.args
    if isinstance(expr, sp.Pow):
        if expr.exp.has(var):
            return be.power, (expr.base, expr.exp)
        e = expr.exp
        e_value = int(e) if e.is_Integer else be.constant(e)
        return (lambda b: be.power(b, e_value)), (expr.base,)
    if isinstance(expr, sp.Heaviside):
        h0 = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        return (lambda u: be.heaviside(u, h0)), (expr.args[0],)
    if isinstance(expr, (sp.Max, sp.Min)):
        op = be.maximum if isinstance(expr, sp.Max) else be.minimum

        def _extremum(*values):
            total = values[0]
            for v in values[1:]:
                total = op(total, v)
            return total
        return _extremum, expr.args
    if isinstance(expr, sp.Piecewise):
        def _piecewise(*pairs):  # value_1, condition_1, ..., value_k, condition_k
            value, cond = pairs[-2], pairs[-1]
            result = value if cond is True else be.where(cond, value, float("nan"))
            for k in range(len(pairs) - 4, -1, -2):
                result = be.where(pairs[k + 1], pairs[k], result)
            return result
        return _piecewise, tuple(part for pair in expr.args for part in pair)
    if isinstance(expr, sp.DiracDelta):
        raise IbcheckError(f"{expr} is a distribution (a point mass), not a function: it has no pointwise values")
    func = be.functions.get(type(expr)) or be.functions.get(expr.func)
    if func is not None and len(expr.args) == 1:
        return func, expr.args
    raise IbcheckError(f"cannot evaluate {expr.func.__name__} numerically with the {be.name} backend")


def _lower_condition(cond, be: Backend) -> tuple[Callable, tuple]:
    """A Piecewise condition as ``(operation, children)``, like :func:`_lower`."""
    if cond is sp.true or cond is True:
        return (lambda: True), ()
    if cond is sp.false or cond is False:
        return (lambda: False), ()
    if type(cond) in be.comparisons:
        return be.comparisons[type(cond)], (cond.lhs, cond.rhs)
    if type(cond) in be.logical:
        return be.logical[type(cond)], cond.args
    raise IbcheckError(f"cannot evaluate the condition {cond} numerically")


def _reader(op: Callable, args: tuple[int, ...]) -> Callable:
    """``op`` applied to the values at ``args`` of a program's value list (arity-specialized: the
    program runs once per training step, and on scalars inside quadratures)."""
    if len(args) == 1:
        (i,) = args
        return lambda values: op(values[i])
    if len(args) == 2:
        i, j = args
        return lambda values: op(values[i], values[j])
    return lambda values: op(*[values[k] for k in args])


@functools.lru_cache(maxsize=256)
def _limit_at(expr: sp.Expr, var: sp.Symbol, end: sp.Expr) -> sp.Expr:
    """The limit of ``expr`` as ``var`` tends to ``end`` (+-oo), from leading terms
    (:func:`theory.asymptotics.limit_at_infinity`) or else sympy's; NaN where it finds no real
    number or infinity (sin: AccumBounds) or no limit at all.  Cached: sympy takes 0.03-1.5 s
    for one."""
    limit = limit_at_infinity(expr, var, end)
    if limit is not None:
        return limit if limit.is_extended_real else sp.nan
    try:
        limit = sp.limit(expr, var, end)
    except (ArithmeticError, NotImplementedError, TypeError, ValueError, sp.PoleError):
        return sp.nan
    return limit if limit.is_extended_real else sp.nan


class _Program:
    """Expressions as a list of backend operations, one per *distinct* subexpression: a subexpression
    shared by several of the expressions (``erf(x/sqrt 2)`` in GELU and its derivative) or repeated in
    one is evaluated once per call (common-subexpression elimination on sympy's structural equality).
    Constants are evaluated once, when the program is built.

    Infinite and NaN arguments: the operations give the right value at :math:`\\pm\\infty` for most
    expressions (softplus: inf, its slope S(inf) = 1), but a product whose factors tend to 0 and
    :math:`\\infty` gives NaN there (SiLU :math:`x\\,S(x)` at :math:`-\\infty`, GELU's slope
    :math:`x\\,\\varphi(x)`), and a Piecewise whose last condition is ``True`` gives its last piece
    at NaN (ELU' is 1 there).  When the program is built it is run once at :math:`-\\infty`,
    :math:`+\\infty`, NaN; an expression that gives NaN at an infinity or a number at NaN is
    *guarded*: a call whose argument has a non-finite entry (:attr:`Backend.all_finite`, one
    reduction per call, only for programs with a guarded expression) takes the slow path, which
    puts the limit :math:`\\lim_{x\\to\\pm\\infty}` (sympy's, computed at the first such call; NaN
    where it is not a number or infinity, e.g. sin) at the infinities and NaN at NaN."""

    def __init__(self, exprs: list, be: Backend, var: sp.Symbol):
        self.be, self.var, self.exprs = be, var, exprs
        self.slots: dict = {var: 0}         # expression -> index of its value (0: the variable)
        self.initial: list = [None]          # the values before a call: the constants in place
        self.steps: list[tuple[int, Callable]] = []
        self.outputs = tuple(self._slot(e) for e in exprs)
        self.first = self.outputs[0]
        self.guarded = self._misbehaving_at_edges()
        self._limits: dict[tuple, Any] = {}

    def _slot(self, expr) -> int:
        if expr in self.slots:
            return self.slots[expr]
        is_condition = isinstance(expr, (sp.logic.boolalg.Boolean, bool)) and not isinstance(expr, sp.Expr)
        rewritten = None if is_condition else _stable_form(expr, self.var)
        if rewritten is not None:               # the same value: shares its slot with the rewritten form
            self.slots[expr] = self._slot(rewritten)
            return self.slots[expr]
        op, children = _lower_condition(expr, self.be) if is_condition else _lower(expr, self.be, self.var)
        args = tuple(self._slot(c) for c in children)
        slot = self.slots[expr] = len(self.initial)
        self.initial.append(op() if not args else None)
        if args:
            self.steps.append((slot, _reader(op, args)))
        return slot

    def _run(self, u) -> list:
        values = self.initial.copy()
        values[0] = u
        for slot, step in self.steps:
            values[slot] = step(values)
        return values

    def _at_edges(self) -> list[list[float]]:
        """Each expression's values at -inf, +inf, NaN as floats (NaN where an operation raised)."""
        edges = self.be.edges
        points = [edges()] if edges is not None else [self.be.constant(sp.S(v)) for v in (-sp.oo, sp.oo, sp.nan)]
        rows = []
        for point in points:
            try:
                with self.be.quiet():
                    values = self._run(point)
                rows.append([np.broadcast_to(np.asarray(values[i], dtype=float), np.shape(point) or (1,))
                             for i in self.outputs])
            except (ArithmeticError, ValueError, TypeError):
                rows.append([np.full(np.shape(point) or (1,), np.nan) for _ in self.outputs])
        return [np.concatenate([row[k] for row in rows]).tolist() for k in range(len(self.outputs))]

    def _misbehaving_at_edges(self) -> dict[int, tuple[bool, bool, bool]]:
        """For each expression that gives NaN at an infinity or a number at NaN: which of -inf, +inf,
        NaN it gets wrong."""
        wrong = {}
        for k, (low, high, nan) in enumerate(self._at_edges()):
            if math.isnan(low) or math.isnan(high) or not math.isnan(nan):
                wrong[k] = (math.isnan(low), math.isnan(high), not math.isnan(nan))
        return wrong

    def _limit(self, k: int, end: sp.Expr):
        """Expression ``k``'s limit at ``end`` (+-oo) as a backend constant (:func:`_limit_at`)."""
        if (k, end) not in self._limits:
            self._limits[k, end] = self.be.constant(_limit_at(self.exprs[k], self.var, end))
        return self._limits[k, end]

    def _outputs(self, u) -> tuple:
        """The expressions' values at ``u``; the guarded ones fixed at non-finite entries (class docstring)."""
        if not self.guarded or self.be.all_finite(u):
            values = self._run(u)
            return tuple(values[i] for i in self.outputs)
        nan = self.be.constant(sp.nan)
        try:
            with self.be.quiet():
                values = self._run(u)
            outputs = [values[i] for i in self.outputs]
        except (ArithmeticError, ValueError):  # mpmath at an infinity (1/0): every expression is guarded
            outputs = [nan] * len(self.outputs)
        where = self.be.where
        for k, (low, high, at_nan) in self.guarded.items():
            out = outputs[k]
            if low:
                out = where(u == -math.inf, self._limit(k, -sp.oo), out)
            if high:
                out = where(u == math.inf, self._limit(k, sp.oo), out)
            outputs[k] = where(u != u, nan, out) if at_nan else out
        return tuple(outputs)

    def __call__(self, u) -> tuple:
        return self._outputs(u)

    def value(self, u):
        """The first expression's value alone."""
        if not self.guarded:
            return self._run(u)[self.first]
        return self._outputs(u)[0]


def _backend(name: str) -> Backend:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise IbcheckError(f"unknown numeric backend {name!r}; known: {', '.join(sorted(_BACKENDS))}") from None


def compile_expressions(exprs, backend: str = "numpy", var: sp.Symbol = X) -> Callable:
    """Return ``f(u)`` giving the tuple of ``exprs`` at ``var = u`` on the named backend, every
    subexpression they share evaluated once (the activation and its derivative in one pass).

    Raises :class:`IbcheckError` for free symbols other than ``var`` (unbound parameters),
    distributions, and functions the backend does not provide.
    """
    be = _backend(backend)
    exprs = [sp.sympify(e) for e in exprs]
    free = set().union(*(e.free_symbols for e in exprs)) - {var}
    if free:
        names = ", ".join(sorted(str(s) for s in free))
        shown = exprs[0] if len(exprs) == 1 else exprs
        raise IbcheckError(f"cannot evaluate {shown}: the parameter(s) {names} have no value")
    return _Program(exprs, be, var)


def compile_expression(expr: sp.Expr, backend: str = "numpy", var: sp.Symbol = X) -> Callable:
    """Return ``f(u)`` evaluating ``expr`` with ``var`` set to ``u`` on the named backend
    (:func:`compile_expressions` with one expression)."""
    return compile_expressions([expr], backend, var).value
