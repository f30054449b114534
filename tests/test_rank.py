"""theory.rank against the closed forms of stable_rank.md (Sec. 2-3), against independent
quadrature/root finding on hand-written sigma', and against explicit matrix computations."""

import math

import numpy as np
import pytest
import scipy.integrate as si
import scipy.optimize as so
import scipy.special as sps
import scipy.stats as st
import sympy as sp

import theory
from theory import rank
from theory.errors import IbcheckError, Unsupported

MISH = "x*tanh(log(1+exp(x)))"

# (activation, s+, s-) by hand: the limits of sigma' at +-infinity
SLOPES = [
    ("relu", 1, 0), ("leaky_relu", 1, sp.Rational(1, 10)), ("softplus", 1, 0), ("elu", 1, 0), ("silu", 1, 0),
    ("gelu", 1, 0), ("abs", 1, -1), ("sigmoid", 0, 0), ("exp", sp.oo, 0), (MISH, 1, 0), ("x", 1, 1),
]


@pytest.mark.parametrize("text,plus,minus", SLOPES)
def test_slopes(text, plus, minus):
    assert rank.slopes(theory.activation(text)) == (plus, minus)


def test_slopes_undefined_for_oscillating_sigma():
    assert rank.slopes(theory.activation("sin")) == (None, None)


def test_kernel_factors_leaky():
    # notes Sec. 2.1: K(same) = 1 + gamma^2, K(different) = 2 gamma
    k_same, k_diff = rank.margin_kernel_factors(theory.activation("leaky_relu", a=sp.Rational(1, 5)))
    assert (k_same, k_diff) == (1 + sp.Rational(1, 25), sp.Rational(2, 5))


# ---- the barrier z*: hand-written sigma' and scipy's brentq as the independent route
def _silu_prime(z):
    s = sps.expit(z)
    return s * (1 + z * (1 - s))


def _gelu_prime(z):
    return st.norm.cdf(z) + z * st.norm.pdf(z)


def _mish_prime(z, h=1e-6):  # central difference of the formula itself
    f = lambda u: u * np.tanh(np.logaddexp(0, u))
    return (f(z + h) - f(z - h)) / (2 * h)


@pytest.mark.parametrize("text,derivative,bracket,published", [
    ("silu", _silu_prime, (-2, -1), -1.27846),    # notes Sec. 3
    ("gelu", _gelu_prime, (-1, -0.5), -0.75179),
    (MISH, _mish_prime, (-2, -0.5), None),
])
def test_barrier_matches_brentq(text, derivative, bracket, published):
    z_star = rank.barrier(theory.activation(text))
    reference = so.brentq(derivative, *bracket, xtol=1e-14)
    assert abs(z_star - reference) < 1e-9  # bisection to ~1e-15; the mish difference quotient ~1e-10
    if published is not None:
        assert abs(z_star - published) < 1e-5  # the notes give 5 decimals


@pytest.mark.parametrize("text,lower", [("relu", 0.0), ("leaky_relu", -math.inf), ("softplus", -math.inf),
                                        ("elu", -math.inf), ("tanh", -math.inf)])
def test_barrier_values(text, lower):
    assert rank.barrier(theory.activation(text)) == lower


def test_positive_interval_rejects_decreasing_and_jumps():
    with pytest.raises(Unsupported, match="not increasing"):
        rank.positive_interval(theory.activation("gaussian"))
    with pytest.raises(Unsupported, match="point masses"):
        rank.positive_interval(theory.activation("step"))


# ---- flow time tau(z) = int_0^z du / sigma'(u)
@pytest.mark.parametrize("text,params,reference", [
    ("softplus", {}, lambda z: 1 + z - np.exp(-z)),                             # notes Sec. 3
    ("softplus", {"beta": 2}, lambda z: z + (1 - np.exp(-2 * z)) / 2),          # 1/sigma' = 1 + e^{-2z}
    ("elu", {}, lambda z: np.where(z < 0, 1 - np.exp(-z), z)),                  # notes Sec. 3
    ("elu", {"alpha": 2}, lambda z: np.where(z < 0, (1 - np.exp(-z)) / 2, z)),
    ("leaky_relu", {"a": sp.Rational(1, 4)}, lambda z: np.where(z < 0, 4 * z, z)),
])
def test_flow_time_closed_forms(text, params, reference):
    tau = rank.flow_time(theory.activation(text, **params))
    assert tau.expr is not None
    z = np.array([-3.0, -0.7, -0.01, 0.0, 0.3, 2.0, 9.0])
    assert np.allclose(tau(z), reference(z), rtol=1e-12, atol=1e-12)
    assert np.allclose(tau.inverse(tau(z)), z, atol=1e-9)


