r"""The checks ``fd-theorems`` (F1-F7), ``fd-sampling`` (F8-F9 and CFFD's invariance) and
``fd-training`` (F10-F13), expressed for the verdict engine (:mod:`numerics.verdicts`): every
claim is a list of criteria with intervals, a negative control of the same kind judged on the
same measurement, and measured premises.

* Exact integer identities (ranks, counts of violations) are :meth:`Measurement.exact` judged
  with :func:`exactly` / :func:`at_most`; their controls are the same identity off by one (a bound
  one lower, a CFFD one higher), rejected only when the run attains the bound or the value.
* Fractions of trials are :meth:`Measurement.proportion` (Wilson interval).
* F12 (the paper's claim) is the per-seed relative change of BFD from initialization to the end
  of training, on training and on test inputs, :meth:`Measurement.mean` (Student t): ``agrees``
  when both intervals lie below 0, ``disagrees`` when one lies above, ``inconclusive`` when one
  straddles 0; its control is "BFD increases".
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from theory.errors import IbcheckError
from theory.functional_dimension import (hit_lower_bound, necessary_region_estimate, parse_architecture,
                                         relu_only_reason, symbolic_invariance)

from ..checks import JUDGED, REPORTED, Check, CheckResult, Context, Option, Plot, Series, judged_result, \
    positive_float, positive_int, register, replicate_series
from .. import threads
from ..mlp import MLP
from ..verdicts import Criterion, Measurement, Premise, at_least, at_most, control, exactly
from .rank import svd_rank
from .regions import enumerate_regions, exact_cffd, region_masses, region_row_jacobian, sufficient_counts
from .sampling import estimate_cffd, sampling_experiment
from .symmetries import permuted, rescaled
from .theorems import (NULL_VECTOR_TOLERANCE, PERMUTATION_SV_TOLERANCE, ROUTE_TOLERANCE, smallest_bound,
                       summarize_trials, theorem_trials)
from .training import (DATASETS, SWEEPS, TrainingSetup, bfd_training_run, f12_evidence, initialization_bfd,
                       relative_changes, sweep)


def _applies(act) -> str | None:
    return relu_only_reason(act)


# ---- option parsers (ValueError -> a one-line IbcheckError from Context.option) -----------------------
def architecture_text(text: str) -> str:
    """A network ``N0-N1-...-NL`` (validated now, before any allocation)."""
    try:
        return parse_architecture(text).text
    except IbcheckError as err:
        raise ValueError(str(err)) from None


def dataset_name(text: str) -> str:
    if text not in DATASETS:
        raise ValueError(f"unknown dataset {text!r}; known: {', '.join(DATASETS)}")
    return text


def existing_path(text: str) -> str:
    """A local file or directory (MNIST: a directory of IDX files, gzip or not, or an .npz)."""
    if not Path(text).exists():
        raise ValueError(f"{text} does not exist (MNIST is never downloaded: give local IDX files or an .npz)")
    return text


def checkpoint_epochs(text: str) -> tuple[int, ...]:
    """Comma-separated epochs starting at 0, e.g. ``0,40,680``."""
    epochs = tuple(sorted({int(e) for e in text.split(",")}))
    if epochs[0] != 0 or len(epochs) < 2:
        raise ValueError("list 0 (initialization) and at least one later epoch, e.g. 0,40,680")
    return epochs


def torch_device(text: str) -> str:
    """``cpu`` or a CUDA device torch can see (``cuda``, ``cuda:1``)."""
    if text == "cpu":
        return text
    if not text.startswith("cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], got {text!r}")
    if not torch.cuda.is_available():
        raise ValueError("torch sees no CUDA device on this machine")
    torch.device(text)  # raises on a malformed name
    return text


# ---- fd-theorems -------------------------------------------------------------------------------------
#: F4's accepted fraction: the theorem gives equality for almost every (theta, X, theta', X'); a
#: float rank can tie with the tolerance on a handful of draws, so 2% are allowed (observed 0/300)
F4_FRACTION = 0.98
#: premise: at most this fraction of the trials' ranks may be ill-determined (3.1)
ILL_DETERMINED_FRACTION = 0.01


def theorem_claim(details: dict, proof_holds: bool) -> tuple[list[Criterion], Criterion, list[Premise]]:
    """Criteria, control and premises of fd-theorems from :func:`summarize_trials` details."""
    trials = details["trials"]
    excess = Measurement.exact(details["max_excess_over_bound"])
    criteria = [
        Criterion("F1/F6: max over trials of BFD - (smallest proven bound)", "<= 0", excess, at_most(0),
                  "bounds: n N_L, N_par - H, region, input-geometry, dead/always-active deficits; exact integers"),
        Criterion("F2: max ||J v|| / (s_max ||v||) over rescaling vectors", 0,
                  Measurement.exact(details["max_null_vector_residual"]), at_most(NULL_VECTOR_TOLERANCE),
                  "float64 rounding allowance (observed ~1e-16)"),
        Criterion("F3: rank changes under rescaling or permutation", 0,
                  Measurement.exact(details["invariance_failures"]), exactly(0), "exact integer ranks"),
        Criterion("F3: max singular-value change under permutation / s_max", 0,
                  Measurement.exact(details["max_permutation_sv_diff"]), at_most(PERMUTATION_SV_TOLERANCE),
                  "SVD backward error ~1e-15 s_max"),
    ]
    if details["frozen_pattern_trials"]:
        criteria.append(Criterion("F4: fraction of general-position trials with frozen-pattern rank = BFD", 1,
                                  Measurement.proportion(details["frozen_pattern_agreeing"],
                                                         details["frozen_pattern_trials"]),
                                  at_least(F4_FRACTION), "Wilson 95% interval; the theorem gives 1 almost surely"))
    if details["closed_form_trials"]:
        criteria.append(Criterion("F5: shallow scalar closed-form rank != BFD (trials)", 0,
                                  Measurement.exact(details["closed_form_mismatches"]), exactly(0),
                                  f"{details['closed_form_trials']} shallow scalar trials"))
    if details["exact_trials"]:
        criteria.append(Criterion("F7: float64 rank != exact rational rank (trials)", 0,
                                  Measurement.exact(details["exact_rank_mismatches"]), exactly(0),
                                  f"{details['exact_trials']} small Jacobians ranked over Q"))
    criteria += [
        Criterion("F7: autodiff vs closed-form Jacobian, max |diff| / max |J|", 0,
                  Measurement.exact(details["jacobian_route_max_diff"]), at_most(ROUTE_TOLERANCE),
                  "float64 rounding allowance (observed ~1e-16)"),
        Criterion("F3 (symbolic): f(T theta) = f(theta) proved by sympy", 1, Measurement.exact(int(proof_holds)),
                  exactly(1), "a proof: 1 = holds"),
    ]
    wrong = control("bound one lower: max(BFD - bound) <= -1", "<= -1", excess, at_most(-1),
                    "rejected when some trial attains its bound (the bounds are tight, the test can fail)")
    ill = details["ill_determined_ranks"]
    premises = [
        Premise("ranks well determined (gap >= 3 decades, nothing within 10x of the tolerance)",
                f"{ill} of {trials} ill-determined", ill <= ILL_DETERMINED_FRACTION * trials,
                "an ill-determined float rank is not evidence about an exact identity"),
        Premise("general-position trials have inputs of full affine rank", details["general_position_full_rank"],
                details["general_position_full_rank"] == details["frozen_pattern_trials"],
                "F4's strong form is claimed for inputs in general position only"),
    ]
    return criteria, wrong, premises


def run_theorems(act, context: Context) -> CheckResult:
    """fd-theorems: F1-F7 on random (architecture, theta, X), plus the symbolic invariance proof."""
    spec = context.option("architecture")
    arch = parse_architecture(spec) if spec else None
    count = context.option("trials")
    with threads.small_work():
        trials = theorem_trials(count, seed=context.seed, architecture=arch, exact_count=context.pick(20, 60))
    details = summarize_trials(trials)
    proof = symbolic_invariance()
    details["symbolic_invariance"] = dict(proof.__dict__)
    criteria, wrong, premises = theorem_claim(details, proof.holds)
    bounds = [smallest_bound(t) for t in trials]
    plot = Plot("BFD against its smallest proven upper bound", "smallest proven upper bound", "BFD",
                [Series("trials", bounds, [t["bfd"] for t in trials], "points"),
                 Series(f"BFD <= bound ({JUDGED}, F1, F6)", [0, max(bounds)], [0, max(bounds)], "prediction")],
                note="every point must lie on or below the dashed line (F1, F6); points on it make the control fail")
    return judged_result(
        "fd-theorems", act, criteria, wrong, premises,
        setup=f"{count} random (architecture, theta, X)" + (f" on {arch}" if arch else "") + f", seed {context.seed}",
        details=details, plots=[plot],
        parameters={"trials": count, "architecture": arch.text if arch else "random",
                    "init": "he (biases N(0, 0.1^2))", "lambda_range": [0.5, 2.0]})


# ---- fd-sampling -------------------------------------------------------------------------------------
#: default nets of fd-sampling: (architecture, input scale s of N(0, s^2 I))
SAMPLING_NETS = {"quick": (("1-10-1", 1.0), ("2-4-4-1", 2.0)),
                 "full": (("1-10-1", 1.0), ("2-4-4-1", 2.0), ("2-6-5-2", 3.0))}


def cffd_under_symmetries(net: MLP, seed: int) -> dict:
    r"""CFFD of :math:`T_\lambda\theta` and :math:`\pi\theta` (a random hidden layer, :math:`\lambda`
    in [0.5, 2], 1.6) from their own enumerated regions: the theorem says both equal CFFD(theta)."""
    rng = np.random.default_rng(seed + 11)
    layer = int(rng.integers(1, net.arch.depth))
    out = {"layer": layer}
    for name, moved in (("rescaled", rescaled(net, layer, rng.uniform(0.5, 2.0, net.arch.widths[layer]))),
                        ("permuted", permuted(net, layer, rng.permutation(net.arch.widths[layer])))):
        regions = enumerate_regions(moved)
        out[name] = svd_rank(region_row_jacobian(moved, regions)).rank
        out[f"{name}_regions"] = len(regions)
    return out


def binomial_margin(q: float, draws: int) -> float:
    r"""How far an empirical P(hit) over ``draws`` draws may miss a bound q before F8 counts it:
    3 binomial sigma of the bound, :math:`3\sqrt{q(1-q)/\text{draws}}` (q clipped to [0, 1])."""
    q = min(max(q, 0.0), 1.0)
    return 3 * math.sqrt(q * (1 - q) / draws)


def sampling_measurements(arch: str, scale: float, sizes: list[int], draws: int, seed: int) -> dict:
    from theory.functional_dimension import hit_upper_bound, sufficient_set_lower_bound

    net = MLP.initialize(arch, "he", seed)
    cffd = exact_cffd(net, seed=seed)
    masses = region_masses(cffd.regions, scale)
    counts = sufficient_counts(net, cffd, masses, seed=seed)
    run = sampling_experiment(net, cffd, sizes, draws, scale, seed=seed)
    estimate = estimate_cffd(net, seed=seed)
    symmetries = cffd_under_symmetries(net, seed)
    dim = net.arch.input_dim
    hit = run.hit_fraction(cffd.cffd)
    lower = [hit_lower_bound(masses, n, dim) for n in sizes]
    sufficient = [sufficient_set_lower_bound(masses, counts, n) for n in sizes]
    upper = [hit_upper_bound(masses, cffd.required, n) for n in sizes]
    necessary = [necessary_region_estimate(masses, counts, n) for n in sizes]

    below_lower = [n for n, h, b in zip(sizes, hit, lower) if h < b - binomial_margin(b, draws)]
    below_sufficient = [n for n, h, b in zip(sizes, hit, sufficient) if h < b - binomial_margin(b, draws)]
    above_upper = [n for n, h, b in zip(sizes, hit, upper) if h > b + binomial_margin(b, draws)]
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
        "cffd_rescaled": symmetries["rescaled"], "cffd_permuted": symmetries["permuted"],
        "symmetry_layer": symmetries["layer"],
    }


def sampling_claim(results: list[dict]) -> tuple[list[Criterion], Criterion, list[Premise]]:
    """Criteria, control and premises of fd-sampling from :func:`sampling_measurements` records."""

    def total(key):
        return Measurement.exact(sum(r[key] if isinstance(r[key], int) else len(r[key]) for r in results))

    def worst(key_a, key_b):
        return Measurement.exact(max(abs(r[key_a] - r[key_b]) for r in results))

    exact_note = "exact integers (ranks, counts)"
    sigma_note = "sizes n where the empirical P(hit) misses the bound by > 3 binomial sigma, sqrt(q(1-q)/draws)"
    decisive = worst("decisive_bfd", "exact_cffd")
    criteria = [
        Criterion("F8: n -> BFD(X_n) decreases (nested batches)", 0, total("monotone_violations"), exactly(0),
                  exact_note),
        Criterion("F8: BFD above the exact CFFD", 0, total("above_cffd"), exactly(0), exact_note),
        Criterion("F8: every region holds N_0 + 1 points but BFD < CFFD", 0, total("complete_not_hit"), exactly(0),
                  exact_note),
        Criterion("F8: reduced-point-set rank differs from the full batch", 0, total("reduction_mismatches"),
                  exactly(0), exact_note),
        Criterion("F8: P(hit) below the union lower bound (sizes)", 0, total("below_union_bound_at"), exactly(0),
                  sigma_note),
        Criterion("F8: P(hit) below the sufficient-set lower bound (sizes)", 0, total("below_sufficient_bound_at"),
                  exactly(0), sigma_note),
        Criterion("F8: P(hit) above the necessary-region upper bound (sizes)", 0, total("above_upper_bound_at"),
                  exactly(0), sigma_note),
        Criterion("F9: max |frozen rank of the achievable patterns - CFFD|", 0,
                  worst("frozen_generic_rank", "exact_cffd"), exactly(0), exact_note),
        Criterion("CFFD: max |decisive-set BFD - CFFD|", 0, decisive, exactly(0),
                  "BFD at N_0 + 1 points inside every region (SVD of J) vs the rank of the regions' row spaces"),
        Criterion("CFFD invariance: max |CFFD(T_lambda theta) - CFFD(theta)|", 0, worst("cffd_rescaled", "exact_cffd"),
                  exactly(0), "regions re-enumerated for the rescaled net, lambda in [0.5, 2]"),
        Criterion("CFFD invariance: max |CFFD(pi theta) - CFFD(theta)|", 0, worst("cffd_permuted", "exact_cffd"),
                  exactly(0), "regions re-enumerated for the permuted net"),
        Criterion("estimator: min (CFFD - estimate), never above CFFD", ">= 0",
                  Measurement.exact(min(r["estimator_shortfall"] for r in results)), at_least(0),
                  "the estimator ranks real batches: it can only fall short"),
    ]
    wrong = control("a wrong CFFD (one higher): |decisive-set BFD - CFFD| = 1", 1, decisive, exactly(1),
                    "the same decisive-set measurement against CFFD + 1")
    unknown = sum(r["unknown_patterns"] for r in results)
    premises = [Premise("region enumeration complete: sampled patterns outside the enumerated regions", unknown,
                        unknown == 0, "the exact CFFD needs every achievable region")]
    return criteria, wrong, premises


def _hit_plot(r: dict, sizes: list[int], draws: int) -> Plot:
    """Empirical P(BFD = CFFD) against F8's judged bounds, each drawn with the 3-sigma region inside
    which the criteria accept it (:func:`binomial_margin`); bounds clipped to [0, 1]."""
    def bound(label: str, values, side: int) -> Series:
        q = [min(max(v, 0.0), 1.0) for v in values]
        margin = [binomial_margin(v, draws) for v in q]
        return Series(f"{label} ({JUDGED})", sizes, q, "prediction",
                      low=[v - m if side < 0 else v for v, m in zip(q, margin)],
                      high=[v + m if side > 0 else v for v, m in zip(q, margin)])

    return Plot(f"P(BFD = CFFD) vs n, {r['architecture']} (CFFD {r['exact_cffd']}, {r['regions']} regions)",
                "batch size n", "probability",
                [Series(f"empirical P(hit), {draws} draws", sizes, r["hit_fraction"], "points"),
                 bound("union lower bound (1.8)", r["hit_lower_bound"], -1),
                 bound("sufficient-set lower bound", r["sufficient_lower_bound"], -1),
                 bound("upper bound (must-fill regions)", r["hit_upper_bound"], +1),
                 Series(f"necessary-region estimate ({REPORTED})", sizes, r["necessary_region_estimate"], "reported")],
                xscale="log", note="bands: the 3 binomial sigma of each bound within which F8 accepts P(hit); the "
                                   "union bound of the notes is vacuous (<= 0) wherever it is drawn at 0")


def run_sampling(act, context: Context) -> CheckResult:
    """fd-sampling: F8 (nested batches, P(hit) against the bounds), F9 (CFFD = frozen rank of the
    achievable patterns) and CFFD's invariance under the symmetries, on 1D and 2D nets whose
    regions are enumerated exactly."""
    spec = context.option("architecture")
    if spec:
        arch = parse_architecture(spec)
        if arch.input_dim > 2:
            raise IbcheckError(f"fd-sampling enumerates regions exactly for input dimension 1 or 2; {arch} has "
                               f"{arch.input_dim}")
        nets = ((arch.text, context.option("scale")),)
    else:
        nets = SAMPLING_NETS[context.profile]
    draws = context.option("draws")
    sizes = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000] + context.pick([], [50000, 100000])
    with threads.small_work():
        results = [sampling_measurements(arch, scale, sizes, draws, context.seed) for arch, scale in nets]
    criteria, wrong, premises = sampling_claim(results)
    details = {key: {r["architecture"]: r[key] for r in results} for key in results[0]}
    details["batch_sizes"] = sizes
    details["draws"] = draws
    plots = [_hit_plot(r, sizes, draws) for r in results]
    return judged_result(
        "fd-sampling", act, criteria, wrong, premises,
        setup=f"nets {', '.join(f'{a} (inputs N(0, {s:g}^2))' for a, s in nets)}, {draws} draws per size, "
              f"seed {context.seed}",
        details=details, plots=plots,
        parameters={"nets": [list(n) for n in nets], "draws": draws, "init": "he", "batch_sizes": sizes})


# ---- fd-training -------------------------------------------------------------------------------------
#: per dataset: default architecture and (n_train, n_test); MNIST is the paper's [784, 30, 30, 30, 10]
#: with the public script's 600 training and 2000 evaluation inputs
DATASET_DEFAULTS = {"digits4x4": ("16-8-8-8-10", 100, 100), "digits": ("64-10-10-10-10", 300, 300),
                    "synthetic": ("20-16-16-16-5", 300, 300), "mnist": ("784-30-30-30-10", 600, 2000)}
#: F11's setting: width 20 (the claim is about w >= 20) with n_test N_L = 2000 > N_par - H = 1330 (caps not
#: binding); ranked once, at the F12 setting's last checkpoint
F11_SETUP = TrainingSetup("16-20-20-20-10", "digits4x4", 100, 200, epochs=(680,), output_ranks=False)
F10_ARCHITECTURES = ("4-6-4-3", "5-10-10-10-3")
#: F10: Gaussian-input BFD at initialization >= this fraction of N_par - H (narrowing architectures)
F10_FRACTION = 0.9
#: F11: random-input BFD exceeds test BFD by >= this many points of N_par - H after training
F11_POINTS = 10.0
#: premise: training converged when the final training loss is below this fraction of the initial one
CONVERGED_LOSS_RATIO = 0.1


def f12_setup(context: Context) -> TrainingSetup:
    """The F12 setting from the options (defaults per dataset, MNIST when a path is given)."""
    mnist = context.option("mnist")
    dataset = context.option("dataset") or ("mnist" if mnist else context.pick("digits4x4", "digits"))
    architecture, n_train, n_test = DATASET_DEFAULTS[dataset]
    epochs = context.option("epochs")
    return TrainingSetup(context.option("architecture") or architecture, dataset,
                         context.option("n_train") or n_train, context.option("n_test") or n_test,
                         epochs=epochs or TrainingSetup.epochs, mnist_path=mnist,
                         output_ranks=dataset != "mnist", device=context.option("device"))


def training_claim(main: list, f10: dict, f11: list,
                   bound_f11: int) -> tuple[list[Criterion], Criterion, list[Premise]]:
    """Criteria (F12 train and test, F10, F11, and reported F12 fractions), control and premises."""
    train = Measurement.mean(relative_changes(main, "train"))
    test = Measurement.mean(relative_changes(main, "test"))
    note = "per-seed (BFD_end - BFD_0) / BFD_0, Student t 95%; exact integer ranks"
    evidence = f12_evidence(main)
    criteria = [
        Criterion("F12 (paper): relative change of train BFD, init -> end", "< 0", train, at_most(0), note, min_n=5),
        Criterion("F12 (paper): relative change of test BFD, init -> end", "< 0", test, at_most(0), note, min_n=5),
        Criterion(f"F10: BFD / (N_par - H) at init, Gaussian inputs ({', '.join(f10)})", f">= {F10_FRACTION}",
                  Measurement.mean([v for values in f10.values() for v in values]), at_least(F10_FRACTION),
                  "He-normal init, n N_L about 3 (N_par - H); every (architecture, seed) a replicate"),
        Criterion(f"F11: (BFD random - BFD test) / (N_par - H) after training, {F11_SETUP.architecture}, points",
                  f">= {F11_POINTS}", Measurement.mean([100 * (t.random[-1] - t.test[-1]) / bound_f11 for t in f11]),
                  at_least(F11_POINTS), f"{F11_SETUP.dataset}, n_test N_L = {10 * F11_SETUP.n_test} > N_par - H"),
        Criterion("F12: fraction of seeds with train and test BFD both lower at the end (reported)", "> 0.5",
                  Measurement.proportion(evidence["seeds_decreasing"], evidence["seeds"]), at_least(0.5),
                  "Wilson 95%; the judged form is the mean change above", judged=False),
        Criterion("F12: relative change of train BFD, init -> minimum over checkpoints (reported)", "< 0",
                  Measurement.mean([(min(t.train) - t.train[0]) / t.train[0] for t in main]), at_most(0),
                  "a transient dip is not the paper's claim", judged=False),
    ]
    wrong = control("BFD increases during training (train)", ">= 0", train, at_least(0),
                    "the opposite trend, judged on the same per-seed changes")
    converged = [t.loss[-1] <= CONVERGED_LOSS_RATIO * t.loss[0] for t in main]
    ill = sum(t.ill_determined for t in main)
    premises = [
        Premise(f"training converged (final loss <= {CONVERGED_LOSS_RATIO:g} x initial) in every seed",
                f"{sum(converged)} of {len(main)}; final losses {[round(t.loss[-1], 4) for t in main]}", all(converged),
                "F12 is about trained networks"),
        Premise("logit ranks well determined (gap >= 3 decades, nothing within 10x of the tolerance)",
                f"{ill} ill-determined ranks", ill == 0, "an ill-determined rank is not evidence of a change"),
    ]
    return criteria, wrong, premises


def run_training(act, context: Context) -> CheckResult:
    """fd-training: F10 at initialization, F11 after training (width 20), F13 (reported) and the
    paper's claim F12 (BFD on training and test inputs decreases during training) over seeds."""
    setup = f12_setup(context)
    seeds = list(range(context.seed, context.seed + context.option("seeds")))
    f11_seeds = seeds[:context.pick(3, 5)]
    f11_setup = replace(F11_SETUP, epochs=(max(setup.epochs),))  # F11 reads the end point only
    with threads.small_work():
        main = [bfd_training_run(setup, seed) for seed in seeds]
        f11 = [bfd_training_run(f11_setup, seed) for seed in f11_seeds]
        f10_seeds = list(range(context.seed, context.seed + 5))
        f10 = {arch: initialization_bfd(arch, f10_seeds) for arch in F10_ARCHITECTURES}
        sweeps = {}
        if context.profile == "full":
            base = TrainingSetup()
            sweep_seeds = list(range(context.seed, context.seed + 3))
            sweeps = {"width": sweep("width", [4, 8, 12, 16], sweep_seeds, base),
                      "noise": sweep("noise", [0.0, 0.1, 0.3, 1.0], sweep_seeds, base),
                      "random_labels": sweep("random_labels", [0, 25, 50, 100], sweep_seeds, base)}
    criteria, wrong, premises = training_claim(main, f10, f11, F11_SETUP.arch.rescaling_bound)
    bound = setup.arch.rescaling_bound
    evidence = f12_evidence(main)
    ordering = [all(s <= c <= l for s, c, l in zip(t.softmax_train, t.centred_train, t.train)) for t in main
                if t.softmax_train]
    saturation = [t.seed for t in main if t.softmax_train and t.centred_train[-1]
                  and (t.centred_train[-1] - t.softmax_train[-1]) / t.centred_train[-1] > 0.01]
    parameters = {"architecture": setup.architecture, "dataset": setup.dataset, "n_train": setup.n_train,
                  "n_test": setup.n_test, "n_random": setup.random_count, "epochs": list(setup.epochs),
                  "preset": dict(setup.preset.__dict__), "seeds": seeds, "device": setup.device,
                  "steps_per_epoch": math.ceil(setup.n_train / setup.preset.batch_size)}
    details = {
        "parameters": parameters, "bound": bound,
        "input_geometry_bound_train": [t.input_geometry_bound_train for t in main],
        "bfd_init_train": [t.train[0] for t in main], "bfd_end_train": [t.train[-1] for t in main],
        "bfd_min_train": [min(t.train) for t in main],
        "bfd_init_test": [t.test[0] for t in main], "bfd_end_test": [t.test[-1] for t in main],
        "bfd_random_init": [t.random[0] for t in main], "bfd_random_end": [t.random[-1] for t in main],
        "softmax_rank_end": [t.softmax_train[-1] if t.softmax_train else None for t in main],
        "centred_logit_rank_end": [t.centred_train[-1] if t.centred_train else None for t in main],
        "seeds_decreasing": evidence["seeds_decreasing"], "f12": evidence,
        "f10": {"fractions": f10, "seeds": f10_seeds},
        "f11": {"setup": F11_SETUP.architecture, "seeds": f11_seeds, "epochs": list(f11_setup.epochs),
                "gap_points": [100 * (t.random[-1] - t.test[-1]) / F11_SETUP.arch.rescaling_bound for t in f11]},
        "f13": {"ordering_holds": all(ordering), "saturated_seeds": saturation},
        "final_loss": [t.loss[-1] for t in main], "final_train_accuracy": [t.accuracy[-1] for t in main],
        "min_gap_log10": min(t.min_gap_log10 for t in main),
        "traces": {"F12": [t.as_dict() for t in main], "F11": [t.as_dict() for t in f11]},
        "sweeps": sweeps,
    }
    epochs = list(setup.epochs)

    def seeds_of(key):
        return [getattr(t, key) for t in main]

    def change(which):
        return [[100 * (v - getattr(t, which)[0]) / getattr(t, which)[0] for v in getattr(t, which)] for t in main]

    series = [replicate_series("train (logits)", epochs, seeds_of("train")),
              replicate_series("test (logits)", epochs, seeds_of("test")),
              replicate_series("random N(0.5, 1) inputs", epochs, seeds_of("random"))]
    if setup.output_ranks:
        series += [replicate_series("train, softmax (numerical)", epochs, seeds_of("softmax_train"), "dashed"),
                   replicate_series("train, centred logits", epochs, seeds_of("centred_train"), "points")]
    series.append(Series(f"N_par - H (upper bound, {REPORTED})", [epochs[0], epochs[-1]], [bound, bound], "reported"))
    plots = [Plot(f"BFD during training, {setup.architecture} on {setup.dataset} (mean of {len(main)} seeds)",
                  "epoch", "BFD", series,
                  note="paper protocol: SGD lr 0.1, minibatch 256, Glorot-uniform, zero biases, cross-entropy; "
                       "BFD on logits; bands: 95% Student-t interval over the seeds"),
             Plot("F12: relative change of BFD from initialization", "epoch", "change (%)",
                  [replicate_series("train", epochs, change("train")), replicate_series("test", epochs, change("test")),
                   Series(f"< 0 at the end ({JUDGED}, F12)", [epochs[0], epochs[-1]], [0.0, 0.0], "prediction")],
                  note=f"mean of {len(main)} seeds with the 95% Student-t band; at the last epoch it is the "
                       "interval the verdict judges")]
    for kind, result in sweeps.items():
        levels = result["levels"]
        plots.append(Plot(f"F14 (paper claim): test BFD after training vs {SWEEPS[kind]}", SWEEPS[kind], "test BFD",
                          [Series(f"median over seeds ({REPORTED})", levels,
                                  [float(np.median(result["test_bfd"][str(level)])) for level in levels], "line")],
                          note=f"Spearman rho {result['spearman_rho']:.2f}"))
    return judged_result(
        "fd-training", act, criteria, wrong, premises,
        setup=f"{setup.architecture} on {setup.dataset} ({setup.n_train} train, {setup.n_test} test), "
              f"{len(seeds)} seeds from {context.seed}, checkpoints {epochs}",
        details=details, parameters=parameters, plots=plots)


