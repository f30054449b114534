"""The frozen-field root classification (numerics.adaptive.field) reads no float64 rounding.

References are independent: the rounding bounds of :func:`gap_velocity` are checked against
the gap equation evaluated in 50-digit mpmath from the activation's sympy derivatives; the
invariance tests perturb the evaluated :math:`\\sigma', \\sigma''` by a few ulps (as another
float64 lowering of the same formula would) and compare the classification with the
unperturbed one.
"""

from __future__ import annotations

from contextlib import contextmanager

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from numerics.adaptive import field
from numerics.adaptive.pinning import _soft_run
from numerics.data import toy_1d
from theory.dynamics import derivative_functions
from theory.symbols import x as X

SMOOTH = ["softplus", "sigmoid", "tanh", "gelu", "silu", "elu"]


def _exact_derivatives(act):
    """50-digit mpmath sigma', sigma'' from the sympy pieces (an independent route to the values)."""
    pieces = [act.pieces.derivative(), act.pieces.derivative().derivative()]
    compiled = [[(lo, hi, sp.lambdify(X, e, "mpmath")) for lo, hi, e in p.intervals()] for p in pieces]

    def evaluate(parts, t):
        for lo, hi, fn in parts:
            if (lo == -sp.oo or t > lo) and t <= hi:
                return fn(t)
        raise AssertionError("no piece")
    return [lambda t, parts=parts: evaluate(parts, t) for parts in compiled]


def _exact_gap(act, xs, r, v, rho, s, k, g):
    """G and G' of field.gap_velocity in 50-digit arithmetic (inputs taken as exact binary floats)."""
    d1, d2 = _exact_derivatives(act)
    with mpmath.workdps(50):
        value = slope = mpmath.mpf(0)
        for xj, rj in zip(xs, r):
            z = mpmath.mpf(rho) * (s * (mpmath.mpf(xj) - mpmath.mpf(xs[k])) + mpmath.mpf(g))
            kernel = 1 + mpmath.mpf(xj) * mpmath.mpf(xs[k]) - mpmath.mpf(g) * s * mpmath.mpf(xj)
            value += rj * d1(z) * kernel
            slope += rj * (rho * d2(z) * kernel - d1(z) * s * xj)
        scale = -mpmath.mpf(v) / (len(xs) * mpmath.mpf(rho))
        return float(scale * value), float(scale * slope)


@pytest.mark.parametrize("name", SMOOTH)
def test_rounding_bounds_hold_against_50_digit_arithmetic(name):
    """|G - G_exact| <= bound and |G' - G'_exact| <= bound at random planes, including far
    tails (rho up to 200, where sigma' and sigma'' of some terms are pure rounding)."""
    act = theory.activation(name)
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    rng = np.random.default_rng(7)
    for _ in range(12):
        v, s, k = rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0]), int(rng.integers(len(xs)))
        rho = float(np.exp(rng.uniform(np.log(2.0), np.log(200.0))))
        g = float(rng.uniform(-0.5, 0.5))
        value, slope, value_bound, slope_bound = field.gap_velocity(act, xs, r, v, rho, s, k, np.array([g]),
                                                                    with_bounds=True)
        exact_value, exact_slope = _exact_gap(act, xs, r, v, rho, s, k, g)
        assert abs(value[0] - exact_value) <= value_bound[0]
        assert abs(slope[0] - exact_slope) <= slope_bound[0]


def test_a_sign_within_rounding_or_an_overflow_is_unresolved():
    assert field.resolved_sign([1e-17, -1e-17, 3e-16, -3e-16, np.nan, np.inf], 2e-16).tolist() == \
        [0.0, 0.0, 1.0, -1.0, 0.0, 0.0]


@contextmanager
def _perturbed(monkeypatch, act, seed: int, ulps: float):
    """field's sigma', sigma'' with every value moved by up to ``ulps`` ulps of itself and of the
    derivative scale M (the error another float64 lowering of the same formula may have; the
    bounds allow EVALUATION_ULPS = 8)."""
    d1, d2 = derivative_functions(act)
    scale = field.derivative_scale(act)
    rng = np.random.default_rng(seed)

    def noisy(fn):
        def evaluate(u):
            value = fn(u)
            relative, absolute = (rng.uniform(-ulps, ulps, np.shape(value)) * field.ULP for _ in range(2))
            return value * (1 + relative) + absolute * scale
        return evaluate
    with monkeypatch.context() as patch:
        patch.setattr(field, "derivative_functions", lambda a: (noisy(d1), noisy(d2)) if a == act else
                      derivative_functions(a))
        yield