@pytest.mark.parametrize("text,derivative", [("silu", _silu_prime), ("gelu", _gelu_prime)])
def test_flow_time_numerical_against_scipy_quad(text, derivative):
    act = theory.activation(text)
    tau = rank.flow_time(act)
    assert tau.expr is None and "numerical" in tau.how
    for z in (-0.6, -0.2, 0.4, 1.5, 6.0):
        if z <= tau.lower:
            continue
        reference = si.quad(lambda u: 1 / derivative(u), 0, z, epsabs=1e-13, epsrel=1e-12)[0]
        assert abs(tau(np.array([z]))[0] - reference) < 1e-8 * max(1, abs(reference))  # Gauss-Legendre panels
        assert abs(float(tau.mp(z)) - reference) < 1e-10 * max(1, abs(reference))
    # inverse: linear interpolation on ~20000 nodes (step 1e-3 near 0): error ~ h^2 tau''/8
    z = np.array([-0.5, 0.1, 3.0, 25.0])
    assert np.allclose(tau.inverse(tau(z)), z, atol=1e-6)


def test_flow_time_diverges_at_the_barrier():
    act = theory.activation("silu")
    tau = rank.flow_time(act)
    z_star = rank.barrier(act)
    near = tau(np.array([z_star + 1e-3, z_star + 1e-6]))
    # tau ~ log(z - z*)/sigma''(z*): another 3 decades cost ln(1000)/0.218 ~ 32 more flow time
    assert near[1] < near[0] - 25
    assert tau(np.array([z_star - 0.1]))[0] == -np.inf
    assert tau.inverse(np.array([-1e6]))[0] == z_star


def test_flow_time_relu_reaches_zero_in_finite_time():
    tau = rank.flow_time(theory.activation("relu"))
    assert tau(np.array([-0.5]))[0] == -np.inf and tau(np.array([2.0]))[0] == 2.0
    assert tau.inverse(np.array([-3.0]))[0] == 0.0


# ---- Gaussian moments, one-step stable rank, offsets
def test_moments_leaky_closed_form():
    act = theory.activation("leaky_relu", a=sp.Rational(1, 10))
    mu, nu = rank.gaussian_moments(act, 0.7)
    assert abs(mu - 0.55) < 1e-12 and abs(nu - 0.505) < 1e-12  # (1+g)/2, (1+g^2)/2 (notes Sec. 2.3)
    sym_mu, sym_nu = rank.gaussian_moments_symbolic(act)
    assert (sym_mu, sym_nu) == (sp.Rational(11, 20), sp.Rational(101, 200))


@pytest.mark.parametrize("text,derivative", [("softplus", sps.expit), ("silu", _silu_prime), ("gelu", _gelu_prime)])
def test_moments_against_scipy_quad(text, derivative):
    v = 1.3
    mu, nu = rank.gaussian_moments(theory.activation(text), v)
    ref_mu = si.quad(lambda t: derivative(v * t) * st.norm.pdf(t), -12, 12, epsabs=1e-13)[0]
    ref_nu = si.quad(lambda t: derivative(v * t) ** 2 * st.norm.pdf(t), -12, 12, epsabs=1e-13)[0]
    assert abs(mu - ref_mu) < 1e-10 and abs(nu - ref_nu) < 1e-10


def test_moments_reject_bad_scale():
    with pytest.raises(IbcheckError, match="positive"):
        rank.gaussian_moments(theory.activation("relu"), 0.0)


@pytest.mark.parametrize("gamma,n,published", [(0.1, 50, 1.647), (0.5, 50, 1.109), (0.0, 50, 1.961),
                                               (0.1, 10, 1.565)])
def test_one_step_stable_rank_published(gamma, n, published):
    # notes Sec. 2.3 table and P15; leaky closed form 2n(1+g^2)/(n(1+g)^2 + (1-g)^2)
    mu, nu = (1 + gamma) / 2, (1 + gamma**2) / 2
    value = rank.one_step_stable_rank(mu, nu, n)
    closed = 2 * n * (1 + gamma**2) / (n * (1 + gamma) ** 2 + (1 - gamma) ** 2)
    assert abs(value - closed) < 1e-12 and abs(value - published) < 1e-3


