r"""Fixed points of the full gradient flow and their linear stability (spectral_bias.md 5.5 step 4)."""

from __future__ import annotations

import numpy as np
import torch

from theory.activations import Activation
from theory.dynamics import kinks
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


def refine_to_interpolation(act: Activation, x, y, state: np.ndarray, iterations: int = 60,
                            tol: float = 1e-12) -> np.ndarray:
    r"""Damped Gauss-Newton (minimum-norm) steps :math:`p \leftarrow p - \alpha J^+ r`, with
    :math:`\alpha` halved until :math:`|r|` decreases, from a trained state to the nearby point
    of the interpolation manifold r = 0, a fixed point of the flow (the damping matters for
    kinked activations, whose J jumps when a kink crosses a data point).  Raises
    :class:`IbcheckError` when it does not get there."""
    from torch.func import jacrev

    xt, yt = as_tensor(x), torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    residual, _ = _flat_loss(act, xt, yt, state.shape[0])
    p = torch.as_tensor(state.ravel(), dtype=torch.float64).clone()
    r = residual(p)
    for _ in range(iterations):
        if float(r.abs().max()) < tol:
            return p.numpy().reshape(state.shape)
        step = torch.as_tensor(np.linalg.lstsq(jacrev(residual)(p).numpy(), r.numpy(), rcond=None)[0])
        alpha, norm = 1.0, float(r.norm())
        while alpha > 1e-6:
            trial = p - alpha * step
            r_trial = residual(trial)
            if float(r_trial.norm()) < norm:
                p, r = trial, r_trial
                break
            alpha /= 2
        else:
            break
    if float(r.abs().max()) < tol:
        return p.numpy().reshape(state.shape)
    raise IbcheckError(f"{act.label}: Gauss-Newton did not reach an interpolating fixed point "
                       f"(max |r| = {float(r.abs().max()):.2e}); train longer")


def transverse_stability(act: Activation, x, y, state: np.ndarray, steps: int, delta: float = 1e-6) -> dict:
    r"""Linear stability of the gradient flow :math:`F = -\nabla L` at an interpolating state.

    The Jacobian :math:`DF = -\nabla^2 L` comes from autodiff (``torch.func.hessian``).  At
    r = 0 the interpolation manifold has dimension P - N (the null space of the residual
    Jacobian J); the rescaling orbits (homogeneous :math:`\sigma`: tangent
    :math:`(-k v_i, w_i, b_i)` per neuron) lie inside it.  Those zero modes are removed by
    restricting DF to the row space of J; its eigenvalues :math:`\lambda_j` are the transverse
    rates (all negative: stable).  Simulation: GD with the stable step
    :math:`\eta = 1/\max_j|\lambda_j|` from the state displaced by ``delta`` along every
    transverse eigenvector at once; each component must shrink by the linear prediction
    :math:`(1 + \eta\lambda_j)^{\rm steps}` (compared where that is above 1e-3; the error is
    in units of ``delta``, where float64 rounding adds about steps x 1e-16/delta).

    A kink lying on a data point (a pinned plane) makes the flow one-sided there: ``delta`` is
    cut to 1% of the smallest distance of a pre-activation from a kink, and the simulation is
    skipped (error NaN) when that is below :data:`MIN_PERTURBATION`; the autodiff Jacobian is
    then the one-sided (Filippov-reduced along the pinned surface) linearization."""
    from torch.func import hessian, jacrev

    xt, yt = as_tensor(x), torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    width = state.shape[0]
    residual, loss = _flat_loss(act, xt, yt, width)
    p0 = torch.as_tensor(state.ravel(), dtype=torch.float64)
    J = jacrev(residual)(p0).numpy()
    DF = -hessian(loss)(p0).numpy()
    _, singular, vt = np.linalg.svd(J)
    rank = int(np.sum(singular > singular[0] * 1e-10))
    rows, null = vt[:rank], vt[rank:]
    values, vectors = np.linalg.eigh(rows @ DF @ rows.T)
    directions = rows.T @ vectors                                    # (P, rank), orthonormal
    manifold = np.linalg.eigvalsh(null @ DF @ null.T) if len(null) else np.zeros(0)
    symmetry = None
    k = act.homogeneity_degree
    if k is not None:
        tangents = np.zeros((width, p0.numel()))
        for i in range(width):
            tangents[i, i * state.shape[1]:(i + 1) * state.shape[1]] = np.concatenate(
                [[-k * state[i, 0]], state[i, 1:]])
        tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
        symmetry = {"max_residual_change": float(np.max(np.abs(J @ tangents.T))),
                    "max_field_change": float(np.max(np.abs(DF @ tangents.T)))}
    lr = 1.0 / float(np.max(np.abs(values)))
    predicted = (1 + lr * values) ** steps
    resolved = predicted > 1e-3
    # a kink sitting on a data point makes the field one-sided there: keep the perturbation
    # well inside the smooth region (1% of the closest pre-activation to a kink)
    pre = as_tensor(x).numpy() @ state[:, 1:-1].T + state[:, -1]
    nearest_kink = min((float(np.min(np.abs(pre - k.location))) for k in kinks(act)), default=np.inf)
    delta = min(delta, 1e-2 * nearest_kink)
    measured = np.full(len(values), np.nan)
    error = float("nan")
    if delta >= MIN_PERTURBATION:
        p = (p0 + delta * torch.as_tensor(directions.sum(1))).clone().requires_grad_(True)
        gradient_descent([p], lambda: loss(p), steps, lr, record_steps=[0], describe=f"{act.label} perturbation")
        measured = directions.T @ (p.detach().numpy() - p0.numpy()) / delta
        if resolved.any():
            error = float(np.max(np.abs(measured[resolved] - predicted[resolved])))
    return {"parameters": int(p0.numel()), "data": len(yt), "rank": rank, "transverse": values,
            "manifold": manifold, "symmetry": symmetry, "lr": lr, "steps": steps, "delta": delta,
            "nearest_kink": nearest_kink, "predicted_decay": predicted, "measured_decay": measured,
            "max_decay_error": error, "resolved": int(resolved.sum())}


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
    from torch.func import jacrev

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
        step = torch.as_tensor(np.linalg.lstsq(jacrev(stacked)(p).numpy(), r.numpy(), rcond=None)[0])
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
                           f"(max |r|, |C p| = {float(r.abs().max()):.2e}); train longer")
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
    from torch.func import jacrev

    xt, yt = as_tensor(x), torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    width, cols = state.shape
    residual, loss = _flat_loss(act, xt, yt, width)
    p0 = torch.as_tensor(state.ravel(), dtype=torch.float64)
    C = sliding_constraints(state, np.asarray(x, dtype=float), pairs)
    _, cs, cvt = np.linalg.svd(C) if len(C) else (None, np.zeros(0), np.zeros((0, p0.numel())))
    c_rank = int(np.sum(cs > 1e-10 * max(cs.max(initial=0.0), 1.0)))
    T = (cvt[c_rank:] if len(C) else np.eye(p0.numel())).T                  # (P, dim S), orthonormal
    JT = jacrev(residual)(p0).numpy() @ T
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
