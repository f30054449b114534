r"""Infinite-width random-feature kernels and the 1D ReLU curvature weight.

With flat offsets and a fixed first-layer norm :math:`\rho = 1`, the output-layer kernel is
stationary, :math:`K(x, x') = k(D)`, :math:`D = x - x'`, with

.. math::
   k(D) = \int \sigma(u)\,\sigma(u + D)\,du = \frac{1}{2\pi}\int |\hat\sigma(\omega)|^2 e^{i\omega D}\,d\omega
   \pmod{\text{even polynomials of degree} \le 2m-2},

where m is the null-space order: the kernel is *conditionally* positive definite of order m and
is used with a polynomial block of degree < m, which makes those polynomials irrelevant
(spectral_bias.md 2.3).  For a norm :math:`\rho`, :math:`k_\rho(D) = k(\rho D)/\rho`.

Routes, tried in order (``Kernel.how`` says which one gave the result):

1. power law: :math:`|\hat\sigma|^2 = C\omega^{-2n}` (positively homogeneous activations) gives
   :math:`k = C(-1)^n |D|^{2n-1} / (2(2n-1)!)`; ReLU: :math:`|D|^3/12`;
2. autocorrelation of :math:`\sigma^{(m)}`: :math:`k^{(2m)} = (-1)^m A_m`,
   :math:`A_m(D) = \int \sigma^{(m)}(u)\sigma^{(m)}(u+D)\,du`, integrated exactly for Gaussian
   families (erf, GELU, Gaussian) and exponential polynomials with one breakpoint (ELU,
   :math:`e^{-t}H(t)`); the even solution with :math:`k^{(j)}(0) = 0` for j < 2m is
   :math:`k(D) = (-1)^m\int_0^{|D|} \frac{(|D|-s)^{2m-1}}{(2m-1)!} A_m(s)\,ds`;
3. a table of verified closed forms (tanh: :math:`-2D\coth D`; logistic: :math:`-\tfrac D2\coth\tfrac D2`);
4. numerically, from :math:`|\hat\sigma|^2` by the finite-part Fourier integral
   :math:`k(D) = \frac1\pi\big[\int_0^{1} |\hat\sigma|^2 (\cos\omega D - T_m(\omega D))\,d\omega
   + \int_1^\infty |\hat\sigma|^2\cos\omega D\,d\omega\big]`, :math:`T_m` the Taylor polynomial of
   cos of degree 2m-2 (gauge-equivalent).

Every closed form is compared with route 4 modulo the gauge polynomials (:func:`verify_kernel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from .activations import Activation
from .errors import IbcheckError, TimeLimitExceeded, Unsupported
from .evaluation import compile_expression
from .fourier import FourierResult, exp_poly_integral, term_shape
from .penalty import null_space_order, squared_magnitude, squared_magnitude_numeric
from .piecewise import PiecewiseSmooth
from .symbolic import remember_unless_time_limited, tidy
from .symbols import D
from .symbols import omega as W
from .symbols import x as X
from .timeouts import time_limit

_S = sp.Symbol("s", positive=True)
_DP = sp.Symbol("D", positive=True)
_U = sp.Symbol("u", real=True)


@dataclass
class Kernel:
    r"""The kernel :math:`k(D)` of one activation at :math:`\rho = 1` (see the module docstring)."""

    activation: Activation
    order: int
    expr: sp.Expr | None
    how: str
    numeric: Callable[[np.ndarray], np.ndarray]
    verification: dict = field(default_factory=dict)

    def __call__(self, d, rho: float = 1.0) -> np.ndarray:
        """:math:`k_\\rho(D) = k(\\rho D)/\\rho` on an array of offsets."""
        d = np.asarray(d, dtype=float)
        return self.numeric(np.abs(rho * d)) / rho


# ---------------------------------------------------------------------------------------
# route 1: power law

def _power_law(mag: sp.Expr) -> sp.Expr | None:
    for n in range(0, 12):
        c = sp.simplify(mag * W ** (2 * n))
        if not c.has(W):
            if n == 0:
                return None
            return c * (-1) ** n * sp.Abs(D) ** (2 * n - 1) / (2 * sp.factorial(2 * n - 1))
    return None


# ---------------------------------------------------------------------------------------
# route 2: autocorrelation of sigma^(m)

def _gaussian_line_integral(n: int, alpha: sp.Expr, beta: sp.Expr) -> sp.Expr:
    r""":math:`\int u^n e^{-\alpha u^2 + \beta u}\,du = \partial_\beta^n \sqrt{\pi/\alpha}\,e^{\beta^2/(4\alpha)}`."""
    b = sp.Symbol("b")
    return sp.diff(sp.sqrt(sp.pi / alpha) * sp.exp(b**2 / (4 * alpha)), b, n).subs(b, beta)


def _gaussian_autocorrelation(piece: sp.Expr) -> sp.Expr | None:
    shapes = [term_shape(t) for t in sp.Add.make_args(sp.expand(piece))]
    if any(sh is None or sh[2] == 0 or sh[3] != 0 for sh in shapes):
        return None
    total = sp.S.Zero
    for c1, k1, a1, _ in shapes:
        for c2, k2, a2, _ in shapes:
            # u^k1 e^{a1 u^2} (u + D)^k2 e^{a2 (u + D)^2}
            alpha, beta = -(a1 + a2), 2 * a2 * _DP
            expanded = sp.expand(_U**k1 * (_U + _DP) ** k2)
            for (n,), coeff in sp.Poly(expanded, _U).terms():
                total += c1 * c2 * coeff * sp.exp(a2 * _DP**2) * _gaussian_line_integral(n, alpha, beta)
    return sp.simplify(total)


def _exp_poly_autocorrelation(pieces: PiecewiseSmooth) -> tuple[sp.Expr, sp.Expr] | None:
    """(smooth part of A(D) for D > 0, coefficient of delta(D)), or None if out of scope."""
    if any(b != 0 for b in pieces.breaks) or any(a.order != 0 or a.location != 0 for a in pieces.atoms):
        return None
    for piece in pieces.pieces:
        if any(sh is None or sh[2] != 0 for sh in map(term_shape, sp.Add.make_args(sp.expand(piece)))):
            return None
    last = len(pieces.pieces) - 1
    total = sp.S.Zero
    # smooth x smooth: u in piece i, u + D in piece j; with a break only at 0 and D > 0
    regions = {(-sp.oo, -_DP): (0, 0), (-_DP, sp.S.Zero): (0, last), (sp.S.Zero, sp.oo): (last, last)} \
        if pieces.breaks else {(-sp.oo, sp.oo): (0, 0)}
    for (lo, hi), (i, j) in regions.items():
        product = sp.expand(pieces.pieces[i].subs(X, _U) * pieces.pieces[j].subs(X, _U + _DP))
        for term in sp.Add.make_args(product):
            if term == 0:
                continue
            coeff, dep = term.as_independent(_U, as_Add=False)
            sh = term_shape(dep.subs(_U, X))
            if sh is None or sh[2] != 0:
                return None
            c, k, _, lam = sh
            total += coeff * c * exp_poly_integral(k, lam, lo, hi)
    delta = sp.S.Zero
    for atom in pieces.atoms:  # c delta(u) against the smooth part, both ways round, for D > 0
        total += atom.coefficient * (pieces.pieces[0].subs(X, -_DP) + pieces.pieces[-1].subs(X, _DP))
        delta += atom.coefficient**2
    return sp.simplify(total), delta


def _integrate_twice_m(a_smooth: sp.Expr, delta: sp.Expr, m: int) -> sp.Expr:
    r""":math:`(-1)^m\int_0^D \frac{(D-s)^{2m-1}}{(2m-1)!}A(s)\,ds` plus the point mass's share, D > 0."""
    if m == 0:
        return a_smooth
    integrand = sp.expand((_DP - _S) ** (2 * m - 1) / sp.factorial(2 * m - 1) * a_smooth.subs(_DP, _S))
    total = sp.S.Zero
    for term in sp.Add.make_args(integrand):
        coeff, dep = term.as_independent(_S, as_Add=False)
        sh = term_shape(dep.subs(_S, X))
        if sh is not None and sh[2] == 0:
            c, k, _, lam = sh
            total += coeff * c * exp_poly_integral(k, lam, sp.S.Zero, _DP)
        elif sh is not None and sh[3] == 0 and (sh[2] < 0) == sp.true:
            c, k, a2, _ = sh
            total += coeff * c * _half_gaussian_moment(k, -a2)
        else:
            with time_limit(10.0, "the kernel integral"):
                value = sp.integrate(term, (_S, 0, _DP))
            if value.has(sp.Integral):
                raise Unsupported("cannot integrate the autocorrelation in closed form")
            total += value
    total += delta * _DP ** (2 * m - 1) / (2 * sp.factorial(2 * m - 1))
    return (-1) ** m * total


