r"""Functional dimension of deep ReLU networks: the symbolic side (functional_dimension.md).

A network of architecture :math:`(N_0, N_1, \dots, N_L)`, :math:`L \ge 2`, computes

.. math:: z^l = M^l h^{l-1} + b^l,\quad h^0 = x,\quad h^l = \mathrm{ReLU}(z^l)\ (l < L),
          \quad f_\theta(x) = z^L,

with :math:`\theta = (M^1, b^1, \dots, M^L, b^L)` flattened layer by layer (each :math:`M^l`
row-major, then :math:`b^l`): the layout :class:`Architecture` describes and the numerics use.

This module holds what needs no numbers (notes, sections 1.1-1.8):

* :func:`parse_architecture` and :class:`Architecture`: validation before any allocation,
  :math:`N_{par} = \sum_l N_l(N_{l-1}+1)`, :math:`H = N_1 + \dots + N_{L-1}`, the bounds
  :math:`\min(nN_L, N_{par}-H)` (1.5.1-2), the region bound :math:`N_L(N_0+1)R_X` (1.5.3) and
  the input-geometry bound :math:`N_{par}-H-N_1(N_0+1-\mathrm{rank}[X|1])` (1.5.4);
* :func:`rescaling_support`: the rescaling null vector of each hidden neuron (1.5.2, 1.6);
* :func:`dead_neuron_deficit` and :func:`always_active_deficit`: the data-dependent deficits
  of 1.5.5, as lower bounds;
* :func:`frozen_network` and :func:`symbolic_invariance`: the frozen-pattern map (1.4) in sympy
  and the identities :math:`J(T\theta)T = J(\theta)`, :math:`J(\theta)D_{l,j}\theta = 0` proved
  on a small network for every activation pattern at once;
* the sampling bound of 1.8 (:func:`hit_lower_bound`), its version restricted to the regions that
  are needed (:func:`sufficient_set_lower_bound`), an upper bound (:func:`hit_upper_bound`) and the
  necessary-region estimate (:func:`necessary_region_estimate`);
* :func:`derive_architecture`: the derivation ``ibcheck derive --architecture 4-8-8-1`` prints.

**ReLU only.**  Activation patterns, the frozen-pattern map, the closed form, the region bound
and CFFD are statements about ReLU hidden layers (:func:`relu_scale` recognises
:math:`c\,\mathrm{ReLU}`, :math:`c > 0`).  The batch functional dimension itself (a Jacobian
rank) is defined for any activation, and the rescaling bound holds for every positively
1-homogeneous one; the numerics accept any activation for the BFD alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Iterable, Sequence

import mpmath
import sympy as sp

from .activations import Activation
from .derivation import Derivation, Section, name
from .errors import IbcheckError, Unsupported
from .symbols import x as X
from .timeouts import time_limit

#: the largest parameter count accepted (8e8 bytes of float64 weights before any Jacobian)
MAX_PARAMETERS = 10**8
#: widths are written with at most this many digits (a guard against absurd integers)
_MAX_DIGITS = 9
#: a small architecture on which the invariances are proved symbolically
INVARIANCE_ARCHITECTURE = (2, 2, 2, 1)
#: the largest parameter count :func:`symbolic_invariance` accepts
SYMBOLIC_MAX_PARAMETERS = 40


# ---- architectures -------------------------------------------------------------------------
@dataclass(frozen=True)
class Architecture:
    r"""Widths :math:`(N_0, \dots, N_L)` of a network with ReLU hidden layers and affine output."""

    widths: tuple[int, ...]

    def __post_init__(self):
        _validate(self.widths, "-".join(str(w) for w in self.widths))

    @property
    def text(self) -> str:
        return "-".join(str(w) for w in self.widths)

    def __str__(self) -> str:
        return self.text

    @property
    def depth(self) -> int:
        """L, the number of affine layers."""
        return len(self.widths) - 1

    @property
    def input_dim(self) -> int:
        return self.widths[0]

    @property
    def output_dim(self) -> int:
        return self.widths[-1]

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        return self.widths[1:-1]

    @property
    def n_parameters(self) -> int:
        r""":math:`N_{par} = \sum_{l=1}^L N_l (N_{l-1} + 1)`."""
        return _parameter_count(self.widths)

    @property
    def hidden_neurons(self) -> int:
        """H = N_1 + ... + N_{L-1}."""
        return sum(self.hidden_widths)

    @property
    def rescaling_bound(self) -> int:
        r""":math:`N_{par} - H` (1.5.2)."""
        return self.n_parameters - self.hidden_neurons

    def bound(self, n: int) -> int:
        r""":math:`\min(n N_L, N_{par} - H)` for a batch of n inputs (1.5.1-2)."""
        return min(n * self.output_dim, self.rescaling_bound)

    def region_bound(self, regions: int) -> int:
        r""":math:`N_L (N_0 + 1) R_X` with :math:`R_X` distinct patterns in the batch (1.5.3)."""
        return self.output_dim * (self.input_dim + 1) * regions

    def input_geometry_bound(self, affine_rank: int) -> int:
        r""":math:`N_{par} - H - N_1 (N_0 + 1 - \mathrm{rank}[X | 1])` (1.5.4)."""
        if not 0 <= affine_rank <= self.input_dim + 1:
            raise IbcheckError(f"rank[X|1] must lie in 0..{self.input_dim + 1}, got {affine_rank}")
        return self.rescaling_bound - self.widths[1] * (self.input_dim + 1 - affine_rank)

    def jacobian_bytes(self, n: int, itemsize: int = 8) -> int:
        """Memory of the (n N_L) x N_par Jacobian."""
        return n * self.output_dim * self.n_parameters * itemsize

    # ---- parameter layout ----------------------------------------------------------------
    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of layer l's block (M^l then b^l) in the flat theta, for l = 1..L, then N_par."""
        starts, position = [], 0
        for fan_in, width in zip(self.widths[:-1], self.widths[1:]):
            starts.append(position)
            position += width * (fan_in + 1)
        return tuple(starts + [position])

    def weight_index(self, layer: int, row: int, column: int) -> int:
        """Flat index of :math:`M^l_{row, column}` (layer counted from 1)."""
        return self.offsets[layer - 1] + row * self.widths[layer - 1] + column

    def bias_index(self, layer: int, row: int) -> int:
        """Flat index of :math:`b^l_{row}`."""
        return self.offsets[layer - 1] + self.widths[layer] * self.widths[layer - 1] + row

    def hidden_units(self) -> list[tuple[int, int]]:
        """(layer, neuron) of every hidden neuron, in the order of the pattern rows."""
        return [(l, j) for l in range(1, self.depth) for j in range(self.widths[l])]


