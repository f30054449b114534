"""Tests of numerics.functional_dimension (and numerics.mlp, the MNIST loader): Jacobians by two
routes and finite differences, ranks against numpy and sympy, the theorems F1-F9 on small nets,
region enumeration against sampling and an independent quadrature, training, and the checks."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.linalg
import sympy as sp
import torch

import theory
from numerics import data
from numerics import functional_dimension as F
from numerics.functional_dimension import bfd as bfd_module
from numerics.functional_dimension import jacobian as jacobian_module
from numerics.functional_dimension import rank as rank_module
from numerics.functional_dimension.rank import _augmented
from numerics.functional_dimension.sampling import _pattern_codes
from numerics.functional_dimension.theorems import _set_bias
from numerics.checks import Context, get_check, run_check
from numerics.mlp import MLP, TrainingPreset, classification_gradient, classification_loss, train_classifier
from theory.errors import IbcheckError
from theory.functional_dimension import parse_architecture

torch.set_num_threads(1)
RELU = theory.activation("relu")


def net_and_inputs(arch: str, n: int, seed: int = 0, init: str = "he"):
    net = MLP.initialize(arch, init, seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, net.arch.input_dim))
    return net, x


# ---- Jacobians -------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["1-10-1", "3-5-4-2", "4-6-4-3", "2-3-3-3-2"])
def test_jacobian_routes_agree_with_each_other_and_finite_differences(arch):
    net, x = net_and_inputs(arch, 7)
    autodiff = F.jacobian_autodiff(net, x).numpy()
    blocks = F.jacobian_blocks(net, x)
    assert autodiff.shape == (7 * net.arch.output_dim, net.arch.n_parameters)
    # float64 rounding of sums of a few products: ~1e-16 relative
    assert np.abs(autodiff - blocks).max() <= 1e-12 * np.abs(blocks).max()
    theta = net.flat().numpy()
    f = net.functional()
    h = 1e-6  # central differences: truncation error 0 (piecewise linear in each parameter), rounding ~1e-10
    columns = []
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = h
        plus = f(torch.as_tensor(theta + step), torch.as_tensor(x)).detach().numpy()
        minus = f(torch.as_tensor(theta - step), torch.as_tensor(x)).detach().numpy()
        columns.append(((plus - minus) / (2 * h)).reshape(-1))
    assert np.abs(np.stack(columns, axis=1) - blocks).max() <= 1e-6 * max(1.0, np.abs(blocks).max())


def test_no_chunk_is_dropped():
    """The pitfall of the authors' script: a last partial chunk must be kept."""
    net, x = net_and_inputs("3-5-4-2", 10)
    whole = F.jacobian_autodiff(net, x)
    chunked = F.jacobian_autodiff(net, x, chunk=3)  # chunks of 3, 3, 3, 1
    assert chunked.shape[0] == 10 * 2
    assert torch.equal(whole, chunked)


def test_jacobian_memory_guard_refuses_before_allocating():
    net = MLP.initialize("3-5-4-2", "he", 0)
    arch = parse_architecture("784-30-30-30-10")
    with pytest.raises(IbcheckError) as err:
        F.check_jacobian_memory(arch, 10**7)
    assert "GiB" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(IbcheckError):
        F.batch_functional_dimension(net, np.zeros((4, 2)))  # wrong input width


def test_blocks_work_for_any_activation():
    """BFD is a Jacobian rank for every activation; the closed-form blocks use sigma'."""
    net = MLP.initialize("3-5-4-2", "he", 0, act=theory.activation("tanh"))
    x = np.random.default_rng(0).standard_normal((9, 3))
    assert np.allclose(F.jacobian_autodiff(net, x).numpy(), F.jacobian_blocks(net, x), atol=1e-13, rtol=0)


# ---- ranks -----------------------------------------------------------------------------------
def test_svd_rank_follows_numpys_rule_and_reports_the_gap():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    v, _ = np.linalg.qr(rng.standard_normal((25, 25)))
    values = np.array([10.0 ** -k for k in range(12)] + [1e-20] * 13)
    matrix = u[:, :25] @ np.diag(values) @ v.T
    rank = F.svd_rank(matrix)
    assert rank.rank == np.linalg.matrix_rank(matrix) == 12
    # after the rotations the 1e-20 values are buried in rounding ~1e-16: the gap is ~5 decades
    assert 4.0 <= rank.gap_log10 <= 6.5
    diagonal = np.zeros((40, 25))
    diagonal[:25, :25] = np.diag(values)  # exact singular values: gap log10(1e-11 / 1e-20) = 9
    assert F.svd_rank(diagonal).gap_log10 == pytest.approx(9.0, abs=1e-9)
    assert F.pivoted_qr_rank(matrix).rank == 12
    low = u[:, :25] @ np.diag([1, 1e-12] + [0] * 23) @ v.T
    assert F.svd_rank(low).ill_determined is False
    assert F.svd_rank(np.zeros((3, 4))).rank == 0


def test_zero_rows_and_columns_leave_the_singular_values_and_the_rank():
    """svd_rank drops exactly zero rows and columns before the SVD: the singular values of the whole
    matrix to rounding (the dropped ones exact zeros where LAPACK returns ~1e-16 s_max), the same rank,
    gap above the flag and flags; a NaN is still refused."""
    rng = np.random.default_rng(5)
    u, _ = np.linalg.qr(rng.standard_normal((60, 30)))
    v, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    core = u @ np.diag(np.logspace(0, -9, 30)) @ v.T
    core[:, 20:] = core[:, :10] @ rng.standard_normal((10, 10))  # rank 20
    matrix = np.zeros((70, 45))
    rows, columns = rng.permutation(70)[:60], rng.permutation(45)[:30]
    matrix[np.ix_(rows, columns)] = core
    for jac in (matrix, matrix.T):
        got, whole = F.singular_values(jac), scipy.linalg.svdvals(jac)
        assert got.shape == whole.shape == (45,) and np.all(got[30:] == 0)
        # one SVD's backward error each: a few eps s_max apart
        np.testing.assert_allclose(got, whole, rtol=0, atol=50 * np.finfo(float).eps * whole[0])
        rank = F.svd_rank(jac)
        assert rank.rank == np.linalg.matrix_rank(jac) == 20 and not rank.ill_determined
    net = MLP.initialize("4-6-5-3", "he", 1)
    x = np.random.default_rng(1).standard_normal((12, 4))
    with torch.no_grad():
        net.biases[0][2] = -100.0  # a first-layer neuron dead on every input: 5 + 5 zero columns
    jac = F.jacobian_blocks(net, x)
    assert np.sum(~jac.any(axis=0)) >= 10
    whole = scipy.linalg.svdvals(jac)
    np.testing.assert_allclose(F.singular_values(jac), whole, rtol=0, atol=50 * np.finfo(float).eps * whole[0])
    assert F.svd_rank(jac).rank == np.linalg.matrix_rank(jac)
    matrix[0, 0] = np.nan
    with pytest.raises(ValueError):
        F.svd_rank(matrix)


