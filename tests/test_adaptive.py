"""numerics.adaptive: training, zero-plane measurements and the four adaptive-regime checks.

Fast tests use the quick profile (cached runs shared between tests); the reference-scale
runs of E7-E9 are ``@pytest.mark.slow``.  References are independent: autograd against the
closed-form gradients, plain per-network GD against the packed ensemble, one-sided
velocities against the actual flow, constructed geometries with known answers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import theory
from numerics import adaptive as ad
from numerics.checks import Context, get_check, run_check
from numerics.data import toy_1d
from numerics.networks import Init, ShallowNetwork, as_tensor
from numerics.torch_activation import torch_activation
from numerics.training import gradient_descent
from theory.errors import IbcheckError

QUICK = Context(profile="quick", seed=0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: a second intra-op thread only adds synchronisation (the suite uses one too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(check_id: str, formula: str, context: Context = QUICK):
    result = run_check(get_check(check_id), theory.activation(formula), context)
    assert result.verdict != "error", result.reason + str(result.details.get("traceback", ""))
    return result


# ---- the packed ensemble ---------------------------------------------------------------------

@pytest.mark.parametrize("formula", ["relu", "leaky_relu", "abs", "tanh", "x/(1+abs(x))"])
def test_closed_form_gradient_matches_autograd(formula):
    x, y = toy_1d()
    ens = ad.Ensemble(theory.activation(formula), x, y, 30, [(ad.ADAPTIVE, 0), (ad.KERNEL, 1)])
    (fast,) = torch.autograd.grad(ens.loss(), [ens.params])
    (taped,) = torch.autograd.grad(ens.reference_loss(), [ens.params])
    assert torch.allclose(fast, taped, atol=1e-14, rtol=1e-12)      # float64 summation order only


def test_one_activation_call_where_sigma_is_its_slope_times_the_input():
    """slope_times_input flags exactly the piecewise-linear, positively 1-homogeneous activations, and
    for them sigma'(z) z is what the compiled sigma gives, bit for bit (up to the sign of a zero)."""
    flagged = {name for name in theory.builtin_names() if ad.slope_times_input(theory.activation(name))}
    assert flagged == {"relu", "leaky_relu", "abs"}
    assert ad.slope_times_input(theory.activation("max(x, 0.3*x)"))
    assert not ad.slope_times_input(theory.activation("max(x, 0.3*x) + 1/10"))
    z = np.concatenate([np.random.default_rng(1).standard_normal(5000) * 10.0 ** np.arange(-5, 5).repeat(500),
                        [0.0, -0.0, 1e-310, -1e-310, 1e300, -1e300]])
    for name in ("relu", "leaky_relu", "abs", "max(x, 0.3*x)"):
        act = theory.activation(name)
        assert np.array_equal(act.numeric("numpy")(z), act.numeric("numpy", 1)(z) * z)


def test_slopes_from_the_sign_bit_are_the_compiled_slopes():
    """slopes_by_sign gives the compiled sigma' bit for bit (zeros of either sign, subnormals,
    infinities, magnitudes 1e-300..1e300), for the Piecewise slopes it takes over; None elsewhere."""
    taken = {name for name in theory.builtin_names() if ad.slopes_by_sign(theory.activation(name))}
    assert taken == {"leaky_relu"}
    magnitudes = 10.0 ** np.random.default_rng(2).uniform(-300, 300, 6000)
    z = np.concatenate([magnitudes * np.random.default_rng(3).choice([-1.0, 1.0], 6000),
                        [0.0, -0.0, 5e-324, -5e-324, np.inf, -np.inf]]).reshape(6, 1001)
    for name in ("leaky_relu", "leaky_relu(a=0.3)", "leaky_relu(a=0)"):
        act = theory.activation(name)
        slopes = ad.slopes_by_sign(act)
        out = slopes(z, np.empty(z.shape), np.empty(z.shape, dtype=bool))
        with np.errstate(invalid="ignore"):  # the compiled form's finiteness sum meets inf - inf
            compiled = act.numeric("numpy", 1)(z)
        assert np.array_equal(out.view(np.int64), compiled.view(np.int64))


