"""The expression compiler (theory/evaluation.py): shared subexpressions and the numpy primitives."""

from __future__ import annotations

import dataclasses

import mpmath
import numpy as np
import pytest
import sympy as sp

import theory
from theory.errors import IbcheckError
from theory.evaluation import NUMPY, SELECT_MIN_SIZE, _np_where, compile_expression, compile_expressions, register_backend
from theory.symbols import x as X

#: every kind of number the primitives meet: signed zeros, the overflow edges of exp (+-709, +-745),
#: infinities, NaN, and ordinary values
EDGES = np.concatenate([np.linspace(-800.0, 800.0, 3201), np.random.default_rng(0).standard_normal(5000) * 4,
                        [0.0, -0.0, 1e-300, -1e-300, 709.5, -709.5, 745.5, -745.5, np.inf, -np.inf, np.nan]])


def _counting_backend(name: str, counted: type) -> tuple[str, list]:
    """The numpy backend under another name, counting the calls of the function ``counted``."""
    calls = []
    inner = NUMPY.functions[counted]

    def counting(u):
        calls.append(1)
        return inner(u)
    register_backend(dataclasses.replace(NUMPY, name=name, functions={**NUMPY.functions, counted: counting}))
    return name, calls


def test_a_shared_subexpression_is_evaluated_once():
    """GELU and its derivative both contain 1 + erf(x/sqrt 2), evaluated as erfc(-x/sqrt 2): compiled
    together, one erfc per call, and the same numbers as the two compiled separately (the same
    operations in the same order)."""
    gelu = theory.activation("gelu")
    name, calls = _counting_backend("numpy-counting-erfc", sp.erfc)
    both = compile_expressions([gelu.bound, gelu.derivative(1)], name)
    calls.clear()  # building a program runs it once, at -inf, +inf and NaN (_Program's guard)
    u = np.linspace(-5, 5, 101)
    value, slope = both(u)
    assert len(calls) == 1
    assert np.array_equal(value, compile_expression(gelu.bound)(u))
    assert np.array_equal(slope, compile_expression(gelu.derivative(1))(u))
    separate = compile_expression(gelu.bound, name), compile_expression(gelu.derivative(1), name)
    calls.clear()
    separate[0](u), separate[1](u)
    assert len(calls) == 2


def test_every_builtin_pair_matches_mpmath():
    """sigma and sigma' compiled together (numpy) against mpmath at 30 digits."""
    u = np.linspace(-6.3, 6.1, 57)
    mpmath.mp.dps = 30
    for name in theory.builtin_names():
        act = theory.activation(name)
        if name == "step":
            with pytest.raises(IbcheckError, match="distribution"):
                compile_expressions([act.bound, act.derivative(1)])
            continue
        value, slope = compile_expressions([act.bound, act.derivative(1)])(u)
        for got, derivative in ((value, 0), (slope, 1)):
            exact = act.numeric("mpmath", derivative)
            reference = np.array([float(exact(mpmath.mpf(float(v)))) for v in u])
            # float64 evaluation of an O(1) formula: a few ulps (abs: values near a zero of sigma')
            np.testing.assert_allclose(np.asarray(got, float) * np.ones_like(u), reference, rtol=1e-13,
                                       atol=1e-15, err_msg=f"{name} derivative {derivative}")


def test_softplus_is_numpys_logaddexp():
    """log(1 + e^u) written as max(u, 0) + log1p(e^-|u|): numpy's logaddexp(0, u) to rounding, the
    same infinities and NaN, no overflow warning at u = 800."""
    softplus = compile_expression(sp.log(1 + sp.exp(X)))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        softplus(EDGES[np.isfinite(EDGES)])
    with np.errstate(invalid="ignore"):
        got, reference = softplus(EDGES), np.logaddexp(0.0, EDGES)
    assert np.array_equal(np.isnan(got), np.isnan(reference))
    finite, infinite = np.isfinite(reference), np.isinf(reference)
    assert np.array_equal(got[infinite], reference[infinite])
    # one exp and one log1p: within 2 ulps of numpy's own evaluation of the same formula
    np.testing.assert_allclose(got[finite], reference[finite], rtol=4.5e-16, atol=0)


def test_sigmoid_never_overflows_and_matches_mpmath():
    sigmoid = compile_expression(1 / (1 + sp.exp(-X)))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = sigmoid(EDGES[~np.isnan(EDGES)])
    mpmath.mp.dps = 30
    finite = EDGES[np.isfinite(EDGES)]
    reference = np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(float(v))))) for v in finite])
    # relative accuracy down to the subnormal range (|u| < 708): a few ulps
    normal = np.abs(finite) < 708
    np.testing.assert_allclose(got[np.isfinite(EDGES[~np.isnan(EDGES)])][normal], reference[normal], rtol=1e-15)
    assert np.isnan(sigmoid(np.array([np.nan]))[0])
    assert list(sigmoid(np.array([np.inf, -np.inf]))) == [1.0, 0.0]


