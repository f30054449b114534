r"""Adaptive-regime dynamics in RS coordinates: flow equations, pinning, soft pinning.

spectral_bias.md section 5.  One neuron :math:`v\sigma(w\cdot x + b)` under Euclidean gradient
flow on :math:`L = \frac{1}{2N}\sum_j r_j^2`, :math:`r_j = f(x_j) - y_j`, with rates
:math:`\eta_v, \eta_w`.  The loss is a sum over data, so every equation is shown for one data
term and summed over j.

*RS flow* (5.1), derived here by the chain rule from :math:`(v, w, b)` and checked against the
closed forms, with :math:`z_j = \rho(\theta\cdot x_j - \beta)` and :math:`P = I - \theta\theta^T`:

.. math::
   \dot\rho = -\eta_w\tfrac{v}{N}\textstyle\sum_j r_j\sigma'(z_j)\,\theta\cdot x_j,\quad
   \dot\theta = -\eta_w\tfrac{v}{N\rho}\sum_j r_j\sigma'(z_j)\,P x_j,\quad
   \dot\beta = \eta_w\tfrac{v}{N\rho}\sum_j r_j\sigma'(z_j)\,(1 + \beta\,\theta\cdot x_j).

*Gap velocity* (5.2): the signed distance of data point :math:`x_k` from the zero-plane,
:math:`g = \theta\cdot x_k - \beta`, moves as

.. math:: \dot g = -\eta_w\tfrac{v}{N\rho}\sum_j r_j\,\sigma'(z_j)\,(1 + x_j\cdot x_k - g\,\theta\cdot x_j),

and the k-th kernel is :math:`1 + \|x_k\|^2` on the plane.

*Kinks* (5.2): where :math:`\sigma'` jumps by :math:`\kappa_c` at :math:`u = c`, the plane
:math:`\rho(\theta\cdot x - \beta) = c` (the zero-plane when c = 0) is a switching surface; with
:math:`A = \eta_w v r_k(1 + \|x_k\|^2)/(N\rho)` the gap velocity jumps by
:math:`\Delta = -A\kappa_c` across it, so attracting sliding (pinning) needs
:math:`v r_k\kappa_c > 0`, with the Filippov sliding slope
:math:`\sigma'_{\rm eff} = \sigma'(c^-) + \lambda\kappa_c`,
:math:`\lambda = \dot g(c^-)/(\dot g(c^-) - \dot g(c^+))`.

*Smooth activations* (5.4): near :math:`x_k`, :math:`\dot g \approx B - A\sigma'(\rho g)`;
equilibria solve :math:`\sigma'(u^*) = B/A` (:math:`u^* = \rho g^*`, so offsets are
:math:`O(1/\rho)`) and are stable iff :math:`A\sigma''(u^*) > 0`.  The monotone branches of
:math:`\sigma'` (:func:`equilibrium_branches`) say which activations pin through data points
(kinks), at a one-signed-curvature offset (convex: softplus), in offset clusters
(sigmoid-type: tanh, erf, logistic) or with extra equilibria (GELU, SiLU, Gaussian, sin).
:func:`gap_equilibria` is the scalar fixed-point solver of this equation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from .activations import Activation
from .derivation import Section, name
from .derive import register_section
from .errors import IbcheckError, Unsupported
from .evaluation import compile_expression
from .piecewise import PiecewiseSmooth
from .rs_coordinates import balance_defect, homogeneity, neuron_symbols, orbit_invariance, rs_identity, vanishes
from .symbols import x as X

#: half-width (in u = rho g) of the window where equilibria of the gap equation are sought
EQUILIBRIUM_WINDOW = 12.0
#: grid points per unit of u for locating sign changes of sigma''
GRID_DENSITY = 400
#: |sigma''| below this (relative to its maximum on the window) counts as zero (flat pieces)
FLAT_TOLERANCE = 1e-12
#: more sign changes of sigma'' than this in the window: "oscillating" (periodic activations)
OSCILLATING_CHANGES = 5

_r, _N = sp.Symbol("r", real=True), sp.Symbol("N", positive=True)
_eta_v, _eta_w = sp.Symbol("eta_v", positive=True), sp.Symbol("eta_w", positive=True)
_sigma = sp.Function("sigma")


#: stands for sigma'(z) at the data term's pre-activation
_slope = sp.Symbol("sigma'(z)")


def _named_slope(expr):
    """Replace sympy's ``Subs(Derivative(sigma(xi), xi), xi, z)`` by the symbol sigma'(z)."""
    return expr.replace(lambda e: isinstance(e, sp.Subs) and e.expr.has(_sigma), lambda e: _slope)


# ---------------------------------------------------------------------------------------
# 5.1 the flow in RS coordinates

@dataclass(frozen=True)
class RSFlow:
    """One data term of the flow: (v, w, b) field, its chain-rule image and the closed forms."""

    dim: int
    euclidean: dict[str, sp.Expr]
    chain_rule: dict[str, sp.Expr]
    closed_form: dict[str, sp.Expr]


@lru_cache(maxsize=4)
def rs_flow(dim: int) -> RSFlow:
    r"""Derive :math:`\dot\rho, \dot\theta, \dot\beta` by the chain rule from the Euclidean flow
    :math:`\dot p = -\eta\,(r/N)\,\partial f/\partial p` and verify the closed forms of 5.1 and the
    converse :math:`\dot w = \dot\rho\theta + \rho\dot\theta`, :math:`\dot b = -(\dot\rho\beta + \rho\dot\beta)`."""
    s = neuron_symbols(dim)
    z = s.preactivation
    out = s.v * _sigma(z)
    v_dot = -_eta_v * _r / _N * sp.diff(out, s.v)
    w_dot = sp.Matrix([_named_slope(-_eta_w * _r / _N * sp.diff(out, c)) for c in s.w])
    b_dot = _named_slope(-_eta_w * _r / _N * sp.diff(out, s.b))
    rho, theta, beta = s.rho, s.theta, s.beta
    params = list(s.w) + [s.b]
    velocity = sp.Matrix(list(w_dot) + [b_dot])
    chain = {
        "rho": (sp.Matrix([rho]).jacobian(params) * velocity)[0, 0],
        "theta": theta.jacobian(params) * velocity,
        "beta": (sp.Matrix([beta]).jacobian(params) * velocity)[0, 0],
    }
    ds = _slope
    tx = (theta.T * s.x)[0, 0]
    projector = sp.eye(s.dim) - theta * theta.T
    closed = {
        "rho": -_eta_w * s.v / _N * _r * ds * tx,
        "theta": -_eta_w * s.v / (_N * rho) * _r * ds * (projector * s.x),
        "beta": _eta_w * s.v / (_N * rho) * _r * ds * (1 + beta * tx),
    }
    for key in closed:
        if not vanishes(chain[key] - closed[key], f"the RS flow of {key}"):
            raise IbcheckError(f"the chain rule and the closed form of d{key}/dt disagree")
    if not vanishes(closed["rho"] * theta + rho * closed["theta"] - w_dot, "dw/dt from RS") or \
            not vanishes(-(closed["rho"] * beta + rho * closed["beta"]) - b_dot, "db/dt from RS"):
        raise IbcheckError("the RS flow does not reproduce the Euclidean gradients")
    return RSFlow(s.dim, {"v": v_dot, "w": w_dot, "b": b_dot}, chain, closed)


def mu_flow(act: Activation) -> sp.Expr | None:
    r"""For k-homogeneous :math:`\sigma`: :math:`\dot\mu` for :math:`\mu = v\rho^k` (one data term),

    .. math:: \dot\mu = -\tfrac{r}{N}\big[\eta_v\rho^{2k}\sigma(u) + \eta_w k v^2\rho^{2k-2}\sigma'(u)\,\theta\cdot x\big],
              \quad u = \theta\cdot x - \beta,

    verified on every piece of :math:`\sigma` against :math:`\rho^k\dot v + k v\rho^{k-1}\dot\rho`.
    Returns the closed form (None for non-homogeneous :math:`\sigma`)."""
    k = act.homogeneity_degree
    if k is None:
        return None
    rho, v, u, tx = sp.Symbol("rho", positive=True), sp.Symbol("v", real=True), sp.Symbol("u", real=True), \
        sp.Symbol("theta_x", real=True)
    closed_generic = -(_r / _N) * (_eta_v * rho**(2 * k) * _sigma(u) + _eta_w * k * v**2 * rho**(2 * k - 2)
                                   * sp.Symbol("sigma'(u)") * tx)
    for piece in act.pieces.pieces:
        p = sp.Lambda(X, piece)
        dp = sp.Lambda(X, sp.diff(piece, X))
        v_dot = -_eta_v * _r / _N * p(rho * u)
        rho_dot = -_eta_w * v / _N * _r * dp(rho * u) * tx
        chain = rho**k * v_dot + k * v * rho**(k - 1) * rho_dot
        closed = -(_r / _N) * (_eta_v * rho**(2 * k) * p(u) + _eta_w * k * v**2 * rho**(2 * k - 2) * dp(u) * tx)
        if not vanishes(sp.expand(chain - closed), "the mu flow"):
            raise IbcheckError(f"{act.label}: the mu flow closed form fails on the piece {piece}")
    return closed_generic


@lru_cache(maxsize=1)
def knot_flow() -> sp.Expr:
    r"""1D: the knot :math:`c = -b/w` moves as :math:`\dot c = \eta_w\,\tfrac{v\,s}{N\rho}\,r\,\sigma'(z)(1 + c x)`
    (s = sign w), derived from :math:`\dot w, \dot b` and verified for both signs of w."""
    s = neuron_symbols(1)
    flow = rs_flow(1).euclidean
    w, b, xx = s.w[0], s.b, s.x[0]
    c = -b / w
    derived = sp.diff(c, w) * flow["w"][0] + sp.diff(c, b) * flow["b"]
    for sign in (1, -1):
        rho = sp.Symbol("rho", positive=True)
        closed = _eta_w * s.v * sign / (_N * rho) * _r * _slope * (1 + c * xx)
        if not vanishes((derived - closed).subs(w, sign * rho), "the knot velocity"):
            raise IbcheckError("the knot velocity closed form fails")
    rho = sp.Symbol("rho", positive=True)
    sgn = sp.Symbol("s")
    c_sym = sp.Symbol("c", real=True)
    return _eta_w * s.v * sgn / (_N * rho) * _r * sp.Symbol("sigma'(z)") * (1 + c_sym * xx)


# ---------------------------------------------------------------------------------------
# 5.2 the gap velocity and kinks

@dataclass(frozen=True)
class GapKernel:
    """:math:`\\dot g` of one data term j in (w, b) and its kernel :math:`1 + x_j\\cdot x_k - g\\,\\theta\\cdot x_j`."""

    dim: int
    derived: sp.Expr
    kernel: sp.Expr
    on_plane_self: sp.Expr


@lru_cache(maxsize=4)
def gap_kernel(dim: int) -> GapKernel:
    r"""Derive :math:`\dot g` for :math:`g = (w\cdot x_k + b)/\|w\|` from the flow of data term j,
    verify :math:`\dot g = -\eta_w\frac{v}{N\rho} r_j\sigma'(z_j)(1 + x_j\cdot x_k - g\,\theta\cdot x_j)`,
    and that the kernel of the k-th term on the plane (g = 0) is :math:`1 + \|x_k\|^2`."""
    s = neuron_symbols(dim)
    xk = sp.Matrix(sp.symbols(f"xk1:{s.dim + 1}", real=True))
    xj = s.x
    rho = s.rho
    g = ((s.w.T * xk)[0, 0] + s.b) / rho
    flow = rs_flow(dim).euclidean
    derived = sum(sp.diff(g, c) * fc for c, fc in zip(s.w, flow["w"])) + sp.diff(g, s.b) * flow["b"]
    kernel = 1 + (xj.T * xk)[0, 0] - g * (s.theta.T * xj)[0, 0]
    closed = -_eta_w * s.v / (_N * rho) * _r * _slope * kernel
    if not vanishes(derived - closed, "the gap velocity"):
        raise IbcheckError("the gap velocity closed form fails")
    on_plane = kernel.subs(dict(zip(xj, xk))).subs(s.b, -(s.w.T * xk)[0, 0])
    norm2 = sum(c**2 for c in xk)
    if not vanishes(on_plane - (1 + norm2), "the on-plane kernel"):
        raise IbcheckError("the on-plane kernel is not 1 + |x_k|^2")
    return GapKernel(s.dim, derived, kernel, 1 + norm2)


@dataclass(frozen=True)
class Kink:
    r"""A jump of :math:`\sigma'` at u = ``location``: one-sided slopes and :math:`\kappa_c`."""

    location: float
    left_slope: float
    right_slope: float
    jump: float
    exact_jump: sp.Expr = field(default=sp.S.Zero, compare=False)


@lru_cache(maxsize=64)
def kinks(act: Activation) -> tuple[Kink, ...]:
    """The kinks of :math:`\\sigma` (breakpoints where :math:`\\sigma'` jumps, :math:`\\sigma` continuous)."""
    first = act.pieces.derivative()
    jumps_of_sigma = {a.location for a in first.atoms if a.order == 0}
    out = []
    for b in act.pieces.breaks:
        if b in jumps_of_sigma:
            continue
        left, right = first.value_at(b, "-"), first.value_at(b, "+")
        jump = sp.simplify(right - left)
        if jump != 0:
            out.append(Kink(float(b), float(left), float(right), float(jump), jump))
    return tuple(out)


@dataclass(frozen=True)
class Sliding:
    """The Filippov analysis of one (plane, data point) pair from its one-sided gap velocities
    (or of many pairs at once: arrays of velocities give arrays of classes)."""

    minus: float | np.ndarray
    plus: float | np.ndarray

    @property
    def attracting(self) -> bool | np.ndarray:
        """:math:`\\dot g(c^-) > 0 > \\dot g(c^+)`: the plane is caught (pinned)."""
        return (self.minus > 0) & (self.plus < 0)

    @property
    def repelling(self) -> bool | np.ndarray:
        return (self.minus < 0) & (self.plus > 0)

    @property
    def weight(self) -> float:
        r""":math:`\lambda = \dot g(c^-)/(\dot g(c^-) - \dot g(c^+))`, in (0, 1) when sliding."""
        return self.minus / (self.minus - self.plus)


@lru_cache(maxsize=1)
def sliding_identity() -> tuple[sp.Expr, sp.Expr]:
    r"""With :math:`\dot g(c^\pm) = B - A\sigma'(c^\pm)`: the jump :math:`-A\kappa` and the
    velocity with :math:`\sigma'_{\rm eff} = \sigma'(c^-) + \lambda\kappa`, verified to be 0."""
    A, B, lo, hi = sp.symbols("A B s_minus s_plus", real=True)
    g_minus, g_plus = B - A * lo, B - A * hi
    lam = g_minus / (g_minus - g_plus)
    jump = sp.simplify(g_plus - g_minus)
    effective = B - A * (lo + lam * (hi - lo))
    if not vanishes(effective, "the sliding velocity") or not vanishes(jump + A * (hi - lo), "the jump"):
        raise IbcheckError("the sliding identity fails")
    return jump, effective


# ---------------------------------------------------------------------------------------
# 5.4 soft pinning: branches of sigma' and the scalar gap equation

@dataclass(frozen=True)
class Branch:
    r"""An interval of u on which :math:`\sigma''` has one sign (``curvature`` = +1, -1 or 0),
    with the values of :math:`\sigma'` at its ends."""

    lo: float
    hi: float
    curvature: int
    slope_lo: float
    slope_hi: float


@dataclass(frozen=True)
class Equilibria:
    """The branch structure of :math:`\\sigma'` on the window and what it implies."""

    kind: str
    branches: tuple[Branch, ...]
    inflections: tuple[float, ...]
    description: str


@dataclass(frozen=True)
class GapEquilibrium:
    r"""A root :math:`u^*` of :math:`\sigma'(u) = B/A` and its stability :math:`A\sigma''(u^*) > 0`."""

    u: float
    stable: bool
    curvature: float


def _second_derivative_pieces(act: Activation) -> PiecewiseSmooth:
    return act.pieces.derivative().derivative()


@lru_cache(maxsize=64)
def _numeric_derivatives(act: Activation):
    """Numpy :math:`\\sigma'` and :math:`\\sigma''` evaluated piece by piece (atoms ignored).

    The pieces' ends are converted to floats once (the evaluators run in the fixed-point
    solvers' inner loops); a piece that covers every value given is applied without masking."""
    first, second = act.pieces.derivative(), _second_derivative_pieces(act)

    def compiled(pieces):
        return [(float(a) if a != -sp.oo else None, float(b), compile_expression(p, "numpy"))
                for a, b, p in pieces.intervals()]

    def evaluate(parts, u):
        u = np.asarray(u, dtype=float)
        out = np.zeros_like(u)
        with np.errstate(all="ignore"):
            for a, b, fn in parts:
                mask = (u > a) & (u <= b) if a is not None else (u <= b)
                if mask.all():
                    out[...] = np.asarray(fn(u), dtype=float)
                elif mask.any():
                    out[mask] = np.broadcast_to(np.asarray(fn(u[mask]), dtype=float), u[mask].shape)
        return out
    d1, d2 = compiled(first), compiled(second)
    return (lambda u: evaluate(d1, u)), (lambda u: evaluate(d2, u))


def derivative_functions(act: Activation):
    """Vectorised numpy :math:`(\\sigma', \\sigma'')` (kinks: one-sided pieces, no point masses)."""
    return _numeric_derivatives(act)


@lru_cache(maxsize=64)
def _sign_change(func: Callable[[float], float], a: float, b: float) -> float:
    """A zero of ``func`` in [a, b] by Brent's method when the values at the ends bracket one;
    else (the sign classification saw a change that the values do not show: a near-flat
    stretch or an inflection on a grid point) the end where ``|func|`` is smaller."""
    fa, fb = func(a), func(b)
    if fa * fb <= 0:
        return brentq(func, a, b, xtol=1e-14)
    return a if abs(fa) <= abs(fb) else b


@lru_cache(maxsize=64)
def equilibrium_branches(act: Activation, window: float = EQUILIBRIUM_WINDOW) -> Equilibria:
    r"""The monotone branches of :math:`\sigma'` on :math:`|u| \le` ``window`` and the class of
    :math:`\sigma` they define (5.4):

    ``frozen`` (:math:`\sigma' = 0` almost everywhere: GD does not move zero-planes), ``kink``
    (hard pinning, :func:`kinks`), ``affine`` (:math:`\sigma'' \equiv 0`: no equilibria),
    ``convex`` / ``concave`` (one equilibrium, stable iff :math:`A \gtrless 0`), ``sigmoid``
    (:math:`\sigma'` a bump: two equilibria, the stable one on the side where
    :math:`\mathrm{sign}\,\sigma'' = \mathrm{sign}\,A`, none at u = 0), ``dip`` (the reverse),
    ``multiple`` (extra equilibrium pairs: GELU, SiLU, Gaussian) and ``oscillating``
    (periodic :math:`\sigma'`: many equilibria)."""
    d1, d2 = derivative_functions(act)
    grid = np.linspace(-window, window, int(2 * window * GRID_DENSITY) + 1)
    curv = d2(grid)
    if not np.all(np.isfinite(curv)):
        raise Unsupported(f"{act.label}: sigma'' is not finite on |u| <= {window:g}")
    scale = max(1.0, float(np.max(np.abs(curv))))
    signs = np.where(np.abs(curv) <= FLAT_TOLERANCE * scale, 0, np.sign(curv)).astype(int)
    # a single grid point exactly on a simple zero of sigma'' is an inflection, not a flat piece
    lone = np.nonzero((signs[1:-1] == 0) & (signs[:-2] != 0) & (signs[2:] != 0))[0] + 1
    signs[lone] = signs[lone - 1]
    breaks = [float(b) for b in act.pieces.breaks if abs(float(b)) < window]
    cuts, inflections = [], []
    for i in range(len(grid) - 1):
        if signs[i] != signs[i + 1]:
            a, b = grid[i], grid[i + 1]
            inside = [c for c in breaks if a <= c <= b]
            if inside:
                cuts.append(inside[0])
            elif signs[i] != 0 and signs[i + 1] != 0:
                root = _sign_change(lambda t: float(d2(np.array([t]))[0]), a, b)
                cuts.append(root)
                inflections.append(root)
            else:
                cuts.append(a if signs[i + 1] == 0 else b)
    ends = [-window, *cuts, window]
    branches = []
    for lo, hi in zip(ends, ends[1:]):
        mid = signs[(grid > lo) & (grid < hi)]
        curvature = int(np.sign(mid.sum())) if len(mid) else 0
        s_lo, s_hi = d1(np.array([lo + 1e-12]))[0], d1(np.array([hi - 1e-12]))[0]
        if branches and branches[-1].curvature == curvature:
            prev = branches.pop()
            lo, s_lo = prev.lo, prev.slope_lo
        branches.append(Branch(lo, hi, curvature, float(s_lo), float(s_hi)))
    kind, description = _classify(act, tuple(branches), len(inflections))
    return Equilibria(kind, tuple(branches), tuple(inflections), description)


def _classify(act: Activation, branches: tuple[Branch, ...], n_inflections: int) -> tuple[str, str]:
    if act.is_discontinuous:
        return "frozen", ("sigma jumps, so sigma' is a point mass plus zero: under gradient descent the "
                          "first layer gets no gradient almost everywhere and zero-planes do not move")
    ks = kinks(act)
    if ks:
        where = ", ".join(f"u = {k.location:g} (kappa = {k.jump:g})" for k in ks)
        through = "through data points" if any(k.location == 0 for k in ks) else \
            "at offset c/rho from them (the kink planes rho(theta.x - beta) = c)"
        return "kink", (f"kinks at {where}: hard pinning {through}, attracting iff v r_k kappa > 0")
    pattern = [b.curvature for b in branches if b.curvature != 0]
    if not pattern:
        return "affine", "sigma'' = 0: sigma' is constant, the gap equation has no equilibria (no pinning)"
    if n_inflections > OSCILLATING_CHANGES:
        return "oscillating", ("sigma' oscillates (sigma'' changes sign "
                               f"{n_inflections} times on the window): many equilibria, alternating stability; "
                               "the other data points' terms oscillate too (B is not slowly varying), so the local "
                               "rule A sigma''(u*) > 0 is outside its premise and stability is the sign of the exact "
                               "gap velocity's slope dg'/dg, measured by the `pinning` check")
    if pattern == [1]:
        return "convex", ("sigma'' >= 0: one equilibrium sigma'(u*) = B/A per data point, stable iff v r_k > 0; "
                          "soft pinning at offset u*/rho, which tends to hard pinning as rho grows")
    if pattern == [-1]:
        return "concave", "sigma'' <= 0: one equilibrium per data point, stable iff v r_k < 0"
    if pattern == [1, -1]:
        return "sigmoid", ("sigma' is a bump: two equilibria when 0 < B/A < max sigma', the stable one where "
                           "sign sigma''(u*) = sign A; the peak is degenerate (sigma'' = 0), so planes sit at "
                           "offsets +-O(1/rho) from data points: offset clusters, not planes through them "
                           "(this needs B/A = O(1); when the data spacing D >> 1/rho, B/A ~ exp(-2 rho D) and "
                           "the stable plane moves to the balance point between neighbouring data points, "
                           "measured by the `pinning` check)")
    if pattern == [-1, 1]:
        return "dip", ("sigma' has a minimum: two equilibria when min sigma' < B/A, the stable one where "
                       "sign sigma''(u*) = sign A; offset clusters")
    return "multiple", (f"sigma'' changes sign {n_inflections} times: besides the main equilibrium, extra "
                        "stable/unstable pairs where sigma' overshoots (B/A beyond the asymptotic slopes)")


def gap_equilibria(act: Activation, A: float, B: float, window: float = EQUILIBRIUM_WINDOW) -> list[GapEquilibrium]:
    r"""The scalar fixed-point solver: all roots of :math:`\sigma'(u) = B/A` on :math:`|u| \le`
    ``window`` (one bracketed root per strictly monotone branch), each with its stability
    :math:`A\sigma''(u^*) > 0`, read from the branch's sign of :math:`\sigma''` (constant on it).  ``u = rho g`` is the pre-activation at the data point."""
    return gap_equilibria_many(act, np.array([A], dtype=float), np.array([B], dtype=float), window)[0]


def gap_equilibria_many(act: Activation, A: np.ndarray, B: np.ndarray,
                        window: float = EQUILIBRIUM_WINDOW) -> list[list[GapEquilibrium]]:
    """:func:`gap_equilibria` for many (A, B) pairs at once (vectorised bisection, 60 halvings:
    float64 resolution on the window)."""
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    d1, d2 = derivative_functions(act)
    valid = np.isfinite(A) & np.isfinite(B) & (A != 0)
    target = np.where(valid, B / np.where(A == 0, 1.0, A), np.nan)
    found: list[list[GapEquilibrium]] = [[] for _ in A]
    for br in equilibrium_branches(act, window).branches:
        if br.curvature == 0:
            continue
        lo_v, hi_v = min(br.slope_lo, br.slope_hi), max(br.slope_lo, br.slope_hi)
        inside = valid & (target >= lo_v) & (target <= hi_v)
        if not inside.any():
            continue
        t = target[inside]
        a = np.full(t.shape, br.lo + 1e-12)
        b = np.full(t.shape, br.hi - 1e-12)
        increasing = br.curvature > 0
        for _ in range(60):
            mid = (a + b) / 2
            below = (d1(mid) < t) if increasing else (d1(mid) > t)
            a, b = np.where(below, mid, a), np.where(below, b, mid)
        roots = (a + b) / 2
        curvature = d2(roots)
        # stability from the branch's sign of sigma'' (fixed on a strictly monotone branch), not
        # from the evaluated sigma''(u*), which can round to 0 or either sign in flat tails
        for index, root, c in zip(np.nonzero(inside)[0], roots, curvature):
            found[index].append(GapEquilibrium(float(root), bool(A[index] * br.curvature > 0), float(c)))
    return found


# ---------------------------------------------------------------------------------------
# the derivation section

def _sym(plain: str, latex: str) -> sp.Symbol:
    return name(plain, latex)


def dynamics_section(act: Activation, dim: int) -> Section:
    """RS coordinates, the RS flow, pinning and soft-pinning conditions for ``act`` (``ibcheck derive``)."""
    section = Section("Adaptive regime: RS coordinates, zero-plane dynamics, pinning")
    res = section.results
    d = min(dim, 3)
    rs_identity(d)
    section.step(f"RS coordinates rho = |w|, theta = w/rho, beta = -b/rho: w.x + b = rho (theta.x - beta) "
                 f"(verified symbolically in dimension {d}); the zero-plane is theta.x = beta.",
                 sp.Eq(_sym("w.x + b", r"w\cdot x + b"), _sym("rho*(theta.x - beta)", r"\rho(\theta\cdot x - \beta)")))
    hom = homogeneity(act)
    k = hom.degree
    res["homogeneity_degree"] = k
    if k is not None:
        orbit_invariance(d, k)
        vk, rk = {0: ("v", "v"), 1: ("v/a", "v rho")}.get(k, (f"v/a^{k}", f"v rho^{k}"))
        section.step(f"{hom.statement}. Under (v, w, b) -> ({vk}, a w, a b), a > 0, theta and beta are "
                     f"unchanged, rho -> a rho and mu = {rk} is unchanged (verified), and the output "
                     f"v sigma(w.x + b) is invariant: the symmetry is removed by (mu, theta, beta), d + 1 "
                     "parameters per neuron instead of d + 2.",
                     sp.Eq(_sym("f(x)", "f(x)"), sp.Sum(_sym("mu_i", r"\mu_i") * _sigma(_sym("theta_i.x - beta_i",
                           r"\theta_i\cdot x - \beta_i")), (sp.Symbol("i"), 1, sp.Symbol("n")))))
        res["rs_coordinates"] = "(mu, theta, beta)"
    else:
        orbit_invariance(d, None)
        section.step(f"Not homogeneous: {hom.statement}. There is no rescaling symmetry to remove. "
                     "ibcheck's treatment (notes 1.3, option b): keep rho as the sharpness coordinate; "
                     "(v, rho, theta, beta) is a bijective reparameterization of w != 0 (d + 2 parameters, "
                     "nothing reduced), theta and beta are still the zero-plane, mu and the balance law "
                     "do not exist.",
                     sp.Eq(_sym("f(x)", "f(x)"), sp.Sum(_sym("v_i", "v_i") * _sigma(_sym("rho_i(theta_i.x - beta_i)",
                           r"\rho_i(\theta_i\cdot x - \beta_i)")), (sp.Symbol("i"), 1, sp.Symbol("n")))))
        res["rs_coordinates"] = "(v, rho, theta, beta)"
    defect = balance_defect(act)
    res["balance_defect"] = defect
    kk = "" if k in (None, 1) else f"{k} "
    section.step(f"Balance (eta_v = eta_w): d/dt({kk}v^2 - |w|^2 - b^2) = -(2v/N) sum_j r_j ({kk}sigma(z_j) "
                 f"- z_j sigma'(z_j)); for this sigma the bracket is "
                 + ("0 (Euler's identity), so the balance is conserved." if defect == 0 else
                    "nonzero, so nothing is conserved:"),
                 None if defect == 0 else sp.Eq(_sym("k sigma(z) - z sigma'(z)", r"k\sigma(z) - z\sigma'(z)"),
                                                 defect.subs(X, sp.Symbol("z", real=True))))
    rs_flow(d)
    section.step("Gradient flow of one data term (sum over j) in RS coordinates, derived by the chain rule "
                 "from (v, w, b) and checked against the closed forms; w' = rho' theta + rho theta' and "
                 "b' = -(rho' beta + rho beta') reproduce the Euclidean gradients (verified):",
                 "rho' = -eta_w (v/N) r sigma'(z) theta.x;  theta' = -eta_w v/(N rho) r sigma'(z) (I - theta "
                 "theta^T) x;  beta' = eta_w v/(N rho) r sigma'(z) (1 + beta theta.x)")
    res["rs_flow_verified"] = True
    res["sigma_prime"] = act.derivative(1)
    if k is not None:
        mu_dot = mu_flow(act)
        section.step(f"mu = {rk} moves as (verified on every piece of sigma, u = theta.x - beta):",
                     sp.Eq(_sym("mu'", r"\dot\mu"), mu_dot))
    if dim == 1:
        knot_flow()
        section.step("1D: the knot c = -b/w (s = sign w) moves as (verified for both signs)",
                     sp.Eq(_sym("c'", r"\dot c"), sp.Symbol("eta_w") * sp.Symbol("v") * sp.Symbol("s")
                           / (sp.Symbol("N") * sp.Symbol("rho")) * sp.Symbol("r") * _sym("sigma'(z)", r"\sigma'(z)")
                           * (1 + sp.Symbol("c") * sp.Symbol("x"))))
    gap_kernel(d)
    section.step("Gap g = theta.x_k - beta of data point x_k: g' = -eta_w v/(N rho) sum_j r_j sigma'(z_j) "
                 "K_j with K_j = 1 + x_j.x_k - g theta.x_j (verified); on the plane the k-th kernel is "
                 "1 + |x_k|^2 (the rotation and offset terms combine).",
                 sp.Eq(_sym("K_k(g=0)", "K_k(0)"), 1 + _sym("|x_k|^2", r"\|x_k\|^2")))
    eq = equilibrium_branches(act)
    res["pinning_kind"] = eq.kind
    res["pinning_description"] = eq.description
    if eq.kind == "frozen":
        section.step(f"Pinning: {eq.description}.")
        return section
    sliding_identity()
    ks = kinks(act)
    res["kinks"] = [(k_.location, k_.exact_jump) for k_ in ks]
    if ks:
        for k_ in ks:
            plane = "zero-plane" if k_.location == 0 else f"kink plane rho(theta.x - beta) = {k_.location:g}"
            section.step(f"Kink at u = {k_.location:g}: sigma' jumps from {k_.left_slope:g} to {k_.right_slope:g}. "
                         f"With A = eta_w v r_k (1 + |x_k|^2)/(N rho) and B the other data, g'(c+-) = B - A "
                         f"sigma'(c+-), so across the {plane} the gap velocity jumps by Delta = -A kappa. "
                         "Attracting sliding (pinning) needs g'(c-) > 0 > g'(c+), hence the sign rule:",
                         sp.StrictGreaterThan(sp.Symbol("v") * sp.Symbol("r_k") * k_.exact_jump, 0))
        section.step("Filippov sliding velocity (verified: g' = 0 on the surface): sigma'_eff = sigma'(c-) + "
                     "lambda kappa with", sp.Eq(_sym("lambda", r"\lambda"), _sym("g'(c-)", r"\dot g(c^-)")
                                                / (_sym("g'(c-)", r"\dot g(c^-)") - _sym("g'(c+)", r"\dot g(c^+)"))))
        res["sign_rule"] = [f"v r_k ({k_.exact_jump}) > 0" for k_ in ks]
    second = act.pieces.derivative().derivative()
    curvature = second.as_expr() if not second.atoms else sp.Piecewise(*[(p, X < b) for p, b in
                                                                         zip(second.pieces, second.breaks)],
                                                                       (second.pieces[-1], True))
    res["sigma_second"] = curvature
    if any(b.curvature != 0 for b in eq.branches):
        section.step("Smooth part (soft pinning): near x_k, g' = B - A sigma'(rho g). Equilibria u* = rho g* "
                     "solve sigma'(u*) = B/A (offsets O(1/rho)); stable iff A sigma''(u*) > 0 (leading order in a slowly "
                     "varying B; exactly: dg'/dg < 0 with every data term), with",
                     sp.Eq(_sym("sigma''(u)", r"\sigma''(u)"), curvature.subs(X, sp.Symbol("u", real=True))))
    shown = "; ".join(f"[{b.lo:.3g}, {b.hi:.3g}]: sigma'' {'>' if b.curvature > 0 else '<' if b.curvature < 0 else '='} 0, "
                      f"sigma' from {b.slope_lo:.3g} to {b.slope_hi:.3g}" for b in eq.branches[:8])
    more = f" (and {len(eq.branches) - 8} more)" if len(eq.branches) > 8 else ""
    res["branches"] = [(b.lo, b.hi, b.curvature, b.slope_lo, b.slope_hi) for b in eq.branches]
    res["inflections"] = list(eq.inflections)
    section.step(f"Branches of sigma' on |u| <= {EQUILIBRIUM_WINDOW:g} (numeric): {shown}{more}. "
                 f"Class '{eq.kind}': {eq.description}.")
    return section


register_section("adaptive", dynamics_section)
