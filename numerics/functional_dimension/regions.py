"""Activation regions for N_0 in {1, 2}, their Gaussian masses and the exact CFFD (1.7)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.special import ndtr, owens_t

from theory.errors import IbcheckError
from theory.functional_dimension import relu_only_reason

from ..mlp import MLP
from .jacobian import frozen_jacobian
from .rank import Rank, svd_rank
from .bfd import batch_functional_dimension, random_layers


# ---- regions and CFFD (N_0 = 1, 2) ------------------------------------------------------------
@dataclass
class Region:
    r"""A full-dimensional activation region :math:`\{x: Ax < c\}` (rows of A normalized)."""

    pattern: np.ndarray  # bool (H,)
    a: np.ndarray  # (k, N_0)
    c: np.ndarray  # (k,)
    center: np.ndarray  # Chebyshev center
    radius: float  # inscribed radius (capped at RADIUS_CAP for unbounded regions)


#: inscribed radii are capped here, which keeps the Chebyshev centres of unbounded regions near
#: the arrangement's vertices (in input units)
RADIUS_CAP = 1.0


#: half-width of the box that makes the Chebyshev program pointed (far beyond any vertex of the
#: arrangements met here, whose coordinates are O(1-100) for the input scales used)
_BOX = 1e6


def _chebyshev(a: np.ndarray, c: np.ndarray, dim: int) -> tuple[np.ndarray, float]:
    r"""Center and radius of the largest ball in :math:`\{x : ax \le c\}` (rows of a normalized),
    the radius capped at :data:`RADIUS_CAP`.

    The linear program max s s.t. :math:`a_k x + s \le c_k`, :math:`s \le` cap,
    :math:`|x_i| \le` :data:`_BOX` has an optimal vertex; with :math:`N_0 \le 2` there are few
    constraints, so every vertex (every :math:`N_0 + 1` active constraints) is computed at once;
    among optimal vertices the one nearest the origin is the centre.  Radius < 0: empty.
    """
    rows = np.vstack([np.hstack([a, np.ones((len(a), 1))]), np.eye(dim + 1)[-1:],
                      np.hstack([np.eye(dim), np.zeros((dim, 1))]), np.hstack([-np.eye(dim), np.zeros((dim, 1))])])
    rhs = np.concatenate([c, [RADIUS_CAP], np.full(2 * dim, _BOX)])
    combos = np.array(list(itertools.combinations(range(len(rows)), dim + 1)))
    systems = rows[combos]
    regular = np.abs(np.linalg.det(systems)) > 1e-12
    vertices = np.linalg.solve(systems[regular], rhs[combos][regular][:, :, None])[:, :, 0]
    feasible = vertices[(vertices @ rows.T <= rhs + 1e-9 * (1 + np.abs(rhs))).all(axis=1)]
    if len(feasible) == 0:
        return np.zeros(dim), -math.inf
    radius = feasible[:, -1].max()
    best = feasible[feasible[:, -1] >= radius - 1e-12]
    center = best[np.argmin(np.linalg.norm(best[:, :-1], axis=1)), :-1]
    return center, float(radius)


def enumerate_regions(net: MLP, min_radius: float = 1e-9) -> list[Region]:
    r"""Every activation region of a ReLU network with :math:`N_0 \in \{1, 2\}` (1.7).

    Exact refinement, no grid: a region of layers :math:`< l` is a polyhedron on which
    :math:`z^l(x) = Z x + \zeta` is affine; each neuron of layer l splits it by the hyperplane
    :math:`Z_j x + \zeta_j = 0`, and a piece is kept when a linear program finds an inscribed
    ball of radius > ``min_radius`` (unbounded regions included: the program's box, 10^6, lies far
    beyond every vertex, and the achievable patterns are checked against random inputs in the checks).
    """
    arch = net.arch
    if arch.input_dim > 2:
        raise IbcheckError(f"exact region enumeration is implemented for input dimension 1 and 2, not {arch.input_dim}")
    reason = relu_only_reason(net.activation)
    if reason:
        raise IbcheckError(reason)
    dim = arch.input_dim
    layers = net.numpy_layers()
    # (a, c, pattern rows so far, G, g) with h^{l-1}(x) = G x + g on the region
    current = [(np.zeros((0, dim)), np.zeros(0), [], np.eye(dim), np.zeros(dim))]
    for weights, biases in layers[:-1]:
        refined = []
        for a, c, bits, g_mat, g_vec in current:
            z_mat, z_vec = weights @ g_mat, weights @ g_vec + biases
            parts = [(a, c, [], *_chebyshev(a, c, dim))]
            for j in range(len(z_vec)):
                norm = float(np.linalg.norm(z_mat[j]))
                split = []
                for a_part, c_part, signs, center, radius in parts:
                    for on in (True, False):
                        sign = 1.0 if on else -1.0
                        if norm == 0.0:  # z_j constant on the region
                            if sign * z_vec[j] > 0:
                                split.append((a_part, c_part, signs + [on], center, radius))
                            continue
                        a_new = np.vstack([a_part, -sign * z_mat[j] / norm])
                        c_new = np.append(c_part, sign * z_vec[j] / norm)
                        if sign * (z_mat[j] @ center + z_vec[j]) / norm >= radius:  # the ball stays on this side
                            split.append((a_new, c_new, signs + [on], center, radius))
                            continue
                        new_center, new_radius = _chebyshev(a_new, c_new, dim)
                        if new_radius > min_radius:
                            split.append((a_new, c_new, signs + [on], new_center, new_radius))
                parts = split
            for a_part, c_part, signs, _, _ in parts:
                d = np.array(signs, dtype=float)
                refined.append((a_part, c_part, bits + signs, d[:, None] * z_mat, d * z_vec))
        current = refined
    regions = []
    for a, c, bits, _, _ in current:
        center, radius = _chebyshev(a, c, dim)
        regions.append(Region(np.array(bits, dtype=bool), a, c, center, radius))
    return regions


def _edge_interval(a: np.ndarray, c: np.ndarray, k: int) -> tuple[float, float]:
    r"""The part of line k, :math:`\{c_k a_k + t\tau_k\}` (:math:`\tau_k` = :math:`a_k` turned by
    90 degrees), inside every other half-plane: the interval [t1, t2] (possibly infinite)."""
    tangent = np.array([-a[k, 1], a[k, 0]])
    foot = c[k] * a[k]
    t1, t2 = -math.inf, math.inf
    for m in range(len(a)):
        if m == k:
            continue
        slope, room = float(a[m] @ tangent), float(c[m] - a[m] @ foot)
        if abs(slope) < 1e-15:
            if room < 0:
                return math.inf, -math.inf
        elif slope > 0:
            t2 = min(t2, room / slope)
        else:
            t1 = max(t1, room / slope)
    return t1, t2


def _recession_angle(a: np.ndarray) -> float:
    """Angular measure of the directions u with a_k . u <= 0 for all k (a convex arc)."""
    angles = np.arctan2(a[:, 1], a[:, 0])
    candidates = np.concatenate([angles + math.pi / 2, angles - math.pi / 2])
    directions = np.stack([np.cos(candidates), np.sin(candidates)], axis=1)
    feasible = directions[(directions @ a.T <= 1e-12).all(axis=1)]
    if len(feasible) < 2:
        return 0.0
    return float(np.arccos(np.clip(feasible @ feasible.T, -1.0, 1.0)).max())


def _gaussian_mass_2d(region: Region, scale: float) -> float:
    r"""Mass of a convex polygon :math:`\{Ax \le c\}` (possibly unbounded) under
    :math:`N(0, s^2 I_2)`, exactly, by Owen's T function.

    In polar coordinates the mass is :math:`\frac1{2\pi}\int (G(r_{out}) - G(r_{in}))\,d\phi` with
    :math:`G(r) = 1 - e^{-r^2/2s^2}` (:math:`G(\infty) = 1` on the recession directions).  Along an
    edge on the line at distance h, seen under angles :math:`\phi = \arctan(t/h)`,
    :math:`\frac1{2\pi}\int G = \frac{\phi_2 - \phi_1}{2\pi} - T(h/s, t_2/h) + T(h/s, t_1/h)`;
    edges facing the origin count +1 (the ray leaves there), the others -1 (it enters).
    """
    a, c = region.a, region.c
    if len(a) == 0:
        return 1.0
    total = _recession_angle(a) / (2 * math.pi)
    for k in range(len(a)):
        t1, t2 = _edge_interval(a, c, k)
        h = abs(float(c[k]))
        if not t2 > t1 or h == 0.0:
            continue
        side = 1.0 if c[k] > 0 else -1.0
        # orient t so that it increases with the angle phi = atan(t / h) seen from the origin
        phi1, phi2 = math.atan2(t1, h), math.atan2(t2, h)
        wedge = (phi2 - phi1) / (2 * math.pi) - owens_t(h / scale, t2 / h) + owens_t(h / scale, t1 / h)
        total += side * wedge
    return max(float(total), 0.0)  # far regions: rounding (~1e-16) can leave a tiny negative


def _gaussian_mass_1d(region: Region, scale: float) -> float:
    a, c = region.a[:, 0], region.c
    lower = max([ci / ai for ai, ci in zip(a, c) if ai < 0], default=-math.inf)
    upper = min([ci / ai for ai, ci in zip(a, c) if ai > 0], default=math.inf)
    if lower > 0:  # upper tail: difference of survival functions keeps the digits
        return float(ndtr(-lower / scale) - ndtr(-upper / scale))
    return float(ndtr(upper / scale) - ndtr(lower / scale))


def region_masses(regions: Sequence[Region], scale: float) -> np.ndarray:
    r"""Mass of every region under inputs :math:`N(0, s^2 I)` (1D: normal CDF; 2D: Owen's T)."""
    dim = regions[0].a.shape[1] if len(regions) and regions[0].a.size else len(regions[0].center)
    mass = _gaussian_mass_1d if dim == 1 else _gaussian_mass_2d
    return np.array([mass(r, scale) for r in regions])


def _simplex(dim: int) -> np.ndarray:
    """N_0 + 1 affinely independent points: 0 and the unit vectors."""
    return np.vstack([np.zeros(dim), np.eye(dim)])


def region_row_jacobian(net: MLP, regions: Sequence[Region], copies: Sequence[int] | None = None,
                        seed: int = 0) -> np.ndarray:
    r"""Rows spanning each region's affine row space at theta: the frozen-pattern Jacobian with the
    region's pattern at :math:`N_0 + 1` affinely independent points, 0, e_1, ..., e_N0 (rows are
    affine in x on a region, so any such points span them; they need not lie inside the region,
    which keeps tiny and far regions well conditioned).  A region given fewer ``copies`` gets
    that many Gaussian points (generic, so they span as much as any such set)."""
    dim = net.arch.input_dim
    copies = [dim + 1] * len(regions) if copies is None else copies
    rng = np.random.default_rng(seed)
    points, columns = [], []
    for region, count in zip(regions, copies):
        points.append(_simplex(dim) if count > dim else rng.standard_normal((count, dim)))
        columns += [region.pattern] * count
    x = np.vstack(points) if points else np.zeros((0, dim))
    pattern = np.array(columns).T if columns else np.zeros((net.arch.hidden_neurons, 0), dtype=bool)
    return frozen_jacobian(net.numpy_layers(), x, pattern)


@dataclass
class CFFDResult:
    """Exact CFFD (1.7) from the enumerated regions."""

    cffd: int
    rank: Rank
    regions: list[Region]
    decisive_bfd: int
    frozen_generic_rank: int
    required: list[int]
    min_radius: float

    def summary(self) -> dict:
        return {"cffd": self.cffd, "regions": len(self.regions), "decisive_bfd": self.decisive_bfd,
                "frozen_generic_rank": self.frozen_generic_rank,
                "regions_needing_points": int(sum(k > 0 for k in self.required)),
                "smallest_inscribed_radius": self.min_radius, "gap_log10": self.rank.gap_log10}


def decisive_set(regions: Sequence[Region], dim: int, fraction: float = 0.5) -> np.ndarray:
    """N_0 + 1 points inside every region (a simplex in its inscribed ball): GLMW's decisive set."""
    offsets = _simplex(dim) - _simplex(dim).mean(axis=0)
    offsets /= np.linalg.norm(offsets, axis=1).max()
    return np.vstack([r.center + fraction * r.radius * offsets for r in regions])


def exact_cffd(net: MLP, regions: Sequence[Region] | None = None, seed: int = 0) -> CFFDResult:
    r"""CFFD(theta) from the enumerated regions (1.7): the rank of every region's affine row space
    at theta.  Reported beside it: the BFD of the decisive set (real forward passes, points inside
    the regions), the frozen generic rank of the achievable patterns at a random theta' and X'
    (F9), and for each region the number of points :math:`k_\delta \le N_0 + 1` it needs when the
    others are complete (the smallest count that still gives CFFD)."""
    regions = enumerate_regions(net) if regions is None else list(regions)
    dim = net.arch.input_dim
    rank = svd_rank(region_row_jacobian(net, regions))
    decisive = batch_functional_dimension(net, decisive_set(regions, dim)).value
    rng = np.random.default_rng(seed)
    pattern = np.repeat(np.array([r.pattern for r in regions]).T, dim + 1, axis=1)
    generic = svd_rank(frozen_jacobian(random_layers(net.arch, rng), rng.standard_normal((pattern.shape[1], dim)),
                                       pattern)).rank
    required = []
    for index in range(len(regions)):
        copies = [dim + 1] * len(regions)
        for count in range(dim + 1):
            copies[index] = count
            if svd_rank(region_row_jacobian(net, regions, copies, seed=seed + index)).rank == rank.rank:
                break
        else:
            count = dim + 1
        required.append(count)
    return CFFDResult(rank.rank, rank, regions, decisive, generic, required, min(r.radius for r in regions))


def sufficient_counts(net: MLP, cffd: CFFDResult, masses: np.ndarray, seed: int = 0) -> list[int]:
    r"""A sufficient configuration built from the heaviest regions: starting from
    :math:`N_0 + 1` points everywhere, each region in order of increasing mass keeps the fewest
    points (0 .. N_0 + 1) for which the rank still equals CFFD.  The result names the regions a
    Gaussian batch must fill, and how many points each needs."""
    dim = net.arch.input_dim
    counts = [dim + 1] * len(cffd.regions)
    for index in np.argsort(masses, kind="stable"):
        for count in range(dim + 1):
            trial = counts.copy()
            trial[index] = count
            if svd_rank(region_row_jacobian(net, cffd.regions, trial, seed=seed + int(index))).rank == cffd.cffd:
                counts = trial
                break
    return counts