def test_one_step_is_the_expected_gram_ratio():
    # E[S^T S]/m = (nu - mu^2) I + mu^2 11^T: sr = trace/lambda_max computed from the matrix itself
    mu, nu, n = 0.3, 0.2, 7
    gram = (nu - mu**2) * np.eye(n) + mu**2 * np.ones((n, n))
    assert abs(rank.one_step_stable_rank(mu, nu, n) - rank.gram_stable_rank(gram)) < 1e-12


def _spiked_grams(rng, count, size, spike):
    """Grams A A^T of (size x 2 size) Gaussian matrices with a common direction added to every row
    (weight ``spike``): sr near 1 for a large spike, near size/4 (Wishart) without one."""
    a = rng.standard_normal((count, size, 2 * size)) + spike * rng.standard_normal((count, 1, 2 * size))
    return a @ np.swapaxes(a, 1, 2)


def test_gram_stable_rank_power_route_against_all_eigenvalues():
    # the certified power iteration (sr < 2) and dsyevr (the rest) against numpy's eigvalsh (syevd,
    # all eigenvalues, another LAPACK route); both are backward stable, so the largest eigenvalue is
    # within ~size * eps * ||A|| of the exact one: 1e-13 relative covers size 60 with margin (seen:
    # 2e-15); the batch mixes spiked (power route), Wishart (fallback) and rank-one Grams
    rng = np.random.default_rng(1)
    rank_one = rng.standard_normal((3, 60, 1))
    grams = np.concatenate([_spiked_grams(rng, 20, 60, 3.0), _spiked_grams(rng, 5, 60, 0.0),
                            _spiked_grams(rng, 5, 60, 0.3), rank_one @ np.swapaxes(rank_one, 1, 2)])
    expected = np.trace(grams, axis1=1, axis2=2) / np.linalg.eigvalsh(grams)[:, -1]
    found = rank.gram_stable_rank(grams)
    assert np.all(np.abs(found - expected) <= 1e-13 * expected)
    assert np.all(expected[:20] < 2) and np.all(expected[20:25] > 2)        # both routes are exercised
    trace = np.trace(grams, axis1=1, axis2=2)
    power = rank._dominant_eigenvalues(grams, trace)
    assert np.all(np.isfinite(power[:20])) and np.all(np.isnan(power[20:25]))
    assert np.all(np.abs(found[-3:] - 1) < 1e-13)                           # rank one: sr = 1


def test_dominant_eigenvalues_never_certify_below_half_the_trace():
    # two equal top eigenvalues (sr = 2): no certificate exists, the power route must leave it to dsyevr;
    # lambda_2 / lambda_1 = 0.95 (sr 1.95): too slow to certify in POWER_ITERATIONS steps -> dsyevr;
    # a dominant eigenvalue is certified from above: lambda_1 - theta <= 2 eps theta
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((8, 8)))
    spectra = [[1.0, 1.0, 0, 0, 0, 0, 0, 0], [1.0, 0.95, 0, 0, 0, 0, 0, 0], [1.0, 0.3, 0.2, 0.1, 0, 0, 0, 0]]
    grams = np.stack([(q * np.array(s)) @ q.T for s in spectra])
    power = rank._dominant_eigenvalues(grams, np.trace(grams, axis1=1, axis2=2))
    assert np.isnan(power[0]) and np.isnan(power[1])
    assert abs(1.0 - power[2]) <= 1e-14                                  # (the matrix itself is rounded)
    assert np.allclose(rank.gram_stable_rank(grams), [2.0, 1.95, 1.6], rtol=1e-13, atol=0)


def test_gram_stable_rank_non_finite_and_zero():
    # NaN where a Gram is not finite or zero (0/0), as for a single matrix; the others unaffected
    rng = np.random.default_rng(3)
    grams = _spiked_grams(rng, 6, 10, 3.0)
    grams[1, 0, 0] = np.nan
    grams[2] = 0.0
    with np.errstate(invalid="ignore"):
        found = rank.gram_stable_rank(grams)
    assert np.isnan(found[1]) and np.isnan(found[2])
    keep = [0, 3, 4, 5]
    expected = np.trace(grams[keep], axis1=1, axis2=2) / np.linalg.eigvalsh(grams[keep])[:, -1]
    assert np.allclose(found[keep], expected, rtol=1e-13, atol=0)


def test_offset_moments_leaky_closed_form():
    g, v = 0.1, 0.8
    moments = rank.offset_moments(theory.activation("leaky_relu", a=sp.Rational(1, 10)), v)
    mean = math.sqrt(2) * v * (g - 1) / (2 * math.sqrt(math.pi) * g)                     # notes Sec. 3
    var_own = v**2 * (math.pi * g**2 - g**2 + 2 * g + math.pi - 1) / (2 * math.pi * g**2)
    assert abs(moments["mean_tau"] - mean) < 1e-9 and abs(moments["var_own"] - var_own) < 1e-8
    assert abs(var_own / v**2 - 37.6) < 0.05                                             # "37.6 v^2 at 0.1"