def test_heaviside_equals_numpys():
    """H(u) with H(0) = 1/2 as (1 + sign u)/2: bit for bit np.heaviside, NaN and signed zeros included;
    another H(0) goes through np.heaviside itself."""
    for h0 in (sp.Rational(1, 2), sp.Integer(0), sp.Integer(1)):
        got = compile_expression(sp.Heaviside(X, h0))(EDGES)
        assert np.array_equal(got, np.heaviside(EDGES, float(h0)), equal_nan=True)


def _same_bits(got, reference) -> bool:
    got, reference = np.asarray(got), np.asarray(reference)
    return got.dtype == reference.dtype and got.shape == reference.shape and \
        np.array_equal(got.view(np.int64), reference.view(np.int64))


def test_select_is_numpys_where_bit_for_bit():
    """The branch-free select copies exactly the bits np.where copies (NaN, infinities, signed zeros,
    subnormals), for array and scalar branches, broadcast shapes and strided views; below its size
    threshold and for other dtypes it is np.where itself."""
    edges = EDGES.copy()
    edges[:2] = [5e-324, -5e-324]
    condition = edges < 0
    with np.errstate(over="ignore", invalid="ignore"):
        cases = [(0.1 * edges, edges), (0.1, 1.0), (edges, np.nan), (np.exp(edges[::-1]) - 1, edges),
                 (edges, -0.0), (np.float64(-0.0), edges)]
        for a, b in cases:
            assert _same_bits(_np_where(condition, a, b), np.where(condition, a, b))
            assert _same_bits(_np_where(~condition, a, b), np.where(~condition, a, b))
    grid = np.random.default_rng(3).standard_normal((400, 60))  # every condition below has >= SELECT_MIN_SIZE
    cube = grid.reshape(40, 10, 60)
    for condition, a, b in [(grid > 0, grid[:, :1], grid), (grid > 0, grid, grid[0]), (grid.T > 0, grid.T, 2.0),
                            (grid[::2] > 0, grid[::2], grid[1::2]), (cube[:, :1] > 0, cube, 0.0)]:
        assert condition.size >= SELECT_MIN_SIZE
        assert _same_bits(_np_where(condition, a, b), np.where(condition, a, b))
    small = np.array([True, False])
    assert _same_bits(_np_where(small, 1.0, 2.0), np.where(small, 1.0, 2.0))
    assert _np_where(grid > 0, 1, 2).dtype == np.where(grid > 0, 1, 2).dtype


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
def test_piecewise_activations_keep_their_values(name):
    """sigma, sigma', sigma'' of the Piecewise activations through the select: bit for bit the old
    lowering (np.where) on every edge case and on both sides of the breakpoint, the value *at* it that
    of the last piece (x < 0 is false at 0 and -0), and mpmath's at 30 digits there."""
    act = theory.activation(name)
    old = register_backend(dataclasses.replace(NUMPY, name="numpy-np-where", where=np.where)).name
    ulps = np.array([np.nextafter(0.0, 1.0) * k for k in (1, 2, 1e6)] + [1e-300, 1e-16, 1e-8])
    near = np.concatenate([[0.0, -0.0], ulps, -ulps])
    mpmath.mp.dps = 30
    for derivative in (0, 1, 2):
        expr = act.bound if derivative == 0 else act.derivative(derivative)
        new_f, old_f = compile_expression(expr), compile_expression(expr, old)
        with np.errstate(over="ignore", invalid="ignore"):
            assert _same_bits(new_f(EDGES) * np.ones_like(EDGES), old_f(EDGES) * np.ones_like(EDGES))
        u = np.concatenate([near, np.linspace(-3, 3, 61)])
        got = np.asarray(new_f(u), float) * np.ones_like(u)
        exact = act.numeric("mpmath", derivative)
        reference = np.array([float(exact(mpmath.mpf(float(v)))) for v in u])
        # one operation per piece in float64 (exp(u) - 1 near 0: the cancellation's absolute rounding)
        np.testing.assert_allclose(got, reference, rtol=1e-15, atol=1e-16, err_msg=f"{name} derivative {derivative}")
        assert np.array_equal(got[:2], [float(exact(mpmath.mpf(0)))] * 2)