def _parameter_count(widths: Sequence[int]) -> int:
    return sum(w * (f + 1) for f, w in zip(widths[:-1], widths[1:]))


def _validate(widths: Sequence[int], text: str) -> None:
    if len(widths) < 3:
        raise IbcheckError(f"architecture {text!r} has no hidden layer; write N_0-N_1-...-N_L with at "
                           "least one hidden layer, e.g. 4-8-8-1")
    for position, width in enumerate(widths):
        if isinstance(width, bool) or not isinstance(width, int):
            raise IbcheckError(f"architecture {text!r}: width {width!r} at position {position} is not an integer")
        if width < 0:
            raise IbcheckError(f"architecture {text!r}: negative width {width} at position {position}; "
                               "widths must be positive integers")
        if width == 0:
            raise IbcheckError(f"architecture {text!r}: width 0 at position {position}; every layer needs "
                               "at least one neuron")
    count = _parameter_count(widths)
    if count > MAX_PARAMETERS:
        raise IbcheckError(f"architecture {text!r} has {count:.3g} parameters ({8 * count / 2**30:.3g} GiB "
                           f"of float64 weights alone), more than the {MAX_PARAMETERS:.0e} ibcheck accepts; "
                           "use narrower layers")


def parse_architecture(spec: str | Sequence[int] | Architecture) -> Architecture:
    """An :class:`Architecture` from ``"4-8-8-1"`` (or ``"4,8,8,1"``, ``"[4, 8, 8, 1]"``) or a
    sequence of integers; a one-line :class:`IbcheckError` on anything else, before any allocation."""
    if isinstance(spec, Architecture):
        return spec
    if not isinstance(spec, str):
        try:
            widths = tuple(spec)
        except TypeError:
            raise IbcheckError(f"an architecture is a string like 4-8-8-1 or a list of widths, got {spec!r}") from None
        return Architecture(widths)
    text = spec.strip()
    inner = text.strip("[]() ")
    if not inner:
        raise IbcheckError("empty architecture; write the widths N_0-N_1-...-N_L, e.g. 4-8-8-1")
    separator = "," if "," in inner else "-"
    tokens = [t.strip() for t in inner.split(separator)]
    widths = []
    for position, token in enumerate(tokens):
        if token == "" and separator == "-":
            raise IbcheckError(f"architecture {text!r}: empty width at position {position} (a negative width?); "
                               "widths must be positive integers, e.g. 4-8-8-1")
        if re.fullmatch(r"[+-]?\d+", token) is None:
            raise IbcheckError(f"architecture {text!r}: {token!r} at position {position} is not a whole number; "
                               "write positive integer widths, e.g. 4-8-8-1")
        if len(token.lstrip("+-")) > _MAX_DIGITS:
            raise IbcheckError(f"architecture {text!r}: width {token} is absurdly large; "
                               f"use widths below 10^{_MAX_DIGITS}")
        widths.append(int(token))
    _validate(widths, text)
    return Architecture(tuple(widths))


def relu_scale(act: Activation) -> sp.Expr | None:
    r"""c if the activation is :math:`c\,\mathrm{ReLU}` with a number :math:`c > 0`, else None.

    The pattern results (frozen map, closed form, region bound, CFFD) need exactly this.
    """
    pieces = act.pieces
    if tuple(pieces.breaks) != (0,) or len(pieces.pieces) != 2 or pieces.pieces[0] != 0:
        return None
    slope = sp.simplify(pieces.pieces[1] / X)
    if slope.has(X) or not slope.is_number or not slope.is_positive:
        return None
    return slope


def relu_only_reason(act: Activation) -> str | None:
    """None for c ReLU; otherwise why the pattern theorems do not apply."""
    if relu_scale(act) is not None:
        return None
    return (f"{act.label}: the functional-dimension theorems (activation patterns, frozen-pattern map, "
            "region bound, CFFD, the training claim) are stated for ReLU hidden layers; the batch "
            "functional dimension alone is defined for any activation "
            "(numerics.functional_dimension.batch_functional_dimension)")


