"""theory.rs_coordinates and theory.dynamics: symbolic statements checked by independent numbers.

References are finite differences along the Euclidean flow, closed forms of inverse
derivatives (tanh, softplus, GELU), and numeric evaluation of the network itself; nothing
is compared with the symbolic output it was derived from.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import theory
from theory.derive import derive
from theory.dynamics import (Sliding, dynamics_section, equilibrium_branches, gap_equilibria,
                             gap_equilibria_many, gap_kernel, kinks, mu_flow, rs_flow, sliding_identity)
from theory.errors import IbcheckError
from theory.rs_coordinates import balance_defect, homogeneity, orbit_invariance, rs_identity

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def fresh_generator():
    """Every test draws the same numbers whatever ran before it."""
    global RNG
    RNG = np.random.default_rng(7)


# ---- RS coordinates and the rescaling symmetry ------------------------------------------

@pytest.mark.parametrize("dim", [1, 2, 3])
def test_rs_identity_and_orbit_invariance_hold_symbolically(dim):
    assert rs_identity(dim) is not None
    assert set(orbit_invariance(dim, 1)) == {"theta", "beta", "rho", "mu"}


@pytest.mark.parametrize("name, params, degree", [
    ("relu", {}, 1), ("leaky_relu", {"a": sp.Rational(1, 5)}, 1), ("abs", {}, 1), ("relu_k", {"k": 3}, 3),
    ("step", {}, 0), ("max(x, 0)^2", {}, 2),
    ("tanh", {}, None), ("softplus", {}, None), ("gelu", {}, None), ("elu", {}, None), ("sin", {}, None),
])
def test_homogeneity_degree_and_witness(name, params, degree):
    act = theory.activation(name, **params)
    h = homogeneity(act)
    assert h.degree == degree
    sigma = act.numeric("numpy")
    u = RNG.uniform(-3, 3, 50)
    if degree is not None:
        # independent: sigma(a u) = a^k sigma(u) numerically
        for a in (0.3, 2.7):
            assert np.allclose(sigma(a * u), a**degree * sigma(u), atol=1e-12)
    else:
        # the witness: Euler ratios at the probes from a central finite difference of sigma
        values = []
        for probe, ratio in h.euler_ratios:
            t, e = float(probe), 1e-6
            s = float(sigma(np.array([t]))[0])
            if s == 0:
                continue
            fd = (float(sigma(np.array([t + e]))[0]) - float(sigma(np.array([t - e]))[0])) / (2 * e)
            assert float(ratio) == pytest.approx(t * fd / s, rel=1e-6)   # finite-difference error ~1e-9
            values.append(t * fd / s)
        assert max(values) - min(values) > 1e-3



@pytest.mark.parametrize("formula, probe", [("x*(2*x - 1)", sp.Rational(1, 2)), ("exp(-100*x**2)", sp.Integer(2))])
def test_euler_ratio_is_infinite_where_sigma_vanishes(formula, probe):
    # sigma(1/2) = 0 exactly (sigma' = 1 there), and e^{-400} ~ 1e-174 is 0 at 30 digits (sigma' is
    # also ~1e-171 but not 0): both give the infinite ratio, the witness that no k exists
    h = homogeneity(theory.activation(formula))
    assert h.degree is None
    assert dict(h.euler_ratios)[probe] is sp.oo
    assert "infinite at u = " in h.statement

def test_non_homogeneous_treatment_keeps_rho_and_has_no_symmetry():
    """Open question 1.3, option (b): (v, rho, theta, beta) is a bijection, rescaling changes f."""
    act = theory.activation("tanh")
    result = dynamics_section(act, 1).results
    assert result["rs_coordinates"] == "(v, rho, theta, beta)"
    sigma = act.numeric("numpy")
    w, b, v = RNG.normal(size=3), 0.4, 1.3
    x = RNG.normal(size=(20, 3))
    rho = np.linalg.norm(w)
    theta, beta = w / rho, -b / rho
    assert np.allclose(rho * theta, w) and math.isclose(-rho * beta, b)
    f = v * sigma(x @ w + b)
    assert np.allclose(f, v * sigma(rho * (x @ theta - beta)))
    assert np.max(np.abs(f - (v / 2) * sigma(2 * (x @ w + b)))) > 1e-2     # (v/a, a w, a b) is no symmetry


def test_balance_defect_vanishes_exactly_for_homogeneous():
    assert balance_defect(theory.activation("relu")) == 0
    assert balance_defect(theory.activation("relu_k", k=2)) == 0
    defect = balance_defect(theory.activation("tanh"))
    value = float(defect.subs(theory.symbols.x, sp.Rational(1, 2)))
    assert value == pytest.approx(math.tanh(0.5) - 0.5 / math.cosh(0.5) ** 2, rel=1e-12)


def test_balance_is_conserved_by_gradient_flow_for_relu_only():
    """Independent: integrate the Euclidean flow of one neuron with small Euler steps."""
    x = RNG.uniform(-1, 1, 8)
    y = RNG.normal(size=8)
    for name, conserved in (("relu", True), ("tanh", False)):
        sigma = theory.activation(name).numeric("numpy")
        dsigma = theory.activation(name).numeric("numpy", 1)
        v, w, b = 0.7, 1.1, -0.2
        start = v * v - w * w - b * b
        for _ in range(4000):
            z = w * x + b
            r = v * sigma(z) - y
            gv, gw, gb = np.mean(r * sigma(z)), np.mean(r * v * dsigma(z) * x), np.mean(r * v * dsigma(z))
            v, w, b = v - 1e-4 * gv, w - 1e-4 * gw, b - 1e-4 * gb
        drift = abs(v * v - w * w - b * b - start)
        # Euler steps of 1e-4 conserve the balance to O(step) = 1e-4 per unit time (0.4 here)
        assert (drift < 1e-4) == conserved


# ---- the RS flow ---------------------------------------------------------------------------

def _rs(w, b):
    rho = np.linalg.norm(w)
    return rho, w / rho, -b / rho


@pytest.mark.parametrize("dim", [1, 2])
def test_rs_flow_closed_forms_match_finite_differences(dim):
    flow = rs_flow(dim)
    w, b, x = RNG.normal(size=dim), 0.3, RNG.normal(size=dim)
    v, r, N, ds = 0.8, -0.6, 5.0, 0.37           # sigma'(z) enters as a number
    w_dot = -r * v * ds * x / N
    b_dot = -r * v * ds / N
    eps = 1e-6
    rho1, th1, be1 = _rs(w + eps * w_dot, b + eps * b_dot)
    rho0, th0, be0 = _rs(w - eps * w_dot, b - eps * b_dot)
    syms = {sp.Symbol("v", real=True): v, sp.Symbol("r", real=True): r, sp.Symbol("N", positive=True): N,
            sp.Symbol("eta_w", positive=True): 1, sp.Symbol("sigma'(z)"): ds, sp.Symbol("b", real=True): b}
    syms.update({sp.Symbol(f"w{i + 1}", real=True): w[i] for i in range(dim)})
    syms.update({sp.Symbol(f"x{i + 1}", real=True): x[i] for i in range(dim)})
    rho_dot = float(flow.closed_form["rho"].subs(syms))
    theta_dot = np.array([float(e.subs(syms)) for e in flow.closed_form["theta"]])
    beta_dot = float(flow.closed_form["beta"].subs(syms))
    # central differences: relative error ~eps^2 |third derivative / first| << 1e-6
    assert rho_dot == pytest.approx((rho1 - rho0) / (2 * eps), rel=1e-6, abs=1e-9)
    assert np.allclose(theta_dot, (th1 - th0) / (2 * eps), rtol=1e-6, atol=1e-9)
    assert beta_dot == pytest.approx((be1 - be0) / (2 * eps), rel=1e-6, abs=1e-9)


def test_mu_flow_of_relu_matches_finite_differences():
    expr = mu_flow(theory.activation("relu"))
    rho, v, u, tx = 0.6, 1.4, 0.35, 0.5            # active side: sigma(u) = u, sigma' = 1
    r, N = 0.2, 3.0
    # mu = v rho; flow of one data point x with theta.x = tx (1D: theta = 1, x = tx, beta = tx - u)
    x, theta, beta = tx, 1.0, tx - u
    w, b = rho * theta, -rho * beta
    z = w * x + b
    eps = 1e-7
    v1 = v - eps * r * max(z, 0) / N
    w1 = w - eps * r * v * x / N
    mu_fd = (v1 * abs(w1) - v * abs(w)) / eps
    values = {sp.Symbol("rho", positive=True): rho, sp.Symbol("v", real=True): v, sp.Symbol("u", real=True): u,
              sp.Symbol("theta_x", real=True): tx, sp.Symbol("r", real=True): r, sp.Symbol("N", positive=True): N,
              sp.Symbol("eta_v", positive=True): 1, sp.Symbol("eta_w", positive=True): 1,
              sp.Symbol("sigma'(u)"): 1.0}
    closed = expr.replace(lambda e: isinstance(e, sp.Function) and e.func.__name__ == "sigma", lambda e: e.args[0])
    assert float(closed.subs(values)) == pytest.approx(mu_fd, abs=1e-6)
    assert mu_flow(theory.activation("tanh")) is None


@pytest.mark.parametrize("dim", [1, 2])
def test_gap_kernel_on_the_plane_is_one_plus_norm_squared(dim):
    kernel = gap_kernel(dim)
    xk = RNG.normal(size=dim)
    w = RNG.normal(size=dim)
    b = -float(w @ xk)                               # plane through x_k
    eps = 1e-6
    gap = lambda t: ((w - t * xk) @ xk + b - t) / np.linalg.norm(w - t * xk)   # flow of the k-th term
    g_dot = (gap(eps) - gap(-eps)) / (2 * eps)       # central difference: error ~eps^2
    assert g_dot == pytest.approx(-(1 + xk @ xk) / np.linalg.norm(w), rel=1e-6)
    assert kernel.on_plane_self.free_symbols


# ---- kinks and sliding --------------------------------------------------------------------

@pytest.mark.parametrize("formula, params, expected", [
    ("relu", {}, [(0.0, 1.0)]),
    ("leaky_relu", {"a": sp.Rational(1, 5)}, [(0.0, 0.8)]),
    ("abs", {}, [(0.0, 2.0)]),
    ("elu", {"alpha": 2}, [(0.0, -1.0)]),
    ("min(max(x, -1), 1)", {}, [(-1.0, 1.0), (1.0, -1.0)]),
    ("softplus", {}, []),
    ("step", {}, []),
])
def test_kinks(formula, params, expected):
    act = theory.activation(formula, **params)
    got = [v for k in kinks(act) for v in (k.location, k.jump)]
    assert got == pytest.approx([v for pair in expected for v in pair])
    sigma = act.numeric("numpy")
    for k in kinks(act):                             # independent: one-sided slopes by differences
        def slope(t, h=1e-7):
            return float(sigma(np.array([t + h]))[0] - sigma(np.array([t]))[0]) / h
        # 1e-5 away from the kink the pieces' curvature (<= 2 here) moves the slope by < 1e-4
        assert k.right_slope == pytest.approx(slope(k.location + 1e-5), abs=1e-4)
        assert k.left_slope == pytest.approx(slope(k.location - 1e-5 - 1e-7), abs=1e-4)


def test_sliding_velocity_vanishes_on_the_surface():
    sliding_identity()
    for _ in range(20):
        A, B = RNG.normal(), RNG.normal()
        lo, hi = RNG.normal(), RNG.normal()
        gm, gp = B - A * lo, B - A * hi
        lam = gm / (gm - gp)
        assert B - A * (lo + lam * (hi - lo)) == pytest.approx(0, abs=1e-12)


# ---- branches of sigma' and the gap equation -----------------------------------------------

@pytest.mark.parametrize("formula, kind", [
    ("relu", "kink"), ("abs", "kink"), ("step", "frozen"), ("x", "affine"), ("softplus", "convex"),
    ("exp", "convex"), ("relu_k", "convex"), ("-log(1 + exp(x))", "concave"), ("tanh", "sigmoid"),
    ("erf", "sigmoid"), ("sigmoid", "sigmoid"), ("x/(1+abs(x))", "sigmoid"), ("gelu", "multiple"),
    ("silu", "multiple"), ("gaussian", "multiple"), ("sin", "oscillating"), ("cos", "oscillating"),
])
def test_equilibrium_classes(formula, kind):
    assert equilibrium_branches(theory.activation(formula)).kind == kind


def test_gelu_inflections_are_plus_minus_sqrt2():
    # GELU'' = (2 - u^2) phi(u): closed form zeros at +-sqrt(2)
    eq = equilibrium_branches(theory.activation("gelu"))
    assert sorted(eq.inflections) == pytest.approx([-math.sqrt(2), math.sqrt(2)], abs=1e-10)


@pytest.mark.parametrize("ratio", [0.05, 0.3, 0.9])
def test_tanh_equilibria_closed_form(ratio):
    """sech^2 u = c  <=>  u = +-acosh(1/sqrt c); the stable one has sign(sigma'') = sign(A)."""
    expected = math.acosh(1 / math.sqrt(ratio))
    for A in (1.0, -1.0):
        eqs = gap_equilibria(theory.activation("tanh"), A, A * ratio)
        assert sorted(e.u for e in eqs) == pytest.approx([-expected, expected], abs=1e-10)
        stable = [e.u for e in eqs if e.stable]
        assert stable == pytest.approx([-expected if A > 0 else expected], abs=1e-10)


def test_softplus_equilibrium_is_logit_and_stable_iff_A_positive():
    for c in (0.1, 0.5, 0.8):
        for A in (2.0, -2.0):
            (eq,) = gap_equilibria(theory.activation("softplus"), A, A * c)
            assert eq.u == pytest.approx(math.log(c / (1 - c)), abs=1e-10)
            assert eq.stable == (A > 0)
    assert gap_equilibria(theory.activation("softplus"), 1.0, 1.5) == []      # B/A above max sigma'


def test_gelu_has_an_extra_pair_where_sigma_prime_overshoots():
    act = theory.activation("gelu")
    (inside,) = gap_equilibria_many(act, np.array([1.0]), np.array([0.5]))
    assert len(inside) == 1 and inside[0].stable
    overshoot = gap_equilibria(act, 1.0, 1.05)      # 1 < B/A < max sigma' = 1.129
    assert len(overshoot) == 2 and [e.stable for e in overshoot] == [True, False]


def test_gap_equilibria_rejects_degenerate_input():
    assert gap_equilibria(theory.activation("tanh"), 0.0, 1.0) == []
    assert gap_equilibria(theory.activation("tanh"), float("nan"), 1.0) == []


# ---- the derivation section ----------------------------------------------------------------

def test_derive_shows_the_adaptive_section():
    titles = [s.title for s in derive(theory.activation("relu")).sections]
    assert any("Adaptive regime" in t for t in titles)


@pytest.mark.parametrize("formula", ["relu", "tanh", "max(x, 0.3*x)", "x/(1+x^2)"])
def test_adaptive_section_for_builtins_and_formulas(formula):
    section = dynamics_section(theory.activation(formula), 1)
    text = " ".join(step.text for step in section.steps)
    assert "RS coordinates" in text and "Gap g" in text
    if formula in ("relu", "max(x, 0.3*x)"):
        assert "sign rule" in text
    else:
        assert "not homogeneous" in text.lower() or "Not homogeneous" in text


def test_derive_says_why_step_planes_do_not_move():
    section = dynamics_section(theory.activation("step"), 1)
    assert section.results["pinning_kind"] == "frozen"
    assert "do not move" in section.steps[-1].text


def test_bad_dimension_is_a_clear_error():
    from theory.rs_coordinates import neuron_symbols

    with pytest.raises(IbcheckError, match="positive integer"):
        neuron_symbols(0)


def test_sliding_classifies_arrays_of_pairs_as_it_classifies_each_pair():
    """Filippov classes (5.2) of many pairs at once equal the pairwise ones, boundaries included:
    a zero velocity on either side is neither attracting nor repelling."""
    minus = np.array([1.0, -1.0, 1.0, -1.0, 0.0, 1.0, 0.0])
    plus = np.array([-1.0, 1.0, 1.0, -1.0, -1.0, 0.0, 0.0])
    both = Sliding(minus, plus)
    assert both.attracting.tolist() == [True, False, False, False, False, False, False]
    assert both.repelling.tolist() == [False, True, False, False, False, False, False]
    for i in range(len(minus)):
        single = Sliding(float(minus[i]), float(plus[i]))
        assert (single.attracting, single.repelling) == (both.attracting[i], both.repelling[i])
