"""Random (architecture, theta, X) trials of F1-F7."""

from __future__ import annotations

import numpy as np
import torch

from theory.functional_dimension import Architecture, always_active_deficit, dead_neuron_deficit

from ..mlp import MLP
from ..progress import progress
from .jacobian import jacobian_autodiff, jacobian_blocks
from .symmetries import permuted, rescaled, rescaling_null_vectors
from .rank import svd_rank
from .bfd import (affine_rank, closed_form_rank, dead_and_active, exact_bfd, exact_frozen_rank,
                  frozen_pattern_rank, region_count)
from .sampling import _preactivation


# ---- theorem trials (F1-F7) ------------------------------------------------------------------------
#: F2: ||J v|| <= this * s_max(J) * ||v|| for the rescaling vectors (float64; observed ~1e-16)
NULL_VECTOR_TOLERANCE = 1e-10
#: F3: singular values under a permutation equal to this * s_max (SVD backward error ~ 1e-15 s_max)
PERMUTATION_SV_TOLERANCE = 1e-12
#: F7: autodiff and closed-form Jacobians agree to this * max|J| (observed ~1e-16)
ROUTE_TOLERANCE = 1e-10
#: F7 runs the exact rational rank only on Jacobians at most this large (sympy over big integers)
EXACT_MAX_ENTRIES = 500


def random_architecture(rng: np.random.Generator, shallow_scalar: bool = False) -> Architecture:
    """A small random architecture: depth 2-4, input 1-4, hidden widths 1-7, outputs 1-3."""
    if shallow_scalar:
        return Architecture((int(rng.integers(1, 5)), int(rng.integers(1, 8)), 1))
    depth = int(rng.integers(2, 5))
    hidden = [int(rng.integers(1, 8)) for _ in range(depth - 1)]
    return Architecture((int(rng.integers(1, 5)), *hidden, int(rng.integers(1, 4))))


def _set_bias(net: MLP, layer: int, neuron: int, value: float) -> MLP:
    biases = [b.detach().clone() for b in net.biases]
    biases[layer - 1][neuron] = value
    return MLP(net.arch, [w.detach() for w in net.weights], biases, net.activation)


