"""The verdict engine (numerics/verdicts.py): intervals, criterion outcomes, the decision rules,
re-judging of stored records, options and ``--until-decided``.

Reference intervals come from scipy's own implementations (``stats.t.interval``,
``BinomTestResult.proportion_ci(method="wilson")``), an independent route from ours.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import theory
from numerics.checks import (Check, CheckResult, Context, Option, check_options, judged_result, positive_int,
                             run_check)
from numerics.verdicts import (Criterion, Measurement, Premise, Tolerance, at_least, at_most, between, control,
                               decide, exactly, within, within_relative)
from theory.errors import IbcheckError

RELU = theory.activation("relu")


# ---------------------------------------------------------------- intervals

@pytest.mark.parametrize("values", [[1.0, 2.0], [0.3, 0.31, 0.29, 0.35, 0.27], list(np.linspace(-1, 3, 20))])
def test_mean_interval_is_the_student_t_interval(values):
    m = Measurement.mean(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    # float64 arithmetic on a handful of numbers: agreement to rounding
    assert m.estimate == pytest.approx(np.mean(values), rel=1e-14)
    assert m.interval == pytest.approx((low, high), rel=1e-12, abs=1e-15)
    assert m.n == len(values)


@pytest.mark.parametrize("k, n", [(0, 5), (3, 5), (5, 5), (7, 20), (20, 20), (1, 1)])
def test_proportion_interval_is_the_wilson_interval(k, n):
    m = Measurement.proportion(k, n)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert m.estimate == k / n
    assert m.interval == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_one_replicate_has_no_spread_estimate_and_nan_replicates_poison_the_mean():
    assert Measurement.mean([0.5]).interval == (-math.inf, math.inf)
    assert math.isnan(Measurement.mean([0.5, float("nan"), 0.4]).estimate)
    with pytest.raises(IbcheckError):
        Measurement.mean([])
    with pytest.raises(IbcheckError):
        Measurement.proportion(6, 5)


# ---------------------------------------------------------------- criterion outcomes (table)

def measured(low, high, n=5):
    return Measurement(low if math.isinf(high - low) else (low + high) / 2, (low, high), n, "t")


@pytest.mark.parametrize("interval, tolerance, outcome", [
    ((0.98, 1.01), within(1.0, 0.02), "pass"),
    ((0.97, 1.01), within(1.0, 0.02), "undecided"),
    ((1.03, 1.05), within(1.0, 0.02), "fail"),
    ((0.95, 0.97), within(1.0, 0.02), "fail"),
    ((0.99, 1.01), within_relative(-1.0, 0.02), "fail"),
    ((-1.01, -0.99), within_relative(-1.0, 0.02), "pass"),
    ((0.0, 0.04), at_most(0.05), "pass"),
    ((0.04, 0.06), at_most(0.05), "undecided"),
    ((0.06, 0.07), at_most(0.05), "fail"),
    ((0.6, 0.9), at_least(0.5), "pass"),
    ((0.2, 0.45), at_least(0.5), "fail"),
    ((3.0, 3.0), exactly(3.0), "pass"),
    ((2.0, 2.0), exactly(3.0), "fail"),
    ((1.1, 1.9), between(1.0, 2.0), "pass"),
    ((1.5, math.inf), between(1.0, 2.0), "undecided"),
])
def test_criterion_outcome_table(interval, tolerance, outcome):
    assert Criterion("c", 0, measured(*interval), tolerance).outcome == outcome


def test_non_finite_measurements_fail_never_pass():
    for m in (Measurement.exact(float("nan")), Measurement.mean([1.0, float("inf")]),
              Measurement(float("nan"), (0.0, 1.0), 5)):
        assert Criterion("c", 0.5, m, between(-10, 10)).outcome == "fail"


def test_too_few_replicates_is_undecided_unless_clearly_outside():
    inside = Criterion("c", 1.0, measured(0.99, 1.01, n=3), within(1.0, 0.1), min_n=5)
    outside = Criterion("c", 1.0, measured(2.0, 2.1, n=3), within(1.0, 0.1), min_n=5)
    assert (inside.outcome, inside.kind) == ("undecided", "too_few_seeds")
    assert outside.outcome == "fail"


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(0, 1e3), st.floats(-1e6, 1e6), st.floats(0, 1e3))
def test_outcome_is_set_containment(centre, half, lo, width):
    m = Measurement(centre, (centre - half, centre + half), 5)
    tol = Tolerance((lo, lo + width), "")
    outcome = Criterion("c", 0, m, tol).outcome
    inside = lo <= centre - half and centre + half <= lo + width
    disjoint = centre + half < lo or centre - half > lo + width
    assert outcome == ("pass" if inside else "fail" if disjoint else "undecided")
    # shrinking the interval to its centre keeps a pass a pass and a fail a fail
    point = Criterion("c", 0, Measurement(centre, (centre, centre), 5), tol).outcome
    if outcome == "pass":
        assert point == "pass"
    if outcome == "fail":
        assert point == "fail"


# ---------------------------------------------------------------- the decision: one test per outcome kind

GOOD = Criterion("slope", -2.0, measured(-2.05, -1.95), within(-2.0, 0.1))
BAD = Criterion("slope", -2.0, measured(-1.3, -1.2), within(-2.0, 0.1))
STRADDLING = Criterion("slope", -2.0, measured(-2.2, -2.0), within(-2.0, 0.1))
SLOW = Criterion("sr - 1 decay", 0.0, measured(0.005, 0.05), at_most(0.01), undecided_kind="not_converged")
CONTROL = control("slope of a wrong theory", -1.0, GOOD.measurement, within(-1.0, 0.1))
USELESS_CONTROL = control("a wrong slope too close to tell", -2.02, GOOD.measurement, within(-2.02, 0.1))
ORTHOGONAL = Premise("near-orthogonality", 0.01, True)
NOT_ORTHOGONAL = Premise("near-orthogonality", 0.4, False, "needs <= 0.1")


@pytest.mark.parametrize("criteria, ctrl, premises, verdict, kind", [
    ([GOOD], CONTROL, [ORTHOGONAL], "agrees", None),
    ([GOOD, BAD], CONTROL, [], "disagrees", None),
    ([GOOD, STRADDLING], CONTROL, [], "inconclusive", "straddles"),
    ([GOOD, SLOW], CONTROL, [], "inconclusive", "not_converged"),
    ([Criterion("m", 1, measured(0.9, 1.1, n=2), within(1, 0.5), min_n=5)], CONTROL, [], "inconclusive", "too_few_seeds"),
    ([GOOD], CONTROL, [NOT_ORTHOGONAL], "inconclusive", "premise"),
    ([BAD], CONTROL, [NOT_ORTHOGONAL], "inconclusive", "premise"),  # a failed premise: a miss is no evidence
    ([GOOD], USELESS_CONTROL, [], "inconclusive", "no_power"),
    ([GOOD], None, [], "inconclusive", "no_power"),
    ([GOOD], CONTROL, [Premise("kink at 0", False, False, consequence="not_applicable")], "not_applicable", None),
    ([Criterion("shown only", 1, measured(0, 9), within(1, 1), judged=False)], CONTROL, [], "error", None),
])
def test_decision_table(criteria, ctrl, premises, verdict, kind):
    decision = decide(criteria, ctrl, premises, setup="n = 5")
    assert (decision.verdict, decision.kind) == (verdict, kind)
    assert decision.reason.startswith("n = 5; ")


def test_reported_criteria_never_enter_the_verdict():
    reported = Criterion("full-matrix limit", 2.0, measured(1.3, 1.5), within(2.0, 0.1), judged=False)
    assert decide([GOOD, reported], CONTROL).verdict == "agrees"
    assert decide([GOOD, reported.__class__(**{**reported.__dict__, "judged": True})], CONTROL).verdict == "disagrees"


def test_reason_names_the_failed_criterion_with_its_numbers():
    reason = decide([GOOD, BAD], CONTROL).reason
    assert "slope: -1.25 [-1.3, -1.2] (n = 5), prediction -2 ± 0.1: outside the accepted region" in reason


# ---------------------------------------------------------------- records: judged, stored, re-judged

def test_a_result_must_carry_the_verdict_its_criteria_give():
    with pytest.raises(ValueError, match="judged_result"):
        CheckResult("c", "relu", None, None, None, "agrees", criteria=[BAD], control=CONTROL)
    with pytest.raises(ValueError):
        CheckResult("c", "relu", None, None, None, "inconclusive")  # inconclusive needs its kind


def test_stored_records_are_re_judged_not_trusted():
    result = judged_result("c", RELU, [GOOD], CONTROL, [ORTHOGONAL], setup="n = 5")
    record = result.to_dict()
    assert record["verdict"] == "agrees" and record["control"]["rejected"] is True
    assert CheckResult.from_dict(record).verdict == "agrees"
    tampered = dict(record, verdict="disagrees", reason="edited")
    assert CheckResult.from_dict(tampered).verdict == "agrees"
    moved = dict(record, criteria=[dict(record["criteria"][0], estimate=0.99, interval=[0.98, 1.0])])
    back = CheckResult.from_dict(moved)
    assert back.verdict == "disagrees" and "outside the accepted region" in back.reason
    nan = dict(record, criteria=[dict(record["criteria"][0], estimate="nan")])
    assert CheckResult.from_dict(nan).verdict == "disagrees"
    for broken in (dict(record, criteria=[{"name": "x"}]), dict(record, premises=[{"name": "p", "holds": "yes"}])):
        with pytest.raises(IbcheckError):
            CheckResult.from_dict(broken)


# ---------------------------------------------------------------- options and --until-decided

def _noisy(act, context):
    """A claim whose per-seed values have mean 1.0 +- 0.05 noise against tolerance 1.0 +- 0.06:
    five seeds straddle, enough seeds decide."""
    seeds = context.option("seeds")
    values = 1.0 + 0.05 * np.random.default_rng(context.seed).standard_normal(seeds)
    m = Measurement.mean(values)
    return judged_result("noisy", act, [Criterion("mean", 1.0, m, within(1.0, 0.06))],
                         control("a wrong mean", 1.5, m, within(1.5, 0.06)), setup=f"{seeds} seeds")


NOISY = Check("noisy", "noisy", "T1", lambda act: None, _noisy, {"seeds": Option("seeds", positive_int, 5, 20)})


def test_an_option_no_selected_check_reads_is_an_error_naming_the_valid_keys():
    with pytest.raises(IbcheckError, match="unknown option 'widht' for check noisy; valid keys: seeds"):
        check_options({"widht": "3"}, [NOISY])
    result = run_check(NOISY, RELU, Context(options={"widht": "3"}))
    assert result.verdict == "error" and "valid keys: seeds" in result.reason
    bad_value = run_check(NOISY, RELU, Context(options={"seeds": "-2"}))
    assert bad_value.verdict == "error" and "--option seeds=-2" in bad_value.reason


def test_every_option_value_used_is_recorded():
    assert run_check(NOISY, RELU, Context()).parameters["options"] == {"seeds": 5}
    assert run_check(NOISY, RELU, Context(profile="full")).parameters["options"] == {"seeds": 20}
    assert run_check(NOISY, RELU, Context(options={"seeds": "8"})).parameters["options"] == {"seeds": 8}


def test_until_decided_adds_seeds_while_undecided():
    plain = run_check(NOISY, RELU, Context(seed=3))
    assert (plain.verdict, plain.inconclusive_kind) == ("inconclusive", "straddles")
    decided = run_check(NOISY, RELU, Context(seed=3, until_decided=200))
    assert decided.verdict == "agrees"
    rounds = decided.parameters["until_decided"]["seeds_per_round"]
    assert rounds[0] == 5 and all(b == 2 * a for a, b in zip(rounds, rounds[1:])) and sum(rounds) <= 200
    short_budget = run_check(NOISY, RELU, Context(seed=3, until_decided=10))
    assert short_budget.verdict == "inconclusive"  # 5 + 10 > 10: no second round


def test_quick_and_full_never_decide_opposite_ways_near_the_tolerance():
    """Nested seeds (quick: the first 5 of full's 20), true mean on the tolerance's edge: each
    profile may decide or not, but never agree where the other disagrees."""
    opposite, decided = 0, 0
    for base in range(200):
        values = 1.06 + 0.05 * np.random.default_rng(base).standard_normal(20)
        verdicts = []
        for n in (5, 20):
            m = Measurement.mean(values[:n])
            verdicts.append(decide([Criterion("mean", 1.0, m, within(1.0, 0.06))],
                                   control("wrong", 2.0, m, within(2.0, 0.06))).verdict)
        decided += "inconclusive" not in verdicts
        opposite += set(verdicts) == {"agrees", "disagrees"}
    assert opposite == 0
    assert decided < 200  # the edge case is mostly undecided, as it should be
