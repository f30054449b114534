r"""Activation specificity: the kernel-regime bias is shaped by the activation (the paper's core claim).

Each activation's random-feature network is fitted to the same data under the same Gaussian init
(w, b ~ N(0, 1), so that every tempered sigma, sin included, has a kernel) and compared with every
activation's exact infinite-width prediction (:mod:`numerics.infinite_width`).  With
:math:`d_{ij}` the sup distance (relative to max|y|) of activation i's network to activation j's
prediction, the claim is

.. math:: m_{ij} = d_{ij} - d_{ii} > 0 \quad (j \ne i):

every network is closer to its own predicted interpolant than to any other, with distances
measured as mean squared differences on a grid of the data hull (relative to :math:`\max|y|^2`):
:math:`d_{ij} - d_{ii} = \|p_j - p_i\|^2 - 2\langle f_i - p_i, p_j - p_i\rangle`, whose noise is
only the projection of the Monte Carlo error on the difference of the predictions (far smaller
than a sup distance's).  The confusion matrix also reports the sup distances.  One feature draw per
activation is split into ``seeds`` disjoint sub-networks (independent replicates), so every
:math:`m_{ij}` has a Student-t interval; a pair whose interval contains 0 cannot be separated at
this width and is reported as an ``inconclusive`` pair.  The check for activation A judges the
pairs involving A (its row and its column of the confusion matrix) and reports the rest.
"""

from __future__ import annotations

import hashlib

import numpy as np

import theory
from theory.activations import Activation
from theory.errors import IbcheckError

from . import infinite_width
from .checks import (JUDGED, Check, CheckResult, Context, Option, Plot, Series, judged_result, measured_series,
                     positive_float, positive_int, register)
from .kernel_regime import (DataSet, dataset, fit_applies, hull_grid, init_text, mean_square_distance, sup_distance,
                            width_study)
from .networks import Init
from .verdicts import Criterion, Measurement, Premise, at_least, control

#: the common init: every tempered activation (sin and cos too) has a kernel under Gaussian weights;
#: at N(0, 1) tanh and erf are nearly linear on the data and their predictions differ by 0.2% (RMS),
#: at N(0, 4) by 0.9%
SPECIFICITY_INIT = Init("gaussian", s_w=2.0, s_b=2.0)
#: the default set: the activations named in issue 15 and one user formula (softsign)
DEFAULT_SET = "relu;tanh;gelu;erf;sin;x/(1+abs(x))"


def _activation_set(text: str) -> list[str]:
    names = [t.strip() for t in text.split(";") if t.strip()]
    if len(names) < 1:
        raise ValueError("give at least one activation, separated by ';'")
    return names


def activation_offset(act: Activation) -> int:
    """A seed offset fixed by the activation's expression, so that its feature draw does not depend
    on which other activations are in the set or in which order."""
    return int(hashlib.sha256(str(act.bound).encode()).hexdigest()[:7], 16)


_FITS: dict[tuple, list[np.ndarray]] = {}


