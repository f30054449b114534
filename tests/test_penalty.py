"""Spectral weight, null space and Radon operator against the notes' table and exact identities."""

import mpmath
import pytest
import sympy as sp

import theory
from theory.fourier import fourier_transform
from theory.penalty import (null_space_order, radon_operator, spectral_weight, spectral_weight_random_scale,
                            D_BETA)
from theory.symbols import omega as w
from theory.symbols import rho

pi = sp.pi

# W(omega) = 1/|sigma_hat|^2 at rho = 1, d = 1: the notes' table, typed in independently
WEIGHTS = {
    "relu": w**4,
    "leaky_relu(a=1/5)": w**4 / (1 - sp.Rational(1, 5)) ** 2,
    "abs": w**4 / 4,
    "step": w**2,
    "relu_k(k=3)": w**8 / sp.factorial(3) ** 2,
    "softplus": w**2 * sp.sinh(pi * w) ** 2 / pi**2,
    "softplus(beta=2)": 4 * w**2 * sp.sinh(pi * w / 2) ** 2 / pi**2,
    "sigmoid": sp.sinh(pi * w) ** 2 / pi**2,
    "tanh": sp.sinh(pi * w / 2) ** 2 / pi**2,
    "erf": w**2 * sp.exp(w**2 / 2) / 4,
    "gelu": w**4 * sp.exp(w**2) / (1 + w**2) ** 2,
    "silu": sp.sinh(pi * w) ** 4 / (pi**4 * sp.cosh(pi * w) ** 2),
    "elu(alpha=1/2)": w**4 * (1 + w**2) / (1 + (1 - sp.Rational(1, 2)) ** 2 * w**2),
    "gaussian": sp.exp(w**2) / (2 * pi),
}


