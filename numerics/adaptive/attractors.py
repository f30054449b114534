r"""The `attractor-stability` check (spectral_bias.md 5.2, 5.4, 5.5).

Two kinds of evidence, each judged:

* **frozen field** (the premise of the gap equation, 1D data, sigma growing at most linearly):
  planes placed next to every predicted equilibrium (exact roots with the sign of
  :math:`G'`; kinks classified by their Filippov one-sided velocities) are held by the stable
  ones and lost by the unstable ones;
* **trained adaptive networks** (kink at 0): the pinned, clustered fixed points the adaptive
  flow reaches.  Along the late trajectory the pinned kinks must be Filippov-attracting
  (:math:`g'(0^-) > 0 > g'(0^+)`, sufficiency of 5.2); at the pinned fixed point (refined onto
  r = 0 with the pinned planes held on their data points) the Filippov-reduced flow is
  linearized and its predicted decay compared with the simulated sliding flow.

The control flips every stability prediction (stable <-> unstable) on the same measurements.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from theory.activations import Activation
from theory.errors import IbcheckError

from ..checks import JUDGED, REPORTED, Check, CheckResult, Context, Plot, Series, judged_result
from ..data import CsvData
from ..verdicts import Criterion, Measurement, Premise, at_least, at_most, control
from .field import HELD, LOST, placement_test
from .fixed_points import pinned_pairs, refine_pinned, sliding_stability
from .planes import PINNED_EPS, pinning_statistics
from .setup import (E7_OPTIONS, FIELD_OPTIONS, data_name, data_xy, diverges_in_field, e7_runs, e7_setup,
                    kink_at_zero, no_motion, one_dimensional_premise, regime_premise)

#: sharpness of the planes placed next to predicted equilibria (1/rho well below the data spacing)
PLACEMENT_SHARPNESS = (8.0, 16.0, 32.0)
#: start distances (in u) of the placed planes from the equilibrium
PLACEMENT_DELTAS = (0.1, 0.2)
#: fewest conclusive placements for the frozen-field criterion
MIN_CONCLUSIVE = 8
#: placements that behave as predicted: 90% leaves room for equilibria that move with the step size
AGREEMENT = 0.9
#: pinned kinks along the late trajectory that are Filippov-attracting (the sign rule's 99% of
#: P10 less the pairs whose other-data term is as large as the own term near release)
ATTRACTING = 0.9
#: GD steps of the perturbation test at the pinned fixed point
SLIDING_STEPS = 300
#: |measured - predicted| decay factor allowed: rounding adds ~steps x 1e-16 / delta <= 3e-3
DECAY_TOLERANCE = 1e-2
#: the late trajectory: records after this fraction of the horizon
LATE = 0.5


@lru_cache(maxsize=16)
def _placements(act: Activation, data: CsvData | None, steps: int) -> dict:
    x, y = data_xy(data)
    return placement_test(act, x[:, 0], y, PLACEMENT_SHARPNESS, steps, PLACEMENT_DELTAS)


@lru_cache(maxsize=16)
def _fixed_point(act: Activation, setup, member: int) -> dict:
    traj = e7_runs(act, setup)
    state = traj.states[-1, member]
    pairs = pinned_pairs(state, traj.x, PINNED_EPS)
    try:
        fixed = refine_pinned(act, traj.x, traj.y, state, pairs)
    except IbcheckError as err:
        return {"error": str(err), "pinned_pairs": len(pairs)}
    return sliding_stability(act, traj.x, traj.y, fixed, pairs, SLIDING_STEPS)


def applies(act: Activation) -> str | None:
    if no_motion(act):
        return no_motion(act)
    return None


@dataclass
class Evidence:
    """Criteria, the control, premises, details and plots of one kind of evidence."""

    criteria: list
    control: Criterion
    premises: list
    details: dict
    plots: list


def run(act: Activation, context: Context) -> CheckResult:
    setup = e7_setup(context)
    steps = context.option("field_steps")
    x, _ = data_xy(setup.data)
    kinked = kink_at_zero(act) is not None
    parts, described = [], []
    if x.shape[1] == 1:
        parts.append(_frozen_field(act, setup.data, steps, context))
        described.append(f"frozen-field placements at sharpness {', '.join(f'{r:g}' for r in PLACEMENT_SHARPNESS)}, "
                         f"u* +- {', '.join(f'{d:g}' for d in PLACEMENT_DELTAS)} ({steps} steps)")
    if kinked:
        parts.append(_trained_fixed_points(act, setup, context))
        described.append(f"pinned fixed points of E7's adaptive runs: {setup.describe()}")
    if not parts:
        nothing = Criterion("placements behave as predicted", 1.0, Measurement.exact(float("nan")), at_least(AGREEMENT))
        return judged_result("attractor-stability", act, [nothing], None,
                             [one_dimensional_premise(x, "the frozen-field gap equation (no kink at 0 for trained "
                                                         "fixed points)")], setup=data_name(setup.data))
    details = {"data": data_name(setup.data)}
    for part in parts:
        details.update(part.details)
    return judged_result("attractor-stability", act, [c for p in parts for c in p.criteria], parts[0].control,
                         [q for p in parts for q in p.premises], setup="; ".join(described), details=details,
                         plots=[q for p in parts for q in p.plots])


def _frozen_field(act: Activation, data, steps: int, context: Context) -> Evidence:
    """Planes placed next to predicted equilibria of the frozen-field gap equation (1D data)."""
    details, plots = {}, []
    diverges = diverges_in_field(act)
    premises = [Premise("frozen field defined: sigma grows at most linearly", act.growth.reason, diverges is None,
                        "in a frozen residual field the neuron's scale blows up in finite time")]
    place = {"placements": 0}
    if diverges is None:
        context.progress("planes placed next to predicted equilibria (frozen field)")
        place = _placements(act, data, steps)
    agree = Measurement.exact(float("nan"))
    if place["placements"]:
        sep, predicted, hit = place["separated"], place["predicted_stable"], place["agree"]
        agree = Measurement.proportion(int(hit[sep].sum()), int(sep.sum())) if sep.any() else agree
        for label, mask in (("stable", predicted & sep), ("unstable", ~predicted & sep)):
            details[f"{label}_conclusive"] = int(mask.sum())
            details[f"{label}_agreement"] = float(hit[mask].mean()) if mask.any() else float("nan")
        details["outside_premise"] = int((~sep).sum())
        plots.append(_placement_plot(place))
    details["placements"] = place["placements"]
    conclusive = details.get("stable_conclusive", 0) + details.get("unstable_conclusive", 0)
    premises.append(Premise(f"conclusive placements (rho nearly frozen; needs >= {MIN_CONCLUSIVE})", conclusive,
                            conclusive >= MIN_CONCLUSIVE, "the scalar gap equation's premise fails for the others"))
    criterion = Criterion(
        "frozen field: placements next to predicted equilibria that behave as predicted (held / lost), sharpness "
        f"{', '.join(f'{r:g}' for r in PLACEMENT_SHARPNESS)}", 1.0, agree, at_least(AGREEMENT),
        "stable: pulled below 0.8 of the start distance (kinks: onto the plane); unstable: pushed beyond 1.25 of it; "
        "judged after 5 relaxation times; 10% for equilibria that move with the step size")
    wrong = control("opposite stability sign: predicted-stable equilibria lose planes, unstable ones hold them",
                    0.0, agree, at_most(1 - AGREEMENT))
    return Evidence([criterion], wrong, premises, details, plots)


def _trained_fixed_points(act: Activation, setup, context: Context) -> Evidence:
    """Criteria on the pinned fixed points of trained adaptive networks (kink at 0)."""
    criteria, premises, details, plots = [], [], {}, []
    context.progress(f"E7: {setup.seeds} adaptive + {setup.seeds} kernel networks, {setup.steps} steps")
    traj = e7_runs(act, setup)
    adaptive = traj.member("adaptive")
    late = np.searchsorted(traj.steps, LATE * traj.steps[-1])
    tail = dataclasses.replace(traj, steps=traj.steps[late:], states=traj.states[late:],
                               residuals=traj.residuals[late:])
    stats = [pinning_statistics(tail, m) for m in adaptive]
    counted = [s.attracting_fraction for s in stats if s.samples]
    attracting = Measurement.mean(counted) if counted else Measurement.exact(float("nan"))
    criteria.append(Criterion(
        "trained adaptive nets, late trajectory: pinned kinks that are Filippov-attracting, g'(0-) > 0 > g'(0+) "
        "(5.2), mean over seeds", 1.0, attracting, at_least(ATTRACTING),
        "sufficiency of the sliding mode; samples as for the sign rule (|gap| < 1e-4, |r_k| > 1e-4)", min_n=3))
    samples = [s.samples for s in stats]
    premises.append(Premise("pinned-kink samples on the late trajectory per seed (fewest; needs >= 10)", min(samples),
                            min(samples) >= 10, "no kink pinned late in training"))
    fixed = []
    for m in adaptive[:3]:
        context.progress(f"pinned fixed point of adaptive seed {m}")
        fixed.append(_fixed_point(act, setup, m))
    reached = [f for f in fixed if "error" not in f]
    errors = [f["max_decay_error"] for f in reached if np.isfinite(f["max_decay_error"])]
    decay = Measurement.exact(max(errors)) if errors else Measurement.exact(float("nan"))
    criteria.append(Criterion(
        "pinned fixed points: simulated sliding flow vs the linearized Filippov-reduced flow, largest decay error "
        f"over {len(fixed)} seeds (units of delta)", 0.0, decay, at_most(DECAY_TOLERANCE),
        "linear theory vs projected GD at delta <= 1e-6: rounding ~300 x 1e-16/delta <= 3e-3, nonlinearity ~delta"))
    top = max((float(np.max(f["transverse"])) for f in reached if len(f["transverse"])), default=float("nan"))
    criteria.append(Criterion(
        "pinned fixed points: largest transverse eigenvalue of the Filippov-reduced flow", "negative",
        Measurement.exact(top), at_most(0.0), "negative semidefinite by construction at r = 0 (a global minimum "
        "of the loss): reported, not evidence", judged=False))
    premises.append(regime_premise(setup))
    premises.append(Premise("pinned fixed points reached by Gauss-Newton (seeds)", f"{len(reached)} of {len(fixed)}",
                            len(reached) == len(fixed), "; ".join(f["error"] for f in fixed if "error" in f)))
    details["late_trajectory"] = [s.summary() for s in stats]
    details["fixed_points"] = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.items()
                                if k not in ("predicted_decay", "measured_decay")} for f in fixed]
    if reached:
        plots.append(_decay_plot(reached))
    wrong = control("opposite stability sign: pinned kinks repel, g'(0-) < 0 < g'(0+)", 0.0, attracting,
                    at_most(1 - ATTRACTING))
    return Evidence(criteria, wrong, premises, details, plots)


def _placement_plot(place: dict) -> Plot:
    """Each placement's end distance from its equilibrium over its start distance (the judged
    quantity) vs where it started, against the judged thresholds; placements outside the premise
    of the scalar equation are drawn apart (not judged)."""
    start = place["start_u"] - place["target_u"]
    ratio = place["relative_distance"]
    predicted, sep, kink = place["predicted_stable"], place["separated"], place["kind"] == "kink"
    series = [Series(label, start[mask].tolist(), ratio[mask].tolist(), "points") for label, mask in (
        ("predicted stable", predicted & sep), ("predicted unstable", ~predicted & sep),
        (f"outside the premise ({REPORTED})", ~sep)) if mask.any()]
    ends = [float(start.min()), float(start.max())]
    series += [Series(f"stable: below {HELD:g} ({JUDGED})", ends, [HELD] * 2, "prediction"),
               Series(f"unstable: above {LOST:g} ({JUDGED})", ends, [LOST] * 2, "prediction")]
    return Plot("Planes placed next to predicted equilibria (frozen field)", "start u - u*",
                "end distance / start distance", series, yscale="log",
                note="u = pre-activation at the data point, distance in g = u/rho from the equilibrium at the "
                     "sharpness reached" + (f"; kinks ({int(kink.sum())} placements) are judged by landing on the "
                                            "plane (stable) or crossing it (unstable) instead" if kink.any() else ""))


def _decay_plot(reached: list[dict]) -> Plot:
    r"""The judged decay criterion per transverse direction: |simulated - linearized decay
    :math:`(1 + \eta\lambda_j)^{\rm steps}`| (units of delta; log axis) against the rate
    :math:`|\lambda_j|` (log axis: the rates span decades), below the judged bound; directions
    decayed below 1e-3 are not judged and not drawn."""
    series = []
    for i, f in enumerate(reached):
        resolved = np.asarray(f["predicted_decay"]) > 1e-3
        error = np.abs(np.asarray(f["measured_decay"]) - np.asarray(f["predicted_decay"]))
        series.append(Series(f"fixed point {i + 1} ({f['steps']} projected GD steps)",
                             np.abs(np.asarray(f["transverse"])[resolved]).tolist(), error[resolved].tolist(),
                             "points"))
    rates = [v for s in series for v in s.x if v > 0]
    ends = [min(rates, default=1e-6), max(rates, default=1.0)]
    series.append(Series(f"<= {DECAY_TOLERANCE:g} ({JUDGED}: largest error)", ends, [DECAY_TOLERANCE] * 2,
                         "prediction"))
    return Plot("Pinned fixed points: |simulated - linearized| sliding-flow decay", "transverse rate |lambda_j|",
                "decay error (units of delta)", series, xscale="log", yscale="log",
                note="each point a transverse direction of the Filippov-reduced flow (its eigenvalue lambda_j <= 0 "
                     "is reported, not judged); errors of exactly 0 are not drawn on the log axis")


CHECK = Check("attractor-stability", "Stability of zero-plane equilibria and pinned fixed points", "5.2, 5.4, 5.5",
              applies, run, {**E7_OPTIONS, "field_steps": FIELD_OPTIONS["field_steps"]})