def theorem_trial(arch: Architecture, n: int, seed: int, kind: str = "gaussian", exact: bool = False) -> dict:
    r"""One random (theta, X) on ``arch`` and every F1-F7 comparison on it.

    ``kind``: ``gaussian`` (inputs in general position), ``coplanar`` (inputs on an affine
    hyperplane, N_0 >= 2: the input-geometry bound bites, F4's strong form is not claimed),
    ``dead`` (one hidden neuron moved off every input), ``active`` (1-3 neurons of a layer active
    on every input).  He-normal weights, biases N(0, 0.1^2) (nonzero, as the deficit bounds need).
    """
    rng = np.random.default_rng(seed)
    net = MLP.initialize(arch, "he", seed)
    x = rng.standard_normal((n, arch.input_dim))
    if kind == "coplanar":
        # exactly coplanar in binary arithmetic (halving is exact; an added offset would round and
        # leave the exact rational rank a 1e-17 tilt to see)
        x[:, -1] = 0.5 * x[:, 0]
    record = {"architecture": arch.text, "n": n, "seed": seed, "kind": kind}
    if kind in ("dead", "active"):
        units = arch.hidden_units()
        layer = units[int(rng.integers(len(units)))][0]
        chosen = [int(rng.integers(arch.widths[layer]))] if kind == "dead" else \
            [int(j) for j in rng.choice(arch.widths[layer], size=int(rng.integers(1, min(3, arch.widths[layer]) + 1)),
                                        replace=False)]
        for neuron in chosen:  # shift the bias just past the extreme pre-activation on X
            with torch.no_grad():
                z = _preactivation(net, torch.as_tensor(x), layer)[:, neuron]
                bias = float(net.biases[layer - 1][neuron])
                net = _set_bias(net, layer, neuron, bias - float(z.max()) - 0.05 if kind == "dead"
                                else bias - float(z.min()) + 0.05)
    jac_auto = jacobian_autodiff(net, x).numpy()
    jac = jacobian_blocks(net, x)
    scale = max(float(np.abs(jac).max()), 1e-300)
    record["route_diff"] = float(np.abs(jac_auto - jac).max() / scale)
    rank = svd_rank(jac)
    bfd = rank.rank
    record.update(bfd=bfd, gap_log10=rank.gap_log10, ill_determined=rank.ill_determined, bound=arch.bound(n))
    pattern = net.pattern(torch.as_tensor(x))
    # F1, F6: bounds
    regions, x_rank = region_count(pattern), affine_rank(x)
    record.update(region_bound=arch.region_bound(regions), input_geometry_bound=arch.input_geometry_bound(x_rank))
    dead, active = dead_and_active(pattern, arch)
    deficit = arch.rescaling_bound - bfd
    dead_bound = dead_neuron_deficit(arch, dead) if dead else 0
    active_bounds = [always_active_deficit(arch, layer, count) for layer, count in active.items()] \
        if kind == "active" else []
    active_bound = max([b for b in active_bounds if b is not None], default=0)
    record.update(deficit=deficit, dead_neurons=len(dead), dead_bound=dead_bound, active_bound=active_bound)
    record["bound_violations"] = [name for name, ok in [
        ("F1", bfd <= arch.bound(n)), ("F6-region", bfd <= record["region_bound"]),
        ("F6-input-geometry", bfd <= record["input_geometry_bound"]),
        ("F6-dead", deficit >= dead_bound), ("F6-active", deficit >= active_bound)] if not ok]
    # F2: rescaling vectors in the kernel
    vectors = rescaling_null_vectors(net)
    norms = np.linalg.norm(vectors, axis=1)
    residual = np.linalg.norm(jac @ vectors.T, axis=0) / (max(rank.s_max, 1e-300) * np.maximum(norms, 1e-300))
    record["null_vector_residual"] = float(residual.max()) if len(residual) else 0.0
    # F3: rescaling and permutation of a random hidden layer
    layer = int(rng.integers(1, arch.depth))
    lambdas = rng.uniform(0.5, 2.0, arch.widths[layer])
    moved = rescaled(net, layer, lambdas)
    rank_rescaled = svd_rank(jacobian_blocks(moved, x)).rank
    perm = rng.permutation(arch.widths[layer])
    swapped = permuted(net, layer, perm)
    rank_permuted = svd_rank(jacobian_blocks(swapped, x))
    sv_diff = float(np.abs(rank_permuted.singular_values - rank.singular_values).max() / max(rank.s_max, 1e-300))
    record.update(rank_rescaled=rank_rescaled, rank_permuted=rank_permuted.rank, permutation_sv_diff=sv_diff)
    record["invariance_failures"] = [name for name, ok in [
        ("F2", record["null_vector_residual"] <= NULL_VECTOR_TOLERANCE),
        ("F3-rescaling", rank_rescaled == bfd), ("F3-permutation", rank_permuted.rank == bfd),
        ("F3-singular-values", sv_diff <= PERMUTATION_SV_TOLERANCE)] if not ok]
    # F4: frozen-pattern rank at an independent theta' (same X), and at theta' and X' (general position)
    record["frozen_rank_same_x"] = frozen_pattern_rank(arch, pattern, x, seed=seed + 1).rank
    record["frozen_rank"] = frozen_pattern_rank(arch, pattern, rng.standard_normal(x.shape), seed=seed + 2).rank
    record["general_position"] = kind != "coplanar"
    record["full_affine_rank"] = x_rank == min(n, arch.input_dim + 1)  # measured, not assumed
    # F5: shallow scalar closed form
    if arch.depth == 2 and arch.output_dim == 1:
        record["closed_form_rank"] = closed_form_rank(pattern, x).rank
    # F7: exact rational ranks on small Jacobians
    if exact and jac.size <= EXACT_MAX_ENTRIES:
        record["exact_bfd"] = exact_bfd(net, x)
        record["exact_frozen_rank"] = exact_frozen_rank(arch, pattern, seed=seed + 3)
        other = rng.standard_normal(x.shape)
        record["float_frozen_rank"] = frozen_pattern_rank(arch, pattern, other, seed=seed + 4).rank
    return record