_ARCHITECTURE = Option("network widths N0-N1-...-NL, e.g. 4-8-8-1 (default: the check's own)", architecture_text)
register(Check("fd-theorems", "Functional dimension: theorems F1-F7 on random deep ReLU nets", "F1-F7",
               _applies, run_theorems,
               {"architecture": _ARCHITECTURE,
                "trials": Option("random (architecture, theta, X) trials", positive_int, 300, 1000)}))
register(Check("fd-sampling", "Functional dimension: CFFD by exact region enumeration and the sampling bound",
               "F8-F9", _applies, run_sampling,
               {"architecture": _ARCHITECTURE,
                "scale": Option("input scale s of N(0, s^2 I) for a chosen architecture", positive_float, 2.0),
                "draws": Option("independent nested draws per batch size", positive_int, 200)}))
register(Check("fd-training", "Functional dimension during training (geometry-induced regularization)", "F10-F13",
               _applies, run_training,
               {"seeds": Option("training seeds for F12 (quick >= 5, full 20)", positive_int, 5, 20),
                "mnist": Option("local MNIST: a directory of IDX files (gzip or not) or an .npz; implies "
                                "dataset=mnist", existing_path),
                "dataset": Option(f"{' | '.join(DATASETS)} (default digits4x4 quick, digits full)", dataset_name),
                "epochs": Option("comma-separated checkpoint epochs starting at 0 (default 0,40,80,280,680)",
                                 checkpoint_epochs),
                "architecture": _ARCHITECTURE,
                "n_train": Option("training inputs (default per dataset: 100, 300, 600 for MNIST)", positive_int),
                "n_test": Option("test inputs (default per dataset: 100, 300, 2000 for MNIST)", positive_int),
                "device": Option("where the Gram routes factor at the paper's scale: cpu (LAPACK) | cuda[:N] (torch, float64)",
                                 torch_device, "cpu")}))