def test_float32_jacobian_needs_the_float32_epsilon():
    """Section 3.2: rounding to float32 lifts the rescaling null directions to ~1e-8 s_max."""
    net, x = net_and_inputs("10-8-8-3", 100)
    jac32 = F.jacobian_blocks(net, x).astype(np.float32)
    bound = net.arch.rescaling_bound
    assert F.svd_rank(jac32).rank <= bound
    assert F.svd_rank(jac32, eps=np.finfo(np.float64).eps).rank > bound  # impossible in exact arithmetic


def test_exact_rank_agrees_with_sympy_matrix_rank():
    rng = np.random.default_rng(3)
    a = rng.integers(-5, 6, (6, 4))
    matrix = np.vstack([a, a[:2] + a[2:4]]).astype(object)  # rank <= 4, rows dependent
    assert F.exact_rank(matrix) == sp.Matrix(matrix.tolist()).rank()


def test_ill_determined_flags_a_dropped_value_just_under_the_tolerance():
    """The issue's case: sigma = 2.7e-13 under tol = 5.5e-13, kept values far above (an 11-decade gap)."""
    rng = np.random.default_rng(0)
    rows = 2477  # tol = 1 * 2477 * eps = 5.50e-13
    u, _ = np.linalg.qr(rng.standard_normal((rows, 3)))
    v, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rank = F.svd_rank(u @ np.diag([1.0, 1e-2, 2.7e-13]) @ v.T)
    assert rank.tolerance == pytest.approx(5.5e-13, rel=1e-3)
    assert rank.rank == 2 and rank.gap_log10 > 10  # the gap alone would call this safe
    assert rank.near_tolerance == 1 and rank.ill_determined
    clean = F.svd_rank(u @ np.diag([1.0, 1e-2, 1e-15]) @ v.T)  # 2.7 decades under the cut: not flagged
    assert clean.rank == 2 and clean.near_tolerance == 0


def _coplanar_3_5_2(seed: int = 2):
    """A 3-5-2 net with rational weights and 20 inputs on the plane x3 = x1/3 + x2/5 + 1/7 (exactly)."""
    from fractions import Fraction as Q

    rng = np.random.default_rng(seed)
    w1 = [[Q(int(v), 7) for v in row] for row in rng.integers(-9, 10, (5, 3))]
    b1 = [Q(int(v), 5) for v in rng.integers(-9, 10, 5)]
    w2 = [[Q(int(v), 3) for v in row] for row in rng.integers(-9, 10, (2, 5))]
    b2 = [sp.Rational(1, 3), "-2/7"]  # sympy Rationals and 'p/q' strings are exact too
    x = []
    for _ in range(20):
        a, b = Q(int(rng.integers(-30, 31)), 7), Q(int(rng.integers(-30, 31)), 11)
        x.append([a, b, a / 3 + b / 5 + Q(1, 7)])
    return [(w1, b1), (w2, b2)], x


def test_exact_bfd_on_exact_rationals_keeps_coplanarity():
    """Reference: the input-geometry bound (1.5.4), a theorem, N_par - H - N_1 (N_0 + 1 - rank[X|1])
    = 27 - 5 = 22 on coplanar inputs.  The exact API reaches it; the same numbers rounded to floats
    are no longer coplanar and the exact rank of the rounded data exceeds the bound."""
    layers, x = _coplanar_3_5_2()
    arch = parse_architecture("3-5-2")
    x_affine = F.exact_rank(np.hstack([np.array(x, dtype=object), np.ones((20, 1), dtype=object)]))
    assert x_affine == 3
    assert F.exact_bfd(layers, x) == arch.input_geometry_bound(x_affine) == 22
    rounded = [(np.array(w, dtype=float), np.array([float(sp.Rational(v)) for v in b])) for w, b in layers]
    assert F.exact_bfd(rounded, np.array(x, dtype=float)) > 22  # floats: exact binary values, plane lost
    with pytest.raises(IbcheckError, match="rational"):
        F.exact_bfd([([[sp.sqrt(2)] * 3] * 5, [1] * 5), ([[1] * 5] * 2, [0, 0])], x)
    with pytest.raises(IbcheckError, match="pre-activation is 0"):
        F.exact_bfd([([[1, 0, 0]] * 5, [0] * 5), ([[1] * 5] * 2, [0, 0])], [[0, 1, 1]])


@pytest.mark.parametrize("arch, n", [("3-5-4-2", 6), ("3-5-4-2", 40), ("4-6-4-3", 30)])
def test_gram_eigen_rank_agrees_with_the_svd(arch, n):
    """Independent route: the SVD of the explicit J.  Rows (n N_L <= N_par - H) and columns, with a
    dead neuron making the rank data-dependent (not the generic bound)."""
    net, x = net_and_inputs(arch, n, seed=3)
    for candidate in (net, _set_bias(net, 1, 2, -50.0)):
        svd = F.svd_rank(F.jacobian_blocks(candidate, x))
        eigen = F.gram_eigen_rank(candidate, x)
        assert eigen.rank == svd.rank
        assert eigen.tolerance > svd.tolerance  # the squared route cannot resolve the SVD rule's cut
        assert eigen.gap_log10 <= svd.gap_log10 + 1e-6  # its gap is measured to its own, larger cut
        assert eigen.rank == int(np.sum(svd.singular_values > eigen.tolerance))
        pivoted = F.pivoted_gram_rank(candidate, x)  # observed to prove the rank in all these cases
        assert pivoted is not None and pivoted.rank == svd.rank and pivoted.gap_log10 <= svd.gap_log10 + 1e-6
        value = F.batch_functional_dimension(candidate, x, rank_method="gram")
        assert value.value == svd.rank and value.route == "gram" and value.rank.method == "projected"


def test_pivoted_gram_rank_is_sound_or_declines():
    """Over random nets (some with a dead neuron), the pivoted-Cholesky route either proves how many
    singular values lie above its cut (checked against the SVD of the explicit J) or returns None."""
    proved = 0
    for seed in range(6):
        for arch, n in (("3-5-4-2", 40), ("10-8-8-3", 100), ("16-8-8-8-10", 100)):
            net, x = net_and_inputs(arch, n, seed=seed)
            candidate = _set_bias(net, 1, 0, -50.0) if seed % 2 else net
            pivoted = F.pivoted_gram_rank(candidate, x)
            if pivoted is None:
                continue
            svd = F.svd_rank(F.jacobian_blocks(candidate, x))
            # what it proves: exactly r singular values of J above its own cut sqrt(U) (the Gram
            # cannot see below it), hence never more than the SVD rule's rank
            assert pivoted.rank == int(np.sum(svd.singular_values > pivoted.tolerance)) <= svd.rank
            proved += 1
    assert proved >= 6  # it is not a route that always declines