def test_ensemble_with_slopes_from_the_sign_bit_is_bitwise_the_compiled_route(monkeypatch):
    """Training leaky ReLU through slopes_by_sign gives bit for bit the states and residuals of
    the compiled sigma' (E7's members and sizes, 300 steps)."""
    act = theory.activation("leaky_relu")
    x, y = toy_1d()
    members = [(ad.ADAPTIVE, s) for s in range(3)] + [(ad.KERNEL, s) for s in range(3)]
    fast = ad.Ensemble(act, x, y, 100, members, 4.0).train(300, [0, 150, 300])
    monkeypatch.setattr("numerics.adaptive.ensemble.slopes_by_sign", lambda act: None)
    compiled = ad.Ensemble(act, x, y, 100, members, 4.0).train(300, [0, 150, 300])
    assert np.array_equal(fast.states.view(np.int64), compiled.states.view(np.int64))
    assert np.array_equal(fast.residuals.view(np.int64), compiled.residuals.view(np.int64))


def test_each_member_follows_plain_gradient_descent():
    """The weighted packed loss gives every member exactly its own GD step size."""
    act = theory.activation("relu")
    x, y = toy_1d()
    members = [(ad.ADAPTIVE, 3), (ad.KERNEL, 4)]
    ens = ad.Ensemble(act, x, y, 25, members, lr_factor=2.0)
    ens.train(40, [0, 40])
    for m, (regime, seed) in enumerate(members):
        net = ShallowNetwork(act, 25, 1, regime.init(), seed=seed)
        X, Y = as_tensor(x), torch.as_tensor(y)
        gradient_descent(net.parameters, lambda: 0.5 * ((net(X) - Y) ** 2).mean(), 40,
                         regime.learning_rate(25, 2.0), record_steps=[0])
        rows = ens.state()[m]
        assert np.allclose(rows[:, 0], net.v.detach().numpy(), atol=1e-12)
        assert np.allclose(rows[:, 1:2], net.w.detach().numpy(), atol=1e-12)
        assert np.allclose(rows[:, 2], net.b.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("formula", ["relu", "tanh"])
@pytest.mark.parametrize("blank", [False, True])
def test_packed_loop_equals_a_plain_numpy_loop(formula, blank):
    """The packed closed-form loop (batched products on preallocated buffers, the bias folded into
    the input as x_hat = (x, 1)) equals a plain numpy GD loop per member, written out here, on
    inputs in 2 dimensions with three members of two step sizes (records in between included);
    with ``blank`` a third input coordinate, 0 on every point, sits between the two: the packed
    loop leaves it out, the plain loop trains its weights too (they get a zero gradient)."""
    act = theory.activation(formula)
    sigma, slope = {"relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0) * 1.0),
                    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2)}[formula]
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((7, 2)), rng.standard_normal(7)
    if blank:
        x = np.insert(x, 1, 0.0, axis=1)
    d = x.shape[1]
    members, width, steps = [(ad.ADAPTIVE, 0), (ad.KERNEL, 1), (ad.ADAPTIVE, 2)], 20, 300
    ens = ad.Ensemble(act, x, y, width, members)
    start = ens.state()
    for m, (regime, seed) in enumerate(members):  # the initial rows are the members' networks
        net = ShallowNetwork(act, width, d, regime.init(), seed=seed)
        assert np.array_equal(start[m], torch.cat([net.v[:, None], net.w, net.b[:, None]], 1).detach().numpy())
    traj = ens.train(steps, [0, 100, steps])
    for m, (regime, _) in enumerate(members):
        v, w, b = start[m, :, 0].copy(), start[m, :, 1:1 + d].copy(), start[m, :, 1 + d].copy()
        lr = regime.learning_rate(width)
        for _ in range(steps):
            z = x @ w.T + b
            r = sigma(z) @ v - y
            q = slope(z) * v * r[:, None] / len(y)
            v, w, b = v - lr * sigma(z).T @ r / len(y), w - lr * q.T @ x, b - lr * q.sum(0)
        # float64 round-off only: 300 steps of O(1e-2) updates, summation orders differ
        assert np.allclose(traj.states[-1, m], np.column_stack([v, w, b]), rtol=1e-12, atol=1e-13)
        assert np.allclose(traj.residuals[-1, m], sigma(x @ w.T + b) @ v - y, rtol=1e-12, atol=1e-13)
        if blank:  # a blank coordinate's weights never move: exactly their initial values
            assert np.array_equal(traj.states[-1, m, :, 2], start[m, :, 2])


