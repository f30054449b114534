"""Training several standard-parameterization networks at once (E7 setups, section 6.3):
the :class:`Regime` scales, the packed :class:`Ensemble` and its :class:`Trajectory`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import sympy as sp
import torch

from theory.activations import Activation
from theory.errors import IbcheckError

from ..networks import Init, ShallowNetwork, as_tensor
from ..torch_activation import torch_activation
from ..training import array_descent, full_shape, log_spaced_steps, slope_times_input


@dataclass(frozen=True)
class Regime:
    """Initialization scales of one training regime (v ~ N(0, s_v^2), w ~ N(0, s_w^2 I), b ~ N(0, s_b^2))."""

    name: str
    s_v: float
    s_w: float
    s_b: float

    def init(self) -> Init:
        return Init(kind="gaussian", s_w=self.s_w, s_b=self.s_b, s_v=self.s_v)

    def learning_rate(self, width: int, factor: float = 1.0) -> float:
        """E7's step size :math:`0.2/(n(s_v^2 + s_w^2))`, times ``factor``."""
        return factor * 0.2 / (width * (self.s_v**2 + self.s_w**2))


ADAPTIVE = Regime("adaptive", 1.0, 0.05, 0.05)
KERNEL = Regime("kernel", 0.05, 1.0, 1.0)


# ---------------------------------------------------------------------------------------
# training several networks at once

class _ClosedFormLoss(torch.autograd.Function):
    """Autograd node for :meth:`Ensemble.loss`: forward and gradient from
    :meth:`Ensemble.loss_and_gradient` (lets tests compare it with the taped loss)."""

    @staticmethod
    def forward(ctx, params, ensemble):
        loss, (ctx.grad,) = ensemble.loss_and_gradient()
        return loss

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.grad, None


