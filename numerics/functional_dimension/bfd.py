"""The batch functional dimension (1.3, 3.3) and the frozen-pattern ranks (1.4-1.5)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from theory.errors import IbcheckError
from theory.functional_dimension import Architecture

from ..mlp import MLP
from .jacobian import _as_inputs, _memory_limit, frozen_jacobian, gram_bytes, jacobian_autodiff, jacobian_blocks
from .rank import Rank, certified_rank, exact_rank, gram_eigen_rank, pivoted_gram_rank, projected_rank, svd_rank


# ---- batch functional dimension -------------------------------------------------------------
@dataclass
class BFD:
    """A batch functional dimension and how it was obtained."""

    value: int
    rank: Rank
    bound: int
    n: int
    route: str
    outputs: str
    zero_preactivations: int
    seconds_jacobian: float
    seconds_rank: float

    def summary(self) -> dict:
        return {"bfd": self.value, "bound": self.bound, "n": self.n, "route": self.route, "outputs": self.outputs,
                "zero_preactivations": self.zero_preactivations, **self.rank.summary()}


def output_jacobian(jac: np.ndarray, logits: np.ndarray, outputs: str) -> np.ndarray:
    r"""J of another output map, from the logit Jacobian (3.3): ``softmax``
    :math:`(\mathrm{diag}(p_i) - p_ip_i^T)J_i`; ``centred`` :math:`J_i - \frac1{N_L}\mathbf 1\mathbf 1^TJ_i`."""
    if outputs == "logits":
        return jac
    n, out_dim = logits.shape
    blocks = jac.reshape(n, out_dim, -1)
    if outputs == "centred":
        return (blocks - blocks.mean(axis=1, keepdims=True)).reshape(jac.shape)
    if outputs == "softmax":
        shifted = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        jac_p = p[:, :, None] * blocks - p[:, :, None] * np.einsum("ik,ikc->ic", p, blocks)[:, None, :]
        return jac_p.reshape(jac.shape)
    raise IbcheckError(f"unknown outputs {outputs!r}; known: logits, softmax, centred")


#: above this many Jacobian entries ``rank_method="auto"`` takes the Gram eigenvalues instead of an SVD
#: (an SVD of 3000 x 2350 took ~48 s on 2 loaded cores, 3.4; its cost grows as m n min(m, n))
SVD_MAX_ENTRIES = 3 * 10**7
RANK_METHODS = ("svd", "certified", "gram", "auto")


def batch_functional_dimension(net: MLP, x, route: str = "blocks", outputs: str = "logits",
                               rank_method: str = "svd", device: str | None = None) -> BFD:
    r"""BFD(theta, X): the rank of the (n N_L) x N_par Jacobian of ``outputs`` (1.3).

    ``route``: ``blocks`` (closed form, numpy) or ``autodiff`` (``torch.func``); both float64.
    ``rank_method``: ``svd`` (:func:`svd_rank`); ``certified`` (logits only: :func:`certified_rank`,
    the same number proved without J or an SVD when it equals the bound, else the SVD); ``gram``
    (logits only, for Jacobians too large for an SVD: on the CPU :func:`projected_rank`, where it
    declines :func:`pivoted_gram_rank`, and where neither proves a cut, or on another ``device``,
    :func:`gram_eigen_rank`); ``auto`` (up to
    :data:`SVD_MAX_ENTRIES` entries: certified, then the SVD; above: ``gram``, after the certificate
    on another ``device``).
    ``device``: None runs the Gram routes' factorizations in LAPACK; a torch device name (``"cuda"``,
    or ``"cpu"`` for the same code path on the CPU) runs the certificate's Cholesky and the
    eigensolver with torch in float64 there (the pivoted routes are LAPACK only and are skipped).
    Any activation is accepted (BFD is a Jacobian rank); the bound reported is
    :math:`\min(nN_L, N_{par} - H)`, a theorem for positively 1-homogeneous activations.
    ``zero_preactivations`` counts exact zeros of :math:`z^l_j(x_i)`, where BFD is undefined.
    """
    if route not in ("blocks", "autodiff"):
        raise IbcheckError(f"unknown Jacobian route {route!r}; known: blocks, autodiff")
    if rank_method not in RANK_METHODS:
        raise IbcheckError(f"unknown rank method {rank_method!r}; known: {', '.join(RANK_METHODS)}")
    x = _as_inputs(x, net.arch)
    start = time.perf_counter()
    zeros = int(sum((z == 0).sum() for z in net.preactivations(x)[:-1]))
    logits = outputs == "logits"
    entries = len(x) * net.arch.output_dim * net.arch.n_parameters
    large = rank_method == "gram" or (rank_method == "auto" and entries > SVD_MAX_ENTRIES)
    if (rank_method == "certified" or (rank_method == "auto" and not (large and device is None))) and logits \
            and gram_bytes(net.arch, len(x)) <= _memory_limit():
        rank = certified_rank(net, x, device)
        if rank is not None:
            return BFD(rank.rank, rank, net.arch.bound(len(x)), len(x), "gram", outputs, zeros, 0.0,
                       time.perf_counter() - start)
    if logits and large:
        rank = ((projected_rank(net, x) or pivoted_gram_rank(net, x)) if device is None else None) \
            or gram_eigen_rank(net, x, device)
        return BFD(rank.rank, rank, net.arch.bound(len(x)), len(x), "gram", outputs, zeros, 0.0,
                   time.perf_counter() - start)
    jac = jacobian_autodiff(net, x).numpy() if route == "autodiff" else jacobian_blocks(net, x)
    if outputs != "logits":
        with torch.no_grad():
            jac = output_jacobian(jac, net(x).numpy(), outputs)
    mid = time.perf_counter()
    rank = svd_rank(jac)
    return BFD(rank.rank, rank, net.arch.bound(len(x)), len(x), route, outputs, zeros, mid - start,
               time.perf_counter() - mid)


# ---- patterns and the frozen-pattern map -----------------------------------------------------
def region_count(pattern: np.ndarray) -> int:
    """R_X: the number of distinct columns of the batch pattern (H, n)."""
    return len({column.tobytes() for column in np.ascontiguousarray(pattern.T)})


def affine_rank(x) -> int:
    """rank [X | 1] (numpy's tolerance rule in float64)."""
    x = np.asarray(x, dtype=np.float64)
    return svd_rank(np.hstack([x, np.ones((len(x), 1))])).rank


def random_layers(arch: Architecture, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gaussian parameters (He scale, unit biases) for evaluating a frozen map at a random theta'."""
    return [(rng.standard_normal((w, f)) * math.sqrt(2 / f), rng.standard_normal(w))
            for f, w in zip(arch.widths[:-1], arch.widths[1:])]


def frozen_pattern_rank(arch: Architecture, pattern: np.ndarray, x: np.ndarray, seed: int = 0) -> Rank:
    r"""The frozen-pattern rank :math:`r_X(\Delta)` (1.4): the rank of :math:`D\Phi_{\Delta,X}` at a
    random :math:`\theta'` (pass an independent X' in general position for the strong form)."""
    rng = np.random.default_rng(seed)
    return svd_rank(frozen_jacobian(random_layers(arch, rng), np.asarray(x, dtype=np.float64), pattern))


def exact_frozen_rank(arch: Architecture, pattern: np.ndarray, seed: int = 0, magnitude: int = 10**6,
                      x: np.ndarray | None = None) -> int:
    r"""The generic rank of the frozen map, exactly: integer :math:`\theta'` (and X' unless ``x``
    is given as integers) uniform in :math:`[-m, m]`, rank over the rationals.  Schwartz-Zippel:
    wrong with probability at most (degree)/(2m + 1) per minor (1.4; [-9, 9] is too small)."""
    rng = np.random.default_rng(seed)

    def draw(*shape):
        return np.array([int(v) for v in rng.integers(-magnitude, magnitude + 1, size=shape).ravel()],
                        dtype=object).reshape(shape)

    layers = [(draw(w, f), draw(w)) for f, w in zip(arch.widths[:-1], arch.widths[1:])]
    inputs = draw(pattern.shape[1], arch.input_dim) if x is None else np.asarray(x, dtype=object)
    return exact_rank(frozen_jacobian(layers, inputs, pattern.astype(int)))


def to_fraction(value) -> Fraction:
    """An exact rational from an int, a Fraction, a sympy Rational, a string such as ``"1/3"``, or a
    float (taken at its exact binary value: ``0.1`` becomes 3602879701896397/2^55, not 1/10)."""
    if isinstance(value, bool):
        raise IbcheckError(f"not a number: {value!r}")
    if isinstance(value, (int, Fraction, np.integer)):
        return Fraction(int(value)) if isinstance(value, np.integer) else Fraction(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            raise IbcheckError(f"exact ranks need finite numbers, got {value!r}")
        return Fraction(float(value))
    if isinstance(value, str):
        try:
            return Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise IbcheckError(f"not a rational number: {value!r}") from None
    if getattr(value, "is_Rational", False):  # sympy Integer / Rational
        return Fraction(int(value.p), int(value.q))
    raise IbcheckError(f"exact ranks need rational numbers (int, Fraction, sympy Rational, 'p/q'), got {value!r}")


def exact_bfd(net_or_layers, x) -> int:
    r"""BFD in exact rational arithmetic: the pattern is read from exact pre-activations and J is
    ranked over the rationals (the reference for the float64 SVD rank, F7).

    ``net_or_layers``: a list of exact ``(W, b)`` pairs (nested sequences or object arrays of ints,
    Fractions, sympy Rationals or ``"p/q"`` strings), with ``x`` exact too: the rank of the network
    the numbers describe.  An :class:`MLP` (float parameters), or float entries anywhere, are taken
    at their **exact binary values**: floats are rounded, so exact relations of the decimal numbers
    meant (inputs on the plane :math:`x_3 = x_1/3`, equal rows) can be lost and the rank can rise
    (a 3-5-2 net on 20 coplanar inputs: 22 exactly, 26 from the rounded floats).  An exact zero
    pre-activation (BFD undefined there, 1.3) is an error."""
    to_exact = np.vectorize(to_fraction, otypes=[object])
    if isinstance(net_or_layers, MLP):
        pairs = net_or_layers.numpy_layers()
    else:
        pairs = list(net_or_layers)
    layers = [(to_exact(np.asarray(w, dtype=object)), to_exact(np.asarray(b, dtype=object))) for w, b in pairs]
    h = to_exact(np.asarray(x, dtype=object))
    if h.ndim != 2 or h.shape[1] != layers[0][0].shape[1]:
        raise IbcheckError(f"inputs must have shape (n, {layers[0][0].shape[1]}), got {h.shape}")
    inputs, rows = h, []
    for w, b in layers[:-1]:
        z = h @ w.T + b
        if any(v == 0 for v in z.ravel()):
            raise IbcheckError("an exact pre-activation is 0: BFD is undefined at this (theta, X)")
        d = np.vectorize(lambda v: int(v > 0), otypes=[object])(z)
        rows.append(d.T)
        h = d * z
    pattern = np.concatenate(rows).astype(int)
    return exact_rank(frozen_jacobian(layers, inputs, pattern))


def closed_form_matrix(pattern: np.ndarray, x) -> np.ndarray:
    r"""The shallow scalar closed form (1.4): rows :math:`[\Delta_{i1}\tilde x_i^T, \dots,
    \Delta_{im}\tilde x_i^T, 1]`, an n x (m(N_0+1) + 1) matrix of patterns and inputs only."""
    x = np.asarray(x, dtype=np.float64)
    x_tilde = np.hstack([x, np.ones((len(x), 1))])
    blocks = pattern.T[:, :, None] * x_tilde[:, None, :]
    return np.hstack([blocks.reshape(len(x), -1), np.ones((len(x), 1))])


def closed_form_rank(pattern: np.ndarray, x) -> Rank:
    return svd_rank(closed_form_matrix(pattern, x))


def dead_and_active(pattern: np.ndarray, arch: Architecture) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """Hidden neurons inactive on every input, and per layer the number active on every input."""
    dead, active = [], {}
    for row, (layer, neuron) in enumerate(arch.hidden_units()):
        if not pattern[row].any():
            dead.append((layer, neuron))
        elif pattern[row].all():
            active[layer] = active.get(layer, 0) + 1
    return dead, active
