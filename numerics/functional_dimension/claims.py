"""The checks fd-theorems, fd-sampling, fd-training."""

from __future__ import annotations

import math

import numpy as np

from theory.errors import IbcheckError
from theory.functional_dimension import (hit_lower_bound, necessary_region_estimate, parse_architecture,
                                         relu_only_reason, symbolic_invariance)

from ..checks import Check, CheckResult, Context, Option, Plot, Series, register
from ..mlp import MLP
from .rank import _blas_controller
from .regions import exact_cffd, region_masses, sufficient_counts
from .sampling import estimate_cffd, sampling_experiment
from .theorems import (NULL_VECTOR_TOLERANCE, PERMUTATION_SV_TOLERANCE, ROUTE_TOLERANCE, summarize_trials,
                       theorem_trials)
from .training import SWEEPS, TrainingSetup, bfd_training_run, f12_evidence, initialization_bfd, sweep


# ---- checks ----------------------------------------------------------------------------------------
def _applies(act) -> str | None:
    return relu_only_reason(act)


def _int_option(context: Context, key: str, default: int, low: int = 1) -> int:
    value = context.options.get(key)
    if value is None:
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise IbcheckError(f"option {key} must be a whole number, got {value!r}") from None
    if number < low:
        raise IbcheckError(f"option {key} must be >= {low}, got {number}")
    return number


