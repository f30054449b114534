r"""Kernel-regime predictions: minimizers of the derived penalty among interpolants.

In the random-feature kernel regime a wide network converges to the interpolant of the data
that minimizes the spectral seminorm :math:`J_\sigma` (spectral_bias.md 2.1-2.4).  This module
computes that minimizer by routes that do not use any network:

* **CPD kernel interpolation** (:func:`kernel_interpolant`): with the theory layer's kernel
  :math:`k` (``theory.kernels.kernel``), conditionally positive definite of order m,

  .. math::
     s(x) = \sum_j c_j\,K(x, x_j) + \sum_{|\alpha| < m} d_\alpha x^\alpha,
     \qquad \begin{pmatrix} K & P\\ P^T & 0\end{pmatrix}
     \begin{pmatrix} c\\ d\end{pmatrix} = \begin{pmatrix} y\\ 0\end{pmatrix},

  which is blind to the gauge polynomials in which k is defined (notes 2.3, "CPD").
* **Ridge kernels in d dimensions** (:func:`ridge_kernel`): uniform directions and flat
  offsets give :math:`K(x, x') = \mathbb E_\theta\, k_\rho(\theta\cdot(x - x'))`, computed by
  Gauss-Legendre quadrature over the polar angle (deterministic, no Monte Carlo).  For ReLU it
  is proportional to :math:`|x - x'|^3`, the r^3 polyharmonic spline (notes 2.4, E4).
* **Weighted cubic spline** (:func:`weighted_cubic_spline`): the 1D ReLU penalty
  :math:`\int f''(x)^2/\zeta(x)\,dx` (Jin & Montufar's curvature weight, notes 2.2/2.4),
  solved in closed form from its Euler-Lagrange equation; a constant weight gives the natural
  cubic spline.
* :func:`spectral_density`: :math:`|\hat\sigma_\rho(\omega)|^2 = \rho^{-2}|\hat\sigma(\omega/\rho)|^2
  \propto 1/W(\omega)`, the rate at which a kernel-regime residual at frequency
  :math:`\omega` decays (notes 2.3, P8).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import scipy.linalg as sl
import sympy as sp

from theory.activations import Activation
from theory.errors import IbcheckError, Unsupported
from theory.evaluation import compile_expression
from theory.fourier import fourier_transform
from theory.kernels import Kernel, gaussian_density, kernel, relu_curvature_weight, uniform_curvature_weight
from theory.penalty import squared_magnitude_numeric
from theory.symbols import x as X

#: a saddle-point system whose condition number exceeds this is reported as singular
MAX_CONDITION = 1e13

#: accepted relative error of that table: smooth activations reach 1e-9 with 24 nodes; a kink in
#: sigma' (e.g. x/(1+|x|)) leaves a |D|^5 term that Chebyshev resolves to ~2e-6 with 70 nodes, far
#: below the percent-level tolerances of the checks
TABLE_TOLERANCE = 1e-5


def as_points(x) -> np.ndarray:
    """float array of shape (N, d) from shape (N,) or (N, d)."""
    a = np.asarray(x, dtype=float)
    return a[:, None] if a.ndim == 1 else a


# ---------------------------------------------------------------------------------------
# the kernel profile k_rho(D) = k(rho D)/rho as a fast numpy function

@dataclass
class KernelProfile:
    r""":math:`k_\rho(D) = k(\rho D)/\rho` for :math:`|D| \le` ``d_max``, vectorised.

    ``how`` says whether the closed form or a Chebyshev table of the numerical kernel is used;
    ``table_error`` is the table's relative error at check points (0 for a closed form).
    """

    kernel: Kernel
    rho: float
    d_max: float
    evaluate: Callable[[np.ndarray], np.ndarray]
    how: str
    table_error: float = 0.0

    def __call__(self, d) -> np.ndarray:
        return self.evaluate(np.abs(np.asarray(d, dtype=float)))


def kernel_profile(k: Kernel, rho: float = 1.0, d_max: float = 4.0, nodes=(12, 24, 48)) -> KernelProfile:
    r"""The profile of ``k`` at first-layer norm ``rho`` for offsets up to ``d_max``.

    A closed form is evaluated directly.  A numerical kernel (milliseconds to seconds per offset)
    is tabulated as an even Chebyshev interpolant on :math:`[-\rho d_{max}, \rho d_{max}]`, with 12,
    24, then 48 positive nodes until its relative error at three offsets between the nodes is
    below :data:`TABLE_TOLERANCE`.
    """
    if rho <= 0 or d_max <= 0:
        raise IbcheckError("the kernel profile needs rho > 0 and d_max > 0")
    if k.expr is not None:
        def closed(d):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                values = k(d, rho)
            if not np.all(np.isfinite(values)):
                raise IbcheckError(f"{k.activation.label}: the kernel is not finite at some offsets")
            return values
        return KernelProfile(k, rho, d_max, closed, "closed form")
    half = rho * d_max * 1.05  # first-kind Chebyshev nodes of [-half, half]
    for count in nodes:
        total = 2 * count
        z = half * np.cos((2 * np.arange(count) + 1) * np.pi / (2 * total))  # the positive half
        values = k.numeric(z)
        if not np.all(np.isfinite(values)):
            raise IbcheckError(f"{k.activation.label}: the numerical kernel is not finite; no prediction")
        cheb = np.polynomial.Chebyshev.fit(np.concatenate([z, -z]), np.concatenate([values, values]),
                                           total - 1, domain=[-half, half])
        probe = (z[:-1] + z[1:])[[0, count // 2, count - 2]] / 2  # between the nodes
        scale = np.max(np.abs(values - values.mean())) + 1e-300
        error = float(np.max(np.abs(cheb(probe) - k.numeric(probe))) / scale)
        if error <= TABLE_TOLERANCE:
            break
    else:
        raise IbcheckError(f"{k.activation.label}: the numerical kernel cannot be tabulated accurately "
                           f"(relative error {error:.1e} with {total} nodes); no prediction")

    def tabulated(d):
        if d.size and d.max() > half / rho:
            raise IbcheckError(f"kernel offset {d.max():.3g} beyond the tabulated range {half / rho:.3g}")
        return cheb(rho * d) / rho
    return KernelProfile(k, rho, d_max, tabulated,
                         f"Chebyshev table of the numerical kernel ({total} nodes)", error)


@lru_cache(maxsize=64)
def activation_kernel(act: Activation) -> Kernel:
    """The theory layer's random-feature kernel of ``act`` (raises ``Unsupported`` with the reason)."""
    return kernel(fourier_transform(act))


