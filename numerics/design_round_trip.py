r"""Activation design round trip: ``ibcheck design`` output trained in the kernel regime.

:func:`theory.design.design_activation` turns a target penalty :math:`W^*(\omega)` into
activations (minimum phase: one-sided; zero phase: even) with :math:`|\hat\sigma|^2 = 1/W^*`
(d = 1, spectral_bias.md section 4).  This check closes the loop numerically:

* **rates** (P8 on the design): the random-feature decay-rate ratios of every designed activation
  (:func:`numerics.kernel_regime.rate_study`) match the *requested*
  :math:`W^*(\omega_1)/W^*(\omega)` within 5%;
* **phase invariance** (P9): the two phases give the same kernel-regime interpolant on the toy
  data; judged on their exact infinite-width predictions (quadrature, the same flat-offset init:
  theta = ±1, beta ~ U(-20, 20), rho = 1), within 1% of max|y| (P9's "about 1%"), with the
  random-feature networks' distance reported.

The target defaults to the activation's own spectral weight (so ``relu`` designs ReLU and
-|x|/2), or ``--option target=FORMULA`` in omega (E5: ``(1+omega^2)^2``, whose designs are
:math:`t e^{-t}H(t)` and :math:`e^{-|t|}/2`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory.activations import Activation
from theory.design import PHASES, design_activation
from theory.errors import IbcheckError, Unsupported
from theory.fourier import fourier_transform
from theory.parsing import parse_formula
from theory.penalty import spectral_weight
from theory.symbols import omega

from . import data, infinite_width
from .checks import Check, CheckResult, Context, Option, judged_result, positive_int, register
from .kernel_regime import (RATE_TOLERANCE, hull_grid, kernel_applies, rate_ratio_plot, rate_study, sup_distance,
                            width_study, wrong_rate)
from .networks import Init
from .verdicts import Criterion, Measurement, Premise, at_least, at_most, control, within_relative

#: P9: two activations with equal |sigma_hat| give interpolants within ~1% of max|y|
PHASE_TOLERANCE = 0.01
#: the common flat-offset init of the phase comparison
PHASE_INIT = Init("directions", rho=1.0, offset=20.0)


def _target(text: str) -> sp.Expr:
    return parse_formula(text, variable=("omega", omega))


def design_applies(act: Activation) -> str | None:
    return kernel_applies(act)


def designs(target: sp.Expr) -> tuple[dict[str, Activation], dict[str, str]]:
    """The designed activations per phase, and why a phase gave none."""
    found, missing = {}, {}
    for phase in PHASES:
        try:
            design = design_activation(target, 1, phase)
        except (Unsupported, IbcheckError) as err:
            missing[phase] = str(err)
            continue
        if design.activation is None:
            missing[phase] = "numerical design only (no closed form to train)"
        elif kernel_applies(design.activation):
            missing[phase] = kernel_applies(design.activation)
        else:
            found[phase] = design.activation
    return found, missing


def run_design(act: Activation, context: Context) -> CheckResult:
    target = context.option("target") or spectral_weight(fourier_transform(act), 1, bound=True)
    found, missing = designs(target)
    width, seeds = context.option("width"), context.option("seeds")
    w_of = sp.lambdify(omega, target, "numpy")
    criteria, plots, details = [], [], {"target": str(target), "designs": {p: str(a.expr) for p, a in found.items()},
                                        "no_design": missing}
    last = None
    for phase, designed in found.items():
        study = rate_study(designed, width, seeds, context.seed, context.pick(120.0, 160.0))
        freqs = study.frequencies
        requested = np.array([float(w_of(freqs[0]) / w_of(w)) for w in freqs[1:]])
        for i, w in enumerate(freqs[1:]):
            criteria.append(Criterion(f"{phase} phase ({designed.expr}): rate({w:g})/rate({freqs[0]:g}) vs requested "
                                      f"W*({freqs[0]:g})/W*({w:g})", float(requested[i]),
                                      Measurement.mean(study.ratios[:, i]),
                                      within_relative(float(requested[i]), RATE_TOLERANCE),
                                      "P8 on the designed activation: within 5%", min_n=2))
        details[f"{phase}_ratios_per_seed"] = study.ratios.tolist()
        details["requested_ratios"] = requested.tolist()
        last = (study, requested)
        plots.append(rate_ratio_plot(f"{phase}-phase design {designed.expr}: decay-rate ratios", freqs,
                                     [c.measurement for c in criteria[-len(requested):]],
                                     lambda w: w_of(freqs[0]) / w_of(w), f"random features, width {width:g}",
                                     penalty="W*"))
    premises = [Premise("designed activations that can be trained", len(found), bool(found),
                        "; ".join(f"{p}: {why}" for p, why in missing.items()), consequence="not_applicable")]
    if len(found) == 2:
        x, y = data.toy_1d()
        grid = hull_grid(x, 0.01)
        (p1, a1), (p2, a2) = found.items()
        e1, e2 = (infinite_width.prediction(a, PHASE_INIT, x, y, grid) for a in (a1, a2))
        scale = float(np.max(np.abs(y)))
        gap = sup_distance(e1.values, e2.values, scale)
        criteria.append(Criterion(f"P9 phase invariance: sup|f_{p1} - f_{p2}|/max|y| (exact infinite-width "
                                  f"predictions)", 0.0, Measurement.exact(gap), at_most(PHASE_TOLERANCE),
                                  "P9: equal |sigma_hat| gives the same kernel-regime interpolant (about 1%)"))
        base = width // seeds
        fits = width_study(a1, x, y, grid, e1.values, [base, base * seeds], PHASE_INIT, context.seed,
                           base * seeds, others={"other phase": e2.values})
        details.update(phase_gap_exact=gap, phase_quadrature_errors=[e1.quadrature_error, e2.quadrature_error],
                       distance_of_the_first_phase_networks_to_the_other_prediction=fits.per_replicate["other phase"])
        premises.append(Premise("quadrature error of the phase predictions", max(e1.quadrature_error,
                                                                                  e2.quadrature_error),
                                max(e1.quadrature_error, e2.quadrature_error) <= 0.05 * PHASE_TOLERANCE))
    ctrl = None
    if last is not None:
        study, requested = last
        wrong = wrong_rate(requested[-1], study.frequencies)
        ctrl = control("the last ratio for a penalty one order steeper (W* omega^2)", wrong,
                       Measurement.mean(study.ratios[:, -1]), within_relative(wrong, RATE_TOLERANCE))
    criteria.insert(0, Criterion("designed activations that can be trained", ">= 1", Measurement.exact(len(found)),
                                 at_least(1), "; ".join(f"{p}: {why}" for p, why in missing.items())))
    return judged_result("design-round-trip", act, criteria, ctrl, premises,
                         setup=f"target W* = {target}, phases {', '.join(found) or 'none'}, width {width:g}, "
                               f"{seeds} seeds",
                         details=details, plots=plots, parameters={"target": str(target)})


DESIGN = register(Check(
    "design-round-trip", "Activation design round trip: designed activations reproduce the requested penalty",
    "spectral_bias.md 4, P8, P9", design_applies, run_design,
    {"target": Option("target penalty W*(omega), a formula in omega (default: the activation's own W)", _target),
     "width": Option("random features per designed activation", positive_int, 20_000, 80_000),
     "seeds": Option("independent feature draws", positive_int, 3, 5)}))