def _half_gaussian_moment(n: int, gamma: sp.Expr) -> sp.Expr:
    r""":math:`\int_0^D s^n e^{-\gamma s^2}\,ds` by the recursion
    :math:`I_n = -\frac{D^{n-1}e^{-\gamma D^2}}{2\gamma} + \frac{n-1}{2\gamma}I_{n-2}`."""
    if n == 0:
        return sp.sqrt(sp.pi / gamma) / 2 * sp.erf(sp.sqrt(gamma) * _DP)
    if n == 1:
        return (1 - sp.exp(-gamma * _DP**2)) / (2 * gamma)
    return -_DP ** (n - 1) * sp.exp(-gamma * _DP**2) / (2 * gamma) + sp.Rational(n - 1, 2) / gamma * \
        _half_gaussian_moment(n - 2, gamma)


def _autocorrelation_kernel(ft: FourierResult, m: int) -> sp.Expr | None:
    pieces = ft._pieces
    if pieces is None or ft.order != m:
        # integrating 2p > 2m times would fix more of the kernel than the gauge allows
        return None
    if not pieces.breaks and not pieces.atoms:
        a_smooth = _gaussian_autocorrelation(pieces.pieces[0])
        delta = sp.S.Zero
        if a_smooth is None:
            return None
    else:
        found = _exp_poly_autocorrelation(pieces)
        if found is None:
            return None
        a_smooth, delta = found
    return tidy(_integrate_twice_m(a_smooth, delta, m).subs(_DP, sp.Abs(D)), D, thorough=True)


