"""Activation design (notes section 4): the worked examples and the verification by recomputing W."""

import math

import numpy as np
import pytest
import sympy as sp

from theory.design import design_activation
from theory.errors import IbcheckError, Unsupported
from theory.symbols import omega as w


# (target W*, dim, phase, independent reference activation from the notes, as a Python function)
EXAMPLES = [
    (w**4, 1, "minimum", lambda t: max(t, 0.0)),                           # ReLU
    (w**4, 1, "zero", lambda t: abs(t) / 2),                               # |t|/2 (sign is a phase)
    (w**4, 3, "minimum", lambda t: 1.0 if t > 0 else 0.0),                 # d = 3 thin plate: H(t)
    ((1 + w**2) ** 2, 1, "minimum", lambda t: t * math.exp(-t) if t > 0 else 0.0),  # t e^-t H(t)
    ((1 + w**2) ** 3, 1, "minimum", lambda t: t**2 * math.exp(-t) / 2 if t > 0 else 0.0),  # Gamma(3)
    ((1 + w**2) ** 2, 1, "zero", lambda t: math.exp(-abs(t)) / 2),          # e^{-|t|}/2
    (1 + w**2, 1, "minimum", lambda t: math.exp(-t) if t > 0 else 0.0),    # e^-t H(t): H^1
    (sp.exp(w**2 / 2), 1, "zero", lambda t: math.exp(-t**2) / math.sqrt(math.pi)),
]


@pytest.mark.parametrize("target,dim,phase,reference", EXAMPLES)
def test_worked_examples(target, dim, phase, reference):
    design = design_activation(target, dim, phase)
    assert design.verification["passed"], design.verification
    f = design.activation.numeric("numpy")
    for t in (-1.7, -0.3, 0.4, 1.1, 2.6):
        # equal up to a global sign (a constant phase, invisible to the kernel regime)
        got, want = float(f(np.float64(t))), reference(t)
        assert abs(abs(got) - abs(want)) <= 1e-12


def test_minimum_phase_design_is_one_sided():
    design = design_activation((1 + w**2) * (4 + w**2), 1, "minimum")
    f = design.activation.numeric("numpy")
    assert all(float(f(np.float64(t))) == 0 for t in (-3.0, -1.0, -0.1))
    assert design.verification["passed"]


def test_paley_wiener_refuses_one_sided_gaussian():
    with pytest.raises(Unsupported, match="Paley-Wiener"):
        design_activation(sp.exp(w**2 / 2), 1, "minimum")


@pytest.mark.slow  # ~20 s: the design evaluates 1201 oscillatory Fourier integrals
def test_numerical_zero_phase_design_is_verified_by_transforming_back():
    design = design_activation(1 + w**4, 1, "zero")
    assert design.activation is None and design.numeric is not None
    assert design.verification["passed"]
    # even activation, and its value at 0 is (1/pi) int_0^inf (1 + w^4)^(-1/2) dw
    import scipy.integrate as si
    at0 = si.quad(lambda v: (1 + v**4) ** -0.5, 0, np.inf)[0] / np.pi
    values = design.numeric(np.array([-0.7, 0.0, 0.7]))
    assert values[0] == pytest.approx(values[2], rel=1e-9) and values[1] == pytest.approx(at0, rel=1e-8)


def test_bad_targets():
    with pytest.raises(IbcheckError, match="phase"):
        design_activation(w**4, 1, "sideways")
    with pytest.raises(IbcheckError, match="omega only"):
        design_activation(w**4 + sp.Symbol("q"), 1)


@pytest.mark.parametrize("target, dim, phase, message", [
    (w**-2, 1, "minimum", "does not decay"),  # issue 20: was "implemented for power-law ... penalties"
    (w**-2, 1, "zero", "does not decay"),  # was a numerical integral of a growing |sigma_hat|
    (w**2, 3, "zero", "does not decay"),
    (w**2, 2, "minimum", "|omega|^(-1)"),
    (w**3, 1, "minimum", "|omega|^(-3)"),
])
def test_power_laws_without_a_design_say_why(target, dim, phase, message):
    with pytest.raises(IbcheckError, match="is a power law, but") as err:
        design_activation(target, dim, phase)
    assert message in str(err.value)


def test_design_command(capsys):
    from numerics.cli import main
    assert main(["design", "(1+omega^2)^2", "--format", "json"]) == 0
    import json
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "closed_form_verified" and "Heaviside" in data["expression"]
    assert main(["design", "exp(omega^2/2)"]) == 2
    assert "Paley-Wiener" in capsys.readouterr().err


# ---- the numeric guard in front of simplify (theory.design._varies): it must never change a result

def test_varies_only_where_certain():
    from theory.design import _varies

    assert _varies(w) and _varies(sp.exp(-w**2) * w**3) and _varies(1 / (1 + w**2))
    # constants written so that only simplify sees it: equal values to 50 digits, so "not known"
    assert not _varies(sp.sin(w)**2 + sp.cos(w)**2)
    assert not _varies(sp.log(sp.exp(3) * w) - sp.log(w))
    assert not _varies(sp.Integer(5))
    # 1, after a cancellation of terms of size 1e140 omega^4: with 50 digits the values differ wildly,
    # with 100 digits by another amount, so it is not known to vary (one precision alone would say it does)
    huge = sp.Integer(10) ** 70 * w**2
    assert not _varies((huge + 1) ** 2 - huge**2 - 2 * huge)
    # a true spread far below 1e-12 of the values' size is not resolved either
    assert not _varies(1 + w / sp.Integer(10) ** 20)
    # values it cannot compare (complex at some probes, a function the mpmath backend lacks)
    assert not _varies(sp.sqrt(-1 - w))
    assert not _varies(sp.log(1 - w))
    assert not _varies(sp.besselk(1, w))


def _power_law_unguarded(mag2):
    """theory.design._power_law as it was before the guard: simplify for every n."""
    for n in range(1, 12):
        c = sp.simplify(1 / (mag2 * w ** (2 * n)))
        if not c.has(w) and c.is_positive:
            return c, n
    return None


@pytest.mark.parametrize("mag2", [w**-4, 1 / (3 * w**6), (1 + w**2) ** -2, 1 / (w**2 + w**4),
                                  (sp.sin(w)**2 + sp.cos(w)**2) / w**4,  # a power law only simplify sees
                                  sp.exp(-w**2), 1 / (w**2 * sp.sinh(sp.pi * w / 2) ** 2)])
def test_guarded_power_law_equals_the_unguarded_search(mag2):
    from theory.design import _power_law

    assert _power_law(mag2) == _power_law_unguarded(mag2)