@pytest.mark.parametrize("text,expected", WEIGHTS.items())
def test_spectral_weight_matches_table(text, expected):
    ft = fourier_transform(theory.activation(text))
    got = spectral_weight(ft, 1, bound=True)
    for f in (0.4, 1.3, 3.1):
        assert float(got.subs(w, f)) == pytest.approx(float(expected.subs(w, f)), rel=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_homogeneous_reduction_p2(dim):
    """P2: ReLU W = |omega|^(d+3); ReLU^k W = |omega|^(d+2k+1)/(k!)^2; leaky has (1-a)^-2."""
    relu = spectral_weight(fourier_transform(theory.activation("relu")), dim)
    assert sp.simplify(relu - w ** (dim + 3)) == 0
    k = 3
    rk = spectral_weight(fourier_transform(theory.activation("relu_k", k=k)), dim)
    assert sp.simplify(rk - w ** (dim + 2 * k + 1) / sp.factorial(k) ** 2) == 0
    leaky = spectral_weight(fourier_transform(theory.activation("leaky_relu")), dim)
    a = [s for s in leaky.free_symbols if s.name == "a"][0]
    assert sp.simplify(leaky - w ** (dim + 3) / (1 - a) ** 2) == 0


def test_rescaled_activation_moves_the_corner():
    """Fixed rho: W_rho(omega) = rho^2 / |sigma_hat(omega/rho)|^2 (tanh: sinh^2(pi omega/(2 rho)) rho^2/pi^2)."""
    got = spectral_weight(fourier_transform(theory.activation("tanh")), 1, rho=rho)
    assert sp.simplify(got - rho**2 * sp.sinh(pi * w / (2 * rho)) ** 2 / pi**2) == 0


# null space order m: polynomials of degree < m are free (notes 2.3)
NULL_SPACE = {"relu": 2, "abs": 2, "leaky_relu": 2, "relu_k(k=3)": 4, "step": 1, "softplus": 2, "sigmoid": 1,
              "tanh": 1, "erf": 1, "gelu": 2, "silu": 2, "elu": 2, "gaussian": 0, "x/(1+abs(x))": 1}


@pytest.mark.parametrize("text,m", NULL_SPACE.items())
def test_null_space_order(text, m):
    assert null_space_order(fourier_transform(theory.activation(text))) == m


def test_null_space_fallback_agrees_with_limit():
    """The asymptote rule m = 1 + deg(p+ - p-) agrees with the exact limit on every built-in."""
    for name in ["relu", "tanh", "gelu", "gaussian", "step", "abs", "elu", "sigmoid"]:
        ft = fourier_transform(theory.activation(name))
        p_minus, p_plus = ft.asymptotes
        gap = sp.expand((p_plus - p_minus).subs(ft.activation.substitutions()))
        rule = 0 if gap == 0 else sp.degree(gap, theory.activations.X) + 1
        assert rule == null_space_order(ft)


@pytest.mark.parametrize("text,operator", [
    ("relu", D_BETA**2), ("abs", D_BETA**2 / 2), ("relu_k(k=2)", D_BETA**3 / 2), ("step", D_BETA),
])
def test_radon_operator_of_homogeneous_activations_is_local(text, operator):
    """For t_+^k, 1/sigma_hat = (i t)^(k+1)/k!, i.e. d^(k+1)/d beta^(k+1) / k! (notes 2.2)."""
    op = radon_operator(fourier_transform(theory.activation(text)), 1)
    assert sp.simplify(op.differential - operator) == 0


def test_radon_operator_relu_in_three_dimensions_is_ongies():
    """d = 3: c-bar = -gamma_d R{(-Delta)^2 f}: the symbol |t|^2/sigma_hat = -t^4, i.e. -d^4/d beta^4."""
    op = radon_operator(fourier_transform(theory.activation("relu")), 3)
    assert sp.simplify(op.differential + D_BETA**4) == 0


def test_radon_operator_of_smooth_activation_is_nonlocal():
    op = radon_operator(fourier_transform(theory.activation("tanh")), 1)
    assert op.differential is None and "non-local" in op.description


def test_random_scale_homogeneous_uses_the_moment():
    """ReLU with rho ~ U(0, 2): S(t) = |sigma_hat(t)|^2 E[rho^2] = (4/3)/t^4, checked by quadrature
    of the definition S(t) = int rho^-2 |sigma_hat(t/rho)|^2 q(rho) drho."""
    ft = fourier_transform(theory.activation("relu"))
    result = spectral_weight_random_scale(ft, sp.Rational(1, 2), (0, 2))
    direct = mpmath.quad(lambda r: r**-2 * (r / 1.7) ** 4 / 2, [0, 2])  # |sigma_hat(t/r)|^2 = r^4/t^4
    assert result.numeric(1.7) == pytest.approx(1.7**0 / float(direct), rel=1e-12)
    assert sp.simplify(result.expr - sp.Rational(3, 4) * w**4) == 0


def test_random_scale_numerical_route_matches_definition():
    """tanh with rho ~ U(1, 3): the numerical S(t) equals the quadrature of its definition."""
    ft = fourier_transform(theory.activation("tanh"))
    result = spectral_weight_random_scale(ft, sp.Rational(1, 2), (1, 3))
    t = 2.0
    s = mpmath.quad(lambda r: r**-2 * (mpmath.pi / mpmath.sinh(mpmath.pi * t / r / 2)) ** 2 / 2, [1, 3])
    assert result.numeric(t) == pytest.approx(float(1 / s), rel=1e-10)


def test_point_mass_activations_have_infinite_weight():
    assert spectral_weight(fourier_transform(theory.activation("sin")), 1) == sp.oo


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("z", [0.3j, -2.5j, 40j, 1 + 1j, 7.0])
def test_numpy_exponential_integral_matches_mpmath(order, z):
    from theory.penalty import _expint
    # scipy's E_1 is good to a few ulps (1.1e-15 seen at -2.5i); each step of the upward
    # recurrence cancels ~|z| ulps more: |z|^(n-1) x 1e-14
    reference = complex(mpmath.expint(order, z))
    assert abs(_expint(order, z) - reference) <= max(1.0, abs(z)) ** (order - 1) * 1e-14 * abs(reference)


@pytest.mark.parametrize("text", ["x/(1+abs(x))", "tanh", "relu", "gelu", "softplus"])
def test_fast_squared_magnitude_matches_mpmath_closed_form(text):
    """The numeric |sigma_hat|^2 used by the kernels against 30-digit mpmath evaluation of the
    closed form (softsign needs the complex exponential-integral path)."""
    from theory.penalty import squared_magnitude_numeric
    ft = fourier_transform(theory.activation(text))
    fast = squared_magnitude_numeric(ft)
    regular = sp.lambdify(w, ft.regular_bound, modules="mpmath")
    with mpmath.workdps(30):
        for omega in (0.013, 0.41, 1.7, 9.0, 33.0):
            exact = float(abs(regular(mpmath.mpf(omega))) ** 2)
            # float64 evaluation; cancellation in E_2 at omega ~ 30 costs ~omega^2 ulps
            assert fast(omega) == pytest.approx(exact, rel=1e-10)


def test_fast_magnitude_is_checked_against_thirty_digits():
    """relu(x/3 - 2) e^{-x^2}: its right closed form cancels terms of size e^{36} down to
    |sigma_hat| ~ 1e-16 when evaluated in double precision (the fuzz reference called it wrong);
    the numeric |sigma_hat|^2 that numerics uses (a fast path only where it matches 30 digits)
    must match the transform's independent 30-digit quadrature (float rounding: 1e-12)."""
    from theory.penalty import squared_magnitude_numeric

    ft = fourier_transform(theory.activation("relu(1/3*x-2)*exp(-x^2)"))
    magnitude = squared_magnitude_numeric(ft)
    for w in (0.45, 1.1, 2.5):
        assert magnitude(w) == pytest.approx(abs(ft.reference(w)) ** 2, rel=1e-12)
