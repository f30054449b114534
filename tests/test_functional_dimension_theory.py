"""Tests of theory.functional_dimension: architectures, counts, bounds, symmetries (proved
symbolically), the sampling bound and the derivation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
import torch
from scipy.stats import binom

import theory
from numerics.cli import main as cli_main
from theory.errors import IbcheckError
from theory.functional_dimension import (Architecture, always_active_deficit, binomial_at_most, dead_neuron_deficit,
                                         derive_architecture, frozen_network, hit_lower_bound, hit_upper_bound,
                                         jacobian_transform_identity, necessary_region_estimate,
                                         parse_architecture, permutation_order, region_fill_probability,
                                         relu_only_reason, relu_scale, rescaling_scaling, rescaling_support,
                                         sampling_failure_asymptote, sampling_failure_bound,
                                         shallow_closed_form_identity, sufficient_set_lower_bound,
                                         symbolic_invariance, symbolic_network)


# ---- parsing --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["4-8-8-1", "4,8,8,1", "[4, 8, 8, 1]", " 4-8-8-1 ", (4, 8, 8, 1), [4, 8, 8, 1]])
def test_parse_accepts_the_usual_spellings(spec):
    assert parse_architecture(spec).widths == (4, 8, 8, 1)


@pytest.mark.parametrize("spec, words", [
    ("4-0-1", "width 0"),
    ("4-x-1", "not a whole number"),
    ("4", "no hidden layer"),
    ("4-1", "no hidden layer"),
    ("4--3-1", "negative width"),
    ("4,-3,1", "negative width -3"),
    ([4, -3, 1], "negative width -3"),
    ([4, 2.5, 1], "not an integer"),
    ("", "empty architecture"),
    ("4-1e3-1", "not a whole number"),
    ("100000-100000-100000-1", "parameters"),
    ("4-99999999999-1", "absurdly large"),
    (42, "an architecture is"),
])
def test_bad_architectures_get_one_line_errors(spec, words):
    with pytest.raises(IbcheckError) as err:
        parse_architecture(spec)
    message = str(err.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("widths", [(4, 8, 8, 1), (1, 10, 1), (3, 5, 4, 2), (784, 30, 30, 30, 10)])
def test_counts_match_a_torch_network(widths):
    """Independent route: count the parameters of the same nn.Sequential."""
    arch = Architecture(widths)
    layers = [torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
    assert arch.n_parameters == sum(p.numel() for layer in layers for p in layer.parameters())
    assert arch.hidden_neurons == sum(widths[1:-1])
    assert arch.rescaling_bound == arch.n_parameters - arch.hidden_neurons
    assert arch.depth == len(widths) - 1


def test_layout_matches_torch_flattening_order():
    """M^l row-major then b^l, layer by layer: nn.Linear's (weight, bias) order."""
    arch = Architecture((3, 4, 2))
    layers = [torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)]
    flat = torch.cat([p.detach().reshape(-1) for layer in layers for p in layer.parameters()])
    assert flat[arch.weight_index(1, 2, 1)] == layers[0].weight[2, 1]
    assert flat[arch.bias_index(1, 3)] == layers[0].bias[3]
    assert flat[arch.weight_index(2, 1, 3)] == layers[1].weight[1, 3]
    assert flat[arch.bias_index(2, 1)] == layers[1].bias[1]
    assert arch.offsets == (0, 16, 26)


def test_bounds():
    arch = Architecture((4, 8, 8, 1))  # N_par 121, H 16
    assert arch.bound(10) == 10 and arch.bound(1000) == 105
    assert arch.region_bound(3) == 1 * 5 * 3
    assert arch.input_geometry_bound(5) == 105 and arch.input_geometry_bound(3) == 105 - 8 * 2
    with pytest.raises(IbcheckError):
        arch.input_geometry_bound(7)
    assert arch.jacobian_bytes(10) == 8 * 10 * 121