# ---- symmetries and deficits ---------------------------------------------------------------
def rescaling_support(arch: Architecture, layer: int, neuron: int) -> tuple[list[int], list[int]]:
    r"""Where the rescaling null vector of hidden neuron (l, j) lives (1.5.2).

    The vector is :math:`D_{l,j}\theta`: :math:`+\theta` on the fan-in (row j of :math:`M^l`
    and :math:`b^l_j`), :math:`-\theta` on the fan-out (column j of :math:`M^{l+1}`), zero
    elsewhere; it is :math:`\frac{d}{d\lambda} T_\lambda\theta|_{\lambda=1}`.  Returns the two
    index lists (plus, minus).
    """
    if not 1 <= layer < arch.depth or not 0 <= neuron < arch.widths[layer]:
        raise IbcheckError(f"no hidden neuron ({layer}, {neuron}) in architecture {arch}")
    plus = [arch.weight_index(layer, neuron, k) for k in range(arch.widths[layer - 1])]
    plus.append(arch.bias_index(layer, neuron))
    minus = [arch.weight_index(layer + 1, k, neuron) for k in range(arch.widths[layer + 1])]
    return plus, minus


def dead_neuron_deficit(arch: Architecture, dead: Iterable[tuple[int, int]]) -> int:
    r"""Lower bound on :math:`N_{par} - H - \mathrm{BFD}` from neurons inactive on every input (1.5.5).

    The fan-in, bias and fan-out coordinates of a dead neuron are in :math:`\ker J`; they
    contain its own rescaling vector, so the extra dimension is |union of those coordinates|
    minus the number of dead neurons (:math:`N_{l-1} + 1 + N_{l+1} - 1` for one).  A lower
    bound when every other neuron has a nonzero bias (its rescaling vector then owns a coordinate).
    """
    dead = list(dead)
    coordinates: set[int] = set()
    for layer, neuron in dead:
        plus, minus = rescaling_support(arch, layer, neuron)
        coordinates.update(plus)
        coordinates.update(minus)
    return len(coordinates) - len(dead)


def always_active_deficit(arch: Architecture, layer: int, count: int) -> int | None:
    r""":math:`|A|^2`: the extra kernel directions of a set A of layer-l neurons active on every
    input (1.5.5): :math:`GL(|A|)` acting on :math:`(M^l_A, b^l_A, M^{l+1}_{:,A})` beyond the
    diagonal rescalings (:math:`|A|^2 - |A|`) plus the |A| trades of :math:`b^l_A` against
    :math:`b^{l+1}`.  None when :math:`|A| > \min(N_{l-1} + 1, N_{l+1})`, where the group
    action need not be free and the count is not a bound.
    """
    if count > min(arch.widths[layer - 1] + 1, arch.widths[layer + 1]):
        return None
    return count * count


# ---- the frozen-pattern map in sympy --------------------------------------------------------
@dataclass(frozen=True)
class SymbolicNetwork:
    """Symbols of a frozen-pattern network: parameters (flat, in the layout), input, pattern."""

    arch: Architecture
    theta: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...]
    pattern: tuple[tuple[sp.Symbol, ...], ...]  # pattern[l-1][j] = d^l_j for hidden layer l

    def layers(self, theta: Sequence[sp.Expr] | None = None):
        """(M^l, b^l) as sympy matrices for the flat parameters ``theta`` (default: the symbols)."""
        theta = list(self.theta if theta is None else theta)
        out = []
        for l in range(1, self.arch.depth + 1):
            rows, cols = self.arch.widths[l], self.arch.widths[l - 1]
            start = self.arch.offsets[l - 1]
            weights = sp.Matrix(rows, cols, theta[start:start + rows * cols])
            biases = sp.Matrix(theta[start + rows * cols:start + rows * (cols + 1)])
            out.append((weights, biases))
        return out


def symbolic_network(arch: Architecture) -> SymbolicNetwork:
    """Fresh symbols for parameters, one input and a pattern (d^l_j in {0, 1}, left symbolic)."""
    theta = []
    for l in range(1, arch.depth + 1):
        theta += [sp.Symbol(f"m{l}_{j}{k}", real=True) for j in range(arch.widths[l])
                  for k in range(arch.widths[l - 1])]
        theta += [sp.Symbol(f"b{l}_{j}", real=True) for j in range(arch.widths[l])]
    inputs = tuple(sp.Symbol(f"x{k}", real=True) for k in range(arch.input_dim))
    pattern = tuple(tuple(sp.Symbol(f"d{l}_{j}") for j in range(arch.widths[l])) for l in range(1, arch.depth))
    return SymbolicNetwork(arch, tuple(theta), inputs, pattern)


def frozen_network(net: SymbolicNetwork, theta: Sequence[sp.Expr] | None = None,
                   pattern: Sequence[Sequence[sp.Expr]] | None = None) -> sp.Matrix:
    r"""The frozen-pattern map (1.4) at one input:
    :math:`\Phi_\Delta(\theta) = M^L D^{L-1}(\cdots D^1(M^1 x + b^1)\cdots) + b^L`,
    :math:`D^l = \mathrm{diag}(d^l)` taken from ``pattern``, independent of :math:`\theta`."""
    pattern = net.pattern if pattern is None else pattern
    h = sp.Matrix(net.inputs)
    layers = net.layers(theta)
    for l, (weights, biases) in enumerate(layers, start=1):
        z = weights * h + biases
        h = sp.diag(*pattern[l - 1]) * z if l < len(layers) else z
    return h


