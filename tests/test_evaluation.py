"""The expression compiler (theory/evaluation.py): shared subexpressions and the numpy primitives."""

from __future__ import annotations

import dataclasses
import functools

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


# -- large pre-activations, infinities, NaN ------------------------------------------------------------
# References are the textbook closed forms written by hand in mpmath at 50 digits (mpmath's exponent
# range is unbounded: e^1000 is an ordinary number there), independent of sympy's derivatives and of
# the compiler under test.  Each gives the terms whose sum is the value: the largest term's size sets
# the rounding a float64 sum keeps near a zero of the sum.

def _logistic(u):
    return 1 / (1 + mpmath.exp(-u))


def _sech2(u):
    return 1 / mpmath.cosh(u) ** 2


def _mish_terms(u):
    """x tanh(softplus x): tanh(s) + x sech^2(s) S(x), sech^2(s) S(x) (2 - 2x tanh(s) S(x) + x S(-x))."""
    s, S = mpmath.log1p(mpmath.exp(u)), _logistic(u)
    return ([u * mpmath.tanh(s)], [mpmath.tanh(s), u * _sech2(s) * S],
            [2 * _sech2(s) * S, -2 * u * mpmath.tanh(s) * _sech2(s) * S**2, u * _sech2(s) * S * _logistic(-u)])


def _terms(name: str, u, k: int) -> list:
    S, T = _logistic(u), _logistic(-u)
    if name == "softplus":
        return [[mpmath.log1p(mpmath.exp(u))], [S], [S * T]][k]
    if name == "softplus(beta=4)":
        return [[mpmath.log1p(mpmath.exp(4 * u)) / 4], [_logistic(4 * u)], [4 * _logistic(4 * u) * _logistic(-4 * u)]][k]
    if name in ("sigmoid", "exp(x)/(1 + exp(x))"):
        return [[S], [S * T], [S * T**2, -S**2 * T]][k]
    if name == "2/(1 + exp(-2*x)) - 1":       # tanh through the logistic function
        S2, T2 = _logistic(2 * u), _logistic(-2 * u)
        return [[2 * S2, -1], [4 * S2 * T2], [8 * S2 * T2**2, -8 * S2**2 * T2]][k]
    if name == "(exp(x) - exp(-x))/(exp(x) + exp(-x))":   # tanh = S(2u) - S(-2u)
        S2, T2 = _logistic(2 * u), _logistic(-2 * u)
        return [[S2, -T2], [_sech2(u)], [8 * S2 * T2**2, -8 * S2**2 * T2]][k]
    if name == "2/(exp(x) + exp(-x))":         # sech; sech' = sech (S(-2u) - S(2u)), sech'' = sech (tanh^2 - sech^2)
        sech = 1 / mpmath.cosh(u)
        return [[sech], [sech * _logistic(-2 * u), -sech * _logistic(2 * u)], [sech * mpmath.tanh(u) ** 2, -sech**3]][k]
    if name == "silu":
        return [[u * S], [S, u * S * T], [2 * S * T, u * S * T**2, -u * S**2 * T]][k]
    if name == "gelu":
        Phi, phi = mpmath.ncdf(u), mpmath.npdf(u)
        return [[u * Phi], [Phi, u * phi], [2 * phi, -u * u * phi]][k]
    if name == "tanh":
        return [[mpmath.tanh(u)], [_sech2(u)], [-2 * mpmath.tanh(u) * _sech2(u)]][k]
    if name == "elu":
        return [[mpmath.expm1(u)], [mpmath.exp(u)], [mpmath.exp(u)]][k] if u < 0 else [[u], [1], [0]][k]
    if name == "x*tanh(log(1 + exp(x)))":     # mish
        return _mish_terms(u)[k]
    if name == "x/(1 + abs(x))":              # softsign
        return [[u / (1 + abs(u))], [1 / (1 + abs(u)) ** 2], [-2 * mpmath.sign(u) / (1 + abs(u)) ** 3]][k]
    if name == "(x**2*exp(3*x) + 5)/(1 + exp(x))**4":   # any rational function of e^x over (1 + e^x)^n
        return [[u * u * S**3 * T, 5 * T**4]][k]
    raise KeyError(name)


_CASES = ["softplus", "softplus(beta=4)", "sigmoid", "exp(x)/(1 + exp(x))", "2/(1 + exp(-2*x)) - 1",
          "(exp(x) - exp(-x))/(exp(x) + exp(-x))", "2/(exp(x) + exp(-x))", "silu",
          "gelu", "tanh", "elu", "x*tanh(log(1 + exp(x)))", "x/(1 + abs(x))", "(x**2*exp(3*x) + 5)/(1 + exp(x))**4"]


def _orders(name: str) -> list[int]:
    act = theory.activation(name)
    orders = [0] + [k for k in (1, 2) if not act.derivative(k).has(sp.DiracDelta)]
    return orders if name.count("**4") == 0 else [0]


#: where float64 fails each way: 1 - tanh^2 and 1 - S cancel from |u| = 19-37; 1 + erf(u/sqrt 2) from
#: u = -8.3; e^{2u} overflows at 355, e^u at 709.78; the subnormal range ends at 745.13; and a seeded
#: log-uniform sample of |u| in [1e-3, 1e3] of both signs (zeros of sigma'' and sigma' included)
_SPOTS = [19.1, 30.0, 37.0, 40.0, 355.0, 356.0, 400.0, 700.0, 709.7, 709.8, 710.0, 745.2, 800.0, 1000.0]
_U = np.unique(np.concatenate([[0.0], _SPOTS, np.negative(_SPOTS), np.random.default_rng(18).choice([-1.0, 1.0], 64)
                               * 10 ** np.random.default_rng(19).uniform(-3, 3, 64)]))