# ---- symmetries -----------------------------------------------------------------------------
def test_rescaling_support_sizes_and_disjointness():
    arch = Architecture((3, 5, 4, 2))
    plus, minus = rescaling_support(arch, 2, 1)
    assert len(plus) == 5 + 1 and len(minus) == 2
    supports = [set(sum(rescaling_support(arch, 1, j), [])) for j in range(5)]
    assert all(not (supports[i] & supports[j]) for i in range(5) for j in range(i + 1, 5))
    with pytest.raises(IbcheckError):
        rescaling_support(arch, 3, 0)  # the output layer has no rescaling


def test_dead_neuron_deficit_counts():
    arch = Architecture((3, 6, 6, 2))
    assert dead_neuron_deficit(arch, [(1, 0)]) == 3 + 1 + 6 - 1  # the notes' 9
    # neurons (1, 0) and (2, 0) share the coordinate M^2_{0,0}
    assert dead_neuron_deficit(arch, [(1, 0), (2, 0)]) == (4 + 6) + (7 + 2) - 1 - 2


def test_always_active_deficit():
    arch = Architecture((3, 6, 6, 2))
    assert [always_active_deficit(arch, 1, k) for k in (1, 2, 3)] == [1, 4, 9]
    assert always_active_deficit(arch, 2, 3) is None  # |A| > N_3 = 2: not a bound


def test_symbolic_invariance_holds():
    proof = symbolic_invariance()
    assert proof.holds and proof.null_vector_count == 4
    assert symbolic_invariance("1-2-1").holds


def test_symbolic_identity_detects_a_wrong_transform():
    """Negative controls: the identity must fail for a map that is not a symmetry."""
    net = symbolic_network(Architecture((1, 2, 1)))
    lam = [sp.Symbol("l0", positive=True), sp.Symbol("l1", positive=True)]
    right = rescaling_scaling(net, 1, lam)
    wrong = [lam[0] if s == 1 / lam[0] else s for s in right]  # lambda instead of 1/lambda on a fan-out
    assert jacobian_transform_identity(net, right)
    assert not jacobian_transform_identity(net, wrong)
    order = permutation_order(net.arch, 1, [1, 0])
    unpermuted = [list(row) for row in net.pattern]
    assert not jacobian_transform_identity(net, [sp.S.One] * net.arch.n_parameters, order, unpermuted)


def test_frozen_network_is_the_network_inside_a_region():
    """Independent route: evaluate the real ReLU network where all neurons are active."""
    net = symbolic_network(Architecture((1, 1, 1)))
    values = dict(zip(net.theta, [2, 1, 3, -1]))  # z1 = 2x + 1, f = 3 h - 1
    frozen = frozen_network(net)[0].subs(values).subs({net.pattern[0][0]: 1, net.inputs[0]: 5})
    assert frozen == 3 * max(0, 2 * 5 + 1) - 1


def test_shallow_closed_form_identity():
    assert shallow_closed_form_identity(1, 3)
    assert shallow_closed_form_identity(2, 2)


@pytest.mark.parametrize("text, scale", [("relu", 1), ("2*max(0,x)", 2), ("leaky_relu", None), ("abs", None),
                                         ("tanh", None), ("x", None)])
def test_relu_scale(text, scale):
    act = theory.activation(text)
    assert relu_scale(act) == scale
    assert (relu_only_reason(act) is None) == (scale is not None)


# ---- the sampling bound ---------------------------------------------------------------------
@pytest.mark.parametrize("k, n, p", [(0, 10, 0.1), (1, 100, 0.02), (2, 1000, 1e-3), (2, 20000, 3e-4), (5, 3, 0.5)])
def test_binomial_at_most_matches_scipy(k, n, p):
    assert binomial_at_most(k, n, p) == pytest.approx(binom.cdf(k, n, p), rel=1e-10, abs=1e-300)