def test_pivoted_gram_rank_on_known_deficiencies_against_the_exact_rank():
    """Reference: the exact rational rank of J at the float parameters (``exact_bfd``, no floating
    rank involved).  Repeated inputs (rows of J repeated: rank 8 N_L < n N_L, the row Gram) and a
    dead neuron (rank below N_par - H, the column Gram): the certificate of the generic bound
    declines and the pivoted route proves the exact rank, with a gap of GAP_FLAG decades."""
    net, x = net_and_inputs("4-6-5-3", 8, seed=2)
    repeated = np.vstack([x, x[:4]])
    dead_net, dead_x = net_and_inputs("3-5-4-2", 40, seed=1)  # n N_L = 80 > N_par - H = 45: columns
    dead_net = _set_bias(dead_net, 1, 2, -50.0)  # a dead neuron: BFD below N_par - H (1.5.5)
    for model, inputs in ((net, repeated), (dead_net, dead_x)):
        exact = F.exact_bfd(model, inputs)
        assert exact < model.arch.bound(len(inputs))  # a deficiency the generic bound does not see
        assert F.certified_rank(model, inputs) is None
        pivoted = F.pivoted_gram_rank(model, inputs)
        assert pivoted is not None and pivoted.rank == exact
        assert pivoted.gap_log10 >= F.GAP_FLAG and not pivoted.ill_determined


def test_pivoted_gram_rank_declines_where_the_gram_cannot_separate():
    """Four inputs repeated with a 1e-6 perturbation: J gets singular values spread over 3e-7 to
    5e-8 of s_max, straddling the Gram's resolution (its cut sits near 2.5e-7 s_max here), so no
    cut with a proved factor-2 separation exists there and the route must return None.  With a
    1e-2 perturbation (values far above the cut) and a 1e-9 one (far below) it proves a rank, and
    what it proves is checked against the SVD of the explicit J: exactly r singular values above
    its tolerance."""
    net, x = net_and_inputs("4-6-5-3", 8, seed=2)
    noise = np.random.default_rng(6).standard_normal((4, 4))
    for size, expected in ((1e-2, "proved"), (1e-6, None), (1e-9, "proved")):
        inputs = np.vstack([x, x[:4] + size * noise])
        pivoted = F.pivoted_gram_rank(net, inputs)
        if expected is None:
            assert pivoted is None
            continue
        svd = F.svd_rank(F.jacobian_blocks(net, inputs))
        assert pivoted is not None
        assert pivoted.rank == int(np.sum(svd.singular_values > pivoted.tolerance)) <= svd.rank
        assert svd.singular_values[pivoted.rank - 1] >= pivoted.tolerance * 10**pivoted.gap_log10 * (1 - 1e-9)


def _assert_proved_by_the_svd(proved, svd):
    """What a route with both sides proved claims, checked against the SVD of the explicit J: the
    r-th singular value is at least its proved lower bound (``tolerance`` 10^gap) and the (r+1)-th at
    most ``tolerance``.  The SVD's values carry an error of at most max(m, p) eps s_max (LAPACK
    Users' Guide 4.9), allowed on both sides."""
    values = svd.singular_values
    slack = max(svd.shape) * svd.eps * svd.s_max
    assert proved.rank <= svd.rank  # it counts values proved above a cut at or above the rule's
    assert values[proved.rank - 1] >= proved.tolerance * 10**proved.gap_log10 - slack
    if proved.rank < len(values):
        assert values[proved.rank] <= proved.tolerance + slack


@pytest.mark.parametrize("arch, n", [("4-6-5-3", 8), ("6-5-5-4", 10)])
def test_projected_rank_is_sound_against_the_svd_and_the_exact_rank(arch, n):
    """Row case (n N_L <= N_par - H).  Repeated inputs (rows of J repeated), a dead neuron, and repeats
    perturbed by 1e-2, 1e-6, 1e-9 (singular values of J spread far above, across and far below the
    Gram's resolution): every result is checked against the SVD of the explicit J; where the rank
    is exact-rational-checkable (repeats, the dead neuron) it equals ``exact_bfd`` with a proved gap of
    GAP_FLAG decades."""
    net, x = net_and_inputs(arch, n, seed=2)
    noise = np.random.default_rng(6).standard_normal((4, x.shape[1]))
    cases = [(net, np.vstack([x, x[:4]]), True), (_set_bias(net, 1, 2, -50.0), x, True)]
    cases += [(net, np.vstack([x, x[:4] + size * noise]), False) for size in (1e-2, 1e-6, 1e-9)]
    for model, inputs, exact in cases:
        assert len(inputs) * model.arch.output_dim <= model.arch.rescaling_bound
        proved = F.projected_rank(model, inputs)
        assert proved is not None and proved.method == "projected"
        _assert_proved_by_the_svd(proved, F.svd_rank(F.jacobian_blocks(model, inputs)))
        if exact:
            assert proved.rank == F.exact_bfd(model, inputs) and proved.gap_log10 >= F.GAP_FLAG


def test_projected_rank_decides_where_the_gram_cannot():
    """Four inputs repeated with a 1e-6 perturbation: J's smallest singular values (5e-8 to 3e-7 of
    s_max) straddle what any Gram resolves, so the pivoted Gram route declines (the test above) and
    the certificate of the bound declines; the projection works on J itself (its floor here is J's
    own rounding, ~1e-13 of s_max), so it proves the SVD rule's rank with a wide gap."""
    net, x = net_and_inputs("4-6-5-3", 8, seed=2)
    noise = np.random.default_rng(6).standard_normal((4, 4))
    inputs = np.vstack([x, x[:4] + 1e-6 * noise])
    assert F.pivoted_gram_rank(net, inputs) is None and F.certified_rank(net, inputs) is None
    svd = F.svd_rank(F.jacobian_blocks(net, inputs))
    proved = F.projected_rank(net, inputs)
    assert proved.rank == svd.rank and proved.gap_log10 >= F.GAP_FLAG and not proved.ill_determined
    _assert_proved_by_the_svd(proved, svd)
    assert F.batch_functional_dimension(net, inputs, rank_method="gram").rank.method == "projected"


