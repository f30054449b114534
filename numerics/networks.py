r"""Shallow networks :math:`f(x) = s \sum_{i=1}^n v_i\,\sigma(w_i\cdot x + b_i)` for any activation.

The activation is the torch function generated from its sympy expression
(:func:`numerics.torch_activation.torch_activation`).  The output scale s is 1 in the
*standard* parameterization and :math:`1/\sqrt n` in the *NTK* parameterization.

Initializations (spectral_bias.md 1.4), all seeded:

* ``uniform``: :math:`w \sim U(-a_w, a_w)^d`, :math:`b \sim U(-a_b, a_b)` (PyTorch's
  ``nn.Linear(1, n)`` has :math:`a_w = a_b = 1`); in 1D the breakpoints are flat on
  :math:`|x| \le a_b/a_w`;
* ``gaussian``: :math:`w \sim N(0, s_w^2 I)`, :math:`b \sim N(0, s_b^2)`; in 1D the
  breakpoints are Cauchy(0, :math:`s_b/s_w`);
* ``directions``: :math:`\theta` uniform on :math:`S^{d-1}`, offsets :math:`\beta \sim U(-B, B)`,
  a fixed norm :math:`\rho`; :math:`w = \rho\theta`, :math:`b = -\rho\beta` (flat offsets, the
  setting of the spectral-penalty formula).

The output weights are :math:`v \sim N(0, s_v^2)` (``s_v = 0``: zeros).  With
``antisymmetric=True`` the second half of the neurons copies the first with :math:`-v`
(Jin & Montufar's ASI), so :math:`f_0 = 0` at initialization.

RS coordinates (section 1.3): :math:`\rho = \|w\|`, :math:`\theta = w/\rho`,
:math:`\beta = -b/\rho`, so :math:`w\cdot x + b = \rho(\theta\cdot x - \beta)`; for a positively
k-homogeneous activation :math:`\mu = v\rho^k` and :math:`f = \sum_i \mu_i\sigma(\theta_i\cdot x - \beta_i)`.

Kernel regime (section 2.1): :meth:`ShallowNetwork.tangent_kernel` is the empirical tangent
kernel of the output layer (random features) or of all layers, weighted by per-layer step
sizes; :func:`linearized_solution` is the linearized model after T gradient-descent steps or
at infinite time (the minimum-norm interpolant), computed in closed form; :func:`train`
runs real gradient descent on the chosen layers.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from theory.activations import Activation
from theory.errors import IbcheckError

from . import threads
from .reproducibility import generators
from .torch_activation import ARRAYS, sigma_and_slope, torch_activation, torch_sigma_and_slope
from .training import History, array_descent, full_shape

PARAMETERIZATIONS = ("standard", "ntk")
LAYERS = ("output", "all")
#: neurons per block when features are formed for many points (bounds memory at points x 1024 x 8 bytes)
CHUNK = 1024
#: entries of the temporaries of elementwise work done in blocks (features of many points, quadrature
#: integrands): 2 MB, which stay in cache; blocks of 2e6-4e6 entries ran 1.3-2.6x slower (issue 18)
BLOCK_ENTRIES = 250_000
INIT_KINDS = ("uniform", "gaussian", "directions")


@dataclass(frozen=True)
class Init:
    """An initialization of (v, w, b) (module docstring)."""

    kind: str = "uniform"
    a_w: float = 1.0
    a_b: float = 1.0
    s_w: float = 1.0
    s_b: float = 1.0
    rho: float = 1.0
    offset: float = 1.0
    s_v: float = 0.0
    antisymmetric: bool = False

    def __post_init__(self):
        if self.kind not in INIT_KINDS:
            raise IbcheckError(f"unknown initialization {self.kind!r}; known: {', '.join(INIT_KINDS)}")
        for name in ("a_w", "a_b", "s_w", "s_b", "rho", "offset"):
            if getattr(self, name) <= 0:
                raise IbcheckError(f"initialization scale {name} must be positive")
        if self.s_v < 0:
            raise IbcheckError("s_v must be non-negative")


def _first_layer(init: Init, n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    f64 = torch.float64
    if init.kind == "uniform":
        w = (2 * torch.rand(n, d, generator=gen, dtype=f64) - 1) * init.a_w
        b = (2 * torch.rand(n, generator=gen, dtype=f64) - 1) * init.a_b
    elif init.kind == "gaussian":
        w = torch.randn(n, d, generator=gen, dtype=f64) * init.s_w
        b = torch.randn(n, generator=gen, dtype=f64) * init.s_b
    else:
        theta = torch.randn(n, d, generator=gen, dtype=f64)
        theta = theta / theta.norm(dim=1, keepdim=True)
        beta = (2 * torch.rand(n, generator=gen, dtype=f64) - 1) * init.offset
        w, b = init.rho * theta, -init.rho * beta
    return w, b


class ShallowNetwork:
    """:math:`f(x) = s\\sum_i v_i\\sigma(w_i\\cdot x + b_i)` with trainable float64 tensors v, w, b."""

    def __init__(self, act: Activation, width: int, dim: int = 1, init: Init = Init(),
                 parameterization: str = "standard", seed: int = 0):
        if not isinstance(width, int) or width < 1:
            raise IbcheckError(f"width must be a positive integer, got {width!r}")
        if not isinstance(dim, int) or dim < 1:
            raise IbcheckError(f"input dimension must be a positive integer, got {dim!r}")
        if parameterization not in PARAMETERIZATIONS:
            raise IbcheckError(f"unknown parameterization {parameterization!r}; known: {', '.join(PARAMETERIZATIONS)}")
        if init.antisymmetric and width % 2:
            raise IbcheckError("antisymmetric initialization needs an even width")
        self.activation = act
        self.sigma = torch_activation(act)
        self.width, self.dim, self.init, self.parameterization, self.seed = width, dim, init, parameterization, seed
        _, gen = generators(seed)
        half = width // 2 if init.antisymmetric else width
        w, b = _first_layer(init, half, dim, gen)
        # v is drawn last: with s_v = 0 (random features) its draw would only be multiplied by 0
        v = (torch.randn(half, generator=gen, dtype=torch.float64) * init.s_v if init.s_v
             else torch.zeros(half, dtype=torch.float64))
        if init.antisymmetric:
            w, b, v = torch.cat([w, w]), torch.cat([b, b]), torch.cat([v, -v])
        self.w, self.b, self.v = (t.requires_grad_(True) for t in (w, b, v))  # fresh tensors: no copies

    @classmethod
    def from_weights(cls, act: Activation, w, b, v=None, parameterization: str = "standard") -> "ShallowNetwork":
        """A network with given first-layer weights (n, d), offsets (n,) and output weights (default 0),
        e.g. a deterministic quadrature of an initialization density."""
        w, b = as_tensor(w), torch.as_tensor(np.asarray(b, dtype=float), dtype=torch.float64)
        if w.ndim != 2 or b.shape != (len(w),):
            raise IbcheckError("from_weights needs w of shape (n, d) and b of shape (n,)")
        net = cls(act, len(w), w.shape[1], Init(), parameterization)
        v = torch.zeros(len(w), dtype=torch.float64) if v is None else torch.as_tensor(np.asarray(v, dtype=float))
        net.w, net.b, net.v = (t.clone().requires_grad_(True) for t in (w, b, v))
        return net

    def subnetwork(self, part: slice) -> "ShallowNetwork":
        """The neurons ``part`` as a network of their own (a view: it shares the parameter tensors)."""
        sub = copy.copy(self)
        sub.w, sub.b, sub.v = self.w[part], self.b[part], self.v[part]
        sub.width = len(sub.v)
        return sub

    def snapshot(self) -> "ShallowNetwork":
        """A copy with its own (detached, trainable) parameter tensors: training ``self`` leaves it as it is."""
        twin = copy.copy(self)
        twin.w, twin.b, twin.v = (t.detach().clone().requires_grad_(True) for t in (self.w, self.b, self.v))
        return twin

    @property
    def output_scale(self) -> float:
        scale = 1.0 if self.parameterization == "standard" else 1.0 / math.sqrt(self.width)
        return scale * (math.sqrt(0.5) if self.init.antisymmetric else 1.0)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [self.v, self.w, self.b]

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`z_{ji} = w_i\\cdot x_j + b_i`, shape (N, n)."""
        return x @ self.w.T + self.b

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\sigma(z)`, shape (N, n)."""
        return self.sigma(self.preactivations(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_scale * (self.features(x) @ self.v)

    def rs_coordinates(self) -> dict[str, np.ndarray]:
        """RS coordinates rho, theta, beta, v (and mu = v rho^k for k-homogeneous activations)."""
        with torch.no_grad():
            rho = self.w.norm(dim=1)
            theta = self.w / rho[:, None]
            beta = -self.b / rho
            out = {"rho": rho.numpy().copy(), "theta": theta.numpy().copy(), "beta": beta.numpy().copy(),
                   "v": (self.output_scale * self.v).numpy().copy()}
        k = self.activation.homogeneity_degree
        if k is not None:
            out["mu"] = out["v"] * out["rho"] ** k
        return out

    @property
    def describe(self) -> str:
        """What is being trained, for progress bars and divergence messages."""
        return f"{self.activation.label} network, width {self.width}"

    def tangent_kernel(self, x1: torch.Tensor, x2: torch.Tensor, layers: str = "all",
                       lr: float | Sequence[float] = 1.0, block: int | None = None) -> torch.Tensor:
        r"""The empirical tangent kernel :math:`K_\eta(x, x') = \sum_l \eta_l J_l(x) J_l(x')^T`.

        With :math:`z = w\cdot x + b` and output scale s,
        :math:`J_v = s\,\sigma(z)`, :math:`J_w = s\,v\,\sigma'(z)\,x`, :math:`J_b = s\,v\,\sigma'(z)`, so

        .. math::
           K_\eta = s^2\Big[\eta_v \sum_i \sigma(z_i)\sigma(z_i')
           + \sum_i v_i^2\sigma'(z_i)\sigma'(z_i')\,(\eta_w\, x\cdot x' + \eta_b)\Big].

        ``layers='output'`` keeps only the first term (random features).  ``lr`` is one step size
        or one per parameter (v, w, b), as given to :func:`train`.  Formed in blocks of
        :data:`CHUNK` neurons; shape (N1, N2).  Where ``x2`` is a view of the first rows of ``x1``
        (``x1[:m]``, or ``x1`` itself) its features are those rows of ``x1``'s, not formed again.
        With ``block`` (dividing the width), the kernels of the sub-networks of ``block`` consecutive
        neurons, shape (width / block, N1, N2): what :meth:`subnetwork` ``(slice(k * block, (k + 1) * block))``
        ``.tangent_kernel`` gives for each k, the same operations in one call.

        A network whose second half mirrors its first (:meth:`mirrored`: the antisymmetric init before
        training) has twice the first half's sum: its neuron i and its twin contribute the same terms
        (the same z, and :math:`v_i^2 = (-v_i)^2`), so only the first half's features are formed
        (the same kernel up to the order of the additions).
        """
        if block is not None and (block < 1 or self.width % block):
            raise IbcheckError(f"kernel blocks of {block} neurons do not divide the width {self.width}")
        return self._kernel_and_output(x1, x2, layers, lr, block=block)[0]

    def _kernel_and_output(self, x1: torch.Tensor, x2: torch.Tensor, layers: str, lr,
                           output: bool = False, block: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`tangent_kernel` and, with ``output``, :math:`f(x_1)` from the same features (what
        :meth:`evaluate` returns, the same operations in the same blocks)."""
        eta_v, eta_w, eta_b = _rates(lr)
        _check_layers(layers)
        # sigma and sigma' from one pass over z (shared subexpressions once), or sigma alone
        evaluate = self._sigma_and_derivative() if layers == "all" else lambda z: (self.sigma(z), None)
        leading = _leading_rows(x1, x2)
        # a mirrored network: the first half's terms, doubled below; its output sum_i v_i sigma_i is exactly 0
        neurons = self.width // 2 if block is None and self.mirrored() else self.width
        size = block or neurons
        # K^T: (N2, n) @ (n, N1) with the short side first runs 1.4-1.8x faster than (N1, n) @ (n, N2)
        transposed = torch.zeros(neurons // size, len(x2), len(x1), dtype=torch.float64)
        values = torch.zeros(len(x1), dtype=torch.float64) if output else None
        with torch.no_grad(), threads.for_entries(transposed[0].numel()):
            for k, start in enumerate(range(0, neurons, size)):
                for lo in range(start, start + size, CHUNK):
                    part = slice(lo, min(lo + CHUNK, start + size))
                    z1 = torch.addmm(self.b[part], x1, self.w[part].T)
                    s1, d1 = evaluate(z1)
                    s2, d2 = (s1[:len(x2)], None) if leading else evaluate(torch.addmm(self.b[part], x2, self.w[part].T))
                    transposed[k] += eta_v * (s2 @ s1.T)  # scale the (N2, N1) product, not the features
                    if output and neurons == self.width:
                        values += s1 @ self.v[part]
                    if d1 is not None:
                        d1 = d1 * self.v[part]
                        d2 = d1[:len(x2)] if leading else d2 * self.v[part]
                        transposed[k] += (d2 @ d1.T) * (eta_w * (x2 @ x1.T) + eta_b)
        if neurons < self.width:
            transposed *= 2  # each term twice: the twins' (exact in floating point)
        kernel = transposed.mT.contiguous() * self.subnetwork(slice(0, block or self.width)).output_scale**2
        return kernel if block else kernel[0], None if values is None else values * self.output_scale

    def mirrored(self) -> bool:
        """Whether the second half of the neurons copies the first with output weights negated (the
        antisymmetric init, module docstring, as long as training has not moved it): then
        :math:`f = 0` and every neuron's tangent-kernel terms are its twin's."""
        half = self.width // 2
        if self.width % 2:
            return False
        with torch.no_grad():
            return bool(torch.equal(self.w[half:], self.w[:half]) and torch.equal(self.b[half:], self.b[:half])
                        and torch.equal(self.v[half:], -self.v[:half]))

    def jacobian(self, x: torch.Tensor, layers: str = "all") -> torch.Tensor:
        r""":math:`\partial f(x_j)/\partial(v, w, b)` as an (N, P) matrix, columns ordered v, w (row-major), b
        (the analytic form of :meth:`tangent_kernel`; ``layers='output'`` gives only the v columns)."""
        _check_layers(layers)
        with torch.no_grad():
            z = self.preactivations(x)
            blocks = [self.sigma(z)]
            if layers == "all":
                d = self._derivative()(z) * self.v
                blocks += [(d[:, :, None] * x[:, None, :]).reshape(len(x), -1), d]
        return torch.cat(blocks, dim=1) * self.output_scale

    def _derivative(self):
        self._first_layer_trainable()
        return torch_activation(self.activation, 1)

    def _sigma_and_derivative(self):
        self._first_layer_trainable()
        return torch_sigma_and_slope(self.activation)

    def _first_layer_trainable(self) -> None:
        if self.activation.is_discontinuous:
            raise IbcheckError(f"{self.activation.label} jumps, so sigma' is a point mass: the first layer "
                               "has no gradient; train the output layer only")

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) without autograd, in blocks of :data:`CHUNK` neurons (for large widths and grids)."""
        out = torch.zeros(len(x), dtype=torch.float64)
        with torch.no_grad():
            for lo in range(0, self.width, CHUNK):
                part = slice(lo, lo + CHUNK)
                out += self.sigma(torch.addmm(self.b[part], x, self.w[part].T)) @ self.v[part]
        return out * self.output_scale


def _leading_rows(x1: torch.Tensor, x2: torch.Tensor) -> bool:
    """``x2`` is a view of ``x1[:len(x2)]`` (the same memory and strides), e.g. ``x1`` itself."""
    return (x2.ndim == x1.ndim == 2 and x2.shape[1] == x1.shape[1] and len(x2) <= len(x1)
            and x2.dtype == x1.dtype and x2.stride() == x1.stride() and x2.data_ptr() == x1.data_ptr())


def _rates(lr) -> tuple[float, float, float]:
    rates = tuple(float(r) for r in lr) if isinstance(lr, (list, tuple)) else (float(lr),) * 3
    if len(rates) != 3 or any(r < 0 or not math.isfinite(r) for r in rates):
        raise IbcheckError(f"learning rates must be one non-negative number or three (v, w, b), got {lr!r}")
    return rates


def _check_layers(layers: str) -> None:
    if layers not in LAYERS:
        raise IbcheckError(f"unknown training mode {layers!r}; known: {', '.join(LAYERS)}")


@dataclass
class LinearizedSolution:
    r"""The linearized network after T steps of gradient descent (T = None: infinite time).

    Around :math:`\theta_0`, :math:`f_{lin}(x) = f_0(x) + J(x)(\theta - \theta_0)`; gradient descent on
    :math:`L = \frac1{2N}\sum_j r_j^2` with per-layer steps moves it by
    :math:`-\tfrac1N K_\eta(x, X) r_t`, so with :math:`A = K_\eta(X, X)/N = U\Lambda U^T`

    .. math::
       f_T(x) = f_0(x) - \tfrac1N K_\eta(x, X)\,U\,\mathrm{diag}\Big(\frac{1 - (1-\lambda)^T}{\lambda}\Big)U^T r_0,

    and at :math:`T = \infty` the minimum-norm interpolant :math:`f_0 + K_\eta(x, X)K_\eta^{-1}(y - f_0(X))`
    (spectral_bias.md 2.1 and 2.4, kernel gradient flow).
    """

    network: ShallowNetwork  # a snapshot at linearization: later training does not move it
    x: torch.Tensor
    layers: str
    lr: float | tuple
    steps: int | None
    weights: torch.Tensor  # the vector multiplying K_eta(x, X)

    def __call__(self, points) -> np.ndarray:
        points = as_tensor(points)
        started = bool(torch.any(self.network.v != 0))  # else f_0 = 0
        k, start = self.network._kernel_and_output(points, self.x, self.layers, self.lr, output=started)
        return ((0.0 if start is None else start) + k @ self.weights).numpy()


def kernel_descent_weights(gram: torch.Tensor, residual: torch.Tensor, steps: int | None = None,
                           what: str = "kernel", max_condition: float = 1e13) -> torch.Tensor:
    r"""The vector :math:`\alpha` with :math:`f_T(x) = f_0(x) + K(x, X)\,\alpha` after T steps of kernel
    gradient descent from the residual :math:`r_0 = f_0(X) - y` (``steps=None``: infinite time,
    :math:`\alpha = -K^{-1}r_0`); see :class:`LinearizedSolution`.  A batch of Gram matrices (..., N, N)
    gives a batch of vectors (..., N), each the one of its matrix."""
    n_points = len(residual)
    if gram.ndim > 2:  # matrix by matrix: a batched eigh or product rounds differently from a single one
        each = [kernel_descent_weights(g, residual, steps, what, max_condition) for g in gram.reshape(-1, n_points, n_points)]
        return torch.stack(each).reshape(gram.shape[:-1])
    lam, vecs = torch.linalg.eigh(gram / n_points)
    if steps is None:
        if lam.min() <= lam.max() / max_condition:
            raise IbcheckError(f"{what}: the tangent kernel on the data is singular (eigenvalues "
                               f"{lam.min():.1e} .. {lam.max():.1e}); no minimum-norm solution")
        factor = 1 / lam
    else:
        if lam.max() >= 2:
            raise IbcheckError(f"{what}: step too large for the linearized model (eta lambda_max/N = "
                               f"{lam.max():.3g} >= 2): gradient descent diverges; lower the learning rate")
        safe = torch.clamp(lam, min=1e-300)
        factor = torch.where(lam > 1e-300, -torch.expm1(steps * torch.log1p(-safe)) / safe,
                             torch.full_like(lam, float(steps)))
    return -(vecs @ (factor * (vecs.T @ residual))) / n_points


def linearized_solution(net: ShallowNetwork, x, y, layers: str = "all", lr: float | Sequence[float] = 1.0,
                        steps: int | None = None, max_condition: float = 1e13) -> LinearizedSolution:
    """The linearized model of ``net`` trained on (x, y) (see :class:`LinearizedSolution`).

    ``steps=None`` is the infinite-time (minimum-norm) solution; it raises
    :class:`IbcheckError` when the tangent kernel on the data is singular.
    """
    x = as_tensor(x)
    y = torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    gram, start = net._kernel_and_output(x, x, layers, lr, output=True)
    weights = kernel_descent_weights(gram, start - y, steps, what=net.describe,
                                     max_condition=max_condition)
    return LinearizedSolution(net.snapshot(), x, layers, lr, steps, weights)


def train(net: ShallowNetwork, x, y, steps: int, lr: float | Sequence[float], layers: str = "all",
          record_steps: Sequence[int] | None = None) -> History:
    r"""Full-batch gradient descent on :math:`L = \frac1{2N}\sum_j (f(x_j) - y_j)^2`.

    ``layers='output'`` trains v only (random features); ``'all'`` trains v, w, b.  ``lr`` is one
    step size or one per parameter (v, w, b): the relative layer scales and rates set the regime
    (section 1.4).  A small step approximates gradient flow.  Divergence raises
    :class:`~numerics.training.TrainingDiverged` naming the activation, the width and the step.

    The loop is :func:`numerics.training.array_descent` on v, w and b packed as the rows of one
    numpy array, sigma and sigma' from :data:`numerics.torch_activation.ARRAYS` (issue 18: at the
    kernel regime's sizes, width 1e3-1e4 on a few points, torch's per-call overhead and its
    float64 exp and tanh made the step up to 2-3x slower); the network's tensors hold the result.
    """
    _check_layers(layers)
    eta_v, eta_w, eta_b = _rates(lr)
    if layers == "all":
        net._first_layer_trainable()  # a clear error for activations whose sigma' is a point mass
    x_hat = np.hstack([as_tensor(x).numpy(), np.ones((len(x), 1))])  # (N, d + 1): rows (x_j, 1)
    y = np.asarray(y, dtype=float)
    packed = torch.cat([net.v.detach()[None], net.w.detach().T, net.b.detach()[None]]).numpy().copy()
    history = array_descent(packed, _closed_form_gradient(net, packed, x_hat, y, (eta_v, eta_w, eta_b), layers),
                            steps, 1.0, record_steps=record_steps, describe=f"{net.describe} ({layers} layers)")
    net.v, net.w, net.b = (torch.from_numpy(t.copy()).requires_grad_(True) for t in (packed[0], packed[1:-1].T, packed[-1]))
    return history


def _closed_form_gradient(net: ShallowNetwork, packed: np.ndarray, x_hat: np.ndarray, y: np.ndarray, rates,
                          layers: str):
    r"""``gradient(out) -> L`` for :func:`train` on the parameters ``packed`` = :math:`(v; U)`, one row
    v and the d + 1 rows :math:`U = (w^T; b^T)` (read through views, so the descent's updates are
    seen): with :math:`z = \hat X U`, :math:`\hat X` the rows :math:`(x_j, 1)`, the residual
    :math:`r = s\,\sigma(z)v - y` (s the output scale) and :math:`\rho = \frac sN r`,

    .. math::
       \eta_v\partial_v L = \eta_v\,\sigma(z)^T\rho, \qquad
       \eta\odot\partial_U L = \big((\rho\odot\hat X_\eta)^T\sigma'(z)\big)\odot v^T,
       \quad \hat X_\eta = (\eta_w x_j, \eta_b),

    written into ``out`` (each layer's step size folded in, so the descent's own step is 1): two
    products with the (N, n) feature matrices, every other operation on vectors or rows; sigma and
    sigma' from one pass over z (:func:`numerics.torch_activation.sigma_and_slope`)."""
    eta_v, eta_w, eta_b = rates
    n_points, dim = x_hat.shape[0], x_hat.shape[1] - 1
    rated = x_hat * np.array([eta_w] * dim + [eta_b])  # (N, d + 1): (eta_w x_j, eta_b)
    both = sigma_and_slope(net.activation) if layers == "all" else None
    sigma = net.activation.numeric(ARRAYS.name) if both is None else None
    z = np.empty((n_points, net.width))
    residual, rho = np.empty(n_points), np.empty(n_points)
    rho_x = np.empty_like(rated)
    scale = net.output_scale
    v, u = packed[0], packed[1:]

    def gradient(out: np.ndarray) -> float:
        np.matmul(x_hat, u, out=z)
        features, slopes = (sigma(z), None) if both is None else both(z)
        features = full_shape(features, z)
        np.matmul(features, v, out=residual)
        np.multiply(residual, scale, out=residual)
        np.subtract(residual, y, out=residual)
        np.multiply(residual, scale / n_points, out=rho)
        np.matmul(rho, features, out=out[0])
        np.multiply(out[0], eta_v, out=out[0])
        if slopes is None:
            out[1:] = 0.0
        else:
            np.multiply(rho[:, None], rated, out=rho_x)
            np.matmul(rho_x.T, full_shape(slopes, z), out=out[1:])
            np.multiply(out[1:], v, out=out[1:])
        return 0.5 * float(np.dot(residual, residual)) / n_points
    return gradient


def as_tensor(x) -> torch.Tensor:
    """float64 tensor of shape (N, d) from an array of shape (N,) or (N, d)."""
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    return t[:, None] if t.ndim == 1 else t
