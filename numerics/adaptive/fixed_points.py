r"""Pinned fixed points of the full gradient flow and the linear stability of the Filippov-reduced
(sliding) flow there (spectral_bias.md 5.2, 5.5 step 4)."""

from __future__ import annotations

import numpy as np
import torch
# reverse mode one output row at a time (a few dozen rows here): the same rows as torch.func.jacrev,
# whose first call imports torch._dynamo (about a second of CPU per process)
from torch.autograd.functional import jacobian

from theory.activations import Activation
from theory.errors import IbcheckError

from ..networks import as_tensor
from ..torch_activation import torch_activation
from ..training import gradient_descent

#: smallest displacement for which the perturbation test is still above float64 resolution
MIN_PERTURBATION = 1e-11


def _flat_loss(act: Activation, x: torch.Tensor, y: torch.Tensor, width: int):
    sigma = torch_activation(act)
    d = x.shape[1]

    def residual(p):
        rows = p.view(width, d + 2)
        return sigma(x @ rows[:, 1:1 + d].T + rows[:, 1 + d]) @ rows[:, 0] - y

    def loss(p):
        r = residual(p)
        return 0.5 * (r * r).mean()
    return residual, loss


def pinned_pairs(state: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """(neuron, point) pairs whose zero-plane passes within ``eps`` of the point, shape (P, 2)."""
    w, b = state[:, 1:-1], state[:, -1]
    gaps = (w @ x.T + b[:, None]) / np.linalg.norm(w, axis=1)[:, None]
    return np.argwhere(np.abs(gaps) < eps)


def sliding_constraints(state: np.ndarray, x: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    r"""Rows of the linear constraints :math:`w_i\cdot x_k + b_i = 0` of pinned pairs (i, k) in the
    flattened parameters (rows :math:`(v_i, w_i, b_i)`): the pinned surface S, a linear subspace."""
    width, cols = state.shape
    rows = np.zeros((len(pairs), width * cols))
    for r, (i, k) in enumerate(pairs):
        rows[r, i * cols + 1:(i + 1) * cols - 1] = x[k]
        rows[r, (i + 1) * cols - 1] = 1.0
    return rows


def refine_pinned(act: Activation, x, y, state: np.ndarray, pairs: np.ndarray, iterations: int = 60,
                  tol: float = 1e-12) -> np.ndarray:
    r"""A pinned fixed point next to a trained state: damped Gauss-Newton (minimum-norm) on the
    stacked system :math:`(r, C p) = 0`, C the pinned-pair constraints (:func:`sliding_constraints`):
    the residual vanishes and every pinned plane passes exactly through its data point.  Raises
    :class:`IbcheckError` when it does not get there."""
    xt, yt = as_tensor(x), torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    residual, _ = _flat_loss(act, xt, yt, state.shape[0])
    C = torch.as_tensor(sliding_constraints(state, np.asarray(x, dtype=float), pairs))

    def stacked(p):
        return torch.cat([residual(p), C @ p])

    p = torch.as_tensor(state.ravel(), dtype=torch.float64).clone()
    r = stacked(p)
    for _ in range(iterations):
        if float(r.abs().max()) < tol:
            break
        step = torch.as_tensor(np.linalg.lstsq(jacobian(stacked, p).numpy(), r.numpy(), rcond=None)[0])
        alpha, norm = 1.0, float(r.norm())
        while alpha > 1e-6:
            trial = p - alpha * step
            r_trial = stacked(trial)
            if float(r_trial.norm()) < norm:
                p, r = trial, r_trial
                break
            alpha /= 2
        else:
            break
    if float(r.abs().max()) >= tol:
        raise IbcheckError(f"{act.label}: Gauss-Newton did not reach a pinned interpolating fixed point "
                           f"(max |r|, |C p| = {float(r.abs().max()):.2e}) from the trained network")
    return p.numpy().reshape(state.shape)


def sliding_stability(act: Activation, x, y, state: np.ndarray, pairs: np.ndarray, steps: int,
                      delta: float = 1e-6) -> dict:
    r"""Linear stability of the Filippov-reduced flow at a pinned interpolating state (5.2, 5.5 step 4).

    While the pinned planes slide, the Filippov field is the convex combination of the two
    one-sided fields that keeps every :math:`g_{ik} = w_i\cdot x_k + b_i` at 0; the two differ
    only along the constraint normal :math:`(x_k, 1)` of neuron i, so the sliding field is the
    orthogonal projection :math:`P_S F` onto the (linear) pinned surface S, whichever one-sided
    :math:`\sigma'(0)` F uses.  With T an orthonormal basis of S, the reduced flow
    :math:`\dot q = -T^\top\nabla L(p_0 + Tq)` has at r = 0 the Jacobian
    :math:`-(JT)^\top(JT)/N` (J: residual Jacobian; JT does not depend on :math:`\sigma'(0)`).
    Its nonzero eigenvalues are the transverse rates: negative semidefinite by construction at
    a global minimum (reported, not evidence).  The evidence is the simulation: projected GD from
    the state displaced by ``delta`` along every transverse eigenvector; each component must
    follow :math:`(1 + \eta\lambda_j)^{\rm steps}` (error in units of ``delta``).  ``delta`` is cut
    to 1% of the smallest distance of an *unpinned* pre-activation from 0 (no other plane may
    cross a data point)."""
    xt, yt = as_tensor(x), torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    width, cols = state.shape
    residual, loss = _flat_loss(act, xt, yt, width)
    p0 = torch.as_tensor(state.ravel(), dtype=torch.float64)
    C = sliding_constraints(state, np.asarray(x, dtype=float), pairs)
    _, cs, cvt = np.linalg.svd(C) if len(C) else (None, np.zeros(0), np.zeros((0, p0.numel())))
    c_rank = int(np.sum(cs > 1e-10 * max(cs.max(initial=0.0), 1.0)))
    T = (cvt[c_rank:] if len(C) else np.eye(p0.numel())).T                  # (P, dim S), orthonormal
    JT = jacobian(residual, p0).numpy() @ T
    N = len(yt)
    reduced = -(JT.T @ JT) / N
    _, singular, vt = np.linalg.svd(JT)
    rank = int(np.sum(singular > singular[0] * 1e-10)) if len(singular) else 0
    rows = vt[:rank]
    values, vectors = np.linalg.eigh(rows @ reduced @ rows.T)
    directions = rows.T @ vectors                                           # in q coordinates
    pre = np.asarray(x, dtype=float) @ state[:, 1:-1].T + state[:, -1]      # (N, width)
    free = np.ones_like(pre, dtype=bool)
    free[pairs[:, 1], pairs[:, 0]] = False
    nearest = float(np.min(np.abs(pre[free]))) if free.any() else np.inf
    delta = min(delta, 1e-2 * nearest)
    lr = 1.0 / float(np.max(np.abs(values))) if rank else 0.0
    predicted = (1 + lr * values) ** steps
    resolved = predicted > 1e-3
    measured, error = np.full(len(values), np.nan), float("nan")
    if rank and delta >= MIN_PERTURBATION:
        basis = torch.as_tensor(T)
        q = torch.as_tensor(delta * directions.sum(1)).clone().requires_grad_(True)
        gradient_descent([q], lambda: loss(p0 + basis @ q), steps, lr, record_steps=[0],
                         describe=f"{act.label} sliding perturbation")
        measured = directions.T @ q.detach().numpy() / delta
        if resolved.any():
            error = float(np.max(np.abs(measured[resolved] - predicted[resolved])))
    return {"parameters": int(p0.numel()), "pinned_pairs": len(pairs), "surface_dimension": T.shape[1],
            "rank": rank, "data": N, "transverse": values, "lr": lr, "steps": steps, "delta": delta,
            "nearest_unpinned": nearest, "predicted_decay": predicted, "measured_decay": measured,
            "max_decay_error": error, "resolved": int(resolved.sum())}