@pytest.mark.parametrize("seed", [1, 2])
def test_projected_rank_in_the_column_case(seed):
    """n N_L > N_par - H: the smaller Gram is J^T J (structured order), whose pivots pick columns of J;
    the same projection runs on J's columns.  The H rescaling vectors are exact null vectors, so at
    least H columns are projected to rounding level.  References: the SVD of the explicit J and the
    exact rational rank, with and without a dead neuron."""
    net, x = net_and_inputs("3-5-4-2", 40, seed=seed)
    assert 40 * 2 > net.arch.rescaling_bound
    for model in (net, _set_bias(net, 1, 2, -50.0)):
        proved = F.projected_rank(model, x)
        assert proved is not None and proved.evidence["projected"] >= model.arch.hidden_neurons
        _assert_proved_by_the_svd(proved, F.svd_rank(F.jacobian_blocks(model, x)))
        assert proved.rank == F.exact_bfd(model, x) and proved.gap_log10 >= F.GAP_FLAG


# (arch, n, seed, dead neuron): rows and columns, certified and declined
TORCH_CASES = [("3-5-4-2", 4, 0, False), ("4-10-10-3", 100, 1, False), ("3-5-4-2", 40, 1, True)]


@pytest.mark.parametrize("arch, n, seed, dead", TORCH_CASES)
def test_torch_device_path_agrees_with_lapack(arch, n, seed, dead):
    """``device="cpu"`` runs the certificate's Cholesky and the eigensolver through torch in
    float64, the code a GPU runs; reference: the LAPACK path on the same Gram.  Same decision, same
    proved gap (the gap does not depend on the factorization), same eigenvalue rank; eigenvalues of
    the same matrix from two backward-stable solvers differ by at most 2 q u ||G||_2 (LAPACK Users'
    Guide 4.7), so the squared singular values are compared at 4 q u s_max^2."""
    net, x = net_and_inputs(arch, n, seed)
    if dead:
        net = _set_bias(net, 1, 2, -50.0)
    lapack, through_torch = F.certified_rank(net, x), F.certified_rank(net, x, device="cpu")
    assert (lapack is None) == (through_torch is None) == dead
    if lapack is not None:
        assert (through_torch.rank, through_torch.gap_log10) == (lapack.rank, lapack.gap_log10)
    eigen, eigen_torch = F.gram_eigen_rank(net, x), F.gram_eigen_rank(net, x, device="cpu")
    assert eigen_torch.rank == eigen.rank and eigen_torch.method == "gram-eigh (cpu)"
    q = len(eigen.singular_values)
    assert np.abs(eigen_torch.singular_values**2 - eigen.singular_values**2).max() <= 4 * q * 2**-53 * eigen.s_max**2
    value = F.batch_functional_dimension(net, x, rank_method="gram", device="cpu")
    assert value.rank.method == "gram-eigh (cpu)" and value.value == eigen.rank  # no pivoted route in torch


@pytest.mark.parametrize("arch, n", [("2-3-2-1", 12), ("1-4-1", 6), ("2-2-2-2", 5)])
def test_float_rank_equals_exact_rational_rank(arch, n):
    net, x = net_and_inputs(arch, n)
    assert F.exact_bfd(net, x) == F.batch_functional_dimension(net, x).value


def test_softmax_and_centred_ranks():
    """Exactly: softmax rank = centred-logit rank <= logit rank (3.3); softmax Jacobian vs autograd."""
    net, x = net_and_inputs("4-6-5-3", 30)
    jac = F.jacobian_blocks(net, x)
    with torch.no_grad():
        logits = net(torch.as_tensor(x)).numpy()
    soft = F.output_jacobian(jac, logits, "softmax")
    theta = net.flat()
    f = net.functional()
    reference = torch.autograd.functional.jacobian(lambda t: torch.softmax(f(t, torch.as_tensor(x)), dim=1), theta)
    assert np.abs(reference.reshape(soft.shape).numpy() - soft).max() <= 1e-13
    soft_rank = F.svd_rank(soft).rank
    centred_rank = F.svd_rank(F.output_jacobian(jac, logits, "centred")).rank
    assert soft_rank == centred_rank <= F.svd_rank(jac).rank
    with pytest.raises(IbcheckError):
        F.output_jacobian(jac, logits, "probabilities")


def test_zero_preactivations_are_counted():
    net = MLP.initialize("2-3-1", "glorot", 0)  # zero biases: the input 0 gives z = 0 exactly
    result = F.batch_functional_dimension(net, np.array([[0.0, 0.0], [1.0, 2.0]]))
    assert result.zero_preactivations == 3


# ---- theorems on small nets ------------------------------------------------------------------
def test_theorem_trials_fast_subset():
    trials = F.theorem_trials(40, seed=11, exact_count=4)
    summary = F.summarize_trials(trials)
    assert summary["bound_violations"] == 0 and summary["invariance_failures"] == 0
    assert summary["frozen_pattern_agreement"] == 1.0 and summary["closed_form_agreement"] == 1.0
    assert summary["exact_rank_agreement"] == 1.0 and summary["exact_trials"] >= 1
    assert summary["jacobian_route_max_diff"] <= F.ROUTE_TOLERANCE


@pytest.mark.slow
def test_theorem_trials_acceptance():
    """F1-F3, F5-F7 in every trial, F4 in >= 99% of 300 (notes, table of section 5)."""
    summary = F.summarize_trials(F.theorem_trials(300, seed=0))
    assert summary["bound_violations"] == 0 and summary["invariance_failures"] == 0
    assert summary["frozen_pattern_agreement"] >= 0.99
    assert summary["closed_form_agreement"] == 1.0 and summary["exact_rank_agreement"] == 1.0


def test_symmetries_leave_the_function_unchanged():
    net, x = net_and_inputs("3-5-4-2", 20)
    inputs = torch.as_tensor(x)
    moved = F.rescaled(net, 1, np.array([0.5, 2.0, 1.3, 0.7, 1.9]))
    swapped = F.permuted(net, 2, [3, 1, 0, 2])
    with torch.no_grad():
        assert torch.allclose(moved(inputs), net(inputs), atol=1e-13, rtol=0)
        assert torch.allclose(swapped(inputs), net(inputs), atol=1e-13, rtol=0)
    jac = F.jacobian_blocks(net, x)
    vectors = F.rescaling_null_vectors(net)
    assert np.abs(jac @ vectors.T).max() <= 1e-12 * np.abs(jac).max() * np.abs(vectors).max()


def test_closed_form_and_frozen_rank_match_bfd():
    for seed in range(5):
        net, x = net_and_inputs("2-6-1", 15, seed)
        pattern = net.pattern(torch.as_tensor(x))
        bfd = F.batch_functional_dimension(net, x).value
        assert F.closed_form_rank(pattern, x).rank == bfd
        other = np.random.default_rng(100 + seed).standard_normal(x.shape)
        assert F.frozen_pattern_rank(net.arch, pattern, other, seed=seed).rank == bfd


def test_input_geometry_bound_bites_on_coplanar_inputs():
    net, x = net_and_inputs("3-6-4-2", 60)
    x[:, 2] = 0.5 * x[:, 0]
    assert F.affine_rank(x) == 3
    bound = net.arch.input_geometry_bound(3)
    assert bound == net.arch.rescaling_bound - 6
    assert F.batch_functional_dimension(net, x).value <= bound


