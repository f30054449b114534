"""Checks of the symbolic layer itself: the ``transform`` check (closed form vs quadrature).

The prediction is the final closed form of :math:`\\hat\\sigma` (the one the derivation exports,
after every simplification); the measurement is mpmath quadrature of :math:`\\sigma^{(m)}`
divided by :math:`(i\\omega)^m` at the same frequencies (30 digits); the tolerance is the
relative error 1e-12 that a correct closed form reaches easily at that precision (observed
errors are ~1e-16, limited by the double-precision export).
"""

from __future__ import annotations

import math

import numpy as np

from theory.activations import Activation
from theory.fourier import VERIFICATION_TOLERANCE, fourier_transform
from theory.penalty import squared_magnitude_numeric

from .checks import JUDGED, Check, CheckResult, Context, Plot, Series, judged_result, register
from .verdicts import Criterion, Measurement, at_most, control

#: frequencies at which the spectral weight curve is tabulated for plots
CURVE_FREQUENCIES = np.linspace(0.05, 6.0, 120)


def _applies(act: Activation) -> str | None:
    if not act.growth.tempered:
        return act.growth.reason
    return None


def weight_curve(act: Activation) -> dict | None:
    """W(omega) = 1/|sigma_hat(omega)|^2 (d = 1, rho = 1) on :data:`CURVE_FREQUENCIES`, or None
    without a closed form."""
    ft = fourier_transform(act)
    if ft.regular is None or ft.pure_point_masses:
        return None
    magnitude = squared_magnitude_numeric(ft)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        values = np.array([1.0 / magnitude(w) if magnitude(w) > 0 else np.inf for w in CURVE_FREQUENCIES])
    return {"omega": CURVE_FREQUENCIES.tolist(), "W": np.where(np.isfinite(values), values, np.nan).tolist()}


def _point_masses(ft) -> str:
    """The point masses of the transform, e.g. ``I*pi*delta^(1)(omega)`` or ``-I*pi*delta(omega - 1)``."""
    def one(atom):
        where = "omega" if atom.location == 0 else f"omega - {atom.location}" if atom.location > 0 \
            else f"omega + {-atom.location}"
        order = f"^({atom.order})" if atom.order else ""
        return f"({atom.coefficient})*delta{order}({where})"
    return " + ".join(one(a) for a in ft.singular)


#: where a relative error of exactly 0 is drawn on the log axis (below double rounding, 1.1e-16)
ZERO_DRAWN_AT = 1e-17


def _relative_errors(closed: list[complex], reference: list[complex]) -> list[float]:
    """|c - r| / |r| at each frequency (|c| where r = 0)."""
    return [abs(c - r) / abs(r) if r != 0 else abs(c) for c, r in zip(closed, reference)]


def _worst_relative_error(closed: list[complex], reference: list[complex]) -> float:
    """max |c - r| / |r| over the frequencies; infinite when any value is not finite."""
    errors = _relative_errors(closed, reference)
    return max(errors) if all(math.isfinite(e) for e in errors) else math.inf


def run_transform(act: Activation, context: Context) -> CheckResult:
    """Judge the final closed form of :math:`\\hat\\sigma` (the one exported) against 30-digit
    quadrature of :math:`\\sigma^{(m)}` (:func:`theory.fourier.verify_transform`).

    Criterion: the max relative error at the verification frequencies is at most
    :data:`~theory.fourier.VERIFICATION_TOLERANCE` = 1e-12 (the quadrature is good to ~1e-25,
    the closed form is evaluated at 40 digits; the stored values are doubles, so a correct form
    reaches ~1e-16; 1e-12 leaves four orders for ill-conditioned forms and still rejects any
    wrong coefficient, sign or phase).  Control: the same form with its sign flipped, judged on
    the same numbers; it must be rejected (relative error 2), which shows that the comparison
    can tell a transform from a wrong one of the same kind.
    """
    ft = fourier_transform(act)
    if ft.verification is None:
        return CheckResult("transform", act.label, None, None, VERIFICATION_TOLERANCE, "not_applicable",
                           reason=f"no closed form to verify ({ft.status}: {ft.reason})",
                           details={"status": ft.status})
    v = ft.verification
    details = {
        "status": ft.status, "order": ft.order, "rules": ft.rules, "method": v.method,
        "frequencies": v.frequencies, "max_relative_error": v.max_relative_error,
        "closed_form_abs": [abs(c) for c in v.closed_form], "quadrature_abs": [abs(c) for c in v.numerical],
        "fourier_transform": str(ft.regular),
    }
    curve = weight_curve(act)
    if curve is not None:
        details["spectral_weight_curve"] = curve
    errors = _relative_errors(v.closed_form, v.numerical)
    exact = [e == 0 for e in errors]
    plots = [Plot("|sigma_hat| at the verification frequencies: closed form vs quadrature", "omega", "magnitude",
                  [Series("mpmath quadrature (30 digits)", v.frequencies, details["quadrature_abs"], "points"),
                   Series(f"final closed form ({JUDGED})", v.frequencies, details["closed_form_abs"],
                          "prediction-points")]),
             Plot("relative error of the closed form vs quadrature", "omega", "|closed - quadrature| / |quadrature|",
                  [Series("measured" + (f" (exact 0 drawn at {ZERO_DRAWN_AT:g})" if any(exact) else ""),
                          v.frequencies, [ZERO_DRAWN_AT if zero else e for e, zero in zip(errors, exact)], "points"),
                   Series(f"<= {v.tolerance:g} ({JUDGED})", [min(v.frequencies), max(v.frequencies)],
                          [v.tolerance] * 2, "prediction")], yscale="log",
                  note="an error of exactly 0 (agreement to the last bit of the double record) is drawn at "
                       f"{ZERO_DRAWN_AT:g}, below any rounding error")]
    shown = f"{ft.regular}" + (f" (omega != 0) + {_point_masses(ft)}" if ft.singular else "")
    criterion = Criterion("max relative error of the final closed form vs quadrature", f"closed form {shown}",
                          Measurement.exact(v.max_relative_error), at_most(v.tolerance),
                          note="30-digit quadrature of sigma^(m); a correct form reaches ~1e-16 "
                               "(double-precision record), 1e-12 rejects any wrong coefficient or sign")
    flipped = _worst_relative_error([-c for c in v.closed_form], v.numerical)
    wrong = control("the same closed form with its sign flipped", f"closed form -({ft.regular})",
                    Measurement.exact(flipped), at_most(v.tolerance),
                    note="a wrong transform of the same kind must fail the same comparison")
    return judged_result("transform", act, [criterion], wrong,
                         setup=f"{v.method} at {len(v.frequencies)} frequencies",
                         details=details, parameters={"frequencies": v.frequencies, "dps": 30}, plots=plots)


TRANSFORM = register(Check("transform", "Generalized Fourier transform", "P1",
                           _applies, run_transform))