def theorem_trials(count: int, seed: int = 0, architecture: Architecture | None = None,
                   exact_count: int = 30) -> list[dict]:
    """``count`` trials: a quarter shallow scalar (F5), a tenth each coplanar / dead / active,
    n random with n N_L up to 1.5 (N_par - H); the first ``exact_count`` small ones also exact (F7)."""
    rng = np.random.default_rng(seed)
    kinds = ["gaussian"] * 7 + ["coplanar", "dead", "active"]
    trials, exact_done = [], 0
    with progress(count, "fd theorem trials") as bar:
        for index in range(count):
            arch = architecture or random_architecture(rng, shallow_scalar=index % 4 == 0)
            kind = kinds[index % len(kinds)]
            if kind == "coplanar" and arch.input_dim < 2:
                kind = "gaussian"
            limit = max(2, int(1.5 * arch.rescaling_bound / arch.output_dim))
            # deficit bounds are informative only when n N_L exceeds N_par - H
            n = int(rng.integers(1, limit + 1)) if kind not in ("dead", "active") else 2 * limit
            exact = exact_done < exact_count and n * arch.output_dim * arch.n_parameters <= EXACT_MAX_ENTRIES
            trials.append(theorem_trial(arch, n, int(rng.integers(2**31)), kind, exact))
            exact_done += exact
            bar.update(1)
    return trials


def smallest_bound(trial: dict) -> int:
    """The smallest proven upper bound on BFD in a :func:`theorem_trial` record: min(n N_L, N_par - H),
    the region and input-geometry bounds (1.5.3-4) and N_par - H minus the dead/active deficits (1.5.5)."""
    rescaling = trial["bfd"] + trial["deficit"]
    return min(trial["bound"], trial["region_bound"], trial["input_geometry_bound"],
               rescaling - trial["dead_bound"], rescaling - trial["active_bound"])


def summarize_trials(trials: list[dict]) -> dict:
    """The fd-theorems details from a list of :func:`theorem_trial` records."""
    general = [t for t in trials if t["general_position"]]
    shallow = [t for t in trials if "closed_form_rank" in t]
    exact = [t for t in trials if "exact_bfd" in t]

    def fraction(items, agree):
        return float(np.mean([agree(t) for t in items])) if items else None

    return {
        "trials": len(trials),
        "max_excess_over_bound": max(t["bfd"] - smallest_bound(t) for t in trials),
        "bound_attained": sum(t["bfd"] == smallest_bound(t) for t in trials),
        "bound_violations": sum(len(t["bound_violations"]) for t in trials),
        "bound_violation_kinds": sorted({v for t in trials for v in t["bound_violations"]}),
        "invariance_failures": sum(len(t["invariance_failures"]) for t in trials),
        "invariance_failure_kinds": sorted({v for t in trials for v in t["invariance_failures"]}),
        "frozen_pattern_agreement": fraction(general, lambda t: t["frozen_rank"] == t["bfd"]),
        "frozen_pattern_agreement_same_x": fraction(trials, lambda t: t["frozen_rank_same_x"] == t["bfd"]),
        "frozen_pattern_trials": len(general),
        "frozen_pattern_agreeing": sum(t["frozen_rank"] == t["bfd"] for t in general),
        "closed_form_mismatches": sum(t["closed_form_rank"] != t["bfd"] for t in shallow),
        "exact_rank_mismatches": sum(t["exact_bfd"] != t["bfd"] or t["exact_frozen_rank"] != t["float_frozen_rank"]
                                     for t in exact),
        "general_position_full_rank": sum(bool(t["full_affine_rank"]) for t in general),
        "closed_form_agreement": fraction(shallow, lambda t: t["closed_form_rank"] == t["bfd"]),
        "closed_form_trials": len(shallow),
        "exact_rank_agreement": fraction(exact, lambda t: t["exact_bfd"] == t["bfd"]
                                         and t["exact_frozen_rank"] == t["float_frozen_rank"]),
        "exact_trials": len(exact),
        "jacobian_route_max_diff": max(t["route_diff"] for t in trials),
        "max_null_vector_residual": max(t["null_vector_residual"] for t in trials),
        "max_permutation_sv_diff": max(t["permutation_sv_diff"] for t in trials),
        "min_gap_log10": min(t["gap_log10"] for t in trials),
        "ill_determined_ranks": sum(t["ill_determined"] for t in trials),
        "dead_neuron_trials": sum(t["dead_neurons"] > 0 for t in trials),
        "deficit_minus_dead_bound": [t["deficit"] - t["dead_bound"] for t in trials if t["kind"] == "dead"],
        "deficit_minus_active_bound": [t["deficit"] - t["active_bound"] for t in trials if t["kind"] == "active"],
        "frozen_mismatches": [{k: t[k] for k in ("architecture", "n", "seed", "kind", "bfd", "frozen_rank")}
                              for t in general if t["frozen_rank"] != t["bfd"]][:10],
    }
