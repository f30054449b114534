"""Infinite-width kernels against the notes' closed forms and direct autocorrelation quadrature;
the 1D ReLU curvature weight against J&M's published formulas."""

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sps
import sympy as sp

import theory
from theory.fourier import fourier_transform
from theory.kernels import (gaussian_density, kernel, relu_curvature_weight, uniform_curvature_weight,
                            verify_kernel)
from theory.symbols import D, x

OFFSETS = np.array([0.2, 0.5, 0.9, 1.4, 2.0, 2.7, 3.5])


def _equal_modulo_gauge(got, want, m, rtol):
    """got - want is an even polynomial of degree <= 2m - 2 (the CPD gauge): fit it and compare."""
    basis = np.stack([OFFSETS ** (2 * j) for j in range(m)], axis=1) if m else np.zeros((len(OFFSETS), 0))
    diff = got - want
    if basis.shape[1]:
        coef, *_ = np.linalg.lstsq(basis, diff, rcond=None)
        diff = diff - basis @ coef
    assert np.max(np.abs(diff)) <= rtol * np.max(np.abs(want - want.mean()))


# the notes' closed forms (section 3, "closed-form infinite-width kernels"), at rho = 1
PUBLISHED = {
    "relu": lambda d: np.abs(d) ** 3 / 12,
    "tanh": lambda d: -2 * d / np.tanh(d),
    "erf": lambda d: -2 * (d * sps.erf(d / np.sqrt(2)) + np.sqrt(2 / np.pi) * np.exp(-d**2 / 2)),
    "exp(-x)*heaviside(x)": lambda d: np.exp(-np.abs(d)) / 2,
    "exp(-abs(x))/2": lambda d: (1 + np.abs(d)) * np.exp(-np.abs(d)) / 4,
    "x*exp(-x)*heaviside(x)": lambda d: (1 + np.abs(d)) * np.exp(-np.abs(d)) / 4,
}


@pytest.mark.parametrize("text,reference", PUBLISHED.items())
def test_kernel_matches_published_closed_form(text, reference):
    k = kernel(fourier_transform(theory.activation(text)))
    assert k.expr is not None, k.how
    _equal_modulo_gauge(k(OFFSETS), reference(OFFSETS), k.order, 1e-10)


@pytest.mark.parametrize("text", ["gaussian", "exp(-abs(x))/2", "x*exp(-x^2)"])
def test_integrable_activation_kernel_is_its_autocorrelation(text):
    """Independent route for integrable sigma: k(D) = int sigma(u) sigma(u + D) du by scipy quad."""
    act = theory.activation(text)
    f = act.numeric("numpy")
    k = kernel(fourier_transform(act))
    direct = np.array([si.quad(lambda u: float(f(np.float64(u)) * f(np.float64(u + d))), -np.inf, np.inf,
                               epsabs=1e-13, epsrel=1e-12)[0] for d in OFFSETS])
    np.testing.assert_allclose(k(OFFSETS), direct, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "step", "sigmoid", "tanh", "erf", "gelu", "elu",
                                  "gaussian"])
def test_closed_form_kernels_are_verified(name):
    k = kernel(fourier_transform(theory.activation(name)))
    assert k.expr is not None and k.verification["passed"], (k.how, k.verification)


def test_rho_scaling():
    """k_rho(D) = k(rho D)/rho: for ReLU (homogeneous) this is rho^2 |D|^3/12."""
    k = kernel(fourier_transform(theory.activation("relu")))
    np.testing.assert_allclose(k(OFFSETS, rho=2.0), 4 * np.abs(OFFSETS) ** 3 / 12, rtol=1e-14)


def test_numerical_kernel_satisfies_the_autocorrelation_identity():
    """softplus has no closed kernel here; its numerical kernel must still satisfy the gauge-free
    identity k'''' = A_2 (autocorrelation of softplus'' = logistic'), checked by finite differences
    of the numerical kernel against direct quadrature of the autocorrelation."""
    act = theory.activation("softplus")
    k = kernel(fourier_transform(act))
    s2 = theory.activation("1/(4*cosh(x/2)^2)").numeric("numpy")
    h = 0.05
    for d in (0.8, 1.6):
        grid = d + h * np.arange(-2, 3)
        values = k(grid)
        fourth = (values[0] - 4 * values[1] + 6 * values[2] - 4 * values[3] + values[4]) / h**4
        autocorr = si.quad(lambda u: float(s2(np.float64(u)) * s2(np.float64(u + d))), -60, 60, limit=200)[0]
        # central 4th difference: O(h^2) truncation (~1e-3 relative here) plus quadrature noise / h^4
        assert fourth == pytest.approx(autocorr, rel=2e-2)


def test_verify_kernel_detects_a_wrong_closed_form():
    k = kernel(fourier_transform(theory.activation("relu")))
    wrong = verify_kernel(sp.Abs(D) ** 3 / 12 + sp.Abs(D), k.numeric, k.order)
    assert not wrong["passed"]


def test_uniform_curvature_weight_matches_published_and_quadrature():
    """zeta(x) = min(a_w, a_b/|x|)^4/(8 a_w a_b) (J&M), and the definition by quadrature."""
    a_w, a_b = sp.Rational(3, 2), sp.Rational(1, 2)
    zeta = uniform_curvature_weight(a_w, a_b)
    for xv in (0.1, 0.3, 0.7, 2.0):
        published = min(1.5, 0.5 / xv) ** 4 / (8 * 1.5 * 0.5)
        # int |w|^3 p(w, -w x) dw with p = 1/(4 a_w a_b) on the box
        direct = si.quad(lambda ww: abs(ww) ** 3 / (4 * 1.5 * 0.5) * (abs(ww * xv) <= 0.5), -1.5, 1.5,
                         points=[-0.5 / xv, 0.5 / xv] if 0.5 / xv < 1.5 else None, limit=200)[0]
        got = float(zeta.subs(x, xv))
        assert got == pytest.approx(published, rel=1e-12)
        assert got == pytest.approx(direct, rel=1e-8)


def test_gaussian_curvature_weight_matches_published():
    """zeta(x) = (2 s_w^3 s_b^3/pi)/(s_b^2 + s_w^2 x^2)^2 (notes 2.4, re-derived J&M)."""
    s_w, s_b = sp.Rational(1, 1), sp.Rational(3, 2)
    zeta = relu_curvature_weight(gaussian_density(s_w, s_b))
    published = (2 * s_w**3 * s_b**3 / sp.pi) / (s_b**2 + s_w**2 * x**2) ** 2
    for xv in (-1.3, 0.0, 0.4, 2.5):
        assert float(zeta.subs(x, xv)) == pytest.approx(float(published.subs(x, xv)), rel=1e-12)


def test_band_limited_activation_has_no_kernel():
    with pytest.raises(theory.Unsupported):
        kernel(fourier_transform(theory.activation("sin")))