def test_plane_coordinates_match_shallow_network():
    act = theory.activation("relu")
    net = ShallowNetwork(act, 12, 3, Init(kind="gaussian", s_v=1.0), seed=5)
    state = torch.cat([net.v.detach()[:, None], net.w.detach(), net.b.detach()[:, None]], 1).numpy()
    mine, theirs = ad.plane_coordinates(state), net.rs_coordinates()
    for key in ("rho", "theta", "beta", "v"):
        assert np.allclose(mine[key], theirs[key], atol=1e-15)


def test_bad_input_is_a_clear_error():
    x, y = toy_1d()
    with pytest.raises(IbcheckError, match="targets"):
        ad.Ensemble(theory.activation("relu"), x, y[:3], 10, [(ad.ADAPTIVE, 0)])
    with pytest.raises(IbcheckError, match="member"):
        ad.Ensemble(theory.activation("relu"), x, y, 10, [])


# ---- geometry on constructed states ----------------------------------------------------------

def test_gaps_pinned_fraction_and_clusters_on_a_constructed_state():
    x = np.array([[-0.5], [0.0], [0.5]])
    # rows (v, w, b): kinks at 0 (twice, and once with orientation -1), 0.25, and 2 (outside)
    state = np.array([[1, 1, 0.0], [1, 2, 0.0], [1, -1, 0.0], [1, 1, -0.25], [1, 1, -2.0]], dtype=float)
    gaps = ad.plane_gaps(state, x)
    assert gaps[2] == pytest.approx([0.5, 0.0, -0.5])                  # orientation -1 flips the sign
    assert gaps[1] == pytest.approx([-0.5, 0.0, 0.5])                  # distances, not pre-activations
    assert ad.in_hull(gaps).tolist() == [True, True, True, True, False]
    assert ad.breakpoints(state) == pytest.approx([0.0, 0.0, 0.0, 0.25, 2.0])
    assert ad.pinned_fraction(state, x) == pytest.approx(3 / 4)
    assert [len(c) for c in ad.breakpoint_clusters(ad.breakpoints(state))] == [3]
    labels = ad.plane_clusters(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0.3, 0.3, 0.3]))
    assert labels[0] == labels[1] >= 0 and labels[2] == -1


def test_plane_clusters_are_scikit_learns_dbscan():
    """The connected components within eps against scikit-learn's DBSCAN (min_samples = 2): the same
    labels, numbering included, on random planes with chains of near-copies (gaps up to 1.2 eps, so
    single linkage joins some and not others)."""
    from sklearn.cluster import DBSCAN

    rng = np.random.default_rng(0)
    clusters = 0
    for _ in range(60):
        n, d = int(rng.integers(2, 80)), int(rng.integers(1, 66))
        theta, beta = rng.standard_normal((n, d)), rng.standard_normal(n)
        for _ in range(int(rng.integers(0, 6))):
            i = int(rng.integers(n))
            for j in rng.integers(0, n, size=int(rng.integers(1, 6))):
                theta[j], beta[j] = theta[i] + rng.standard_normal(d) * rng.uniform(0, 1.2e-3) / np.sqrt(d), beta[i]
                i = int(j)
        points = np.concatenate([theta, -beta[:, None]], 1) / np.sqrt(1 + beta**2)[:, None]
        expected = DBSCAN(eps=1e-3, min_samples=2).fit(points).labels_  # plane_clusters' default eps
        assert np.array_equal(ad.plane_clusters(theta, beta), expected)
        clusters += expected.max() + 1
    assert clusters > 60  # the draws do make clusters


def test_digits_are_scikit_learns():
    """The digits read from scikit-learn's file without importing it: load_digits' arrays exactly."""
    from sklearn.datasets import load_digits

    from numerics.data import digits

    x, y = digits()
    reference = load_digits()
    assert np.array_equal(x, reference.data / 16) and np.array_equal(y, reference.target)
    assert y.dtype == reference.target.dtype


def test_image_distances_of_a_plane_through_an_image():
    x = np.array([[3.0, 4.0], [0.0, 5.0], [5.0, 0.0]])                  # median norm 5
    state = np.array([[1.0, 1.0, 0.0, -3.0], [1.0, 0.0, 1.0, -1.0]])    # x1 = 3 passes through x_0
    d, host = ad.image_distances(state, x)
    assert d == pytest.approx([0.0, 1.0 / 5.0]) and host[0] == 0


