r"""The adaptive regime on trained networks: zero-plane tracking, pinning, clusters, attractors.

spectral_bias.md sections 5 and 6.3-6.4 (E7-E9, P10-P13); the conditions come from
:mod:`theory.dynamics`.

Setups (6.3):

* **adaptive** (E7): :math:`v \sim N(0, 1)`, :math:`w, b \sim N(0, 0.05^2)`, standard
  parameterization, full-batch GD with :math:`\eta = 0.2/(n(s_v^2 + s_w^2))` (times
  ``lr_factor``); **kernel** contrast: :math:`(s_v, s_w, s_b) = (0.05, 1, 1)`.
  Several runs of one width are trained together as an :class:`Ensemble` (one packed
  parameter tensor, exact per-run gradients and step sizes), which costs barely more per
  step than one run.
* **frozen residual field** (5.4, 5.5 step 3): single neurons with fixed output weight move in
  the residual field :math:`r_j = -y_j` of the toy data (f = 0), i.e. under the linear loss
  :math:`\frac1N\sum_j r_j v\sigma(w x_j + b)`.  This is the premise of the gap equation (the
  residual does not react to one neuron, as in a wide network), so its equilibria and their
  stability can be tested directly; it is also the only setup in which smooth activations
  move their zero-planes at a sharpness :math:`\rho` where pinning can be seen (in the E7
  initialization a smooth network stays near its linearization, :math:`\rho \approx 0.05`).

Measurements: kink-plane gaps :math:`h = (w\cdot x_k + b - c)/\|w\|` (c = 0: the zero-plane),
pinned fractions of in-hull planes, the sign rule :math:`v r_k\kappa > 0` and the Filippov
one-sided velocities of pinned pairs, breakpoint displacement, clusters (1D by breakpoint,
d-D by DBSCAN on :math:`(\theta, -\beta)/\sqrt{1+\beta^2}`), the fit against linear
interpolation, the linear stability of pinned fixed points of trained adaptive networks
(Filippov-reduced flow), and zero-plane distances to training images on scikit-learn's digits.

Package layout (measuring apart from judging): :mod:`.ensemble` trains the networks,
:mod:`.planes` measures zero-planes, :mod:`.field` solves and simulates the frozen-field gap
equation, :mod:`.fixed_points` finds and linearizes fixed points, :mod:`.digits` runs the
digits experiment; :mod:`.setup` holds the options and shared runs, and :mod:`.pinning`,
:mod:`.clusters`, :mod:`.attractors` turn measurements into criteria, a control and premises.
"""

from ..checks import register
from . import attractors, clusters, pinning
from .digits import DIGITS_EPS, digits_experiment, image_distances, shared_images
from .ensemble import (ADAPTIVE, KERNEL, Ensemble, Regime, Trajectory, record_schedule, slope_times_input,
                       slopes_by_sign)
from .field import (MIN_PAIRS, FieldNeurons, _notes_equilibria, equilibrium_positions, field_population,
                    field_step_size, frozen_field_flow, frozen_field_states, gap_roots, gap_roots_many, gap_velocity,
                    placement_test, sharpness_slopes, soft_pinning)
from .fixed_points import pinned_pairs, refine_pinned, sliding_constraints, sliding_stability
from .planes import (breakpoint_cluster_summary, breakpoint_clusters, breakpoints, in_hull, linear_interpolation_gap,
                     one_sided_velocities, pinned_fraction, pinning_statistics, plane_clusters, plane_coordinates,
                     plane_gaps)

for _check in (pinning.CHECK, clusters.CHECK, attractors.CHECK, clusters.DIGITS_CHECK):
    register(_check)

__all__ = ["ADAPTIVE", "DIGITS_EPS", "KERNEL", "MIN_PAIRS", "Ensemble", "FieldNeurons", "Regime", "Trajectory",
           "_notes_equilibria", "breakpoint_cluster_summary", "breakpoint_clusters", "breakpoints", "digits_experiment",
           "equilibrium_positions", "field_population", "field_step_size", "frozen_field_flow", "frozen_field_states",
           "gap_roots", "gap_roots_many", "gap_velocity", "image_distances", "in_hull", "linear_interpolation_gap",
           "one_sided_velocities", "pinned_fraction", "pinned_pairs", "pinning_statistics", "placement_test",
           "plane_clusters", "plane_coordinates", "plane_gaps", "record_schedule", "refine_pinned",
           "shared_images", "sliding_constraints", "sliding_stability", "slope_times_input", "slopes_by_sign",
           "soft_pinning", "sharpness_slopes"]
