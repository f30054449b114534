"""Full-batch gradient descent with divergence detection and log-spaced records.

Every numeric experiment trains through :func:`gradient_descent` or :func:`array_descent`:
they take the parameters, a loss (and gradient) closure and step sizes, record on log-spaced
steps, show progress on a terminal, and stop with :class:`TrainingDiverged` (an
``IbcheckError`` naming what was trained and at which step) as soon as the loss or a parameter
stops being finite or explodes.

* :func:`gradient_descent`: torch tensors, autograd or a closed-form gradient.
* :func:`array_descent`: one float64 numpy array and a closed-form gradient written into a
  preallocated buffer, for the small networks trained for 1e5 steps (width 200 on six points):
  at these sizes a step is a few microseconds of arithmetic and the rest is per-call overhead,
  which numpy has less of than torch (issue 18: 2,742 steps/s through torch vs 16,522 for a
  plain numpy loop of the same GD); the loop itself allocates nothing per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import sympy as sp
import torch

from theory.activations import Activation
from theory.errors import IbcheckError
from theory.symbols import x as X

from .progress import progress


class TrainingDiverged(IbcheckError):
    """Training produced a non-finite loss or exploding weights."""


def log_spaced_steps(total: int, per_decade: int = 10) -> list[int]:
    """0, then about ``per_decade`` steps per decade up to and including ``total``."""
    if total <= 0:
        return [0]
    points = np.unique(np.round(np.logspace(0, math.log10(total), max(2, int(per_decade * math.log10(total)) + 2))))
    return sorted({0, total, *[int(p) for p in points if 0 < p <= total]})


def full_shape(values, z: np.ndarray) -> np.ndarray:
    """What a compiled activation returned for the array ``z``, as an array of z's shape (a constant
    piece, e.g. the slope of a linear activation, comes back as a scalar); a read-only view, no copy."""
    return values if np.shape(values) == z.shape else np.broadcast_to(values, z.shape)


def slope_times_input(act: Activation) -> bool:
    r"""Whether :math:`\sigma(z) = z\,\sigma'(z)` for every z, so that a step needs one activation
    call: every smooth piece of :math:`\sigma` is :math:`c\,z` (positively 1-homogeneous and
    piecewise linear: ReLU, leaky ReLU, |z|; at the kink z = 0 both sides are 0 for any finite
    :math:`\sigma'(0)`).  For these the product :math:`\sigma'(z)\,z` is the very product the
    compiled :math:`\sigma` forms (:math:`c\cdot z`, or z itself for c = 1; ReLU's
    :math:`0\cdot z` is a signed zero, which no sum or product with it tells apart)."""
    pieces = act.pieces
    if pieces.atoms or not all(sp.diff(p, X, 2) == 0 and p.subs(X, 0) == 0 for p in pieces.pieces):
        return False
    return bool(np.isfinite(act.numeric("numpy", 1)(np.zeros(1))).all())


@dataclass
class History:
    """What :func:`gradient_descent` recorded: steps, losses and whatever ``record`` returned."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    records: list = field(default_factory=list)
    stopped_at: int | None = None


def _record_schedule(steps: int, record_steps: Sequence[int] | None) -> set[int]:
    return set(record_steps if record_steps is not None else log_spaced_steps(steps))


