"""Checks of the symbolic layer itself: the ``transform`` check (closed form vs quadrature).

The prediction is the derived closed form of :math:`\\mathcal F[\\sigma^{(m)}]`; the measurement
is mpmath quadrature of :math:`\\sigma^{(m)}` at the same frequencies (30 digits); the
tolerance is the relative error 1e-12 that a correct closed form reaches easily at that
precision (observed errors are ~1e-16, limited by the double-precision export).
"""

from __future__ import annotations

import numpy as np

from theory.activations import Activation
from theory.fourier import VERIFICATION_TOLERANCE, fourier_transform
from theory.penalty import squared_magnitude_numeric

from .checks import Check, CheckResult, Context, Plot, Series, register

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


def run_transform(act: Activation, context: Context) -> CheckResult:
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
    plots = [Plot(f"|F[sigma^({ft.order})]|: closed form vs quadrature", "omega", "magnitude",
                  [Series("closed form", v.frequencies, details["closed_form_abs"], "line"),
                   Series("mpmath quadrature", v.frequencies, details["quadrature_abs"], "points")])]
    return CheckResult(
        "transform", act.label,
        prediction=f"closed form {ft.regular}" + (f" (omega != 0) + {_point_masses(ft)}" if ft.singular else ""),
        measured=f"max relative error {v.max_relative_error:.2e}",
        tolerance=v.tolerance, verdict="agrees" if v.passed else "disagrees",
        reason=f"closed form vs {v.method} at {len(v.frequencies)} points",
        tolerance_note="30-digit quadrature; a correct closed form agrees to ~1e-16 (double-precision export)",
        details=details, parameters={"frequencies": v.frequencies, "dps": 30}, plots=plots)


TRANSFORM = register(Check("transform", "Generalized Fourier transform", "P1",
                           _applies, run_transform))