def test_dead_neuron_deficit_is_a_lower_bound():
    net, x = net_and_inputs("3-6-6-2", 80, seed=4)
    net = _set_bias(net, 1, 2, -50.0)  # neuron (1, 2) inactive on every input
    pattern = net.pattern(torch.as_tensor(x))
    dead, _ = F.dead_and_active(pattern, net.arch)
    assert (1, 2) in dead
    deficit = net.arch.rescaling_bound - F.batch_functional_dimension(net, x).value
    from theory.functional_dimension import dead_neuron_deficit
    assert deficit >= dead_neuron_deficit(net.arch, dead) >= 9



# ---- the certified rank (no J, no SVD) -------------------------------------------------------
@pytest.mark.parametrize("arch, n", [("3-5-4-2", 9), ("4-8-8-1", 30), ("2-3-3-3-2", 12), ("5-7-6-5-3", 20)])
@pytest.mark.parametrize("step", [2000, 7])  # one block of rows; several (3-7 inputs each, mirrored)
@pytest.mark.parametrize("block", [2**27, 0])  # column pairs with all input products at once; per neuron
def test_structured_grams_are_the_products_of_the_jacobian(arch, n, step, block, monkeypatch):
    """Independent route: J from the blocks, multiplied out.  Sums of n N_L products in float64:
    ~1e-15 relative to the largest entry, so 1e-12 leaves room and still catches any misplaced block."""
    monkeypatch.setattr(rank_module, "ROW_GRAM_STEP", step)
    monkeypatch.setattr(jacobian_module, "COLUMN_GRAM_BLOCK", block)
    net, x = net_and_inputs(arch, n)
    jac = F.jacobian_blocks(net, x)
    hidden, slopes = F.network_states(net, x)
    backprops = F.backprop_matrices([w for w, _ in net.numpy_layers()], slopes, n)
    augmented = _augmented(hidden)
    columns = jac[:, F.structured_order(net.arch)]
    gram = F.column_gram(backprops, augmented)
    assert np.abs(gram - columns.T @ columns).max() <= 1e-12 * np.abs(gram).max()
    rows = F.row_gram(backprops, augmented)
    assert np.abs(rows - jac @ jac.T).max() <= 1e-12 * np.abs(rows).max()
    assert sorted(F.structured_order(net.arch)) == list(range(net.arch.n_parameters))


# (arch, n): n N_L below N_par - H (row route) and above it (column route)
CERTIFIED_CASES = [("3-5-4-2", 4), ("3-5-4-2", 40), ("4-8-8-1", 10), ("4-8-8-1", 200), ("5-7-6-5-3", 4),
                   ("6-10-3", 30), ("4-10-10-3", 100)]


@pytest.mark.parametrize("arch, n", CERTIFIED_CASES)
def test_certified_rank_is_the_svd_rank_or_declines(arch, n):
    """Sound always (never a rank the SVD does not give); complete when the bound is attained with
    sigma_r / s_max > 1e-5, far above what the Gram matrix resolves (sqrt of ~1e-13 relative here)."""
    certified_count = 0
    for seed in range(5):
        net, x = net_and_inputs(arch, n, seed)
        svd = F.svd_rank(F.jacobian_blocks(net, x))
        certified = F.certified_rank(net, x)
        if certified is not None:
            certified_count += 1
            assert certified.rank == svd.rank == net.arch.bound(n) and certified.method == "certified"
            assert certified.gap_log10 <= svd.gap_log10  # a certified lower bound on the measured gap
            assert certified.s_max <= svd.s_max * (1 + 1e-12)  # a Rayleigh quotient: never above s_max
        separated = svd.singular_values[svd.rank - 1] > 1e-5 * svd.s_max
        if svd.rank == net.arch.bound(n) and separated:
            assert certified is not None, f"seed {seed}: bound attained with a clear gap but not certified"
    assert certified_count >= 1  # every case exercises the certificate at least once


def test_certified_rank_declines_below_the_bound_and_bfd_falls_back_to_the_svd():
    net, x = net_and_inputs("3-5-4-2", 40, seed=1)  # attains the bound N_par - H = 45
    dead = _set_bias(net, 1, 2, -50.0)  # a dead neuron: BFD below N_par - H (1.5.5)
    duplicated = np.vstack([x[:3], x[:3]])  # equal rows of J: BFD below n N_L
    tanh_net = MLP.initialize("3-5-2", "he", 0, act=theory.activation("tanh"))  # no rescaling null vectors
    tanh_x = np.random.default_rng(0).standard_normal((40, 3))
    for model, inputs in [(dead, x), (net, duplicated), (tanh_net, tanh_x)]:
        assert F.certified_rank(model, inputs) is None
        fallback = F.batch_functional_dimension(model, inputs, rank_method="certified")
        assert fallback.rank.method == "svd"
        assert fallback.value == F.batch_functional_dimension(model, inputs).value
    proved = F.batch_functional_dimension(net, x, rank_method="certified")
    assert proved.rank.method == "certified" and proved.route == "gram"
    assert proved.value == F.batch_functional_dimension(net, x).value == net.arch.bound(40)
    with pytest.raises(IbcheckError, match="rank method"):
        F.batch_functional_dimension(net, x, rank_method="qr")


def test_certified_rank_declines_a_dead_unit_before_the_cholesky(monkeypatch):
    """A unit dead on the batch zeroes columns of J, so the column Gram has zero diagonal entries
    besides the decoupled coordinates: the matrix factored is not positive definite (a diagonal entry
    <= 0) and the certificate declines without running the Cholesky that would fail."""
    net, x = net_and_inputs("3-5-4-2", 40, seed=1)
    dead = _set_bias(net, 1, 2, -50.0)
    layers = [w for w, _ in dead.numpy_layers()]
    hidden, slopes = F.network_states(dead, x)
    gram = F.column_gram(F.backprop_matrices(layers, slopes, len(x)), _augmented(hidden))
    kept = np.delete(np.diagonal(gram), rank_module._dropped_coordinates(dead, dead.arch))
    assert np.sum(kept == 0) >= 3
    factored = []
    monkeypatch.setattr(rank_module, "_positive_definite_above", lambda *args: factored.append(1) or False)
    assert F.certified_rank(dead, x) is None and factored == []
    F.certified_rank(net, x)
    assert factored == [1]  # the live net reaches the Cholesky