def _float_option(context: Context, key: str, default: float) -> float:
    value = context.options.get(key)
    if value is None:
        return default
    try:
        number = float(str(value))
    except ValueError:
        raise IbcheckError(f"option {key} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise IbcheckError(f"option {key} must be a positive number, got {value!r}")
    return number


def run_theorems(act, context: Context) -> CheckResult:
    """fd-theorems: F1-F7 on random (architecture, theta, X), plus the symbolic invariance proof."""
    spec = context.options.get("architecture")
    arch = parse_architecture(spec) if spec else None
    count = _int_option(context, "trials", context.pick(300, 1000))
    with _blas_controller().limit(limits=1, user_api="blas"):
        trials = theorem_trials(count, seed=context.seed, architecture=arch, exact_count=context.pick(20, 60))
    details = summarize_trials(trials)
    proof = symbolic_invariance()
    details["symbolic_invariance"] = dict(proof.__dict__)
    checks = {
        "F1/F6 bounds never exceeded": details["bound_violations"] == 0,
        "F2/F3 invariances": details["invariance_failures"] == 0,
        "F4 frozen-pattern rank in >= 99% of general-position trials":
            details["frozen_pattern_agreement"] is not None and details["frozen_pattern_agreement"] >= 0.99,
        "F5 closed form in every shallow scalar trial": details["closed_form_agreement"] in (None, 1.0),
        "F7 exact rank": details["exact_rank_agreement"] in (None, 1.0),
        "F7 Jacobian routes": details["jacobian_route_max_diff"] <= ROUTE_TOLERANCE,
        "symbolic invariance": proof.holds,
    }
    failed = [name for name, ok in checks.items() if not ok]
    details["failed"] = failed
    bounds = [min(t["bound"], t["region_bound"], t["input_geometry_bound"]) for t in trials]
    plot = Plot("BFD against its smallest proven upper bound", "min(n N_L, N_par - H, region, input-geometry bound)",
                "BFD", [Series("trials", bounds, [t["bfd"] for t in trials], "points"),
                        Series("BFD = bound", [0, max(bounds)], [0, max(bounds)], "dashed")],
                note="every point must lie on or below the dashed line (F1, F6)")
    agreement = details["frozen_pattern_agreement"]
    return CheckResult(
        "fd-theorems", act.label,
        prediction="F1-F3, F5-F7 in every trial; F4 in >= 99% of general-position trials",
        measured=(f"{details['bound_violations']} bound violations, {details['invariance_failures']} invariance "
                  f"failures, frozen-pattern agreement {agreement:.3f} over {details['frozen_pattern_trials']} trials, "
                  f"routes agree to {details['jacobian_route_max_diff']:.1e}"),
        tolerance={"F2": NULL_VECTOR_TOLERANCE, "F3_singular_values": PERMUTATION_SV_TOLERANCE,
                   "F4_fraction": 0.99, "F7_routes": ROUTE_TOLERANCE},
        verdict="agrees" if not failed else "disagrees",
        reason=("all theorem checks hold over " if not failed else "failed: " + "; ".join(failed) + " over ")
        + f"{len(trials)} random (architecture, theta, X)" + (f" on {arch}" if arch else ""),
        tolerance_note=("ranks exact (integers); F2 ||Jv|| <= 1e-10 s_max ||v|| and F3 singular values to 1e-12 s_max "
                        "are float64 rounding allowances (observed ~1e-16, ~1e-15); F4 may fail on the null set of "
                        "non-generic draws, hence 99%"),
        details=details, parameters={"trials": count, "architecture": arch.text if arch else "random",
                                     "init": "he (biases N(0, 0.1^2))", "lambda_range": [0.5, 2.0]},
        plots=[plot])


#: default nets of fd-sampling: (architecture, input scale s of N(0, s^2 I))
SAMPLING_NETS = {"quick": (("1-10-1", 1.0), ("2-4-4-1", 2.0)),
                 "full": (("1-10-1", 1.0), ("2-4-4-1", 2.0), ("2-6-5-2", 3.0))}


def _sampling_one(arch: str, scale: float, sizes: list[int], draws: int, seed: int) -> dict:
    from theory.functional_dimension import hit_upper_bound, sufficient_set_lower_bound

    net = MLP.initialize(arch, "he", seed)
    cffd = exact_cffd(net, seed=seed)
    masses = region_masses(cffd.regions, scale)
    counts = sufficient_counts(net, cffd, masses, seed=seed)
    run = sampling_experiment(net, cffd, sizes, draws, scale, seed=seed)
    estimate = estimate_cffd(net, seed=seed)
    dim = net.arch.input_dim
    hit = run.hit_fraction(cffd.cffd)
    lower = [hit_lower_bound(masses, n, dim) for n in sizes]
    sufficient = [sufficient_set_lower_bound(masses, counts, n) for n in sizes]
    upper = [hit_upper_bound(masses, cffd.required, n) for n in sizes]
    necessary = [necessary_region_estimate(masses, counts, n) for n in sizes]

    def sigma(q):
        q = min(max(q, 0.0), 1.0)
        return math.sqrt(q * (1 - q) / draws)

    below_lower = [n for n, h, b in zip(sizes, hit, lower) if h < b - 3 * sigma(b)]
    below_sufficient = [n for n, h, b in zip(sizes, hit, sufficient) if h < b - 3 * sigma(b)]
    above_upper = [n for n, h, b in zip(sizes, hit, upper) if h > b + 3 * sigma(b)]
    return {
        "architecture": arch, "input_scale": scale, "seed": seed, "regions": len(cffd.regions),
        "exact_cffd": cffd.cffd, "rescaling_bound": net.arch.rescaling_bound,
        "frozen_generic_rank": cffd.frozen_generic_rank, "decisive_bfd": cffd.decisive_bfd,
        "smallest_region_mass": float(masses.min()), "mass_total": float(masses.sum()),
        "smallest_inscribed_radius": cffd.min_radius,
        "hit_fraction": hit.tolist(), "hit_lower_bound": lower, "sufficient_lower_bound": sufficient,
        "hit_upper_bound": upper, "necessary_region_estimate": necessary,
        "regions_in_sufficient_set": int(sum(k > 0 for k in counts)),
        "median_bfd": np.median(run.ranks, axis=0).tolist(),
        "monotone_violations": int((np.diff(run.ranks, axis=1) < 0).sum()) + run.full_batch_monotone_violations,
        "above_cffd": int((run.ranks > cffd.cffd).sum()),
        "complete_not_hit": int((run.complete & (run.ranks != cffd.cffd)).sum()),
        "unknown_patterns": run.unknown_patterns, "reduction_mismatches": run.full_batch_mismatches,
        "below_union_bound_at": below_lower, "below_sufficient_bound_at": below_sufficient,
        "above_upper_bound_at": above_upper,
        "estimator_cffd": estimate.cffd, "estimator_points": estimate.points, "estimator_stopped": estimate.stopped,
        "estimator_history": estimate.history, "estimator_shortfall": cffd.cffd - estimate.cffd,
    }


def run_sampling(act, context: Context) -> CheckResult:
    """fd-sampling: F8 (nested batches, P(hit) against the bounds) and F9 (CFFD = frozen rank of the
    achievable patterns) on 1D and 2D nets whose regions are enumerated exactly."""
    spec = context.options.get("architecture")
    if spec:
        arch = parse_architecture(spec)
        if arch.input_dim > 2:
            raise IbcheckError(f"fd-sampling enumerates regions exactly for input dimension 1 or 2; {arch} has "
                               f"{arch.input_dim}")
        nets = ((arch.text, _float_option(context, "scale", 2.0)),)
    else:
        nets = SAMPLING_NETS[context.profile]
    draws = _int_option(context, "draws", 200)
    sizes = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000] + context.pick([], [50000, 100000])
    with _blas_controller().limit(limits=1, user_api="blas"):
        results = [_sampling_one(arch, scale, sizes, draws, context.seed) for arch, scale in nets]
    label = {r["architecture"]: r for r in results}
    problems = []
    for r in results:
        name = r["architecture"]
        for key, what in (("monotone_violations", "n -> BFD decreased"), ("above_cffd", "BFD above CFFD"),
                          ("complete_not_hit", "every region filled but CFFD not reached"),
                          ("unknown_patterns", "patterns the enumeration missed"),
                          ("reduction_mismatches", "reduced-set rank differs from the full batch")):
            if r[key]:
                problems.append(f"{name}: {r[key]} x {what}")
        for key, what in (("below_union_bound_at", "P(hit) below the union lower bound"),
                          ("below_sufficient_bound_at", "P(hit) below the sufficient-set lower bound"),
                          ("above_upper_bound_at", "P(hit) above the necessary-region upper bound")):
            if r[key]:
                problems.append(f"{name}: {what} by > 3 sigma at n = {r[key]}")
        if r["frozen_generic_rank"] != r["exact_cffd"]:
            problems.append(f"{name}: F9 frozen rank {r['frozen_generic_rank']} != CFFD {r['exact_cffd']}")
        if r["decisive_bfd"] != r["exact_cffd"]:
            problems.append(f"{name}: decisive-set BFD {r['decisive_bfd']} != CFFD {r['exact_cffd']}")
        if r["estimator_shortfall"] < 0:
            problems.append(f"{name}: estimator {r['estimator_cffd']} above exact CFFD {r['exact_cffd']}")
    details = {key: {name: r[key] for name, r in label.items()} for key in results[0]}
    details["batch_sizes"] = sizes
    details["draws"] = draws
    details["problems"] = problems
    plots = []
    for r in results:
        clip = [min(max(v, 0.0), 1.0) for v in r["hit_lower_bound"]]
        plots.append(Plot(f"P(BFD = CFFD) vs n, {r['architecture']} (CFFD {r['exact_cffd']}, {r['regions']} regions)",
                          "batch size n", "probability",
                          [Series(f"empirical P(hit), {draws} draws", sizes, r["hit_fraction"], "points"),
                           Series("union lower bound (1.8), clipped at 0", sizes, clip, "dashed"),
                           Series("sufficient-set lower bound", sizes,
                                  [min(max(v, 0.0), 1.0) for v in r["sufficient_lower_bound"]], "dashed"),
                           Series("necessary-region estimate", sizes, r["necessary_region_estimate"], "line"),
                           Series("upper bound (regions that must fill)", sizes, r["hit_upper_bound"], "step")],
                          xscale="log",
                          note="the union bound of the notes is vacuous (<= 0) wherever it is drawn at 0"))
    shortfall = {r["architecture"]: r["estimator_shortfall"] for r in results}
    return CheckResult(
        "fd-sampling", act.label,
        prediction="BFD(X_n) nondecreasing, <= CFFD, = CFFD once every region holds N_0 + 1 points; P(hit) >= union "
                   "bound; CFFD = frozen rank of the achievable patterns",
        measured={r["architecture"]: f"CFFD {r['exact_cffd']} (frozen {r['frozen_generic_rank']}), estimator "
                                     f"{r['estimator_cffd']}, P(hit) at n={sizes[-1]}: {r['hit_fraction'][-1]:.3f}"
                  for r in results},
        tolerance="3 binomial sigma on P(hit); exact otherwise",
        verdict="agrees" if not problems else "disagrees",
        reason=("every sampling prediction holds" if not problems else "; ".join(problems[:4]))
        + f"; estimator shortfall {shortfall}",
        tolerance_note=f"sigma = sqrt(q(1-q)/{draws}) at the bound q; ranks and region counts are exact integers",
        details=details, parameters={"nets": [list(n) for n in nets], "draws": draws, "init": "he",
                                     "batch_sizes": sizes},
        plots=plots)