def jacobian_transform_identity(net: SymbolicNetwork, scaling: Sequence[sp.Expr],
                                permutation: Sequence[int] | None = None,
                                pattern: Sequence[Sequence[sp.Expr]] | None = None) -> bool:
    r"""Whether :math:`J_{\Delta'}(T\theta)\,T = J_\Delta(\theta)` holds identically, for the linear
    map :math:`(T\theta)_i = s_i\,\theta_{\pi(i)}` (``scaling`` s, ``permutation`` pi, identity
    by default) and the pattern :math:`\Delta'` (``pattern``, default :math:`\Delta`).

    Proved by expanding every entry of the difference to 0 (polynomials in
    :math:`\theta, x, d, \lambda^{\pm 1}`), so it holds for every pattern and input at once.
    """
    theta = sp.Matrix(net.theta)
    order = list(range(len(theta))) if permutation is None else list(permutation)
    transformed = [scaling[i] * net.theta[order[i]] for i in range(len(theta))]
    # T as a matrix: column order[i] of row i holds scaling[i]
    t_matrix = sp.zeros(len(theta), len(theta))
    for i, j in enumerate(order):
        t_matrix[i, j] = scaling[i]
    jac = frozen_network(net).jacobian(theta)
    moved = frozen_network(net, pattern=pattern).jacobian(theta)
    moved = moved.xreplace(dict(zip(net.theta, transformed)))
    difference = moved * t_matrix - jac
    return all(sp.expand(sp.cancel(entry)) == 0 for entry in difference)


@dataclass(frozen=True)
class InvarianceProof:
    """What :func:`symbolic_invariance` established, identity by identity."""

    architecture: str
    function_invariant: bool
    rescaling: bool
    permutation: bool
    null_vectors: bool
    null_vector_count: int

    @property
    def holds(self) -> bool:
        return self.function_invariant and self.rescaling and self.permutation and self.null_vectors


def rescaling_scaling(net: SymbolicNetwork, layer: int, lambdas: Sequence[sp.Expr]) -> list[sp.Expr]:
    r"""The diagonal of :math:`T_\lambda` for hidden layer l: :math:`\lambda_j` on row j of
    :math:`M^l` and on :math:`b^l_j`, :math:`1/\lambda_j` on column j of :math:`M^{l+1}`."""
    scale = [sp.S.One] * len(net.theta)
    for j, lam in enumerate(lambdas):
        plus, minus = rescaling_support(net.arch, layer, j)
        for i in plus:
            scale[i] = lam
        for i in minus:
            scale[i] = 1 / lam
    return scale


def permutation_order(arch: Architecture, layer: int, perm: Sequence[int]) -> list[int]:
    r"""Index map of the neuron permutation :math:`\pi` of hidden layer l on the flat theta:
    :math:`(P\theta)_i = \theta_{order[i]}` (rows of :math:`M^l, b^l` and columns of
    :math:`M^{l+1}` permuted)."""
    order = list(range(arch.n_parameters))
    for j, source in enumerate(perm):
        for k in range(arch.widths[layer - 1]):
            order[arch.weight_index(layer, j, k)] = arch.weight_index(layer, source, k)
        order[arch.bias_index(layer, j)] = arch.bias_index(layer, source)
        for k in range(arch.widths[layer + 1]):
            order[arch.weight_index(layer + 1, k, j)] = arch.weight_index(layer + 1, k, source)
    return order


def symbolic_invariance(arch: Architecture | str | Sequence[int] = INVARIANCE_ARCHITECTURE,
                        seconds: float = 30.0) -> InvarianceProof:
    r"""Prove the invariances of 1.6 on a small network, for every pattern at once (1.4, 1.6):

    * :math:`f_{T_\lambda\theta} = f_\theta` and :math:`J(T_\lambda\theta)T_\lambda = J(\theta)`
      for the rescaling of every hidden layer with symbolic :math:`\lambda_j > 0`;
    * :math:`J_{\pi\Delta}(P\theta)P = J_\Delta(\theta)` for a cyclic permutation of every
      hidden layer (the pattern rows permuted with the neurons);
    * :math:`J(\theta)D_{l,j}\theta = 0` for the H rescaling vectors.
    """
    arch = parse_architecture(arch)
    if arch.n_parameters > SYMBOLIC_MAX_PARAMETERS:
        raise Unsupported(f"symbolic invariance is proved on small networks (<= {SYMBOLIC_MAX_PARAMETERS} "
                          f"parameters); {arch} has {arch.n_parameters}")
    return _symbolic_invariance(arch, seconds)


