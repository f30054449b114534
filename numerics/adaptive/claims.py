"""The four adaptive-regime checks: measurements turned into criteria, a control and premises."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from theory.activations import Activation
from theory.dynamics import equilibrium_branches, kinks

from ..checks import Check, CheckResult, Context, Plot, Series, register, verdict_with_reason
from ..data import toy_1d, toy_2d
from .digits import digits_experiment
from .ensemble import ADAPTIVE, KERNEL, Ensemble, Trajectory, record_schedule
from .field import OFFSET_TOLERANCE, placement_test, soft_pinning
from .fixed_points import refine_to_interpolation, transverse_stability
from .planes import (PINNED_EPS, breakpoint_clusters, breakpoints, displacement, in_hull, linear_interpolation_gap,
                     pinned_fraction, pinning_statistics, plane_clusters, plane_coordinates, plane_gaps)


#: digits: a unit is pinned when its zero-plane is this close to an image, relative to the
#: median image norm (about E7's 1e-4 at the digits' scale); by chance (init) ~0.4% of units
DIGITS_EPS = 1e-5


@dataclass(frozen=True)
class Scale:
    """Sizes of the runs of one profile."""

    width: int
    steps: int
    lr_factor: float
    seeds: int
    records: int
    kernel_widths: tuple[int, ...] = ()
    field_steps: int = 4000
    sharpness: tuple[float, ...] = (8.0, 32.0)
    runs_2d: int = 0
    jacobian_width: int = 20
    jacobian_steps: int = 500
    digits_images: int = 100
    digits_width: int = 100
    digits_steps: int = 4000


QUICK = Scale(width=100, steps=6000, lr_factor=4.0, seeds=1, records=100, field_steps=4000)
FULL = Scale(width=200, steps=150_000, lr_factor=1.0, seeds=3, records=400, kernel_widths=(100, 400, 1600),
             field_steps=20_000, sharpness=(8.0, 16.0, 32.0), runs_2d=3, jacobian_width=40,
             jacobian_steps=3000, digits_images=300, digits_width=200, digits_steps=20_000)


def _scale(context: Context) -> Scale:
    return context.pick(QUICK, FULL)


def _kind(act: Activation) -> str:
    return equilibrium_branches(act).kind


def _no_motion(act: Activation) -> str | None:
    eq = equilibrium_branches(act)
    if eq.kind in ("frozen", "affine"):
        return f"{act.label}: {eq.description}"
    return None


def _diverges_in_field(act: Activation) -> str | None:
    """The frozen-field experiments need sigma to grow at most linearly."""
    growth = act.growth
    if not growth.tempered or (growth.degree or 0) > 1:
        what = growth.reason if not growth.tempered else f"{act.label} {growth.reason}"
        return (f"{what}: in a frozen residual field the neuron's scale blows up in finite time, so the "
                "premise of the gap equation (a slowly varying rho) fails")
    return None


def _pinning_applies(act: Activation) -> str | None:
    """Hard pinning needs the kink at 0; smooth activations get the soft-pinning comparison,
    which needs at most linear growth."""
    if _no_motion(act):
        return _no_motion(act)
    if _kind(act) == "kink":
        return _kink_at_zero(act)
    return _diverges_in_field(act)


def _kink_at_zero(act: Activation) -> str | None:
    if _no_motion(act):
        return _no_motion(act)
    if not any(k.location == 0 for k in kinks(act)):
        if kinks(act):
            return (f"{act.label} kinks only at u = {', '.join(f'{k.location:g}' for k in kinks(act))}: its kink "
                    "planes sit c/rho from the zero-plane, about 20 data widths away at the reference "
                    "initialization (rho ~ 0.05); not measured")
        return (f"{act.label} has no kink (sigma' is continuous): zero-planes do not pin through data points "
                "(soft pinning at offsets is checked by `pinning`)")
    return None


@lru_cache(maxsize=16)
def adaptive_runs_1d(act: Activation, scale: Scale, seed: int) -> Trajectory:
    """E7/E8: adaptive and kernel members (``scale.seeds`` each) on the toy 1D data."""
    x, y = toy_1d()
    members = [(ADAPTIVE, seed + i) for i in range(scale.seeds)] + [(KERNEL, seed + i) for i in range(scale.seeds)]
    ens = Ensemble(act, x, y, scale.width, members, scale.lr_factor)
    return ens.train(scale.steps, record_schedule(scale.steps, scale.records), describe=f"{act.label} E7 1D")


@lru_cache(maxsize=16)
def kernel_width_sweep(act: Activation, scale: Scale, seed: int) -> dict:
    """Kernel regime at several widths: pinned fraction and median displacement (P11)."""
    x, y = toy_1d()
    out = {}
    for width in scale.kernel_widths:
        traj = Ensemble(act, x, y, width, [(KERNEL, seed)], scale.lr_factor).train(
            scale.steps, [0, scale.steps], describe=f"{act.label} kernel n={width}")
        out[width] = (pinned_fraction(traj.states[-1, 0], x), displacement(traj, 0))
    return out


@lru_cache(maxsize=16)
def adaptive_runs_2d(act: Activation, scale: Scale, seed: int) -> Trajectory:
    """E9: N = 8 points in the disc (``toy_2d(8, seed)``), width 100, ``scale.runs_2d`` adaptive seeds."""
    x, y = toy_2d(8, seed)
    ens = Ensemble(act, x, y, 100, [(ADAPTIVE, seed + i) for i in range(scale.runs_2d)], scale.lr_factor)
    return ens.train(scale.steps, record_schedule(scale.steps, scale.records), describe=f"{act.label} E9 2D")


def _members(traj: Trajectory, name: str) -> list[int]:
    return traj.member(name)


def _hull_breakpoint_plot(traj: Trajectory, member: int, neurons: int = 40) -> Plot:

    x = traj.x[:, 0]
    positions = breakpoints(traj.states[:, member])                      # (T, n)
    hull_end = in_hull(plane_gaps(traj.states[-1, member], traj.x))
    chosen = np.nonzero(hull_end)[0][:neurons]
    steps = np.maximum(traj.steps, 1).astype(float)
    series = [Series(f"data x = {xk:g}", [float(steps[0]), float(steps[-1])], [float(xk), float(xk)], "dashed")
              for xk in x]
    px = np.repeat(steps[:, None], len(chosen), 1).ravel()
    py = positions[:, chosen].ravel()
    keep = np.abs(py) <= 1.2
    series.append(Series("breakpoints (in hull at the end)", px[keep].tolist(), py[keep].tolist(), "points"))
    return Plot("Breakpoints over training vs data points (adaptive)", "GD step", "breakpoint -b/w", series,
                xscale="log", note=f"{len(chosen)} neurons whose breakpoint ends inside the data range")


def run_pinning(act: Activation, context: Context) -> CheckResult:
    if _kind(act) == "kink":
        return _hard_pinning(act, context)
    return _soft_pinning(act, context)


def _hard_pinning(act: Activation, context: Context) -> CheckResult:

    scale = _scale(context)
    kappa = [k.jump for k in kinks(act) if k.location == 0][0]
    context.progress(f"E7: {scale.seeds} adaptive + {scale.seeds} kernel networks, {scale.steps} steps")
    traj = adaptive_runs_1d(act, scale, context.seed)
    x = traj.x
    adaptive, kernel = _members(traj, "adaptive"), _members(traj, "kernel")
    stats = [pinning_statistics(traj, m) for m in adaptive]
    samples = sum(s.samples for s in stats)
    holds = sum(s.sign_rule_holds for s in stats)
    sign_fraction = holds / samples if samples else float("nan")
    init = [pinned_fraction(traj.states[0, m], x) for m in adaptive]
    end = [pinned_fraction(traj.states[-1, m], x) for m in adaptive]
    kernel_end = [pinned_fraction(traj.states[-1, m], x) for m in kernel]
    details = {
        "sign_rule_fraction": sign_fraction, "sign_rule_samples": samples,
        "sign_rule_per_seed": [s.sign_rule_fraction for s in stats],
        "sign_rule_samples_per_seed": [s.summary() for s in stats],
        "attracting_fraction": sum(s.attracting for s in stats) / samples if samples else float("nan"),
        "pinned_fraction_init": float(np.mean(init)), "pinned_fraction_end": float(np.mean(end)),
        "pinned_fraction_end_per_seed": end, "kernel_pinned_fraction_end": float(np.mean(kernel_end)),
        "median_displacement_adaptive": float(np.mean([displacement(traj, m) for m in adaptive])),
        "median_displacement_kernel": float(np.mean([displacement(traj, m) for m in kernel])),
        "final_loss_adaptive": [float(0.5 * np.mean(traj.residuals[-1, m] ** 2)) for m in adaptive],
        "kappa": kappa,
    }
    end_, init_, kernel_ = details["pinned_fraction_end"], details["pinned_fraction_init"], \
        details["kernel_pinned_fraction_end"]
    criteria = {f"sign rule {sign_fraction:.4f} >= 0.99": sign_fraction >= 0.99,
                f"pinned at the end {end_:.2f} >= 0.5": end_ >= 0.5,
                f"pinned at init {init_:.2f} <= 0.05": init_ <= 0.05,
                f"kernel-regime pinned {kernel_:.2f} < adaptive {end_:.2f}": kernel_ < end_}
    if scale.kernel_widths:
        context.progress(f"kernel regime at widths {scale.kernel_widths}")
        sweep = kernel_width_sweep(act, scale, context.seed)
        widths = sorted(sweep)
        details["kernel_sweep"] = {str(w): {"pinned_fraction": sweep[w][0], "median_displacement": sweep[w][1]}
                                   for w in widths}
        slope = float(np.polyfit(np.log(widths), np.log([sweep[w][1] for w in widths]), 1)[0])
        details["kernel_displacement_slope"] = slope
        details["kernel_pinned_shrinks"] = bool(sweep[widths[-1]][0] < sweep[widths[0]][0])
        criteria[f"kernel-regime pinned fraction shrinks with width ({sweep[widths[0]][0]:.2f} at n = {widths[0]} "
                 f"-> {sweep[widths[-1]][0]:.2f} at n = {widths[-1]})"] = details["kernel_pinned_shrinks"]
    if scale.runs_2d:
        context.progress("E9: 2D runs")
        traj2 = adaptive_runs_2d(act, scale, context.seed)
        stats2 = [pinning_statistics(traj2, m) for m in range(scale.runs_2d)]
        n2 = sum(s.samples for s in stats2)
        details["sign_rule_fraction_2d"] = sum(s.sign_rule_holds for s in stats2) / n2 if n2 else float("nan")
        details["sign_rule_samples_2d"] = n2
        details["sign_rule_2d_per_seed"] = [s.summary() for s in stats2]
        details["pinned_fraction_end_2d"] = [pinned_fraction(traj2.states[-1, m], traj2.x) for m in range(scale.runs_2d)]
        criteria[f"2D sign rule {details['sign_rule_fraction_2d']:.4f} >= 0.95"] = details["sign_rule_fraction_2d"] >= 0.95
    prediction = (f"v r_k kappa > 0 (kappa = {kappa:g}) for >= 99% of pinned kinks; >= 50% of in-hull kinks "
                  "within 1e-3 of a data point at the end (~0% at init), fewer in the kernel regime")
    bad_pairs = sum(len(s.violating_pairs) for s in stats)
    measured = (f"sign rule {sign_fraction:.4f} of {samples} samples (misses from {bad_pairs} of "
                f"{sum(len(s.pairs) for s in stats)} (neuron, point) pairs); pinned "
                f"{details['pinned_fraction_init']:.2f} -> {details['pinned_fraction_end']:.2f} "
                f"(kernel {details['kernel_pinned_fraction_end']:.2f})")
    if scale.runs_2d:
        measured += f"; 2D sign rule {details['sign_rule_fraction_2d']:.4f} of {details['sign_rule_samples_2d']}"
    plots = [_hull_breakpoint_plot(traj, adaptive[0])]
    verdict, reason = verdict_with_reason(criteria, f"hard pinning (kink at 0): E7/E8 "
                               f"{'reference' if context.profile == 'full' else 'quick'} runs, width {scale.width}, "
                               f"{scale.steps} GD steps")
    return CheckResult(
        "pinning", act.label, prediction, measured, {"sign_rule": 0.99, "sign_rule_2d": 0.95, "pinned_end": 0.5,
                                                     "pinned_init": 0.05},
        verdict, details=details, reason=reason,
        tolerance_note="thresholds of spectral_bias.md 6.4 P10-P11; pinned = |gap| < 1e-4 with |r_k| > 1e-4 for "
                       "the sign rule (GD chattering is below that at these step sizes), < 1e-3 for fractions; "
                       "the quick profile stops at 6000 steps with a 4x step, before full convergence",
        parameters={"width": scale.width, "steps": scale.steps, "lr": traj.rates, "seeds": scale.seeds,
                    "adaptive": vars(ADAPTIVE), "kernel": vars(KERNEL)},
        plots=plots)


@lru_cache(maxsize=16)
def _soft_run(act: Activation, scale: Scale) -> dict:
    return soft_pinning(act, scale.sharpness, scale.field_steps)


#: fewest planes for the 1/rho slope
MIN_PAIRS = 5


def sharpness_slopes(out: dict, settled: np.ndarray) -> np.ndarray:
    r""":math:`d\log|g|/d\log\rho` along the second half of the trajectory of every plane at rest
    at the end (:math:`|u| > 2\,` :data:`OFFSET_TOLERANCE`) whose sharpness changed by at least
    10% meanwhile: a plane that follows an equilibrium of fixed u = rho g has slope -1 (P12),
    one that stays at a fixed position has slope 0."""
    slopes = []
    for r, ok in zip(out["rows"], settled):
        i = int(r[0])
        rho, gap = out["late_rho"][:, i], np.abs(out["late_gap"][:, i])
        if ok and abs(r[2]) > 2 * OFFSET_TOLERANCE and math.log(rho.max() / rho.min()) > 0.1 and np.all(gap > 0):
            slopes.append(float(np.polyfit(np.log(rho), np.log(gap), 1)[0]))
    return np.array(slopes)


def _soft_pinning(act: Activation, context: Context) -> CheckResult:

    scale = _scale(context)
    context.progress(f"frozen field at sharpness {scale.sharpness}, {scale.field_steps} steps")
    out = _soft_run(act, scale)
    rows = out["rows"]                      # i, k, u, exact root, notes root, rho, v r_k sigma''(u), rho0
    u0 = out["neurons"].u0
    matched = np.abs(rows[:, 2] - rows[:, 3]) <= OFFSET_TOLERANCE
    settled = rows[matched]
    curvature_rule = float(np.mean(settled[:, 6] > 0)) if len(settled) else float("nan")
    notes_sign = np.sign(settled[:, 2]) == np.sign(settled[:, 4])
    relevant = np.abs(settled[:, 4]) > OFFSET_TOLERANCE
    offsets = np.abs(settled[:, 2] / settled[:, 5])
    slopes = sharpness_slopes(out, matched)
    # pinned = resting on a stable root of the exact gap equation, at the start and at the end
    details = {
        "kind": _kind(act), "sign_rule_fraction": curvature_rule,
        "pinned_fraction_init": out["at_rest_init"],
        "pinned_fraction_end": float(len(settled) / len(u0)),
        "near_data": len(rows), "settled": len(settled),
        "notes_formula_sign_agreement": float(np.mean(notes_sign[relevant])) if relevant.any() else float("nan"),
        "notes_formula_median_error_u": float(np.nanmedian(np.abs(settled[:, 2] - settled[:, 4]))) if len(settled) else float("nan"),
        "median_abs_u": float(np.median(np.abs(settled[:, 2]))) if len(settled) else float("nan"),
        "offset_vs_rho_slope": float(np.median(slopes)) if len(slopes) else float("nan"),
        "slope_planes": len(slopes),
        "median_abs_u_per_sharpness": {str(r0): float(np.median(np.abs(settled[settled[:, 7] == r0, 2])))
                                       for r0 in scale.sharpness if np.any(settled[:, 7] == r0)},
        "sharpness": list(scale.sharpness), "steps": scale.field_steps, "lr": out["lr"],
    }
    slope = details["offset_vs_rho_slope"]
    measurable = len(slopes) >= MIN_PAIRS
    verdict, reason = verdict_with_reason(
        {f"smooth sign rule A sigma'' > 0 for {curvature_rule:.3f} >= 0.95": curvature_rule >= 0.95,
         f"at rest {details['pinned_fraction_end']:.2f} >= 2 x init {details['pinned_fraction_init']:.2f}":
             details["pinned_fraction_end"] >= 2 * details["pinned_fraction_init"],
         f"offset scaling d log|g| / d log rho = {slope:.2f}, not -1 +- 0.3 (P12's 1/rho)":
             not measurable or abs(slope + 1) <= 0.3},
        "frozen residual field of the toy data (the premise of the gap equation): the E7 initialization keeps "
        "smooth networks near their linearization (rho ~ 0.05), where nothing pins")
    plots = [Plot("Soft pinning in the frozen field: offsets vs predicted stable equilibria", "predicted u* = rho g*",
                  "measured u = rho g", [Series("planes at rest", settled[:, 3].tolist(), settled[:, 2].tolist(), "points"),
                                         Series("notes' (A, B) prediction", settled[:, 4].tolist(), settled[:, 2].tolist(), "points"),
                                         Series("u = u*", [-6, 6], [-6, 6], "dashed")]),
             Plot("Offsets vs sharpness", "rho", "|g| = |u|/rho", [Series("planes at rest", settled[:, 5].tolist(),
                                                                           offsets.tolist(), "points")],
                  xscale="log", yscale="log", note="P12 predicts |g| ~ 1/rho (slope -1)")]
    return CheckResult(
        "pinning", act.label,
        f"soft pinning ({details['kind']}): planes come to rest at stable roots of the gap equation, "
        "A sigma''(u*) > 0 (the smooth sign rule), offsets |g| = |u*|/rho ~ 1/rho",
        f"{details['pinned_fraction_init']:.2f} -> {details['pinned_fraction_end']:.2f} of planes at a stable "
        f"root; A sigma'' > 0 for {curvature_rule:.3f}; "
        f"median |u| {details['median_abs_u']:.3g}; " + (
            f"d log|g| / d log rho = {slope:.2f} ({len(slopes)} planes)" if measurable else
            f"1/rho scaling not measurable (rho drifted >= 10% for only {len(slopes)} planes at rest)"),
        {"sign_rule": 0.95, "settled": "2x init", "slope": "-1 +- 0.3", "offset_u": OFFSET_TOLERANCE},
        verdict, details=details, reason=reason,
        tolerance_note=f"a plane is at rest on a root when |u - u*| <= {OFFSET_TOLERANCE} (GD step error after "
                       f"{scale.field_steps} steps); the 1/rho slope is the median over planes at rest whose "
                       f"sharpness drifted >= 10% in the second half (>= {MIN_PAIRS} planes), tolerance 0.3",
        parameters={"sharpness": list(scale.sharpness), "steps": scale.field_steps, "residual": "-y (f = 0)"},
        plots=plots)


def _histogram(values: np.ndarray, edges: np.ndarray) -> list[float]:
    counts, _ = np.histogram(values, edges)
    return counts.tolist()


def run_clusters(act: Activation, context: Context) -> CheckResult:

    scale = _scale(context)
    traj = adaptive_runs_1d(act, scale, context.seed)
    x, N = traj.x, len(traj.x)

    def summary(state):
        gaps = plane_gaps(state, x)
        hull = in_hull(gaps)
        groups = breakpoint_clusters(breakpoints(state)[hull])
        at_data = [g for g in groups if np.min(np.abs(x[:, 0] - np.mean(g))) < PINNED_EPS]
        return {"clusters": len(groups), "clusters_at_data": len(at_data),
                "clustered_fraction": float(sum(len(g) for g in groups) / max(hull.sum(), 1)),
                "largest": int(max((len(g) for g in groups), default=0))}

    adaptive, kernel = _members(traj, "adaptive"), _members(traj, "kernel")
    details = {"init": summary(traj.states[0, adaptive[0]]),
               "adaptive": [summary(traj.states[-1, m]) for m in adaptive],
               "kernel": [summary(traj.states[-1, m]) for m in kernel],
               "linear_interpolation_gap_adaptive": [linear_interpolation_gap(traj.states[-1, m], act, x, traj.y)
                                                     for m in adaptive],
               "linear_interpolation_gap_kernel": [linear_interpolation_gap(traj.states[-1, m], act, x, traj.y)
                                                   for m in kernel],
               "data_points": N}
    counts = [s["clusters"] for s in details["adaptive"]]
    clustered = float(np.mean([s["clustered_fraction"] for s in details["adaptive"]]))
    details["clustered_fraction_adaptive"] = clustered
    details["clustered_fraction_init"] = details["init"]["clustered_fraction"]
    li_adaptive = float(np.mean(details["linear_interpolation_gap_adaptive"]))
    li_kernel = float(np.mean(details["linear_interpolation_gap_kernel"]))
    init_clustered = details["init"]["clustered_fraction"]
    verdict, reason = verdict_with_reason(
        {f"clusters {max(counts)} <= N = {N}": max(counts) <= N,
         f"clustered {clustered:.2f} >= 2 x init {init_clustered:.2f} + 0.1": clustered >= 2 * init_clustered + 0.1,
         f"sup|f - LI|/max|y| adaptive {li_adaptive:.2f} < kernel {li_kernel:.2f}": li_adaptive < li_kernel},
        "single-linkage clusters (gap 1e-3) of in-hull breakpoints with >= 2 members, E7 runs; the notes give no "
        "number for 'close to linear interpolation', so the kernel-regime fit is the yardstick")
    if scale.runs_2d:
        traj2 = adaptive_runs_2d(act, scale, context.seed)
        for name, t in (("init_2d", 0), ("adaptive_2d", -1)):
            labels = [plane_clusters(**{k: plane_coordinates(traj2.states[t, m])[k] for k in ("theta", "beta")})
                      for m in range(scale.runs_2d)]
            details[name] = [{"clusters": int(lab.max() + 1), "clustered": float(np.mean(lab >= 0))} for lab in labels]
    edges = np.linspace(-1, 1, 201)
    mids = ((edges[1:] + edges[:-1]) / 2).tolist()
    plots = [Plot("Breakpoints at the end: adaptive vs kernel vs init", "breakpoint -b/w", "neurons per bin (0.01)",
                  [Series("init", mids, _histogram(breakpoints(traj.states[0, adaptive[0]]), edges), "step"),
                   Series("adaptive end", mids, _histogram(breakpoints(traj.states[-1, adaptive[0]]), edges), "step"),
                   Series("kernel end", mids, _histogram(breakpoints(traj.states[-1, kernel[0]]), edges), "step"),
                   Series("data points", x[:, 0].tolist(), [0.0] * N, "points")])]
    return CheckResult(
        "zero-plane-clusters", act.label,
        f"coincident breakpoints form at most N = {N} clusters, at data points, and the fit is close to "
        "linear interpolation (P13; operationally: closer than the kernel-regime fit)",
        f"{counts} clusters (adaptive), {[s['clusters_at_data'] for s in details['adaptive']]} at data points; "
        f"{clustered:.2f} of in-hull breakpoints clustered (init {details['init']['clustered_fraction']:.2f}); "
        f"sup|f - LI|/max|y| = {li_adaptive:.2f} (kernel {li_kernel:.2f})",
        {"clusters": N, "clustered_fraction": "2 x init + 0.1", "linear_interpolation": "adaptive < kernel"},
        verdict, details=details, reason=reason,
        tolerance_note="1e-3 is the pinning threshold of E8; chance coincidences at init set the baseline, and "
                       "the margin 0.1 exceeds its binomial spread at ~70 in-hull breakpoints",
        parameters={"width": scale.width, "steps": scale.steps, "seeds": scale.seeds}, plots=plots)


@lru_cache(maxsize=16)
def _placements(act: Activation, scale: Scale) -> dict:
    return placement_test(act, PLACEMENT_SHARPNESS, scale.field_steps)


@lru_cache(maxsize=16)
def _fixed_point(act: Activation, scale: Scale, seed: int) -> dict:
    """A trained kernel-regime network of width ``scale.jacobian_width``, refined onto r = 0."""
    x, y = toy_1d()
    traj = Ensemble(act, x, y, scale.jacobian_width, [(KERNEL, seed)], 4.0).train(
        scale.jacobian_steps, [0, scale.jacobian_steps], describe=f"{act.label} fixed point")
    state = refine_to_interpolation(act, x, y, traj.states[-1, 0])
    out = transverse_stability(act, x, y, state, steps=JACOBIAN_STEPS)
    out["origin"] = f"kernel-regime network, width {scale.jacobian_width}, {scale.jacobian_steps} GD steps, " \
                    "then damped Gauss-Newton onto r = 0"
    return out


#: sharpness of the planes placed next to predicted equilibria (1/rho well below the data spacing)
PLACEMENT_SHARPNESS = 16.0
#: fewest conclusive placements for a verdict on the frozen-field stability test
MIN_CONCLUSIVE = 8
#: GD steps of the perturbation test at the trained fixed point
JACOBIAN_STEPS = 300
#: smallest displacement for which the perturbation test is still above float64 resolution
MIN_PERTURBATION = 1e-11
#: |measured - predicted| decay factor allowed: rounding adds ~steps x 1e-16 / delta <= 3e-3
DECAY_TOLERANCE = 1e-2


def run_attractors(act: Activation, context: Context) -> CheckResult:

    scale = _scale(context)
    skip = _diverges_in_field(act)
    context.progress("planes placed next to predicted equilibria")
    place = {"placements": 0} if skip else _placements(act, scale)
    details: dict = {"placements": place["placements"], "placement_skipped": skip}
    criteria: dict[str, bool] = {}
    if not skip:
        if place["placements"]:
            sep = place["separated"]
            for label, mask in (("stable", place["predicted_stable"]), ("unstable", ~place["predicted_stable"])):
                m = mask & sep
                details[f"{label}_conclusive"] = int(m.sum())
                details[f"{label}_agreement"] = float(place["agree"][m].mean()) if m.any() else float("nan")
                if m.sum() >= 4:
                    criteria[f"{label} placements as predicted {details[f'{label}_agreement']:.2f} >= 0.9"] = \
                        details[f"{label}_agreement"] >= 0.9
            details["inconclusive"] = int((~sep).sum())
        conclusive = details.get("stable_conclusive", 0) + details.get("unstable_conclusive", 0)
        criteria[f"conclusive placements {conclusive} >= {MIN_CONCLUSIVE}"] = conclusive >= MIN_CONCLUSIVE
    context.progress("flow Jacobian at a trained fixed point")
    fixed = _fixed_point(act, scale, context.seed)
    details["jacobian"] = {k: fixed[k] for k in ("origin", "parameters", "data", "rank", "max_decay_error",
                                                 "resolved", "symmetry", "lr")}
    details["jacobian"]["transverse_eigenvalues"] = fixed["transverse"].tolist()
    details["jacobian"]["manifold_max_abs_eigenvalue"] = float(np.max(np.abs(fixed["manifold"]))) \
        if len(fixed["manifold"]) else 0.0
    details["jacobian"]["zero_modes"] = fixed["parameters"] - fixed["rank"]
    details["jacobian"]["nearest_kink"] = fixed["nearest_kink"]
    details["jacobian"]["delta"] = fixed["delta"]
    decay_ok = fixed["max_decay_error"] <= DECAY_TOLERANCE if math.isfinite(fixed["max_decay_error"]) else \
        fixed["delta"] < MIN_PERTURBATION
    top = float(np.max(fixed["transverse"]))
    criteria[f"largest transverse eigenvalue {top:.3g} < 0"] = top < 0
    criteria[f"perturbation decay error {fixed['max_decay_error']:.1e} <= {DECAY_TOLERANCE:g}"] = decay_ok
    verdict, reason = verdict_with_reason(criteria, "frozen-field placements at sharpness 16 around every predicted "
                               "equilibrium; autodiff Jacobian with the P - N interpolation-manifold zero modes "
                               "(symmetry orbits inside) removed")
    plots = []
    if place["placements"]:
        st = place["predicted_stable"]
        plots.append(Plot("Planes placed next to predicted equilibria (frozen field)", "start u - u*", "end u - u*",
                          [Series("predicted stable", (place["start_u"] - place["target_u"])[st].tolist(),
                                  (place["end_u"] - place["target_u"])[st].tolist(), "points"),
                           Series("predicted unstable", (place["start_u"] - place["target_u"])[~st].tolist(),
                                  (place["end_u"] - place["target_u"])[~st].tolist(), "points")],
                          note="u = pre-activation at the data point; stable: pulled back, unstable: pushed away"))
    plots.append(Plot("Transverse eigenvalues of the flow Jacobian at a trained fixed point", "index",
                      "eigenvalue of -Hessian", [Series("transverse", list(range(len(fixed["transverse"]))),
                                                         fixed["transverse"].tolist(), "points")]))
    return CheckResult(
        "attractor-stability", act.label,
        "equilibria of the gap equation with A sigma''(u*) > 0 (kinks: g'(0-) > 0 > g'(0+)) hold nearby planes, "
        "the others lose them; trained fixed points have only negative transverse eigenvalues",
        f"placements: stable held {details.get('stable_agreement', float('nan')):.2f}, unstable left "
        f"{details.get('unstable_agreement', float('nan')):.2f}; transverse max "
        f"{float(np.max(fixed['transverse'])):.3g}, decay error {fixed['max_decay_error']:.1e}",
        {"agreement": 0.9, "decay_error": DECAY_TOLERANCE}, verdict, details=details, reason=reason,
        tolerance_note="90% agreement leaves room for placements whose equilibrium moves with the step size; "
                       "the decay comparison is linear theory vs GD at delta <= 1e-6, in units of delta, where "
                       "rounding contributes ~300 x 1e-16/delta <= 3e-3 and nonlinearity ~delta",
        parameters={"sharpness": PLACEMENT_SHARPNESS, "steps": scale.field_steps, "jacobian_steps": JACOBIAN_STEPS},
        plots=plots)


@lru_cache(maxsize=8)
def _digits(act: Activation, scale: Scale, seed: int) -> dict:
    return digits_experiment(act, scale.digits_images, scale.digits_width, scale.digits_steps, seed, lr_factor=4.0)


def run_digits(act: Activation, context: Context) -> CheckResult:

    scale = _scale(context)
    context.progress(f"digits: {scale.digits_images} images, width {scale.digits_width}, {scale.digits_steps} steps")
    out = _digits(act, scale, context.seed)
    frac = {k: float(np.mean(d < DIGITS_EPS)) for k, d in out["distance"].items()}
    details = {"pinned_fraction": frac, "median_distance": {k: float(np.median(d)) for k, d in out["distance"].items()},
               "sign_rule_fraction": out["sign_rule"][0], "sign_rule_samples": out["sign_rule"][1],
               "clusters": out["clusters"], "loss_end": out["loss_end"], "images": out["images"],
               "width": out["width"], "steps": out["steps"]}
    verdict, reason = verdict_with_reason(
        {f"adaptive {frac['adaptive']:.2f} >= max(init {frac['init']:.2f}, kernel {frac['kernel']:.2f}) + 0.1":
             frac["adaptive"] >= max(frac["init"], frac["kernel"]) + 0.1},
        f"scikit-learn digits {out['classes']}, {out['images']} images, width {out['width']}, {out['steps']} GD steps")
    edges = np.linspace(-9, 0, 46)
    mids = ((edges[1:] + edges[:-1]) / 2).tolist()
    series = [Series(k, mids, _histogram(np.log10(np.maximum(d, 1e-12)), edges), "step")
              for k, d in out["distance"].items()]
    return CheckResult(
        "digits-zero-planes", act.label,
        "adaptive training puts more zero-planes through training images than init or the kernel regime",
        f"units within {DIGITS_EPS:g} (relative) of an image: init {frac['init']:.2f}, adaptive "
        f"{frac['adaptive']:.2f}, kernel {frac['kernel']:.2f}",
        0.1, verdict, details=details, reason=reason,
        tolerance_note="margin 0.1 is over 2 binomial standard deviations of a fraction near 0.25 over 100 units; "
                       f"by chance ~0.4% of units lie within {DIGITS_EPS:g}",
        parameters={"images": out["images"], "width": out["width"], "steps": out["steps"], "lr": out["lr"]},
        plots=[Plot("Zero-plane distance to the nearest training image", "log10 relative distance", "units",
                    series)])


def _register():

    register(Check("pinning", "Datapoint pinning (sign rule, pinned fractions)", "P10, P11, P12",
                   _pinning_applies, run_pinning))
    register(Check("zero-plane-clusters", "Zero-plane clusters at data points", "P13", _kink_at_zero, run_clusters))
    register(Check("attractor-stability", "Stability of zero-plane equilibria vs simulation", "5.2, 5.4, 5.5",
                   _no_motion, run_attractors))
    register(Check("digits-zero-planes", "Zero-planes through digit images", "MNIST stand-in", _kink_at_zero,
                   run_digits))


_register()