def test_gram_memory_is_sized_before_allocating(monkeypatch):
    with pytest.raises(IbcheckError, match="Gram matrix"):
        F.check_gram_memory(parse_architecture("784-4000-4000-10"), 5000)  # (5e4)^2 doubles: 18.6 GiB
    arch = parse_architecture("3-5-4-2")
    assert F.gram_bytes(arch, 4) == 8 * (3 * 8**2 + 3 * 4**2)  # row route: G, a block of rows twice, 3 n^2 arrays
    assert F.gram_bytes(arch, 40) >= 8 * arch.n_parameters**2  # column route: at least G itself
    net, x = net_and_inputs("3-5-4-2", 40, seed=1)
    monkeypatch.setattr(bfd_module, "gram_bytes", lambda arch, n: 2**62)  # "does not fit": straight to the SVD
    assert F.batch_functional_dimension(net, x, rank_method="certified").rank.method == "svd"

# ---- regions and CFFD ----------------------------------------------------------------------------
def test_one_dimensional_regions_are_the_breakpoints():
    net = MLP.initialize("1-5-1", "he", 2)
    regions = F.enumerate_regions(net)
    w, b = net.numpy_layers()[0]
    breakpoints = np.unique(-b / w[:, 0])
    assert len(regions) == len(breakpoints) + 1  # distinct breakpoints of a shallow net
    masses = F.region_masses(regions, 1.0)
    assert masses.sum() == pytest.approx(1.0, abs=1e-14)


def _polar_quadrature_mass(region, scale, nodes=4000):
    """Independent route: brute-force polar integral of the Gaussian over {a x <= c}."""
    phi = (np.arange(nodes) + 0.5) * 2 * np.pi / nodes
    u = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    p = u @ region.a.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = region.c[None, :] / p
    r1 = np.maximum(np.where(p < 0, ratio, -np.inf).max(axis=1), 0)
    r2 = np.where(p > 0, ratio, np.inf).min(axis=1)
    inside = r2 > r1
    g = np.where(inside, np.exp(-r1**2 / (2 * scale**2)) - np.exp(-np.where(inside, r2, 0) ** 2 / (2 * scale**2)), 0)
    return g.mean()


def test_two_dimensional_regions_against_sampling_and_quadrature():
    net = MLP.initialize("2-4-4-1", "he", 0)
    regions = F.enumerate_regions(net)
    masses = F.region_masses(regions, 2.0)
    assert masses.sum() == pytest.approx(1.0, abs=1e-12)  # Owen's T formula is exact up to rounding
    for region, mass in list(zip(regions, masses))[:12]:
        # midpoint rule on 4000 angles: the integrand has kinks, error ~1e-5 of the region's angular extent
        assert mass == pytest.approx(_polar_quadrature_mass(region, 2.0), abs=2e-4)
    x = np.random.default_rng(0).standard_normal((100_000, 2)) * 2.0
    codes = _pattern_codes(net.pattern(torch.as_tensor(x)))
    known = _pattern_codes(np.array([r.pattern for r in regions]).T)
    assert np.isin(codes, known).all()  # sampling never meets a region the enumeration missed
    frequency = np.array([(codes == k).mean() for k in known])
    sigma = np.sqrt(np.maximum(masses * (1 - masses), 1e-12) / len(x))
    assert np.abs(frequency - masses).max() <= 5 * sigma.max()  # 5 sigma over 36 regions
    for region in regions:  # each region's centre has the region's pattern
        assert (net.pattern(torch.as_tensor(region.center[None, :]))[:, 0] == region.pattern).all()


def test_exact_cffd_routes_agree_and_the_estimator_stays_below():
    net = MLP.initialize("2-4-4-1", "he", 1)
    result = F.exact_cffd(net)
    assert result.cffd == result.decisive_bfd == result.frozen_generic_rank <= net.arch.rescaling_bound
    estimate = F.estimate_cffd(net, seed=0)
    assert estimate.cffd <= result.cffd
    assert estimate.stopped in ("no growth for two doublings", "reached N_par - H", "max_points")


def test_region_enumeration_rejects_what_it_cannot_do():
    with pytest.raises(IbcheckError):
        F.enumerate_regions(MLP.initialize("3-4-1", "he", 0))
    with pytest.raises(IbcheckError):
        F.enumerate_regions(MLP.initialize("2-4-1", "he", 0, act=theory.activation("tanh")))


def test_sampling_experiment_small():
    net = MLP.initialize("1-6-1", "he", 0)
    cffd = F.exact_cffd(net)
    run = F.sampling_experiment(net, cffd, [10, 100, 1000], draws=20, scale=1.0, seed=0, validate_max=1000)
    assert run.unknown_patterns == 0 and run.full_batch_mismatches == 0 and run.full_batch_monotone_violations == 0
    assert (np.diff(run.ranks, axis=1) >= 0).all() and (run.ranks <= cffd.cffd).all()
    assert (run.ranks[run.complete] == cffd.cffd).all()


# ---- MNIST loader -------------------------------------------------------------------------------
def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_mnist_loader_reads_idx_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28))
    labels = rng.integers(0, 10, 12)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
    (tmp_path / "train-labels.idx1-ubyte").write_bytes(_idx(labels))
    x, y = data.mnist(tmp_path)
    assert x.shape == (12, 784) and np.allclose(x * 255, images.reshape(12, -1)) and (y == labels).all()
    x5, _ = data.mnist(tmp_path, n=5, seed=1)
    assert x5.shape == (5, 784)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images[:3], y_test=labels[:3])
    xt, yt = data.mnist(tmp_path / "mnist.npz", "test")
    assert xt.shape == (3, 784) and (yt == labels[:3]).all()


def test_mnist_loader_errors(tmp_path):
    cases = []
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    (tmp_path / "bad" / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(3)))
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "train-images-idx3-ubyte").write_bytes(_idx(np.zeros((3, 2, 2)))[:-2])
    (tmp_path / "short" / "train-labels-idx1-ubyte").write_bytes(_idx(np.zeros(3)))
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4)))
    cases = [(tmp_path / "missing", "does not exist"), (tmp_path, "no MNIST file"),
             (tmp_path / "bad", "bad magic"), (tmp_path / "short", "file holds"),
             (tmp_path / "partial.npz", "lacks y_train")]
    for path, words in cases:
        with pytest.raises(IbcheckError) as err:
            data.mnist(path)
        assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(IbcheckError):
        data.mnist(tmp_path, split="validation")