@lru_cache(maxsize=8)
def _symbolic_invariance(arch: Architecture, seconds: float) -> InvarianceProof:
    net = symbolic_network(arch)
    with time_limit(seconds, f"symbolic invariance on {arch}"):
        function_ok, rescaling_ok, permutation_ok = True, True, True
        jac = frozen_network(net).jacobian(sp.Matrix(net.theta))
        for layer in range(1, arch.depth):
            lambdas = [sp.Symbol(f"lambda{layer}_{j}", positive=True) for j in range(arch.widths[layer])]
            scale = rescaling_scaling(net, layer, lambdas)
            moved = frozen_network(net, theta=[s * t for s, t in zip(scale, net.theta)])
            function_ok &= all(sp.expand(sp.cancel(e)) == 0 for e in moved - frozen_network(net))
            rescaling_ok &= jacobian_transform_identity(net, scale)
            width = arch.widths[layer]
            perm = [(j + 1) % width for j in range(width)]
            pattern = [list(row) for row in net.pattern]
            pattern[layer - 1] = [net.pattern[layer - 1][perm[j]] for j in range(width)]
            permutation_ok &= jacobian_transform_identity(net, [sp.S.One] * arch.n_parameters,
                                                          permutation_order(arch, layer, perm), pattern)
        null_ok, count = True, 0
        for layer, neuron in arch.hidden_units():
            plus, minus = rescaling_support(arch, layer, neuron)
            vector = sp.zeros(arch.n_parameters, 1)
            for i in plus:
                vector[i] = net.theta[i]
            for i in minus:
                vector[i] = -net.theta[i]
            null_ok &= all(sp.expand(e) == 0 for e in jac * vector)
            count += 1
    return InvarianceProof(arch.text, bool(function_ok), bool(rescaling_ok), bool(permutation_ok),
                           bool(null_ok), count)


def shallow_closed_form_identity(input_dim: int = 2, width: int = 2) -> bool:
    r"""Prove the column identity behind the shallow scalar closed form (1.4): for
    :math:`f = \sum_j a_j d_j (\tilde w_j\cdot\tilde x) + c`, the column
    :math:`\partial f/\partial a_j` equals :math:`(\partial f/\partial\tilde w_j)\,\tilde w_j / a_j`
    and :math:`\partial f/\partial\tilde w_j = a_j d_j \tilde x^T`."""
    xs = sp.symbols(f"x0:{input_dim}", real=True)
    x_tilde = sp.Matrix([*xs, 1])
    ok = True
    terms, params = [], []
    for j in range(width):
        a, d = sp.Symbol(f"a{j}", nonzero=True), sp.Symbol(f"d{j}")
        w = sp.Matrix(sp.symbols(f"w{j}_0:{input_dim + 1}", real=True))
        terms.append(a * d * (w.T * x_tilde)[0])
        params.append((a, d, w))
    c = sp.Symbol("c", real=True)
    f = sum(terms) + c
    for a, d, w in params:
        grad_w = sp.Matrix([sp.diff(f, wk) for wk in w]).T
        ok &= all(sp.expand(e) == 0 for e in grad_w - a * d * x_tilde.T)
        ok &= sp.expand(sp.diff(f, a) - (grad_w * w)[0] / a) == 0
    ok &= sp.diff(f, c) == 1
    return bool(ok)


# ---- the sampling bound (1.8) ----------------------------------------------------------------
def binomial_at_most(k: int, n: int, p: float) -> float:
    r""":math:`P(\mathrm{Bin}(n, p) \le k)`, summed exactly with mpmath (30 digits)."""
    if not 0 <= p <= 1:
        raise IbcheckError(f"a region mass must lie in [0, 1], got {p}")
    if k >= n:
        return 1.0
    with mpmath.workdps(30):
        p_mp = mpmath.mpf(p)
        total = mpmath.mpf(0)
        for j in range(k + 1):
            total += mpmath.binomial(n, j) * p_mp**j * (1 - p_mp) ** (n - j)
        return float(min(total, 1))


def region_fill_probability(p: float, n: int, needed: int) -> float:
    r""":math:`P(\mathrm{Bin}(n, p) \ge k)`: a region of mass p receives the k points it needs
    (:math:`k = N_0 + 1` span its affine piece)."""
    if needed <= 0:
        return 1.0
    return 1.0 - binomial_at_most(needed - 1, n, p)


def sampling_failure_bound(masses: Sequence[float], n: int, input_dim: int) -> float:
    r"""The union bound of 1.8 on :math:`P(\mathrm{BFD}(\theta, X_n) < \mathrm{CFFD})`:
    :math:`\sum_\delta P(\mathrm{Bin}(n, p_\delta) \le N_0)` (can exceed 1)."""
    return sum(binomial_at_most(input_dim, n, p) for p in masses)


def hit_lower_bound(masses: Sequence[float], n: int, input_dim: int) -> float:
    r""":math:`1 - \sum_\delta P(\mathrm{Bin}(n, p_\delta) \le N_0)`, a lower bound on
    :math:`P(\mathrm{BFD}(\theta, X_n) = \mathrm{CFFD})`; negative (vacuous) for small n."""
    return 1.0 - sampling_failure_bound(masses, n, input_dim)


def sufficient_set_lower_bound(masses: Sequence[float], counts: Sequence[int], n: int) -> float:
    r""":math:`1 - \sum_{\delta: k_\delta > 0} P(\mathrm{Bin}(n, p_\delta) < k_\delta)`: the same union
    bound restricted to a sufficient configuration (:math:`k_\delta` generic points in region
    :math:`\delta` already give CFFD), so tiny unneeded regions no longer make it vacuous."""
    return 1.0 - sum(1.0 - region_fill_probability(p, n, k) for p, k in zip(masses, counts) if k > 0)


