"""Full-batch gradient descent with divergence detection and log-spaced records.

Every numeric experiment trains through :func:`gradient_descent`: it takes the parameter
tensors, a loss closure and per-parameter step sizes, records on log-spaced steps, shows
progress on a terminal, and stops with :class:`TrainingDiverged` (an ``IbcheckError``
naming what was trained and at which step) as soon as the loss or a parameter stops being
finite or explodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from theory.errors import IbcheckError

from .progress import progress


class TrainingDiverged(IbcheckError):
    """Training produced a non-finite loss or exploding weights."""


def log_spaced_steps(total: int, per_decade: int = 10) -> list[int]:
    """0, then about ``per_decade`` steps per decade up to and including ``total``."""
    if total <= 0:
        return [0]
    points = np.unique(np.round(np.logspace(0, math.log10(total), max(2, int(per_decade * math.log10(total)) + 2))))
    return sorted({0, total, *[int(p) for p in points if 0 < p <= total]})


@dataclass
class History:
    """What :func:`gradient_descent` recorded: steps, losses and whatever ``record`` returned."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    records: list = field(default_factory=list)
    stopped_at: int | None = None


def gradient_descent(params: Sequence[torch.Tensor],
                     loss_fn: Callable[[], torch.Tensor | tuple[torch.Tensor, Sequence[torch.Tensor]]], steps: int,
                     lr: float | Sequence[float], *, record: Callable[[int], object] | None = None,
                     record_steps: Sequence[int] | None = None, describe: str = "training",
                     max_abs: float = 1e12, stop_loss: float | None = None) -> History:
    r"""Run ``steps`` full-batch steps :math:`\theta \leftarrow \theta - \eta\nabla L`.

    ``loss_fn`` returns the loss, or ``(loss, gradients)`` where the gradient is known in
    closed form (then autograd is skipped).  ``lr`` is one step size or one per parameter tensor.  At each step in ``record_steps``
    (default: log-spaced) the loss and ``record(step)`` are stored.  ``stop_loss`` ends
    training early once the loss falls below it (the final state is recorded).
    Raises :class:`TrainingDiverged` on a non-finite loss or gradient, or a parameter above
    ``max_abs`` in absolute value.
    """
    rates = list(lr) if isinstance(lr, (list, tuple)) else [lr] * len(params)
    if len(rates) != len(params):
        raise ValueError("one learning rate per parameter tensor")
    wanted = set(record_steps if record_steps is not None else log_spaced_steps(steps))
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
                # one cheap bound per tensor: NaN fails both comparisons, so this also
                # catches non-finite gradients (diagnosed below, only on failure)
                if not all(-max_abs <= lo and hi <= max_abs for lo, hi in map(torch.aminmax, params)):
                    if not all(bool(torch.isfinite(g).all()) for g in grads):
                        raise TrainingDiverged(f"{describe}: non-finite gradient at step {step}")
                    raise TrainingDiverged(f"{describe}: weights exploded (|w| > {max_abs:g}) at step {step}")
            if step % 100 == 0:
                bar.update(min(100, steps - bar.n))
    return history