def test_offset_moments_softplus_against_quad():
    v = 0.5
    moments = rank.offset_moments(theory.activation("softplus"), v)
    tau = lambda z: 1 + z - np.exp(-z)
    mean = si.quad(lambda t: tau(v * t) * st.norm.pdf(t), -12, 12)[0]
    second = si.quad(lambda t: tau(v * t) ** 2 * st.norm.pdf(t), -12, 12)[0]
    assert abs(moments["mean_tau"] - mean) < 1e-9 and abs(moments["var_tau"] - (second - mean**2)) < 1e-9


def test_offset_moments_infinite_behind_a_barrier():
    assert rank.offset_moments(theory.activation("relu"), 0.1)["var_own"] == math.inf


# ---- full-matrix limit and the attractor verdict
@pytest.mark.parametrize("gamma,published", [(sp.Rational(1, 10), 1.669), (sp.Rational(1, 2), 1.111)])
def test_full_matrix_limit_published(gamma, published):
    value = rank.full_matrix_limit(theory.activation("leaky_relu", a=gamma), 5, 5)
    assert value == 1 + ((1 - gamma) / (1 + gamma)) ** 2       # notes Sec. 1.1
    assert abs(float(value) - published) < 1e-3


def test_full_matrix_limit_unbalanced_against_explicit_rows():
    # rows v_+ and v_- on orthonormal inputs: own-class coefficient s+, other-class -s- (notes Sec. 3)
    s_plus, s_minus, n_pos, n_neg = 1.0, 0.3, 3, 7
    y = np.array([1.0] * n_pos + [-1.0] * n_neg)
    rows = [np.where(y == j, s_plus, s_minus) * j * y for j in (1.0, -1.0)]
    value = rank.full_matrix_formula().subs({sp.Symbol("s_+", positive=True): s_plus,
                                             sp.Symbol("s_-", positive=True): s_minus,
                                             sp.Symbol("n_+", positive=True): n_pos,
                                             sp.Symbol("n_-", positive=True): n_neg})
    assert abs(float(value) - rank.stable_rank(np.array(rows))) < 1e-12


def test_attractor_verdicts():
    assert rank.rank_one_attractor(theory.activation("leaky_relu")).holds is True
    relu = rank.rank_one_attractor(theory.activation("relu"))
    assert relu.holds is False and "masks" in relu.reason and "tau is infinite" in relu.reason
    assert rank.rank_one_attractor(theory.activation("sigmoid")).holds is False
    assert rank.rank_one_attractor(theory.activation("sin")).holds is None
    assert rank.rank_one_attractor(theory.activation("step")).holds is None
    assert rank.rank_one_attractor(theory.activation("exp")).holds is None


@pytest.mark.parametrize("text,population", [("silu", 0.197), ("gelu", 0.308)])
def test_attractor_depends_on_init_scale(text, population):
    act = theory.activation(text)
    assert rank.rank_one_attractor(act, 0.05).holds is True            # v = 0.05: P(z0 < z*) ~ 1e-100
    wide = rank.rank_one_attractor(act, 1.5)
    assert wide.holds is False and abs(wide.blocked_fraction - population) < 1e-3   # notes Sec. 3 at v = 1.5
    assert abs(wide.blocked_fraction - st.norm.cdf(rank.barrier(act) / 1.5)) < 1e-12