def sampling_failure_asymptote(masses: Sequence[float], n: int, input_dim: int) -> float:
    r""":math:`|A|\,n^{N_0}(1 - p_{min})^{n - N_0}`, the shape of the bound for large n."""
    p_min = min(masses)
    return float(len(masses) * mpmath.mpf(n) ** input_dim * (1 - mpmath.mpf(p_min)) ** max(n - input_dim, 0))


def hit_upper_bound(masses: Sequence[float], required: Sequence[int], n: int) -> float:
    r""":math:`\min_\delta P(\mathrm{Bin}(n, p_\delta) \ge k_\delta)`, an upper bound on P(hit).

    :math:`k_\delta` is the number of points region :math:`\delta` needs when every other region
    has :math:`N_0 + 1`: with fewer, the rank stays below CFFD whatever the other points
    (a region's rows at j points span at most what j generic points span).
    """
    return min((region_fill_probability(p, n, k) for p, k in zip(masses, required) if k > 0), default=1.0)


def necessary_region_estimate(masses: Sequence[float], counts: Sequence[int], n: int) -> float:
    r""":math:`\prod_\delta P(\mathrm{Bin}(n, p_\delta) \ge k_\delta)` for a sufficient configuration
    built from the heaviest regions (:math:`k_\delta` points in region :math:`\delta`, most of them 0):
    the probability that the regions needed to reach the rank get their points, treating them as
    independent (nearly so for small masses).  An estimate of P(hit), not a bound."""
    value = 1.0
    for p, k in zip(masses, counts):
        value *= region_fill_probability(p, n, k)
    return value


# ---- the derivation ------------------------------------------------------------------------
N_PAR = name("N_par", r"N_{\mathrm{par}}")
H_SYM = name("H", "H")
N_SYM = sp.Symbol("n", positive=True, integer=True)
BFD = name("BFD", r"\mathrm{BFD}(\theta, X)")
CFFD = name("CFFD", r"\mathrm{CFFD}(\theta)")
R_X = name("R_X", "R_X")
RANK_X1 = name("rank[X|1]", r"\operatorname{rank}[X\,|\,\mathbf 1]")
JAC = name("J(theta)", r"J(\theta)")
P_FAIL = name("P(BFD(X_n) < CFFD)", r"P(\mathrm{BFD}(\theta, X_n) < \mathrm{CFFD}(\theta))")


def _counts_section(arch: Architecture) -> Section:
    section = Section("Architecture and parameter count")
    L = arch.depth
    section.step(f"Architecture {arch}: L = {L} affine layers, ReLU on the hidden layers 1..{L - 1}, affine "
                 "output (logits). Layer l computes z^l = M^l h^(l-1) + b^l with M^l of size N_l x N_(l-1); "
                 "h^0 = x, h^l = ReLU(z^l) for l < L, f(x) = z^L.",
                 sp.Eq(name("f_theta(x)", "f_\\theta(x)"),
                       name("M^L ReLU(... ReLU(M^1 x + b^1) ...) + b^L",
                            r"M^L\,\mathrm{ReLU}(\cdots\mathrm{ReLU}(M^1x + b^1)\cdots) + b^L")))
    products = " + ".join(f"{w} ({f} + 1)" for f, w in zip(arch.widths[:-1], arch.widths[1:]))
    section.step(f"Each layer contributes N_l (N_(l-1) + 1) parameters (weights and biases): {products}.",
                 sp.Eq(N_PAR, arch.n_parameters))
    section.step(f"Hidden neurons: H = {' + '.join(map(str, arch.hidden_widths))}.",
                 sp.Eq(H_SYM, arch.hidden_neurons))
    section.results.update({"architecture": arch.text, "depth": L, "n_parameters": arch.n_parameters,
                            "hidden_neurons": arch.hidden_neurons})
    return section


def _symmetry_section(arch: Architecture) -> Section:
    section = Section("Rescaling and permutation symmetries")
    lam = sp.Symbol("lambda", positive=True)
    z = sp.Symbol("z", real=True)
    section.step("ReLU is positively homogeneous: for lambda > 0,",
                 sp.Eq(sp.Max(0, lam * z), lam * sp.Max(0, z)))
    section.step("So multiplying row j of M^l and b^l_j by lambda_j > 0 and dividing column j of M^(l+1) by "
                 "lambda_j (the map T_lambda, linear and invertible in theta) leaves f unchanged: "
                 "f_(T theta) = f_theta. Differentiating in theta gives J(T theta) T = J(theta), so the rank "
                 "is the same at theta and T theta, for every batch X.",
                 sp.Eq(name("J(T_lambda theta) T_lambda", r"J(T_\lambda\theta)\,T_\lambda"), JAC))
    plus, minus = rescaling_support(arch, 1, 0)
    section.step("Differentiating T_lambda theta at lambda_j = 1 gives the tangent D_(l,j) theta of the orbit: "
                 "+theta on neuron j's fan-in and bias, -theta on its fan-out, zero elsewhere; since f is "
                 f"constant on the orbit, J(theta) D_(l,j) theta = 0 for every X. For neuron (1, 0) of {arch} "
                 f"it has {len(plus)} entries +theta_i and {len(minus)} entries -theta_i.",
                 sp.Eq(name("J(theta) D_(l,j) theta", r"J(\theta)\,D_{l,j}\theta"), 0))
    section.step("The H vectors are generically independent (each owns its neuron's bias coordinate), so "
                 f"the Jacobian has at least H = {arch.hidden_neurons} kernel directions for every batch:",
                 sp.Ge(name("dim ker J", r"\dim\ker J"), H_SYM))
    section.step("Permuting the neurons of a hidden layer (rows of M^l and b^l, columns of M^(l+1)) is a "
                 "discrete symmetry: it permutes the pattern rows and the Jacobian's columns (an orthogonal "
                 "map, singular values unchanged) and removes no dimension.")
    proof = symbolic_invariance(INVARIANCE_ARCHITECTURE)
    small = "-".join(map(str, INVARIANCE_ARCHITECTURE))
    section.step(f"Checked symbolically on the {small} network for every activation pattern at once "
                 "(entries expanded to 0): "
                 f"f(T theta) = f(theta): {proof.function_invariant}; J(T theta) T = J(theta): {proof.rescaling}; "
                 f"J(P theta) P = J(theta) with the pattern permuted: {proof.permutation}; "
                 f"J D_(l,j) theta = 0 for all {proof.null_vector_count} hidden neurons: {proof.null_vectors}.")
    section.results.update({"symbolic_invariance": proof.holds, "rescaling_bound": arch.rescaling_bound})
    return section


