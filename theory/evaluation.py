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
    """``a**b``; a negative integer power as ``(1/a)**|b|``: numpy's pow is ~30x slower for it
    (3 ms vs 0.1 ms on 5e4 numbers), the two differ by rounding, and 1/a first keeps a**-2 from
    underflowing through an overflowing a**2."""
    if isinstance(b, (int, np.integer)) or (isinstance(b, float) and b.is_integer()):
        k = int(b)
        return np.power(a, k) if k >= 0 else np.power(1.0 / np.asarray(a, dtype=float), -k)
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
        sp.sinh: np.sinh, sp.cosh: np.cosh, sp.tanh: np.tanh, sp.sech: lambda u: 1 / np.cosh(u),
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


class _Program:
    """Expressions as a list of backend operations, one per *distinct* subexpression: a subexpression
    shared by several of the expressions (``erf(x/sqrt 2)`` in GELU and its derivative) or repeated in
    one is evaluated once per call (common-subexpression elimination on sympy's structural equality).
    Constants are evaluated once, when the program is built."""

    def __init__(self, exprs: list, be: Backend, var: sp.Symbol):
        self.be, self.var = be, var
        self.slots: dict = {var: 0}         # expression -> index of its value (0: the variable)
        self.initial: list = [None]          # the values before a call: the constants in place
        self.steps: list[tuple[int, Callable]] = []
        self.outputs = tuple(self._slot(e) for e in exprs)
        self.first = self.outputs[0]

    def _slot(self, expr) -> int:
        if expr in self.slots:
            return self.slots[expr]
        is_condition = isinstance(expr, (sp.logic.boolalg.Boolean, bool)) and not isinstance(expr, sp.Expr)
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

    def __call__(self, u) -> tuple:
        values = self._run(u)
        return tuple(values[i] for i in self.outputs)

    def value(self, u):
        """The first expression's value alone."""
        return self._run(u)[self.first]


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