@lru_cache(maxsize=64)
def activation_profile(act: Activation, rho: float, d_max: float) -> KernelProfile:
    """:func:`kernel_profile` of ``act``'s kernel, remembered (a numerical kernel's table costs ~1 s)."""
    return kernel_profile(activation_kernel(act), rho, d_max)


# ---------------------------------------------------------------------------------------
# CPD kernel interpolation with a polynomial block

def monomial_exponents(dim: int, order: int) -> list[tuple[int, ...]]:
    """Exponents of the monomials of total degree < ``order`` in ``dim`` variables."""
    return [e for deg in range(order) for e in itertools.product(range(deg + 1), repeat=dim) if sum(e) == deg]


def polynomial_block(x: np.ndarray, order: int) -> np.ndarray:
    """The matrix :math:`P_{j\\alpha} = x_j^\\alpha` for |alpha| < order, shape (N, #monomials)."""
    x = as_points(x)
    exps = monomial_exponents(x.shape[1], order)
    if not exps:
        return np.zeros((len(x), 0))
    return np.stack([np.prod(x ** np.array(e), axis=1) for e in exps], axis=1)


@dataclass
class KernelInterpolant:
    """:math:`s(x) = \\sum_j c_j K(x, x_j) + p(x)` (module docstring); call it on points."""

    kernel_matrix: Callable[[np.ndarray, np.ndarray], np.ndarray]
    order: int
    centers: np.ndarray
    coefficients: np.ndarray
    polynomial: np.ndarray
    condition: float

    def __call__(self, points) -> np.ndarray:
        points = as_points(points)
        return self.kernel_matrix(points, self.centers) @ self.coefficients + \
            polynomial_block(points, self.order) @ self.polynomial


def kernel_interpolant(kernel_matrix: Callable[[np.ndarray, np.ndarray], np.ndarray], order: int, x, y,
                       what: str = "kernel") -> KernelInterpolant:
    """Interpolate (x, y) with a kernel that is conditionally positive definite of ``order``.

    Raises :class:`IbcheckError` when the system is singular (repeated points, too few points
    for the polynomial block, a degenerate kernel), naming ``what``.
    """
    x = as_points(x)
    y = np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise IbcheckError(f"{len(x)} points but {len(y)} values")
    if len(np.unique(x, axis=0)) < len(x):
        raise IbcheckError("the data contain repeated input points; interpolation needs distinct points")
    p = polynomial_block(x, order)
    if p.shape[1] > len(x) or (p.shape[1] and np.linalg.matrix_rank(p) < p.shape[1]):
        raise IbcheckError(f"{what}: the polynomial block of degree < {order} is not determined by "
                           f"{len(x)} points; give more (or less degenerate) data points")
    k = kernel_matrix(x, x)
    if not np.all(np.isfinite(k)):
        raise IbcheckError(f"{what}: the kernel matrix is not finite")
    n, q = len(x), p.shape[1]
    system = np.block([[k, p], [p.T, np.zeros((q, q))]])
    cond = float(np.linalg.cond(system))
    if not math.isfinite(cond) or cond > MAX_CONDITION:
        raise IbcheckError(f"{what}: the interpolation matrix is singular (condition number {cond:.1e}); "
                           "no prediction can be formed for these points")
    sol = sl.solve(system, np.concatenate([y, np.zeros(q)]))
    return KernelInterpolant(kernel_matrix, order, x, sol[:n], sol[n:], cond)


