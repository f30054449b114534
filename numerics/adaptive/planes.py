r"""Geometry of zero-planes and kink planes (spectral_bias.md 5.1, 5.2, 5.5 steps 2 and 5):
RS coordinates, gaps to data points, pinned fractions, the sign rule and Filippov one-sided
velocities along a trajectory, clusters, the distance to linear interpolation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from theory.activations import Activation
from theory.dynamics import Sliding, derivative_functions, kinks
from theory.errors import IbcheckError

from .ensemble import Trajectory

#: pinned: |kink-plane gap| below this (data scale ~1); E7's sample threshold
SIGN_RULE_EPS = 1e-4
#: residuals below this carry no sign information (E7)
RESIDUAL_FLOOR = 1e-4
#: pinned fraction threshold (E8)
PINNED_EPS = 1e-3


def plane_coordinates(state: np.ndarray) -> dict[str, np.ndarray]:
    r"""RS coordinates of packed rows (..., d + 2): :math:`\rho, \theta, \beta, v` (vectorised
    :meth:`numerics.networks.ShallowNetwork.rs_coordinates`)."""
    v, w, b = state[..., 0], state[..., 1:-1], state[..., -1]
    rho = np.linalg.norm(w, axis=-1)
    return {"v": v, "rho": rho, "theta": w / rho[..., None], "beta": -b / rho}


def plane_gaps(state: np.ndarray, x: np.ndarray, offset: float = 0.0) -> np.ndarray:
    r"""Signed distances :math:`h_{ik} = (w_i\cdot x_k + b_i - c)/\|w_i\|` of data points from
    the plane :math:`w\cdot x + b = c` (c = ``offset``; c = 0 is the zero-plane), shape (..., n, N)."""
    w, b = state[..., 1:-1], state[..., -1]
    rho = np.linalg.norm(w, axis=-1)
    return (np.einsum("...id,kd->...ik", w, x) + b[..., None] - offset) / rho[..., None]


def in_hull(gaps: np.ndarray) -> np.ndarray:
    """Planes with data on both sides (1D: the breakpoint lies inside the data range)."""
    return (gaps.min(-1) < 0) & (gaps.max(-1) > 0)


def pinned_fraction(state: np.ndarray, x: np.ndarray, offset: float = 0.0, eps: float = PINNED_EPS) -> float:
    """Fraction of in-hull planes within ``eps`` of some data point (E8)."""
    gaps = plane_gaps(state, x, offset)
    hull = in_hull(gaps)
    if not hull.any():
        return float("nan")
    return float((np.abs(gaps).min(-1) < eps)[hull].mean())


def breakpoints(state: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """1D: the kink locations :math:`(c - b)/w`."""
    return (offset - state[..., 2]) / state[..., 1]


def one_sided_velocities(state: np.ndarray, residual: np.ndarray, x: np.ndarray, neuron: np.ndarray,
                         point: np.ndarray, act: Activation, kink_at: float, slopes: tuple[float, float]):
    r"""Gap velocities :math:`\dot h(c^\mp)` of pairs (neuron, point) with :math:`\sigma'(z_k)`
    forced to its left/right value (spectral_bias.md 5.5 step 2; unit rates).

    :math:`\dot h = -\frac{v}{N\rho}\sum_j r_j\sigma'(z_j)(1 + x_j\cdot x_k - h\,\theta\cdot x_j)`.
    ``residual`` is one residual (N,) for every pair or one per pair (P, N) (pairs from different
    steps of a trajectory, ``state`` then holding each pair's own row).
    """
    d1, _ = derivative_functions(act)
    N = len(x)
    c = plane_coordinates(state[neuron])
    z = state[neuron, 1:-1] @ x.T + state[neuron, -1][:, None]          # (P, N)
    rows = np.arange(len(point))
    h = (z[rows, point] - kink_at) / c["rho"]
    kernel = 1 + x[point] @ x.T - h[:, None] * (c["theta"] @ x.T)        # (P, N)
    residual = np.broadcast_to(residual, z.shape)
    terms = residual * d1(z) * kernel
    others = terms.sum(1) - terms[rows, point]
    own = residual[rows, point] * kernel[rows, point]
    scale = -c["v"] / (N * c["rho"])
    return scale * (others + own * slopes[0]), scale * (others + own * slopes[1])


@dataclass
class PinningStatistics:
    """Sign-rule and Filippov samples of pinned (neuron, kink, point) triples of one member."""

    samples: int = 0
    sign_rule_holds: int = 0
    attracting: int = 0
    repelling: int = 0
    multi_point: int = 0
    multi_point_holds: int = 0
    pairs: set = field(default_factory=set)
    violating_pairs: set = field(default_factory=set)
    per_step: list = field(default_factory=list)

    @property
    def sign_rule_fraction(self) -> float:
        return self.sign_rule_holds / self.samples if self.samples else float("nan")

    @property
    def attracting_fraction(self) -> float:
        return self.attracting / self.samples if self.samples else float("nan")

    def summary(self) -> dict:
        return {"samples": self.samples, "sign_rule_fraction": self.sign_rule_fraction,
                "attracting_fraction": self.attracting_fraction, "pinned_pairs": len(self.pairs),
                "violating_pairs": len(self.violating_pairs), "multi_point_samples": self.multi_point,
                "multi_point_sign_rule": self.multi_point_holds / self.multi_point if self.multi_point else None}


def pinning_statistics(traj: Trajectory, member: int, eps: float = SIGN_RULE_EPS,
                       floor: float = RESIDUAL_FLOOR) -> PinningStatistics:
    r"""Over all recorded steps after the first: every triple with :math:`|h| <` ``eps`` and
    :math:`|r_k| >` ``floor`` (E7's samples); counts the sign rule :math:`v r_k\kappa > 0`, the
    Filippov classes of the one-sided velocities (5.2), samples on planes through several data
    points at once (d >= 2: the two-surface case of P10) and the distinct (neuron, point)
    pairs behind the samples and behind the violations (a plane that crosses a point slowly
    stays within ``eps`` for many records: one pair, many samples)."""
    stats = PinningStatistics()
    states, residuals = traj.states[1:, member], traj.residuals[1:, member]      # (T, n, d + 2), (T, N)
    held = np.zeros(len(states), dtype=int)
    for kink in kinks(traj.act):
        gaps = plane_gaps(states, traj.x, kink.location)                          # (T, n, N)
        step, neuron, point = np.nonzero(np.abs(gaps) < eps)
        keep = np.abs(residuals[step, point]) > floor
        step, neuron, point = step[keep], neuron[keep], point[keep]
        if not len(step):
            continue
        rows = states[step, neuron]                                               # each sample's plane
        held_now = rows[:, 0] * residuals[step, point] * kink.jump > 0
        minus, plus = one_sided_velocities(rows, residuals[step], traj.x, np.arange(len(step)), point, traj.act,
                                           kink.location, (kink.left_slope, kink.right_slope))
        slides = Sliding(minus, plus)
        multi = (np.abs(gaps[step, neuron]) < eps).sum(1) > 1
        stats.samples += len(neuron)
        stats.sign_rule_holds += int(held_now.sum())
        stats.attracting += int(slides.attracting.sum())
        stats.repelling += int(slides.repelling.sum())
        stats.multi_point += int(multi.sum())
        stats.multi_point_holds += int((held_now & multi).sum())
        stats.pairs.update(zip(neuron.tolist(), point.tolist()))
        stats.violating_pairs.update(zip(neuron[~held_now].tolist(), point[~held_now].tolist()))
        held += np.bincount(step, weights=held_now, minlength=len(states)).astype(int)
    stats.per_step = [(int(t), int(h)) for t, h in zip(traj.steps[1:], held)]
    return stats


def kink_offset(act: Activation) -> float:
    """The kink location used for pinned fractions and clusters: 0 if sigma kinks there."""
    locations = [k.location for k in kinks(act)]
    if 0.0 in locations:
        return 0.0
    raise IbcheckError(f"{act.label} has no kink at 0")


def displacement(traj: Trajectory, member: int) -> float:
    r"""Median :math:`|\beta_{end} - \beta_0|` over planes in the data hull at the end (E8)."""
    start, end = plane_coordinates(traj.states[0, member]), plane_coordinates(traj.states[-1, member])
    hull = in_hull(plane_gaps(traj.states[-1, member], traj.x))
    return float(np.median(np.abs(end["beta"] - start["beta"])[hull])) if hull.any() else float("nan")


def breakpoint_clusters(positions: np.ndarray, tol: float = PINNED_EPS) -> list[np.ndarray]:
    """1D single-linkage clusters (gaps > ``tol`` split) with at least two members."""
    order = np.sort(np.asarray(positions, dtype=float))
    if not len(order):
        return []
    groups = np.split(order, np.nonzero(np.diff(order) > tol)[0] + 1)
    return [g for g in groups if len(g) >= 2]


def plane_clusters(theta: np.ndarray, beta: np.ndarray, eps: float = PINNED_EPS) -> np.ndarray:
    r"""DBSCAN labels (-1: no cluster) of planes by the augmented unit vectors
    :math:`(\theta, -\beta)/\sqrt{1 + \beta^2}` (5.5 step 5), at least two planes per cluster.

    With ``min_samples = 2`` DBSCAN's clusters are the connected components of the graph "within
    ``eps``" (Euclidean, ``<=``) that have two or more points: every point with a neighbour is a core
    point, so every point reached is expanded.  Labels are numbered as scikit-learn numbers them, by the
    first point of each component in input order (tests compare the two).  Written out here because
    importing scikit-learn costs a worker 0.37 CPU-s for a search over ~100 points."""
    points = np.concatenate([theta, -beta[:, None]], 1) / np.sqrt(1 + beta**2)[:, None]
    near = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1) <= eps
    labels = np.full(len(points), -1)
    cluster = 0
    for first in np.flatnonzero(near.sum(axis=1) >= 2):
        if labels[first] >= 0:
            continue
        labels[first], stack = cluster, [first]
        while stack:
            found = np.flatnonzero(near[stack.pop()] & (labels < 0))
            labels[found] = cluster
            stack.extend(found)
        cluster += 1
    return labels


def network_output(state: np.ndarray, act: Activation, grid: np.ndarray) -> np.ndarray:
    """:math:`f(x) = \\sum_i v_i\\sigma(w_i\\cdot x + b_i)` of one packed state on a grid (G, d)."""
    sigma = act.numeric("numpy")
    z = grid @ state[:, 1:-1].T + state[:, -1]
    return np.asarray(sigma(z), dtype=float) @ state[:, 0]


def linear_interpolation_gap(state: np.ndarray, act: Activation, x: np.ndarray, y: np.ndarray,
                             points: int = 801) -> float:
    """1D: :math:`\\sup|f - \\mathrm{LI}|/\\max|y|` on the data range (P13)."""
    xs = x[:, 0]
    order = np.argsort(xs)
    grid = np.linspace(xs.min(), xs.max(), points)
    f = network_output(state, act, grid[:, None])
    return float(np.max(np.abs(f - np.interp(grid, xs[order], y[order]))) / np.max(np.abs(y)))


def breakpoint_cluster_summary(state: np.ndarray, x: np.ndarray, eps: float = PINNED_EPS) -> dict:
    """1D: clusters of coincident in-hull breakpoints (:func:`breakpoint_clusters`) of one state
    and where they sit: per cluster its size and the distance of its centre to the nearest data
    point; ``at_data`` marks clusters within ``eps`` of one.  ``clustered_at_data`` is the
    fraction of clustered breakpoints in clusters at data points, ``in_hull_at_data`` the
    fraction of in-hull breakpoints in them."""
    hull = in_hull(plane_gaps(state, x))
    groups = breakpoint_clusters(breakpoints(state)[hull], eps)
    sizes = np.array([len(g) for g in groups], dtype=int)
    distance = np.array([float(np.min(np.abs(x[:, 0] - np.mean(g)))) for g in groups])
    at_data = distance < eps
    clustered = int(sizes.sum())
    return {"clusters": len(groups), "sizes": sizes.tolist(), "distance": distance.tolist(),
            "at_data": int(at_data.sum()), "in_hull": int(hull.sum()),
            "clustered_at_data": float(sizes[at_data].sum() / clustered) if clustered else float("nan"),
            "in_hull_at_data": float(sizes[at_data].sum() / hull.sum()) if hull.any() else float("nan")}
