r"""The `pinning` check (spectral_bias.md 5.2, 5.4; P10-P12).

Kink at 0 (hard pinning): along E7's adaptive runs, kinks within 1e-4 of a data point obey the
sign rule :math:`v r_k\kappa > 0` (P10); at the end most in-hull kinks sit on data points, none
at init, fewer in the kernel regime (P11).  Smooth :math:`\sigma` (soft pinning): in the frozen
residual field (the premise of the gap equation) planes come to rest on roots of the exact gap
equation that are stable, :math:`G'(g^*) < 0`; the local rule :math:`A\sigma''(u^*) > 0` and the
1/rho law of the offsets are judged where their premises hold and reported elsewhere.  Every
sign is read beyond its float64 rounding bound (:func:`numerics.adaptive.field.gap_velocity`):
a root whose :math:`G'` is within rounding of 0 (or overflows) has no stability, and planes at
rest there are counted apart, not as resting on unstable roots.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from theory.activations import Activation

from ..checks import REPORTED, Check, CheckResult, Context, Plot, Series, criteria_plot, judged_result
from ..data import CsvData
from ..verdicts import Criterion, Measurement, Premise, at_least, at_most, control, within
from .field import MIN_PAIRS, OFFSET_TOLERANCE, equilibrium_positions, sharpness_slopes, soft_pinning
from .planes import breakpoints, displacement, in_hull, pinned_fraction, pinning_statistics, plane_gaps
from .setup import (E7_OPTIONS, FIELD_OPTIONS, converged_premise, data_name, data_xy, diverges_in_field, e7_runs,
                    e7_setup, e9_runs, hull_premise, kernel_width_sweep, kind, kink_at_zero, kink_at_zero_applies,
                    no_motion, one_dimensional_premise, regime_premise, slope_tends_to_a_constant)

#: fewest pinned-kink samples per seed for the sign rule to say anything
MIN_SAMPLES = 10
#: fewest planes near data / at rest in the frozen field for a soft-pinning verdict
MIN_PLANES = 10
#: fewest planes at rest on a stable root at the end (soft pinning happens at all)
SETTLED = 0.2
#: sharpness values of the root-finding behind the offset finding (no simulation)
POSITION_SHARPNESS = (8.0, 32.0, 128.0)


def applies(act: Activation) -> str | None:
    """Hard pinning needs the kink at 0; smooth activations get the soft-pinning test, which
    needs at most linear growth."""
    if no_motion(act):
        return no_motion(act)
    if kind(act) == "kink":
        return kink_at_zero_applies(act)
    return diverges_in_field(act)


def run(act: Activation, context: Context) -> CheckResult:
    return _hard(act, context) if kind(act) == "kink" else _soft(act, context)


def _hull_breakpoint_plot(traj, member: int, neurons: int = 40) -> Plot:
    x = traj.x[:, 0]
    positions = breakpoints(traj.states[:, member])                      # (T, n)
    chosen = np.nonzero(in_hull(plane_gaps(traj.states[-1, member], traj.x)))[0][:neurons]
    steps = np.maximum(traj.steps, 1).astype(float)
    lines_x = [v for _ in x for v in (float(steps[0]), float(steps[-1]), None)]  # None breaks the line
    series = [Series("data points x_k", lines_x, [v for xk in x for v in (float(xk), float(xk), None)], "dashed")]
    px = np.repeat(steps[:, None], len(chosen), 1).ravel()
    py = positions[:, chosen].ravel()
    keep = np.abs(py) <= 1.2 * np.max(np.abs(x))
    series.append(Series("breakpoints (in hull at the end)", px[keep].tolist(), py[keep].tolist(), "points"))
    return Plot("Breakpoints over training vs data points (adaptive)", "GD step", "breakpoint -b/w", series,
                xscale="log", note=f"{len(chosen)} neurons whose breakpoint ends inside the data range")


def _hard(act: Activation, context: Context) -> CheckResult:
    setup = e7_setup(context)
    kappa = kink_at_zero(act)
    context.progress(f"E7: {setup.seeds} adaptive + {setup.seeds} kernel networks, {setup.steps} steps")
    traj = e7_runs(act, setup)
    x = traj.x
    adaptive, kernel = traj.member("adaptive"), traj.member("kernel")
    stats = [pinning_statistics(traj, m) for m in adaptive]
    counted = [s for s in stats if s.samples]
    sign = Measurement.mean([s.sign_rule_fraction for s in counted]) if counted else Measurement.exact(float("nan"))
    init = [pinned_fraction(traj.states[0, m], x) for m in adaptive]
    end = [pinned_fraction(traj.states[-1, m], x) for m in adaptive]
    kernel_end = [pinned_fraction(traj.states[-1, m], x) for m in kernel]
    sign_bound = 0.99 if x.shape[1] == 1 else 0.95
    criteria = [
        Criterion(f"sign rule v r_k kappa > 0 at kinks within 1e-4 of a data point (P10, {x.shape[1]}D), mean over "
                  "seeds", 1.0, sign, at_least(sign_bound), "P10's threshold, 0.99 in 1D (E7: 0.9998-1.0) and 0.95 "
                  "in 2D and up (planes pinned at two points need the two-surface rule); |r_k| > 1e-4 so the sign "
                  "is defined", min_n=3),
        Criterion("in-hull kinks within 1e-3 of a data point at the end, adaptive (P11)", "most (E8: 0.67)",
                  Measurement.mean(end), at_least(0.5), "P11's threshold (E8: 0.67)", min_n=3),
        Criterion("in-hull kinks within 1e-3 of a data point at init (P11)", 0.0, Measurement.mean(init),
                  at_most(0.05), "chance: 2e-3 x N / range of the data ~ 1% of in-hull kinks", min_n=3),
        Criterion("pinned at the end: adaptive minus kernel regime, per seed (P11)", "positive",
                  Measurement.mean(np.subtract(end, kernel_end)), at_least(0.0),
                  "the kernel regime pins only kinks that start next to a data point", min_n=3),
    ]
    details = {
        "data": data_name(setup.data), "kappa": kappa,
        "sign_rule_per_seed": [s.sign_rule_fraction for s in stats],
        "sign_rule_samples_per_seed": [s.summary() for s in stats],
        "attracting_fraction_per_seed": [s.attracting_fraction for s in stats],
        "pinned_fraction_init_per_seed": init, "pinned_fraction_end_per_seed": end,
        "kernel_pinned_fraction_end_per_seed": kernel_end,
        "median_displacement_adaptive": [displacement(traj, m) for m in adaptive],
        "median_displacement_kernel": [displacement(traj, m) for m in kernel],
        "loss_end": [float(0.5 * np.mean(traj.residuals[-1, m] ** 2)) for m in adaptive],
    }
    samples = [s.samples for s in stats]
    premises = [
        Premise("kink at 0: jump kappa of sigma'", kappa, kappa is not None and kappa != 0),
        Premise(f"pinned-kink samples per seed (fewest; needs >= {MIN_SAMPLES})", min(samples),
                min(samples) >= MIN_SAMPLES, "no kink came within 1e-4 of a data point with |r_k| > 1e-4"),
        hull_premise(traj, adaptive), converged_premise(traj, adaptive), regime_premise(setup),
    ]
    if setup.full and setup.data is None:
        context.progress("kernel regime at widths 100, 400, 1600")
        sweep = kernel_width_sweep(act, setup)
        widths = sorted(sweep)
        details["kernel_sweep"] = {str(w): {"pinned_fraction": sweep[w][0], "median_displacement": sweep[w][1]}
                                   for w in widths}
        slope = float(np.polyfit(np.log(widths), np.log([sweep[w][1] for w in widths]), 1)[0])
        criteria.append(Criterion("kernel-regime displacement vs width, log-log slope (P11: expected n^-1/2, "
                                  "not a claim of the paper)", -0.5, Measurement.exact(slope), within(-0.5, 0.2),
                                  judged=False))
    if setup.data is None:
        # both profiles judge the same claim (P10 in 1D and 2D); they differ only in size
        context.progress("E9: 2D runs")
        traj2 = e9_runs(act, setup)
        stats2 = [pinning_statistics(traj2, m) for m in range(setup.seeds)]
        counted2 = [s.sign_rule_fraction for s in stats2 if s.samples]
        details["sign_rule_2d_per_seed"] = [s.summary() for s in stats2]
        details["pinned_fraction_end_2d"] = [pinned_fraction(traj2.states[-1, m], traj2.x) for m in range(setup.seeds)]
        criteria.append(Criterion("2D sign rule (E9, 8 points in the disc), mean over seeds (P10)", 1.0,
                                  Measurement.mean(counted2) if counted2 else Measurement.exact(float("nan")),
                                  at_least(0.95), "P10's 2D threshold (planes pinned at two points need the "
                                  "two-surface rule)", min_n=3))
        premises.append(Premise("E9: pinned-kink samples per seed (fewest; needs >= 10)",
                                min(s.samples for s in stats2), min(s.samples for s in stats2) >= MIN_SAMPLES))
    wrong = control("sign rule reversed: v r_k kappa < 0 (the barrier on the wrong side)", 0.0, sign,
                    at_most(1 - sign_bound))
    return judged_result("pinning", act, criteria, wrong, premises,
                         setup=f"hard pinning (kink at 0, kappa = {kappa:g}), E7: {setup.describe()}",
                         details=details, plots=([_hull_breakpoint_plot(traj, adaptive[0])] if x.shape[1] == 1 else [])
                         + [criteria_plot("P10 and P11: sign rule and pinned fractions", "fraction", criteria[:4])],
                         parameters={"lr": traj.rates, "kernel": "s_v = 0.05, s_w = s_b = 1"})


@lru_cache(maxsize=16)
def _soft_run(act: Activation, data: CsvData | None, sharpness: tuple[float, ...], steps: int) -> dict:
    x, y = data_xy(data)
    return soft_pinning(act, x[:, 0], y, sharpness, steps)


@lru_cache(maxsize=16)
def _positions(act: Activation, data: CsvData | None) -> dict:
    x, y = data_xy(data)
    return equilibrium_positions(act, x[:, 0], y, POSITION_SHARPNESS)


def _soft(act: Activation, context: Context) -> CheckResult:
    data, sharpness, steps = context.option("data"), context.option("sharpness"), context.option("field_steps")
    x, _ = data_xy(data)
    setup = f"soft pinning ({kind(act)}) in the frozen residual field r = -y of {data_name(data)}, sharpness " \
            f"{', '.join(f'{r:g}' for r in sharpness)}, {steps} GD steps"
    premise_1d = one_dimensional_premise(x, "the frozen-field gap equation")
    if x.shape[1] != 1:
        nothing = Criterion("planes at rest on stable roots", 1.0, Measurement.exact(float("nan")), at_least(0.95))
        return judged_result("pinning", act, [nothing], None, [premise_1d], setup=setup)
    context.progress(f"frozen field at sharpness {sharpness}, {steps} steps")
    out = _soft_run(act, data, sharpness, steps)
    # columns: plane, k, end u, nearest stable root, notes' root, rho, v r_k sigma''(u), rho0, nearest root of
    # resolved stability, stable, distance to the nearest root of unresolved stability (field.soft_pinning)
    rows = out["rows"]
    start = out["neurons"]
    plane = rows[:, 0].astype(int)
    # a plane that starts on an equilibrium and stays (e.g. u = 0 for odd sigma') is no evidence of attraction
    moved = (rows[:, 1] != start.point[plane]) | (np.abs(rows[:, 2] - start.u0[plane]) > OFFSET_TOLERANCE)
    at_rest = moved & np.isfinite(rows[:, 8]) & (np.abs(rows[:, 2] - rows[:, 8]) <= OFFSET_TOLERANCE)
    # at rest on a root whose G' is within its rounding bound (or overflows): no evidence either way
    unresolved = int((moved & ~at_rest & (rows[:, 10] <= OFFSET_TOLERANCE)).sum())
    rest = rows[at_rest]
    on_stable = rest[:, 9] > 0
    settled = rows[np.abs(rows[:, 2] - rows[:, 3]) <= OFFSET_TOLERANCE]          # at rest on a stable root
    total = len(out["neurons"].u0)
    exact = Measurement.proportion(int(on_stable.sum()), len(rest)) if len(rest) else Measurement.exact(float("nan"))
    periodic = kind(act) == "oscillating"
    curved = settled[np.isfinite(settled[:, 6])]                    # sigma''(u) resolved from 0
    local = Measurement.proportion(int((curved[:, 6] > 0).sum()), len(curved)) if len(curved) else \
        Measurement.exact(float("nan"))
    criteria = [
        Criterion("planes that moved and came to rest sit on exactly stable roots of the gap equation, G'(g*) < 0",
                  1.0, exact, at_least(0.95), "at rest: |u - u*| <= 0.05 (GD step error); 5% allows planes still "
                  "crossing an unstable root slowly; roots whose G' is within its float64 rounding bound (or "
                  "overflows) have no stability and are not counted"),
        Criterion("planes at rest on a stable root at the end vs at the start (soft pinning)", "more than at the start",
                  Measurement.proportion(len(settled), total), at_least(max(SETTLED, 2 * out["at_rest_init"])),
                  f"twice the start fraction (the start grid puts a few planes on roots), at least {SETTLED}: the "
                  "others may pass through or still move at T"),
        Criterion("local rule A sigma''(u*) > 0 at rest (5.4)", 1.0, local, at_least(0.95),
                  "the local rule's premise: the other data points' terms vary slowly near u*; " +
                  ("false for periodic sigma' (every term oscillates): reported, not judged" if periodic else
                   "holds for non-periodic sigma"), judged=not periodic),
    ]
    slopes = sharpness_slopes(out, np.abs(rows[:, 2] - rows[:, 3]) <= OFFSET_TOLERANCE)
    slope = Measurement.mean(slopes) if len(slopes) else Measurement.exact(float("nan"))
    judged_slope = slope_tends_to_a_constant(act)
    criteria.append(Criterion(
        "offsets vs sharpness along the late trajectory: d log|g| / d log rho (P12: 1/rho)", -1, slope,
        within(-1.0, 0.3), "P12 holds where sigma' tends to a nonzero constant on one side (5.4, P12 note); "
        + ("judged here" if judged_slope else "not the case here: reported (see the finding on positions)"),
        judged=judged_slope, min_n=MIN_PAIRS))
    positions = _positions(act, data)
    largest = max((r for r in positions if positions[r]["equilibria"]), default=None)
    details = {
        "kind": kind(act), "data": data_name(data), "planes": total, "near_data": len(rows), "at_rest": len(rest),
        "at_rest_on_stable_root": int(on_stable.sum()), "at_rest_unresolved_stability": unresolved,
        "settled_on_stable_root": len(settled), "settled_unresolved_curvature": len(settled) - len(curved),
        "at_rest_init": out["at_rest_init"],
        "median_abs_u": float(np.median(np.abs(settled[:, 2]))) if len(settled) else float("nan"),
        "notes_formula_median_error_u": float(np.nanmedian(np.abs(settled[:, 2] - settled[:, 4])))
        if len(settled) else float("nan"),
        "offset_slopes": slopes.tolist(), "lr": out["lr"],
        "equilibrium_positions": {str(k): v for k, v in positions.items()},
    }
    if largest is not None:
        finding = positions[largest]
        toward = "midpoints between neighbouring data points" if \
            finding["median_distance_to_midpoint"] < finding["median_distance_to_data"] else "the data points"
        to_data = ", ".join(f"{v['median_distance_to_data']:.3g}" for v in positions.values())
        to_mid = ", ".join(f"{v['median_distance_to_midpoint']:.3g}" for v in positions.values())
        details["finding"] = (
            f"root-finding in the frozen field (no simulation): as rho grows {', '.join(f'{r:g}' for r in positions)} "
            f"the stable equilibria nearest each data point sit at median distance {to_data} from a data point and "
            f"{to_mid} from a midpoint: they move to {toward}")
        criteria.append(Criterion(f"finding: stable equilibria at rho = {largest:g} (root-finding) sit "
                                  f"{finding['median_distance_to_midpoint']:.3g} from a midpoint between neighbours; "
                                  "median distance to the nearest data point (P12: -> 0 like 1/rho)", 0.0,
                                  Measurement.exact(finding["median_distance_to_data"]),
                                  at_most(4.0 / largest), "reported: 1/rho scale with the 4 of E7's offsets",
                                  judged=False))
    premises = [premise_1d,
                Premise(f"planes within |u| <= 6 of a data point at the end (needs >= {MIN_PLANES})", len(rows),
                        len(rows) >= MIN_PLANES, "nothing near the data to measure"),
                Premise(f"planes at rest on a root of the gap equation of resolved stability (needs >= {MIN_PLANES})",
                        len(rest),
                        len(rest) >= MIN_PLANES, "no plane came to rest: raise field_steps")]
    wrong = control("opposite stability sign: planes rest on roots with G'(g*) > 0", 0.0, exact, at_most(0.05))
    plots = [Plot("Soft pinning in the frozen field: where planes rest vs roots of the gap equation",
                  "nearest root u* = rho g*", "measured u = rho g",
                  [Series("at rest, stable root", rest[on_stable, 8].tolist(), rest[on_stable, 2].tolist(), "points"),
                   Series("at rest, unstable root", rest[~on_stable, 8].tolist(), rest[~on_stable, 2].tolist(),
                          "points"),
                   Series("u = u* (at rest: within 0.05 of it)", [-6, 6], [-6, 6], "dashed")],
                  note="judged: the fraction of planes at rest that sit on a stable root (blue among all points)"),
             Plot(f"Stable equilibria vs sharpness (root-finding; a finding, {REPORTED})", "rho", "median distance",
                  [Series("to the nearest data point", list(positions),
                          [v["median_distance_to_data"] for v in positions.values()], "line"),
                   Series("to the nearest midpoint", list(positions),
                          [v["median_distance_to_midpoint"] for v in positions.values()], "line"),
                   Series(f"4/rho (P12's scale, {REPORTED})", list(positions), [4.0 / r for r in positions],
                          "reported")],
                  xscale="log", yscale="log", note="P12: the distance to the data shrinks like 1/rho")]
    return judged_result("pinning", act, criteria, wrong, premises, setup=setup, details=details, plots=plots)


CHECK = Check("pinning", "Datapoint pinning (sign rule, pinned fractions; soft pinning)", "P10, P11, P12", applies,
              run, {**E7_OPTIONS, **FIELD_OPTIONS})