def ridge_kernel(profile: Callable[[np.ndarray], np.ndarray], dim: int, angles: int = 64
                 ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    r""":math:`K(x, x') = \mathbb E_{\theta \sim U(S^{d-1})}\, k(\theta\cdot(x - x'))` for an even profile k.

    For d = 1 this is :math:`k(x - x')`.  For d >= 2 the average depends only on
    :math:`r = |x - x'|`:

    .. math::
       K = \frac{\int_0^{\pi/2} k(r\cos\phi)\,\sin^{d-2}\phi\,d\phi}{\int_0^{\pi/2}\sin^{d-2}\phi\,d\phi},

    evaluated with ``angles`` Gauss-Legendre nodes in :math:`\phi` (k is smooth on
    :math:`[0, r]`, so the rule converges fast even for the ReLU profile :math:`|D|^3`).
    """
    if dim == 1:
        return lambda a, b: profile(as_points(a)[:, 0][:, None] - as_points(b)[:, 0][None, :])
    nodes, weights = np.polynomial.legendre.leggauss(angles)
    phi = (nodes + 1) * np.pi / 4
    weights = weights * np.sin(phi) ** (dim - 2)
    weights = weights / weights.sum()
    cos = np.cos(phi)

    def matrix(a, b):
        r = np.linalg.norm(as_points(a)[:, None, :] - as_points(b)[None, :, :], axis=2)
        return profile(r[..., None] * cos) @ weights
    return matrix


def polyharmonic_kernel(a, b) -> np.ndarray:
    """The r^3 polyharmonic radial basis :math:`|x - x'|^3` (CPD of order 2 in every dimension)."""
    return np.linalg.norm(as_points(a)[:, None, :] - as_points(b)[None, :, :], axis=2) ** 3


def theory_interpolant(act: Activation, x, y, rho: float = 1.0, angles: int = 64) -> KernelInterpolant:
    r"""The penalty minimizer for ``act`` at first-layer norm ``rho``, uniform directions, flat
    offsets: CPD interpolation with the theory layer's kernel (ridge-averaged for d >= 2)."""
    x = as_points(x)
    # offsets between points of the data hull are at most its diameter (rounded up to 0.1, so that
    # tables of the same data are shared between calls)
    diameter = float(np.max(np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)))
    d_max = math.ceil(max(diameter, 1e-3) * 10) / 10
    profile = activation_profile(act, float(rho), d_max)
    return kernel_interpolant(ridge_kernel(profile, x.shape[1], angles), profile.kernel.order, x, y,
                              what=f"{act.label} kernel interpolation")


# ---------------------------------------------------------------------------------------
# the weighted cubic spline (1D ReLU, penalty f''^2 / zeta)

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(40)


