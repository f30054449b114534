"""Stable rank and margins of two-layer networks on nearly-orthogonal data (stable_rank.md).

* :mod:`.model` -- the Kou and Frei two-layer models, the data, and GD in reduced coordinates
  (seeds batched in one tensor);
* :mod:`.experiments` -- the setups the check options describe, trained as one batch, and the
  predictions built from the predicted activation pattern;
* :mod:`.claims` -- the four checks (``stable-rank``, ``margins``, ``one-step-collapse``,
  ``rank-conditions``) as criteria, premises and controls; importing this package registers them.
"""

from .claims import (KOU_OPTIONS, MARGINS, ONE_STEP, RANK_CONDITIONS, STABLE_RANK, decision_boundary,
                     kou_applies, misplaced_fraction, rate_exponents)
from .experiments import (FreiSetup, KouSetup, first_update_expectations, flow_prediction, frei_experiment,
                          kou_experiment, limit_ranks, predicted_kernel)
from .model import (DATA_KINDS, Problem, Run, draw_data, frei_layer, frei_setup, kou_layer, near_orthogonality,
                    orthogonal_setup, pattern_mismatch, setup_a, single_threaded, train)

__all__ = ["DATA_KINDS", "FreiSetup", "KOU_OPTIONS", "KouSetup", "MARGINS", "ONE_STEP", "Problem", "RANK_CONDITIONS",
           "Run", "STABLE_RANK", "decision_boundary", "draw_data", "first_update_expectations", "flow_prediction",
           "frei_experiment", "frei_layer", "frei_setup", "kou_applies", "kou_experiment", "kou_layer", "limit_ranks",
           "misplaced_fraction", "near_orthogonality", "orthogonal_setup", "pattern_mismatch", "predicted_kernel",
           "rate_exponents", "setup_a", "single_threaded", "train"]
