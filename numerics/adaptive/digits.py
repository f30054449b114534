"""Digits (MNIST stand-in): zero-plane distances to training images and the images they share,
adaptive vs kernel regime, several seeds trained together."""

from __future__ import annotations

import numpy as np

from theory.activations import Activation

from ..data import digits
from .ensemble import KERNEL, Ensemble, Regime, record_schedule
from .planes import pinning_statistics, plane_clusters, plane_coordinates, plane_gaps

#: a unit is pinned when its zero-plane is this close to an image, relative to the median image
#: norm (about E7's 1e-4 at the digits' scale); by chance (init) ~0.4% of units
DIGITS_EPS = 1e-5


def image_distances(state: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Per hidden unit: :math:`\min_j|\theta\cdot x_j - \beta|` over the images, relative to the
    median image norm, and the image j attaining it."""
    gaps = np.abs(plane_gaps(state, x))
    return gaps.min(-1) / float(np.median(np.linalg.norm(x, axis=1))), gaps.argmin(-1)


def shared_images(distance: np.ndarray, host: np.ndarray, images: int, eps: float = DIGITS_EPS) -> dict:
    r"""Pinned units (distance < ``eps``) that share their image with another pinned unit: the
    d-dimensional form of a cluster at a data point (planes through one image; in d > 1 they
    still rotate about it, so they need not coincide).  ``chance``: the fraction expected if the
    k pinned units picked their images uniformly at random, :math:`1 - (1 - 1/M)^{k-1}`."""
    pinned = host[distance < eps]
    _, counts = np.unique(pinned, return_counts=True)
    k = len(pinned)
    return {"pinned": k, "shared": int(counts[counts >= 2].sum()), "images_hit": len(counts),
            "chance": float(1 - (1 - 1 / images) ** (k - 1)) if k else float("nan")}


def digits_experiment(act: Activation, images: int, width: int, steps: int, seeds: int = 1, seed: int = 0,
                      classes: tuple[int, int] = (0, 1), lr_factor: float = 1.0,
                      adaptive: Regime = Regime("adaptive", 1.0, 0.05, 0.05)) -> dict:
    """Train ``seeds`` adaptive and as many kernel networks on two digit classes (labels +-1, the
    images drawn with ``seed``) and return per seed the zero-plane distances to the nearest
    training image at init and at the end, the images shared by pinned units, the sign-rule
    samples, the DBSCAN clusters of coincident planes and the final losses."""
    x, labels = digits(classes, images, seed)
    y = np.where(labels == classes[0], 1.0, -1.0)
    load = 1.0 + float(np.mean(np.sum(x**2, 1)))
    members = [(adaptive, seed + i) for i in range(seeds)] + [(KERNEL, seed + i) for i in range(seeds)]
    ens = Ensemble(act, x, y, width, members, lr_factor=lr_factor / load)
    traj = ens.train(steps, record_schedule(steps, 40), describe=f"{act.label} digits")
    scale = float(np.median(np.linalg.norm(x, axis=1)))
    runs = []
    for a, k in zip(traj.member("adaptive"), traj.member("kernel")):
        run = {"loss_end": {"adaptive": float(0.5 * np.mean(traj.residuals[-1, a] ** 2)),
                            "kernel": float(0.5 * np.mean(traj.residuals[-1, k] ** 2))},
               "loss_start": float(0.5 * np.mean(traj.residuals[0, a] ** 2))}
        for name, state in (("init", traj.states[0, a]), ("adaptive", traj.states[-1, a]),
                            ("kernel", traj.states[-1, k])):
            distance, host = image_distances(state, x)
            c = plane_coordinates(state)
            labels_ = plane_clusters(c["theta"], c["beta"] / scale)
            run[name] = {"distance": distance, "shared": shared_images(distance, host, len(x)),
                         "coincident_clusters": int(labels_.max() + 1), "coincident_units": int(np.sum(labels_ >= 0))}
        stats = pinning_statistics(traj, a)
        run["sign_rule"] = (stats.sign_rule_fraction, stats.samples)
        runs.append(run)
    return {"images": images, "width": width, "steps": steps, "classes": classes, "lr": ens.rates, "runs": runs}