def _population_roots(act, rho: float):
    """Every root of resolved stability of every (data point, orientation, sign of v) at sharpness
    rho on |g| <= 1.6 (the data range), with the bound rho |dG| / |G'| on how far rounding can
    move it in u (G' resolved: |G'| beyond its bound)."""
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    pop = field.field_population(len(xs), [0.0], rho)
    span = rho * 1.6
    found = field.gap_roots_many(act, xs, r, pop.v, pop.rho0, pop.sign, pop.point, np.full(len(pop.v), -span),
                                 np.full(len(pop.v), span), 20)
    out = []
    for i, roots in enumerate(found):
        resolved = [(u, stable) for u, stable in roots if stable is not None]
        moves = [rho * value_bound[0] / abs(slope[0]) for value_bound, slope in (
            field.gap_velocity(act, xs, r, pop.v[i], rho, pop.sign[i], pop.point[i], np.array([u / rho]),
                               with_bounds=True)[2::-1][:2] for u, _ in resolved)]
        out.append([(u, stable, move) for (u, stable), move in zip(resolved, moves)])
    return out


@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(["softplus", "tanh", "gelu", "sigmoid"]), rho=st.sampled_from([8.0, 32.0, 128.0, 700.0]),
       seed=st.integers(0, 2**32 - 1), ulps=st.floats(0.5, 4.0))
def test_root_classification_is_invariant_under_rounding_perturbations(name, rho, seed, ulps):
    """The roots of resolved stability, and the stability of each, of every (data point,
    orientation, sign of v) at one sharpness do not change when sigma', sigma'' move by a few
    ulps: no stable root turns unstable or back, none appears or vanishes, and each moves by
    no more than its rounding bound (at rho = 128 and 700 most terms are pure rounding of
    sigma' in the tails, where the unguarded classification read noise)."""
    act = theory.activation(name)
    plain = _population_roots(act, rho)
    with _perturbed(pytest.MonkeyPatch(), act, seed, ulps):
        noisy = _population_roots(act, rho)
    for before, after in zip(plain, noisy):
        assert [stable for _, stable, _ in after] == [stable for _, stable, _ in before]
        for (u, _, move), (u_noisy, _, _) in zip(before, after):
            assert abs(u_noisy - u) <= move + 1e-9          # + bisection's resolution (60 halvings)


def test_soft_pinning_rows_are_invariant_under_rounding_perturbations(monkeypatch):
    """The pinning check's soft-pinning classification of softplus (the roots, their stability,
    the planes near roots of unresolved stability and the local rule's sign) is the same with
    sigma', sigma'' moved by 4 ulps."""
    act = theory.activation("softplus")
    _soft_run.cache_clear()
    plain = _soft_run(act, None, (8.0, 32.0), 4000)["rows"]
    _soft_run.cache_clear()
    with _perturbed(monkeypatch, act, 3, 4.0):
        noisy = _soft_run(act, None, (8.0, 32.0), 4000)["rows"]
    _soft_run.cache_clear()
    # the flow runs on torch's sigma'; only its step size (from max |sigma''|) moves by ulps: 4000 steps keep
    # the end states within 1e-9 relative
    np.testing.assert_allclose(noisy[:, [0, 1, 2, 5, 7]], plain[:, [0, 1, 2, 5, 7]], rtol=1e-9)
    # nearest stable root, nearest root of resolved stability: the same roots to 1e-6 (NaN where none;
    # these roots' G' is far above its bound, so rounding moves them by < 1e-9)
    np.testing.assert_allclose(noisy[:, [3, 8]], plain[:, [3, 8]], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(noisy[:, 9], plain[:, 9])                               # stability 1 / 0
    np.testing.assert_array_equal(np.isfinite(noisy[:, 10]), np.isfinite(plain[:, 10]))  # unresolved roots nearby
    np.testing.assert_array_equal(np.sign(noisy[:, 6]), np.sign(plain[:, 6]))             # local rule's sign


def test_a_large_preactivation_keeps_the_root_and_its_stability():
    """softplus at rho = 717 (a plane the frozen-field flow carries there): at the data point with
    z ~ 900, sigma' = e^z/(1 + e^z) and sigma'' = e^z/(1 + e^z)^2 were inf/inf = NaN, the gap
    equation had no bracketed root and G' was NaN (79 planes of the pinning check were not found at
    rest).  Evaluated as S(z) and S(z) S(-z) (theory/evaluation.py) both are finite: the root the
    plane rests on (g = 0.615) is found, with G' < 0 (stable)."""
    act = theory.activation("softplus")
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    roots = field.gap_roots(act, xs, r, 1.0, 717.0, -1.0, 4, interval=(-1.0, 2.0))
    _, slope = field.gap_velocity(act, xs, r, 1.0, 717.0, -1.0, 4, np.array([0.615 / 717.0]))
    assert np.isfinite(slope[0]) and slope[0] < 0
    # the root within 0.001 of the plane's g
    assert [stable for root, stable in roots if abs(root - 0.615) < 1e-3] == [True]
