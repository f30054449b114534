"""Numerical, exact and certified ranks (3.1-3.2)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np
import scipy.linalg
import torch

from theory.errors import IbcheckError
from theory.functional_dimension import Architecture

from .. import threads
from ..mlp import MLP
from .jacobian import (ROW_GRAM_STEP, _as_inputs, _check_memory, _memory_limit, backprop_matrices, check_gram_memory,
                       column_gram_temporaries, gram_bytes, jacobian_from_states, network_states)
from .symmetries import rescaling_null_vectors


#: log10 gaps at the rank cut below this many decades are flagged as ill-determined (3.1)
GAP_FLAG = 3.0
#: a singular value within this factor of the tolerance (either side) flags the rank as ill-determined:
#: the rule's factor max(m, n) is a convention (numpy's; LAPACK's guides use sqrt(mn) or 1), so a value
#: within one decade of the cut is counted differently by equally valid rules
NEAR_TOLERANCE = 10.0


# ---- ranks -----------------------------------------------------------------------------------
@dataclass
class Rank:
    """A numerical rank with the evidence for it (3.1)."""

    rank: int
    tolerance: float
    eps: float
    s_max: float
    gap_log10: float
    shape: tuple[int, int]
    method: str = "svd"
    singular_values: np.ndarray | None = field(default=None, repr=False)
    #: how a proved route got there (e.g. :func:`projected_rank`: rows kept and projected, refinement steps)
    evidence: dict | None = field(default=None, repr=False)

    @property
    def near_tolerance(self) -> int:
        """How many singular values lie within :data:`NEAR_TOLERANCE` of the tolerance (either side)."""
        if self.singular_values is None or self.tolerance <= 0:
            return 0
        values = np.abs(self.singular_values)
        return int(np.sum((values > self.tolerance / NEAR_TOLERANCE) & (values <= self.tolerance * NEAR_TOLERANCE)))

    @property
    def ill_determined(self) -> bool:
        """The gap at the cut is under :data:`GAP_FLAG` decades, or some singular value lies within
        :data:`NEAR_TOLERANCE` of the tolerance (a wide gap between the kept values and a dropped
        one just under the tolerance does not make the cut safe)."""
        return self.gap_log10 < GAP_FLAG or self.near_tolerance > 0

    def summary(self) -> dict:
        return {"rank": self.rank, "tolerance": self.tolerance, "eps": self.eps, "s_max": self.s_max,
                "gap_log10": self.gap_log10, "near_tolerance": self.near_tolerance,
                "ill_determined": self.ill_determined, "shape": list(self.shape),
                "method": self.method}


def _eps_of(jac) -> float:
    dtype = jac.dtype
    if isinstance(jac, torch.Tensor):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def _to_numpy64(jac) -> np.ndarray:
    if isinstance(jac, torch.Tensor):
        jac = jac.detach().cpu().numpy()
    return np.asarray(jac, dtype=np.float64)


def _rank_from_values(values: np.ndarray, shape, eps: float, method: str) -> Rank:
    values = np.sort(np.abs(values))[::-1]
    s_max = float(values[0]) if len(values) else 0.0
    tol = s_max * max(shape) * eps
    rank = int(np.sum(values > tol)) if s_max > 0 else 0
    if rank == 0:
        gap = math.inf
    else:
        dropped = values[rank] if rank < len(values) else tol
        gap = math.inf if dropped == 0 else float(np.log10(values[rank - 1] / dropped))
    return Rank(rank, tol, eps, s_max, gap, tuple(shape), method, values)


def singular_values(matrix: np.ndarray) -> np.ndarray:
    r"""All :math:`\min(m, n)` singular values of a float64 matrix, descending, the cheap way.

    Rows and columns that are exactly zero (a Jacobian's columns of a neuron dead on the whole batch,
    and of the weights leaving it) are dropped first: they add only exact zeros to the singular values,
    appended here (where LAPACK on the whole matrix returns rounding-level values for them, ~1e-16
    :math:`s_{max}`, far under the rank tolerance); the trained nets of fd-training have 20-40% such
    columns, and the SVD's cost grows as :math:`mn\min(m, n)` (LAPACK's gesdd already reduces a matrix
    with :math:`m \ge 11n/6` to its R factor first; doing that ourselves for less tall ones saved 15% on
    one trained Jacobian and nothing on random ones, so it is not done).  The other singular values are
    those of the same nonzero entries in the same order: the same to rounding.  Non-finite entries
    raise ``ValueError`` as ``scipy.linalg.svdvals`` does."""
    nonzero = matrix != 0  # NaN != 0: kept, and refused by svdvals
    rows, columns = nonzero.any(axis=1), nonzero.any(axis=0)
    reduced = matrix if rows.all() and columns.all() else matrix[np.ix_(rows, columns)]
    values = scipy.linalg.svdvals(reduced, check_finite=True) if reduced.size else np.empty(0)
    return np.concatenate([values, np.zeros(min(matrix.shape) - len(values))])


def svd_rank(jac, eps: float | None = None) -> Rank:
    r"""Rank by singular values (:func:`singular_values`): :math:`s_i > s_{max}\max(m, n)\,\varepsilon`,
    with :math:`\varepsilon` the epsilon of the dtype ``jac`` was computed in (override with ``eps``)."""
    eps = _eps_of(jac) if eps is None else eps
    matrix = _to_numpy64(jac)
    if matrix.size == 0:
        return Rank(0, 0.0, eps, 0.0, math.inf, matrix.shape)
    with threads.for_entries(matrix.size):
        values = singular_values(matrix)
    return _rank_from_values(values, matrix.shape, eps, "svd")


def pivoted_qr_rank(jac, eps: float | None = None) -> Rank:
    r"""Rank by column-pivoted QR: :math:`|R_{ii}| > |R_{11}|\max(m, n)\,\varepsilon` (a cheaper,
    slightly less reliable rank-revealing route; compared with :func:`svd_rank` in the benchmark)."""
    eps = _eps_of(jac) if eps is None else eps
    matrix = _to_numpy64(jac)
    if matrix.size == 0:
        return Rank(0, 0.0, eps, 0.0, math.inf, matrix.shape, "pivoted_qr")
    with threads.for_entries(matrix.size):
        r = scipy.linalg.qr(matrix, mode="r", pivoting=True)[0]
    return _rank_from_values(np.abs(np.diag(r)), matrix.shape, eps, "pivoted_qr")


def exact_rank(matrix) -> int:
    """Rank over the rationals (sympy ``DomainMatrix`` over ZZ) of an integer or Fraction matrix."""
    from sympy import ZZ
    from sympy.polys.matrices import DomainMatrix

    rows = np.asarray(matrix, dtype=object)
    if rows.size == 0:
        return 0
    fractions = [[Fraction(v) for v in row] for row in rows]
    scale = math.lcm(*[v.denominator for row in fractions for v in row])
    integers = [[int(v * scale) for v in row] for row in fractions]
    return int(DomainMatrix([[ZZ(v) for v in row] for row in integers], rows.shape, ZZ).rank())


# ---- the rank certified at the generic bound, without an SVD ---------------------------------
def _gamma(k: int) -> float:
    """Higham's :math:`\\gamma_k = k u / (1 - k u)`, u the unit roundoff of float64."""
    u = np.finfo(np.float64).eps / 2
    return k * u / (1 - k * u)


