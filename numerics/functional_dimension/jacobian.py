"""Jacobians of the logits (1.3, 3.1): autodiff and closed-form blocks, the frozen-pattern map,
memory guards."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from theory.errors import IbcheckError
from theory.functional_dimension import Architecture

from ..mlp import MLP


#: rows of the row Gram matrix built per step (rank.row_gram: its only temporary is this many rows)
ROW_GRAM_STEP = 2000
#: doubles a pair of layers' products of inputs may take in rank.column_gram (1 GiB); above it the
#: pair is built one neuron at a time (the paper's 785-wide input layer on 3352 inputs: 16 GB at once)
COLUMN_GRAM_BLOCK = 2**27
#: memory one autodiff chunk may take (chunks are written into one preallocated tensor; none is dropped)
CHUNK_BYTES = 64 * 2**20


def _memory_limit() -> int:
    """Bytes a Jacobian may take: half the physical memory, at most 16 GiB."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 8 * 2**30
    return int(min(physical // 2, 16 * 2**30))


def _check_memory(need: int, what: str) -> None:
    limit = _memory_limit()
    if need > limit:
        raise IbcheckError(f"{what} needs about {need / 2**30:.3g} GiB, more than the {limit / 2**30:.3g} GiB "
                           "allowed; use fewer inputs or a smaller network")


def check_jacobian_memory(arch: Architecture, n: int) -> None:
    """Refuse, before allocating, a Jacobian (plus the SVD's copy) that would not fit in memory."""
    _check_memory(2 * arch.jacobian_bytes(n), f"the Jacobian of {arch} on {n} inputs (with the SVD's copy)")


def gram_bytes(arch: Architecture, n: int) -> int:
    """Peak memory of :func:`certified_rank`'s Gram matrix and its largest temporaries."""
    rows = n * arch.output_dim
    if rows <= arch.rescaling_bound:  # row route: J J^T, a block of rows and its mirrored copy, the inputs' Grams
        return 8 * (rows**2 + 2 * min(ROW_GRAM_STEP, rows) * rows + arch.depth * n**2)
    sizes = [(arch.widths[l], arch.widths[l - 1] + 1) for l in range(1, arch.depth + 1)]
    return 8 * (arch.n_parameters**2 + max(column_gram_temporaries(n, a, b)[0] for a in sizes for b in sizes))


def column_gram_temporaries(n: int, first: tuple[int, int], second: tuple[int, int]) -> tuple[int, bool]:
    """(doubles, at once) :func:`~.rank.column_gram` holds beside G for a pair of layers of (width,
    fan-in + 1) ``first`` and ``second`` on n inputs: all products of inputs at once when they fit
    :data:`COLUMN_GRAM_BLOCK`, else one neuron of the first layer at a time."""
    (w1, a1), (w2, a2) = first, second
    at_once = n * (w1 * w2 + a1 * a2) + 2 * w1 * a1 * w2 * a2
    if at_once <= COLUMN_GRAM_BLOCK:
        return at_once, True
    return n * w1 * w2 + n * w2 * a2 + a1 * w2 * a2, False


def check_gram_memory(arch: Architecture, n: int) -> None:
    """Refuse, before allocating, the Gram matrix of :func:`certified_rank` (with its working copies)."""
    _check_memory(gram_bytes(arch, n), f"the Gram matrix of {arch} on {n} inputs (with its working copies)")


def _as_inputs(x, arch: Architecture) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.ndim != 2 or t.shape[1] != arch.input_dim:
        raise IbcheckError(f"{arch} takes inputs of shape (n, {arch.input_dim}), got {tuple(t.shape)}")
    return t


# ---- Jacobians -------------------------------------------------------------------------------
def jacobian_autodiff(net: MLP, x, chunk: int | None = None) -> torch.Tensor:
    r"""J by ``torch.func``: ``vmap(jacrev(f))`` over chunks of inputs, shape (n N_L, N_par).

    Every chunk is kept (the last one may be partial); the row count is asserted, so a dropped
    chunk (the pitfall of section 2) cannot go unnoticed.
    """
    from torch.func import jacrev, vmap

    arch = net.arch
    x = _as_inputs(x, arch)
    n = len(x)
    check_jacobian_memory(arch, n)
    if chunk is None:
        chunk = max(1, CHUNK_BYTES // (8 * arch.output_dim * arch.n_parameters))
    per_input = vmap(jacrev(net.functional(), argnums=0), in_dims=(None, 0))
    theta = net.flat()
    jac = torch.empty(n, arch.output_dim, arch.n_parameters, dtype=torch.float64)
    filled = 0
    for start in range(0, n, chunk):
        block = per_input(theta, x[start:start + chunk])
        jac[start:start + len(block)] = block
        filled += len(block)
    if filled != n:
        raise RuntimeError(f"Jacobian has rows for {filled} inputs, expected {n}: a chunk was lost")
    return jac.reshape(n * arch.output_dim, arch.n_parameters)


def backprop_matrices(weights: Sequence[np.ndarray], slopes: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    r""":math:`B^1_i, \dots, B^L_i` on the batch, each of shape (n, N_L, N_l) (1.3):
    :math:`B^L_i = I`, :math:`B^l_i = B^{l+1}_i M^{l+1} D^l_i` (float or exact object arrays)."""
    out_dim = weights[-1].shape[0]
    dtype = weights[-1].dtype
    eye = np.eye(out_dim, dtype=int).astype(object) if dtype == object else np.eye(out_dim, dtype=dtype)
    mats = [np.broadcast_to(eye, (n, out_dim, out_dim))]
    for l in range(len(weights), 1, -1):
        mats.append((mats[-1] @ weights[l - 1]) * slopes[l - 2][:, None, :])
    return mats[::-1]


def jacobian_from_states(weights: Sequence[np.ndarray], hidden: Sequence[np.ndarray],
                         slopes: Sequence[np.ndarray]) -> np.ndarray:
    r"""Assemble J from the closed-form blocks (1.3).

    ``weights[l-1]`` = :math:`M^l`; ``hidden[l]`` = :math:`h^l` on the batch (n, N_l) for
    l = 0..L-1; ``slopes[l-1]`` = the diagonal of :math:`D^l` (n, N_l) for the hidden layers.
    The columns of layer l are :math:`B^l_i \otimes h^{l-1}_i` (weights, row-major) then
    :math:`B^l_i` (biases), with :math:`B^l_i` from :func:`backprop_matrices`.
    Works for float arrays and for object arrays of exact numbers.
    """
    n = len(hidden[0])
    out_dim = weights[-1].shape[0]
    total = sum(w.shape[0] * (w.shape[1] + 1) for w in weights)
    jac = np.empty((n, out_dim, total), dtype=weights[-1].dtype)  # filled block by block: no concatenated copies
    start = 0
    for w, h, b_mat in zip(weights, hidden, backprop_matrices(weights, slopes, n)):
        width, fan_in = w.shape
        weight_view = np.reshape(jac[:, :, start:start + width * fan_in], (n, out_dim, width, fan_in), copy=False)
        np.multiply(b_mat[:, :, :, None], h[:, None, None, :], out=weight_view)
        jac[:, :, start + width * fan_in:start + width * (fan_in + 1)] = b_mat
        start += width * (fan_in + 1)
    return jac.reshape(n * out_dim, total)


def network_states(net: MLP, x) -> tuple[list[np.ndarray], list[np.ndarray]]:
    r"""(h^0..h^{L-1}, sigma'(z^1)..sigma'(z^{L-1})) of the network on a batch, numpy."""
    x = _as_inputs(x, net.arch)
    hidden, slopes = [x.numpy()], []
    with torch.no_grad():
        h = x
        for w, b in zip(net.weights[:-1], net.biases[:-1]):
            z = h @ w.T + b
            h = net.sigma(z)
            hidden.append(h.numpy())
            slopes.append(net.sigma_prime(z).numpy())
    return hidden, slopes


def jacobian_blocks(net: MLP, x) -> np.ndarray:
    """J by the closed-form blocks (numpy float64), shape (n N_L, N_par)."""
    check_jacobian_memory(net.arch, len(x))
    hidden, slopes = network_states(net, x)
    return jacobian_from_states([w for w, _ in net.numpy_layers()], hidden, slopes)


def frozen_states(layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray, pattern: np.ndarray):
    r"""Hidden outputs of the frozen-pattern map (1.4): :math:`h^l = D^l z^l` with :math:`D^l`
    read from ``pattern`` (H, n) instead of from the signs of :math:`z^l`."""
    hidden, slopes, row = [x], [], 0
    h = x
    for w, b in layers[:-1]:
        d = pattern[row:row + w.shape[0]].T.astype(w.dtype if w.dtype != object else int)
        if w.dtype == object:
            d = d.astype(object)
        row += w.shape[0]
        h = d * (h @ w.T + b)
        hidden.append(h)
        slopes.append(d)
    return hidden, slopes


def frozen_jacobian(layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    r"""Jacobian of the frozen-pattern map :math:`\Phi_{\Delta, X}` at the parameters ``layers``."""
    hidden, slopes = frozen_states(layers, x, pattern)
    return jacobian_from_states([w for w, _ in layers], hidden, slopes)
