"""The expression compiler (theory/evaluation.py): shared subexpressions and the numpy primitives."""

from __future__ import annotations

import dataclasses

import mpmath
import numpy as np
import pytest
import sympy as sp

import theory
from theory.errors import IbcheckError
from theory.evaluation import (EXP_FAST_ABOVE, EXP_ZERO_BELOW, NUMPY, SELECT_MIN_SIZE, _np_exp, _np_where,
                               compile_expression, compile_expressions, register_backend)
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
    """GELU and its derivative both contain erf(x/sqrt 2): compiled together, one erf per call, and
    the same numbers as the two compiled separately (the same operations in the same order)."""
    gelu = theory.activation("gelu")
    name, calls = _counting_backend("numpy-counting-erf", sp.erf)
    both = compile_expressions([gelu.bound, gelu.derivative(1)], name)
    u = np.linspace(-5, 5, 101)
    value, slope = both(u)
    assert len(calls) == 1
    assert np.array_equal(value, compile_expression(gelu.bound)(u))
    assert np.array_equal(slope, compile_expression(gelu.derivative(1))(u))
    calls.clear()
    compile_expression(gelu.bound, name)(u), compile_expression(gelu.derivative(1), name)(u)
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


def test_exp_without_the_underflow_path_is_numpys_exp_bit_for_bit():
    """exp with the underflowing arguments handled apart gives np.exp's bits: every result from normal
    through subnormal to 0 (around both thresholds, ulp by ulp), NaN and infinities, strided views, in
    place (``out`` = the argument), and small arrays and numbers (np.exp itself)."""
    rng = np.random.default_rng(11)
    edges = np.concatenate([[np.inf, -np.inf, 0.0, -0.0, 709.7, -1e300],
                            *[threshold + np.arange(-40, 41) * np.spacing(threshold)
                              for threshold in (EXP_FAST_ABOVE, EXP_ZERO_BELOW, -708.3964185322641,
                                                -745.1332191019412)],
                            np.linspace(-760, -690, 7001), rng.uniform(-3600, 5, 20_000)])
    with np.errstate(over="ignore"):
        reference = np.exp(edges)
        assert _same_bits(_np_exp(edges), reference)
        assert _same_bits(_np_exp(edges[::3]), reference[::3])
        copy = edges.copy()
        assert _np_exp(copy, out=copy) is copy and _same_bits(copy, reference)
        assert _same_bits(_np_exp(edges[:SELECT_MIN_SIZE - 1]), reference[:SELECT_MIN_SIZE - 1])
        with_nan = np.concatenate([[np.nan], edges])  # its minimum is NaN: np.exp itself
        assert _same_bits(_np_exp(with_nan), np.exp(with_nan))
    assert _np_exp(-800.0) == np.exp(-800.0) == 0.0
    assert np.all(np.exp(np.linspace(EXP_ZERO_BELOW, -5000, 1001)) == 0)  # what the shortcut assumes


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