def _training_setups(context: Context) -> list[tuple[str, TrainingSetup, list[int]]]:
    """(role, setup, seeds) for fd-training: the F12 setting first."""
    base_seed = context.seed
    count = _int_option(context, "seeds", 5)
    seeds = list(range(base_seed, base_seed + count))
    options = context.options
    mnist = options.get("mnist")
    dataset = options.get("dataset", "mnist" if mnist else context.pick("digits4x4", "digits"))
    default_arch = {"digits4x4": "16-8-8-8-10", "digits": "64-10-10-10-10", "synthetic": "20-16-16-16-5",
                    "mnist": "784-30-30-30-10"}.get(dataset, "16-8-8-8-10")
    sizes = {"digits4x4": (100, 100), "digits": (300, 300), "synthetic": (300, 300), "mnist": (600, 2000)}
    n_train, n_test = sizes.get(dataset, (100, 100))
    epochs = TrainingSetup.epochs
    if options.get("epochs"):
        try:
            epochs = tuple(sorted({int(e) for e in str(options["epochs"]).split(",")}))
        except ValueError:
            raise IbcheckError(f"option epochs takes comma-separated whole numbers, "
                               f"got {options['epochs']!r}") from None
        if epochs[0] != 0 or len(epochs) < 2:
            raise IbcheckError("option epochs must list 0 (initialization) and at least one later epoch, e.g. 0,40,680")
    main = TrainingSetup(options.get("architecture", default_arch), dataset,
                         _int_option(context, "n_train", n_train), _int_option(context, "n_test", n_test),
                         epochs=epochs, mnist_path=mnist)
    setups = [("F12", main, seeds)]
    if context.profile == "full" and not options.get("architecture"):
        setups.append(("F11", TrainingSetup("64-20-20-20-10", "digits", 300, 300, epochs=(0, 680),
                                            output_ranks=False), seeds[:2]))
        setups.append(("synthetic", TrainingSetup("20-16-16-16-5", "synthetic", 300, 300), seeds[:3]))
    return setups


