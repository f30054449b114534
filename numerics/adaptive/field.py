r"""The frozen residual field (spectral_bias.md 5.4, 5.5 step 3), 1D: single neurons with fixed
output weight in the residual field r = -y of the data, the exact gap equation, its roots and
their stability, soft pinning and the placement test of predicted equilibria."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from theory.activations import Activation
from theory.dynamics import Sliding, derivative_functions, gap_equilibria_many, kinks

from ..torch_activation import torch_activation
from ..training import array_descent

#: a plane counts as resting on an equilibrium when its u = rho g is this close to the root
OFFSET_TOLERANCE = 0.05
#: half-width (in u) of the search for the equilibrium a plane rests on
LOCAL_SEARCH = 1.0
#: largest jump of u = w x_k + b per GD step across a kink plane in the frozen field
CHATTER = 2e-3
#: an equilibrium is judged after this many of its own relaxation times 1/|G'|
RELAXATION_TIMES = 5.0
#: a plane placed next to a kink plane is judged after this many of its crossing times delta/|u'|
CROSSING_TIMES = 2.0
#: ... provided the sharpness rho changed by less than this fraction meanwhile
MAX_DRIFT = 0.1
#: a gap equilibrium is tested only where the gap relaxes this much faster than rho drifts
TIMESCALE_SEPARATION = 10.0
#: float64 unit of the last place at 1
ULP = float(np.finfo(float).eps)
#: ulps of the derivative scale M (:func:`derivative_scale`) that one evaluated value of
#: :math:`\sigma'` or :math:`\sigma''` may be off by: a lowering combines sub-expressions of size
#: up to M (1 - tanh^2, s - s^2 with s = sigmoid: absolute error ~ 2 ulps of M however small the
#: result; libm functions <= 1 ulp each), and rounding the argument z = rho(s(x_j - x_k) + g)
#: (~3 ulps of |z|) moves the value by ~3 ulps of |z sigma''(z)| <= M where |z| <= 12; beyond,
#: that is a backward error (the same G at a plane moved by a few ulps of |z|/rho in g), which no
#: change of lowering alters
EVALUATION_ULPS = 8
#: the grid on which M is taken (the activations' structure lives within |u| <= 12)
SCALE_WINDOW = 12.0


@lru_cache(maxsize=64)
def derivative_scale(act: Activation) -> float:
    r""":math:`M = \max_{|u|\le 12}\max(|\sigma'(u)|, |\sigma''(u)|, |u\,\sigma''(u)|)`: the size
    of the quantities any float64 lowering of :math:`\sigma', \sigma''` combines, so that
    each evaluated value is within :data:`EVALUATION_ULPS` ulps of M of the exact one
    (:func:`gap_velocity`'s rounding bounds)."""
    d1, d2 = derivative_functions(act)
    grid = np.linspace(-SCALE_WINDOW, SCALE_WINDOW, 4801)
    first, second = np.abs(d1(grid)), np.abs(d2(grid))
    return float(np.nanmax(np.concatenate([first, second, np.abs(grid) * second])))


def resolved_sign(value, bound) -> np.ndarray:
    r"""The sign of ``value`` where it exceeds its rounding ``bound`` (+1 / -1), else 0: a
    value within rounding of 0, or not finite (an overflow), has no sign."""
    value, bound = np.asarray(value, dtype=float), np.asarray(bound, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(value) & (np.abs(value) > bound), np.sign(value), 0.0)


@dataclass(frozen=True)
class FieldNeurons:
    """1D neurons placed at data point ``point`` with orientation ``sign`` (of w), output
    weight ``v``, pre-activation ``u0`` at that point and sharpness :math:`|w| =` ``rho0``."""

    point: np.ndarray
    sign: np.ndarray
    v: np.ndarray
    u0: np.ndarray
    rho0: np.ndarray

    def __add__(self, other: "FieldNeurons") -> "FieldNeurons":
        return FieldNeurons(*(np.concatenate([a, b]) for a, b in zip(
            (self.point, self.sign, self.v, self.u0, self.rho0),
            (other.point, other.sign, other.v, other.u0, other.rho0))))


def field_population(n_points: int, offsets, rho0: float) -> FieldNeurons:
    """Every data point x every orientation x v = +-1 x every start offset in ``offsets``."""
    k, s, v, u = np.meshgrid(np.arange(n_points), [1.0, -1.0], [1.0, -1.0], np.asarray(offsets, float),
                             indexing="ij")
    return FieldNeurons(k.ravel(), s.ravel(), v.ravel(), u.ravel(), np.full(k.size, float(rho0)))


def field_step_size(act: Activation, x: np.ndarray, residual: np.ndarray) -> float:
    r"""A GD step that resolves the field flow: half the inverse of the curvature bound
    :math:`\max|\sigma''|\,\sum_j |r_j|(1 + x_j^2)/N` of the (w, b) loss, and for a kink a
    step whose chattering across the plane (one step moves u by at most
    :math:`\eta\,\max_k|r_k\kappa|(1+x_k^2)/N`) stays below :data:`CHATTER` in u."""
    _, d2 = derivative_functions(act)
    grid = np.linspace(-12, 12, 4801)
    load = float(np.sum(np.abs(residual) * (1 + x**2)) / len(x))
    curvature = float(np.max(np.abs(d2(grid)))) * load
    rate = 0.5 / curvature if curvature > 0 else 1.0
    for kink in kinks(act):
        rate = min(rate, CHATTER / (abs(kink.jump) * float(np.max(np.abs(residual) * (1 + x**2))) / len(x)))
    return rate


def _field_descent(act: Activation, x: np.ndarray, residual: np.ndarray, v: np.ndarray, params: np.ndarray):
    r"""``(gradient, loss)`` closures of the frozen-field GD of :func:`frozen_field_flow` on ``params``
    (M, 2) rows (w, b), read in place, for neurons with output weights ``v``: the gradient on buffers
    allocated once, L evaluated at the z of the last gradient."""
    sigma, slope = torch_activation(act), torch_activation(act, 1)
    N, M = len(x), len(v)
    # r_j v_i / N, shape (N, M)
    weights = np.asarray(residual, dtype=float)[:, None] * np.asarray(v, dtype=float)[None, :] / N
    inputs = np.stack([np.asarray(x, dtype=float), np.ones(N)], 1)                                      # (N, 2)
    z, weighted_slope = np.empty((N, M)), np.empty((N, M))
    z_tensor = torch.from_numpy(z)                                                                       # z's memory

    def gradient(out: np.ndarray) -> None:
        np.matmul(inputs, params.T, out=z)
        np.multiply(weights, slope(z_tensor).numpy(), out=weighted_slope)
        np.matmul(weighted_slope.T, inputs, out=out)

    def loss() -> float:  # at the z of the last gradient: only where array_descent checks or records
        return float(np.vdot(weights, sigma(z_tensor).numpy()))
    return gradient, loss


def _field_start(x: np.ndarray, neurons: FieldNeurons) -> np.ndarray:
    """Rows (w, b) = (s rho0, u0 - s rho0 x_k) of the neurons, shape (M, 2)."""
    return np.stack([neurons.sign * neurons.rho0, neurons.u0 - neurons.sign * neurons.rho0 * x[neurons.point]],
                    1).astype(float)


def frozen_field_flow(act: Activation, x: np.ndarray, residual: np.ndarray, neurons: FieldNeurons, steps: int,
                      lr: float, record_steps=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""GD on (w, b) of every neuron under the linear loss
    :math:`L = \frac1N\sum_j r_j\sum_i v_i\sigma(w_i x_j + b_i)` (output weights fixed), with the
    closed-form gradient :math:`\frac{v_i}{N}\sum_j r_j\sigma'(z_{ij})(x_j, 1)`, in numpy on buffers
    allocated once (:func:`numerics.training.array_descent`: at these sizes a step is mostly
    per-call overhead, which numpy has less of than torch).  :math:`\sigma, \sigma'` are the torch
    functions, applied to a tensor that shares z's memory: planes drift far from the data, where
    they stay finite (softplus' exp overflows in the compiled numpy form).  L itself (one more
    activation call) is evaluated only where ``array_descent`` records or checks divergence.

    Returns (steps, w, b) with w, b of shape (recorded steps, neurons); by default only the
    final state is returned (shape (1, neurons))."""
    params = _field_start(x, neurons)
    gradient, loss = _field_descent(act, x, residual, neurons.v, params)
    history = array_descent(params, gradient, steps, lr, loss=loss, record=lambda step: params.copy(),
                            record_steps=record_steps if record_steps is not None else [steps],
                            describe=f"{act.label} frozen field")
    states = np.array(history.records)
    return np.array(history.steps), states[..., 0], states[..., 1]


def frozen_field_states(act: Activation, x: np.ndarray, residual: np.ndarray, neurons: FieldNeurons,
                        horizons, lr: float) -> tuple[np.ndarray, np.ndarray]:
    r"""(w, b) of every neuron after its own number of GD steps ``horizons[i]`` of
    :func:`frozen_field_flow`.  In the frozen field the neurons do not interact (r is fixed), so
    a neuron's steps are the same operations on the same numbers whichever others are simulated
    with it: the flow runs in stages, each ending where the neurons still simulated have halved,
    and a stage drops the neurons whose horizon has passed (a neuron is simulated up to its own
    horizon, not to the largest; the placements of :func:`placement_test` mostly need tens of
    steps of thousands).  Divergence is checked (:func:`numerics.training.array_descent`) on the
    neurons still simulated only."""
    horizons = np.asarray(horizons, dtype=int)
    w, b = np.empty(len(horizons)), np.empty(len(horizons))
    order = np.argsort(horizons, kind="stable")
    ends = horizons[order]                                              # sorted horizons
    # active: the simulated neurons (sorted by horizon, params in the same order), from ``start`` on
    params, active, start, done = _field_start(x, neurons)[order], order, 0, 0
    while start < len(order):
        # the stage ends at the horizon after which at most half of the simulated neurons are left
        stop = int(ends[start + (len(order) - start - 1) // 2])
        end = int(np.searchsorted(ends, stop, side="right")) - 1       # the last neuron due at ``stop``
        stage_horizons = ends[start:] - done

        def record(step, stage_horizons=stage_horizons, params=params, active=active):
            due = np.nonzero(stage_horizons == step)[0]
            w[active[due]], b[active[due]] = params[due, 0], params[due, 1]

        gradient, loss = _field_descent(act, x, residual, neurons.v[active], params)
        array_descent(params, gradient, stop - done, lr, loss=loss, record=record,
                      record_steps=sorted(set(stage_horizons[: end - start + 1].tolist())),
                      describe=f"{act.label} frozen field ({len(active)} planes)")
        keep = end + 1 - start
        params, active, done, start = params[keep:].copy(), active[keep:], stop, end + 1
    return w, b


def gap_velocity(act: Activation, x: np.ndarray, residual: np.ndarray, v, rho, sign, point, g,
                 with_slope: bool = True, with_bounds: bool = False) -> tuple:
    r"""The exact frozen-residual gap equation of 1D neurons and its slope (unit rate):
    :math:`G(g) = -\frac{v}{N\rho}\sum_j r_j\sigma'(z_j)K_j`, :math:`K_j = 1 + x_jx_k - g s x_j`,
    :math:`z_j = \rho(s(x_j - x_k) + g)`, and
    :math:`G'(g) = -\frac{v}{N\rho}\sum_j r_j(\rho\sigma''(z_j)K_j - \sigma'(z_j) s x_j)`;
    returns (G, dG/dg), with dG/dg None when ``with_slope`` is False (root bracketing and
    bisection need G only).

    With ``with_bounds`` it also returns bounds on the float64 rounding error of G and G'
    (None for G' without ``with_slope``).  Every evaluated derivative value is within
    :math:`e\,u\,(|\sigma^{(m)}(z_j)| + M)` of the exact one (u the unit roundoff :data:`ULP`,
    e = :data:`EVALUATION_ULPS`, M = :func:`derivative_scale`); the products with :math:`r_j`,
    :math:`K_j` (itself two roundings), the prefactor and the N-term sum add at most
    :math:`(N + 4)\,u` relative to the magnitudes summed (Higham, *Accuracy and Stability of
    Numerical Algorithms*, 2nd ed., 3.1 and 4.2).  With :math:`k = N + e`:

    .. math:: |\Delta G| \le u\,\frac{|v|}{N\rho}\sum_j |r_j|\,|K_j|\,\big(k|\sigma'(z_j)| + eM\big),

    .. math:: |\Delta G'| \le u\,\frac{|v|}{N\rho}\sum_j |r_j|\big(\rho|K_j|(k|\sigma''(z_j)| + eM)
              + |x_j|(k|\sigma'(z_j)| + eM)\big).

    A G or G' within its bound (or not finite) has no resolved sign (:func:`resolved_sign`).

    Scalar neuron parameters with g of any shape, or arrays of M neurons with g of shape (M, G)."""
    d1, d2 = derivative_functions(act)
    v, rho, sign, point = (np.asarray(a) for a in (v, rho, sign, point))
    g = np.asarray(g, dtype=float)
    scalar = v.ndim == 0
    if scalar:
        g = np.atleast_1d(g)[None, :]
        v, rho, sign, point = (a[None] for a in (v, rho, sign, point))
    xk = x[point][:, None, None]                                         # (M, 1, 1)
    gg = g[:, :, None]                                                   # (M, G, 1)
    s, r_ = sign[:, None, None], rho[:, None, None]
    z = r_ * (s * (x[None, None, :] - xk) + gg)
    kernel = 1 + x[None, None, :] * xk - gg * s * x[None, None, :]
    scale = (-v / (len(x) * rho))[:, None]
    first = d1(z)
    terms = residual * first * kernel
    value = scale * terms.sum(-1)
    second = d2(z) if with_slope else None
    slope = scale * (residual * (r_ * second * kernel - first * s * x[None, None, :])).sum(-1) if with_slope else None
    out = [value, slope]
    if with_bounds:
        k, floor = len(x) + EVALUATION_ULPS, EVALUATION_ULPS * derivative_scale(act)
        size, prefactor = np.abs(residual), ULP * np.abs(scale)
        load = size * np.abs(kernel)                                     # |r_j K_j|
        out.append(prefactor * (k * np.abs(terms) + floor * load).sum(-1))
        out.append(prefactor * (r_ * load * (k * np.abs(second) + floor)
                                + size * np.abs(x) * (k * np.abs(first) + floor)).sum(-1) if with_slope else None)
    if scalar:
        return tuple(a if a is None else a[0] for a in out)
    return tuple(out)


def gap_roots_many(act: Activation, x: np.ndarray, residual: np.ndarray, v, rho, sign, point, lo, hi,
                   density: int = 100) -> list[list[tuple[float, bool | None]]]:
    r"""The scalar fixed-point solver on the exact gap equation for M neurons: roots of
    :math:`G` with u = rho g in [lo_m, hi_m], bracketed on a grid and refined by vectorised
    bisection, each with its stability; returns per neuron a list of (u, stable).

    Signs are read only where they exceed the rounding bounds of :func:`gap_velocity`: a root
    is bracketed by successive grid points where G has resolved, opposite signs (grid points
    where G is within rounding of 0 between them are passed over), never by a flip of the
    rounding noise of a G that is 0 to working precision (all data in flat tails of
    :math:`\sigma'`).  Stable is True where :math:`G'(g^*) < 0` beyond its bound, False where
    :math:`G'(g^*) > 0` beyond it, and None where the sign of :math:`G'` is not resolved (within
    rounding of 0, or an overflow): a resolved :math:`G'` also locates the root, to within
    :math:`|\Delta G| / |G'|`. Sign changes across a kink of :math:`\sigma` are jumps, not
    roots, and are skipped (:func:`placement_test` classifies kinks by their one-sided
    velocities).

    G is odd in v (its prefactor :math:`-v/(N\rho)`, negated exactly in float64), so a neuron and
    its mirror with -v have the same grid signs up to a flip, the same brackets, bisection and
    roots, and :math:`G'` of opposite sign: each (|v|, rho, s, k, lo, hi) is searched once and
    the mirror's stabilities flipped (bit for bit the search of each; the populations of the
    frozen field hold every neuron with both signs of v)."""
    v, rho, sign, point, lo, hi = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (v, rho, sign, point, lo, hi))
    # the grid's size is the batch's (its widest interval), which the distinct rows keep
    points = max(int(np.max(hi - lo) * density), 2) + 1
    rows, inverse = np.unique(np.stack([np.abs(v), rho, sign, point, lo, hi], 1), axis=0, return_inverse=True)
    found = _gap_roots_of(act, x, residual, *rows.T, points)
    flip = {True: False, False: True, None: None}
    return [list(found[r]) if m >= 0 else [(u, flip[st]) for u, st in found[r]] for r, m in zip(inverse.ravel(), v)]


def _gap_roots_of(act: Activation, x: np.ndarray, residual: np.ndarray, v, rho, sign, point, lo, hi,
                  points: int) -> list[list[tuple[float, bool | None]]]:
    """:func:`gap_roots_many` on a grid of ``points`` points per neuron."""
    point = point.astype(int)
    u = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, points)[None, :]
    values, _, bounds, _ = gap_velocity(act, x, residual, v, rho, sign, point, u / rho[:, None], with_slope=False,
                                        with_bounds=True)
    signs = resolved_sign(values, bounds)
    # brackets: successive grid points of resolved, opposite signs (with any unresolved between)
    row, col = np.nonzero(signs)
    change = (row[1:] == row[:-1]) & (signs[row[1:], col[1:]] * signs[row[:-1], col[:-1]] < 0)
    neuron, a, b = row[1:][change], u[row[:-1][change], col[:-1][change]], u[row[1:][change], col[1:][change]]
    keep = np.ones(len(a), dtype=bool)
    for k in kinks(act):
        for j in range(len(x)):
            c = k.location - rho[neuron] * sign[neuron] * (x[j] - x[point[neuron]])
            keep &= ~((a <= c) & (c <= b))
    neuron, a, b = neuron[keep], a[keep], b[keep]
    args = (v[neuron], rho[neuron], sign[neuron], point[neuron])
    fa = gap_velocity(act, x, residual, *args, (a / rho[neuron])[:, None], with_slope=False)[0][:, 0]
    # halve each bracket until it is within 4 ulps of max(1, |u|) (u's resolution where it matters,
    # |u| >= 1), then leave it: each root is independent of the others in the batch
    resolution = 4 * ULP * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    for _ in range(60):
        mid = (a + b) / 2
        halve = b - a > resolution
        if not halve.any():
            break
        fm = gap_velocity(act, x, residual, *args, (mid / rho[neuron])[:, None], with_slope=False)[0][:, 0]
        left = halve & (np.sign(fm) == np.sign(fa))
        right = halve & ~left
        a, fa, b = np.where(left, mid, a), np.where(left, fm, fa), np.where(right, mid, b)
    roots = (a + b) / 2
    _, slopes, _, slope_bounds = gap_velocity(act, x, residual, *args, (roots / rho[neuron])[:, None],
                                              with_bounds=True)
    stability = resolved_sign(-slopes[:, 0], slope_bounds[:, 0])
    out: list[list[tuple[float, bool | None]]] = [[] for _ in v]
    for i, root, st in zip(neuron, roots, stability):
        out[i].append((float(root), None if st == 0 else bool(st > 0)))
    return out


def gap_roots(act: Activation, x: np.ndarray, residual: np.ndarray, v: float, rho: float, sign: float,
              point: int, window: float = 8.0, density: int = 100, interval: tuple[float, float] | None = None):
    r""":func:`gap_roots_many` for one neuron, on :math:`|u| \le` ``window`` or ``interval``."""
    lo, hi = interval if interval is not None else (-window, window)
    return gap_roots_many(act, x, residual, v, rho, sign, point, lo, hi, density)[0]


def timescale_ratio(act: Activation, x: np.ndarray, residual: np.ndarray, v: float, rho: float, sign: float,
                    point: int, u: float) -> float:
    r""":math:`|G'(g)| / |\dot
ho/
ho|` at u = rho g: how much faster the gap relaxes than the
    sharpness drifts (:math:`\dot
ho = -rac vN\sum_j r_j\sigma'(z_j)\,s x_j`).  The scalar gap
    equation treats :math:`
ho` as frozen, so its stability verdict is meaningful only when
    this ratio is large (:data:`TIMESCALE_SEPARATION`)."""
    d1, _ = derivative_functions(act)
    z = rho * sign * (x - x[point]) + u
    rho_rate = abs(v / len(x) * np.sum(residual * d1(z) * sign * x)) / rho
    gap_rate = abs(gap_velocity(act, x, residual, v, rho, sign, point, u / rho)[1][0])
    return gap_rate / rho_rate if rho_rate > 0 else float("inf")


def _notes_equilibria(act, x, residual, v, rho, sign, point, u) -> np.ndarray:
    r"""Per neuron: the stable root of the notes' approximation :math:`\sigma'(u^*) = B(0)/A(0)`
    nearest to its u (NaN if none); A and B frozen with the plane moved onto its data point."""
    d1, _ = derivative_functions(act)
    N = len(x)
    A = v * residual[point] * (1 + x[point] ** 2) / (N * rho)
    z = rho[:, None] * sign[:, None] * (x[None, :] - x[point][:, None])
    terms = residual[None, :] * d1(z) * (1 + x[None, :] * x[point][:, None])
    others = terms.sum(1) - terms[np.arange(len(point)), point]
    B = -v / (N * rho) * others
    out = np.full(len(u), np.nan)
    for n, eqs in enumerate(gap_equilibria_many(act, A, B)):
        stable = [e.u for e in eqs if e.stable]
        if stable:
            out[n] = min(stable, key=lambda s: abs(s - u[n]))
    return out


def soft_pinning(act: Activation, xs: np.ndarray, y: np.ndarray, sharpness: tuple[float, ...], steps: int,
                 window: float = 6.0, offsets=np.linspace(-3, 3, 7)) -> dict:
    r"""Where zero-planes come to rest in the frozen field r = -y of 1D data ``xs`` (one
    population per initial sharpness, simulated together), against the roots of the exact gap
    equation (either stability: each plane's nearest root within :data:`LOCAL_SEARCH` and the
    sign of :math:`G'` there) and the stable roots of the notes' (A, B) form (5.4).

    ``rows`` columns: plane, data point k, end u, nearest stable root, notes' root, rho,
    :math:`v r_k\sigma''(u)` (NaN where :math:`\sigma''(u)` is within rounding of 0), initial rho,
    nearest root of resolved stability, its stability (1/0), distance in u to the nearest root
    of unresolved stability (:func:`gap_roots_many`; inf if none)."""
    residual = -np.asarray(y, dtype=float)
    neurons = field_population(len(xs), offsets, sharpness[0])
    for rho0 in sharpness[1:]:
        neurons = neurons + field_population(len(xs), offsets, rho0)
    lr = field_step_size(act, xs, residual)
    recorded, W, B = frozen_field_flow(act, xs, residual, neurons, steps, lr,
                                       record_steps=[int(t) for t in np.linspace(steps // 2, steps, 11)])
    w, b = W[-1], B[-1]
    z = w[:, None] * xs[None, :] + b[:, None]
    point = np.argmin(np.abs(z), 1)
    u = z[np.arange(len(w)), point]
    rho, sign = np.abs(w), np.sign(w)
    _, d2 = derivative_functions(act)
    near = np.nonzero(np.abs(u) <= window)[0]
    k = point[near]
    exact = gap_roots_many(act, xs, residual, neurons.v[near], rho[near], sign[near], k,
                           u[near] - LOCAL_SEARCH, u[near] + LOCAL_SEARCH)
    notes = _notes_equilibria(act, xs, residual, neurons.v[near], rho[near], sign[near], k, u[near])
    # the local rule's sign: sigma''(u) within EVALUATION_ULPS ulps of M has none (NaN)
    second = d2(u[near])
    resolved = resolved_sign(second, EVALUATION_ULPS * ULP * (np.abs(second) + derivative_scale(act)))
    curvature = np.where(resolved != 0, neurons.v[near] * residual[k] * second, np.nan)
    rows = []
    for n, i in enumerate(near):
        stable = [r for r, st in exact[n] if st]
        nearest = min(stable, key=lambda r: abs(r - u[i])) if stable else float("nan")
        resolved = [(r, st) for r, st in exact[n] if st is not None]
        any_root, any_stable = min(resolved, key=lambda rs: abs(rs[0] - u[i])) if resolved else (float("nan"), False)
        unresolved = min((abs(r - u[i]) for r, st in exact[n] if st is None), default=float("inf"))
        rows.append((i, k[n], u[i], nearest, notes[n], rho[i], curvature[n], neurons.rho0[i], any_root,
                     float(any_stable), unresolved))
    rows = np.array(rows, dtype=float).reshape(-1, 11)
    keys = sorted(set(zip(neurons.point, neurons.sign, neurons.v, neurons.rho0)))
    k_, s_, v_, r_ = (np.array(c) for c in zip(*keys))
    roots = gap_roots_many(act, xs, residual, v_, r_, s_, k_, np.full(len(keys), -window), np.full(len(keys), window))
    start_roots = {key: [r for r, stable in found if stable] for key, found in zip(keys, roots)}
    at_rest = [any(abs(u0 - r) <= OFFSET_TOLERANCE for r in start_roots[key])
               for u0, key in zip(neurons.u0, zip(neurons.point, neurons.sign, neurons.v, neurons.rho0))]
    # the late trajectory of every plane: its gap at its final data point, and its sharpness
    late_gap = (W * xs[point][None, :] + B) / np.abs(W)
    return {"sharpness": sharpness, "steps": steps, "lr": lr, "neurons": neurons, "u": u,
            "rho": rho, "point": point, "rows": rows, "at_rest_init": float(np.mean(at_rest)),
            "late_gap": late_gap, "late_rho": np.abs(W)}


#: a placement next to a stable root is held below this fraction of its start distance; next to
#: an unstable one it is lost beyond this multiple of it
HELD, LOST = 0.8, 1.25


def placement_test(act: Activation, xs: np.ndarray, y: np.ndarray, sharpness, steps: int, deltas=(0.2,),
                   window: float = 6.0) -> dict:
    r"""Predicted equilibria of the frozen-field gap equation at every sharpness in ``sharpness``,
    each probed by two planes placed at :math:`u^* \pm \delta` for every :math:`\delta` in
    ``deltas`` (u = pre-activation at the data point), all in one frozen field, and judged after
    :data:`RELAXATION_TIMES` of the equilibrium's own time scale (each plane simulated up to that
    step only, :func:`frozen_field_states`): stable equilibria must pull
    them closer (below 0.8 of the start distance; a kink: onto the plane within 5
    :data:`CHATTER`), unstable ones must lose them (beyond 1.25 of it, or across a kink and
    off it).  Distances are measured in g = u/rho from the equilibrium recomputed at the
    sharpness reached; placements where rho drifted by more than :data:`MAX_DRIFT` or the
    equilibrium vanished are outside the premise of the scalar equation (``separated`` False).

    Smooth roots come from :func:`gap_roots`, kept where the gap relaxes at least
    :data:`TIMESCALE_SEPARATION` times faster than :math:`\rho` drifts (the premise of the
    scalar equation); a kink at u = c is classified by the Filippov one-sided velocities
    :math:`G(c^\mp)` (5.2), skipping kinks with a dead side (:math:`G` within rounding of 0
    there: no data active, the plane is marginal) and roots of unresolved stability.  The field is r = -y on 1D data ``xs``.  Returns
    per-placement arrays."""
    residual = -np.asarray(y, dtype=float)
    # targets: (k, s, v, u*, rho0), stability, kind, and the relaxation rates (left, right) per unit delta
    targets, stable, kind, rates = [], [], [], []
    populations = [field_population(len(xs), [0.0], rho0) for rho0 in sharpness]
    every = sum(populations[1:], populations[0])
    # the roots of every (sharpness, k, s, v) in one vectorised search, in the order of the loop below
    found = iter(gap_roots_many(act, xs, residual, every.v, every.rho0, every.sign, every.point,
                                np.full(len(every.v), -window), np.full(len(every.v), window)))
    for rho0, base in zip(sharpness, populations):
        for k, s, v in zip(base.point, base.sign, base.v):
            for u, st in next(found):
                if st is not None and timescale_ratio(act, xs, residual, v, rho0, s, k, u) >= TIMESCALE_SEPARATION:
                    slope = abs(gap_velocity(act, xs, residual, v, rho0, s, k, u / rho0)[1][0])
                    targets.append((k, s, v, u, rho0))
                    stable.append(st)
                    kind.append("root")
                    rates.append((slope, slope, 0.0))
            for kink in kinks(act):
                g = np.array([kink.location - 1e-9, kink.location + 1e-9]) / rho0
                values, _, bounds, _ = gap_velocity(act, xs, residual, v, rho0, s, k, g, with_slope=False,
                                                    with_bounds=True)
                minus, plus = values
                if np.all(resolved_sign(values, bounds) != 0):
                    # u = rho g moves at rho |G|: the inverse time to cover delta is rho |G| / delta
                    targets.append((k, s, v, kink.location, rho0))
                    stable.append(Sliding(minus, plus).attracting)
                    kind.append("kink")
                    rates.append((rho0 * abs(minus), rho0 * abs(plus), 1.0))
    if not targets:
        return {"placements": 0}
    t, r = np.array(targets, dtype=float), np.array(rates, dtype=float)
    # placements: every target x every delta x both sides (left start u* - delta, right u* + delta)
    n, m = len(t), len(deltas)
    index = np.tile(np.arange(n), 2 * m)
    delta = np.repeat(np.tile(np.asarray(deltas, dtype=float), 2), n)
    side = np.repeat(np.array([-1.0, 1.0]), m * n)
    rho0 = t[index, 4]
    target = t[index, 3]
    start = target + side * delta
    neurons = FieldNeurons(t[index, 0].astype(int), t[index, 1], t[index, 2], start, rho0)
    lr = field_step_size(act, xs, residual)
    # each placement is judged after RELAXATION_TIMES of its own time scale (kinks: CROSSING_TIMES
    # of delta / |u'|); those that would need more than ``steps`` are inconclusive
    rate = np.where(side < 0, r[index, 0], r[index, 1]) / np.where(r[index, 2] > 0, delta, 1.0)
    kinds, predicted = np.array(kind)[index], np.array(stable)[index]
    times = np.where(kinds == "kink", CROSSING_TIMES, RELAXATION_TIMES)
    needed = np.ceil(times / (rate * lr))
    horizon = np.minimum(steps, needed).astype(int)
    w, b = frozen_field_states(act, xs, residual, neurons, horizon, lr)
    rho, sign = np.abs(w), np.sign(w)
    end = w * xs[neurons.point] + b
    drift = np.abs(rho / rho0 - 1)
    # distances in g = u / rho from the equilibrium recomputed at the sharpness reached
    # (a root of the scalar equation may sit at fixed u, or at fixed g, as rho drifts)
    distance, scale = np.abs(end - target), np.ones(len(end))
    smooth = np.nonzero(kinds != "kink")[0]
    if len(smooth):
        g0 = target[smooth] / rho0[smooth]
        span = rho[smooth] * 4 * delta[smooth] / rho0[smooth]
        found = gap_roots_many(act, xs, residual, neurons.v[smooth], rho[smooth], sign[smooth],
                               neurons.point[smooth], rho[smooth] * g0 - span, rho[smooth] * g0 + span)
        for j, i in enumerate(smooth):
            same = [u for u, st in found[j] if st == predicted[i]]
            nearest = min(same, key=lambda u: abs(u / rho[i] - g0[j])) if same else np.inf
            distance[i], scale[i] = abs(end[i] / rho[i] - nearest / rho[i]), 1.0 / rho0[i]
    is_kink = kinds == "kink"
    held = np.where(is_kink, distance <= 5 * CHATTER, distance <= HELD * scale * delta)
    crossed = np.sign(end - target) != np.sign(start - target)
    left = np.where(is_kink, (distance >= delta) | (crossed & (distance > 5 * CHATTER)),
                    distance >= LOST * scale * delta)
    # the premise of the scalar equation: rho nearly frozen and the equilibrium still there
    separated = (drift <= MAX_DRIFT) & np.isfinite(distance) & (needed <= steps)
    return {"placements": len(distance), "rho0": rho0, "delta": delta, "steps": steps, "lr": lr,
            "horizon": horizon, "target_u": target, "start_u": start, "end_u": end, "end_rho": rho,
            "distance": distance, "relative_distance": distance / (scale * delta), "predicted_stable": predicted,
            "kind": kinds, "held": held, "left": left,
            "separated": separated, "agree": np.where(predicted, held, left)}


def equilibrium_positions(act: Activation, xs: np.ndarray, y: np.ndarray, sharpness, density: int = 20) -> dict:
    r"""Independent root-finding in the frozen field r = -y (no simulation): for every data point
    :math:`x_k`, orientation s and output sign v, the stable root of the exact gap equation
    nearest to the data point (smallest :math:`|g|`), at each sharpness :math:`\rho`, and where
    its zero-plane :math:`x^* = x_k - s g^*` sits: the median distance to the nearest data
    point and to the nearest midpoint between neighbouring data points (P12 predicts distances
    to data :math:`\propto 1/\rho`, planes converging onto data points).  Roots are searched on :math:`|g| \le` the data range."""
    residual = -np.asarray(y, dtype=float)
    order = np.sort(xs)
    mids = (order[1:] + order[:-1]) / 2
    span = float(order[-1] - order[0])
    base = field_population(len(xs), [0.0], 1.0)
    out = {}
    for rho in sharpness:
        roots = gap_roots_many(act, xs, residual, base.v, np.full(len(base.v), float(rho)), base.sign, base.point,
                               np.full(len(base.v), -rho * span), np.full(len(base.v), rho * span), density)
        to_data, to_mid = [], []
        for k, s, found in zip(base.point, base.sign, roots):
            stable = [u / rho for u, st in found if st]
            if not stable:
                continue
            gk = min(stable, key=abs)
            position = xs[k] - s * gk
            if not order[0] < position < order[-1]:
                continue
            to_data.append(float(np.min(np.abs(xs - position))))
            to_mid.append(float(np.min(np.abs(mids - position))))
        out[float(rho)] = {"equilibria": len(to_data),
                           "median_distance_to_data": float(np.median(to_data)) if to_data else float("nan"),
                           "median_distance_to_midpoint": float(np.median(to_mid)) if to_data else float("nan")}
    return out


#: fewest planes for the 1/rho slope
MIN_PAIRS = 5


def sharpness_slopes(out: dict, settled: np.ndarray) -> np.ndarray:
    r""":math:`d\log|g|/d\log\rho` along the second half of the trajectory of every plane at rest
    at the end (:math:`|u| > 2\,` :data:`OFFSET_TOLERANCE`) whose sharpness changed by at least
    10% meanwhile: a plane that follows an equilibrium of fixed u = rho g has slope -1 (P12),
    one that stays at a fixed position has slope 0."""
    slopes = []
    for r, ok in zip(out["rows"], settled):
        i = int(r[0])
        rho, gap = out["late_rho"][:, i], np.abs(out["late_gap"][:, i])
        if ok and abs(r[2]) > 2 * OFFSET_TOLERANCE and math.log(rho.max() / rho.min()) > 0.1 and np.all(gap > 0):
            slopes.append(float(np.polyfit(np.log(rho), np.log(gap), 1)[0]))
    return np.array(slopes)
