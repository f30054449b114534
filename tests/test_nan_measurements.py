"""NaN or inf in a measurement never yields ``agrees`` (issue 20).

The verdict engine decides criteria (``numerics/verdicts.py``: a non-finite estimate or interval
fails); these tests pin the cases the issue named: a NaN or infinite replicate, a NaN stored in a
cached record, and ``exp(x)`` whose attractor-stability placements are all NaN.
"""

from __future__ import annotations

import math

import pytest

import theory
from numerics.checks import CheckResult, Context, all_checks, judged_result, run_check
from numerics.verdicts import Criterion, Measurement, control, within

RELU = theory.activation("relu")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_replicate_fails_its_criterion(bad):
    measured = Measurement.mean([1.0, 1.01, bad, 0.99])
    wrong = control("a wrong theory", 3.0, measured, within(3.0, 0.1))
    result = judged_result("synthetic", RELU, [Criterion("ratio", 1.0, measured, within(1.0, 0.1))], wrong)
    assert result.verdict != "agrees" and result.criteria[0].outcome == "fail"


@pytest.mark.parametrize("bad", ["nan", "inf", None])
def test_a_stored_nan_is_rejudged_not_trusted(bad):
    measured = Measurement.mean([1.0, 1.01, 0.99, 1.0])
    wrong = control("a wrong theory", 3.0, measured, within(3.0, 0.1))
    record = judged_result("synthetic", RELU, [Criterion("ratio", 1.0, measured, within(1.0, 0.1))], wrong).to_dict()
    assert record["verdict"] == "agrees"
    record["criteria"][0]["estimate"] = bad
    record["criteria"][0]["interval"] = [bad, bad]
    try:
        result = CheckResult.from_dict(record)
    except Exception as err:  # noqa: BLE001 - a malformed record may also be refused outright
        assert type(err).__name__ == "IbcheckError"
        return
    assert result.verdict != "agrees"


def test_exp_attractor_stability_does_not_agree_on_nan_placements():
    result = run_check(all_checks()["attractor-stability"], theory.activation("exp"), Context(profile="quick"))
    assert result.verdict != "agrees", result.measured