class Ensemble:
    r"""R standard-parameterization networks of one width on one data set, packed into one
    tensor ``params`` of shape (R n, d + 2) with rows :math:`(v_i, w_i, b_i)`.

    The loss is :math:`\sum_m c_m L_m` with :math:`c_m = \eta_m/\eta`, so one GD step of size
    :math:`\eta = \max_m\eta_m` is an exact GD step of size :math:`\eta_m` on every member.
    The gradient is computed in closed form
    (:math:`\partial_v L = \frac1N\sum_j r_j\sigma(z_j)`,
    :math:`\partial_{(w,b)} L = \frac vN\sum_j r_j\sigma'(z_j)(x_j, 1)`) without autograd
    (:meth:`loss_and_gradient`), which is several times faster than taping the forward pass
    (tests compare both through :meth:`loss`).

    Input coordinates that are 0 on every data point (the blank border pixels of the digits)
    add exact zeros to every pre-activation and get a zero gradient, so their weights keep their
    initial values: ``params`` holds only the other coordinates' weights (rows
    :math:`(v_i, w_{i,\mathrm{used}}, b_i)`) and :meth:`state` puts the constant ones back.
    """

    def __init__(self, act: Activation, x, y, width: int, members: list[tuple[Regime, int]],
                 lr_factor: float = 1.0):
        if not members:
            raise IbcheckError("an ensemble needs at least one (regime, seed) member")
        self.act, self.width, self.members = act, width, list(members)
        self.x = as_tensor(x)
        self.y = torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
        if self.x.shape[0] != self.y.shape[0]:
            raise IbcheckError(f"{self.x.shape[0]} inputs but {self.y.shape[0]} targets")
        self.N, self.dim = self.x.shape
        nets = [ShallowNetwork(act, width, self.dim, regime.init(), seed=seed) for regime, seed in members]
        self.initial_networks = nets
        initial = torch.cat([torch.cat([n.v.detach()[:, None], n.w.detach(), n.b.detach()[:, None]], 1)
                             for n in nets])                                   # rows (v, w, b)
        self._used = np.flatnonzero(np.any(self.x.numpy() != 0, axis=0))      # coordinates some x_j uses
        self._columns = np.concatenate([[0], 1 + self._used, [self.dim + 1]])  # of (v, w, b) in params
        self._initial = initial.numpy()                                        # the unused weights' values
        self._x_used = self.x[:, self._used]
        self.params = initial[:, self._columns].clone().requires_grad_(True)
        rates = [regime.learning_rate(width, lr_factor) for regime, _ in members]
        self.lr = max(rates)
        self.rates = rates
        self._weights = torch.tensor(rates, dtype=torch.float64) / self.lr
        self._sigma, self._slope = torch_activation(act), torch_activation(act, 1)

    @property
    def size(self) -> int:
        return len(self.members)

    def _split(self, p):
        """v, the used coordinates' w, b of ``params``-shaped p."""
        return p[:, 0], p[:, 1:-1], p[:, -1]

    def loss_and_gradient(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The weighted loss and its gradient with respect to ``params``, in closed form (as tensors)."""
        grad = np.empty(tuple(self.params.shape))
        loss = self._closed_form(grad)
        return torch.tensor(loss, dtype=torch.float64), [torch.from_numpy(grad)]

    @cached_property
    def _closed_form(self):
        r"""``gradient(out) -> loss``: the closed-form gradient written into ``out``, on numpy views
        of ``params`` (which share its memory) and buffers allocated once (numpy: at these sizes
        its per-call overhead is a fraction of torch's; see :func:`numerics.training.array_descent`).

        With :math:`\hat x_j = (x_j, 1)` and the rows :math:`u_k = (w_k, b_k)` a step is
        :math:`z_{jk} = \hat x_j\cdot u_k` (one product), then per member m
        :math:`r_{mj} = \sum_k v_k\sigma(z_{jk}) - y_j`,
        :math:`\partial_{v_k} L = \sum_j \rho_{mj}\sigma(z_{jk})` and
        :math:`\partial_{u_k} L = v_k\sum_j \sigma'(z_{jk})\rho_{mj}\hat x_j` with
        :math:`\rho_{mj} = c_m r_{mj}/N`: batched matrix products over the members, only the two
        activation calls allocate."""
        N, R, n, d = self.N, self.size, self.width, len(self._used)     # d: the used coordinates
        p = self.params.detach().numpy()
        v, u = p[:, 0], p[:, 1:]                                        # u: rows (w_k, b_k)
        x_hat = np.hstack([self._x_used.numpy(), np.ones((N, 1))])      # (N, d + 1)
        y = self.y.numpy()[None, :, None]                               # (1, N, 1)
        member_weights = (self._weights / self.N).numpy()[:, None, None]  # (R, 1, 1): c_m / N
        z, slope_v, products = np.empty((N, R * n)), np.empty((N, R * n)), np.empty((N, R * n))
        residual, rho = np.empty((R, N, 1)), np.empty((R, N, 1))
        rho_x = np.empty((R, N, d + 1))
        sigma, slope = self.act.numeric("numpy"), self.act.numeric("numpy", 1)
        homogeneous = slope_times_input(self.act)
        by_sign = slopes_by_sign(self.act)
        if by_sign is not None:  # sigma' from z's sign bit, into a buffer allocated once
            slope = partial(by_sign, out=np.empty((N, R * n)), zero=np.empty((N, R * n), dtype=bool))

        def by_member(values):  # (N, R n) -> (R, N, n) view
            return values.reshape(N, R, n).transpose(1, 0, 2)

        def gradient(out: np.ndarray) -> float:
            np.matmul(x_hat, u.T, out=z)
            slopes = slope(z)
            if homogeneous:  # sigma(z) = z sigma'(z): one activation call
                s = by_member(np.multiply(slopes, z, out=products))
            else:
                s = by_member(full_shape(sigma(z), z))
            np.matmul(s, v.reshape(R, n, 1), out=residual)
            np.subtract(residual, y, out=residual)
            np.multiply(residual, member_weights, out=rho)
            np.matmul(rho.transpose(0, 2, 1), s, out=out[:, 0].reshape(R, 1, n))
            np.multiply(rho, x_hat, out=rho_x)
            np.multiply(slopes, v, out=slope_v)
            np.matmul(by_member(slope_v).transpose(0, 2, 1), rho_x, out=out[:, 1:].reshape(R, n, d + 1))
            return 0.5 * float(np.vdot(residual, rho))
        return gradient

    def loss(self) -> torch.Tensor:
        """The weighted loss as one autograd node whose backward is the closed-form gradient."""
        return _ClosedFormLoss.apply(self.params, self)

    def reference_loss(self) -> torch.Tensor:
        """The same weighted loss taped through autograd (for tests)."""
        v, w, b = self._split(self.params)
        z = self._x_used @ w.T + b
        f = (self._sigma(z) * v).view(self.N, self.size, self.width).sum(-1)
        r = f - self.y[:, None]
        return 0.5 * ((r * r).mean(0) * self._weights).sum()

    def residuals(self) -> np.ndarray:
        """:math:`r_j = f(x_j) - y_j` of every member, shape (R, N)."""
        with torch.no_grad():
            v, w, b = self._split(self.params)
            f = (self._sigma(self._x_used @ w.T + b) * v).view(self.N, self.size, self.width).sum(-1)
            return (f - self.y[:, None]).T.numpy().copy()

    def state(self) -> np.ndarray:
        """Packed (v, w, b) rows of every member, shape (R, n, d + 2)."""
        rows = self._initial.copy()
        rows[:, self._columns] = self.params.detach().numpy()
        return rows.reshape(self.size, self.width, self.dim + 2)

    def train(self, steps: int, record_steps=None, describe: str = "adaptive regime") -> "Trajectory":
        """GD for ``steps`` steps, keeping states and residuals at ``record_steps``."""
        record_steps = sorted(set(record_steps if record_steps is not None else log_spaced_steps(steps)))
        states, residuals = [], []

        def record(step):
            states.append(self.state())
            residuals.append(self.residuals())
            return step

        history = array_descent(self.params.detach().numpy(), self._closed_form, steps, self.lr, record=record,
                                record_steps=record_steps, describe=describe)
        return Trajectory(self.act, self.x.numpy().copy(), self.y.numpy().copy(), self.members,
                          np.array(history.steps), np.array(states), np.array(residuals), self.rates)


def slopes_by_sign(act: Activation):
    r"""For :math:`\sigma'` a Piecewise constant on each side of one kink at 0 (leaky ReLU: the
    :func:`numerics.training.slope_times_input` activations whose pieces meet at 0, where :math:`\sigma'` is not one
    Heaviside or sign call), ``slopes(z, out, zero)``: the compiled :math:`\sigma'(z)` bit for bit,
    written into ``out`` (``zero``: a boolean buffer of z's shape), else None.

    The compiled Piecewise costs a finiteness sum, comparisons and a select (leaky ReLU's E7 step
    48 vs 37 us with this; ReLU's and |z|'s single ``np.sign`` call is as fast as this and is
    kept); here the side is read from z's sign bit by integer operations that never branch, on
    the bit patterns of the two slopes
    :math:`c_\pm`: :math:`((b \gg 63) \mathbin{\&} (c_- \oplus c_+)) \oplus c_+` (b: z's bits;
    :math:`b \gg 63` is all ones where the sign bit is set, else 0).  Entries that are exactly 0
    (either sign) get the compiled value at themselves.  A NaN entry gets one side's slope instead
    of the compiled value; its :math:`\sigma(z) = z\sigma'(z)` is NaN either way, so the loss is NaN
    and training stops there.  :math:`c_\pm` are taken from the compiled :math:`\sigma'` and
    checked on probes from the largest to the smallest magnitude on each side."""
    piecewise = isinstance(act.derivative(1), sp.Piecewise)
    if not (piecewise and slope_times_input(act) and tuple(act.pieces.breaks) == (0,)):
        return None
    slope = act.numeric("numpy", 1)
    magnitudes = np.array([1e300, 1e10, 1.0, 1e-10, 1e-300, 5e-324])
    sides = [full_shape(slope(sign * magnitudes), magnitudes).view(np.int64) for sign in (-1.0, 1.0)]
    if any(np.any(side != side[0]) for side in sides):
        return None
    negative, positive = sides[0][0], sides[1][0]
    flip = negative ^ positive

    def slopes(z: np.ndarray, out: np.ndarray, zero: np.ndarray) -> np.ndarray:
        bits = out.view(np.int64)
        np.right_shift(z.view(np.int64), 63, out=bits)  # -1 where z's sign bit is set, else 0
        np.bitwise_and(bits, flip, out=bits)
        np.bitwise_xor(bits, positive, out=bits)         # c_- where the sign bit is set, else c_+
        np.equal(z, 0.0, out=zero)
        if zero.any():
            out[zero] = full_shape(slope(z[zero]), z[zero])
        return out
    return slopes


def record_schedule(steps: int, linear: int = 200, per_decade: int = 10) -> list[int]:
    """Log-spaced steps plus ``linear`` evenly spaced ones (dense samples for the sign rule)."""
    return sorted(set(log_spaced_steps(steps, per_decade)) | {int(s) for s in np.linspace(0, steps, linear + 1)})


@dataclass
class Trajectory:
    """States (T, R, n, d+2) and residuals (T, R, N) of an ensemble at the recorded steps."""

    act: Activation
    x: np.ndarray
    y: np.ndarray
    members: list
    steps: np.ndarray
    states: np.ndarray
    residuals: np.ndarray
    rates: list

    def member(self, name: str) -> list[int]:
        return [i for i, (regime, _) in enumerate(self.members) if regime.name == name]
