r"""The kernel-regime spectral penalty of an activation (spectral_bias.md, sections 2.2-2.3).

With directions uniform on :math:`S^{d-1}`, flat offsets and first-layer norm :math:`\rho`,
the random-feature kernel regime minimizes
:math:`J_\sigma[f] = C_d \int |\hat f(\omega)|^2 W(|\omega|)\,d\omega` over interpolants, with

.. math::
   W(t) = \frac{|t|^{d-1}}{S(t)}, \qquad
   S(t) = \int \rho^{-2}\,|\hat\sigma(t/\rho)|^2\, q_R(\rho)\,d\rho ,

which for a fixed :math:`\rho` is :math:`W(t) = |t|^{d-1}\rho^2/|\hat\sigma(t/\rho)|^2` and for
:math:`\rho = 1` the headline :math:`W(\omega) = |\omega|^{d-1}/|\hat\sigma(\omega)|^2`.

* Null space: if :math:`|\hat\sigma(t)|^2 \sim c|t|^{-2m}` near 0 (d = 1), W vanishes like
  :math:`t^{2m}` and the seminorm does not see polynomials of degree < m (ReLU m = 2,
  tanh m = 1, Gaussian m = 0).
* Radon-domain operator :math:`D_\sigma^{-1}\Lambda^{d-1}`: the Fourier multiplier
  :math:`|t|^{d-1}/\hat\sigma(t)` in the offset variable :math:`\beta`; for a positively
  k-homogeneous :math:`\sigma` it is a local differential operator (ReLU:
  :math:`\partial_\beta^2` in d = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np
import sympy as sp

from .errors import IbcheckError, TimeLimitExceeded, Unsupported
from .evaluation import compile_expression
from .fourier import VERIFICATION_TOLERANCE, FourierResult
from .symbolic import cached_limit, tidy
from .symbols import omega as W
from .symbols import x as X
from .symbols import rho as RHO
from .timeouts import time_limit

TAU = sp.Symbol("t", positive=True)


def squared_magnitude(ft: FourierResult, bound: bool = False) -> sp.Expr:
    r""":math:`|\hat\sigma(\omega)|^2` for :math:`\omega > 0` (regular part), simplified."""
    regular = ft.regular_bound if bound else ft.regular
    if regular is None:
        raise Unsupported(f"{ft.activation.label}: no closed-form transform ({ft.reason})")
    real, imag = (sp.expand_complex(regular).as_real_imag())
    return tidy(real**2 + imag**2, W, thorough=True)


def _tabulated_squared_magnitude(ft: FourierResult, lo: float = 1e-3, hi: float = 60.0, n: int = 160):
    r""":math:`|\hat\sigma|^2` sampled on a log grid (sympy/mpmath evaluation, 12 digits) and
    interpolated in log-log coordinates, with power-law extension beyond the grid."""
    ws = np.geomspace(lo, hi, n)
    logs = np.log([max(abs(ft.regular_numeric(float(w), dps=12)) ** 2, 1e-300) for w in ws])
    lw = np.log(ws)
    slope_lo = (logs[1] - logs[0]) / (lw[1] - lw[0])
    slope_hi = (logs[-1] - logs[-2]) / (lw[-1] - lw[-2])

    def magnitude(w: float) -> float:
        lv = np.log(w)
        if lv < lw[0]:
            return float(np.exp(logs[0] + slope_lo * (lv - lw[0])))
        if lv > lw[-1]:
            return float(np.exp(logs[-1] + slope_hi * (lv - lw[-1])))
        return float(np.exp(np.interp(lv, lw, logs)))
    return magnitude


def _expint(order, z):
    r""":math:`E_n(z)` for integer :math:`n \ge 1` and complex z: :math:`E_1` from scipy, then
    :math:`E_{n+1}(z) = (e^{-z} - z E_n(z))/n`; NaN for other orders (the caller falls back)."""
    if float(order) != int(order) or int(order) < 1:
        return np.nan
    from scipy.special import exp1  # here: `import theory` stays light (ibcheck list)

    value = exp1(z)
    for n in range(1, int(order)):
        value = (np.exp(-z) - z * value) / n
    return value


#: relative agreement a fast numeric path must show with the mpmath closed form to be used
FAST_PATH_TOLERANCE = 1e-9
#: frequencies of that spot check (the kernels integrate mostly over omega <~ 50)
FAST_PATH_CHECKS = (0.05, 0.7, 3.0, 20.0)


def squared_magnitude_numeric(ft: FourierResult) -> Callable[[float], float]:
    r"""A fast numeric :math:`|\hat\sigma(\omega)|^2`, :math:`\omega > 0`.

    In order: the real closed form of :func:`squared_magnitude` compiled for numpy; the complex
    regular part through numpy/scipy (exponential integrals :math:`E_n` by :func:`_expint`); each
    fast path used only when it matches the mpmath value to :data:`FAST_PATH_TOLERANCE` at
    :data:`FAST_PATH_CHECKS` (a right closed form can cancel catastrophically in double
    precision: relu(x/3 - 2) e^{-x^2} subtracts terms of size e^{36}); the closed form evaluated
    by mpmath (exact but ~10 ms a call); and without a closed form, a table of quadrature
    values.  A fast path's non-finite value (overflow) is replaced by the mpmath value.
    """
    if ft.regular is None:
        return _tabulated_squared_magnitude(ft)
    regular = sp.lambdify(W, ft.regular_bound, modules="mpmath")

    def exact(w: float) -> float:  # arbitrary exponent range: no overflow of cosh(pi omega) etc.
        return float(abs(regular(mpmath.mpf(w))) ** 2)

    def guarded(mag: Callable[[float], float]) -> Callable[[float], float]:
        def fast(w: float) -> float:
            with np.errstate(all="ignore"):
                value = float(mag(w))
            return value if np.isfinite(value) else exact(w)
        return fast

    references = [exact(w) for w in FAST_PATH_CHECKS]

    def agrees(candidate: Callable[[float], float]) -> bool:
        try:
            return all(abs(candidate(w) - r) <= FAST_PATH_TOLERANCE * r for w, r in zip(FAST_PATH_CHECKS, references))
        except (TypeError, ValueError, NameError, ZeroDivisionError):   # a function numpy/scipy lack
            return False

    try:
        with time_limit(10.0, "|sigma_hat|^2 in closed form"):
            real_form = compile_expression(squared_magnitude(ft, bound=True), "numpy", W)
        candidate = guarded(lambda w: real_form(np.float64(w)))
        if agrees(candidate):
            return candidate
    except (IbcheckError, RecursionError):
        pass
    from scipy.special import expi  # here: `import theory` stays light (ibcheck list)

    complex_form = sp.lambdify(W, ft.regular_bound, modules=[{"expint": _expint, "Ei": expi}, "scipy", "numpy"])
    candidate = guarded(lambda w: abs(complex(complex_form(np.float64(w)))) ** 2)
    return candidate if agrees(candidate) else exact


#: frequencies at which every closed form derived from the transform is checked
DERIVED_FORM_FREQUENCIES = (sp.Rational(7, 20), sp.Rational(13, 10), sp.Rational(37, 10))
#: relative error a derived closed form must reach (the transform's own tolerance)
DERIVED_FORM_TOLERANCE = VERIFICATION_TOLERANCE


def verify_derived_form(ft: FourierResult, expr: sp.Expr, var: sp.Symbol,
                        expected: Callable[[float, complex], complex], what: str) -> float:
    r"""Check a closed form derived from :math:`\hat\sigma` (after its own simplification) at
    :data:`DERIVED_FORM_FREQUENCIES`: ``expected(f, sigma_hat(f))`` uses the quadrature value
    :meth:`FourierResult.reference`, not the closed form.  Returns the max relative error;
    raises :class:`Unsupported` naming ``what`` when it exceeds the tolerance or is not finite."""
    worst = 0.0
    for f in DERIVED_FORM_FREQUENCIES:
        want = complex(expected(float(f), ft.reference(f)))
        try:
            got = complex(expr.subs(var, f).evalf(30))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            got = complex(math.nan)
        error = abs(got - want) / abs(want) if want != 0 else abs(got)
        worst = max(worst, error) if math.isfinite(error) else math.inf
    if not worst <= DERIVED_FORM_TOLERANCE:
        raise Unsupported(f"the closed form of {what} failed verification against quadrature "
                          f"(relative error {worst:.1e}); not used")
    return worst


def spectral_weight(ft: FourierResult, dim: int = 1, rho: sp.Expr = sp.S.One, bound: bool = False) -> sp.Expr:
    r""":math:`W(\omega) = |\omega|^{d-1}\rho^2/|\hat\sigma(\omega/\rho)|^2` at a fixed first-layer norm.

    The form returned is verified (:func:`verify_derived_form`) when its numbers are known
    (parameters bound or absent, :math:`\rho = 1`)."""
    if dim < 1:
        raise IbcheckError(f"dimension must be a positive integer, got {dim}")
    if ft.pure_point_masses:
        return sp.oo
    mag = squared_magnitude(ft, bound)
    weight = tidy(W ** (dim - 1) * rho**2 / mag.subs(W, W / rho), W, thorough=True)
    numbers = weight.subs(ft.activation.substitutions())
    if rho == 1 and numbers.free_symbols <= {W}:
        verify_derived_form(ft, numbers, W, lambda f, s: f ** (dim - 1) / abs(s) ** 2, "W(omega)")
    return weight


def null_space_order(ft: FourierResult) -> int:
    r"""m with :math:`\omega^m \hat\sigma(\omega) \to c \neq 0` as :math:`\omega \to 0^+` (null space: degree < m).

    From the exact limit of the closed form when sympy can take it; otherwise from the
    asymptotic polynomials: the derivative rule gives :math:`m = 1 + \deg(p_+ - p_-)`
    (m = 0 when :math:`p_+ = p_-`).
    """
    regular = ft.regular_bound
    if regular is not None:
        try:
            for m in range(0, 12):
                lim = cached_limit(W**m * regular, W, sp.S.Zero)
                if lim.is_finite and lim != 0:
                    return m
                if lim.is_finite is None:
                    break
        except (Unsupported, TimeLimitExceeded):
            # sympy's limit of exponential integrals takes seconds (x/(1+|x|) - 1: E_2 terms) and
            # under load runs out of time; the asymptotes give the same m (tests compare both)
            pass
    if ft.asymptotes is None:
        raise Unsupported(f"{ft.activation.label}: cannot determine the null space (no limit of the "
                          "transform at 0 and no polynomial asymptotes)")
    gap = sp.expand((ft.asymptotes[1] - ft.asymptotes[0]).subs(ft.activation.substitutions()))
    return 0 if gap == 0 else int(sp.degree(gap, X)) + 1


def small_frequency_coefficient(ft: FourierResult, m: int) -> sp.Expr:
    r""":math:`\lim_{\omega\to 0^+} (i\omega)^m \hat\sigma(\omega)`.

    By the derivative rule this equals the total jump
    :math:`\sigma^{(m-1)}(+\infty) - \sigma^{(m-1)}(-\infty)` (P1: 1 for ReLU-like activations,
    :math:`\sigma(\infty) - \sigma(-\infty)` for sigmoid-like ones), which tests check.
    """
    return sp.simplify(cached_limit(sp.expand((sp.I * W) ** m * ft.regular_bound), W, sp.S.Zero))


@dataclass
class RadonOperator:
    r"""The operator :math:`D_\sigma^{-1}\Lambda^{d-1}` acting on the offset variable :math:`\beta`.

    ``multiplier`` is its Fourier symbol :math:`|t|^{d-1}/\hat\sigma(t)` (t > 0);
    ``differential`` is the equivalent polynomial in :math:`\partial_\beta` (a sympy expression
    in the symbol ``d_beta``) when the symbol is a polynomial in :math:`it`, else None
    (a non-local operator, e.g. for even d where :math:`\Lambda^{d-1}` needs a Hilbert transform).
    """

    multiplier: sp.Expr
    differential: sp.Expr | None
    description: str


D_BETA = sp.Symbol(r"\partial_\beta")


def radon_operator(ft: FourierResult, dim: int = 1) -> RadonOperator:
    r"""Fourier symbol of :math:`D_\sigma^{-1}\Lambda^{d-1}` and, where local, its differential form."""
    if ft.regular is None or ft.pure_point_masses:
        raise Unsupported(f"{ft.activation.label}: the Radon operator needs a nonzero regular transform")
    multiplier = tidy(TAU ** (dim - 1) / ft.regular.subs(W, TAU), TAU, thorough=True)
    bound = ft.activation.substitutions()
    if multiplier.subs(bound).free_symbols <= {TAU}:
        verify_derived_form(ft, multiplier.subs(bound), TAU, lambda f, s: f ** (dim - 1) / s,
                            "the Radon symbol |t|^(d-1)/sigma_hat(t)")
    s = sp.Symbol("s")  # s = i t, so that d/d beta <-> i t
    in_s = sp.simplify(multiplier.subs(TAU, -sp.I * s)) if dim % 2 == 1 else None
    if in_s is not None and in_s.is_polynomial(s):
        differential = sp.expand(in_s).subs(s, D_BETA)
        if differential.subs(bound).free_symbols <= {D_BETA}:
            verify_derived_form(ft, differential.subs(bound).subs(D_BETA, sp.I * TAU), TAU,
                                lambda f, s: f ** (dim - 1) / s, "the Radon operator's differential form")
        return RadonOperator(multiplier, differential, "local differential operator in beta")
    reason = "non-local (deconvolution by sigma" + (", Hilbert transform for even d)" if dim % 2 == 0 else ")")
    return RadonOperator(multiplier, None, reason)


# ---------------------------------------------------------------------------------------
# random weight scale

@dataclass
class RandomScaleWeight:
    r""":math:`W(t) = |t|^{d-1}/S(t)` for a density :math:`q_R(\rho)`; ``expr`` when closed form."""

    expr: sp.Expr | None
    numeric: Callable[[float], float]
    how: str


def spectral_weight_random_scale(ft: FourierResult, density: sp.Expr, support: tuple, dim: int = 1) -> RandomScaleWeight:
    r"""W for a random first-layer norm with density ``density`` (in ``theory.symbols.rho``) on ``support``.

    Positively k-homogeneous :math:`\sigma`: :math:`S(t) = |\hat\sigma(t)|^2\,E[\rho^{2k}]` in closed form.
    Otherwise sympy tries :math:`S(t) = \int\rho^{-2}|\hat\sigma(t/\rho)|^2 q_R\,d\rho` under a time
    limit; when it cannot, :attr:`RandomScaleWeight.numeric` integrates with mpmath.
    """
    mag = squared_magnitude(ft, bound=True)
    lo, hi = support
    k = ft.activation.homogeneity_degree
    if k is not None:
        with time_limit(10.0, "the moment E[rho^(2k)]"):
            moment = sp.integrate(RHO ** (2 * k) * density, (RHO, lo, hi))
        expr = tidy(W ** (dim - 1) / (mag * moment), W)
        return RandomScaleWeight(expr, _lambdify_weight(expr), f"homogeneous (k = {k}): S = |sigma_hat|^2 E[rho^{2 * k}]")
    integrand = mag.subs(W, W / RHO) / RHO**2 * density
    try:
        with time_limit(4.0, "the rho-integral of |sigma_hat(t/rho)|^2"):
            s_expr = sp.integrate(integrand, (RHO, lo, hi))
        if not s_expr.has(sp.Integral):
            expr = tidy(W ** (dim - 1) / s_expr, W)
            return RandomScaleWeight(expr, _lambdify_weight(expr), "closed-form rho-integral")
    except (Unsupported, TimeLimitExceeded, NotImplementedError, ValueError):
        pass
    integrand_fn = sp.lambdify((W, RHO), integrand, modules="mpmath")

    def numeric(t: float) -> float:
        s_val = mpmath.quad(lambda r: integrand_fn(t, r), [_mp_end(lo), _mp_end(hi)])
        return float(abs(t) ** (dim - 1) / s_val)
    return RandomScaleWeight(None, numeric, "numerical rho-integral (mpmath)")


def _mp_end(v):
    return mpmath.inf if v == sp.oo else mpmath.mpf(sp.N(v, 20))


def _lambdify_weight(expr: sp.Expr) -> Callable[[float], float]:
    fn = sp.lambdify(W, expr, modules="mpmath")
    return lambda t: float(fn(abs(t)))
