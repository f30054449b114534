r"""The exact infinite-width prediction of a shallow network for its actual initialization.

A random-feature network :math:`f(x) = \sum_i v_i\,\sigma(w_i\cdot x + b_i)` whose output layer is
trained to infinite time from :math:`v = 0` is the minimum-norm interpolant of its features; as
the width grows it tends to the kernel interpolant

.. math::
   f_\infty(x) = K(x, X)\,K(X, X)^{-1} y, \qquad K(x, x') = \mathbb E_{(w, b)\sim\text{init}}\big[
   \sigma(w\cdot x + b)\,\sigma(w\cdot x' + b)\big],

with the expectation over the *actual* initialization (finite offset range, no free polynomial
part: the affine/null-space part of the fit is paid for by the kernel itself; spectral_bias.md
2.1).  Trained in all layers (NTK parameterization, :math:`v\sim N(0, s_v^2)`) the kernel is the
neural tangent kernel
:math:`\Theta = K + s_v^2\,(x\cdot x' + 1)\,\mathbb E[\sigma'(w\cdot x + b)\sigma'(w\cdot x' + b)]`
(Jacot et al. 2018), and after T gradient-descent steps the prediction is
:class:`numerics.networks.LinearizedSolution` with :math:`\Theta` in place of the empirical kernel.

The expectations are computed by deterministic quadrature, never by sampling:

* ``uniform`` and ``directions`` inits: the offset b is independent of w and uniform on
  :math:`[-A, A]` (:math:`A = a_b`, resp. :math:`\rho B`).  For each first-layer node w (composite
  Gauss-Legendre in :math:`w\in[-a_w, a_w]`; :math:`\pm\rho` in 1D; equally spaced angles on the
  circle in 2D, the periodic trapezoid rule) the integral over b is split at every point where
  :math:`w\cdot x + b` or :math:`w\cdot x' + b` crosses a breakpoint of :math:`\sigma`.  Where every
  piece of :math:`\sigma^{(k)}` is an exponential polynomial :math:`\sum_r c_r u^{j_r} e^{\lambda_r u}`
  (ReLU, |x|, ReLU^k, step, ELU, SELU-like formulas: :func:`exp_polynomial_pieces`) the integrand
  :math:`\sigma^{(k)}(p + b)\,\sigma^{(k)}(q + b)` is one on each piece of b too, and the b-integral is
  taken in closed form (:func:`_offset_closed_form`: :math:`\int_0^h t^m e^{-xt}dt` through
  :math:`E_m(x) = \int_0^1 s^m e^{-xs}ds`, :func:`_exp_moments`, stable for every x >= 0), O(pieces^2
  terms^2) operations per pair.  Otherwise the pieces are also cut at
  :math:`0, \pm1, \pm3, \pm9, \pm27` around the breakpoints (where tanh, GELU, ... change shape) and
  into ``panels`` uniform panels, each with Gauss-Legendre nodes (:func:`_offset_quadrature`).
* ``gaussian`` init (any dimension): :math:`(u, u') = (w\cdot x + b, w\cdot x' + b)` is a centred
  Gaussian pair with :math:`\Sigma_{11} = s_w^2|x|^2 + s_b^2`, :math:`\Sigma_{12} = s_w^2 x\cdot x' + s_b^2`;
  :math:`\mathbb E[\sigma(u)\sigma(u')] = \mathbb E_u[\sigma(u)\,\mathbb E[\sigma(u')\mid u]]`, both
  one-dimensional Gaussian integrals on :math:`[-8.5, 8.5]` standard deviations (tail mass
  :math:`2\cdot10^{-17}`), split at the breakpoints as above; for exponential-polynomial pieces the inner
  one, :math:`\mathbb E[\sigma(\mu + \tau s)]`, is in closed form (truncated normal moments,
  :func:`_conditional_closed_form`), the outer one by quadrature.

For an activation without breakpoints (tanh, GELU, sin, ...) both are replaced by one product rule
that does not depend on the pair of points (:func:`_feature_kernel`): every point's features
:math:`\sigma(w_m\cdot x + b_m)` are evaluated once at fixed nodes :math:`(w_m, b_m)` with
weights :math:`\omega_m` (the first-layer nodes above times composite Gauss-Legendre panels of
width :attr:`Accuracy.width` in the offset; for Gaussian weights in 1D the same panels, with two
more nodes each, in both standard-normal coordinates), and :math:`K = \Phi_a\,\mathrm{diag}(\omega)\,\Phi_c^T`: a
matrix product instead of a quadrature per pair.  The integrand is analytic in a strip around the
real axis (half-width :math:`\pi/2` for tanh, the nearest singularity of the built-ins), so
Gauss-Legendre panels of width 1 converge geometrically (predictions and decay-rate ratios of the
built-ins within 1e-8 of panels of width 1/4 with 8 nodes), like the per-pair rule at its anchors;
a breakpoint, whose location in b depends on the point, would need the per-pair cuts, so
piecewise activations keep them.

For Gaussian weights (any dimension: the kernel depends on the points only through the
covariances) the theory layer's closed forms of :math:`\mathbb E[\sigma(u)\sigma(u')]` and
:math:`\mathbb E[\sigma'(u)\sigma'(u')]` (issue 17, :mod:`theory.gaussian_kernels`) are used where they
exist and this module's quadrature is the independent check.  The quadrature error is
estimated by recomputing with fewer nodes (:func:`prediction`, ``quadrature_error``); tests compare with the arc-cosine kernel (Cho & Saul 2009) and the
closed form of :math:`\mathbb E[\sin u\,\sin u']`.  Where the offset integral is in closed form the
coarser quadrature changes the first-layer nodes only, so ``quadrature_error`` estimates their error alone
(rounding for the two directions in 1D, where the kernel is exact): :func:`closed_form_note` says so in
the reports.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp
import torch
from scipy import special

from theory.activations import Activation
from theory.errors import IbcheckError
from theory.evaluation import compile_expressions
from theory.fourier import term_shape
from theory.gaussian_kernels import NUMPY as NUMPY_FORMS
from theory.gaussian_kernels import gaussian_kernel
from theory.symbols import x as X

from .kernel_interpolation import as_points
from .networks import BLOCK_ENTRIES, Init, kernel_descent_weights
from .torch_activation import ARRAYS

#: anchors around each breakpoint for non-polynomial pieces (where tanh, GELU, ... change shape)
SMOOTH_ANCHORS = (0.0, -1.0, 1.0, -3.0, 3.0, -9.0, 9.0, -27.0, 27.0)
#: Gaussian integrals are truncated at this many standard deviations
GAUSS_CUT = 8.5


@dataclass(frozen=True)
class Accuracy:
    """Quadrature sizes: Gauss-Legendre order per piece, uniform panels of the offset range,
    first-layer nodes (panels of [-a_w, a_w] per side, or angles in 2D)."""

    order: int = 6
    panels: int = 16
    outer: int = 24
    angles: int = 256
    #: panel width of the pair-independent product rule (:func:`_feature_kernel`), in units of the
    #: pre-activation (1D Gaussian weights: of its largest standard deviation)
    width: float = 1.0

    def coarser(self) -> "Accuracy":
        return Accuracy(self.order - 1, self.panels * 3 // 4, self.outer * 3 // 4, self.angles * 3 // 4,
                        self.width * 4 / 3)


FINE = Accuracy()


@lru_cache(maxsize=16)
def _legendre(order: int):
    return np.polynomial.legendre.leggauss(order)


def _pieces(lo, hi, cuts, order: int):
    """Gauss-Legendre nodes and weights on [lo, hi] split at ``cuts`` (last axis), batched; ``lo`` and
    ``hi`` are numbers or arrays of the batch's shape.

    The products with the ``order`` nodes of each piece (a short last axis) run through torch's
    broadcasting, 2-4x faster than numpy's there, the same numbers."""
    edges = np.empty((*cuts.shape[:-1], cuts.shape[-1] + 2))
    inner = edges[..., 1:-1]
    np.clip(cuts, np.expand_dims(lo, -1), np.expand_dims(hi, -1), out=inner)
    inner.sort(axis=-1)  # the clipped cuts lie in [lo, hi]: the edges are sorted
    edges[..., 0], edges[..., -1] = lo, hi
    left, right = edges[..., :-1], edges[..., 1:]
    half, mid = torch.from_numpy((right - left) / 2)[..., None], torch.from_numpy((right + left) / 2)[..., None]
    t, w = (torch.from_numpy(v) for v in _legendre(order))
    nodes = (half * t).add_(mid).numpy()
    weights = (half * w).numpy()
    return nodes.reshape(*mid.shape[:-2], -1), weights.reshape(*mid.shape[:-2], -1)