# ---------------------------------------------------------------------------------------
# route 3: table of verified closed forms (value at rho = 1)

KERNEL_TABLE: dict[str, sp.Expr] = {
    "tanh": -2 * D * sp.coth(D),
    "sigmoid": -D / 2 * sp.coth(D / 2),
}


# ---------------------------------------------------------------------------------------
# route 4: numerical

def _taylor_remainder_cos(z: np.ndarray, m: int) -> np.ndarray:
    r""":math:`\cos z - \sum_{j<m} (-1)^j z^{2j}/(2j)!`, by its series where |z| < 2 (no cancellation)."""
    z = np.asarray(z, dtype=float)
    direct = np.cos(z) - sum((-1) ** j * z ** (2 * j) / float(sp.factorial(2 * j)) for j in range(m))
    series = sum((-1) ** j * z ** (2 * j) / float(sp.factorial(2 * j)) for j in range(m, m + 14))
    return np.where(np.abs(z) < 2, series, direct)


def numerical_kernel(magnitude: Callable[[float], float], m: int) -> Callable[[np.ndarray], np.ndarray]:
    r"""k(D) from :math:`|\hat\sigma(\omega)|^2` by the gauge-fixed finite-part Fourier integral.

    A non-finite :math:`|\hat\sigma|^2` raises :class:`Unsupported` before it reaches scipy's
    QUADPACK (a NaN in ``quad(weight="cos")`` ended the process with a segmentation fault).
    """
    import scipy.integrate as si  # here, not at the top: `import theory` stays light (ibcheck list, derive)

    def finite(w: float) -> float:
        value = magnitude(w)
        if not np.isfinite(value):
            raise Unsupported(f"|sigma_hat({w:g})|^2 is not a finite number; no numerical kernel")
        return value

    def one(d: float) -> float:
        if d == 0:  # the subtracted Taylor polynomial is all of cos there
            return si.quad(finite, 1, np.inf, limit=200)[0] / np.pi
        low = si.quad(lambda w: finite(w) * float(_taylor_remainder_cos(w * d, m)), 0, 1,
                      limit=200, epsabs=1e-13, epsrel=1e-11)[0]
        high = si.quad(finite, 1, np.inf, weight="cos", wvar=d, limlst=200)[0]
        return (low + high) / np.pi

    def evaluate(ds: np.ndarray) -> np.ndarray:
        ds = np.abs(np.asarray(ds, dtype=float))
        flat = np.array([one(float(v)) for v in ds.ravel()])
        return flat.reshape(ds.shape)
    return evaluate