@pytest.mark.parametrize("k", [-1, -2, -3])
def test_negative_integer_powers(k):
    """u**k for k < 0 as (1/u)**|k|: np.power's values to rounding, without underflowing through an
    overflowing u**|k| (u = 1e160: u**-2 = 1e-320 is subnormal, not 0)."""
    power = compile_expression(X**k)
    u = np.concatenate([np.linspace(0.1, 50.0, 500), -np.linspace(0.1, 50.0, 500), [1e160, -1e160]])
    got, reference = power(u), np.power(u, float(k))
    # |k| - 1 products after one division: |k| roundings
    np.testing.assert_allclose(got, reference, rtol=abs(k) * 2.3e-16, atol=0)
    with np.errstate(divide="ignore"):
        assert power(np.array([0.0]))[0] == np.inf


def test_unbound_parameters_and_unknown_backends_are_refused():
    a = sp.Symbol("a")
    with pytest.raises(IbcheckError, match="parameter"):
        compile_expressions([X, a * X])
    with pytest.raises(IbcheckError, match="unknown numeric backend"):
        compile_expressions([X], "fortran")


#: the pre-activations where e^u, e^{2u} or x e^x leave float64 (30-40: 1 - sigmoid cancels;
#: 356: e^{2u} overflows; 709.78: e^u overflows), both signs, and a few ordinary ones
_LARGE = (30, 37, 40, 300, 356, 400, 700, 709.7, 709.8, 710, 800, 1000)
_GRID = sorted({s * v for v in _LARGE for s in (1, -1)} | {0.0, 0.5, -1.25, 3.0})
#: every value here is a sum of at most three terms of one sign (checked: no cancellation at these u)
#: each a product of <= 6 operations of <= 4 ulps (exp, erfc, sigmoid from one exp); sin and cos at
#: |u| = 1000 add the argument reduction (< 1 ulp in numpy/torch): 1e-13 = 450 ulps covers them
_RELATIVE = 1e-13
_TINY = np.finfo(float).tiny   # below the smallest normal a value is compared absolutely


def _reference(expr: sp.Expr, u: float) -> float:
    """``expr`` at ``u`` by sympy's own evalf (not this module's compiler) at 500 digits: 1 + e^{-1000}
    needs 435 before log(1 + e^u) has one correct digit; rounded to float64."""
    return float(sp.re(expr.evalf(500, subs={X: sp.Float(u, 500)})))


def _close(got: float, want: float) -> bool:
    if np.isinf(want) or np.isinf(got):
        return got == want
    return abs(got - want) <= _RELATIVE * abs(want) + _TINY


def _evaluable(name: str):
    act = theory.activation(name)
    return [(k, act.derivative(k)) for k in range(3) if not act.derivative(k).has(sp.DiracDelta)]


@pytest.mark.parametrize("backend", ["numpy", "torch", "arrays"])
@pytest.mark.parametrize("name", theory.builtin_names())
def test_builtins_and_derivatives_match_mpmath_at_large_preactivations(name, backend):
    """sigma, sigma', sigma'' of every built-in at |u| up to 1000, where e^u overflows: the lowering
    must neither return NaN (inf/inf, inf * 0) nor lose every digit (1 + erf(-30) = 0, 1 - sigmoid(40))."""
    import torch

    import numerics.torch_activation  # noqa: F401  (registers torch and arrays)

    act = theory.activation(name)
    for k, expr in _evaluable(name):
        f = act.numeric(backend, k)
        u = np.array(_GRID)
        got = np.asarray(f(torch.tensor(u)) if backend == "torch" else f(u), dtype=float)
        got = np.broadcast_to(got, u.shape)
        bad = [(x, g, _reference(expr, x)) for x, g in zip(u, got) if not _close(g, _reference(expr, x))]
        assert not bad, f"{name} derivative {k} ({backend}): (u, got, mpmath) {bad[:4]}"


@pytest.mark.parametrize("name", ["softplus", "sigmoid", "silu", "gelu"])
def test_limits_at_infinity(name):
    """where the limit at +-inf is finite, the numpy value is that limit (not NaN)."""
    act = theory.activation(name)
    for k, expr in _evaluable(name):
        got = act.numeric("numpy", k)(np.array([-np.inf, np.inf]))
        want = [float(sp.limit(expr, X, s)) if sp.limit(expr, X, s).is_finite else None for s in (-sp.oo, sp.oo)]
        for g, w in zip(np.broadcast_to(got, (2,)), want):
            if w is not None:
                assert g == w, f"{name} derivative {k}: {got} vs limits {want}"