def _polynomial_degree(act: Activation, derivative: int = 0) -> int | None:
    r"""The largest degree of the pieces of :math:`\sigma^{(k)}` (k = ``derivative``) where every piece is a
    polynomial (ReLU, |x|, ReLU^k, step), else None."""
    pieces = [sp.diff(sp.S(p), X, derivative) for p in act.pieces.pieces]
    if not all(p.is_polynomial(X) for p in pieces):
        return None
    return max((sp.Poly(p, X).degree() for p in pieces if p != 0), default=0)


def _anchors(act: Activation) -> np.ndarray:
    """Points of the pre-activation where the pieces of sigma change (or, for non-polynomial
    pieces, change shape)."""
    breaks = np.array([float(b) for b in act.pieces.breaks], dtype=float)
    if _polynomial_degree(act) is not None:
        return breaks
    around = breaks if len(breaks) else np.zeros(1)
    return np.unique(np.concatenate([breaks, (around[:, None] + np.array(SMOOTH_ANCHORS)).ravel()]))


def _sigmas(act: Activation, derivatives):
    r""":math:`z \mapsto (\sigma^{(k)}(z))_{k \in \text{derivatives}}`, arrays of z's shape, from one program
    (a subexpression they share evaluated once; each value the one its own program gives)."""
    program = compile_expressions([act.derivative(k) if k else act.bound for k in derivatives], ARRAYS.name)

    def evaluate(z):
        with np.errstate(over="ignore", invalid="ignore"):
            outs = [np.asarray(out, dtype=float) for out in program(z)]
        return tuple(np.broadcast_to(out, np.shape(z)) if out.shape != np.shape(z) else out for out in outs)
    return evaluate


def _sigma(act: Activation, derivative: int):
    r""":math:`\sigma^{(k)}` (k = ``derivative``) on arrays, as :func:`_sigmas`."""
    alone = _sigmas(act, (derivative,))
    return lambda z: alone(z)[0]


def _offset_range(init: Init) -> float:
    return init.a_b if init.kind == "uniform" else init.rho * init.offset


def _first_layer_nodes(init: Init, dim: int, acc: Accuracy) -> tuple[np.ndarray, np.ndarray]:
    """Nodes w (O, d) and probability weights (O,) of the first-layer weight distribution."""
    if init.kind == "uniform" and dim == 1:
        edges = np.linspace(-init.a_w, init.a_w, 2 * acc.outer + 1)
        nodes, weights = _pieces(edges[:1], edges[-1:], edges[None, 1:-1], acc.order)
        return nodes.reshape(-1, 1), weights.ravel() / (2 * init.a_w)
    if init.kind == "directions" and dim == 1:
        return np.array([[init.rho], [-init.rho]]), np.array([0.5, 0.5])
    if init.kind == "directions" and dim == 2:
        phi = (np.arange(acc.angles) + 0.5) * 2 * np.pi / acc.angles
        return init.rho * np.stack([np.cos(phi), np.sin(phi)], axis=1), np.full(acc.angles, 1 / acc.angles)
    raise IbcheckError(f"no exact kernel for the {init.kind} initialization in {dim} dimensions "
                       f"(available: uniform in 1D, directions in 1D/2D, gaussian in any dimension)")


