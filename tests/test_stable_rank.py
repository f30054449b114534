"""The Kou / Frei two-layer models against the predictions P1-P16 of stable_rank.md (Sec. 4.2).

Every test is seeded.  The reduced-coordinate trainer is first checked against autograd on
the full weights; the predictions then come from theory.rank (closed forms, quadrature, the
flow) or from the notes' published numbers, never from the trainer itself.
"""

import math

import numpy as np
import pytest
import sympy as sp
import torch

import theory
from numerics import stable_rank as S
from numerics.checks import Context, get_check, run_check
from numerics.torch_activation import torch_activation
from numerics.training import TrainingDiverged, gradient_descent, log_spaced_steps
from theory import rank
from theory.errors import IbcheckError

LEAKY = theory.activation("leaky_relu", a=sp.Rational(1, 10))
RELU = theory.activation("relu")
T = 5000
RECORD = sorted(set(log_spaced_steps(T, 10)) | {50, 1000, 2500, T})
SEEDS = range(5)


# ---- the trainer
@pytest.mark.parametrize("name", ["leaky_relu", "softplus"])
def test_reduced_coordinates_match_autograd(name):
    """GD in reduced coordinates (W = W0 + C X) equals autograd GD on the full weights."""
    act = theory.activation(name)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 40))
    problem = S.Problem(x, np.array([1.0, -1, 1, -1, 1, -1]), S.kou_layer(5), 0.05, 3.0, seed=11)
    run = S.train(act, [problem], 60, record_steps=[0, 60])[0]
    w = torch.tensor(problem.initial_weights(), requires_grad=True)
    xt, yt, at = (torch.tensor(v) for v in (x, problem.y, problem.a))
    sigma = torch_activation(act)
    loss = lambda: torch.nn.functional.softplus(-yt * (sigma(w @ xt.T).T @ at)).mean()
    history = gradient_descent([w], loss, 60, problem.eta, record_steps=[0, 60])
    reduced = run.weights(-1)
    # float64 round-off accumulated over 60 steps of O(1) updates
    assert np.allclose(reduced, w.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert abs(run.loss[-1] - history.loss[-1]) < 1e-12
    assert np.allclose(run.full[-1], rank.stable_rank(reduced), rtol=1e-10)


def test_trainer_rejects_bad_input():
    x = np.ones((2, 3))
    with pytest.raises(IbcheckError, match="labels"):
        S.Problem(x, np.array([1.0, 0.0]), S.kou_layer(2), 0.1, 1.0, 0)
    with pytest.raises(IbcheckError, match="positive"):
        S.Problem(x, np.array([1.0, -1.0]), S.kou_layer(2), 0.1, -1.0, 0)
    a = S.Problem(x, np.array([1.0, -1.0]), S.kou_layer(2), 0.1, 1.0, 0)
    b = S.Problem(np.ones((3, 3)), np.array([1.0, -1.0, 1.0]), S.kou_layer(2), 0.1, 1.0, 0)
    with pytest.raises(IbcheckError, match="same number"):
        S.train(LEAKY, [a, b], 5)


def test_divergence_is_detected():
    problem = S.setup_a(0, n=4, d=50, m=3, eta=1e300)
    with pytest.raises(TrainingDiverged, match="diverged"):
        S.train(theory.activation("exp(x)"), [problem], 300)


# ---- setup A, leaky ReLU gamma = 0.1, seeds 0-4 (P1-P8, P13)
@pytest.fixture(scope="module")
def leaky_a():
    return S.train(LEAKY, [S.setup_a(s) for s in SEEDS], T, RECORD)


def _frozen(run):
    """Per class: True when the final pattern is the predicted sign(j y_i) pattern."""
    return [k == 0 for k in S.pattern_mismatch(LEAKY, run)]


def test_p1_per_class_rank_one(leaky_a):
    judged = [r.per_class[-1][j] for r in leaky_a for j in range(2) if _frozen(r)[j]]
    assert len(judged) >= 8          # 10 classes; the notes' 5 seeds all froze as predicted
    assert all(1.005 <= v <= 1.03 for v in judged), judged        # P1 band


def test_p1_finding_stuck_pattern_on_seed_0(leaky_a):
    """Finding (docs/stable_rank.md): seed 0 (near-orthogonality 1.06) freezes 16 own-class pairs of one
    sample on the wrong side; that class stays well above the P1 band."""
    run = leaky_a[0]
    assert S.near_orthogonality(run.problem.x) < 1.5
    assert S.pattern_mismatch(LEAKY, run) == [0, 16]
    assert run.per_class[-1][1] > 1.05


def test_p2_full_matrix_not_rank_one(leaky_a):
    full = [r.full[-1] for r in leaky_a]
    assert all(1.4 <= v <= 1.8 for v in full), full              # P2


def test_p3_identical_updates_after_freeze(leaky_a):
    checked = 0
    for run in leaky_a:
        t0 = run.at(50)
        later = run.pattern_changes[t0 + 1:].sum()
        for j, sign in enumerate((1.0, -1.0)):
            rows = np.sign(run.problem.a) == sign
            if later or not _frozen(run)[j]:
                continue
            delta = (run.coefficients[-1] - run.coefficients[t0])[rows] @ run.problem.x
            assert rank.stable_rank(delta) - 1 < 1e-6               # P3: measured ~1e-12
            checked += 1
    assert checked >= 4


def _kernel(run):
    p = run.problem
    return rank.pattern_kernel(p.x, p.y, rank.pattern_slopes(LEAKY, run.final_pre_activations), p.width // 2)


def test_p4_p5_loss_constant_and_rate(leaky_a):
    for run in leaky_a:
        if not all(_frozen(run)):
            continue
        p = run.problem
        constant = rank.loss_constant(_kernel(run), p.width // 2, p.eta)
        assert abs(run.loss[-1] * T / constant - 1) < 0.01                          # P4
        assert 0.49 <= run.loss[run.at(T)] / run.loss[run.at(T // 2)] <= 0.51      # P5


def test_p6_p7_margin_law_and_equal_normalized_margins(leaky_a):
    for run in leaky_a:
        if not all(_frozen(run)):
            continue
        p = run.problem
        offsets = rank.margin_offsets(_kernel(run), p.n, p.width // 2, p.eta)
        assert np.max(np.abs(run.margins[-1] - math.log(T) - offsets)) < 0.01        # P6
        nm = run.normalized_margins
        spread = (nm.max(axis=1) - nm.min(axis=1)) / nm.mean(axis=1)
        assert spread[-1] < 0.05 and spread[-1] < spread[run.at(500)]               # P7


def _scaled_gaps(run):
    """(sr(W_j) - 1) qbar^2 per record and class (notes Sec. 2.1: tends to the constant C_A)."""
    qbar = run.margins.mean(axis=1)
    return (run.per_class - 1) * qbar[:, None] ** 2


def _leading_terms(run):
    p = run.problem
    own = [int((p.y == sign).sum()) for sign in (1.0, -1.0)]
    return [rank.rank_gap_constant(p.x.shape[1], p.sigma0, 1.01, k, p.n - k, 1.0, 0.1) for k in own]


def test_p8_gap_decays_like_inverse_log_squared(leaky_a):
    for run in leaky_a:
        scaled = _scaled_gaps(run)
        for j in range(2):
            if _frozen(run)[j]:
                assert abs(scaled[run.at(T), j] / scaled[run.at(1000), j] - 1) < 0.02   # P8: measured 0.999-1.002


@pytest.mark.xfail(strict=True, reason="finding: seed 4 class -1 gives (sr-1) qbar^2 = 1.48 x the leading term "
                                       "(P8 band +-35%; the other frozen classes 1.12-1.27)")
def test_p8_constant_within_35_percent_of_the_leading_term(leaky_a):
    ratios = [_scaled_gaps(run)[-1, j] / _leading_terms(run)[j]
              for run in leaky_a for j in range(2) if _frozen(run)[j]]
    assert all(0.65 <= r <= 1.35 for r in ratios), ratios


def test_p13_linear_decision_boundary(leaky_a):
    run = leaky_a[2]
    boundary = S.decision_boundary(LEAKY, run, seed=0)
    assert boundary["sign_agreement"] > 0.99                                        # P13
    assert boundary["cosine_with_implicit_predictor"] > 0.999


# ---- ReLU on exactly orthogonal data (P9, P10)
def _p9_problems(act):
    return [S.orthogonal_setup(act, s, n=20, d=2000, m=50, v=1e-4 * math.sqrt(2000), c=1.0) for s in range(3)]


@pytest.fixture(scope="module")
def relu_orthogonal():
    return S.train(RELU, _p9_problems(RELU), T)


def test_p9_relu_rank_from_initial_masks(relu_orthogonal):
    for run in relu_orthogonal:
        limits = S.mask_limits(RELU, run)
        for j, sign in enumerate((1.0, -1.0)):
            measured = run.per_class[-1][j]
            assert abs(measured / limits[j] - 1) < 0.03                             # P9: measured <= 0.5%
            mask = run.z0[np.sign(run.problem.a) == sign][:, run.problem.y == sign] > 0
            assert measured <= run.problem.width // 2 / mask.sum(axis=0).min()    # sr <= m / k_min
            assert 1.6 <= measured <= 2.2                                              # P9 band of the notes' table


def test_p10_relu_vs_leaky_same_data_and_init(relu_orthogonal):
    leaky = S.train(LEAKY, _p9_problems(LEAKY), T)
    assert all(r.per_class[-1].max() < 1.03 for r in leaky)                         # P10
    assert all(r.per_class[-1].min() > 1.5 for r in relu_orthogonal)


# ---- Frei model (P11, P12)
@pytest.mark.parametrize("act,published", [(LEAKY, 1.647), (theory.activation("leaky_relu", a=sp.Rational(1, 2)), 1.109),
                                           (RELU, 1.961)])
def test_p11_one_step_collapse(act, published):
    problem = S.frei_setup(0)
    run = S.train(act, [problem], 1, [0, 1])[0]
    mu, nu = rank.gaussian_moments(act, problem.init_scale)
    predicted = rank.one_step_stable_rank(mu, nu, problem.n)
    assert abs(predicted - published) < 1e-3
    mp = 100 * 5000 / (10 + math.sqrt(5000)) ** 2
    assert abs(run.full[0] / mp - 1) < 0.03                                         # P11: Marchenko-Pastur
    assert abs(run.full[1] / predicted - 1) < 0.05                                  # P11: one step


def test_p12_default_init_no_collapse():
    run = S.train(LEAKY, [S.frei_setup(0, omega_sqrt_d=1.0)], 2000, [0, 1, 2000])[0]
    assert run.full[1] / run.full[0] > 0.95 and run.full[2] / run.full[0] > 0.7     # P12


# ---- negative controls (P14, P15)
def test_p14_low_dimension_breaks_collapse():
    run = S.train(LEAKY, [S.setup_a(0, d=30)], T)[0]
    assert run.per_class[-1].min() > 1.1                                            # P14
    assert run.pattern_changes[run.steps > T // 2].sum() > 0                        # patterns still changing


def test_p15_large_step_plateaus_at_the_one_step_value():
    problem = S.setup_a(0, eta=100 * 10 * 50 / (1.01 * 2000))                       # c = 100
    run = S.train(LEAKY, [problem], T)[0]
    plateau = rank.one_step_stable_rank(0.55, 0.505, 10)                            # 1.565
    assert np.all(np.abs(run.per_class[-1] / plateau - 1) < 0.10)                   # P15


# ---- generic activations (P16)
@pytest.mark.parametrize("name", ["softplus", pytest.param("elu", marks=pytest.mark.slow), "silu",
                                  pytest.param("gelu", marks=pytest.mark.slow)])
def test_p16_small_init_collapses_for_smooth_activations(name):
    act = theory.activation(name)
    run = S.train(act, [S.orthogonal_setup(act, 0, n=20, v=0.05, c=1.0)], T)[0]
    assert run.per_class[-1].max() < 1.03                                           # P16


@pytest.fixture(scope="module", params=["silu", pytest.param("gelu", marks=pytest.mark.slow), "relu"])
def wide_init(request):
    act = theory.activation(request.param)
    run = S.train(act, [S.orthogonal_setup(act, 0, n=20, v=1.5, c=1.0)], T)[0]
    return act, run, (run.z0[run.own] <= rank.barrier(act)).mean()


def test_p16_pairs_below_the_barrier_never_activate(wide_init):
    act, run, below = wide_init
    assert run.never_activated[-1] >= below       # exact: sigma' <= 0 below z* pushes them down
    # P16 (0.01) against the finite-t flow prediction: slow crossers just above z* included
    assert abs(run.never_activated[-1] - S.flow_prediction(act, run).never_activated[-1]) < 0.01


def test_p16_never_activated_fraction_is_the_barrier_fraction(wide_init):
    act, run, below = wide_init
    excess = run.never_activated[-1] - below
    if act.name == "silu":
        # finding: 10 of 1000 own-class pairs start just above z* and have not crossed by T = 5000
        # (tau ~ log(z - z*)/sigma''(z*)); the flow prediction reproduces the excess exactly
        assert 0.0095 < excess < 0.0105
    else:
        assert excess < 0.01                          # P16


# ---- the flow prediction against GD on orthogonal data (the stable-rank check's quantitative core)
@pytest.mark.parametrize("name", ["leaky_relu", "silu"])
def test_flow_prediction_matches_gd(name):
    act = theory.activation(name)
    run = S.train(act, [S.orthogonal_setup(act, 1, n=10, v=0.045, c=0.1)], 2000)[0]
    flow = S.flow_prediction(act, run)
    gap_measured, gap_predicted = run.per_class[-1] - 1, flow.per_class[-1] - 1
    assert np.all(np.abs(gap_measured / gap_predicted - 1) < 0.1)   # Euler vs flow, c = 0.1 (see the check)
    assert abs(run.full[-1] / flow.full[-1] - 1) < 0.01
    assert abs(run.loss[-1] / flow.loss[-1] - 1) < 0.01


# ---- the checks end to end
def test_checks_on_leaky_relu():
    context = Context(profile="quick", seed=2)
    for check_id in ("stable-rank", "margins", "rank-conditions"):
        result = run_check(get_check(check_id), LEAKY, context)
        assert result.verdict == "agrees", (check_id, result.reason)
        assert result.plots and all(plot.series for plot in result.plots)
    stable = run_check(get_check("stable-rank"), LEAKY, context)
    assert {"per_class", "full_matrix", "predicted", "steps"} <= set(stable.details)


def test_one_step_check_on_relu():
    result = run_check(get_check("one-step-collapse"), RELU, Context())
    assert result.verdict == "agrees", result.reason


@pytest.mark.parametrize("name,fragment", [("sigmoid", "s+ = 0"), ("sin", "no limit"), ("step", "point masses"),
                                           ("abs", "decreases"), ("relu_k", "s+ = oo"), ("gaussian", "s+ = 0")])
def test_kou_checks_not_applicable(name, fragment):
    result = run_check(get_check("stable-rank"), theory.activation(name), Context())
    assert result.verdict == "not_applicable" and fragment in result.reason


def test_one_step_not_applicable_when_the_update_does_not_dominate():
    result = run_check(get_check("one-step-collapse"), theory.activation("cos"), Context())
    assert result.verdict == "not_applicable" and "dominates" in result.reason


@pytest.mark.slow
@pytest.mark.parametrize("name", ["relu", "softplus", "elu", "silu", "gelu"])
def test_checks_on_generic_activations(name):
    act = theory.activation(name)
    for check_id in ("stable-rank", "rank-conditions", "one-step-collapse"):
        result = run_check(get_check(check_id), act, Context())
        assert result.verdict == "agrees", (name, check_id, result.reason)


# ---- digits: near-orthogonality fails
def test_digits_are_far_from_orthogonal():
    problem = S.digits_setup(0)
    assert S.near_orthogonality(problem.x) < 0.1
    assert S.near_orthogonality(S.digits_setup(0, centered=True).x) > S.near_orthogonality(problem.x)


@pytest.mark.slow
def test_digits_experiment_reports_rank():
    data = S.digits_experiment(LEAKY, 0)
    assert set(data) == {"raw", "centered"}
    assert all(1 <= v for entry in data.values() for v in entry["per_class"])
