r"""The derivation summary a report shows for an activation, as plain data.

:func:`derivation_summary` runs :func:`theory.derive` (d = 1) and keeps, as text, LaTeX and
presentation MathML, the results a reader looks for first, then every step:

* :math:`\sigma(x)`, every result with the parameter values substituted (the values listed;
  the one convention of ``derive``, docs/theory.md),
* :math:`\hat\sigma(\omega)`, regular part plus point masses (``fourier_transform``),
* :math:`W(\omega) = |\omega|^{d-1}\rho^2/|\hat\sigma(\omega/\rho)|^2` at d = 1, rho = 1
  (``spectral_weight``; ``spectral_bias.md``, the kernel-regime penalty),
* the null-space order m (``null_space_order``) and the kernel k(D) (``kernel``).

It runs where the derivation is computed (a worker process) because sympy objects do not
travel well; the result is JSON-ready and cacheable.  Reports only render it.
"""

from __future__ import annotations

import sympy as sp

import theory
from theory.activations import Activation
from theory.errors import IbcheckError

from .mathml import to_mathml

#: (result key, left-hand side in LaTeX, what it is) in the order a report shows them
KEY_RESULTS = (
    ("fourier_transform", "sigma_hat(omega)", r"\hat\sigma(\omega)",
     "generalized Fourier transform: regular part (finite part at omega = 0) plus point masses"),
    ("spectral_weight", "W(omega)", r"W(\omega)", "spectral weight of the kernel-regime penalty (d = 1, rho = 1)"),
    ("null_space_order", "m", "m", "null-space order: the penalty ignores polynomials of degree < m"),
    ("kernel", "k(D)", "k(D)", "infinite-width random-feature kernel"),
)


def _formula(value: sp.Basic, plain_lhs: str, latex_lhs: str) -> dict:
    """``lhs = value`` as text, LaTeX and MathML."""
    return {"text": f"{plain_lhs} = {sp.sstr(value)}", "latex": f"{latex_lhs} = {sp.latex(value)}",
            "mathml": to_mathml(value, latex_lhs)}


def derivation_summary(act: Activation, dim: int = 1) -> dict:
    """Key results and steps of ``theory.derive(act, dim)`` as text / LaTeX / MathML strings."""
    summary = {"status": "error", "expression": _formula(act.bound, "sigma(x)", r"\sigma(x)"),
               "parameters": {k: str(v) for k, v in act.parameters.items()}, "dim": dim,
               "results": [], "steps": [], "notes": [], "error": None}
    try:
        derivation = theory.derive(act, dim)
    except IbcheckError as err:
        summary["error"] = str(err)
        return summary
    summary["status"] = derivation.status
    summary["notes"] = list(derivation.notes)
    results = derivation.bound_results
    for key, plain_lhs, latex_lhs, meaning in KEY_RESULTS:
        value = results.get(key)
        if value is None:
            continue
        entry = _formula(sp.Integer(value) if isinstance(value, int) else value, plain_lhs, latex_lhs)
        entry.update(key=key, meaning=meaning)
        summary["results"].append(entry)
    for _, section, step in derivation.numbered_steps():
        entry = {"section": section.title, "text": step.text}
        if step.formula is not None:
            entry.update(formula=step.plain_formula(), latex=step.latex,
                         mathml=to_mathml(step.formula) if isinstance(step.formula, sp.Basic) else "")
        summary["steps"].append(entry)
    return summary