def _augmented(hidden: Sequence[np.ndarray]) -> list[np.ndarray]:
    """:math:`\\tilde h^{l-1} = [h^{l-1}, 1]` per layer, (n, N_{l-1} + 1)."""
    return [np.hstack([h, np.ones((len(h), 1))]) for h in hidden]


def structured_order(arch: Architecture) -> np.ndarray:
    """J's column index of each parameter in the order (layer, neuron i, input a), a = N_{l-1} the bias."""
    order = []
    for l in range(1, arch.depth + 1):
        fan_in = arch.widths[l - 1]
        order += [arch.weight_index(l, i, a) if a < fan_in else arch.bias_index(l, i)
                  for i in range(arch.widths[l]) for a in range(fan_in + 1)]
    return np.array(order)


def column_gram(backprops: Sequence[np.ndarray], augmented: Sequence[np.ndarray]) -> np.ndarray:
    r""":math:`J^TJ` from the blocks, columns in :func:`structured_order`, without forming J.

    .. math:: (J^TJ)_{(l,i,a),(l',j,b)} = \sum_x (B^{l\,T}_x B^{l'}_x)_{ij}\,\tilde h^{l-1}_a(x)\,\tilde h^{l'-1}_b(x),

    with :math:`c_x = B^{l\,T}_xB^{l'}_x` (a batched GEMM), one GEMM per pair of layers over the n
    inputs, :math:`c^T (\tilde h^{l-1}\otimes\tilde h^{l'-1})`; where the products of inputs would
    exceed :data:`~.jacobian.COLUMN_GRAM_BLOCK` (the paper's 785-wide input layer: 16 GB on 3352 inputs), one GEMM
    per neuron i of the first layer instead, :math:`(\tilde h^{l-1})^T (c_{:,i,:} \odot \tilde h^{l'-1})`
    (0.6 GB there).  :math:`2nN_{par}^2` flop either way instead of the :math:`nN_L N_{par}^2` of
    :math:`J^TJ` (the N_L outputs are summed first); same roundings per entry either way.
    """
    sizes = [b.shape[2] * h.shape[1] for b, h in zip(backprops, augmented)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    gram = np.empty((starts[-1], starts[-1]))
    n = len(augmented[0])
    for l, (b1, h1) in enumerate(zip(backprops, augmented)):
        for m in range(l, len(backprops)):
            b2, h2 = backprops[m], augmented[m]
            c = b1.transpose(0, 2, 1) @ b2  # (n, N_l, N_l'): batched GEMM, ~3x einsum here
            first, second = (b1.shape[2], h1.shape[1]), (b2.shape[2], h2.shape[1])
            if column_gram_temporaries(n, first, second)[1]:
                q = np.einsum("xa,xb->xab", h1, h2).reshape(n, -1)
                block = (c.reshape(n, -1).T @ q).reshape(first[0], second[0], first[1], second[1])
                bands = [(starts[l], block.transpose(0, 2, 1, 3).reshape(sizes[l], sizes[m]))]
            else:
                bands = ((starts[l] + i * first[1], h1.T @ (c[:, i, :, None] * h2[:, None, :]).reshape(n, -1))
                         for i in range(first[0]))  # rows (i, a), columns (j, b)
            for row, band in bands:
                rows = slice(row, row + len(band))
                gram[rows, starts[m]:starts[m + 1]] = band
                if m != l:
                    gram[starts[m]:starts[m + 1], rows] = band.T
    return gram


def row_gram(backprops: Sequence[np.ndarray], augmented: Sequence[np.ndarray]) -> np.ndarray:
    r""":math:`JJ^T` from the blocks, rows (input, output) as in J, without forming J:
    :math:`(JJ^T)_{(x,k),(y,k')} = \sum_l (B^l_x B^{l\,T}_y)_{kk'}\,\tilde h^{l-1}(x)\cdot\tilde h^{l-1}(y)`.
    Built :data:`ROW_GRAM_STEP` rows at a time, the lower block triangle only and then mirrored (the
    flop of a symmetric rank-k update; temporaries: a block of rows and its mirrored copy, no
    :math:`(nN_L)^2` array beside the result: 1.7 q^2 traced at n = 600 on the paper's net, was 2 q^2)."""
    n, out_dim = backprops[0].shape[:2]
    q = n * out_dim
    gram = np.zeros((q, q))
    flats = [b.reshape(q, -1) for b in backprops]
    inputs = [h @ h.T for h in augmented]  # n x n per layer
    step = max(1, ROW_GRAM_STEP // out_dim)  # whole inputs per block of rows
    for first in range(0, n, step):
        last = min(first + step, n)
        rows = slice(first * out_dim, last * out_dim)
        block = np.reshape(gram[rows, :last * out_dim], (last - first, out_dim, last, out_dim), copy=False)
        for flat, products in zip(flats, inputs):
            product = (flat[rows] @ flat[:last * out_dim].T).reshape(last - first, out_dim, last, out_dim)
            product *= products[first:last, None, :last, None]
            block += product
        gram[:first * out_dim, rows] = gram[rows, :first * out_dim].T
    return gram


def _largest_eigenvalue_lower(gram: np.ndarray, steps: int = 12) -> float:
    """A Rayleigh quotient of ``gram`` after power iteration: a lower bound on its largest eigenvalue."""
    v = np.random.default_rng(0).standard_normal(len(gram))
    for _ in range(steps):
        v = gram @ v
        v /= np.linalg.norm(v)
    return float(v @ gram @ v)


def _positive_definite_above(gram: np.ndarray, shift: float, device: str | None = None) -> bool:
    """True if the Cholesky factorization of ``gram - shift I`` runs to completion: LAPACK's ``dpotrf``
    in place (``gram`` is overwritten) when ``device`` is None, else ``torch.linalg.cholesky_ex`` in
    float64 on that torch device (``"cpu"`` too: the same code path a GPU takes; the factor is a second
    q x q array on the device, and running out of device memory is a one-line error)."""
    if device is None:
        gram[np.diag_indices_from(gram)] -= shift
        # symmetric: the transpose of a C-ordered array is the Fortran-ordered view LAPACK factors in
        # place (passing the C-ordered array itself makes f2py copy it: a third q x q array at the peak)
        _, info = scipy.linalg.lapack.dpotrf(gram.T if gram.flags.c_contiguous else gram, lower=1, clean=0,
                                             overwrite_a=1)
        return info == 0
    try:
        matrix = torch.from_numpy(gram).to(device)  # on the CPU a view of ``gram``: shifted in place there too
        matrix.diagonal().sub_(shift)
        _, info = torch.linalg.cholesky_ex(matrix, check_errors=False)
        return int(info) == 0
    except torch.cuda.OutOfMemoryError:
        raise IbcheckError(f"the {len(gram)} x {len(gram)} Gram matrix does not fit in the memory of {device}; "
                           "use device=cpu or fewer inputs") from None


def _gram_rounding_length(arch: Architecture, n: int, rows: bool) -> int:
    r"""K such that the structured Gram matrix computed in float64 satisfies
    :math:`|\hat G - G| \le \gamma_K\,|J||J|^T` entrywise (rows; :math:`|J|^T|J|` for columns), G
    the exact Gram of the factors the code holds: the longest chain of roundings behind one term.
    Rows (:func:`row_gram`): :math:`B^lB^{l\,T}` (inner length :math:`N_l`), :math:`\tilde h\tilde h^T`
    (:math:`N_{l-1} + 1`), their product (1) and the sum over the L layers, so
    :math:`K = \max_l (N_l + N_{l-1} + 2) + L`.  Columns (:func:`column_gram`): :math:`B^TB`
    (:math:`N_L`), :math:`\tilde h_a\tilde h_b` (1), the sum over the n inputs: :math:`K = N_L + n + 1`.
    (Both far below the :math:`m + p` of a Gram multiplied out from J.)"""
    widths = arch.widths
    if rows:
        return max(widths[l] + widths[l - 1] + 2 for l in range(1, arch.depth + 1)) + arch.depth
    return arch.output_dim + n + 1


def _cholesky_error(q: int, trace: float) -> float:
    r"""A bound on :math:`\|\Delta A\|_2` when Cholesky of a q x q symmetric A with
    :math:`\mathrm{tr}(A) \le` ``trace`` runs to completion: :math:`R^TR = A + \Delta A`,
    :math:`|\Delta A| \le \gamma_{q+1}|R^T||R|` (Higham, *Accuracy and Stability of Numerical
    Algorithms*, Thm 10.3; any order of the inner products, blocked LAPACK included), so
    :math:`\|\Delta A\|_2 \le \gamma_{q+1}\|R\|_F^2` and
    :math:`\|R\|_F^2 = \mathrm{tr}(A + \Delta A) \le \mathrm{tr}(A) + \gamma_{q+1}\|R\|_F^2`, i.e.
    :math:`\|\Delta A\|_2 \le \gamma_{q+1}\,\mathrm{tr}(A) / (1 - \gamma_{q+1})`; plus
    :math:`2u\,\mathrm{tr}` for the rounding of a diagonal shift (at most the largest diagonal entry)."""
    g = _gamma(q + 1)
    return (g / (1 - g) + 2 * np.finfo(np.float64).eps) * trace * 1.01


def certified_rank(net: MLP, x, device: str | None = None) -> Rank | None:
    r"""The rank :func:`svd_rank` gives J, proved without an SVD when it equals the generic bound
    :math:`r = \min(nN_L, N_{par} - H)`; None when the proof does not go through (use the SVD).
    Positively 1-homogeneous activations only (ReLU, leaky ReLU, abs): the proof uses
    :math:`\sigma(z) = \sigma'(z)z` (exact null vectors, exact slopes); others return None.

    Lower bound: :math:`\sigma_r(J) > \mathrm{tol}`.  Rows (:math:`r = nN_L`): Cholesky of
    :math:`JJ^T - cI` succeeds.  Columns (:math:`r = N_{par} - H`): drop the H coordinates that
    pivoted QR picks from the rescaling vectors (1.5.2), so that :math:`J = J_S[I, -N_SN_{S^c}^{-1}]`, and Cholesky of :math:`J_S^TJ_S - cI` succeeds;
    :math:`\sigma_i(J) \ge \sigma_i(J_S)` (interlacing).  The Gram matrices come from the blocks
    (:func:`row_gram`, :func:`column_gram`: no J, no SVD).  Success of Cholesky with shift c gives
    :math:`\lambda_{min} \ge c - \delta`, with :math:`\delta = \gamma_K\,\mathrm{tr}(G) + \|\Delta A\|_2`
    covering the Gram's rounding (:math:`\|E\|_2 \le \gamma_K\||J|\|_2^2 \le \gamma_K\|J\|_F^2`, K the
    longest chain of roundings in the structured products, :func:`_gram_rounding_length`: 820 at the
    paper's scale where a Gram multiplied out from J has m + p = 45 720), Cholesky's backward error
    and the shift's rounding (:func:`_cholesky_error`: :math:`\gamma_{q+1}\mathrm{tr}(A)/(1 - \gamma_{q+1})`,
    Higham Thm 10.3, with tr(A) the trace of the matrix factored).  The rounding of J itself,
    :math:`\|J_{computed} - J\|_2 \le \gamma_K\||B|\otimes|\tilde h|\|_F + u\|J\|_F`
    (:func:`_jacobian_rounding`), is subtracted from the lower bound.
    Upper bound (columns): the H rescaling vectors are exact null vectors of the exact Jacobian
    (Euler's identity), so :math:`\sigma_{r+1} \le \|J_{computed} - J\|_2`.  Both must clear the
    documented tolerance :math:`s_{max}\max(m, n)\varepsilon` (with :math:`s_{max} \le \|J\|_F`
    for the lower test and the power-iteration value for the upper).  The reported gap is a
    certified lower bound.  ``device``: None runs the Cholesky in LAPACK; a torch device name runs
    it with ``torch.linalg.cholesky_ex`` in float64 there (the Gram is built on the CPU either way).
    """
    x = _as_inputs(x, net.arch)
    if net.activation.homogeneity_degree != 1:
        return None  # the null vectors (1.5.2) and the rounding bound on J need sigma(z) = sigma'(z) z
    m, p = len(x) * net.arch.output_dim, net.arch.n_parameters
    with threads.for_entries(min(m, p) ** 2):  # the Gram products, Cholesky and the pivoted QR alike
        return _certified_rank(net, x, device)


def _structured_gram(net: MLP, x: torch.Tensor):
    r"""The smaller Gram matrix of J from the blocks (:func:`row_gram` when :math:`nN_L \le N_{par} - H`,
    else :func:`column_gram`), with what the rounding bounds need: (gram, rows, layers, slopes)."""
    arch = net.arch
    check_gram_memory(arch, len(x))
    layers = net.numpy_layers()
    hidden, slopes = network_states(net, x)
    backprops = backprop_matrices([w for w, _ in layers], slopes, len(x))
    augmented = _augmented(hidden)
    rows = len(x) * arch.output_dim <= arch.rescaling_bound
    gram = row_gram(backprops, augmented) if rows else column_gram(backprops, augmented)
    return gram, rows, layers, slopes


def _bounded_gram(net: MLP, x: torch.Tensor):
    r"""The smaller Gram matrix with the bounds the pivoted routes need: (gram, rows, trace, rho, e),
    :math:`\rho \ge \|J_{computed} - J\|_2` (:func:`_jacobian_rounding` plus the rounding of each entry)
    and :math:`e \ge \|\hat G - G\|_2` for G the Gram of the exact J or of the computed one (the
    Gram's rounding :math:`\gamma_K\mathrm{tr}\,\hat G`, :func:`_gram_rounding_length`, plus J's,
    :math:`2\|J\|_F\rho + \rho^2`); None when the trace is not positive and finite."""
    gram, rows, layers, slopes = _structured_gram(net, x)
    trace = float(np.trace(gram))
    if not np.isfinite(trace) or trace <= 0:
        return None
    rho = _jacobian_rounding(layers, x.numpy(), slopes) + float(np.finfo(np.float64).eps) * math.sqrt(trace) * 1.01
    e = (_gamma(_gram_rounding_length(net.arch, len(x), rows)) * trace * 1.01
         + 2 * math.sqrt(trace) * rho + rho**2)
    return gram, rows, trace, rho, e


def _certified_rank(net: MLP, x: torch.Tensor, device: str | None) -> Rank | None:
    arch = net.arch
    m, p = len(x) * arch.output_dim, arch.n_parameters
    eps = float(np.finfo(np.float64).eps)
    gram, rows, layers, slopes = _structured_gram(net, x)
    trace = float(np.trace(gram))
    if not np.isfinite(trace) or trace <= 0:
        return None
    tol_high = math.sqrt(trace) * max(m, p) * eps
    # ||J_exact - J_computed||_2 and ||J_kron - J_computed||_2 (J_kron: exact products of the computed factors)
    perturbation = _jacobian_rounding(layers, x.numpy(), slopes) + eps * math.sqrt(trace) * 1.01
    q = len(gram)
    # the matrix factored: G (rows), or G_S with H decoupled diagonal entries 2 shift <= 2 tr(G) / q (columns)
    factored_trace = trace * (1 if rows else 1 + 2 * arch.hidden_neurons / q)
    delta = _gamma(_gram_rounding_length(arch, len(x), rows)) * trace * 1.01 + _cholesky_error(q, factored_trace)
    shift = 2 * (delta + (tol_high + perturbation) ** 2)  # then sqrt(shift - delta) - perturbation > tol_high
    if shift > trace / q:
        return None  # sigma_r cannot be resolved above the rounding of the Gram matrix
    dropped_coordinates = np.zeros(0, dtype=int) if rows else _dropped_coordinates(net, arch)
    if np.any(np.delete(np.diagonal(gram), dropped_coordinates) <= shift):
        # a diagonal entry of the matrix factored, G_ii - shift, is <= 0 (G_ii = 0: a zero row or column
        # of J, e.g. a unit dead on the batch), so the Cholesky below must fail (each pivot is at most
        # its diagonal entry, in floating point too): decline now
        return None
    s_low = math.sqrt(max(_largest_eigenvalue_lower(gram), 0.0))
    tol_low = s_low * max(m, p) * eps
    if rows:
        rank, dropped = m, tol_high
    else:
        rank, dropped = arch.rescaling_bound, perturbation
        if dropped > tol_low:
            return None
    if not rows:  # G_S (+) 2c I: decouple the dropped coordinates in place instead of copying G_S
        gram[dropped_coordinates, :] = 0
        gram[:, dropped_coordinates] = 0
        gram[dropped_coordinates, dropped_coordinates] = 2 * shift
    if not _positive_definite_above(gram, shift, device):
        return None
    kept = math.sqrt(shift - delta) - perturbation  # sigma_r(J) >= this, exact and computed J alike
    if kept <= tol_high:
        return None
    return Rank(rank, tol_low, eps, s_low, float(np.log10(kept / dropped)), (m, p), "certified")


def _jacobian_rounding(layers, x: np.ndarray, slopes: Sequence[np.ndarray]) -> float:
    r"""First-order bound on :math:`\|J_{computed} - J\|_2`: :math:`\gamma_K \| |B| \otimes |\tilde h| \|_F`
    with :math:`|B|`, :math:`|h|` the passes run on absolute values (each inner product's rounding is
    at most :math:`\gamma_{length}` times the sum of the absolute products), K the roundings on a path."""
    weights = [np.abs(w) for w, _ in layers]
    magnitudes = [np.abs(d) for d in slopes]
    h = [np.abs(x)]
    for (w, b), d in zip(layers[:-1], magnitudes):
        h.append(d * (h[-1] @ np.abs(w).T + np.abs(b)))
    backprops = backprop_matrices(weights, magnitudes, len(x))
    squared = sum(float(np.sum(np.sum(b**2, axis=(1, 2)) * (np.sum(a**2, axis=1) + 1)))
                  for b, a in zip(backprops, h))
    widths = [w.shape[1] for w in weights] + [weights[-1].shape[0]]
    return _gamma(sum(widths) + 3 * len(weights)) * math.sqrt(squared)


def _dropped_coordinates(net: MLP, arch: Architecture) -> np.ndarray:
    """One coordinate per hidden neuron (structured order), chosen by pivoted QR on the rescaling
    vectors so that :math:`N_{S^c}` is well conditioned; J without them keeps rank N_par - H."""
    vectors = rescaling_null_vectors(net)[:, structured_order(arch)]
    _, _, pivots = scipy.linalg.qr(vectors, mode="economic", pivoting=True)
    return np.sort(pivots[:arch.hidden_neurons])


def gram_eigen_rank(net: MLP, x, device: str | None = None) -> Rank:
    r"""The rank of J from the eigenvalues of its smaller Gram matrix (row :math:`JJ^T` or column
    :math:`J^TJ`, built from the blocks without forming J), for Jacobians too large for an SVD
    (the paper's 20 000 x 25 720 at n = 2000): one symmetric eigensolver (LAPACK through scipy when
    ``device`` is None, ``torch.linalg.eigvalsh`` in float64 on the torch ``device``) instead of an SVD of J.

    Squaring halves the dynamic range (3.1), so the SVD rule's tolerance
    :math:`s_{max}\max(m, n)\varepsilon` cannot be resolved on the Gram.  The tolerance here is the
    eigenvalues' own error bound: :math:`\delta = \gamma_K\,\mathrm{tr}(G)` (rounding of the
    Gram, :func:`_gram_rounding_length`, as in :func:`certified_rank`) plus :math:`q\,u\,\hat\lambda_{max}` (the backward error of
    a Householder-based symmetric eigensolver, :math:`|\hat\lambda_i - \lambda_i| \le p(q)\,u\,\|G\|_2`
    with :math:`p(q) = q`, conservative against the LAPACK Users' Guide's p = 1, section 4.7.1) plus
    the rounding of J itself, :math:`2\|J\|_2\|\Delta J\|_2`.  An eigenvalue above
    :math:`\delta` is a singular value :math:`\sigma_i > 0` of the exact J, so the rank returned
    (eigenvalues above :math:`\delta`) is a proved lower bound on the exact rank, and on the SVD
    rule's rank whenever :math:`\sqrt\delta` exceeds that rule's tolerance.  It equals them unless J
    has singular values between the SVD tolerance and :math:`\sqrt\delta`, which the Gram cannot
    see: ``singular_values`` are :math:`\sqrt{\max(\hat\lambda, 0)}`, ``tolerance`` is
    :math:`\sqrt\delta`, and the rank is flagged ill-determined when a value lies within
    :data:`NEAR_TOLERANCE` of it.  Memory is checked before anything is allocated.
    """
    x = _as_inputs(x, net.arch)
    m, p = len(x) * net.arch.output_dim, net.arch.n_parameters
    gram, rows, layers, slopes = _structured_gram(net, x)
    q = len(gram)
    trace = float(np.trace(gram))
    eps = float(np.finfo(np.float64).eps)
    if device is None:
        # G is symmetric: its transpose is the Fortran-ordered view LAPACK overwrites without a copy
        values = scipy.linalg.eigh(gram.T, eigvals_only=True, overwrite_a=True, check_finite=True)
    else:
        values = torch.linalg.eigvalsh(torch.from_numpy(gram).to(device)).cpu().numpy()
    del gram
    top = float(max(values.max(), 0.0))
    rounding_j = _jacobian_rounding(layers, x.numpy(), slopes) + eps * math.sqrt(max(trace, 0.0)) * 1.01
    delta = _gamma(_gram_rounding_length(net.arch, len(x), rows)) * trace * 1.01 + q * eps / 2 * top + 2 * math.sqrt(top) * rounding_j + rounding_j**2
    sigma = np.sqrt(np.clip(values, 0.0, None))[::-1]
    tol = math.sqrt(delta)
    rank = int(np.sum(sigma > tol))
    dropped = sigma[rank] if rank < len(sigma) else tol
    gap = math.inf if rank == 0 or dropped == 0 else float(np.log10(sigma[rank - 1] / max(dropped, tol)))
    return Rank(rank, tol, eps, math.sqrt(top), gap, (m, p), f"gram-eigh ({device or 'lapack'})", sigma)


def pivoted_gram_rank(net: MLP, x) -> Rank | None:
    r"""The number of singular values of J above a proved cut, from its smaller Gram matrix G by a
    rank-revealing pivoted Cholesky (LAPACK ``dpstrf``, blocked, about :math:`q^3/3` flop) and one
    Cholesky of the kept block: the route where :func:`certified_rank` declines because the rank is
    below the generic bound.  None when the separation cannot be proved (use the eigensolver).

    Let :math:`\hat G` be the computed G (q x q) and :math:`G = JJ^T` (or :math:`J^TJ`) for the exact
    J, :math:`\|\hat G - G\|_2 \le e = \gamma_K\mathrm{tr}(\hat G) + 2\|J\|_F\rho + \rho^2`
    (:func:`_gram_rounding_length`; :math:`\rho` bounds J's own rounding, :func:`_jacobian_rounding`).

    * **Candidate.** ``dpstrf`` with tolerance :math:`\tau = 2(e + \delta_q)` (:math:`\delta_q` =
      :func:`_cholesky_error`) stops after r steps, when no remaining Schur pivot exceeds
      :math:`\tau`: a permutation :math:`\pi` and the q x r factor :math:`L = [L_{11}; L_{21}]`.
    * **Upper bound** (Weyl).  With :math:`A = \hat G_{\pi\pi}` and :math:`M = A - LL^T`,
      :math:`\lambda_{r+1}(\hat G) \le \lambda_{r+1}(LL^T) + \|M\|_2 = \|M\|_2` (:math:`LL^T` has rank r).
      The first r columns of M are Cholesky's backward error, :math:`|M_{:,1:r}| \le
      \gamma_{r+1}|L||L_{11}|^T` (Higham Thm 10.3, 10.14), of Frobenius norm at most
      :math:`\gamma_{r+1}\|L\|_F^2`, counted twice for the symmetric block; the trailing block is the
      Schur complement :math:`S = A_{22} - L_{21}L_{21}^T`, formed explicitly (:math:`(q - r)^2 r`
      flop) with :math:`\|\hat S - S\|_F \le \gamma_{r+1}(\|A_{22}\|_F + \|L_{21}\|_F^2)`, and
      :math:`\|S\|_2 \le \|S\|_F` (for a positive semidefinite S at most its trace).  So
      :math:`\lambda_{r+1}(G) \le U = \|\hat S\|_F + \gamma_{r+1}(\|A_{22}\|_F + \|L_{21}\|_F^2
      + 2\|L\|_F^2) + e`.
    * **Lower bound** (Cauchy interlacing).  Cholesky of :math:`A_{11} - cI` (the r pivoted rows and
      columns of :math:`\hat G`) runs to completion, so
      :math:`\lambda_r(G) \ge \lambda_r(\hat G) - e \ge \lambda_{min}(A_{11}) - e \ge c - \delta_r - e`,
      :math:`\delta_r` = :func:`_cholesky_error` of the r x r block.  The shift
      :math:`c = 2(U + \delta_r + e)` gives :math:`\lambda_r(G) \ge 2U`; a shift
      :math:`10^{2\cdot\mathrm{GAP\_FLAG}}` times larger is tried first when it lies below the last kept
      pivot :math:`l_{rr}^2` (:math:`\ge \lambda_{min}(A_{11})`, so a larger shift must fail): its
      success proves a gap of :data:`GAP_FLAG` decades.

    So exactly r singular values of J exceed :math:`\sqrt U` (``tolerance``), the r-th is at least
    :math:`\sqrt{c - \delta_r - e}`, and ``gap_log10`` = :math:`\log_{10}\sqrt{(c - \delta_r - e)/U}`
    is a proved lower bound.  Squaring halves the dynamic range (3.1): the Gram resolves singular
    values down to about :math:`\sqrt{q u}\,\|J\|_F` only, so r counts those above the cut, a lower
    bound on the SVD rule's rank, equal to it unless J has singular values between the two cuts.
    LAPACK only (torch has no pivoted Cholesky).  Memory (G, LAPACK's factor, then S) is checked
    before each allocation.
    """
    x = _as_inputs(x, net.arch)
    arch = net.arch
    m, p = len(x) * arch.output_dim, arch.n_parameters
    eps = float(np.finfo(np.float64).eps)
    side = m if m <= arch.rescaling_bound else p
    what = f"the pivoted Cholesky of the Gram matrix of {arch} on {len(x)} inputs"
    _check_memory(2 * 8 * side**2, what)  # G and LAPACK's factor (freed before the kept block is copied)
    with threads.for_entries(min(m, p) ** 2):
        bounded = _bounded_gram(net, x)
        if bounded is None:
            return None
        gram, rows, trace, _, e = bounded
        q = len(gram)
        s_low = math.sqrt(max(_largest_eigenvalue_lower(gram), 0.0))
        factor, pivots, rank, info = scipy.linalg.lapack.dpstrf(gram, tol=2 * (e + _cholesky_error(q, trace)),
                                                                lower=1, overwrite_a=0)
        if info < 0:
            return None
        order = np.asarray(pivots) - 1  # LAPACK's pivots are 1-based
        kept, rest = order[:rank], order[rank:]
        g = _gamma(rank + 1)
        # ||L||_F^2 column by column (the lower trapezoid: no masked copy of the factor)
        l_norm2 = sum(float(factor[j:, j] @ factor[j:, j]) for j in range(rank))
        last_pivot = float(factor[rank - 1, rank - 1]) ** 2 if rank else 0.0
        _check_memory(8 * (2 * q**2 + 2 * len(rest) ** 2), what)
        lower21 = factor[rank:, :rank]
        schur = gram[np.ix_(rest, rest)]
        a22_norm = float(np.linalg.norm(schur))
        l21_norm2 = float(np.sum(lower21 * lower21)) if len(rest) else 0.0
        schur -= lower21 @ lower21.T
        upper = (float(np.linalg.norm(schur)) + g * (a22_norm + l21_norm2 + 2 * l_norm2)) * 1.01 + e
        del factor, lower21, schur
        if rank == 0:
            return Rank(0, math.sqrt(upper), eps, s_low, math.inf, (m, p), "gram-pivoted")
        delta_r = _cholesky_error(rank, float(gram[kept, kept].sum()))  # tr(A_11)
        smallest = 2 * (upper + delta_r + e)
        for shift in (10 ** (2 * GAP_FLAG) * smallest, smallest):
            if shift >= last_pivot and shift > smallest:
                continue  # lambda_min(A_11) <= l_rr^2 < shift: this Cholesky must fail
            if _positive_definite_above(_principal_block(gram, kept), shift):
                break
        else:
            return None
    lower = shift - delta_r - e
    return Rank(rank, math.sqrt(upper), eps, s_low, float(np.log10(math.sqrt(lower / upper))), (m, p),
                "gram-pivoted")


#: dpstrf keeps a row of J while the largest remaining Schur pivot exceeds this many Gram error bounds;
#: the rows after it are projected on J itself (:func:`projected_rank`): a cut 1e3 above the floor keeps
#: the kept rows' seminormal equations well conditioned (one refinement step gains ~1 decade at the
#: paper's scale) and leaves a few hundred rows (246 of 20 000 there) to project
PROJECTION_CUT = 1e3
#: the diagonal shift, in Gram error bounds, of the pivoted Cholesky that certifies the kept rows: its
#: success proves lambda_min >= (shift - 1) bounds, and the shift slows the refinement by shift/lambda_min
PROJECTION_SHIFT = 4.0
#: refinement steps of the corrected seminormal equations, at most (they stop earlier at the rounding floor)
REFINEMENT_STEPS = 40


def projected_rank(net: MLP, x) -> Rank | None:
    r"""The rank of J with both sides proved, resolving singular values of J down to about
    :math:`\gamma_{q}\kappa\,\|J\|_F` instead of the Gram's :math:`\sqrt{qu}\,\|J\|_F`: a pivoted
    Cholesky of the row Gram :math:`G = JJ^T` (q x q, built from the blocks) picks k rows of J that are
    proved independent, and the remaining q - k rows are projected off their span *on J itself*
    (corrected seminormal equations, Björck, *Numerical Methods for Least Squares Problems* 2.5.4),
    with an a-posteriori bound on that projection.  Row case (:math:`nN_L \le N_{par} - H`, the paper's
    test inputs) as written; in the column case the smaller Gram is :math:`J^TJ` (structured order) and
    everything below runs on the columns of J (:math:`J^T` for J: the paper's 3352 random inputs).
    None when nothing can be kept or when G and J do not fit in memory together (use
    :func:`pivoted_gram_rank`, which needs G only).

    Let :math:`J_c` be the computed J (:func:`jacobian_blocks`), :math:`\|J_c - J\|_2 \le \rho`
    (:func:`_jacobian_rounding`), e the bound on :math:`\|\hat G - J_cJ_c^T\|_2` of
    :func:`pivoted_gram_rank`, :math:`f = e + \delta_q` (:func:`_cholesky_error`).

    * **Kept rows.** ``dpstrf`` on :math:`\hat G - sI`, :math:`s` = :data:`PROJECTION_SHIFT` f, stops
      after k steps when no Schur pivot exceeds :data:`PROJECTION_CUT` f: a permutation and
      :math:`L_{11}L_{11}^T = (\hat G - sI)_{11} + \Delta`, :math:`\|\Delta\|_2 \le \delta_k` (Higham
      Thm 10.3), so the kept rows :math:`A_1` of :math:`J_c` have
      :math:`\sigma_{min}(A_1)^2 \ge s_1^2 = s - \delta_k - e > 0`.
    * **Projection.** With :math:`A_2` the other rows, :math:`C` solves :math:`A_1A_1^TC = A_1A_2^T`
      through :math:`L_{11}` and is refined until the rounding floor (each step
      :math:`C \mathrel{+}= (L_{11}L_{11}^T)^{-1}A_1\hat R`), :math:`\hat R = fl(A_2^T - A_1^TC)`
      (p x (q - k)).  Its exact projection :math:`R_* = P^\perp A_2^T` (:math:`P` onto the row span of
      :math:`A_1`) satisfies :math:`\|\hat R - R_*\|_2 \le \beta = \|E\|_F + (\|\widehat{A_1\hat R}\|_F
      + \gamma_p\|A_1\|_F\|\hat R\|_F)/s_1` with :math:`\|E\|_F \le \gamma_{q+1}(\|A_2\|_F + \|A_1\|_F\|C\|_F)`
      (:math:`P^\perp\hat R = R_* + P^\perp E`, :math:`\|P\hat R\| \le \|A_1\hat R\|/\sigma_{min}(A_1)`),
      and the singular values :math:`\hat s_i` of :math:`\hat R` carry the SVD's error
      :math:`\eta = \max(p, q - k)\,\varepsilon\,\hat s_1`: :math:`|s_i(R_*) - \hat s_i| \le \beta + \eta`.
    * **Both sides.** :math:`\sigma_{k+i}(J_c) \le s_i(R_*)` (:math:`PJ_c^T` has rank k; Weyl) and, from
      :math:`J_c^T = [A_1^T, R_*]\begin{bmatrix}I & C_*\\ 0 & I\end{bmatrix}` with orthogonal blocks,
      :math:`\sigma_{k+i}(J_c) \ge \min(s_1, s_i(R_*))/(1 + \|C_*\|_2)`,
      :math:`\|C_* - C\| \le \|A_1(\hat R - E)\|/s_1^2`; :math:`\sigma_k(J_c) \ge s_1`.  Each bound moves
      by :math:`\rho` to the exact J.

    The rank r = k + i counts the singular values proved above the SVD rule's tolerance
    :math:`t = \sqrt{\mathrm{tr}\,G}\max(m, p)\varepsilon` (:math:`\ge s_{max}\max(m, p)\varepsilon`),
    a proved lower bound on that rule's rank and on the exact rank; ``tolerance`` is the proved upper
    bound on :math:`\sigma_{r+1}` (the rule's own tolerance when r = q, as in :func:`certified_rank`) and
    ``gap_log10`` the log10 ratio of the two proved bounds, flagged ill-determined under
    :data:`GAP_FLAG` decades.  So "exactly r singular values of J above ``tolerance``" is proved, and r
    equals the SVD rule's rank unless J has singular values between t and ``tolerance`` (which the
    gap then shows).  Cost at the paper's scale (q = 20 000, p = 25 720): the Gram
    (~8e10 flop), ``dpstrf`` (~q^3/3), J (4.1 GB) and a few products :math:`J\hat R` per refinement step
    (4 q p (q - k) flop); memory (G, then :math:`L_{11}` moved to the front of G's memory, and J) is
    checked before allocating.
    LAPACK only (torch has no pivoted Cholesky).
    """
    x = _as_inputs(x, net.arch)
    arch = net.arch
    m, p = len(x) * arch.output_dim, arch.n_parameters
    side = m if m <= arch.rescaling_bound else p
    if max(gram_bytes(arch, len(x)), 8 * (side**2 + m * p)) > _memory_limit():
        return None  # G (then L_11 in its memory) and J do not fit together: pivoted_gram_rank needs G only
    with threads.for_entries(m * p):
        return _projected_rank(net, x)


def _projected_rank(net: MLP, x: torch.Tensor) -> Rank | None:
    arch = net.arch
    m, p = len(x) * arch.output_dim, arch.n_parameters
    eps = float(np.finfo(np.float64).eps)
    bounded = _bounded_gram(net, x)
    if bounded is None:
        return None
    gram, rows, trace, rho, e = bounded
    q = len(gram)
    floor = e + _cholesky_error(q, trace)
    s_low = math.sqrt(max(_largest_eigenvalue_lower(gram), 0.0))
    shift = PROJECTION_SHIFT * floor
    gram[np.diag_indices_from(gram)] -= shift
    # symmetric: the transpose is the Fortran-ordered view LAPACK factors in place (no copy)
    factor, pivots, k, info = scipy.linalg.lapack.dpstrf(gram.T, tol=PROJECTION_CUT * floor, lower=1, overwrite_a=1)
    if info < 0 or k == 0:
        return None
    s1_squared = shift - _cholesky_error(k, trace) - e  # lambda_min(A_1 A_1^T) >= this (the trace of G - sI <= tr G)
    if s1_squared <= 0:
        return None
    s1 = math.sqrt(s1_squared)
    tol_low, tol_high = s_low * max(m, p) * eps, math.sqrt(trace) * max(m, p) * eps
    order = np.asarray(pivots) - 1  # LAPACK's pivots are 1-based
    if not rows:
        order = structured_order(arch)[order]  # J^T J's index (structured order) -> J's column
    kept, rest = order[:k], order[k:]
    lower_kept = s1 - rho  # sigma_k(J) >= sigma_min(A_1) - rho
    evidence = {"kept": k, "projected": q - k, "refinement_steps": 0, "sigma_min_kept_lower": s1}
    if k == q:
        return Rank(q, tol_low, eps, s_low, _log10_ratio(lower_kept, tol_high), (m, p), "projected", None, evidence)
    lower11 = _leading_factor(factor, k)
    del factor, gram
    hidden, slopes = network_states(net, x)  # J without the SVD copy jacobian_blocks sizes for: memory checked above
    jac = jacobian_from_states([w for w, _ in net.numpy_layers()], hidden, slopes)
    vectors = jac if rows else jac.T  # the rows the Gram pivoted: J's rows, or its columns (a view)
    inner = vectors.shape[1]
    row_norms = np.einsum("ij,ij->i", vectors, vectors)
    a1_norm = math.sqrt(float(row_norms[kept].sum()) * 1.01)
    a2_norm = math.sqrt(float(row_norms[rest].sum()) * 1.01)
    a2t = np.ascontiguousarray(vectors[rest].T)  # inner x (q - k)
    scattered = np.zeros((q, len(rest)))

    def solve(rhs: np.ndarray) -> np.ndarray:  # (L_11 L_11^T)^{-1} rhs
        return scipy.linalg.cho_solve((lower11, True), rhs, check_finite=False)

    def residual(coefficients: np.ndarray) -> np.ndarray:  # fl(A_2^T - A_1^T C); zero rows add exactly
        scattered[kept] = coefficients
        return a2t - vectors.T @ scattered

    coefficients = solve((vectors @ a2t)[kept])
    resid = residual(coefficients)
    previous = math.inf
    for step in range(REFINEMENT_STEPS + 1):
        product = (vectors @ resid)[kept]  # A_1 R, computed
        product_norm = float(np.linalg.norm(product))
        rounding = _gamma(inner) * a1_norm * float(np.linalg.norm(resid))  # of that product
        loose_e = _gamma(q + 1) * (a2_norm + a1_norm * float(np.linalg.norm(coefficients)))
        if product_norm <= rounding + s1 * loose_e or product_norm > previous / 2 or step == REFINEMENT_STEPS:
            break  # at the floor (further steps cannot shrink beta by more than a factor 2), or out of steps
        previous = product_norm
        coefficients += solve(product)
        resid = residual(coefficients)
    values = scipy.linalg.svdvals(resid, check_finite=True)
    e_norm = _gamma(q + 1) * (a2_norm + _absolute_product_norm(vectors, scattered))  # scattered holds the final C
    eta = max(inner, len(rest)) * eps * float(values[0])
    beta = e_norm + (product_norm + rounding) / s1 + eta
    c_norm = float(scipy.linalg.svdvals(coefficients, check_finite=True)[0]) * (1 + max(coefficients.shape) * eps)
    c_star = c_norm + (product_norm + rounding + a1_norm * e_norm) / s1_squared
    upper = values + e_norm + eta + rho  # sigma_{k+i}(J) <= s_i(P^perp R) + ||E|| + rho <= s_i(R) + ...
    lower = np.concatenate([[lower_kept], np.minimum(s1, values - beta) / (1 + c_star) - rho])
    cut = int(np.sum(lower[1:] > tol_high))  # lower is non-increasing: the first cut values are proved
    dropped = float(upper[cut]) if cut < len(values) else tol_high
    evidence.update(refinement_steps=step, projection_error=beta, residual_singular_values=values)
    return Rank(k + cut, dropped if cut < len(values) else tol_low, eps, s_low, _log10_ratio(lower[cut], dropped),
                (m, p), "projected", None, evidence)


def _leading_factor(factor: np.ndarray, k: int) -> np.ndarray:
    """L_11, the leading k x k block of LAPACK's Fortran-ordered q x q factor, moved column by column to
    the front of the same memory as a contiguous Fortran-ordered array (no second array of G's size:
    column j moves from j q to j k, never past the start of column j + 1)."""
    q = factor.shape[0]
    flat = factor.reshape(-1, order="F")  # a view: the factor is Fortran-contiguous
    for j in range(1, k):
        flat[j * k:(j + 1) * k] = flat[j * q:j * q + k]  # numpy copies through a buffer where these overlap
    return flat[:k * k].reshape((k, k), order="F")


def _absolute_product_norm(matrix: np.ndarray, other: np.ndarray, rows: int = 512) -> float:
    r""":math:`\||M^T||X|\|_F` rounded up, a block of rows at a time (no copy of :math:`|M|`): a sum of
    non-negative terms, computed within a factor :math:`1 - \gamma_n` of its value."""
    total = np.zeros((matrix.shape[1], other.shape[1]))
    for start in range(0, len(matrix), rows):
        total += np.abs(matrix[start:start + rows]).T @ np.abs(other[start:start + rows])
    return float(np.linalg.norm(total)) * 1.01


def _log10_ratio(low: float, high: float) -> float:
    """log10(low / high) for a proved lower bound over an upper bound (-inf when nothing is proved)."""
    return float(np.log10(low / high)) if low > 0 else -math.inf


def _principal_block(gram: np.ndarray, index: np.ndarray, rows_per_step: int = 512) -> np.ndarray:
    """``gram[np.ix_(index, index)]`` copied a few rows at a time (no r x q temporary)."""
    block = np.empty((len(index), len(index)))
    for start in range(0, len(index), rows_per_step):
        block[start:start + rows_per_step] = gram[index[start:start + rows_per_step]][:, index]
    return block
