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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from theory.activations import Activation
from theory.errors import IbcheckError

from .reproducibility import generators
from .torch_activation import torch_activation

PARAMETERIZATIONS = ("standard", "ntk")
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
        v = torch.randn(half, generator=gen, dtype=torch.float64) * init.s_v
        if init.antisymmetric:
            w, b, v = torch.cat([w, w]), torch.cat([b, b]), torch.cat([v, -v])
        self.w, self.b, self.v = (t.clone().requires_grad_(True) for t in (w, b, v))

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


def as_tensor(x) -> torch.Tensor:
    """float64 tensor of shape (N, d) from an array of shape (N,) or (N, d)."""
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    return t[:, None] if t.ndim == 1 else t