#: 2^-44 = 5.7e-14 is the peak relative error of Cephes' erfc (scipy's) on [0, 26.6]; (1 + |u|)
#: covers an argument rounded once (4u, u/sqrt 2, -u^2/2: relative 2^-53), which moves e^v by |v| 2^-53
#: and erfc(v) by 2 v^2 2^-53 = u^2 2^-53 <= 38.5 |u| 2^-53 wherever GELU's terms are normal numbers
#: (|u| < 38.5); the largest term, not the value, scales it (a sum near its zero keeps the absolute
#: rounding of its terms).  Below the smallest normal number only absolute accuracy exists (and
#: torch flushes subnormals to 0): a factor there, times the other factors of these formulas (at
#: most 8 (1 + u^2)), is compared absolutely
_RELATIVE = 2.0**-44
_TINY = np.finfo(float).tiny


@functools.lru_cache(maxsize=None)
def _reference(name: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, largest-term sizes) of sigma^(k) of ``name`` on _U, rounded to float64."""
    with mpmath.workdps(50):
        rows = [_terms(name, mpmath.mpf(float(u)), k) for u in _U]
        return (np.array([float(mpmath.fsum(r)) for r in rows]),
                np.array([float(max(abs(mpmath.mpf(t)) for t in r)) for r in rows]))


def _evaluate(name: str, k: int, backend: str, u: np.ndarray) -> np.ndarray:
    import torch

    import numerics.torch_activation  # noqa: F401  (registers torch and arrays)

    f = theory.activation(name).numeric(backend, k)
    if backend == "mpmath":
        got = [f(mpmath.mpf(float(v))) for v in u]
    elif backend == "torch":
        got = f(torch.tensor(u)).numpy()
    else:
        got = f(u)
    return np.broadcast_to(np.asarray(got, dtype=float), u.shape)


@pytest.mark.parametrize("backend", ["numpy", "arrays", "torch", "mpmath"])
@pytest.mark.parametrize("name", _CASES)
def test_large_preactivations_match_the_closed_forms(name, backend):
    """sigma, sigma', sigma'' at |u| up to 1000, where e^u overflows and 1 - S(u), 1 - tanh^2, 1 + erf
    cancel: no NaN (inf/inf, inf * 0), no lost digits (main gave NaN for softplus' above 709.78, 0.4966
    in torch at 709.7; 0 for SiLU' above 356, GELU at -30 and tanh' above 19)."""
    for k in _orders(name):
        want, size = _reference(name, k)
        got = _evaluate(name, k, backend, _U)
        bad = np.abs(got - want) > _RELATIVE * (1 + np.abs(_U)) * size + 8 * (1 + _U**2) * _TINY
        bad |= np.isnan(got)
        assert not bad.any(), f"{name} derivative {k} ({backend}): u, got, want {list(zip(_U[bad], got[bad], want[bad]))[:4]}"


#: sigma^(k) at -inf and +inf, k = 0, 1, 2 (by hand: the closed forms' limits)
_LIMITS = {
    "softplus": [(0, np.inf), (0, 1), (0, 0)], "softplus(beta=4)": [(0, np.inf), (0, 1), (0, 0)],
    "sigmoid": [(0, 1), (0, 0), (0, 0)], "exp(x)/(1 + exp(x))": [(0, 1), (0, 0), (0, 0)],
    "2/(1 + exp(-2*x)) - 1": [(-1, 1), (0, 0), (0, 0)], "(exp(x) - exp(-x))/(exp(x) + exp(-x))": [(-1, 1), (0, 0), (0, 0)],
    "2/(exp(x) + exp(-x))": [(0, 0), (0, 0), (0, 0)], "silu": [(0, np.inf), (0, 1), (0, 0)],
    "gelu": [(0, np.inf), (0, 1), (0, 0)], "tanh": [(-1, 1), (0, 0), (0, 0)], "elu": [(-1, np.inf), (0, 1), (0, 0)],
    "x*tanh(log(1 + exp(x)))": [(0, np.inf), (0, 1), (0, 0)], "x/(1 + abs(x))": [(-1, 1), (0, 0), (0, 0)],
    "(x**2*exp(3*x) + 5)/(1 + exp(x))**4": [(5, 0)],
}


@pytest.mark.parametrize("backend", ["numpy", "arrays", "torch", "mpmath"])
@pytest.mark.parametrize("name", _CASES)
def test_infinities_give_the_limits_and_nan_gives_nan(name, backend):
    """sigma^(k)(+-inf) is the limit (main: NaN for SiLU and GELU at -inf, their slopes at both ends,
    softsign at both ends), NaN in gives NaN out (main: ELU' and ELU'' gave 1 and 0), next to ordinary
    numbers in the same array."""
    u = np.array([-np.inf, np.inf, np.nan, 0.5])
    # mish'' alone: sympy takes 0.7 s for its two limits (computed once per expression and cached)
    for k in _orders(name)[:2 if name.startswith("x*tanh") else 3]:
        got = _evaluate(name, k, backend, u)
        assert list(got[:2]) == list(_LIMITS[name][k]) and np.isnan(got[2]), f"{name} derivative {k}: {got}"
        assert got[3] == _evaluate(name, k, backend, u[3:])[0]