def replicate_fits(act: Activation, ds: DataSet, grid: np.ndarray, target: np.ndarray, width: int, seeds: int,
                   seed: int, init: Init) -> list[np.ndarray]:
    """The fits of the ``seeds`` disjoint sub-networks of one draw of ``width`` neurons of ``act`` on the
    grid; remembered per process (every activation's check fits the networks of the whole set)."""
    key = (act.label, str(act.bound), infinite_width._digest(ds.x, ds.y, grid), width, seeds, seed, init)
    if key not in _FITS:
        study = width_study(act, ds.x, ds.y, grid, target, [width // seeds, width], init,
                            seed + activation_offset(act), width, desc=f"{act.label} (specificity)")
        _FITS[key] = study.base_fits
    return _FITS[key]


def confusion(acts: list[Activation], ds: DataSet, grid: np.ndarray, width: int, seeds: int, seed: int,
              init: Init = SPECIFICITY_INIT):
    """Mean squared differences d[i][j][r] (relative to max|y|^2) and sup distances (relative to
    max|y|) of activation i's sub-network r to activation j's exact prediction,
    and the predictions' quadrature errors."""
    if width % seeds:
        raise IbcheckError(f"width {width} must be a multiple of seeds = {seeds}")
    preds = [infinite_width.prediction(a, init, ds.x, ds.y, grid) for a in acts]
    scale = float(np.max(np.abs(ds.y)))
    d = np.zeros((len(acts), len(acts), seeds))
    sup = np.zeros_like(d)
    for i, act in enumerate(acts):
        fits = replicate_fits(act, ds, grid, preds[i].values, width, seeds, seed, init)
        for j, p in enumerate(preds):
            d[i, j] = [mean_square_distance(fit, p.values, scale) for fit in fits]
            sup[i, j] = [sup_distance(fit, p.values, scale) for fit in fits]
    return d, sup, [p.quadrature_error for p in preds]


def run_specificity(act: Activation, context: Context) -> CheckResult:
    names = context.option("activations")
    acts = [act]
    for name in names:
        other = theory.activation(name)
        if all(str(other.bound) != str(a.bound) for a in acts):
            acts.append(other)
    for a in acts:
        why = fit_applies(a)
        if why:
            raise IbcheckError(f"activation-specificity: {a.label} has no kernel ({why})")
    if len(acts) < 2:
        raise IbcheckError("activation-specificity needs at least two different activations (option activations)")
    ds = dataset(context, 1)
    grid = hull_grid(ds.x, context.option("spacing"))
    width, seeds = context.option("width"), context.option("seeds")
    d, sup, quad_errors = confusion(acts, ds, grid, width, seeds, context.seed)
    labels = [a.label for a in acts]
    criteria, pairs, margins = [], {}, {}
    for i in range(len(acts)):
        for j in range(len(acts)):
            if i == j:
                continue
            margin = Measurement.mean(d[i, j] - d[i, i])
            involves = i == 0 or j == 0
            crit = Criterion(f"{labels[i]} network: closer to its own prediction than to {labels[j]}'s "
                             f"(d_ij - d_ii, mean squared / max|y|^2)", "> 0", margin, at_least(0.0),
                             "interval over disjoint sub-networks",
                             judged=involves, min_n=2)
            criteria.append(crit)
            margins[i, j] = margin
            pairs[f"{labels[i]} | {labels[j]}"] = {"margin": margin.estimate, "interval": list(margin.interval),
                                                   "outcome": {"pass": "separated", "fail": "confused",
                                                               "undecided": "inconclusive"}[crit.outcome],
                                                   "judged": involves}
    nearest = min(range(1, len(acts)), key=lambda j: float(np.mean(d[0, j])))
    ctrl = control(f"{labels[0]} network closer to {labels[nearest]}'s prediction than to its own", labels[nearest],
                   Measurement.mean(d[0, 0] - d[0, nearest]), at_least(0.0),
                   "the swapped assignment, on the nearest other activation")
    worst = max(quad_errors)
    premises = [Premise("largest quadrature error of the predictions (relative to max|y|)", worst, worst <= 1e-3,
                        "must be far below the separations (<= 0.1% of max|y|)"),
                Premise("features per data point in a sub-network", width // seeds / len(ds.y),
                        width // seeds >= 10 * len(ds.y))]
    mean = sup.mean(axis=2)
    others = lambda i: [j for j in range(len(acts)) if j != i]  # noqa: E731
    plots = [Plot(f"separation margins d_ij - d_ii of each network i from prediction j, {seeds} sub-networks of "
                  f"{width // seeds:g}", "prediction j", "d_ij - d_ii (mean square / max|y|^2)",
                  [measured_series(f"{labels[i]} network" + ("" if i == 0 else f", only its {labels[0]} pair judged"),
                                   others(i), [margins[i, j] for j in others(i)]) for i in range(len(acts))]
                  + [Series(f"margin > 0 ({JUDGED})", [0, len(acts) - 1], [0.0, 0.0], "prediction")],
                  note="x: " + ", ".join(f"{k} = {lab}" for k, lab in enumerate(labels)) + "; error bars: the 95% "
                       "Student-t interval over the sub-networks that each criterion judges")]
    return judged_result(
        "activation-specificity", act, criteria, ctrl, premises,
        setup=f"{ds.label}, {init_text(SPECIFICITY_INIT)}, {len(acts)} activations, one draw of {width:g} each "
              f"split into {seeds} sub-networks, {len(grid)} hull points",
        details={"activations": labels, "confusion_sup_mean": mean.tolist(),
                 "confusion_mean_square": d.mean(axis=2).tolist(), "confusion_mean_square_per_replicate": d.tolist(),
                 "pairs": pairs, "inconclusive_pairs": [k for k, v in pairs.items() if v["outcome"] == "inconclusive"],
                 "confused_pairs": [k for k, v in pairs.items() if v["outcome"] == "confused"],
                 "quadrature_errors": quad_errors, "init": init_text(SPECIFICITY_INIT)},
        plots=plots, parameters=ds.record())


SPECIFICITY = register(Check(
    "activation-specificity", "Activation specificity: each network is closest to its own predicted interpolant",
    "the paper's core claim (spectral_bias.md 2, P4-P7)", fit_applies, run_specificity,
    {"activations": Option("the other activations, names or formulas separated by ';'", _activation_set,
                           _activation_set(DEFAULT_SET)),
     "width": Option("neurons per activation (one draw, split into `seeds` sub-networks)", positive_int, 300_000),
     "seeds": Option("disjoint sub-networks (replicates) per activation", positive_int, 5, 10),
     "data": Option("CSV file with a header x,y; default: the notes' toy set"),
     "spacing": Option("grid spacing of the data hull", positive_float, 0.02, 0.01)}))