def gradient_descent(params: Sequence[torch.Tensor],
                     loss_fn: Callable[[], torch.Tensor | tuple[torch.Tensor, Sequence[torch.Tensor]]], steps: int,
                     lr: float | Sequence[float], *, record: Callable[[int], object] | None = None,
                     record_steps: Sequence[int] | None = None, describe: str = "training",
                     max_abs: float = 1e12, stop_loss: float | None = None, check_every: int = 64) -> History:
    r"""Run ``steps`` full-batch steps :math:`\theta \leftarrow \theta - \eta\nabla L`.

    ``loss_fn`` returns the loss, or ``(loss, gradients)`` where the gradient is known in
    closed form (then autograd is skipped).  ``lr`` is one step size or one per parameter tensor.  At each step in ``record_steps``
    (default: log-spaced) the loss and ``record(step)`` are stored.  ``stop_loss`` ends
    training early once the loss falls below it (the final state is recorded).
    Raises :class:`TrainingDiverged` on a non-finite loss or gradient, or a parameter above
    ``max_abs`` in absolute value.  The loss is checked every step, the parameters' bound every
    ``check_every`` steps and at every record (one reduction per tensor: per step it costs as
    much as a small network's update); a non-finite gradient in between makes the next loss
    non-finite.
    """
    rates = list(lr) if isinstance(lr, (list, tuple)) else [lr] * len(params)
    if len(rates) != len(params):
        raise ValueError("one learning rate per parameter tensor")
    wanted = _record_schedule(steps, record_steps)
    history = History()

    def keep(step, loss_value):
        history.steps.append(step)
        history.loss.append(loss_value)
        history.records.append(record(step) if record else None)

    with progress(steps, describe, unit="step") as bar:
        for step in range(steps + 1):
            loss = loss_fn()
            loss, grads = loss if isinstance(loss, tuple) else (loss, None)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"{describe}: training diverged at step {step} (loss = {value})")
            done = step == steps or (stop_loss is not None and value < stop_loss)
            if step in wanted or done:
                keep(step, value)
            if done:
                history.stopped_at = step
                break
            if grads is None:
                grads = torch.autograd.grad(loss, list(params))
            with torch.no_grad():
                for p, g, eta in zip(params, grads, rates):
                    p.add_(g, alpha=-eta)
                # one bound per tensor: NaN fails both comparisons, so this also
                # catches non-finite gradients (diagnosed below, only on failure)
                checked = step % check_every == 0 or step in wanted
                if checked and not all(-max_abs <= lo and hi <= max_abs for lo, hi in map(torch.aminmax, params)):
                    if not all(bool(torch.isfinite(g).all()) for g in grads):
                        raise TrainingDiverged(f"{describe}: non-finite gradient at step {step}")
                    raise TrainingDiverged(f"{describe}: weights exploded (|w| > {max_abs:g}) at step {step}")
            if step % 100 == 0:
                bar.update(min(100, steps - bar.n))
    return history


def array_descent(params: np.ndarray, loss_and_gradient: Callable[[np.ndarray], float | None], steps: int, lr: float,
                  *, loss: Callable[[], float] | None = None, record: Callable[[int], object] | None = None,
                  record_steps: Sequence[int] | None = None, describe: str = "training", max_abs: float = 1e12,
                  check_every: int = 64) -> History:
    r"""Run ``steps`` full-batch steps :math:`\theta \leftarrow \theta - \eta\nabla L` on ``params`` in place.

    ``params`` is one float64 array (views of it may be what the closure reads);
    ``loss_and_gradient(grad)`` writes :math:`\nabla L` into ``grad`` (preallocated, the shape of
    ``params``) and returns :math:`L` as a float.  Records as :func:`gradient_descent`.  The loss is
    checked every step (a non-finite gradient makes the next loss non-finite); the bound
    :math:`|\theta| \le` ``max_abs`` every ``check_every`` steps and at every record.

    Where :math:`L` costs as much as its gradient (the frozen field: one more activation call),
    pass ``loss()`` (L at the current parameters, called right after ``loss_and_gradient``): then
    the closure's return value is ignored and L is evaluated only at records and bound checks,
    where a non-finite gradient shows as a non-finite L or parameter (NaN fails the bound).
    """
    grad = np.empty_like(params)
    wanted = _record_schedule(steps, record_steps)
    # the steps where anything but the GD step happens: records, bound checks, the progress bar
    events = wanted | {steps} | set(range(0, steps + 1, check_every)) | set(range(0, steps + 1, 100))
    history = History()

    def finite(value: float, step: int) -> float:
        if not math.isfinite(value):
            raise TrainingDiverged(f"{describe}: training diverged at step {step} (loss = {value})")
        return value

    with progress(steps, describe, unit="step") as bar:
        for step in range(steps + 1):
            value = loss_and_gradient(grad)
            if loss is None:
                finite(value, step)
            if step in events:
                if loss is not None:
                    value = finite(loss(), step)
                if not (-max_abs <= params.min() and params.max() <= max_abs):
                    raise TrainingDiverged(f"{describe}: weights exploded (|w| > {max_abs:g}) at step {step}")
                if step in wanted or step == steps:
                    history.steps.append(step)
                    history.loss.append(value)
                    history.records.append(record(step) if record else None)
                if step == steps:
                    history.stopped_at = step
                    break
                if step % 100 == 0:
                    bar.update(min(100, steps - bar.n))
            grad *= lr
            params -= grad
    return history