@dataclass
class WeightedCubicSpline:
    r"""The minimizer of :math:`\int w(t) f''(t)^2\,dt` through the knots (see :func:`weighted_cubic_spline`)."""

    knots: np.ndarray
    values: np.ndarray
    weight: Callable[[np.ndarray], np.ndarray]
    affine: np.ndarray
    moments: np.ndarray

    def _hat(self, j: int, t: np.ndarray) -> np.ndarray:
        k = self.knots
        up = (t - k[j - 1]) / (k[j] - k[j - 1])
        down = (k[j + 1] - t) / (k[j + 1] - k[j])
        return np.clip(np.minimum(up, down), 0.0, None)

    def _integrals(self, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`A_j(u) = \int_{x_1}^u h_j/w`, :math:`B_j(u) = \int_{x_1}^u t\,h_j/w` for each u (hull only)."""
        k = self.knots
        inner = range(1, len(k) - 1)
        a = np.zeros((len(upper), len(k) - 2))
        b = np.zeros_like(a)
        for i in range(len(k) - 1):
            lo, hi = k[i], np.clip(upper, k[i], k[i + 1])
            half = (hi - lo) / 2
            t = lo + half[:, None] * (_GAUSS_NODES + 1)  # (P, nodes)
            wt = half[:, None] * _GAUSS_WEIGHTS / self.weight(t)
            for col, j in enumerate(inner):
                if j - 1 <= i <= j:
                    h = self._hat(j, t) * wt
                    a[:, col] += h.sum(axis=1)
                    b[:, col] += (h * t).sum(axis=1)
        return a, b

    def _basis(self, x: np.ndarray) -> np.ndarray:
        """Columns 1, x - x_1, G_j(x) with :math:`G_j(x) = \\int_{x_1}^x (x - t) h_j(t)/w(t)\\,dt`."""
        k = self.knots
        inside = np.clip(x, k[0], k[-1])
        a, b = self._integrals(inside)
        g = inside[:, None] * a - b + (x - inside)[:, None] * a  # linear continuation beyond x_N
        return np.column_stack([np.ones_like(x), x - k[0], g])

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        coef = np.concatenate([self.affine, self.moments])
        return self._basis(x.ravel()) @ coef


def weighted_cubic_spline(x, y, weight: Callable[[np.ndarray], np.ndarray]) -> WeightedCubicSpline:
    r"""The interpolant minimizing :math:`\int w(t) f''(t)^2\,dt` (1D), for a positive weight w.

    Euler-Lagrange: :math:`(w f'')'' = \sum_j \lambda_j\delta_{x_j}`, with natural boundary
    conditions.  So :math:`M = w f''` is continuous, piecewise linear with kinks at the inner
    knots and zero at the outer ones, :math:`M = \sum_{j=2}^{N-1} m_j h_j` (hat functions), and

    .. math:: f(x) = c_0 + c_1 (x - x_1) + \sum_j m_j \int_{x_1}^{x} (x - t)\,\frac{h_j(t)}{w(t)}\,dt ,

    linear outside the hull.  The N interpolation conditions fix the N unknowns; the integrals
    use 40-point Gauss-Legendre rules per knot interval (exact to rounding for smooth w).
    For the ReLU curvature penalty, :math:`w = 1/\zeta`; a constant w gives the natural cubic spline.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if len(x) != len(y) or len(x) < 2:
        raise IbcheckError("a weighted spline needs at least 2 points and one value per point")
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise IbcheckError("the data contain repeated input points; interpolation needs distinct points")
    probe = np.linspace(x[0], x[-1], 101)
    if not np.all(weight(probe) > 0):
        raise IbcheckError("the spline weight must be positive on the data hull")
    spline = WeightedCubicSpline(x, y, weight, np.zeros(2), np.zeros(len(x) - 2))
    coef = np.linalg.solve(spline._basis(x), y)
    spline.affine, spline.moments = coef[:2], coef[2:]
    return spline


@lru_cache(maxsize=16)
def curvature_penalty_weight(init_kind: str, a_w: float = 1.0, a_b: float = 1.0, s_w: float = 1.0,
                             s_b: float = 1.0) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    r""":math:`1/\zeta(x)` for 1D ReLU from the theory layer's :math:`\zeta` (uniform or Gaussian init)
    as a numpy function, with the formula of :math:`\zeta` as text."""
    rational = sp.nsimplify
    if init_kind == "uniform":
        zeta = uniform_curvature_weight(rational(a_w), rational(a_b))
    elif init_kind == "gaussian":
        zeta = relu_curvature_weight(gaussian_density(rational(s_w), rational(s_b)))
    else:
        raise IbcheckError(f"no curvature weight for initialization {init_kind!r} (uniform or gaussian)")
    zeta_numeric = compile_expression(zeta, "numpy", X)

    def weight(t):
        with np.errstate(divide="ignore"):  # Min(1, 1/|x|) at x = 0 evaluates 1/0 = inf, then Min gives 1
            return 1.0 / np.asarray(zeta_numeric(np.asarray(t, dtype=float)), dtype=float)
    return weight, str(zeta)


# ---------------------------------------------------------------------------------------
# spectral density (kernel-regime decay rates)

def spectral_density(act: Activation, frequencies, rho: float = 1.0) -> np.ndarray:
    r""":math:`|\hat\sigma_\rho(\omega)|^2 = \rho^{-2}|\hat\sigma(\omega/\rho)|^2` (d = 1), i.e.
    :math:`1/W(\omega)` up to the constant :math:`C_1`, from the theory layer's numeric
    :math:`|\hat\sigma|^2` (``theory.penalty.squared_magnitude_numeric``)."""
    ft = fourier_transform(act)
    if ft.status == "not_applicable" or ft.pure_point_masses:
        raise Unsupported(f"{act.label}: no spectral weight ({ft.reason or 'band-limited transform'})")
    magnitude = squared_magnitude_numeric(ft)
    values = np.array([magnitude(float(w)) for w in np.asarray(frequencies, dtype=float) / rho])
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise Unsupported(f"{act.label}: |sigma_hat|^2 is zero or not finite at some of {list(frequencies)}")
    return values / rho**2