def test_union_bounds():
    masses = [0.5, 0.3, 0.19, 0.01]
    n, dim = 500, 2
    failure = sum(binom.cdf(dim, n, p) for p in masses)
    assert sampling_failure_bound(masses, n, dim) == pytest.approx(failure, rel=1e-10)
    assert hit_lower_bound(masses, n, dim) == pytest.approx(1 - failure, rel=1e-10)
    # the sufficient-set version with every count N_0 + 1 is the notes' bound; dropping regions helps
    assert sufficient_set_lower_bound(masses, [3, 3, 3, 3], n) == pytest.approx(1 - failure, rel=1e-10)
    assert sufficient_set_lower_bound(masses, [3, 3, 1, 0], n) > hit_lower_bound(masses, n, dim)
    assert region_fill_probability(0.01, n, 3) == pytest.approx(binom.sf(2, n, 0.01), rel=1e-10)
    assert region_fill_probability(0.01, n, 0) == 1.0
    estimate = necessary_region_estimate(masses, [0, 1, 2, 3], n)
    assert estimate == pytest.approx(binom.sf(0, n, 0.3) * binom.sf(1, n, 0.19) * binom.sf(2, n, 0.01), rel=1e-10)
    assert hit_upper_bound(masses, [0, 1, 2, 3], n) >= estimate


def test_bound_decays_at_the_rate_of_the_smallest_region():
    """Property: log P(fail) falls like n log(1 - p_min) for large n (section 1.8)."""
    masses, dim = [0.6, 0.39, 0.01], 1
    n1, n2 = 3000, 4000
    slope = (math.log(sampling_failure_bound(masses, n2, dim))
             - math.log(sampling_failure_bound(masses, n1, dim))) / 1000
    asymptote = (math.log(sampling_failure_asymptote(masses, n2, dim))
                 - math.log(sampling_failure_asymptote(masses, n1, dim))) / 1000
    # leading term C(n, N_0) p^N_0 (1 - p)^(n - N_0): slope log(1 - p) + N_0 log(n2 / n1) / (n2 - n1)
    expected = math.log(0.99) + dim * math.log(n2 / n1) / 1000
    assert asymptote == pytest.approx(expected, rel=1e-9)
    assert slope == pytest.approx(expected, rel=0.005)  # the j < N_0 terms and C(n,1)/n shift it by ~1e-3 relative


def test_bad_mass_is_rejected():
    with pytest.raises(IbcheckError):
        binomial_at_most(1, 10, 1.5)


# ---- derivation and CLI -----------------------------------------------------------------------
def test_derivation_renders_in_every_format():
    derivation = derive_architecture("4-8-8-1")
    results = derivation.results
    assert results["n_parameters"] == 121 and results["hidden_neurons"] == 16 and results["rescaling_bound"] == 105
    assert results["symbolic_invariance"] is True and results["closed_form_identity"] is True
    titles = [s.title for s in derivation.sections]
    assert any("Frozen-pattern" in t for t in titles) and any("closed form" in t for t in titles)
    for fmt in ("text", "markdown", "latex", "json"):
        assert len(derivation.render(fmt)) > 1000
    data = json.loads(derivation.to_json())
    assert data["n_parameters"] == 121 and len(data["steps"]) >= 20


def test_shallow_scalar_architecture_mentions_the_closed_form_size():
    derivation = derive_architecture("2-5-1")
    assert derivation.results["closed_form_columns"] == 16 == Architecture((2, 5, 1)).rescaling_bound


def test_cli_derive_architecture(capsys):
    assert cli_main(["derive", "--architecture", "4-8-8-1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_parameters"] == 121


@pytest.mark.parametrize("argv, words", [
    (["derive"], "give an activation"),
    (["derive", "relu", "--architecture", "4-8-1"], "not both"),
    (["derive", "--architecture", "4-0-1"], "width 0"),
    (["derive", "--architecture", "4-x-1"], "not a whole number"),
])
def test_cli_derive_errors_are_one_line(argv, words, capsys):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_numeric_layout_agrees_with_numpy_flattening():
    """The numerics flatten [M^1, b^1, ...]; the indices here must point at the same entries."""
    arch = Architecture((2, 3, 2, 1))
    rng = np.random.default_rng(0)
    mats = [(rng.standard_normal((b, a)), rng.standard_normal(b)) for a, b in zip(arch.widths[:-1], arch.widths[1:])]
    flat = np.concatenate([np.concatenate([m.ravel(), v]) for m, v in mats])
    assert flat.size == arch.n_parameters
    assert flat[arch.weight_index(2, 1, 2)] == mats[1][0][1, 2]
    assert flat[arch.bias_index(3, 0)] == mats[2][1][0]
