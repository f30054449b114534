r"""Kernel regime: wide shallow networks against the minimizer of the derived spectral penalty.

spectral_bias.md sections 1.4, 2, 3, 6.3 (reference runs E1-E6) and 6.4 (predictions P4-P8).
A network trained in the kernel regime converges to the minimum-RKHS-norm interpolant of its
random-feature (or tangent) kernel.  For uniform directions, flat offsets and a fixed first-layer
norm that interpolant minimizes :math:`J_\sigma[f] = C_d\int|\hat f|^2 W` with
:math:`W(\omega) = |\omega|^{d-1}/|\hat\sigma_\rho(\omega)|^2`; the prediction is computed without
networks in :mod:`numerics.kernel_interpolation`.  The measurements here are:

* **fits vs width** (:func:`width_study`): random-feature networks (output layer trained to
  infinite time, i.e. the minimum-norm interpolant of their features, computed directly as in
  :func:`numerics.networks.linearized_solution`; disjoint sub-networks of one draw give
  independent replicates at the smaller widths) against the prediction: sup and relative L2
  distance on a dense grid of the data hull, relative to :math:`\max|y|`, and the log-log
  slope against width (theory: about -1/2, the Monte Carlo error of n random features);
* **the infinite-width limit** (:func:`quadrature_fit`): the same min-norm fit with the
  initialization density replaced by a deterministic midpoint quadrature, i.e. the exact
  kernel of the finite-offset random features; its distance to the prediction is the bias that
  a finite offset range leaves (notes 7, pitfalls);
* **training** (:func:`training_study`): all layers trained by gradient descent in the NTK
  parameterization against the linearized model after the same number of steps;
* **spectral rates** (:func:`decay_rates`): the initial decay rate of a windowed sinusoidal
  residual under output-layer gradient flow, :math:`r^TKr/(N\,r^Tr)`, whose ratios across
  frequencies theory puts at :math:`W(\omega_1)/W(\omega_2)` (P8).

The four registered checks (``kernel-fit-1d``, ``kernel-fit-2d``, ``kernel-training``,
``kernel-rate``) apply to every activation with a tempered transform and a kernel
(not to ``exp``, which is not tempered, nor to band-limited ``sin``/``cos``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import sympy as sp
import torch
from scipy.interpolate import CubicSpline
from scipy.spatial import Delaunay

from theory.activations import Activation
from theory.errors import IbcheckError, Unsupported

from . import data
from .checks import Check, CheckResult, Context, Plot, Series, register
from .kernel_interpolation import (activation_kernel, as_points, curvature_penalty_weight, kernel_interpolant,
                                   polyharmonic_kernel, polynomial_block, spectral_density, theory_interpolant,
                                   weighted_cubic_spline)
from .networks import Init, ShallowNetwork, as_tensor, kernel_descent_weights, linearized_solution, train
from .progress import progress

# ---------------------------------------------------------------------------------------
# setups (what the theory assumes, and which initialization realises it)


@dataclass(frozen=True)
class Setup:
    """An initialization and the first-layer norm rho at which the theory kernel is taken."""

    init: Init
    rho: float
    why: str

    def as_dict(self) -> dict:
        return {"init": asdict(self.init), "rho": self.rho, "why": self.why}


def homogeneous(act: Activation) -> bool:
    return act.homogeneity_degree is not None


def fit_setup(act: Activation, dim: int) -> Setup:
    """The initialization under which the theory's kernel formula holds (notes 1.4, 2.2, E1-E4).

    * positively homogeneous sigma, d = 1: w, b ~ U(-1, 1) (PyTorch's default), whose breakpoint
      density is flat on |x| <= 1, which holds the data: the penalty weight is constant on the
      hull and the formula is exact (E1);
    * positively homogeneous sigma, d >= 2: uniform directions, offsets U(-6, 6), rho = 1 (E4);
    * other sigma: uniform directions, flat offsets U(-20, 20) and fixed rho = 4 (E3; P6 is
      stated for rho <= 4): the formula needs offsets flat well beyond the data.
    """
    if homogeneous(act):
        if dim == 1:
            return Setup(Init("uniform", a_w=1.0, a_b=1.0), 1.0,
                         "w, b ~ U(-1, 1): breakpoints flat on |x| <= 1, which holds the data (E1)")
        return Setup(Init("directions", rho=1.0, offset=6.0), 1.0,
                     "directions uniform on the sphere, offsets U(-6, 6), rho = 1 (E4)")
    return Setup(Init("directions", rho=4.0, offset=20.0), 4.0,
                 "directions uniform, offsets U(-20, 20) flat well beyond the data, fixed rho = 4 (E3, P6)")


GAUSSIAN_SETUP = Setup(Init("gaussian", s_w=1.0, s_b=1.0), 1.0,
                       "w, b ~ N(0, 1): zeta = (2/pi)/(1 + x^2)^2, penalty weight (1 + x^2)^2 (E2, P5)")


# ---------------------------------------------------------------------------------------
# fits


def random_feature_fit(act: Activation, x, y, width: int, init: Init, seed: int):
    """The output-layer (random-feature) network of ``width`` neurons trained to infinite time:
    the minimum-norm interpolant of its features (f_0 = 0: output weights start at 0)."""
    net = ShallowNetwork(act, width, as_points(x).shape[1], replace(init, s_v=0.0, antisymmetric=False),
                         "standard", seed)
    return linearized_solution(net, x, y, layers="output")


def quadrature_weights(init: Init, dim: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    r"""A deterministic midpoint quadrature of the initialization density, as first-layer weights.

    Every density used here is uniform on a box (``uniform``: (w, b) in [-a_w, a_w]^d x [-a_b, a_b];
    ``directions``: angle x offset), so equal weights make the random-feature kernel
    :math:`\mathbb E[\sigma(w\cdot x + b)\sigma(w\cdot x' + b)]` up to quadrature error.
    ``nodes`` is the number of offsets; angles and weights get proportionally many.
    """
    def mid(count: int, half: float) -> np.ndarray:
        return ((np.arange(count) + 0.5) / count * 2 - 1) * half

    if init.kind == "uniform" and dim == 1:
        w, b = np.meshgrid(mid(nodes, init.a_w), mid(nodes, init.a_b))
        return w.reshape(-1, 1), b.ravel()
    if init.kind == "directions" and dim <= 2:
        beta = mid(nodes, init.offset)
        if dim == 1:
            theta = np.array([[1.0], [-1.0]])
        else:
            angles = max(8, nodes // 4)
            phi = (np.arange(angles) + 0.5) * 2 * np.pi / angles
            theta = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        th = np.repeat(theta, len(beta), axis=0)
        be = np.tile(beta, len(theta))
        return init.rho * th, -init.rho * be
    raise IbcheckError(f"no quadrature for the {init.kind} initialization in {dim} dimensions")


def quadrature_fit(act: Activation, x, y, init: Init, nodes: int):
    """The infinite-width limit of :func:`random_feature_fit` (up to quadrature error)."""
    w, b = quadrature_weights(init, as_points(x).shape[1], nodes)
    return linearized_solution(ShallowNetwork.from_weights(act, w, b), x, y, layers="output")


# ---------------------------------------------------------------------------------------
# predictions


@dataclass
class Prediction:
    """The penalty minimizer on the grid, what it is, and (1D ReLU-type) the wrong prediction."""

    name: str
    values: np.ndarray
    cross_check: dict


def hull_grid(x, spacing: float) -> np.ndarray:
    """Grid points (spacing ``spacing``) inside the convex hull of the data, shape (M, d)."""
    x = as_points(x)
    if x.shape[1] == 1:
        lo, hi = x.min(), x.max()
        return np.linspace(lo, hi, max(2, int(round((hi - lo) / spacing)) + 1))[:, None]
    axes = [np.arange(lo, hi + spacing / 2, spacing) for lo, hi in zip(x.min(axis=0), x.max(axis=0))]
    points = np.stack([a.ravel() for a in np.meshgrid(*axes)], axis=1)
    return points[Delaunay(x).find_simplex(points) >= 0]


def linear_natural_spline(x, y):
    """The natural cubic spline (scipy), continued linearly outside the data as the minimizer is."""
    order = np.argsort(x)
    xs, ys = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    spline = CubicSpline(xs, ys, bc_type="natural")

    def evaluate(t):
        t = np.asarray(t, dtype=float).ravel()
        inner = np.clip(t, xs[0], xs[-1])
        return spline(inner) + spline(inner, 1) * (t - inner)
    return evaluate


def prediction_1d(act: Activation, x, y, grid, setup: Setup) -> Prediction:
    """CPD interpolation with the theory kernel; for a degree-1 homogeneous sigma with a uniform or
    Gaussian init, the weighted cubic spline with weight 1/zeta (the natural cubic spline for the
    uniform init, cross-checked against the kernel interpolant and scipy)."""
    if act.homogeneity_degree == 1 and setup.init.kind in ("uniform", "gaussian"):
        weight, zeta = curvature_penalty_weight(setup.init.kind, setup.init.a_w, setup.init.a_b,
                                                setup.init.s_w, setup.init.s_b)
        spline = weighted_cubic_spline(np.ravel(x), y, weight)(grid)
        if setup.init.kind == "gaussian":
            return Prediction(f"weighted cubic spline, penalty f''^2 / zeta, zeta = {zeta}", spline, {"zeta": zeta})
        check = {"kernel_interpolant_vs_spline": float(np.max(np.abs(
                     theory_interpolant(act, x, y, setup.rho)(grid) - spline))),
                 "scipy_natural_spline_vs_spline": float(np.max(np.abs(
                     linear_natural_spline(np.ravel(x), y)(grid) - spline)))}
        return Prediction("natural cubic spline (curvature weight 1/zeta constant on the hull)", spline, check)
    k = activation_kernel(act)
    return Prediction(f"interpolation with the kernel {k.expr if k.expr is not None else '(numerical)'} at "
                      f"rho = {setup.rho:g} plus polynomials of degree < {k.order}",
                      theory_interpolant(act, x, y, setup.rho)(grid), {"kernel_route": k.how})


def prediction_2d(act: Activation, x, y, grid, setup: Setup) -> Prediction:
    """Ridge-averaged theory kernel; for ReLU-type sigma also the r^3 polyharmonic spline (E4)."""
    ridge = theory_interpolant(act, x, y, setup.rho)(grid)
    if act.homogeneity_degree == 1:
        r3 = kernel_interpolant(polyharmonic_kernel, 2, x, y, "r^3 polyharmonic spline")(grid)
        return Prediction("r^3 polyharmonic spline plus affine part", r3,
                          {"ridge_averaged_kernel_vs_r3": float(np.max(np.abs(ridge - r3)))})
    k = activation_kernel(act)
    return Prediction(f"interpolation with E_theta k(theta . (x - x')), k = "
                      f"{k.expr if k.expr is not None else '(numerical)'}, rho = {setup.rho:g}, "
                      f"plus polynomials of degree < {k.order}", ridge, {"kernel_route": k.how})


def thin_plate_kernel(a, b) -> np.ndarray:
    """The thin-plate spline basis :math:`r^2\\log r` (the wrong prediction for 2D ReLU, E4)."""
    r = np.linalg.norm(as_points(a)[:, None, :] - as_points(b)[None, :, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, r**2 * np.log(np.where(r > 0, r, 1.0)), 0.0)


# ---------------------------------------------------------------------------------------
# measurements


def sup_distance(f, g, scale: float) -> float:
    """:math:`\\max|f - g| / \\text{scale}` on the grid."""
    return float(np.max(np.abs(np.asarray(f) - np.asarray(g))) / scale)


def relative_l2(f, g) -> float:
    """:math:`\\|f - g\\|_2 / \\|g\\|_2` on the grid."""
    g = np.asarray(g)
    return float(np.linalg.norm(np.asarray(f) - g) / np.linalg.norm(g))


def loglog_slope(widths, distances) -> float:
    """Least-squares slope of log(distance) against log(width) (nan for fewer than two widths)."""
    if len(widths) < 2:
        return float("nan")
    return float(np.polyfit(np.log(widths), np.log(distances), 1)[0])


@dataclass
class WidthStudy:
    """Distances of random-feature fits to a prediction, per width (mean over the replicates)."""

    widths: list[int]
    sup_distance: list[float]
    relative_l2: list[float]
    replicates: list[int]
    spread: list[list[float]]  # (min, max) of the sup distance over the replicates
    seed: int
    total_width: int
    slope: float
    last_fit: np.ndarray
    other_distance: dict[str, list[float]]  # mean sup distance to each other reference, per width


def width_study(act: Activation, x, y, grid, target: np.ndarray, widths, init: Init, seed: int,
                total: int | None = None, others: dict[str, np.ndarray] | None = None, desc: str = "") -> WidthStudy:
    """Random-feature fits of several widths against ``target`` on ``grid``.

    One network of ``total`` neurons (default: the largest width) is drawn and split into disjoint
    sub-networks: every width must be a multiple of the smallest and divide ``total``, and
    ``total / width`` independent fits of that width are averaged.  The output-layer kernel of a
    union of sub-networks is the sum of theirs, so every fit costs one pass over the features.
    ``others`` are further references (a wrong prediction, the infinite-width limit) whose mean
    sup distances are recorded as well.
    """
    others = others or {}
    widths = [int(w) for w in widths]
    total = int(total or widths[-1])
    base = widths[0]
    if any(w % base or total % w for w in widths):
        raise IbcheckError(f"widths {widths} must be multiples of {base} dividing the total width {total}")
    x_t, grid_t = as_tensor(x), as_tensor(grid)
    net = ShallowNetwork(act, total, x_t.shape[1], replace(init, s_v=0.0, antisymmetric=False), "standard", seed)
    k_data, k_grid = [], []
    with progress(total // base, desc or f"{act.label} random features", unit="block") as bar:
        for lo in range(0, total, base):
            block = net.subnetwork(slice(lo, lo + base))
            k_data.append(block.tangent_kernel(x_t, x_t, "output"))
            k_grid.append(block.tangent_kernel(grid_t, x_t, "output"))
            bar.update(1)
    y_t = torch.as_tensor(np.asarray(y, dtype=float), dtype=torch.float64)
    scale = float(np.max(np.abs(y)))
    sups, l2s, counts, spread = [], [], [], []
    other_distance = {name: [] for name in others}
    fit = None
    for width in widths:
        m = width // base
        here, l2_here = [], []
        other_here = {name: [] for name in others}
        for r in range(total // width):
            gram = sum(k_data[r * m:(r + 1) * m])
            alpha = kernel_descent_weights(gram, -y_t, what=f"{act.label} random features, width {width}")
            fit = (sum(k_grid[r * m:(r + 1) * m]) @ alpha).numpy()
            here.append(sup_distance(fit, target, scale))
            l2_here.append(relative_l2(fit, target))
            for name, values in others.items():
                other_here[name].append(sup_distance(fit, values, scale))
        sups.append(float(np.mean(here)))
        l2s.append(float(np.mean(l2_here)))
        counts.append(len(here))
        spread.append([float(min(here)), float(max(here))])
        for name in others:
            other_distance[name].append(float(np.mean(other_here[name])))
    return WidthStudy(widths, sups, l2s, counts, spread, seed, total, loglog_slope(widths, sups), fit,
                      other_distance)


# ---------------------------------------------------------------------------------------
# applicability


def kernel_applies(act: Activation) -> str | None:
    """None if the activation has a tempered transform and a stationary kernel, else why not."""
    if not act.growth.tempered:
        return act.growth.reason
    try:
        activation_kernel(act)
    except Unsupported as err:
        return str(err)
    return None


def _slope_line(widths, first: float, slope: float = -0.5) -> Series:
    return Series(f"theory slope {slope:g}", [float(w) for w in widths],
                  [first * (w / widths[0]) ** slope for w in widths], "dashed")


SLOPE_RANGE = (-0.7, -0.3)
SLOPE_NOTE = ("slope window [-0.7, -0.3] around the Monte Carlo rate n^(-1/2) (P4); a finite-offset "
              "bias flattens it at large n")


# ---------------------------------------------------------------------------------------
# check: kernel-fit-1d


def _tolerances_1d(act: Activation) -> tuple[dict[int, float], str]:
    """Sup-distance bounds (relative to max|y|) per width from the notes' predictions."""
    if act.name in ("tanh", "erf") and act.builtin:
        return {50_000: 0.01}, "P6: tanh/erf within 1% of the CPD kernel interpolant for rho <= 4, n >= 5e4"
    return ({10_000: 0.05, 100_000: 0.02},
            "P4: within 5% of max|y| at n = 1e4 and 2% at n = 1e5 (stated for ReLU; applied to every "
            "activation as the project's default)")


def _bounds_verdict(widths, distances, bounds: dict[int, float]) -> tuple[bool, list[str]]:
    ok, notes = True, []
    for needed, bound in bounds.items():
        eligible = [(w, d) for w, d in zip(widths, distances) if w >= needed]
        if not eligible:
            continue
        width, value = eligible[0]
        ok &= value <= bound
        notes.append(f"{value:.2%} at n = {width:g} (bound {bound:.0%})")
    return ok, notes


def run_fit_1d(act: Activation, context: Context) -> CheckResult:
    x, y = data.toy_1d()
    scale = float(np.max(np.abs(y)))
    grid = hull_grid(x, context.pick(0.01, 0.005))
    setup = fit_setup(act, 1)
    pred = prediction_1d(act, x, y, grid, setup)
    quad_nodes = context.pick(300, 1000) if setup.init.kind == "uniform" else context.pick(20_000, 80_000)
    limit = quadrature_fit(act, x, y, setup.init, quad_nodes)(grid)
    bias = sup_distance(limit, pred.values, scale)
    quad_error = sup_distance(quadrature_fit(act, x, y, setup.init, quad_nodes // 2)(grid), limit, scale)
    widths = context.pick([1_000, 10_000, 100_000], [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000])
    study = width_study(act, x, y, grid, pred.values, widths, setup.init, context.seed,
                        context.pick(200_000, 1_000_000), others={"infinite width": limit})
    to_limit = study.other_distance["infinite width"]
    bounds, bound_note = _tolerances_1d(act)
    ok, notes = _bounds_verdict(study.widths, study.sup_distance, bounds)
    ok &= SLOPE_RANGE[0] <= study.slope <= SLOPE_RANGE[1]
    reason = [f"sup distance {', '.join(notes)}", f"slope {study.slope:.2f}",
              f"infinite-width limit (quadrature) {bias:.2%} from the prediction (+- {quad_error:.2%})"]
    details = {"widths": study.widths, "sup_distance": study.sup_distance, "relative_l2": study.relative_l2,
               "replicates": study.replicates, "sup_distance_range": study.spread, "slope": study.slope,
               "prediction": pred.name, "infinite_width_bias": bias, "quadrature_error_estimate": quad_error,
               "distance_to_infinite_width": to_limit,
               "slope_to_infinite_width": loglog_slope(study.widths, to_limit), "quadrature_nodes": quad_nodes,
               "cross_check": pred.cross_check, "grid": "data hull [-0.8, 0.8]"}
    measured = {"sup_distance_at_largest_width": study.sup_distance[-1], "slope": study.slope}
    parameters = {"data": "toy_1d (spectral_bias.md 6.3)", "widths": study.widths, "seed": study.seed,
                  "total_width": study.total_width, "setup": setup.as_dict(), "grid_points": len(grid),
                  "mode": "output layer (random features), minimum-norm solution"}
    xs = grid[:, 0].tolist()
    data_points = Series("data", np.ravel(x).tolist(), y.tolist(), "points")
    plots = [Plot(f"{act.label}: random-feature network (n = {widths[-1]:g}) vs prediction", "x", "f(x)",
                  [Series("prediction: " + pred.name.split(" (")[0], xs, pred.values.tolist()),
                   Series(f"network, n = {widths[-1]:g}", xs, study.last_fit.tolist(), "dashed"), data_points])]
    dist_series = [Series("distance to the prediction", study.widths, study.sup_distance, "points"),
                   Series("distance to the infinite-width limit", study.widths, to_limit, "points"),
                   _slope_line(study.widths, study.sup_distance[0])]
    if act.homogeneity_degree == 1:
        g = _gaussian_discrimination(act, x, y, grid, context)
        details["gaussian_init"] = {k: v for k, v in g.items() if not k.endswith("_values")}
        details["distance_to_wrong_prediction"] = g["distance_to_wrong_prediction"][-1]
        measured["gaussian_init_sup_distance"] = g["sup_distance"][-1]
        measured["distance_to_wrong_prediction"] = g["distance_to_wrong_prediction"][-1]
        parameters["gaussian_setup"] = GAUSSIAN_SETUP.as_dict()
        ok &= g["passed"]
        reason.append(g["summary"])
        dist_series += [Series("Gaussian init: distance to the weighted spline", g["widths"], g["sup_distance"],
                               "points"),
                        Series("Gaussian init: distance to the natural cubic spline (wrong)", g["widths"],
                               g["distance_to_wrong_prediction"], "points")]
        plots.append(Plot(f"{act.label}, Gaussian init: network vs weighted and natural cubic splines", "x", "f(x)",
                          [Series("weighted spline, penalty (1 + x^2)^2 f''^2", xs, g["prediction_values"]),
                           Series("natural cubic spline (wrong prediction)", xs, g["wrong_values"], "dashed"),
                           Series(f"network, n = {g['widths'][-1]:g}", xs, g["fit_values"], "dashed"), data_points]))
    plots.insert(1, Plot(f"{act.label}: distance to the prediction vs width", "width n", "sup |f_n - f*| / max|y|",
                         dist_series, "log", "log", SLOPE_NOTE))
    return CheckResult(
        "kernel-fit-1d", act.label, prediction=pred.name, measured=measured,
        tolerance={"sup_distance": {str(k): v for k, v in bounds.items()}, "slope": list(SLOPE_RANGE)},
        verdict="agrees" if ok else "disagrees", reason="; ".join(reason),
        tolerance_note=f"{bound_note}; {SLOPE_NOTE}",
        details=details, parameters=parameters, plots=plots)


def _gaussian_discrimination(act: Activation, x, y, grid, context: Context) -> dict:
    """P5: Gaussian init matches the (1 + x^2)^2-weighted spline and not the natural cubic spline."""
    scale = float(np.max(np.abs(y)))
    pred = prediction_1d(act, x, y, grid, GAUSSIAN_SETUP)
    wrong = linear_natural_spline(np.ravel(x), y)(grid)
    widths = context.pick([10_000, 100_000, 200_000], [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000])
    study = width_study(act, x, y, grid, pred.values, widths, GAUSSIAN_SETUP.init, context.seed + 1,
                        context.pick(200_000, 1_000_000), others={"wrong": wrong}, desc=f"{act.label} Gaussian init")
    far = study.other_distance["wrong"]
    right = study.sup_distance[-1]
    gap = sup_distance(pred.values, wrong, scale)
    passed = right <= 0.02 and far[-1] >= 5 * right
    return {"widths": study.widths, "sup_distance": study.sup_distance, "replicates": study.replicates,
            "sup_distance_range": study.spread, "slope": study.slope, "seed": study.seed,
            "distance_to_wrong_prediction": far, "ratio_wrong_to_right": far[-1] / right,
            "prediction_gap": gap, "prediction_gap_over_5x_tolerance": gap / (5 * 0.02),
            "prediction": pred.name, "passed": bool(passed),
            "summary": f"Gaussian init: {right:.2%} from the weighted spline at n = {widths[-1]:g} (bound 2%), "
                       f"{far[-1] / right:.1f}x farther from the natural cubic spline (bound 5x)",
            "prediction_values": pred.values.tolist(), "wrong_values": wrong.tolist(),
            "fit_values": study.last_fit.tolist()}


# ---------------------------------------------------------------------------------------
# check: kernel-fit-2d


def run_fit_2d(act: Activation, context: Context) -> CheckResult:
    x, y = data.toy_2d(10, seed=0)
    scale = float(np.max(np.abs(y)))
    spacing = context.pick(0.1, 0.04)
    grid = hull_grid(x, spacing)
    setup = fit_setup(act, 2)
    pred = prediction_2d(act, x, y, grid, setup)
    quad_nodes = context.pick(400, 1600)
    limit = quadrature_fit(act, x, y, setup.init, quad_nodes)(grid)
    quad_error = sup_distance(quadrature_fit(act, x, y, setup.init, quad_nodes // 2)(grid), limit, scale)
    others = {"infinite width": limit}
    if act.homogeneity_degree == 1:
        others["wrong"] = kernel_interpolant(thin_plate_kernel, 2, x, y, "thin-plate spline")(grid)
    widths = [2_000, 10_000, 50_000, 150_000]
    study = width_study(act, x, y, grid, pred.values, widths, setup.init, context.seed,
                        context.pick(150_000, 600_000), others=others)
    bound = 0.02
    ok = study.sup_distance[-1] <= bound and SLOPE_RANGE[0] <= study.slope <= SLOPE_RANGE[1]
    bias = sup_distance(limit, pred.values, scale)
    reason = [f"sup distance {study.sup_distance[-1]:.2%} at n = 1.5e5 (bound 2%, P7)", f"slope {study.slope:.2f}",
              f"infinite-width limit (quadrature) {bias:.2%} from the prediction (+- {quad_error:.2%})"]
    to_limit = study.other_distance["infinite width"]
    details = {"widths": study.widths, "sup_distance": study.sup_distance, "relative_l2": study.relative_l2,
               "replicates": study.replicates, "sup_distance_range": study.spread, "slope": study.slope,
               "prediction": pred.name, "cross_check": pred.cross_check, "infinite_width_bias": bias,
               "quadrature_error_estimate": quad_error,
               "distance_to_infinite_width": to_limit, "slope_to_infinite_width": loglog_slope(widths, to_limit),
               "quadrature_nodes": quad_nodes, "grid_points": len(grid)}
    measured = {"sup_distance_at_largest_width": study.sup_distance[-1], "slope": study.slope}
    dist_series = [Series("distance to the prediction", study.widths, study.sup_distance, "points"),
                   Series("distance to the infinite-width limit", study.widths, to_limit, "points"),
                   _slope_line(study.widths, study.sup_distance[0])]
    if "wrong" in others:
        far = study.other_distance["wrong"]
        details["distance_to_wrong_prediction"] = far
        details["wrong_prediction"] = "thin-plate spline r^2 log r plus affine part"
        measured["distance_to_wrong_prediction"] = far[-1]
        ok &= far[-1] >= 5 * study.sup_distance[-1]
        reason.append(f"{far[-1] / study.sup_distance[-1]:.1f}x farther from the thin-plate spline (bound 5x)")
        dist_series.append(Series("distance to the thin-plate spline (wrong)", study.widths, far, "points"))
    low, high = float(pred.values.min()), float(pred.values.max())
    plots = [Plot(f"{act.label} in 2D: network (n = {widths[-1]:g}) vs prediction, {len(grid)} hull points",
                  "prediction f*(x)", "network f_n(x)",
                  [Series("grid points", pred.values.tolist(), study.last_fit.tolist(), "points"),
                   Series("f_n = f*", [low, high], [low, high], "dashed")]),
             Plot(f"{act.label} in 2D: distance vs width", "width n", "sup |f_n - f*| / max|y|",
                  dist_series, "log", "log", SLOPE_NOTE)]
    return CheckResult(
        "kernel-fit-2d", act.label, prediction=pred.name, measured=measured,
        tolerance={"sup_distance": {"150000": bound}, "slope": list(SLOPE_RANGE)},
        verdict="agrees" if ok else "disagrees", reason="; ".join(reason),
        tolerance_note="P7: within 2% of max|y| (E4 used n = 1.5e5); " + SLOPE_NOTE,
        details=details,
        parameters={"data": "toy_2d(10, seed=0)", "widths": study.widths, "seed": study.seed,
                    "total_width": study.total_width, "setup": setup.as_dict(), "grid_spacing": spacing},
        plots=plots)


# ---------------------------------------------------------------------------------------
# check: kernel-training


@dataclass
class TrainingStudy:
    widths: list[int]
    sup_distance: list[float]
    final_loss: list[float]
    steps: int
    step_size: list[float]
    slope: float
    last_trained: np.ndarray
    last_linearized: np.ndarray


def training_study(act: Activation, x, y, grid, widths, steps: int, init: Init, seed: int,
                   step_fraction: float = 0.5) -> TrainingStudy:
    r"""Train all layers (NTK parameterization, antisymmetric init so f_0 = 0) for ``steps`` steps of
    size :math:`\eta = \text{step\_fraction}\cdot N/\lambda_{max}(K)` and compare with the
    linearized model after the same steps (:func:`numerics.networks.linearized_solution`)."""
    x_t = as_tensor(x)
    scale = float(np.max(np.abs(y)))
    sups, losses, rates = [], [], []
    trained = linear = None
    for width in widths:
        net = ShallowNetwork(act, int(width), x_t.shape[1], replace(init, s_v=1.0, antisymmetric=True), "ntk", seed)
        lam = float(torch.linalg.eigvalsh(net.tangent_kernel(x_t, x_t) / len(x_t)).max())
        lr = step_fraction / lam
        linear = linearized_solution(net, x_t, y, "all", lr, steps)(grid)
        history = train(net, x_t, y, steps, lr, "all")
        trained = net.evaluate(as_tensor(grid)).numpy()
        sups.append(sup_distance(trained, linear, scale))
        losses.append(history.loss[-1])
        rates.append(lr)
    return TrainingStudy([int(w) for w in widths], sups, losses, steps, rates, loglog_slope(widths, sups),
                         trained, linear)


def training_applies(act: Activation) -> str | None:
    why = kernel_applies(act)
    if why:
        return why
    if act.is_discontinuous:
        return f"{act.label} jumps: sigma' is a point mass, so gradient descent cannot train the first layer"
    return None


#: the standard NTK initialization: w, b, v ~ N(0, 1), antisymmetric so that f_0 = 0
TRAINING_INIT = Init("gaussian", s_w=1.0, s_b=1.0, s_v=1.0, antisymmetric=True)
#: training counts as converging to its linearization when the distance falls at least like n^(-0.3)
TRAINING_SLOPE_BOUND = -0.3


def run_training(act: Activation, context: Context) -> CheckResult:
    x, y = data.toy_1d()
    grid = hull_grid(x, 0.01)
    widths = context.pick([1_000, 3_000, 10_000], [1_000, 3_000, 10_000, 30_000, 100_000])
    steps = context.pick(200, 1_000)
    study = training_study(act, x, y, grid, widths, steps, TRAINING_INIT, context.seed)
    slope_ok = study.slope <= TRAINING_SLOPE_BOUND
    shrinking = study.sup_distance[-1] < study.sup_distance[0]
    kinked = act.derivative(2).has(sp.DiracDelta)  # sigma'' has a point mass: a kink
    xs = grid[:, 0].tolist()
    plots = [Plot(f"{act.label}: trained network vs linearized model after {steps} steps (n = {widths[-1]:g})",
                  "x", "f(x)", [Series("linearized model", xs, study.last_linearized.tolist()),
                                Series("trained network (all layers)", xs, study.last_trained.tolist(), "dashed"),
                                Series("data", np.ravel(x).tolist(), y.tolist(), "points")]),
             Plot(f"{act.label}: training vs linearization, distance vs width", "width n",
                  "sup |f_train - f_lin| / max|y|",
                  [Series("sup distance / max|y|", study.widths, study.sup_distance, "points"),
                   _slope_line(study.widths, study.sup_distance[0], -0.5),
                   _slope_line(study.widths, study.sup_distance[0], -1.0)], "log", "log",
                  "reference slopes -1/2 (the lazy-training bound) and -1 (seen for smooth sigma after "
                  "short training)")]
    return CheckResult(
        "kernel-training", act.label,
        prediction="the linearized model (empirical tangent kernel of all layers) after the same steps, "
                   "with the distance shrinking as the width grows (lazy training, bound O(n^(-1/2)))",
        measured={"sup_distance": study.sup_distance, "slope": study.slope},
        tolerance={"slope_at_most": TRAINING_SLOPE_BOUND, "largest_width_closer_than_smallest": True},
        verdict="agrees" if slope_ok and shrinking else "disagrees",
        reason=f"distance {' > '.join(f'{d:.2g}' for d in study.sup_distance)} (relative to max|y|) over "
               f"widths {study.widths}; slope {study.slope:.2f} (bound <= {TRAINING_SLOPE_BOUND:g})",
        tolerance_note="lazy training: the fitted distance must fall at least like n^(-0.3) (one seed per "
                       "width, so single widths scatter; the standard bound is O(n^(-1/2)))",
        details={"widths": study.widths, "sup_distance": study.sup_distance, "final_loss": study.final_loss,
                 "initial_loss": float(0.5 * np.mean(y**2)), "steps": steps, "step_size": study.step_size,
                 "slope": study.slope, "kink": kinked},
        parameters={"data": "toy_1d", "widths": study.widths, "steps": steps, "seed": context.seed,
                    "parameterization": "ntk", "init": asdict(TRAINING_INIT),
                    "step_size_rule": "0.5 / lambda_max(K/N), K the tangent kernel on the data"},
        plots=plots)


# ---------------------------------------------------------------------------------------
# check: kernel-rate


def window_power(order: int) -> int:
    r"""The exponent 2k of the window :math:`\cos^{2k}(\pi x/L)` used with a null space of ``order`` m.

    The rate is a Rayleigh quotient, :math:`\int \hat K(\nu)|\hat r(\nu)|^2 d\nu / \int|\hat r|^2`, and
    :math:`\hat K \sim \nu^{-2m}` near 0.  The window's sidelobes fall like :math:`\nu^{-(2k+1)}`, so the
    leakage from low frequencies scales like :math:`L^{2m - 2(2k+1)}`: k = max(2, m - 1) keeps it negligible
    (the Hann window, k = 1, leaks 55% into the ReLU^2 rate at L = 96), while a larger k widens the
    main lobe (spectral variance :math:`(\pi/L)^2\,4k^2/(4k-1)`), which biases power-law rates.
    """
    return 2 * max(2, order - 1)


def windowed_sinusoids(points: np.ndarray, frequencies, length: float, order: int) -> np.ndarray:
    r"""Residuals :math:`\cos^{2k}(\pi x/L)\sin(\omega x + 0.3)` on the grid, one column per frequency
    (:func:`window_power`), with the polynomials of degree < ``order`` (the penalty's null space)
    projected out."""
    window = np.cos(np.pi * points / length) ** window_power(order)
    r = window[:, None] * np.sin(np.outer(points, frequencies) + 0.3)
    p = polynomial_block(points / length, order)
    if p.shape[1]:
        q, _ = np.linalg.qr(p)
        r = r - q @ (q.T @ r)
    return r


def decay_rates(net: ShallowNetwork, points: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    r"""Initial decay rates :math:`r^T K r/(N\,r^T r)` of residuals under output-layer gradient flow,
    :math:`K = \Phi\Phi^T s^2` the network's random-feature kernel (columns of ``residuals``)."""
    x = as_tensor(points)
    r = torch.as_tensor(residuals, dtype=torch.float64)
    acc = torch.zeros(r.shape[1], dtype=torch.float64)
    with torch.no_grad():
        for lo in range(0, net.width, 4096):
            part = slice(lo, lo + 4096)
            acc += ((net.sigma(x @ net.w[part].T + net.b[part]).T @ r) ** 2).sum(dim=0)
    return (acc * net.output_scale**2 / len(points) / (r**2).sum(dim=0)).numpy()


RATE_FREQUENCIES = (1.0, 1.5, 2.0)


def run_rate(act: Activation, context: Context) -> CheckResult:
    order = activation_kernel(act).order
    rho = 1.0
    # the window's main lobe biases a steep power law K_hat ~ omega^(-2m) by ~ m(2m+1)/2 (pi/L)^2 4k^2/(4k-1);
    # for m >= 4 (ReLU^3 and steeper) the window grows with m to keep that below ~3%
    length = context.pick(120.0, 160.0) * max(1.0, (order - 1) / 2)
    spacing = 0.2
    width = context.pick(20_000, 100_000)
    repeats = context.pick(1, 2)
    points = np.arange(-length / 2, length / 2 + spacing / 2, spacing)
    freqs = np.array(RATE_FREQUENCIES)
    if freqs[0] < 2 * np.pi * 10 / length:
        raise IbcheckError(f"the lowest frequency must be >= 2 pi 10 / L = {2 * np.pi * 10 / length:.2f}")
    theory = spectral_density(act, freqs, rho)
    predicted = theory[1:] / theory[0]
    residuals = windowed_sinusoids(points, freqs, length, order)
    init = Init("directions", rho=rho, offset=length / 2 + 10)
    ratios = []
    for r in range(repeats):
        net = ShallowNetwork(act, width, 1, init, "standard", context.seed + 7919 * r)
        rates = decay_rates(net, points, residuals)
        ratios.append(rates[1:] / rates[0])
    measured = np.mean(ratios, axis=0)
    errors = measured / predicted - 1
    ok = bool(np.all(np.abs(errors) <= 0.05))
    labels = [f"{w:g}/{freqs[0]:g}" for w in freqs[1:]]
    curve = np.linspace(freqs[0], freqs[-1], 41)
    plots = [Plot(f"{act.label}: decay-rate ratios vs W(omega_1)/W(omega)", "omega", "rate(omega) / rate(1)",
                  [Series("theory W(1)/W(omega)", curve.tolist(),
                          (spectral_density(act, curve, rho) / theory[0]).tolist(), "line"),
                   Series("network (output-layer gradient flow)", freqs.tolist(), [1.0, *measured.tolist()],
                          "points")], "linear", "log")]
    return CheckResult(
        "kernel-rate", act.label, prediction=dict(zip(labels, predicted.tolist())),
        measured=dict(zip(labels, measured.tolist())), tolerance=0.05,
        verdict="agrees" if ok else "disagrees",
        reason=f"rate ratios {', '.join(f'{m:.4f} vs {p:.4f}' for m, p in zip(measured, predicted))} "
               f"(relative errors {', '.join(f'{e:+.1%}' for e in errors)})",
        tolerance_note="P8: within 5%; Monte Carlo error of the features ~1-2% at this width; window "
                       "main-lobe bias and null-space leakage measured <= 3% (docs/kernel_regime.md)",
        details={"frequencies": freqs.tolist(), "relative_errors": errors.tolist(),
                 "ratios_per_seed": [r.tolist() for r in ratios], "null_space_order": order,
                 "window": f"cos^{window_power(order)}(pi x / L) on [-L/2, L/2], L = {length:g}",
                 "grid_spacing": spacing},
        parameters={"width": width, "rho": rho, "offsets": f"U(-{length / 2 + 10:g}, {length / 2 + 10:g})",
                    "length": length, "repeats": repeats, "seeds": [context.seed + 7919 * r for r in range(repeats)]},
        plots=plots)


# ---------------------------------------------------------------------------------------
# registration

FIT_1D = register(Check("kernel-fit-1d", "Kernel regime in 1D: random features vs the penalty minimizer",
                        "P4, P5, P6", kernel_applies, run_fit_1d))
FIT_2D = register(Check("kernel-fit-2d", "Kernel regime in 2D: random features vs the penalty minimizer",
                        "P7", kernel_applies, run_fit_2d))
TRAINING = register(Check("kernel-training", "Full training vs the linearized model", "kernel regime (2.1)",
                          training_applies, run_training))
RATE = register(Check("kernel-rate", "Spectral decay rates in the kernel regime", "P8", kernel_applies, run_rate))