def verify_kernel(expr: sp.Expr, numeric: Callable, m: int, points=(0.3, 0.7, 1.1, 1.6, 2.2, 3.0)) -> dict:
    """Closed form vs the numerical kernel at a few offsets, after removing the best-fitting
    even polynomial of degree <= 2m-2 (the gauge): relative error of the rest."""
    ds = np.array(points)
    closed = compile_expression(expr, "numpy", D)(ds)
    num = numeric(ds)
    basis = np.stack([ds ** (2 * j) for j in range(m)], axis=1) if m > 0 else np.zeros((len(ds), 0))
    diff = closed - num
    if basis.shape[1]:
        coef, *_ = np.linalg.lstsq(basis, diff, rcond=None)
        diff = diff - basis @ coef
    err = float(np.max(np.abs(diff)) / np.max(np.abs(num - num.mean()) + 1e-300))
    err = err if np.isfinite(err) else float("inf")   # a NaN must fail, not pass unnoticed
    return {"offsets": list(points), "max_relative_error": err, "tolerance": 1e-6, "passed": err <= 1e-6,
            "method": "finite-part Fourier integral of |sigma_hat|^2 (scipy quad), modulo the gauge polynomials"}


def _value_at_zero(expr: sp.Expr) -> float:
    """k(0).  A kernel is continuous (an autocorrelation), so a finite value of the expression at
    0 is k(0); a removable singularity (-2 D coth D: 0 * zoo) takes the limit (slow in sympy)."""
    value = expr.subs(D, 0)
    if value.is_number and value.is_finite:
        return float(value)
    return float(sp.limit(expr.subs(D, _DP), _DP, 0))  # e.g. -2 D coth D -> -2


