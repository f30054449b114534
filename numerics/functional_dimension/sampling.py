"""The sampling theorem (1.8) and the CFFD estimator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from theory.errors import IbcheckError

from ..mlp import MLP
from ..progress import progress
from .jacobian import jacobian_blocks
from .rank import svd_rank
from .bfd import batch_functional_dimension
from .regions import CFFDResult


# ---- sampling (1.8) ------------------------------------------------------------------------------
@dataclass
class SamplingRun:
    """Nested Gaussian batches X_1 subset X_2 subset ... for ``draws`` independent draws (F8)."""

    batch_sizes: list[int]
    ranks: np.ndarray  # (draws, len(batch_sizes))
    complete: np.ndarray  # every region holds N_0 + 1 points
    unknown_patterns: int  # patterns met that the enumeration did not list
    full_batch_mismatches: int  # reduced-set rank != full-batch rank (validation draws)
    full_batch_monotone_violations: int
    scale: float

    def hit_fraction(self, cffd: int) -> np.ndarray:
        return (self.ranks == cffd).mean(axis=0)


def _pattern_codes(pattern: np.ndarray) -> np.ndarray:
    """Each column of a pattern (H <= 62) as one integer."""
    if pattern.shape[0] > 62:
        raise IbcheckError("sampling experiments encode patterns as 62-bit integers; use at most 62 hidden neurons")
    return (pattern.T.astype(np.int64) << np.arange(pattern.shape[0], dtype=np.int64)).sum(axis=1)


def sampling_experiment(net: MLP, cffd: CFFDResult, batch_sizes: Sequence[int], draws: int, scale: float,
                        seed: int = 0, validate_draws: int = 2, validate_max: int = 2000) -> SamplingRun:
    r"""BFD of nested Gaussian batches :math:`X_n \sim N(0, s^2 I)`, n in ``batch_sizes``.

    Exact shortcut: only the first :math:`N_0 + 1` points of each region can add rows (the rows of a
    region are affine in x, so N_0 + 1 points in general position span them), so the rank is taken
    on those points.  On ``validate_draws`` draws the full batches up to ``validate_max`` are ranked
    as well, which checks the shortcut and the monotonicity of n -> BFD directly.
    """
    dim = net.arch.input_dim
    sizes = sorted(int(n) for n in batch_sizes)
    codes = _pattern_codes(np.array([r.pattern for r in cffd.regions]).T)
    order = np.argsort(codes)
    rng = np.random.default_rng(seed)
    ranks = np.zeros((draws, len(sizes)), dtype=int)
    complete = np.zeros((draws, len(sizes)), dtype=bool)
    unknown = mismatches = violations = 0
    with progress(draws, "sampling draws") as bar:
        for draw in range(draws):
            x = rng.standard_normal((sizes[-1], dim)) * scale
            point_codes = _pattern_codes(net.pattern(torch.as_tensor(x)))
            where = np.searchsorted(codes[order], point_codes).clip(max=len(codes) - 1)
            known = codes[order][where] == point_codes
            unknown += int((~known).sum())
            region = np.where(known, order[where], -1)
            by_region = np.argsort(region, kind="stable")
            starts = np.searchsorted(region[by_region], np.arange(len(codes)))
            ends = np.searchsorted(region[by_region], np.arange(len(codes)), side="right")
            first = [by_region[s:min(e, s + dim + 1)] for s, e in zip(starts, ends)]
            filled = np.array([f[-1] + 1 if len(f) == dim + 1 else np.iinfo(np.int64).max for f in first])
            selected = np.sort(np.concatenate(first)) if first else np.zeros(0, dtype=int)
            rows = jacobian_blocks(net, x[selected]) if len(selected) else np.zeros((0, net.arch.n_parameters))
            row_point = np.repeat(selected, net.arch.output_dim)
            for column, n in enumerate(sizes):
                ranks[draw, column] = svd_rank(rows[row_point < n]).rank
                complete[draw, column] = bool((filled <= n).all())
            if draw < validate_draws:
                full = [batch_functional_dimension(net, x[:n]).value for n in sizes if n <= validate_max]
                mismatches += sum(int(f != r) for f, r in zip(full, ranks[draw]))
                violations += sum(int(b < a) for a, b in zip(full, full[1:]))
            bar.update(1)
    return SamplingRun(sizes, ranks, complete, unknown, mismatches, violations, scale)


# ---- the CFFD estimator -------------------------------------------------------------------------
@dataclass
class CFFDEstimate:
    cffd: int
    points: int
    history: list[tuple[int, int]]
    stopped: str


class _RegionReducer:
    """Keeps at most N_0 + 1 affinely independent points per activation region: the rows of the
    other points are in their span (rows are affine in x on a region), so the rank is unchanged."""

    def __init__(self, net: MLP):
        self.net, self.dim = net, net.arch.input_dim
        self.kept: dict[bytes, list[np.ndarray]] = {}

    def add(self, x: np.ndarray) -> None:
        pattern = self.net.pattern(torch.as_tensor(x))
        for point, column in zip(x, np.ascontiguousarray(pattern.T)):
            kept = self.kept.setdefault(column.tobytes(), [])
            if len(kept) > self.dim:
                continue
            candidate = np.vstack(kept + [point])
            if len(kept) == 0 or svd_rank(candidate[1:] - candidate[0]).rank == len(kept):
                kept.append(point)

    def points(self) -> np.ndarray:
        return np.vstack([p for group in self.kept.values() for p in group])


def _hyperplane_points(net: MLP, base: np.ndarray, offsets: Sequence[float]) -> np.ndarray:
    r"""Points on both sides of every hidden neuron's bent hyperplane: Newton steps
    :math:`x \leftarrow x - z_j(x)\nabla z_j/\|\nabla z_j\|^2` (exact on the current piece), then
    :math:`x \pm \delta\,\nabla z_j/\|\nabla z_j\|` for each offset."""
    out = []
    for layer, neuron in net.arch.hidden_units():
        x = torch.as_tensor(base.copy()).requires_grad_(True)
        for _ in range(6):
            z = _preactivation(net, x, layer)[:, neuron]
            grad, = torch.autograd.grad(z.sum(), x)
            norm2 = (grad**2).sum(dim=1, keepdim=True)
            with torch.no_grad():
                step = torch.where(norm2 > 0, z[:, None] / norm2.clamp_min(1e-300) * grad, torch.zeros_like(grad))
                x = (x - step).detach().requires_grad_(True)
        z = _preactivation(net, x, layer)[:, neuron]
        grad, = torch.autograd.grad(z.sum(), x)
        with torch.no_grad():
            norm = grad.norm(dim=1, keepdim=True)
            good = (norm[:, 0] > 0) & torch.isfinite(x).all(dim=1)
            unit = grad[good] / norm[good]
            for delta in offsets:
                out += [(x[good] + delta * unit).numpy(), (x[good] - delta * unit).numpy()]
    return np.vstack(out) if out else np.zeros((0, net.arch.input_dim))


def _preactivation(net: MLP, x: torch.Tensor, layer: int) -> torch.Tensor:
    h = x
    for l in range(1, layer + 1):
        z = h @ net.weights[l - 1].detach().T + net.biases[l - 1].detach()
        if l == layer:
            return z
        h = net.sigma(z)
    raise IbcheckError(f"no layer {layer}")


def estimate_cffd(net: MLP, seed: int = 0, scales: Sequence[float] = (0.3, 1.0, 3.0, 10.0, 100.0, 1000.0),
                  offsets: Sequence[float] = (1e-4, 1e-2, 1e-1), start: int = 64, max_points: int = 200_000,
                  hyperplanes: bool = True) -> CFFDEstimate:
    r"""Estimate CFFD (1.8): random Gaussian points at several ``scales`` plus points placed
    on both sides of every neuron's hyperplane (at ``offsets`` distances), the batch doubling
    each round; stops when the rank has not grown for two doublings, reaches
    :math:`N_{par} - H`, or ``max_points`` is exceeded.  A BFD of a real batch, so never above CFFD.

    The large scales matter: on a 2-6-5-2 net the region that completes the rank was unbounded
    and began about 57 units from the origin (mass ~1e-79 under N(0, 3^2 I)); with scales up to
    10 the estimate stalled at 52 of 53, with 100 and 1000 it reached 53 from 126 points."""
    rng = np.random.default_rng(seed)
    dim, ceiling = net.arch.input_dim, net.arch.rescaling_bound
    reducer = _RegionReducer(net)
    history: list[tuple[int, int]] = []
    total, batch, stopped = 0, start, "max_points"
    while total < max_points:
        per_scale = max(1, batch // len(scales))
        fresh = [rng.standard_normal((per_scale, dim)) * s for s in scales]
        if hyperplanes:
            count = max(1, batch // (2 * len(offsets) * net.arch.hidden_neurons))
            base = rng.standard_normal((count, dim)) * rng.choice(scales, size=(count, 1))
            fresh.append(_hyperplane_points(net, base, offsets))
        new = np.vstack(fresh)
        reducer.add(new)
        total += len(new)
        rank = svd_rank(jacobian_blocks(net, reducer.points())).rank
        history.append((total, rank))
        if rank >= ceiling:
            stopped = "reached N_par - H"
            break
        if len(history) >= 3 and history[-1][1] == history[-3][1]:
            stopped = "no growth for two doublings"
            break
        batch *= 2
    return CFFDEstimate(history[-1][1], total, history, stopped)
