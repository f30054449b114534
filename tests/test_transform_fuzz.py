"""Fuzzing the transform engine: random formulas from a grammar, each final closed form compared
with an independent route (localized Parseval pairing, :mod:`transform_reference`).

The grammar (:func:`random_formula`, seeded) draws what a user types: built-ins and functions at
affine arguments (shifts, scales, reflections), sums, products with polynomials and Gaussians,
powers of sigmoids, compositions of built-ins.  Every formula must end in one of: a verified
closed form that the independent route confirms, a closed form marked unverified, numerics
only, or a clean refusal (:class:`IbcheckError`); never a traceback, never a wrong
``closed_form_verified``.  The default run tries :data:`CI_FORMULAS` formulas in chunks (a
bounded number of examples, no clock); ``pytest -m slow`` tries :data:`SLOW_FORMULAS` and its
counts are recorded in docs/theory.md.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from fractions import Fraction

import pytest

from theory.errors import IbcheckError
from theory.fourier import fourier_transform
from theory.parsing import parse_activation
from theory.penalty import radon_operator, spectral_weight
from transform_reference import parseval_error

#: formulas in the default run, in CHUNKS parametrized chunks (spread over xdist workers)
CI_FORMULAS, CHUNKS = 200, 20
#: formulas in the slow run, in SLOW_CHUNKS chunks
SLOW_FORMULAS, SLOW_CHUNKS = 2000, 8
#: the independent route's tolerance: both sides are double-precision Gauss-Legendre sums of
#: terms of size `scale` (error ~1e-13 scale) and the error is relative to max(|value|, 1e-6 scale),
#: so a correct form is within ~1e-7; a wrong sign, phase or coefficient is off by O(1)
PARSEVAL_TOLERANCE = 1e-7


BUILTINS = ("relu", "softplus", "sigmoid", "tanh", "erf", "gelu", "silu", "elu", "gaussian", "abs",
            "step", "leaky_relu")
FUNCTIONS = ("sech", "atan", "erfc", "heaviside")
SCALES = (Fraction(1), Fraction(1), Fraction(2), Fraction(1, 2), Fraction(-1), Fraction(3), Fraction(1, 3),
          Fraction(-2))
SHIFTS = (Fraction(0), Fraction(1, 2), Fraction(-1, 2), Fraction(1, 3), Fraction(-1, 3), Fraction(1), Fraction(-2),
          Fraction(2), Fraction(1, 10))
COEFFICIENTS = ("1", "2", "0.5", "-1", "3", "1/3")


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _affine(rng: random.Random) -> str:
    a, b = rng.choice(SCALES), rng.choice(SHIFTS)
    scaled = "x" if a == 1 else "-x" if a == -1 else f"{_number(a)}*x"
    if b == 0:
        return scaled
    shift = str(float(b)) if rng.random() < 0.3 and len(str(float(b))) < 6 else _number(abs(b))
    return f"{scaled}{'+' if b > 0 else '-'}{shift.lstrip('-')}"


def _unit(rng: random.Random) -> str:
    return f"{rng.choice(BUILTINS + FUNCTIONS)}({_affine(rng)})"


def random_formula(rng: random.Random) -> str:
    """One formula of the grammar in the module docstring."""
    kind = rng.randrange(8)
    unit, c = _unit(rng), rng.choice(COEFFICIENTS)
    if kind == 0:
        return unit
    if kind == 1:
        return f"{c}*{unit}"
    if kind == 2:
        return f"{unit} + {c}*{_unit(rng)}"
    if kind == 3:
        return f"{rng.choice(['x', f'({_affine(rng)})'])}*{rng.choice(['tanh', 'sigmoid', 'erf', 'gaussian', 'sech', 'atan'])}({_affine(rng)})"
    if kind == 4:
        return f"{rng.choice(['1', 'x', 'x^2', f'({_affine(rng)})'])}*exp(-{rng.choice(['1', '2', '1/2'])}*({_affine(rng)})^2)"
    if kind == 5:
        return f"sigmoid({_affine(rng)})^{rng.choice([2, 3])}"
    if kind == 6:
        inner, outer = rng.sample(("relu", "tanh", "sigmoid", "softplus", "erf", "gaussian", "abs"), 2)
        return f"{outer}({inner}({_affine(rng)}))"
    return f"{unit}*exp(-x^2)" if rng.random() < 0.5 else f"max({unit}, {rng.choice(['0', '-1', '1/2'])})"


def outcome(formula: str) -> tuple[str, str]:
    """(category, note): verified | wrong | unverified | numerical | refused | traceback."""
    try:
        act = parse_activation(formula)
        ft = fourier_transform(act)
        for derived in (spectral_weight, radon_operator):   # the forms derived from it, verified inside
            try:
                derived(ft)
            except IbcheckError:
                pass
    except IbcheckError as err:
        return "refused", str(err)
    except Exception as err:  # noqa: BLE001 - the point of the fuzz: any other exception is a bug
        return "traceback", f"{type(err).__name__}: {err}"
    if ft.status == "closed_form_verified":
        try:
            error = parseval_error(ft)
        except Exception as err:  # noqa: BLE001
            return "traceback", f"reference: {type(err).__name__}: {err}"
        return ("verified" if error <= PARSEVAL_TOLERANCE else "wrong"), f"{error:.1e}"
    return {"closed_form_unverified": "unverified", "numerical_only": "numerical",
            "not_applicable": "refused"}[ft.status], ft.reason


def run_fuzz(seed: int, count: int, log: str | None = None) -> Counter:
    """Counts of the categories over ``count`` formulas drawn with ``seed`` (one JSON line per
    formula appended to ``log`` when given)."""
    rng = random.Random(seed)
    counts: Counter = Counter()
    bad = []
    for _ in range(count):
        formula = random_formula(rng)
        category, note = outcome(formula)
        counts[category] += 1
        if log:
            with open(log, "a") as handle:
                handle.write(json.dumps({"seed": seed, "formula": formula, "category": category, "note": note}) + "\n")
        if category in ("wrong", "traceback"):
            bad.append(f"{formula}: {category} ({note})")
    assert not bad, f"{len(bad)} of {count}: " + "; ".join(bad)
    return counts


def test_grammar_draws_valid_varied_formulas():
    rng = random.Random(0)
    formulas = [random_formula(rng) for _ in range(300)]
    assert len(set(formulas)) > 250
    for formula in formulas[:60]:
        parse_activation(formula)   # the parser accepts the grammar


@pytest.mark.parametrize("formula", ["relu(1/3*x-2)*exp(-x^2)", "erf(relu(1/3*x+1/3))"])
def test_reference_survives_a_right_form_that_double_precision_cannot_evaluate(formula):
    """The two formulas the slow run called wrong, whose verified forms are right (30- and
    50-digit quadrature of sigma or sigma' at omega = 0.6, 1.7, 3.5 agree to <= 3e-16):
    relu(x/3 - 2) e^{-x^2} cancels two terms of size e^{36} to a value of 1e-19 (error 1.6e4 in
    double precision); erf(relu(x/3 + 1/3)) has e^{-9 omega^2/4} erfc(3 i omega / 2), which
    overflows to inf * 0 (error inf).  The reference now evaluates the form at 30 digits, and a
    wrong form (the sign flipped) is still caught."""
    import dataclasses

    ft = fourier_transform(parse_activation(formula))
    assert ft.status == "closed_form_verified"
    assert parseval_error(ft) <= PARSEVAL_TOLERANCE
    flipped = dataclasses.replace(ft, regular=-ft.regular)
    assert parseval_error(flipped) > 0.5


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_fuzz_final_closed_forms(chunk):
    counts = run_fuzz(seed=1000 + chunk, count=CI_FORMULAS // CHUNKS)
    assert sum(counts.values()) == CI_FORMULAS // CHUNKS


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(SLOW_CHUNKS))
def test_fuzz_slow(chunk):
    counts = run_fuzz(seed=20261207 + chunk, count=SLOW_FORMULAS // SLOW_CHUNKS, log=os.environ.get("IBCHECK_FUZZ_LOG"))
    assert sum(counts.values()) == SLOW_FORMULAS // SLOW_CHUNKS