# ---- quantities given training data
def _orthogonal(n=6, d=12, seed=1):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    norms = rng.uniform(1.0, 2.0, n)
    x = q.T * norms[:, None]
    y = np.array([1.0, -1.0] * (n // 2))
    return x, y, norms


def test_loss_constant_and_offsets_on_orthogonal_data():
    x, y, norms = _orthogonal()
    k_same, k_diff, m, eta = 1.01, 0.2, 50, 3.0
    g = rank.margin_kernel(x, y, k_same, k_diff)
    # notes Sec. 2.1: constant (m/(eta K_same)) sum ||x_i||^-2; offsets log(eta/(nm)) + log(K_same ||x_i||^2)
    assert abs(rank.loss_constant(g, m, eta) - m / (eta * k_same) * np.sum(norms**-2.0)) < 1e-12
    offsets = rank.margin_offsets(g, len(y), m, eta)
    assert np.allclose(offsets, math.log(eta / (len(y) * m)) + np.log(k_same * norms**2))
    z = rank.implicit_linear_predictor(g, x, y)
    assert np.allclose(z, ((y / (k_same * norms**2))[:, None] * x).sum(axis=0))


def test_pattern_kernel_reduces_to_the_slope_kernel():
    x, y, _ = _orthogonal(8, 20)
    x = x + 0.05 * np.random.default_rng(0).standard_normal(x.shape)  # not orthogonal
    m, g = 4, 0.2
    classes = np.repeat([1.0, -1.0], m)
    slopes = np.where(classes[:, None] == y[None, :], 1.0, g)
    assert np.allclose(rank.pattern_kernel(x, y, slopes, m), rank.margin_kernel(x, y, 1 + g**2, 2 * g))


def test_margin_offsets_need_support_vectors():
    x = np.array([[1.0, 0.0], [0.9, 0.1]])
    g = rank.margin_kernel(x, np.array([1.0, 1.0]), 1.0, 0.0)
    with pytest.raises(IbcheckError, match="support vector"):
        rank.margin_offsets(g, 2, 10, 1.0)


def test_two_row_limit_matches_the_orthogonal_formula():
    x, y, _ = _orthogonal()
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    gamma = 0.1
    g = rank.margin_kernel(x, y, 1 + gamma**2, 2 * gamma)
    assert abs(rank.two_row_limit(x, y, g, 1.0, gamma) - 2 * (1 + gamma**2) / (1 + gamma) ** 2) < 1e-12


def test_mask_stable_rank_extremes():
    norms = np.ones(5)
    assert abs(rank.mask_stable_rank(np.ones((4, 5), bool), norms) - 1) < 1e-12      # every neuron on every sample
    assert abs(rank.mask_stable_rank(np.eye(5, dtype=bool), norms) - 5) < 1e-12      # one neuron per sample
    with pytest.raises(IbcheckError, match="no active"):
        rank.mask_stable_rank(np.zeros((3, 2), bool), np.ones(2))


def test_flow_prediction_clock_for_the_identity():
    # sigma(x) = x: q = q0 + 2 Lambda (sum |a_r| = 2), so dLambda/dt = c/(1 + e^q) integrates to
    # t = (Lambda + (e^{q0 + 2 Lambda} - e^{q0})/2)/c; compare the predicted clocks with this inverse
    act = theory.activation("x")
    rng = np.random.default_rng(3)
    m, n, d = 3, 2, 10.0
    a = np.repeat([1.0 / m, -1.0 / m], m)
    y = np.array([1.0, -1.0])
    z0 = 0.01 * rng.standard_normal((2 * m, n))
    eta, steps = 0.4, np.array([1.0, 10.0, 300.0])
    pred = rank.flow_offset_prediction(act, z0, a, y, np.full(n, d), eta, steps, np.zeros((2 * m, 2 * m)),
                                       grid=20000)
    q0 = y * (a @ z0)
    c = eta * (1 / m) * d / n
    def elapsed(lam, start):
        return (lam + (np.exp(start + 2 * lam) - np.exp(start)) / 2) / c

    for i in range(n):
        lam = np.array([so.brentq(lambda u, t=t, i=i: elapsed(u, q0[i]) - t, 0, 50) for t in steps])
        assert np.allclose(pred.clocks[:, i], lam, rtol=1e-6)  # trapezoid on 20000 points
    assert np.allclose(pred.margins, q0 + 2 * pred.clocks, atol=1e-9)


# ---- the derivation section
def test_derivation_section_for_leaky():
    result = theory.derive(theory.activation("leaky_relu"))
    titles = [s.title for s in result.sections]
    section = next(s for s in result.sections if s.title.startswith("Stable rank"))
    assert section.results["rank_one_attractor"] is True
    assert section.results["full_matrix_limit_balanced"] == sp.Rational(202, 121)
    assert section.results["one_step_stable_rank"] == sp.simplify(
        2 * sp.Symbol("n", positive=True) * sp.Rational(101, 100)
        / (sp.Symbol("n", positive=True) * sp.Rational(121, 100) + sp.Rational(81, 100)))
    assert any("Stable rank" in t for t in titles)
    assert "flow time" in result.to_text().lower()


@pytest.mark.parametrize("text,fragment", [("relu", "masks"), ("sin", "no limit"), ("step", "point masses"),
                                           ("silu", "z*")])
def test_derivation_section_explains(text, fragment):
    section = rank.rank_section(theory.activation(text), 1)
    assert fragment in " ".join(step.text for step in section.steps)