# ---- training ---------------------------------------------------------------------------------
def test_mnist_protocol_on_a_synthetic_idx_file(tmp_path):
    """The paper's MNIST route end to end on a tiny synthetic IDX set: training inputs from the train
    split, test inputs from the t10k split, 784 features, BFD on logits at the checkpoints."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 40), ("t10k", 20)):
        images = rng.integers(0, 256, (count, 28, 28))
        (tmp_path / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(_idx(rng.integers(0, 10, count)))
    setup = F.TrainingSetup("784-3-3-10", "mnist", n_train=30, n_test=20, n_random=10, epochs=(0, 2),
                            mnist_path=str(tmp_path), output_ranks=False)
    x_train, _, x_test, _ = F.classification_data(setup, seed=0)
    test_pixels = data.mnist(tmp_path, "test")[0]
    assert x_train.shape == (30, 784) and x_test.shape == (20, 784)
    assert {r.tobytes() for r in x_test} == {r.tobytes() for r in test_pixels}  # the test split, all 20
    trace = F.bfd_training_run(setup, seed=0)
    assert trace.epochs == [0, 2] and all(0 < v <= setup.arch.bound(20) for v in trace.test)


def test_train_classifier_records_epochs_and_learns():
    x, y = data.gaussian_classes(40, 3, seed=0)
    labels = torch.as_tensor((y > 0).astype(np.int64))
    net = MLP.initialize("3-6-2", "glorot", 0)
    seen = []
    history = train_classifier(net, torch.as_tensor(x), labels, TrainingPreset("t", lr=0.1, batch_size=16), 30,
                               checkpoints=(0, 10, 30), record=lambda epoch: seen.append(epoch) or epoch)
    assert seen == [0, 10, 30] and history.records == [0, 10, 30]
    assert history.loss[-1] < history.loss[0]
    with pytest.raises(IbcheckError):
        TrainingPreset("bad", lr=-1)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
def test_closed_form_classifier_gradient_is_autograds(act, loss):
    """The backpropagation train_classifier runs, against autograd through classification_loss: the
    loss and every parameter's gradient to rounding (a few ulps of the largest entry per tensor), also
    where pre-activations are exactly 0 (zero biases, as the paper initializes, and a zero input: the
    slope there is autograd's, ReLU's 1, not Heaviside's 1/2)."""
    net = MLP.initialize("5-7-6-4", "glorot", 2, act=theory.activation(act))
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((23, 5)), rng.integers(4, size=23)
    x[0] = 0.0
    reference = classification_loss(net(torch.as_tensor(x)), torch.as_tensor(y), loss)
    expected = torch.autograd.grad(reference, net.parameters)
    value, grads = classification_gradient(net, loss)(x, y)
    assert value == pytest.approx(float(reference.detach()), rel=1e-14)
    assert [g.shape for g in grads] == [tuple(p.shape) for p in net.parameters]
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-14 * float(want.abs().max()))
    with pytest.raises(IbcheckError, match="point mass|distribution"):
        classification_gradient(MLP.initialize("2-3-2", act=theory.activation("step")), loss)


def test_bfd_training_run_small():
    setup = F.TrainingSetup("16-4-4-10", "digits4x4", n_train=40, n_test=30, epochs=(0, 5, 20))
    trace = F.bfd_training_run(setup, seed=0)
    assert trace.epochs == [0, 5, 20]
    assert all(v <= setup.arch.bound(40) for v in trace.train)
    assert all(v <= setup.arch.bound(30) for v in trace.test)
    assert all(s <= c <= l for s, c, l in zip(trace.softmax_train, trace.centred_train, trace.train))
    assert trace.softmax_train == trace.centred_train  # no saturation after 20 epochs: exact equality holds


def test_training_setup_errors():
    for kwargs, words in [({"architecture": "64-8-10"}, "16 features"), ({"dataset": "cifar"}, "unknown dataset"),
                          ({"architecture": "16-8-3"}, "10 classes"), ({"dataset": "mnist"}, "path")]:
        with pytest.raises(IbcheckError) as err:
            F.TrainingSetup(**kwargs)
        assert words in str(err.value)


def test_synthetic_data_and_noise():
    setup = F.TrainingSetup("5-4-4-3", "synthetic", n_train=20, n_test=10, noise=0.5, random_labels=6)
    x_train, y_train, x_test, _ = F.classification_data(setup, seed=0)
    assert x_train.shape == (26, 5) and x_test.shape == (10, 5) and y_train.max() < 3


def test_f12_evidence_counts_seeds():
    def trace(seed, train, test):
        return F.TrainingTrace(seed, [0, 1], train, test, [0, 0], [], [], [0, 0], [0, 0], 10, 10, 9.0)

    evidence = F.f12_evidence([trace(0, [10, 8], [10, 9]), trace(1, [10, 12], [10, 9]), trace(2, [10, 9], [10, 8])])
    assert evidence["seeds_decreasing"] == 2 and evidence["seeds_train_decreasing"] == 2
    assert evidence["seeds_test_decreasing"] == 3
    assert evidence["median_relative_change_train"] == pytest.approx(-0.1)


def test_sweep_small():
    base = F.TrainingSetup("16-4-4-10", "digits4x4", n_train=30, n_test=20, epochs=(0, 3))
    result = F.sweep("width", [2, 4], [0], base)
    assert set(result["test_bfd"]) == {"2", "4"} and result["label"].startswith("paper claim")
    with pytest.raises(IbcheckError):
        F.sweep("depth", [1], [0], base)


def test_initialization_bfd_is_a_fraction_of_the_bound():
    fractions = F.initialization_bfd("4-6-4-3", [0, 1])
    assert all(0 < f <= 1 for f in fractions)


# ---- checks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "leaky_relu", "abs"])
def test_checks_apply_to_relu_only(name):
    for check_id in ("fd-theorems", "fd-sampling", "fd-training"):
        check = get_check(check_id)
        assert check.applies(RELU) is None
        assert "ReLU" in check.applies(theory.activation(name))


def test_theorems_check_with_few_trials_is_undecided_and_has_power():
    result = run_check(get_check("fd-theorems"), RELU, Context(options={"trials": "12"}))
    # 12 trials cannot put F4's Wilson interval above 0.98 (11/11 gives a lower end of 0.74)
    assert (result.verdict, result.inconclusive_kind) == ("inconclusive", "straddles"), result.reason
    outcomes = {c.name.split(":")[0]: c.outcome for c in result.criteria}
    assert outcomes["F4"] == "undecided" and outcomes["F1/F6"] == "pass"
    assert result.control.outcome == "fail"  # some trial attains its bound: "one lower" is rejected
    for key in ("trials", "max_excess_over_bound", "bound_violations", "invariance_failures",
                "frozen_pattern_agreement", "closed_form_agreement", "exact_rank_agreement", "jacobian_route_max_diff"):
        assert key in result.details
    assert result.parameters["options"] == {"architecture": None, "trials": 12}


