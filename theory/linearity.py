r"""The transform of a sum by linearity: :math:`\widehat{\sigma_1 + \sigma_2} = \hat\sigma_1 + \hat\sigma_2`.

The engine in :mod:`theory.fourier` treats an activation either as a trigonometric polynomial
plus a polynomial (a sum of point masses) or as a function some derivative of which is
integrable.  A sum of the two kinds, e.g. :math:`\mathrm{relu}(x) + 0.1 \sin x`, is neither: no
derivative of :math:`\sin` is integrable.  Its transform still exists, term by term:

.. math:: \hat\sigma = \underbrace{\mathrm{FP}[\hat\sigma_{\rm rest}]}_{\text{regular part}}
   + \sum_j c_j \delta^{(k_j)}(\omega - \omega_j),

with the point masses of the trigonometric terms (:math:`\widehat{\sin} = i\pi[\delta(\omega+1) -
\delta(\omega-1)]`) added to those of the rest.  The regular part, the asymptotic polynomials
(hence the null space) and the verification are those of the rest; the oscillating terms are
bounded with mean zero, so they change neither.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from .activations import Activation
from .derivation import Step
from .fourier import FourierResult, _point_masses, fourier_transform
from .symbols import x as X


def split_point_mass_terms(act: Activation) -> tuple[sp.Expr, sp.Expr]:
    """(trigonometric terms, rest) of ``act.symbolic`` as a sum; the first is 0 when there are none.

    A term counts as trigonometric when it is :math:`c\\sin(fx + \\phi)` or :math:`c\\cos(fx + \\phi)`
    with :math:`f \\ne 0` (its transform is two point masses away from 0).
    """
    trig, rest = sp.S.Zero, sp.S.Zero
    for term in sp.Add.make_args(sp.expand(act.symbolic)):
        bound = term.subs(act.substitutions())
        masses = _point_masses(bound) if bound.has(sp.sin, sp.cos) else None
        if masses and any(m.location != 0 for m in masses):
            trig += term
        else:
            rest += term
    return trig, rest


def transform_by_linearity(act: Activation) -> FourierResult | None:
    """The transform of ``act`` as (transform of the rest) + (point masses of the trigonometric
    terms), or None when ``act`` has no trigonometric term, nothing else, or the rest has no
    transform."""
    trig, rest = split_point_mass_terms(act)
    if trig == 0 or rest == 0 or not rest.has(X):
        return None
    part = Activation(f"{act.label} without its trigonometric terms", rest, act.values, "the non-oscillating terms")
    ft = fourier_transform(part)
    if ft.status == "not_applicable":
        return None
    masses = _point_masses(trig.subs(act.substitutions()))
    step = Step(f"By linearity: sigma = ({rest}) + ({trig}); the first part is transformed as below, "
                f"the trigonometric terms add {len(masses)} point masses at omega = "
                f"{', '.join(str(m.location) for m in masses)}.")
    return replace(ft, activation=act, singular=tuple(ft.singular) + tuple(masses),
                   steps=[step, *ft.steps], rules=[*ft.rules, "linearity"],
                   reason=ft.reason or "transform of a sum, term by term")
