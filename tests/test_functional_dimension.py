"""Tests of numerics.functional_dimension (and numerics.mlp, the MNIST loader): Jacobians by two
routes and finite differences, ranks against numpy and sympy, the theorems F1-F9 on small nets,
region enumeration against sampling and an independent quadrature, training, and the checks."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import sympy as sp
import torch

import theory
from numerics import data
from numerics import functional_dimension as F
from numerics.functional_dimension import bfd as bfd_module
from numerics.functional_dimension.rank import _augmented
from numerics.functional_dimension.sampling import _pattern_codes
from numerics.functional_dimension.theorems import _set_bias
from numerics.checks import Context, get_check, run_check
from numerics.mlp import MLP, TrainingPreset, train_classifier
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
def test_structured_grams_are_the_products_of_the_jacobian(arch, n):
    """Independent route: J from the blocks, multiplied out.  Sums of n N_L products in float64:
    ~1e-15 relative to the largest entry, so 1e-12 leaves room and still catches any misplaced block."""
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


def test_gram_memory_is_sized_before_allocating(monkeypatch):
    with pytest.raises(IbcheckError, match="Gram matrix"):
        F.check_gram_memory(parse_architecture("784-4000-4000-10"), 3000)
    arch = parse_architecture("3-5-4-2")
    assert F.gram_bytes(arch, 4) == 8 * (2 * 8**2 + 4**2)  # row route: two (n N_L)^2 and one n^2 array
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


def test_theorems_check_with_few_trials():
    result = run_check(get_check("fd-theorems"), RELU, Context(options={"trials": "12"}))
    assert result.verdict == "agrees", result.reason
    for key in ("trials", "bound_violations", "invariance_failures", "frozen_pattern_agreement",
                "closed_form_agreement", "exact_rank_agreement", "jacobian_route_max_diff"):
        assert key in result.details


def test_sampling_check_on_a_chosen_net():
    result = run_check(get_check("fd-sampling"), RELU,
                       Context(options={"architecture": "1-4-1", "draws": "30", "scale": "1.0"}))
    assert result.verdict == "agrees", result.reason
    for key in ("exact_cffd", "batch_sizes", "hit_fraction", "hit_lower_bound", "estimator_cffd"):
        assert key in result.details
    bad = run_check(get_check("fd-sampling"), RELU, Context(options={"architecture": "3-4-1"}))
    assert bad.verdict == "error" and "input dimension" in bad.reason


def test_training_check_small_and_its_verdict_follows_the_evidence():
    options = {"architecture": "16-4-4-10", "seeds": "2", "n_train": "30", "n_test": "30", "epochs": "0,10"}
    result = run_check(get_check("fd-training"), RELU, Context(options=options))
    details = result.details
    for key in ("parameters", "bound", "bfd_init_train", "bfd_end_train", "bfd_min_train", "bfd_init_test",
                "bfd_end_test", "bfd_random_end", "softmax_rank_end", "centred_logit_rank_end", "seeds_decreasing"):
        assert key in details
    majority = details["seeds_decreasing"] > len(details["bfd_init_train"]) / 2
    assert result.verdict == ("agrees" if majority else "disagrees")
    labels = [s.label for s in result.plots[0].series]
    assert any("softmax" in l for l in labels) and any("centred" in l for l in labels) and "N_par - H" in labels
    bad = run_check(get_check("fd-training"), RELU, Context(options={"epochs": "5,10"}))
    assert bad.verdict == "error" and "epochs" in bad.reason


@pytest.mark.slow
@pytest.mark.parametrize("check_id", ["fd-theorems", "fd-sampling", "fd-training"])
def test_checks_quick_profile_acceptance(check_id):
    result = run_check(get_check(check_id), RELU, Context(profile="quick", seed=0))
    assert result.verdict in ("agrees", "disagrees"), result.reason
    if check_id != "fd-training":  # theorems must hold; the training claim's verdict follows the evidence
        assert result.verdict == "agrees", result.reason
    else:
        assert len(result.details["bfd_init_train"]) >= 5
        assert "seeds" in result.reason