@dataclass(frozen=True)
class _Rule:
    r"""An integral on arrays: ``integrate`` (the b-integral :math:`\int_{-A}^{A} f(p + b)\,f(q + b)\,db` of
    :func:`_flat_offset_kernel` for arrays p, q, or the inner integral of :func:`_gaussian_kernel` for arrays
    :math:`\mu, \tau`) and the entries of its temporaries per element (how many its caller passes at once)."""

    integrate: Callable[[np.ndarray, np.ndarray], np.ndarray]
    entries: int


def _offset_quadrature(f, anchors, big: float, acc: Accuracy) -> _Rule:
    r"""The b-integral by Gauss-Legendre (``acc.order`` nodes) on each piece of :math:`[-A, A]` cut into
    ``acc.panels`` uniform panels and at ``anchors`` :math:`- p` and :math:`- q` (module docstring)."""
    panel_cuts = np.linspace(-big, big, acc.panels + 1)[1:-1]

    def integrate(p, q):
        cuts = np.concatenate([np.broadcast_to(panel_cuts, (*p.shape, len(panel_cuts))),
                               anchors - p[..., None], anchors - q[..., None]], axis=-1)
        b, bw = _pieces(-big, big, cuts, acc.order)
        values = f(p[..., None] + b) * f(q[..., None] + b)
        values *= bw
        return np.sum(values, axis=-1)
    return _Rule(integrate, (len(panel_cuts) + 2 * len(anchors) + 1) * acc.order)


