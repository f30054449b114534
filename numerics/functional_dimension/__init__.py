r"""Batch and computable full functional dimension of deep ReLU networks, measured
(functional_dimension.md; symbolic side in :mod:`theory.functional_dimension`).

* **Jacobians** of the logits, :math:`J = \partial\,\mathrm{vec} f_\theta(X)/\partial\theta`
  (rows: input i, output k; columns: the flat layout), in float64 by two routes:
  :func:`jacobian_autodiff` (``torch.func`` jacrev + vmap over inputs, chunked, every chunk
  kept and the row count asserted) and :func:`jacobian_blocks` (the closed-form blocks of 1.3,
  :math:`B^L_i = I`, :math:`B^l_i = B^{l+1}_i M^{l+1} D^l_i`, in numpy; the same code runs on
  exact integers or fractions).
* **Rank** (3.1): :func:`svd_rank` with :math:`\mathrm{tol} = s_{max}\max(m, n)\,\varepsilon`,
  :math:`\varepsilon` the machine epsilon of the dtype J was *computed* in (section 3.2: a float32
  J ranked with the float64 epsilon overcounts), and the log10 gap at the cut (smallest kept over
  largest dropped; measured to the tolerance when nothing is dropped), flagged under
  :data:`GAP_FLAG` decades.  :func:`pivoted_qr_rank` is the cheaper comparison route;
  :func:`exact_rank` is sympy's rank over the integers.  :func:`certified_rank` proves that the
  SVD rule's rank equals the bound :math:`\min(nN_L, N_{par} - H)` from the structured Gram matrix
  (:func:`column_gram`, :func:`row_gram`) by one Cholesky, without J or an SVD, or declines.
  At the paper's scale (J 20 000 x 25 720) :func:`projected_rank` proves the rank with both sides
  bounded: a pivoted Cholesky of J J^T keeps the rows it proves independent and the others are
  projected off their span on J itself; :func:`pivoted_gram_rank` (column case) and
  :func:`gram_eigen_rank` work on the Gram alone.
* **Patterns** (1.2-1.5): :func:`frozen_jacobian` (the frozen-pattern map's Jacobian),
  :func:`frozen_pattern_rank` (at a random :math:`\theta'`), :func:`exact_frozen_rank`
  (integers in :math:`[-10^6, 10^6]`, Schwartz-Zippel), :func:`exact_bfd` (the rational rank
  of J at the float parameters themselves), :func:`closed_form_rank` (shallow scalar, 1.4).
* **CFFD** (1.7-1.8): :func:`enumerate_regions` finds every full-dimensional activation region
  for :math:`N_0 \in \{1, 2\}` by refining the arrangement layer by layer (a piece is kept when
  its inscribed ball, a small linear program, has radius > ``min_radius``), :func:`region_masses`
  gives each region's mass under Gaussian inputs exactly (1D: normal CDF; 2D: Owen's T),
  :func:`exact_cffd` ranks every region's affine row space at :math:`\theta`, and
  :func:`estimate_cffd` is the practical estimator (random batches at several scales plus points
  placed on both sides of every neuron's bent hyperplane, doubled until the rank has not grown
  for two doublings).
* **Training** (section 4): :func:`bfd_training_run` trains an MLP and records BFD on training,
  test and random inputs, with the softmax and centred-logit ranks beside the logit rank.

The three checks ``fd-theorems``, ``fd-sampling`` and ``fd-training`` are registered by
:mod:`.claims`.

Modules, in the order of the notes: :mod:`.jacobian` (1.3, 3.1), :mod:`.symmetries` (1.5.2, 1.6),
:mod:`.rank` (3.1-3.2, the certified and Gram routes), :mod:`.bfd` (1.3-1.5), :mod:`.regions`
(1.7), :mod:`.sampling` (1.8), :mod:`.theorems` (F1-F7 trials), :mod:`.training` (section 4),
:mod:`.claims` (the checks: criteria, controls and premises for the verdict engine).
"""

from .bfd import (BFD, RANK_METHODS, SVD_MAX_ENTRIES, affine_rank, batch_functional_dimension, closed_form_matrix,
                  closed_form_rank, dead_and_active, exact_bfd, exact_frozen_rank, frozen_pattern_rank, output_jacobian,
                  random_layers, region_count, to_fraction)
from .jacobian import (CHUNK_BYTES, backprop_matrices, check_gram_memory, check_jacobian_memory, frozen_jacobian,
                       frozen_states, gram_bytes, jacobian_autodiff, jacobian_blocks, jacobian_from_states,
                       network_states)
from .rank import (GAP_FLAG, NEAR_TOLERANCE, Rank, certified_rank, column_gram, exact_rank,
                   gram_eigen_rank, pivoted_gram_rank, pivoted_qr_rank, projected_rank, row_gram, singular_values,
                   structured_order, svd_rank)
from .regions import (RADIUS_CAP, CFFDResult, Region, decisive_set, enumerate_regions, exact_cffd, region_masses,
                      region_row_jacobian, sufficient_counts)
from .sampling import CFFDEstimate, SamplingRun, estimate_cffd, sampling_experiment
from .symmetries import permuted, rescaled, rescaling_null_vectors
from .theorems import (EXACT_MAX_ENTRIES, NULL_VECTOR_TOLERANCE, PERMUTATION_SV_TOLERANCE, ROUTE_TOLERANCE,
                       random_architecture, summarize_trials, theorem_trial, theorem_trials)
from .training import (DATASETS, SWEEPS, TrainingSetup, TrainingTrace, bfd_training_run, classification_data,
                       f12_evidence, initialization_bfd, relative_changes, sweep)
from . import claims  # noqa: F401  (registers the checks)