def test_theorem_claim_decides_from_its_numbers():
    from numerics.functional_dimension.claims import theorem_claim
    from numerics.verdicts import decide

    base = {"trials": 400, "max_excess_over_bound": 0, "max_null_vector_residual": 1e-16, "invariance_failures": 0,
            "max_permutation_sv_diff": 1e-15, "frozen_pattern_agreeing": 380, "frozen_pattern_trials": 380,
            "closed_form_mismatches": 0, "closed_form_trials": 100, "exact_rank_mismatches": 0, "exact_trials": 20,
            "jacobian_route_max_diff": 1e-16, "ill_determined_ranks": 0, "general_position_full_rank": 380}
    assert decide(*theorem_claim(base, True)).verdict == "agrees"
    violated = decide(*theorem_claim(dict(base, max_excess_over_bound=1), True))
    assert violated.verdict == "disagrees" and "F1/F6" in violated.reason
    # no trial attains its bound: the "one lower" control is not rejected -> no power
    assert decide(*theorem_claim(dict(base, max_excess_over_bound=-1), True)).kind == "no_power"
    assert decide(*theorem_claim(dict(base, ill_determined_ranks=10), True)).kind == "premise"
    assert decide(*theorem_claim(dict(base, frozen_pattern_agreeing=342), True)).verdict == "disagrees"  # 0.9
    assert decide(*theorem_claim(dict(base, exact_rank_mismatches=1), True)).verdict == "disagrees"


def test_sampling_check_on_a_chosen_net():
    result = run_check(get_check("fd-sampling"), RELU,
                       Context(options={"architecture": "1-4-1", "draws": "30", "scale": "1.0"}))
    assert result.verdict == "agrees", result.reason
    assert result.control.outcome == "fail"  # CFFD + 1 is rejected
    names = " ".join(c.name for c in result.criteria)
    assert "CFFD invariance" in names and "F9" in names
    for key in ("exact_cffd", "batch_sizes", "hit_fraction", "hit_lower_bound", "estimator_cffd", "cffd_rescaled",
                "cffd_permuted"):
        assert key in result.details
    assert result.details["cffd_rescaled"] == result.details["exact_cffd"]
    bad = run_check(get_check("fd-sampling"), RELU, Context(options={"architecture": "3-4-1"}))
    assert bad.verdict == "error" and "input dimension" in bad.reason
    for options in ({"draws": "0"}, {"scale": "-1"}, {"architecture": "2-x-1"}):
        refused = run_check(get_check("fd-sampling"), RELU, Context(options=options))
        assert refused.verdict == "error" and "--option" in refused.reason and "\n" not in refused.reason


def _trace(seed, train, test, loss=(2.3, 0.01), random=(100, 100)):
    return F.TrainingTrace(seed, [0, 1], list(train), list(test), list(random), [], [], list(loss), [0.1, 1.0],
                           1000, 1000, 9.0)


def _claim(changes_train, changes_test, loss=(2.3, 0.01)):
    from numerics.functional_dimension.claims import training_claim
    from numerics.verdicts import decide

    main = [_trace(i, [1000, 1000 + round(1000 * a)], [1000, 1000 + round(1000 * b)], loss)
            for i, (a, b) in enumerate(zip(changes_train, changes_test))]
    f10 = {"4-6-4-3": [0.95, 0.97, 0.96], "5-10-10-10-3": [0.99, 0.98, 0.97]}
    f11 = [_trace(i, [500, 500], [500, 400], random=(600, 600)) for i in range(3)]  # gap 20 points of 1000
    f11 += [_trace(3, [500, 500], [500, 390], random=(600, 600))]
    return decide(*training_claim(main, f10, f11, 1000))


def test_f12_rule_on_synthetic_per_seed_changes():
    """F12 is decided by the t interval of the per-seed relative change (train and test)."""
    down = [-0.05, -0.08, -0.06, -0.07, -0.04]
    assert _claim(down, down).verdict == "agrees"
    up = [0.05, 0.08, 0.06, 0.07, 0.04]
    assert _claim(up, down).verdict == "disagrees"
    three_of_five = [-0.05, -0.04, -0.06, 0.05, 0.06]  # the 3 of 5: no longer "agrees"
    decision = _claim(three_of_five, three_of_five)
    assert (decision.verdict, decision.kind) == ("inconclusive", "straddles")
    four = [-0.05, -0.08, -0.06, -0.07]  # fewer than 5 seeds decide nothing
    assert _claim(four, four).kind == "too_few_seeds"
    assert _claim(down, down, loss=(2.3, 1.5)).kind == "premise"  # not converged: F12 is about trained nets


def test_training_check_refuses_bad_options_in_one_line(tmp_path):
    for bad, words in (({"epochs": "5,10"}, "epochs"), ({"mnist": str(tmp_path / "absent")}, "does not exist"),
                       ({"device": "tpu"}, "device"), ({"dataset": "cifar"}, "unknown dataset"),
                       ({"seeds": "0"}, "seeds"), ({"architecture": "16-8-3"}, "10 classes")):
        refused = run_check(get_check("fd-training"), RELU, Context(options=bad))
        assert refused.verdict == "error" and words in refused.reason and "\n" not in refused.reason
    if not torch.cuda.is_available():
        refused = run_check(get_check("fd-training"), RELU, Context(options={"device": "cuda"}))
        assert refused.verdict == "error" and "CUDA" in refused.reason


@pytest.mark.slow
def test_training_check_small():
    options = {"architecture": "16-4-4-10", "seeds": "5", "n_train": "30", "n_test": "30", "epochs": "0,10"}
    result = run_check(get_check("fd-training"), RELU, Context(options=options))
    details = result.details
    for key in ("parameters", "bound", "bfd_init_train", "bfd_end_train", "bfd_min_train", "bfd_init_test",
                "bfd_end_test", "bfd_random_end", "softmax_rank_end", "centred_logit_rank_end", "seeds_decreasing",
                "f10", "f11", "f13"):
        assert key in details
    # 10 epochs of 1 step do not train: the convergence premise fails and says so
    assert (result.verdict, result.inconclusive_kind) == ("inconclusive", "premise"), result.reason
    assert "converged" in result.reason
    judged = [c.name for c in result.criteria if c.judged]
    assert any(n.startswith("F12") and "train" in n for n in judged) and any(n.startswith("F11") for n in judged)
    assert result.parameters["options"]["seeds"] == 5 and result.parameters["options"]["epochs"] == (0, 10)
    assert details["f11"]["epochs"] == [10]
    labels = [s.label for s in result.plots[0].series]
    assert any("softmax" in l for l in labels) and any("centred" in l for l in labels)
    assert any(l.startswith("N_par - H") for l in labels)


@pytest.mark.slow
@pytest.mark.parametrize("check_id", ["fd-theorems", "fd-sampling", "fd-training"])
def test_checks_quick_profile_acceptance(check_id):
    result = run_check(get_check(check_id), RELU, Context(profile="quick", seed=0))
    assert result.verdict in ("agrees", "disagrees", "inconclusive"), result.reason
    if check_id != "fd-training":  # theorems must hold, with power; the training claim follows the evidence
        assert result.verdict == "agrees", result.reason
        assert result.control.outcome == "fail", result.reason
    else:
        assert len(result.details["bfd_init_train"]) >= 5
        assert result.verdict != "agrees" or result.control.outcome == "fail"