def test_shared_images_and_their_chance_level():
    distance = np.array([0.0, 0.0, 0.0, 1e-7, 0.5])                     # four pinned units (eps 1e-5)
    host = np.array([3, 3, 7, 1, 3])                                    # two share image 3
    out = ad.shared_images(distance, host, images=10)
    assert (out["pinned"], out["shared"], out["images_hit"]) == (4, 2, 3)
    # independent route: the chance that another of the 3 units picks a given unit's image
    assert out["chance"] == pytest.approx(1 - 0.9**3)


def test_linear_interpolation_gap_of_an_interpolating_spline_is_zero():
    """A ReLU network with kinks exactly at the data interpolates linearly."""
    x = np.array([[-1.0], [0.0], [1.0]])
    y = np.array([1.0, -1.0, 2.0])
    # f = 1 - 2 (x+1)_+ + 5 x_+  (slopes -2, then 3): f(-1)=1, f(0)=-1, f(1)=2
    state = np.array([[-2.0, 1.0, 1.0], [5.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # last: constant 1 = relu(1)
    assert ad.linear_interpolation_gap(state, theory.activation("relu"), x, y) == pytest.approx(0, abs=1e-12)


# ---- velocities against the actual flow ------------------------------------------------------

def _actual_gap_velocity(act, x, y, state, neuron, point):
    """d/dt of (w.x_k + b)/|w| under gradient flow of the full loss, from autograd."""
    net_state = torch.as_tensor(state, dtype=torch.float64).clone().requires_grad_(True)
    sigma = torch_activation(act)
    X = as_tensor(x)
    f = sigma(X @ net_state[:, 1:-1].T + net_state[:, -1]) @ net_state[:, 0]
    loss = 0.5 * ((f - torch.as_tensor(y)) ** 2).mean()
    (grad,) = torch.autograd.grad(loss, [net_state])
    w, b = state[neuron, 1:-1], state[neuron, -1]
    w_dot, b_dot = -grad[neuron, 1:-1].numpy(), -float(grad[neuron, -1])
    rho = np.linalg.norm(w)
    h = (w @ x[point] + b) / rho
    return ((x[point] - h * w / rho) @ w_dot + b_dot) / rho


def test_one_sided_velocities_match_the_flow_on_each_side():
    act = theory.activation("relu")
    x, y = toy_1d()
    rng = np.random.default_rng(1)
    state = np.column_stack([rng.normal(size=8), rng.normal(size=8), rng.normal(size=8)])
    state[0, 1], state[0, 0] = 1.3, 0.9
    k = 2
    r = (np.maximum(x @ state[:, 1:2].T + state[:, 2], 0) @ state[:, 0]) - y
    for side, shift in ((0, -1e-9), (1, +1e-9)):
        state[0, 2] = -1.3 * x[k, 0] + shift                         # plane just below/above x_k
        r = (np.maximum(x @ state[:, 1:2].T + state[:, 2], 0) @ state[:, 0]) - y
        minus, plus = ad.one_sided_velocities(state, r, x, np.array([0]), np.array([k]), act, 0.0, (0.0, 1.0))
        actual = _actual_gap_velocity(act, x, y, state, 0, k)
        predicted = (minus, plus)[side][0]
        # shift 1e-9 changes the residual by ~1e-9: velocities agree to ~1e-8
        assert actual == pytest.approx(predicted, abs=1e-8)


def test_gap_velocity_matches_the_frozen_field_flow():
    act = theory.activation("tanh")
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    v, rho, s, k = 1.0, 7.0, -1.0, 3
    for g in (-0.2, 0.05, 0.3):
        w = torch.tensor(s * rho, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(rho * g - s * rho * xs[k], dtype=torch.float64, requires_grad=True)
        loss = (torch.as_tensor(r) * v * torch.tanh(torch.as_tensor(xs) * w + b)).sum() / len(xs)
        gw, gb = torch.autograd.grad(loss, [w, b])
        wv, bv = w.item(), b.item()
        h = (wv * xs[k] + bv) / abs(wv)
        actual = ((xs[k] - h * np.sign(wv)) * -float(gw) - float(gb)) / abs(wv)
        value, _ = ad.gap_velocity(act, xs, r, v, rho, s, k, np.array([g]))
        assert value[0] == pytest.approx(actual, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("name", ["relu", "tanh", "softplus"])
def test_frozen_field_flow_steps_along_the_autograd_gradient(name):
    """One step of the closed-form numpy flow equals one GD step on autograd's gradient of the
    linear loss (1/N) sum_j r_j sum_i v_i sigma(w_i x_j + b_i) (to rounding: 1e-12 of the step)."""
    act = theory.activation(name)
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    neurons = ad.field_population(len(xs), [-0.7, 0.4], 5.0)
    lr = 0.3
    _, w, b = ad.frozen_field_flow(act, xs, r, neurons, 1, lr)
    w0 = torch.as_tensor(neurons.sign * neurons.rho0, dtype=torch.float64).requires_grad_(True)
    b0 = torch.as_tensor(neurons.u0 - neurons.sign * neurons.rho0 * xs[neurons.point],
                         dtype=torch.float64).requires_grad_(True)
    z = torch.as_tensor(xs)[:, None] * w0 + b0
    loss = (torch.as_tensor(r)[:, None] * torch.as_tensor(neurons.v) * torch_activation(act)(z)).sum() / len(xs)
    gw, gb = torch.autograd.grad(loss, [w0, b0])
    scale = lr * float(max(gw.abs().max(), gb.abs().max()))
    np.testing.assert_allclose(w[0], (w0 - lr * gw).detach().numpy(), rtol=0, atol=1e-12 * scale + 1e-15)
    np.testing.assert_allclose(b[0], (b0 - lr * gb).detach().numpy(), rtol=0, atol=1e-12 * scale + 1e-15)


@pytest.mark.parametrize("name", ["relu", "gelu", "sin"])
def test_frozen_field_states_are_the_flow_at_each_horizon(name):
    """The staged flow (each plane simulated to its own horizon, finished planes dropped) gives bit
    for bit the states one flow of every plane records at those steps: the planes do not interact."""
    act = theory.activation(name)
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    neurons = ad.field_population(len(xs), [-0.3, 0.2], 8.0) + ad.field_population(len(xs), [0.1], 32.0)
    lr = ad.field_step_size(act, xs, r)
    rng = np.random.default_rng(3)
    horizons = rng.integers(0, 120, len(neurons.v))
    horizons[:5] = [0, 200, 200, 1, 57]                          # step 0, ties, the longest last
    w, b = ad.frozen_field_states(act, xs, r, neurons, horizons, lr)
    steps, W, B = ad.frozen_field_flow(act, xs, r, neurons, 200, lr, record_steps=sorted(set(horizons.tolist())))
    at = np.searchsorted(steps, horizons)
    np.testing.assert_array_equal(w, W[at, np.arange(len(w))])
    np.testing.assert_array_equal(b, B[at, np.arange(len(b))])


@pytest.mark.parametrize("name", ["gelu", "tanh", "sin", "elu"])
def test_root_search_of_many_neurons_is_the_search_of_each(name):
    """gap_roots_many over a batch (as placement_test runs it: each neuron with both signs of v,
    searched once and mirrored) gives exactly each neuron's own gap_roots, searched with its own v."""
    act = theory.activation(name)
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    pop = ad.field_population(len(xs), [0.0], 8.0) + ad.field_population(len(xs), [0.0], 32.0)
    batched = ad.gap_roots_many(act, xs, r, pop.v, pop.rho0, pop.sign, pop.point, np.full(len(pop.v), -6.0),
                                np.full(len(pop.v), 6.0))
    for i in range(len(pop.v)):
        assert batched[i] == ad.gap_roots(act, xs, r, pop.v[i], pop.rho0[i], pop.sign[i], pop.point[i], 6.0)
    assert sum(map(len, batched)) > 0
    assert {st for found in batched for _, st in found} >= {True, False}     # both stabilities were mirrored


def test_exact_solver_meets_the_notes_formula_when_neighbours_saturate():
    """softplus at rho = 200: other points see sigma' = 0 or 1, so B is constant in g."""
    act = theory.activation("softplus")
    x, y = toy_1d()
    xs, r = x[:, 0], -y
    v, rho, s, k = 1.0, 200.0, 1.0, 1
    exact = [u for u, st in ad.gap_roots(act, xs, r, v, rho, s, k, 8.0) if st]
    notes = ad._notes_equilibria(act, xs, r, np.array([v]), np.array([rho]), np.array([s]), np.array([k]),
                                 np.array([exact[0] if exact else 0.0]))
    # the kernel's g theta.x term changes B by ~|g| = |u|/rho < 0.05: u* moves by < 0.05
    assert exact and exact[0] == pytest.approx(notes[0], abs=0.05)


# ---- the checks, quick profile (acceptance, fast subset) --------------------------------------

def _criterion(result, start: str):
    return next(c for c in result.criteria if c.name.startswith(start))


def test_pinning_relu_quick_agrees_and_rejects_the_reversed_sign_rule():
    result = _run("pinning", "relu")
    assert result.verdict == "agrees"
    assert result.control.outcome == "fail"                            # the barrier on the wrong side: rejected
    sign = _criterion(result, "sign rule")
    assert sign.outcome == "pass" and sign.measurement.n == 8 and sign.measurement.interval[0] >= 0.99
    assert all(p.holds for p in result.premises)
    assert result.parameters["options"]["seeds"] == 8 and result.parameters["options"]["steps"] == 15_000
    assert result.plots and result.plots[0].series


def test_pinning_stopped_early_is_inconclusive_not_converged_premise():
    result = _run("pinning", "relu", Context(profile="quick", options={"steps": "1500", "seeds": "3"}))
    assert (result.verdict, result.inconclusive_kind) == ("inconclusive", "premise")
    assert "converged" in result.reason


def test_a_kernel_scale_init_is_not_the_adaptive_regime():
    result = _run("zero-plane-clusters", "relu", Context(options={"init_scale": "1", "steps": "500", "seeds": "3"}))
    assert (result.verdict, result.inconclusive_kind) == ("inconclusive", "premise")
    assert "adaptive regime" in result.reason and result.parameters["options"]["init_scale"] == 1.0


def test_zero_plane_clusters_relu_quick():
    result = _run("zero-plane-clusters", "relu")
    assert result.verdict == "agrees" and result.control.outcome == "fail"   # random placement rejected
    count = _criterion(result, "clusters of coincident")
    assert count.outcome == "pass" and count.measurement.estimate <= 6
    # finding (docs/adaptive_regime.md): adaptive fits are farther from linear interpolation than
    # kernel-regime fits; reported, not judged
    li = _criterion(result, "finding: sup|f - LI|")
    assert not li.judged and li.measurement.interval[1] < 0


def test_soft_pinning_sin_judges_exact_stability_and_reports_the_local_rule():
    result = _run("pinning", "sin")
    exact = _criterion(result, "planes that moved")
    local = _criterion(result, "local rule")
    assert exact.judged and exact.outcome == "pass"
    assert not local.judged and local.measurement.estimate < 0.95      # outside its premise: periodic sigma'
    assert result.verdict == "agrees" and result.control.outcome == "fail"


def test_soft_pinning_softplus_judges_one_over_rho():
    result = _run("pinning", "softplus")
    slope = _criterion(result, "offsets vs sharpness")
    assert slope.judged and slope.outcome == "pass"
    assert result.verdict == "agrees"


def test_soft_pinning_tanh_reports_equilibria_moving_to_midpoints():
    """Finding (docs/adaptive_regime.md): tanh offsets do not shrink like 1/rho; root-finding puts
    the stable equilibria at the midpoints between neighbouring data points as rho grows."""
    result = _run("pinning", "tanh")
    assert not _criterion(result, "offsets vs sharpness").judged
    positions = result.details["equilibrium_positions"]
    to_mid = [positions[r]["median_distance_to_midpoint"] for r in ("8.0", "32.0", "128.0")]
    assert to_mid[2] < to_mid[1] < to_mid[0] and to_mid[2] < 0.01
    assert positions["128.0"]["median_distance_to_data"] > 0.1         # half a spacing away, not -> 0
    assert "midpoints" in result.details["finding"]
    assert result.verdict == "agrees"                                  # exact stability holds


def test_soft_pinning_without_planes_is_not_a_pass(monkeypatch):
    from numerics.adaptive import pinning

    empty = {"rows": np.zeros((0, 11)), "neurons": ad.field_population(6, [0.0], 8.0), "at_rest_init": 0.0,
             "late_gap": np.zeros((1, 0)), "late_rho": np.zeros((1, 0)), "lr": 0.1}
    monkeypatch.setattr(pinning, "_soft_run", lambda *args: empty)
    result = run_check(get_check("pinning"), theory.activation("gaussian"), QUICK)
    assert (result.verdict, result.inconclusive_kind) == ("inconclusive", "premise")


def test_attractor_stability_relu_quick():
    result = _run("attractor-stability", "relu")
    assert result.verdict == "agrees" and result.control.outcome == "fail"   # flipped stability rejected
    assert _criterion(result, "trained adaptive nets").outcome == "pass"
    decay = _criterion(result, "pinned fixed points: simulated")
    assert decay.outcome == "pass"
    transverse = _criterion(result, "pinned fixed points: largest transverse")
    assert not transverse.judged                                       # negative by construction at r = 0


@pytest.mark.parametrize("formula", ["exp", "relu_k"])
def test_attractor_stability_does_not_agree_without_evidence(formula):
    result = _run("attractor-stability", formula)
    assert (result.verdict, result.inconclusive_kind) == ("inconclusive", "premise")


def test_pinned_fixed_point_and_its_sliding_flow():
    """Gauss-Newton lands on r = 0 with the pinned planes exactly on their data points; the
    reduced linearization -(JT)^T (JT)/N equals the autodiff Hessian of the loss restricted to the
    pinned surface (an independent route: second derivatives instead of the Gauss-Newton form),
    and projected GD follows it."""
    from torch.func import hessian

    act = theory.activation("relu")
    x, y = toy_1d()
    traj = ad.Ensemble(act, x, y, 30, [(ad.ADAPTIVE, 0)], 4.0).train(8000, [0, 8000])
    state = traj.states[-1, 0]
    pairs = ad.pinned_pairs(state, x, 1e-3)
    assert len(pairs) >= 3
    fixed = ad.refine_pinned(act, x, y, state, pairs)
    C = ad.sliding_constraints(fixed, x, pairs)
    assert np.max(np.abs(C @ fixed.ravel())) < 1e-12                      # pinned planes through their points
    out = ad.sliding_stability(act, x, y, fixed, pairs, steps=200)
    assert out["surface_dimension"] == fixed.size - len(pairs)
    assert out["rank"] == len(y) and np.all(out["transverse"] < 0)
    assert out["max_decay_error"] < 1e-2                                  # rounding ~200 x 1e-16 / delta
    # the reduced Hessian by autodiff has the same nonzero spectrum
    _, _, vt = np.linalg.svd(C)
    T = torch.as_tensor(vt[len(pairs):].T)
    p0 = torch.as_tensor(fixed.ravel())
    sigma = torch_activation(act)
    X, Y = as_tensor(x), torch.as_tensor(y)

    def reduced(q):
        rows = (p0 + T @ q).view(30, 3)
        r = sigma(X @ rows[:, 1:2].T + rows[:, 2]) @ rows[:, 0] - Y
        return 0.5 * (r * r).mean()

    H = hessian(reduced)(torch.zeros(T.shape[1], dtype=torch.float64)).numpy()
    top = np.sort(np.linalg.eigvalsh(H))[::-1][:len(y)]
    assert np.sort(-out["transverse"])[::-1] == pytest.approx(top, rel=1e-8)


def test_digits_small_rejects_random_images():
    """A reduced digits run (60 images, width 60, 3000 steps, 2 seeds; 5 s): pinned units share
    images beyond chance (0.41 [0.26, 0.58] vs 0.22), so the random-image control is rejected."""
    small = {"images": "60", "width": "60", "steps": "3000", "seeds": "2"}
    result = _run("digits-zero-planes", "relu", Context(options=small))
    assert result.verdict == "agrees" and result.control.outcome == "fail"
    assert not _criterion(result, "finding: clusters of coincident").judged


def test_user_formulas_kinked_and_smooth():
    kinked = _run("pinning", "max(x, 0.25*x)", Context(options={"seeds": "4"}))
    assert _criterion(kinked, "sign rule").outcome == "pass" and kinked.control.outcome == "fail"
    # a seed may sit on a plateau at 15000 steps (one of 8 at 2.9% of the start loss): the
    # end-state criteria then wait for convergence instead of passing
    assert kinked.verdict == "agrees" or (kinked.inconclusive_kind == "premise" and "converged" in kinked.reason)
    smooth = _run("pinning", "x/(1+abs(x))")
    assert smooth.details["kind"] == "sigmoid" and _criterion(smooth, "planes that moved").outcome == "pass"


# ---- your own data (--option data=PATH) -------------------------------------------------------

def test_own_data_is_used_and_named(tmp_path):
    path = tmp_path / "five.csv"
    path.write_text("x,y\n-0.9,0.2\n-0.3,-0.5\n0.1,0.4\n0.5,-0.2\n0.9,0.3\n")
    context = Context(profile="quick", options={"data": str(path), "seeds": "3", "steps": "2000"})
    result = _run("zero-plane-clusters", "relu", context)
    assert str(path) in result.details["data"] and hashlib.sha256(path.read_bytes()).hexdigest() in result.details["data"]
    assert result.details["data_points"] == 5
    assert result.parameters["options"]["data"] is not None


def test_own_2d_data_is_not_applicable_to_1d_clusters(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("x1,x2,y\n0,0,1\n1,0,-1\n0,1,0.5\n1,1,0\n")
    context = Context(profile="quick", options={"data": str(path), "seeds": "1", "steps": "10"})
    result = run_check(get_check("zero-plane-clusters"), theory.activation("relu"), context)
    assert result.verdict == "not_applicable" and "1D data" in result.reason
    smooth = run_check(get_check("attractor-stability"), theory.activation("tanh"), context)
    assert smooth.verdict == "not_applicable"                         # no frozen field in 2D, no kink
    kinked = run_check(get_check("attractor-stability"), theory.activation("relu"), context)
    assert "pinned kinks repel" in kinked.control.name                # trained fixed points only
    assert kinked.verdict == "inconclusive"                           # 10 steps: nothing pinned yet


def test_bad_data_file_is_an_error_with_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    result = run_check(get_check("pinning"), theory.activation("relu"), Context(options={"data": str(path)}))
    assert result.verdict == "error" and "header" in result.reason and "\n" not in result.reason


@pytest.mark.parametrize("formula, check, words", [
    ("step", "pinning", "do not move"), ("x", "attractor-stability", "no equilibria"),
    ("min(max(x, -1), 1)", "pinning", "kinks only"), ("tanh", "zero-plane-clusters", "no kink"),
    ("softplus", "digits-zero-planes", "no kink"),
])
def test_not_applicable_with_a_reason(formula, check, words):
    result = run_check(get_check(check), theory.activation(formula), QUICK)
    assert result.verdict == "not_applicable" and words in result.reason


# ---- reference scale (E7-E9, P11, digits) ----------------------------------------------------

FULL = Context(profile="full", seed=0)


@pytest.mark.slow
def test_e7_e8_reference_relu():
    """E7/E8: n = 200, 1.5e5 steps, 10 seeds; kernel sweep 100/400/1600; E9 2D."""
    result = _run("pinning", "relu", FULL)
    for name in ("sign rule", "in-hull kinks within 1e-3 of a data point at the end", "pinned at the end"):
        assert _criterion(result, name).outcome == "pass"
    # the 2D sign rule was 0.919 pooled over 3 seeds in the reference run (finding 6): not asserted
    d = result.details
    # every miss comes from a handful of (neuron, point) pairs: slow crossings near a point
    for seed in d["sign_rule_samples_per_seed"] + d["sign_rule_2d_per_seed"]:
        assert seed["violating_pairs"] <= 2


@pytest.mark.slow
@pytest.mark.parametrize("formula", ["softplus", "tanh"])
def test_soft_pinning_reference(formula):
    result = _run("pinning", formula, FULL)
    assert _criterion(result, "planes that moved").outcome == "pass"


@pytest.mark.slow
def test_digits_quick_and_its_control():
    result = _run("digits-zero-planes", "relu")
    assert result.verdict == "agrees" and result.control.outcome == "fail"   # random images rejected
    assert _criterion(result, "finding: clusters of coincident").measurement.estimate == 0