def _flat_offset_kernel(rule: _Rule, init: Init, a, c, acc: Accuracy, chunk: int = BLOCK_ENTRIES) -> np.ndarray:
    r""":math:`\mathbb E_w \frac1{2A}\int_{-A}^{A} f(w\cdot a + b) f(w\cdot c + b)\,db` (module docstring), the
    b-integral by ``rule`` (:func:`_offset_quadrature` or :func:`_offset_closed_form`) for every first-layer
    node w and pair, ``acc`` setting the first-layer nodes.

    The integral is symmetric in (a, c) and its nodes are too, so for ``a`` equal to ``c`` only the
    pairs i <= j are integrated and mirrored."""
    w_nodes, w_weights = _first_layer_nodes(init, a.shape[1], acc)
    big = _offset_range(init)
    symmetric = a.shape == c.shape and np.array_equal(a, c)
    if symmetric:
        rows, cols = np.triu_indices(len(a))
    else:
        rows, cols = (index.ravel() for index in np.indices((len(a), len(c))))
    p_all, q_all = (w_nodes @ a.T)[:, rows], (w_nodes @ c.T)[:, cols]  # (O, P): node x pair
    budget = max(1, chunk // rule.entries)  # (node, pair)s at once
    span = min(len(rows), budget)
    nodes = max(1, budget // span)
    total = np.zeros(len(rows))
    for o in range(0, len(w_nodes), nodes):
        for lo in range(0, len(rows), span):
            p, q = p_all[o:o + nodes, lo:lo + span], q_all[o:o + nodes, lo:lo + span]  # (k, s)
            total[lo:lo + span] += w_weights[o:o + nodes] @ rule.integrate(p, q) / (2 * big)
    out = np.empty((len(a), len(c)))
    out[rows, cols] = total
    if symmetric:
        out[cols, rows] = total
    return out


@dataclass(frozen=True)
class ExpPolynomialPieces:
    r""":math:`\sigma^{(k)}` as exponential polynomials between its breakpoints :math:`t_1 < \dots < t_n`: on the
    i-th piece :math:`(t_i, t_{i+1})` (:math:`t_0 = -\infty`, :math:`t_{n+1} = \infty`)
    :math:`\sigma^{(k)}(u) = \sum_r c_{ir}\,u^{j_{ir}}\,e^{\lambda_{ir} u}`, ``terms[i]`` the triples
    :math:`(c_{ir}, j_{ir}, \lambda_{ir})` (none for a zero piece)."""

    breaks: tuple[float, ...]
    terms: tuple[tuple[tuple[float, int, float], ...], ...]

    @property
    def edges(self) -> tuple[float, ...]:
        return (-np.inf, *self.breaks, np.inf)


@lru_cache(maxsize=64)
def exp_polynomial_pieces(act: Activation, derivative: int = 0) -> ExpPolynomialPieces | None:
    r"""The pieces of :math:`\sigma^{(k)}` (k = ``derivative``) as :class:`ExpPolynomialPieces` where every piece is
    a sum of :math:`c\,u^j e^{\lambda u}` with real numbers c, :math:`\lambda` (ReLU, |x|, ReLU^k, step, ELU, SELU-like
    formulas), else None; None also where :math:`\sigma^{(k)}` holds a point mass (the quadrature's compiler then
    refuses it, as for any sigma whose k-th derivative is not a function)."""
    if derivative and act.derivative(derivative).has(sp.DiracDelta):
        return None
    terms = []
    for piece in act.pieces.pieces:
        found = {}
        for term in sp.Add.make_args(sp.expand(sp.diff(sp.S(piece), X, derivative))):
            if term == 0:
                continue
            shape = term_shape(term)
            if shape is None or shape[2] != 0 or not all(v.is_number and v.is_real for v in (shape[0], shape[3])):
                return None
            c, j, _, lam = shape
            found[j, float(lam)] = found.get((j, float(lam)), 0.0) + float(c)
        terms.append(tuple((c, j, lam) for (j, lam), c in found.items() if c != 0))
    return ExpPolynomialPieces(tuple(float(b) for b in act.pieces.breaks), tuple(terms))


#: :func:`_exp_moments`: below x = m + 1 the series of :math:`E_m`, whose terms are positive, gets this many
#: terms plus 3m: its remainder is below :math:`(m+1)^K (m+1)!/(m+1+K)! < 10^{-17}` of the sum there
SERIES_TERMS = 20


@lru_cache(maxsize=32)
def _series_coefficients(m: int) -> np.ndarray:
    r""":math:`m!/(m+1+n)!`, n = K-1, ..., 0 (:func:`_exp_moments`, Horner's order)."""
    count = SERIES_TERMS + 3 * m
    return np.array([math.factorial(m) / math.factorial(m + 1 + n) for n in range(count)][::-1])


def _exp_moments(x: np.ndarray, degree: int) -> list[np.ndarray]:
    r""":math:`E_m(x) = \int_0^1 s^m e^{-x s}\,ds` for m = 0, ..., ``degree``, arrays of x's shape, x >= 0:

    .. math::
       E_m(x) = m!\,e^{-x}\sum_{n\ge0}\frac{x^n}{(m+1+n)!} \quad (x < m + 1), \qquad
       E_m(x) = \frac{m!}{x^{m+1}}\Big(1 - e^{-x}\sum_{k=0}^{m}\frac{x^k}{k!}\Big) \quad (x \ge m + 1)

    (:math:`m!\,P(m+1, x)/x^{m+1}`, P the regularized incomplete gamma function, DLMF 8.7.1 and 8.4.7).  Both are
    accurate to a few units of rounding: the series has positive terms (no cancellation, also for
    x -> 0, where :math:`e^{\lambda h} - 1` over :math:`\lambda h` would lose every digit), and at
    :math:`x \ge m + 1` the subtracted part is at most about one half."""
    decay = np.exp(-x)
    moments = []
    for m in range(degree + 1):
        small = x < m + 1
        out = np.empty_like(x)
        xs, coefficients = x[small], _series_coefficients(m)
        series = np.full_like(xs, coefficients[0])
        for coefficient in coefficients[1:]:
            series *= xs
            series += coefficient
        out[small] = series * decay[small]
        xl = x[~small]
        partial = np.full_like(xl, 1 / math.factorial(m))
        for k in range(m - 1, -1, -1):
            partial *= xl
            partial += 1 / math.factorial(k)
        out[~small] = math.factorial(m) * (1 - decay[~small] * partial) / xl ** (m + 1)
        moments.append(out)
    return moments


def _offset_closed_form(pieces: ExpPolynomialPieces, big: float) -> _Rule:
    r"""The b-integral in closed form for exponential-polynomial pieces (:class:`ExpPolynomialPieces`).

    Where :math:`p + b` lies in piece i and :math:`q + b` in piece i' (an interval [lo, hi] of b, of length h,
    possibly empty) the integrand is a sum of
    :math:`c\,c'\,(p+b)^{j}(q+b)^{j'}e^{\lambda(p+b) + \lambda'(q+b)}`.  With :math:`\Lambda = \lambda + \lambda'`,
    the anchor e = hi and s = -1 if :math:`\Lambda > 0`, else e = lo and s = 1, and :math:`u = p + e`,
    :math:`v = q + e` (b = e + s t, so that the exponential is largest at t = 0):

    .. math::
       \int_{lo}^{hi} = c\,c'\,e^{\lambda u + \lambda' v}\sum_{r \le j,\ r' \le j'}\binom{j}{r}\binom{j'}{r'}
       u^{j-r} v^{j'-r'} s^{r+r'}\,h^{r+r'+1} E_{r+r'}(|\Lambda| h)

    (:func:`_exp_moments`): the exact integral (Gradshteyn-Ryzhik 2.321), with no difference of antiderivatives
    F(hi) - F(lo) to cancel for close hi and lo, and no exponential larger than the integrand's own values.
    The terms of a piece (:math:`e^u` and -1 of ELU) can cancel near a breakpoint: an absolute error of
    a few roundings of the terms' size, far below the kernel's scale.  O(pieces^2 terms^2) array
    operations per pair instead of a quadrature's O(pieces x anchors x nodes)."""
    edges = pieces.edges

    def integrate(p, q):
        total = np.zeros(p.shape)
        for i, left in enumerate(pieces.terms):
            if not left:
                continue
            lo_p, hi_p = np.maximum(edges[i] - p, -big), np.minimum(edges[i + 1] - p, big)
            for k, right in enumerate(pieces.terms):
                if not right:
                    continue
                lo, hi = np.maximum(lo_p, edges[k] - q), np.minimum(hi_p, edges[k + 1] - q)
                h = hi - lo
                inside = h > 0
                if not inside.any():
                    continue
                h[~inside] = 0.0
                total += _pair_integral(left, right, p, q, lo, hi, h, inside)
        return total
    return _Rule(integrate, 16)


def _pair_integral(left, right, p, q, lo, hi, h, inside) -> np.ndarray:
    r""":math:`\int_{lo}^{hi}\sigma_i(p + b)\,\sigma_{i'}(q + b)\,db` for the terms ``left`` of piece i and ``right``
    of piece i' (:func:`_offset_closed_form`); ``h`` = max(hi - lo, 0), ``inside`` = h > 0."""
    total = np.zeros(p.shape)
    anchored, moments = {}, {}
    for c1, j1, l1 in left:
        for c2, j2, l2 in right:
            rate = l1 + l2
            ahead = rate > 0
            if ahead not in anchored:
                e = hi if ahead else lo
                anchored[ahead] = (p + e, q + e)
            u, v = anchored[ahead]
            if (abs(rate), j1 + j2) not in moments:
                if rate == 0:
                    scaled = [h ** (m + 1) / (m + 1) for m in range(j1 + j2 + 1)]
                else:
                    scaled = [e_m * h ** (m + 1) for m, e_m in enumerate(_exp_moments(abs(rate) * h, j1 + j2))]
                moments[abs(rate), j1 + j2] = scaled
            scaled = moments[abs(rate), j1 + j2]
            sign = -1.0 if ahead else 1.0
            poly = np.zeros(p.shape)
            for r in range(j1 + 1):
                for r2 in range(j2 + 1):
                    weight = math.comb(j1, r) * math.comb(j2, r2) * sign ** (r + r2)
                    poly += weight * u ** (j1 - r) * v ** (j2 - r2) * scaled[r + r2]
            if l1 or l2:
                exponent = np.where(inside, l1 * u + l2 * v, -np.inf)
                poly *= np.exp(exponent)
            total += c1 * c2 * poly
    return total


def _conditional_quadrature(fs, anchors, acc: Accuracy) -> _Rule:
    r""":math:`\mathbb E[f(\mu + \tau s)]`, :math:`s\sim N(0, 1)`, for each f that ``fs`` evaluates together, by
    Gauss-Legendre on :math:`s\in[-8.5, 8.5]` cut into ``acc.panels`` panels and where :math:`\mu + \tau s` crosses
    ``anchors``: ``integrate(mu, tau)`` gives the list (:func:`_gaussian_kernel`)."""
    panel_cuts = np.linspace(-GAUSS_CUT, GAUSS_CUT, acc.panels + 1)[1:-1]

    def integrate(mu, tau):
        tcuts = np.concatenate([np.broadcast_to(panel_cuts, (*mu.shape, len(panel_cuts))),
                                (anchors - mu[..., None]) / tau[..., None]], axis=-1)
        s, sw = _pieces(-GAUSS_CUT, GAUSS_CUT, tcuts, acc.order)
        _times_normal_density(sw, s)
        s *= tau[..., None]
        s += mu[..., None]  # u' = mu + tau s
        return [np.sum(sw * f_s, axis=-1) for f_s in fs(s)]
    return _Rule(integrate, (len(panel_cuts) + len(anchors) + 1) * acc.order)


def _conditional_closed_form(all_pieces) -> _Rule:
    r""":math:`\mathbb E[f(\mu + \tau s)]`, :math:`s\sim N(0, 1)`, in closed form for each f of exponential-polynomial
    pieces (``all_pieces``, :class:`ExpPolynomialPieces`).  A term :math:`c\,u^j e^{\lambda u}` on the piece
    :math:`(t_i, t_{i+1})` gives, completing the square (:math:`e^{\lambda\tau s}\varphi(s) =
    e^{\lambda^2\tau^2/2}\varphi(s - \lambda\tau)`), with :math:`m = \mu + \lambda\tau^2`,
    :math:`\alpha = (t_i - m)/\tau`, :math:`\beta = (t_{i+1} - m)/\tau`:

    .. math::
       c\,e^{\lambda\mu + \lambda^2\tau^2/2}\sum_{r\le j}\binom{j}{r} m^{j-r}\tau^r M_r(\alpha, \beta), \qquad
       M_r(\alpha, \beta) = \int_\alpha^\beta s^r\varphi(s)\,ds

    (:func:`_normal_moments`), exact where the quadrature truncates at 8.5 standard deviations
    (:math:`2\cdot10^{-17}` of the mass)."""
    def integrate(mu, tau):
        return [_conditional_mean(pieces, mu, tau) for pieces in all_pieces]
    return _Rule(integrate, 24)


def _normal_moments(a: np.ndarray, b: np.ndarray, degree: int) -> list[np.ndarray]:
    r""":math:`M_r(a, b) = \int_a^b s^r\varphi(s)\,ds`, r = 0, ..., ``degree`` (a <= b, infinite ends allowed):
    :math:`M_0 = \Phi(b) - \Phi(a)`, from the upper tails :math:`Q = 1 - \Phi` where a > 0 (no cancellation
    in either tail), and :math:`M_r = (r - 1)M_{r-2} + a^{r-1}\varphi(a) - b^{r-1}\varphi(b)` (integration by
    parts, :math:`\varphi' = -s\varphi`)."""
    upper = a > 0
    m0 = np.where(upper, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))
    moments = [m0]

    def edge(s, r):  # s^r phi(s), 0 at infinite s
        finite = np.isfinite(s)
        s = np.where(finite, s, 0.0)
        return np.where(finite, s**r * np.exp(-s**2 / 2) / np.sqrt(2 * np.pi), 0.0)
    for r in range(1, degree + 1):
        moments.append((r - 1) * moments[r - 2] + edge(a, r - 1) - edge(b, r - 1) if r > 1 else
                       edge(a, 0) - edge(b, 0))
    return moments


def _conditional_mean(pieces: ExpPolynomialPieces, mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    r""":math:`\mathbb E[f(\mu + \tau s)]` for one f of exponential-polynomial ``pieces``
    (:func:`_conditional_closed_form`); ``tau`` > 0 broadcasts against ``mu``."""
    edges = pieces.edges
    total = np.zeros(np.broadcast_shapes(mu.shape, tau.shape))
    for i, terms in enumerate(pieces.terms):
        for c, j, lam in terms:
            center = mu + lam * tau**2
            moments = _normal_moments((edges[i] - center) / tau, (edges[i + 1] - center) / tau, j)
            value = sum(math.comb(j, r) * center ** (j - r) * tau**r * moments[r] for r in range(j + 1))
            if lam:
                value = value * np.exp(lam * mu + (lam * tau) ** 2 / 2)
            total += c * value
    return total


def _conditional_rule(act: Activation, derivatives, acc: Accuracy) -> _Rule:
    r"""The inner integral :math:`\mathbb E[\sigma^{(k)}(u')\mid u]` of :func:`_gaussian_kernel` for each k in
    ``derivatives``: in closed form where every :math:`\sigma^{(k)}` has exponential-polynomial pieces, else by
    quadrature."""
    all_pieces = [exp_polynomial_pieces(act, k) for k in derivatives]
    if None in all_pieces:
        return _conditional_quadrature(_sigmas(act, derivatives), _anchors(act), acc)
    return _conditional_closed_form(all_pieces)


def _gaussian_kernel(fs, conditional: _Rule, anchors, breaks, init: Init, a, c, acc: Accuracy,
                     chunk: int = BLOCK_ENTRIES) -> list:
    r""":math:`\mathbb E[f(u) f(u')]` for the Gaussian pair (u, u') of the module docstring, for each of the
    functions f that ``fs`` evaluates together (``fs(z)``: a tuple of arrays), on one set of nodes; the
    inner integral :math:`g(u) = \mathbb E[f(u')\mid u]` by ``conditional`` (:func:`_conditional_quadrature`,
    or :func:`_conditional_closed_form` for exponential-polynomial pieces).

    The outer variable is :math:`z = u/\sqrt{\Sigma_{11}}`; g varies on
    the scale :math:`\tau/|\text{slope}|` where the conditional mean crosses a breakpoint of f, so the
    outer integral is also cut there (at 0, ±1, ±3, ±9 of that scale).  The nodes depend on the
    breakpoints and anchors only, so sigma and sigma' of the NTK share them (and their weights): each
    kernel is the number it is alone, the nodes formed once."""
    s11 = init.s_w**2 * np.sum(a**2, axis=1) + init.s_b**2
    s22 = init.s_w**2 * np.sum(c**2, axis=1) + init.s_b**2
    s12 = init.s_w**2 * (a @ c.T) + init.s_b**2
    outs = [np.zeros((len(a), len(c))) for _ in fs(np.zeros(0))]
    cut = GAUSS_CUT
    panel_cuts = np.linspace(-cut, cut, acc.panels + 1)[1:-1]
    scales = np.array([0.0, -1.0, 1.0, -3.0, 3.0, -9.0, 9.0])
    per_axis = (len(panel_cuts) + len(anchors) + len(breaks) * len(scales) + 1) * acc.order
    rows = max(1, chunk // (len(c) * per_axis * conditional.entries))
    for lo in range(0, len(a), rows):
        sd1 = np.sqrt(s11[lo:lo + rows])[:, None]  # (R, 1)
        slope = s12[lo:lo + rows] / sd1**2  # (R, N): E[u' | u] = slope u
        tau = np.sqrt(np.maximum(s22[None, :] - s12[lo:lo + rows]**2 / sd1**2, 0.0))  # (R, N)
        shape = slope.shape
        steep = np.where(np.abs(slope) > 1e-12, slope, 1e-12) * sd1  # dmu/dz
        crossings = (breaks[:, None] / steep[..., None, None] + scales * (tau / np.abs(steep))[..., None, None])
        zc = np.concatenate([np.broadcast_to(panel_cuts, (*shape, len(panel_cuts))),
                             np.broadcast_to((anchors / sd1)[:, None, :], (*shape, len(anchors))),
                             crossings.reshape(*shape, -1)], axis=-1)
        z, zw = _pieces(-cut, cut, zc, acc.order)  # (R, N, Z)
        _times_normal_density(zw, z)
        u = sd1[..., None] * z
        mu = slope[..., None] * u
        tiny = tau < 1e-9 * np.sqrt(s22)[None, :]
        safe = np.where(tiny, 1.0, tau)[:, :, None]
        for out, inner, f_mu, f_u in zip(outs, conditional.integrate(mu, safe), fs(mu), fs(u)):
            inner = np.where(tiny[:, :, None], f_mu, inner)  # E[f(u') | u]
            out[lo:lo + rows] = np.sum(zw * f_u * inner, axis=-1)
    return outs


def _times_normal_density(weights: np.ndarray, z: np.ndarray) -> None:
    r"""``weights`` :math:`\cdot\,e^{-z^2/2}/\sqrt{2\pi}` in place (the operations of
    ``weights * np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)`` in one buffer, the same numbers)."""
    density = np.square(z)
    density *= -0.5
    np.exp(density, out=density)
    weights *= density
    weights /= np.sqrt(2 * np.pi)


def _panels(lo: float, hi: float, width: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [lo, hi], panels no wider than ``width``."""
    edges = np.linspace(lo, hi, max(1, int(np.ceil((hi - lo) / width))) + 1)
    nodes, weights = _pieces(edges[:1], edges[-1:], edges[None, 1:-1], order)
    return nodes.ravel(), weights.ravel()


def _feature_nodes(init: Init, a: np.ndarray, c: np.ndarray, acc: Accuracy):
    r"""Nodes :math:`(w_m, b_m)` (shapes (M, d), (M,)) and probability weights (M,) of the product rule
    of :func:`_feature_kernel` (module docstring)."""
    if init.kind == "gaussian":
        if a.shape[1] != 1:
            raise IbcheckError("the product rule covers Gaussian weights in 1D only")
        reach = max(np.max(np.abs(a)), np.max(np.abs(c)), 0.0)
        scale = max(init.s_b, init.s_w * reach)  # the largest standard deviation of w x + b
        # two Gaussian coordinates over 17 standard deviations: two more nodes per panel, as the per-pair rule
        z, zw = _panels(-GAUSS_CUT, GAUSS_CUT, acc.width / scale, acc.order + 2)
        _times_normal_density(zw, z)
        zw_w, zw_b = np.meshgrid(z, z, indexing="ij")
        weights = np.outer(zw, zw).ravel()
        return init.s_w * zw_w.reshape(-1, 1), init.s_b * zw_b.ravel(), weights
    w_nodes, w_weights = _first_layer_nodes(init, a.shape[1], acc)
    big = _offset_range(init)
    b, bw = _panels(-big, big, acc.width, acc.order)
    return (np.repeat(w_nodes, len(b), axis=0), np.tile(b, len(w_nodes)),
            np.outer(w_weights, bw / (2 * big)).ravel())


def _feature_kernel(f, init: Init, a: np.ndarray, c: np.ndarray, acc: Accuracy, chunk: int = BLOCK_ENTRIES) -> np.ndarray:
    r""":math:`K = \Phi_a\,\mathrm{diag}(\omega)\,\Phi_c^T`, :math:`\Phi_a[i, m] = f(w_m\cdot a_i + b_m)`: the
    kernel of an activation without breakpoints by one product rule for every pair (module docstring);
    the features are evaluated per point, not per pair, in blocks of about ``chunk`` entries."""
    w, b, weights = _feature_nodes(init, a, c, acc)
    symmetric = a.shape == c.shape and np.array_equal(a, c)
    step = max(1, chunk // max(len(a), len(c)))
    transposed = np.zeros((len(c), len(a)))  # K^T: the weights scale the smaller block of features (c: the data)
    for lo in range(0, len(b), step):
        part = slice(lo, lo + step)
        fa = f(a @ w[part].T + b[part])
        fc = fa if symmetric else f(c @ w[part].T + b[part])
        transposed += (fc * weights[part]) @ fa.T
    return (transposed + transposed.T) / 2 if symmetric else np.ascontiguousarray(transposed.T)


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(np.asarray(arr, dtype=float))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


class _KernelMemory(OrderedDict):
    """Kernels computed in this process, the least recently stored dropped beyond ``budget`` bytes."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget = budget

    def put(self, key: tuple, kernel: np.ndarray) -> None:
        self[key] = kernel
        while sum(k.nbytes for k in self.values()) > self.budget and len(self) > 1:
            self.popitem(last=False)


#: the kernels of this process (:func:`exact_kernel`); 256 MB hold every kernel of the quick suite's
#: fit and training checks (each a few hundred by a few points)
_KERNELS = _KernelMemory(256 * 2**20)


def exact_kernel(act: Activation, init: Init, a, c, acc: Accuracy = FINE, derivative: int = 0,
                 quadrature_only: bool = False) -> np.ndarray:
    r""":math:`\mathbb E[\sigma^{(k)}(w\cdot a_i + b)\,\sigma^{(k)}(w\cdot c_j + b)]` over ``init``
    (k = ``derivative``), shape (len(a), len(c)) (module docstring); a read-only array.

    For Gaussian weights (k = 0, or k = 1 for a continuous sigma) the theory layer's closed form is
    used where it has one (:func:`_closed_gaussian_kernel`: arc-cosine family, erf, sin, cos,
    gaussian, exp), unless ``quadrature_only``; :func:`prediction` then estimates the
    quadrature error against this module's quadrature, an independent route.

    A kernel is computed once per process for given inputs (:data:`_KERNELS`): the checks judge
    every activation against the same few other activations' predictions (their controls), on
    the same data and init; the key holds the first-layer distribution only (the output layer's
    ``s_v`` and ``antisymmetric`` do not enter this expectation), so the NTK's first term reuses the
    random-feature kernel of the same (w, b)."""
    return exact_kernels(act, init, a, c, acc, [(derivative, quadrature_only)])[0]


def exact_kernels(act: Activation, init: Init, a, c, acc: Accuracy, wanted) -> list[np.ndarray]:
    """:func:`exact_kernel` for each ``(derivative, quadrature_only)`` in ``wanted``, remembered the same
    way; those computed together share what their quadrature shares (:func:`_computed_kernels`)."""
    a, c = as_points(a), as_points(c)
    first_layer = replace(init, s_v=0.0, antisymmetric=False)
    keys = {k: (act.label, sp.srepr(act.bound), first_layer, acc, *k, _digest(a, c)) for k in wanted}
    kernels = {k: _KERNELS[key] for k, key in keys.items() if key in _KERNELS}
    missing = [k for k in wanted if k not in kernels]
    for k, kernel in _computed_kernels(act, first_layer, a, c, acc, missing).items():
        kernel.flags.writeable = False
        _KERNELS.put(keys[k], kernel)
        kernels[k] = kernel
    return [kernels[k] for k in wanted]


def _computed_kernels(act: Activation, init: Init, a: np.ndarray, c: np.ndarray, acc: Accuracy,
                      wanted) -> dict[tuple, np.ndarray]:
    """:func:`exact_kernels` without the memory.  The nested Gaussian quadrature's nodes depend on sigma's
    breakpoints only, so the derivatives that take it (sigma and sigma' of the NTK) are integrated on
    one set of nodes (:func:`_gaussian_kernel`), each the same numbers as alone."""
    kernels, nested = {}, []
    for k, quadrature_only in wanted:
        if init.kind == "gaussian" and not quadrature_only and (k == 0 or k == 1 and not act.is_discontinuous):
            closed = _closed_gaussian_kernel(act, init, a, c, k)
            if closed is not None:
                kernels[k, quadrature_only] = closed
                continue
        if not len(act.pieces.breaks) and (init.kind != "gaussian" or a.shape[1] == 1):
            kernels[k, quadrature_only] = _feature_kernel(_sigma(act, k), init, a, c, acc)
        elif init.kind == "gaussian":
            nested.append((k, quadrature_only))
        else:
            pieces, big = exp_polynomial_pieces(act, k), _offset_range(init)
            # exponential-polynomial pieces: the b-integral in closed form (module docstring)
            rule = _offset_quadrature(_sigma(act, k), _anchors(act), big, acc) if pieces is None else \
                _offset_closed_form(pieces, big)
            kernels[k, quadrature_only] = _flat_offset_kernel(rule, init, a, c, acc)
    if nested:  # two nested Gaussian integrals over 17 standard deviations: more nodes
        breaks = np.array([float(b) for b in act.pieces.breaks], dtype=float)
        nodes, derivatives = replace(acc, order=acc.order + 2), [k for k, _ in nested]
        conditional = _conditional_rule(act, derivatives, nodes)
        kernels.update(zip(nested, _gaussian_kernel(_sigmas(act, derivatives), conditional, _anchors(act), breaks, init,
                                                    a, c, nodes)))
    return kernels


def gaussian_covariances(init: Init, a: np.ndarray, c: np.ndarray):
    r"""(A, B, C, R) of the Gaussian pre-activation pair :math:`(w\cdot a_i + b, w\cdot c_j + b)`, shape
    (len(a), len(c)) each: :math:`A = s_w^2|a|^2 + s_b^2`, :math:`C = s_w^2\,a\cdot c + s_b^2` and
    :math:`R = \sqrt{AB - C^2} = \sqrt{s_w^4\sum_{k<l}(a_k c_l - a_l c_k)^2 + s_w^2 s_b^2|a - c|^2}`
    (Lagrange's identity: a sum of squares, so nothing cancels near the diagonal; in 1D the
    :math:`R = s_w s_b|x - x'|` of :mod:`theory.gaussian_kernels`)."""
    sw2, sb2 = init.s_w**2, init.s_b**2
    aa, cc = np.sum(a**2, axis=1)[:, None], np.sum(c**2, axis=1)[None, :]
    wedge = a[:, None, :, None] * c[None, :, None, :] - a[:, None, None, :] * c[None, :, :, None]
    spread = np.sum((a[:, None, :] - c[None, :, :]) ** 2, axis=-1)
    r = np.sqrt(sw2**2 * np.sum(wedge**2, axis=(2, 3)) / 2 + sw2 * sb2 * spread)
    return (sw2 * aa + sb2) * np.ones_like(r), (sw2 * cc + sb2) * np.ones_like(r), sw2 * (a @ c.T) + sb2, r


def _closed_gaussian_kernel(act: Activation, init: Init, a: np.ndarray, c: np.ndarray, derivative: int):
    r""":math:`\mathbb E[\sigma^{(k)}(u)\sigma^{(k)}(u')]` (k = 0, 1) for Gaussian weights in any dimension from the
    theory layer's closed forms (:mod:`theory.gaussian_kernels`: arc-cosine family, erf, gaussian, sin,
    cos, exp), which depend on the points only through the covariances (:func:`gaussian_covariances`);
    None where there is no closed form."""
    try:
        forms = gaussian_kernel(act, init.s_w**2, init.s_b**2).forms
    except IbcheckError:
        return None
    if forms is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        values = forms(*gaussian_covariances(init, a, c), NUMPY_FORMS)[derivative]
    return np.array(np.broadcast_to(values, (len(a), len(c))), dtype=float)


def tangent_kernel(act: Activation, init: Init, a, c, acc: Accuracy = FINE, quadrature_only: bool = False) -> np.ndarray:
    r"""The infinite-width NTK :math:`K + s_v^2 (a\cdot c + 1)\,\mathbb E[\sigma'\sigma']` (module docstring),
    halved for an antisymmetric init (:class:`numerics.networks.ShallowNetwork` scales its output by
    :math:`\sqrt{1/2}` there, so that the doubled neurons keep the kernel's size)."""
    a, c = as_points(a), as_points(c)
    # ``quadrature_only`` applies to sigma's kernel; sigma''s takes its closed form where there is one
    values, slopes = exact_kernels(act, init, a, c, acc, [(0, quadrature_only), (1, False)])
    return (0.5 if init.antisymmetric else 1.0) * (values + init.s_v**2 * (a @ c.T + 1) * slopes)


# ---------------------------------------------------------------------------------------
# predictions (their kernels are remembered, :func:`exact_kernel`)

@dataclass(frozen=True)
class Prediction:
    """The infinite-width prediction on ``points`` and its estimated quadrature error (sup of
    the difference to a coarser quadrature, relative to max|y|; where the offset integral is in closed
    form, :func:`closed_form_note`, the error of the first-layer quadrature alone, and rounding where that
    is exact too: the directions init in 1D)."""

    values: np.ndarray
    quadrature_error: float
    what: str


def closed_form_note(act: Activation, init: Init, dim: int, layers: str = "output") -> str:
    """Words for a report where the offset integral of the ``uniform``/``directions`` kernels (and, for
    ``layers='all'``, the NTK's sigma' kernel) is in closed form (:func:`_offset_closed_form`), so that the
    quadrature error estimate is the first layer's alone, or rounding where the first layer is two exact
    directions (1D); "" otherwise."""
    derivatives = (0,) if layers == "output" else (0, 1)
    if init.kind == "gaussian" or not act.pieces.breaks or None in (exp_polynomial_pieces(act, k) for k in derivatives):
        return ""
    if init.kind == "directions" and dim == 1:
        return " (offset integral in closed form, first layer two directions: exact up to rounding)"
    return " (offset integral in closed form: the quadrature error is the first layer's)"


def _solve(k_points: np.ndarray, k_data: np.ndarray, y: np.ndarray, steps: int | None, lr: float | None) -> np.ndarray:
    """:math:`K(x, X)\\alpha` with the kernel-descent weights of
    :func:`numerics.networks.kernel_descent_weights` (T = ``steps`` steps of size ``lr``; None: infinite time)."""
    gram = torch.as_tensor(k_data * (1.0 if lr is None else lr))
    alpha = kernel_descent_weights(gram, -torch.as_tensor(y, dtype=torch.float64), steps, what="the infinite-width kernel")
    return k_points * (1.0 if lr is None else lr) @ alpha.numpy()


def prediction(act: Activation, init: Init, x, y, points, layers: str = "output", steps: int | None = None,
               lr: float | None = None, estimate_error: bool = True) -> Prediction:
    """The infinite-width prediction of ``act``'s network under ``init`` fitted to (x, y), on
    ``points``: random features (``layers='output'``) at infinite time, or all layers (NTK) after
    ``steps`` gradient-descent steps of size ``lr`` (the loss :math:`\\frac1{2N}\\sum r^2`)."""
    x, points = as_points(x), as_points(points)
    y = np.asarray(y, dtype=float)
    kernel = exact_kernel if layers == "output" else tangent_kernel
    results = []
    for acc, only in ((FINE, False), (FINE.coarser(), True)) if estimate_error else ((FINE, False),):
        results.append(_solve(kernel(act, init, points, x, acc, quadrature_only=only),
                              kernel(act, init, x, x, acc, quadrature_only=only), y, steps, lr))
    scale = float(np.max(np.abs(y)))
    error = float(np.max(np.abs(results[0] - results[1])) / scale) if estimate_error else float("nan")
    what = (f"infinite-width {'random-feature' if layers == 'output' else 'tangent'} kernel of the {init.kind} "
            f"init by quadrature" + closed_form_note(act, init, x.shape[1], layers)
            + ("" if steps is None else f", after {steps} steps"))
    return Prediction(results[0], error, what)