def _bounds_section(arch: Architecture) -> Section:
    section = Section("Batch functional dimension and its upper bounds")
    section.step("For a batch X = (x_1, ..., x_n) the batch functional dimension is the rank of the "
                 "(n N_L) x N_par Jacobian of the logits (every output of every input is a row):",
                 sp.Eq(BFD, name("rank(d vec f_theta(X) / d theta)",
                                 r"\operatorname{rank}\frac{\partial\,\mathrm{vec} f_\theta(X)}{\partial\theta}")))
    section.step("Closed-form blocks (a second route to J): with D^l_i = diag(1[z^l(x_i) > 0]), B^L_i = I and "
                 "B^l_i = B^(l+1)_i M^(l+1) D^l_i, the derivatives are d f(x_i)/d M^l = B^l_i (x) h^(l-1)_i^T "
                 "(a Kronecker product) and d f(x_i)/d b^l = B^l_i.",
                 sp.Eq(name("B^l_i", "B^l_i"), name("B^(l+1)_i M^(l+1) D^l_i", r"B^{l+1}_i M^{l+1} D^l_i")))
    bound = sp.Min(N_SYM * arch.output_dim, arch.rescaling_bound)
    section.step("The Jacobian has n N_L rows, and its kernel holds the H rescaling vectors, so "
                 "BFD <= min(n N_L, N_par - H); here:", sp.Le(BFD, bound))
    section.step("Inside one linear region the rows of J are affine in x, so the rows of a region are spanned "
                 "by N_0 + 1 of its points: with R_X distinct patterns among the inputs,",
                 sp.Le(BFD, arch.output_dim * (arch.input_dim + 1) * R_X))
    section.step("First-layer perturbations orthogonal to the data's affine hull change nothing: each first-layer "
                 "neuron loses N_0 + 1 - rank[X|1] directions (constant pixels, inputs on a plane):",
                 sp.Le(BFD, arch.rescaling_bound - arch.widths[1] * (arch.input_dim + 1 - RANK_X1)))
    section.step("Data-dependent deficits (lower bounds on N_par - H - BFD): a neuron inactive on every input "
                 "removes its fan-in, bias and fan-out, N_(l-1) + N_(l+1) beyond its rescaling "
                 f"(e.g. {dead_neuron_deficit(arch, [(1, 0)])} for one dead first-layer neuron here); a set A "
                 "of neurons active on every input acts linearly and removes about |A|^2 more.")
    section.results.update({"bound": bound, "region_bound_per_region": arch.output_dim * (arch.input_dim + 1)})
    return section


def _frozen_section(arch: Architecture) -> Section:
    section = Section("Frozen-pattern map: BFD is determined by the activation patterns")
    section.step("Freeze a batch pattern Delta (the diagonals D^l_i for every input) and define the polynomial map",
                 sp.Eq(name("Phi_(Delta,X)(theta')", r"\Phi_{\Delta,X}(\theta')"),
                       name("(M'^L D^(L-1)_i (... D^1_i (M'^1 x_i + b'^1) ...) + b'^L)_(i=1..n)",
                            r"\left(M'^L D^{L-1}_i(\cdots D^1_i(M'^1x_i + b'^1)\cdots) + b'^L\right)_{i=1}^n")))
    section.step("Phi is multilinear in the layers. Where no pre-activation vanishes, the pattern is constant near "
                 "theta, so f_theta'(X) = Phi_(Delta(theta,X),X)(theta') near theta and J(theta) = D Phi(theta).")
    section.step("The rank of a polynomial matrix equals its generic rank r_X(Delta) outside the zero set of a "
                 "polynomial, a null set; hence for almost every theta, BFD depends on theta only through the "
                 "pattern. For inputs in general position X may even be replaced by an independent X' with the "
                 "same pattern.", sp.Eq(BFD, name("r_X(Delta(theta, X))", r"r_X(\Delta(\theta, X))")))
    section.step("Exact route: evaluate D Phi at random integer theta', X' drawn from a large range and take the rank "
                 "over the rationals; by Schwartz-Zippel this is the generic rank with high probability "
                 "(small ranges such as [-9, 9] give falsely low ranks).")
    return section


