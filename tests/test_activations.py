"""Activation properties against independent numerical routes (finite differences, scaling)."""

import math

import numpy as np
import pytest
import sympy as sp

import theory
from theory.activations import BUILTINS
from theory.errors import IbcheckError

TEMPERED = [n for n in BUILTINS if n != "exp"]

# (activation, expected homogeneity degree): the definition sigma(l x) = l^k sigma(x) is
# checked numerically below, so the table is only the claim under test.
HOMOGENEITY = [("relu", 1), ("leaky_relu", 1), ("abs", 1), ("relu_k", 2), ("step", 0),
               ("softplus", None), ("tanh", None), ("gelu", None), ("elu", None), ("gaussian", None),
               ("sin", None)]


@pytest.mark.parametrize("name,degree", HOMOGENEITY)
def test_homogeneity_degree_matches_scaling(name, degree):
    act = theory.activation(name)
    assert act.homogeneity_degree == degree
    f = act.numeric("numpy")
    xs = np.linspace(-3, 3, 61)
    lam = 2.5
    if degree is not None:
        np.testing.assert_allclose(f(lam * xs), lam**degree * f(xs), rtol=1e-12, atol=1e-12)
    else:  # no degree k in 0..4 makes the identity hold
        ratios = [np.max(np.abs(f(lam * xs) - lam**k * f(xs))) for k in range(5)]
        assert min(ratios) > 1e-6


@pytest.mark.parametrize("text", ["relu", "leaky_relu(a=0.2)", "abs", "elu(alpha=0.5)", "elu", "softplus",
                                  "tanh", "gelu", "silu", "x/(1+abs(x))", "max(-1,min(1,x))"])
def test_kink_jump_matches_one_sided_finite_differences(text):
    act = theory.activation(text)
    f = act.numeric("mpmath")
    import mpmath
    mpmath.mp.dps = 30
    h = mpmath.mpf("1e-12")
    right = (f(h) - f(mpmath.mpf(0))) / h
    left = (f(mpmath.mpf(0)) - f(-h)) / h
    # one-sided differences of a piecewise-smooth function have O(h) error: 1e-10 is ample
    assert float(act.kink_jump) == pytest.approx(float(right - left), abs=1e-10)


def test_step_has_no_kink_jump_but_is_discontinuous():
    act = theory.activation("step")
    assert act.kink_jump is None and act.is_discontinuous


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "erf", "relu", "gaussian", "elu", "softplus"])
def test_limits_agree_with_far_evaluation(name):
    act = theory.activation(name)
    f = act.numeric("numpy")
    for lim, x in zip(act.limits, (-60.0, 60.0)):
        if lim.is_finite:
            assert float(lim) == pytest.approx(float(f(np.array(x))), abs=1e-12)
        else:
            assert abs(float(f(np.array(x)))) > 50


@pytest.mark.parametrize("text,tempered,degree", [
    ("relu", True, 1), ("tanh", True, 0), ("relu_k(k=3)", True, 3), ("x^3 + x", True, 3),
    ("sin", True, 0), ("exp", False, None), ("2^x", False, None), ("x*exp(x^2)", False, None),
    ("log(1+x^2)", True, 1),
])
def test_growth_class(text, tempered, degree):
    growth = theory.activation(text).growth
    assert growth.tempered is tempered
    assert growth.degree == degree
    if not tempered:
        assert "tempered" in growth.reason


@pytest.mark.parametrize("name,params,message", [
    ("leaky_relu", {"a": 1}, "0 <= a < 1"), ("softplus", {"beta": -1}, "positive"),
    ("relu_k", {"k": 1.5}, "integer"), ("relu", {"a": 0.1}, "no parameter"), ("nonsense", {}, "unknown activation"),
])
def test_bad_parameters_are_one_line_errors(name, params, message):
    with pytest.raises(IbcheckError, match=message) as err:
        theory.get_activation(name, **params)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", TEMPERED)
def test_backends_agree(name):
    """numpy, mpmath and torch evaluations of the same expression agree (equivalence table)."""
    import torch

    import numerics.torch_activation as ta
    act = theory.activation(name)
    xs = np.linspace(-4.3, 4.1, 23)
    via_numpy = act.numeric("numpy")(xs)
    via_mpmath = np.array([float(act.numeric("mpmath")(float(v))) for v in xs])
    via_torch = ta.torch_activation(act)(torch.as_tensor(xs)).numpy()
    # float64 evaluation of the same formula by different libraries: a few ulps apart
    np.testing.assert_allclose(via_numpy, via_mpmath, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(via_torch, via_mpmath, rtol=1e-13, atol=1e-14)


def test_parameters_stay_symbolic_in_expr_and_bind_in_bound():
    act = theory.activation("leaky_relu", a=sp.Rational(1, 5))
    assert act.expr.has(sp.Symbol("a", real=True))
    assert not act.bound.free_symbols - {theory.activations.X}
    assert act.label == "leaky_relu(a=1/5)"
    assert math.isclose(float(act.bound.subs(theory.activations.X, -1)), -0.2)
