"""Digits (MNIST stand-in): zero-plane distances to training images, adaptive vs kernel regime."""

from __future__ import annotations

import numpy as np

from theory.activations import Activation

from ..data import digits
from .ensemble import ADAPTIVE, KERNEL, Ensemble, record_schedule
from .planes import image_distances, pinning_statistics, plane_clusters, plane_coordinates


def digits_experiment(act: Activation, images: int, width: int, steps: int, seed: int = 0,
                      classes: tuple[int, int] = (0, 1), lr_factor: float = 1.0) -> dict:
    """Train adaptive and kernel networks on two digit classes (labels +-1) and return the
    zero-plane distances to the nearest training image at init and at the end, the sign-rule
    samples and the DBSCAN clusters of planes."""
    x, labels = digits(classes, images, seed)
    y = np.where(labels == classes[0], 1.0, -1.0)
    load = 1.0 + float(np.mean(np.sum(x**2, 1)))
    ens = Ensemble(act, x, y, width, [(ADAPTIVE, seed), (KERNEL, seed)], lr_factor=lr_factor / load)
    traj = ens.train(steps, record_schedule(steps, 40), describe=f"{act.label} digits")
    out = {"images": images, "width": width, "steps": steps, "classes": classes, "lr": ens.rates,
           "loss_end": [float(0.5 * np.mean(r**2)) for r in traj.residuals[-1]],
           "distance": {"init": image_distances(traj.states[0, 0], x),
                        "adaptive": image_distances(traj.states[-1, 0], x),
                        "kernel": image_distances(traj.states[-1, 1], x)}}
    stats = pinning_statistics(traj, 0)
    out["sign_rule"] = (stats.sign_rule_fraction, stats.samples)
    clusters = {}
    for name, state in (("init", traj.states[0, 0]), ("adaptive", traj.states[-1, 0]),
                        ("kernel", traj.states[-1, 1])):
        c = plane_coordinates(state)
        labels_ = plane_clusters(c["theta"], c["beta"] / float(np.median(np.linalg.norm(x, axis=1))))
        clusters[name] = (int(labels_.max() + 1), int(np.sum(labels_ >= 0)))
    out["clusters"] = clusters
    return out