def _closed_form_section(arch: Architecture) -> Section:
    section = Section("Shallow scalar closed form")
    a, d = name("a_j", "a_j"), name("Delta_ij", r"\Delta_{ij}")
    j, m = sp.symbols("j m", integer=True, positive=True)
    product = name("(w~_j . x~_i)", r"(\tilde w_j\cdot\tilde x_i)")
    section.step("A shallow scalar network is f(x) = sum_j a_j ReLU(w_j . x + b_j) + c. With w~_j = (w_j, b_j) and "
                 "x~_i = (x_i, 1), the frozen map is",
                 sp.Eq(name("f(x_i)", "f(x_i)"), sp.Sum(a * d * product, (j, 1, m)) + sp.Symbol("c")))
    section.step("Its derivatives: d f(x_i)/d w~_j = a_j Delta_ij x~_i^T, d f(x_i)/d c = 1, and "
                 "d f(x_i)/d a_j = Delta_ij (w~_j . x~_i) = (d f(x_i)/d w~_j) w~_j / a_j, a combination of the "
                 "w~_j columns: the a_j columns add nothing to the column space.",
                 sp.Eq(name("df/da_j", r"\partial f/\partial a_j"),
                       name("(df/dw~_j) w~_j", r"(\partial f/\partial\tilde w_j)\,\tilde w_j") / a))
    section.step("Dividing the w~_j columns by a_j != 0 leaves the rank unchanged, so BFD is the rank of an "
                 "n x (m (N_0 + 1) + 1) matrix built from the patterns and inputs alone (u_j = a_j w~_j makes "
                 "the frozen map linear in (u, c)):",
                 sp.Eq(BFD, name("rank[Delta_i1 x~_i^T, ..., Delta_im x~_i^T, 1]_(i=1..n)",
                                 r"\operatorname{rank}\left[\Delta_{i1}\tilde x_i^T, \dots, "
                                 r"\Delta_{im}\tilde x_i^T, 1\right]_{i=1}^n")))
    proof = shallow_closed_form_identity()
    section.step(f"Checked symbolically (N_0 = 2, m = 2): the column identities hold: {proof}.")
    if arch.depth == 2 and arch.output_dim == 1:
        columns = arch.hidden_widths[0] * (arch.input_dim + 1) + 1
        section.step(f"{arch} is shallow and scalar: m = {arch.widths[1]}, the matrix has {columns} columns "
                     f"= N_par - H = {arch.rescaling_bound}.")
        section.results["closed_form_columns"] = columns
    else:
        section.step(f"{arch} is not shallow scalar (L = {arch.depth}, N_L = {arch.output_dim}); the closed form "
                     "applies to its one-hidden-layer, one-output subcase; here BFD is the frozen-pattern rank.")
    section.results["closed_form_identity"] = proof
    return section


def _cffd_section(arch: Architecture) -> Section:
    section = Section("Computable full functional dimension and the sampling bound")
    section.step("CFFD is the largest BFD over batches with no point on a region boundary; it is reached by N_0 + 1 "
                 "points in general position in every achievable region (a decisive set), so it is the frozen "
                 "rank of the achievable patterns, each repeated N_0 + 1 times:",
                 sp.Eq(CFFD, name("r(Delta_A)", r"r(\Delta_A)")))
    section.step("For x_i i.i.d. from a law with positive density, BFD(theta, X_n) is nondecreasing in n (rows are "
                 "added), never above CFFD, and equals CFFD once every achievable region delta (mass p_delta) "
                 "holds N_0 + 1 points. A union bound over regions gives",
                 sp.Le(P_FAIL, name("sum_delta P(Bin(n, p_delta) <= N_0)",
                                    r"\sum_{\delta\in A} P(\mathrm{Bin}(n, p_\delta) \le N_0)")))
    section.step("For large n the bound behaves like |A| n^N_0 (1 - p_min)^(n - N_0): convergence is exponential in "
                 "n p_min, but p_min can be tiny, so a large Gaussian sample underestimates CFFD unless "
                 "n >> |A| N_0 / p_min. It is only a lower bound on P(hit) (most regions are not needed for the "
                 "rank). Restricting the union to a sufficient configuration (k_delta points in region delta "
                 "already give CFFD) gives a tighter lower bound 1 - sum_delta P(Bin(n, p_delta) < k_delta); a "
                 "region that needs k points when all others are complete bounds P(hit) from above by "
                 "P(Bin(n, p_delta) >= k).")
    section.results["cffd_upper_bound"] = arch.rescaling_bound
    return section


def derive_architecture(spec: str | Sequence[int] | Architecture) -> Derivation:
    """The functional-dimension derivation for one architecture (``ibcheck derive --architecture``)."""
    arch = parse_architecture(spec)
    sections = [_counts_section(arch), _symmetry_section(arch), _bounds_section(arch), _frozen_section(arch),
                _closed_form_section(arch), _cffd_section(arch)]
    notes = [("ReLU only: patterns, the frozen-pattern map, the closed form, the region bound and CFFD assume "
              "ReLU hidden layers; BFD itself (a Jacobian rank) is defined for any activation, and the rescaling "
              "bound for any positively 1-homogeneous one.")]
    status = "derived"
    return Derivation(f"architecture {arch} (ReLU hidden layers, affine output)", sp.Max(0, X), status,
                      sections, {"symbolic_invariance": sections[1].results["symbolic_invariance"],
                                 "closed_form_identity": sections[4].results["closed_form_identity"]}, notes)
