"""Compile a sympy expression in ``x`` into a numeric function, without ``eval``.

One compiler, several backends: ``mpmath`` (scalars, arbitrary precision, used by the
verification of closed forms), ``numpy`` (arrays, float64) and, registered by
``numerics``, ``torch`` (tensors with autograd).  The compiler walks the expression tree once
and builds nested closures; it recognises two numerically delicate patterns and uses the
backend's stable primitive for them:

* :math:`\\log(1 + e^{u})` is evaluated as ``softplus(u)`` (no overflow for large ``u``);
* :math:`1/(1 + e^{-u})` is evaluated as ``sigmoid(u)``.

A distribution (``DiracDelta``) cannot be evaluated pointwise and raises
:class:`~theory.errors.IbcheckError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import mpmath
import numpy as np
import sympy as sp

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


MPMATH = Backend(
    name="mpmath",
    constant=lambda c: mpmath.mpmathify(sp.N(c, mpmath.mp.dps + 5)) if not c.is_Rational else mpmath.mpf(c.p) / c.q,
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
)


def _np_power(a, b):
    if isinstance(b, (int, np.integer)) or (isinstance(b, float) and b.is_integer()):
        return np.power(a, int(b)) if int(b) >= 0 else np.power(np.asarray(a, dtype=float), int(b))
    return np.power(a, b)


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
        sp.exp: np.exp, sp.log: np.log, sp.sin: np.sin, sp.cos: np.cos, sp.tan: np.tan,
        sp.sinh: np.sinh, sp.cosh: np.cosh, sp.tanh: np.tanh, sp.sech: lambda u: 1 / np.cosh(u),
        sp.coth: lambda u: 1 / np.tanh(u), sp.csch: lambda u: 1 / np.sinh(u),
        sp.erf: _scipy_special("erf"), sp.erfc: _scipy_special("erfc"), sp.atan: np.arctan, sp.asinh: np.arcsinh,
        sp.Abs: np.abs, sp.sign: np.sign,
    },
    power=_np_power,
    where=lambda c, a, b: np.where(c, a, b),
    softplus=lambda u: np.logaddexp(0.0, u),
    sigmoid=_scipy_special("expit"),
    comparisons=_COMPARISONS_PY,
    logical={sp.And: lambda *a: np.logical_and.reduce(a), sp.Or: lambda *a: np.logical_or.reduce(a),
             sp.Not: np.logical_not},
    maximum=np.maximum,
    minimum=np.minimum,
    heaviside=lambda u, h0: np.heaviside(u, h0),
)

_BACKENDS: dict[str, Backend] = {"mpmath": MPMATH, "numpy": NUMPY}


def register_backend(backend: Backend) -> None:
    """Make ``backend`` available to :func:`compile_expression` by its name."""
    _BACKENDS[backend.name] = backend


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


def _compile(expr: sp.Expr, be: Backend, var: sp.Symbol) -> Callable:
    if expr == var:
        return lambda u: u
    if not expr.has(var):
        if expr.is_real is False or (expr.is_number and expr.as_real_imag()[1] != 0):
            raise IbcheckError(f"the expression contains the complex constant {expr}; "
                               "only real-valued activations can be evaluated")
        value = be.constant(expr)
        return lambda u: value
    arg = _softplus_argument(expr)
    if arg is not None:
        inner = _compile(arg, be, var)
        return lambda u: be.softplus(inner(u))
    arg = _sigmoid_argument(expr)
    if arg is not None:
        inner = _compile(arg, be, var)
        return lambda u: be.sigmoid(inner(u))
    if isinstance(expr, sp.Add):
        parts = [_compile(a, be, var) for a in expr.args]

        def _add(u):
            total = parts[0](u)
            for p in parts[1:]:
                total = total + p(u)
            return total
        return _add
    if isinstance(expr, sp.Mul):
        parts = [_compile(a, be, var) for a in expr.args]

        def _mul(u):
            total = parts[0](u)
            for p in parts[1:]:
                total = total * p(u)
            return total
        return _mul
    if isinstance(expr, sp.Pow):
        base = _compile(expr.base, be, var)
        if expr.exp.has(var):
            expo = _compile(expr.exp, be, var)
            return lambda u: be.power(base(u), expo(u))
        e = expr.exp
        e_value = int(e) if e.is_Integer else be.constant(e)
        return lambda u: be.power(base(u), e_value)
    if isinstance(expr, sp.Heaviside):
        inner = _compile(expr.args[0], be, var)
        h0 = float(expr.args[1]) if len(expr.args) > 1 else 0.5
        return lambda u: be.heaviside(inner(u), h0)
    if isinstance(expr, (sp.Max, sp.Min)):
        parts = [_compile(a, be, var) for a in expr.args]
        op = be.maximum if isinstance(expr, sp.Max) else be.minimum

        def _ext(u):
            total = parts[0](u)
            for p in parts[1:]:
                total = op(total, p(u))
            return total
        return _ext
    if isinstance(expr, sp.Piecewise):
        branches = [(_compile(e, be, var), _compile_condition(c, be, var)) for e, c in expr.args]

        def _piecewise(u):
            value, cond = branches[-1][0](u), branches[-1][1](u)
            result = value if cond is True else be.where(cond, value, float("nan"))
            for fn, cnd in reversed(branches[:-1]):
                result = be.where(cnd(u), fn(u), result)
            return result
        return _piecewise
    if isinstance(expr, sp.DiracDelta):
        raise IbcheckError(f"{expr} is a distribution (a point mass), not a function: it has no pointwise values")
    func = be.functions.get(type(expr)) or be.functions.get(expr.func)
    if func is not None and len(expr.args) == 1:
        inner = _compile(expr.args[0], be, var)
        return lambda u: func(inner(u))
    raise IbcheckError(f"cannot evaluate {expr.func.__name__} numerically with the {be.name} backend")


def _compile_condition(cond, be: Backend, var: sp.Symbol) -> Callable:
    if cond is sp.true or cond is True:
        return lambda u: True
    if cond is sp.false or cond is False:
        return lambda u: False
    if type(cond) in be.comparisons:
        lhs, rhs = _compile(cond.lhs, be, var), _compile(cond.rhs, be, var)
        op = be.comparisons[type(cond)]
        return lambda u: op(lhs(u), rhs(u))
    if type(cond) in be.logical:
        parts = [_compile_condition(c, be, var) for c in cond.args]
        op = be.logical[type(cond)]
        return lambda u: op(*[p(u) for p in parts])
    raise IbcheckError(f"cannot evaluate the condition {cond} numerically")


def compile_expression(expr: sp.Expr, backend: str = "numpy", var: sp.Symbol = X) -> Callable:
    """Return ``f(u)`` evaluating ``expr`` with ``var`` set to ``u`` on the named backend.

    Raises :class:`IbcheckError` for free symbols other than ``var`` (unbound parameters),
    distributions, and functions the backend does not provide.
    """
    try:
        be = _BACKENDS[backend]
    except KeyError:
        raise IbcheckError(f"unknown numeric backend {backend!r}; known: {', '.join(sorted(_BACKENDS))}") from None
    free = expr.free_symbols - {var}
    if free:
        names = ", ".join(sorted(str(s) for s in free))
        raise IbcheckError(f"cannot evaluate {expr}: the parameter(s) {names} have no value")
    return _compile(expr, be, var)