@remember_unless_time_limited()
def kernel(ft: FourierResult) -> Kernel:
    """The random-feature kernel of ``ft.activation`` at rho = 1 (module docstring).

    Remembered per transform for the life of the process, unless a time limit expired while
    computing it (a closed-form route that ran out of time would leave the numerical kernel).
    """
    act = ft.activation
    if ft.status == "not_applicable" or ft.pure_point_masses:
        raise Unsupported(f"{act.label}: no stationary kernel with flat offsets ({ft.reason or 'band-limited'})")
    m = null_space_order(ft)
    magnitude = squared_magnitude_numeric(ft)
    numeric = numerical_kernel(magnitude, m)
    expr, how = None, "numerical (finite-part Fourier integral)"
    if ft.regular is not None:
        homogeneous = act.homogeneity_degree is not None
        candidates = [("closed form: power law",
                       lambda: _power_law(squared_magnitude(ft, bound=True)) if homogeneous else None),
                      ("closed form: autocorrelation of sigma^(m)", lambda: _autocorrelation_kernel(ft, m)),
                      ("closed form: table", lambda: KERNEL_TABLE.get(act.name) if act.builtin else None)]
        for name, route in candidates:
            try:
                with time_limit(20.0, f"the kernel by {name}"):
                    expr = route()
            except (Unsupported, TimeLimitExceeded, NotImplementedError, sp.PolynomialError):
                expr = None
            if expr is not None:
                how = name
                break
    if expr is None:
        return Kernel(act, m, None, how, numeric)
    check = verify_kernel(expr, numeric, m)
    if not check["passed"]:   # a closed form that fails its check is never used
        return Kernel(act, m, None, f"numerical (finite-part Fourier integral); the {how} failed "
                      f"verification (relative error {check['max_relative_error']:.1e})", numeric, check)
    closed = compile_expression(expr, "numpy", D)
    at_zero = _value_at_zero(expr)

    def evaluate(ds):
        ds = np.abs(np.asarray(ds, dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ds == 0, at_zero, closed(ds))
    return Kernel(act, m, expr, how, evaluate, check)


def direction_averaged_kernel(k: Kernel, dim: int) -> sp.Expr | None:
    r"""The kernel in d dimensions with directions uniform on :math:`S^{d-1}`:
    :math:`K(x, x') = E_\theta\, k(\theta\cdot(x - x'))`, as a function of :math:`D = |x - x'|`.

    Closed form for a power law :math:`k = c|D|^p`:
    :math:`E|\theta_1|^p = \Gamma(d/2)\Gamma((p+1)/2)/(\sqrt\pi\,\Gamma((d+p)/2))`, so ReLU gives
    the polyharmonic :math:`r^3` kernel (notes 2.4); None for other kernels.
    """
    if dim == 1:
        return k.expr
    if k.expr is None:
        return None
    c, p = sp.S(k.expr).subs(D, _DP).as_coeff_exponent(_DP)
    if c.has(_DP) or sp.simplify(c * _DP**p - k.expr.subs(D, _DP)) != 0:
        return None
    moment = sp.gamma(sp.Rational(dim, 2)) * sp.gamma((p + 1) / 2) / (sp.sqrt(sp.pi) * sp.gamma((dim + p) / 2))
    return sp.simplify(c * moment) * sp.Abs(D) ** p


# ---------------------------------------------------------------------------------------
# the 1D ReLU curvature weight

_W = sp.Symbol("w", real=True)


def relu_curvature_weight(density: sp.Expr, w_range=(-sp.oo, sp.oo), seconds: float = 20.0) -> sp.Expr:
    r""":math:`\zeta(x) = \int |w|^3\, p_{w,b}(w, -w x)\,dw` for a joint density :math:`p(w, b)`.

    ``density`` is a sympy expression in ``w`` and ``b`` (use :func:`uniform_density` or
    :func:`gaussian_density`).  The 1D ReLU kernel-regime penalty is
    :math:`\int f''(x)^2/\zeta(x)\,dx` (Jin & Montufar's curvature penalty; spectral_bias.md 2.2).
    The integral is taken over w > 0 and doubled when the density is even in (w, b).
    """
    b = sp.Symbol("b", real=True)
    xs = sp.Symbol("x", positive=True)
    integrand = _W**3 * density.subs(b, -_W * xs)
    lo, hi = w_range
    with time_limit(seconds, "the curvature weight zeta(x)"):
        value = 2 * sp.integrate(integrand, (_W, max(lo, 0) if lo != -sp.oo else 0, hi))
    return sp.simplify(value.subs(xs, sp.Abs(X)))


def gaussian_density(s_w: sp.Expr, s_b: sp.Expr) -> sp.Expr:
    """Independent N(0, s_w^2) weight and N(0, s_b^2) bias: a density in w and b."""
    b = sp.Symbol("b", real=True)
    return sp.exp(-_W**2 / (2 * s_w**2) - b**2 / (2 * s_b**2)) / (2 * sp.pi * s_w * s_b)


def uniform_curvature_weight(a_w: sp.Expr, a_b: sp.Expr) -> sp.Expr:
    r""":math:`\zeta(x)` for :math:`w \sim U(-a_w, a_w)`, :math:`b \sim U(-a_b, a_b)`:
    the density :math:`1/(4a_wa_b)` on the box, so the w-integral runs over
    :math:`0 < w < \min(a_w, a_b/|x|)`, giving :math:`\min(a_w, a_b/|x|)^4/(8a_wa_b)`."""
    upper = sp.Symbol("M", positive=True)
    value = 2 * sp.integrate(_W**3 / (4 * a_w * a_b), (_W, 0, upper))
    return value.subs(upper, sp.Min(a_w, a_b / sp.Abs(X)))


def check_dimension(dim: int) -> int:
    if not isinstance(dim, int) or dim < 1 or dim > 64:
        raise IbcheckError(f"dimension must be an integer from 1 to 64, got {dim!r}")
    return dim