def run_training(act, context: Context) -> CheckResult:
    """fd-training: F10 at initialization, F11 and F13 after training, and the paper's claim F12
    (BFD on training and test inputs decreases during training), over several seeds."""
    setups = _training_setups(context)
    with _blas_controller().limit(limits=1, user_api="blas"):
        traces = {role: [bfd_training_run(setup, seed) for seed in seeds] for role, setup, seeds in setups}
        f10_seeds = list(range(context.seed, context.seed + 5))
        f10 = {arch: initialization_bfd(arch, f10_seeds) for arch in ("4-6-4-3", "5-10-10-10-3")}
        sweeps = {}
        if context.profile == "full":
            base = TrainingSetup()
            sweep_seeds = list(range(context.seed, context.seed + 3))
            sweeps = {"width": sweep("width", [4, 8, 12, 16], sweep_seeds, base),
                      "noise": sweep("noise", [0.0, 0.1, 0.3, 1.0], sweep_seeds, base),
                      "random_labels": sweep("random_labels", [0, 25, 50, 100], sweep_seeds, base)}
    _, setup, seeds = setups[0]
    main = traces["F12"]
    bound = setup.arch.rescaling_bound
    evidence = f12_evidence(main)
    ordering = [all(s <= c <= l for s, c, l in zip(t.softmax_train, t.centred_train, t.train)) for t in main
                if t.softmax_train]
    saturation = [t.seed for t in main if t.softmax_train and t.centred_train[-1]
                  and (t.centred_train[-1] - t.softmax_train[-1]) / t.centred_train[-1] > 0.01]
    f10_ok = all(v >= 0.9 for values in f10.values() for v in values)
    f11 = {"evaluated": False, "reason": f"hidden width {min(setup.arch.hidden_widths)} < 20 (F11 is about w >= 20)",
           "gap_points": [100 * (t.random[-1] - t.test[-1]) / bound for t in main]}
    if "F11" in traces:
        f11_bound = setups[1][1].arch.rescaling_bound
        gaps = [100 * (t.random[-1] - t.test[-1]) / f11_bound for t in traces["F11"]]
        f11 = {"evaluated": True, "gap_points": gaps, "holds": all(g >= 10 for g in gaps)}
    details = {
        "parameters": {"architecture": setup.architecture, "dataset": setup.dataset, "n_train": setup.n_train,
                       "n_test": setup.n_test, "n_random": setup.random_count, "epochs": list(setup.epochs),
                       "preset": dict(setup.preset.__dict__), "seeds": seeds,
                       "steps_per_epoch": math.ceil(setup.n_train / setup.preset.batch_size)},
        "bound": bound,
        "input_geometry_bound_train": [t.input_geometry_bound_train for t in main],
        "bfd_init_train": [t.train[0] for t in main], "bfd_end_train": [t.train[-1] for t in main],
        "bfd_min_train": [min(t.train) for t in main],
        "bfd_init_test": [t.test[0] for t in main], "bfd_end_test": [t.test[-1] for t in main],
        "bfd_random_init": [t.random[0] for t in main], "bfd_random_end": [t.random[-1] for t in main],
        "softmax_rank_end": [t.softmax_train[-1] if t.softmax_train else None for t in main],
        "centred_logit_rank_end": [t.centred_train[-1] if t.centred_train else None for t in main],
        "seeds_decreasing": evidence["seeds_decreasing"],
        "f12": evidence,
        "f10": {"fractions": f10, "holds": f10_ok, "seeds": f10_seeds},
        "f11": f11,
        "f13": {"ordering_holds": all(ordering), "saturated_seeds": saturation},
        "final_loss": [t.loss[-1] for t in main], "final_train_accuracy": [t.accuracy[-1] for t in main],
        "min_gap_log10": min(t.min_gap_log10 for t in main),
        "traces": {r: [t.as_dict() for t in ts] for r, ts in traces.items()},
        "sweeps": sweeps,
    }
    epochs = list(setup.epochs)

    def median(key):
        return np.median([getattr(t, key) for t in main], axis=0).tolist()

    series = [Series("train (logits)", epochs, median("train"), "line"),
              Series("test (logits)", epochs, median("test"), "line"),
              Series("random N(0.5, 1) inputs", epochs, median("random"), "line")]
    if setup.output_ranks:
        series += [Series("train, softmax (numerical)", epochs, median("softmax_train"), "dashed"),
                   Series("train, centred logits", epochs, median("centred_train"), "points")]
    series.append(Series("N_par - H", [epochs[0], epochs[-1]], [bound, bound], "dashed"))
    plots = [Plot(f"BFD during training, {setup.architecture} on {setup.dataset} (median of {len(main)} seeds)",
                  "epoch", "BFD", series,
                  note="paper protocol: SGD lr 0.1, minibatch 256, Glorot-uniform, zero biases, cross-entropy; "
                       "BFD on logits")]
    for kind, result in sweeps.items():
        levels = result["levels"]
        plots.append(Plot(f"F14 (paper claim): test BFD after training vs {SWEEPS[kind]}", SWEEPS[kind], "test BFD",
                          [Series("median over seeds", levels,
                                  [float(np.median(result["test_bfd"][str(level)])) for level in levels], "line")],
                          note=f"Spearman rho {result['spearman_rho']:.2f}"))
    k, total = evidence["seeds_decreasing"], evidence["seeds"]
    reproduced = k > total / 2
    reason = (f"paper's decrease {'reproduced' if reproduced else 'not reproduced'}: train and test BFD ended below "
              f"their initial values in {k} of {total} seeds (train {details['bfd_init_train']} -> "
              f"{details['bfd_end_train']}, test {details['bfd_init_test']} -> {details['bfd_end_test']}, median "
              f"change {100 * evidence['median_relative_change_train']:+.1f}% / "
              f"{100 * evidence['median_relative_change_test']:+.1f}%); F10 {'holds' if f10_ok else 'fails'} "
              f"(min fraction {min(min(v) for v in f10.values()):.3f}); F13 ordering "
              f"{'holds' if all(ordering) else 'violated'}, saturated seeds {saturation}")
    return CheckResult(
        "fd-training", act.label,
        prediction="F12 (paper): BFD on training and test inputs ends below its initial value",
        measured=f"{k} of {total} seeds decreasing", tolerance="majority of seeds",
        verdict="agrees" if reproduced else "disagrees", reason=reason,
        tolerance_note="a seed counts when both train and test BFD (exact integer ranks) end strictly below epoch 0",
        details=details, parameters=details["parameters"], plots=plots)


_ARCHITECTURE = Option("network widths N0-N1-...-NL, e.g. 4-8-8-1 (default: random architectures)")
register(Check("fd-theorems", "Functional dimension: theorems F1-F7 on random deep ReLU nets", "F1-F7",
               _applies, run_theorems,
               {"architecture": _ARCHITECTURE, "trials": Option("random (architecture, theta, X) trials", int, 300, 1000)}))
register(Check("fd-sampling", "Functional dimension: CFFD by exact region enumeration and the sampling bound",
               "F8-F9", _applies, run_sampling,
               {"architecture": _ARCHITECTURE, "scale": Option("input box half-width"),
                "draws": Option("sampled inputs per size")}))
register(Check("fd-training", "Functional dimension during training (geometry-induced regularization)", "F10-F13",
               _applies, run_training,
               {"seeds": Option("training seeds", int, 5), "mnist": Option("path to MNIST (IDX or .npz)"),
                "dataset": Option("digits4x4 | digits | synthetic | mnist"),
                "epochs": Option("comma-separated checkpoint epochs starting at 0, e.g. 0,40,680"),
                "architecture": _ARCHITECTURE, "n_train": Option("training inputs"),
                "n_test": Option("test inputs")}))
