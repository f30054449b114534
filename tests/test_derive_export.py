"""`derive` as a new user meets it (issue 17): whole distributions, one parameter convention,
sections that fail alone, linearity, strings accepted, clean errors."""

import importlib
import json

import pytest
import sympy as sp

import theory
from numerics.cli import main
derive_module = importlib.import_module("theory.derive")
from theory.derivation import Section

OMEGA = sp.Symbol("omega", real=True)
D = sp.Symbol("D", real=True)
X = sp.Symbol("x", real=True)
#: what a client may find in an exported string: the variables, never a parameter
VARIABLES = {"omega": OMEGA, "D": D, "x": X}


def _json(capsys, *argv) -> dict:
    assert main(["derive", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _read(text: str) -> sp.Expr:
    return sp.sympify(text, locals=VARIABLES)


def _delta(at):
    return sp.DiracDelta(OMEGA - at)


# ---- 1. the transform as a whole distribution ---------------------------------------------

@pytest.mark.parametrize("formula,expected", [
    # F[e^{iax}] = 2 pi delta(omega - a): sin = (e^{ix} - e^{-ix})/(2i), cos = (e^{ix} + e^{-ix})/2
    ("sin", sp.I * sp.pi * (_delta(-1) - _delta(1))),
    ("cos", sp.pi * (_delta(-1) + _delta(1))),
    ("sin(2*x+1)", sp.I * sp.pi * (sp.exp(-sp.I) * _delta(-2) - sp.exp(sp.I) * _delta(2))),
])
def test_trigonometric_transform_keeps_both_point_masses(capsys, formula, expected):
    data = _json(capsys, formula)
    assert sp.simplify(_read(data["fourier_transform"]) - expected) == 0
    assert data["regular_part"] == "0"
    assert len(data["point_masses"]) == 2
    masses = sum(_read(m["coefficient"]) * _delta(_read(m["location"])) for m in data["point_masses"])
    assert sp.expand(masses - expected) == 0
    # W is infinite except on the support, where it is not a number: stated as the support
    assert data["spectral_weight"] is None
    assert [_read(f) for f in data["spectral_support"]] == [abs(sp.Integer(2 if "2" in formula else 1))]


@pytest.mark.parametrize("fmt,pieces", [
    ("text", ["DiracDelta(omega + 1)", "DiracDelta(omega - 1)", "regular_part: 0"]),
    ("markdown", [r"\delta\left(\omega + 1\right)", r"\delta\left(\omega - 1\right)", "regular_part"]),
    ("latex", [r"\delta\left(\omega + 1\right)", r"\delta\left(\omega - 1\right)", "regular"]),
])
def test_renderers_show_both_parts(capsys, fmt, pieces):
    assert main(["derive", "sin", "--format", fmt]) == 0
    out = capsys.readouterr().out
    for piece in pieces:
        assert piece in out, piece


def test_whole_transform_of_relu_is_finite_part_plus_derivative_of_delta(capsys):
    data = _json(capsys, "relu")
    # relu_hat = -FP omega^-2 + i pi delta'(omega) (the relu/abs/x decomposition)
    assert sp.simplify(_read(data["fourier_transform"]) - (-1 / OMEGA**2 + sp.I * sp.pi * sp.DiracDelta(OMEGA, 1))) == 0
    assert _read(data["regular_part"]) == -1 / OMEGA**2
    assert data["point_masses"] == [{"location": "0", "order": 1, "coefficient": "I*pi"}]


def test_regular_part_holds_on_the_whole_line():
    """sigma real => sigma_hat(-omega) = conj(sigma_hat(omega)): the exported formula must satisfy it
    (it is derived for omega > 0 and exported in a real omega)."""
    for name in ("relu", "tanh", "elu", "silu", "erf", "step"):
        regular = theory.derive(name).bound_results["regular_part"]
        for w in (0.4, 2.3):
            plus, minus = complex(regular.subs(OMEGA, w)), complex(regular.subs(OMEGA, -w))
            assert minus == pytest.approx(plus.conjugate(), rel=1e-13), name


# ---- 2. one convention for parameters -----------------------------------------------------

@pytest.mark.parametrize("formula,params", [("leaky_relu(a=0.2)", {"a": "1/5"}),
                                            ("elu(alpha=0.5)", {"alpha": "1/2"}),
                                            ("softplus(beta=2)", {"beta": "2"})])
def test_every_exported_expression_has_the_values_substituted(capsys, formula, params):
    data = _json(capsys, formula)
    assert data["parameters"] == params
    for key in ("expression", "fourier_transform", "regular_part", "spectral_weight", "kernel"):
        if data[key] is not None:
            assert _read(data[key]).free_symbols <= set(VARIABLES.values()), key
    # the general forms are in the symbols and give the bound ones back with the values
    symbols = {data["parameter_symbols"][n]: sp.Symbol(data["parameter_symbols"][n]) for n in params}
    values = {symbols[data["parameter_symbols"][n]]: sp.Rational(v) for n, v in params.items()}
    general = sp.sympify(data["general"]["fourier_transform"], locals={**VARIABLES, **symbols})
    assert general.free_symbols & set(symbols.values())
    assert sp.simplify(general.subs(values) - _read(data["fourier_transform"])) == 0


def test_leaky_relu_transform_and_kernel_agree_on_the_parameter(capsys):
    data = _json(capsys, "leaky_relu(a=0.2)")
    # leaky = a x + (1 - a) relu: regular part (1 - a) * (-1/omega^2), kernel (1 - a)^2 |D|^3 / 12
    assert sp.simplify(_read(data["regular_part"]) + sp.Rational(4, 5) / OMEGA**2) == 0
    assert sp.simplify(_read(data["kernel"]) - sp.Rational(16, 25) * abs(D) ** 3 / 12) == 0


def test_parameter_symbols_do_not_shadow_sympy_functions(capsys):
    data = _json(capsys, "softplus")
    assert data["parameter_symbols"] == {"beta": "beta_"}
    general = sp.sympify(data["general"]["fourier_transform"])  # no locals: as a client would
    assert sp.Symbol("beta_") in {s.name and sp.Symbol(s.name) for s in general.free_symbols}
    assert not general.has(sp.beta)


# ---- 3. sections fail alone; linearity; other inputs --------------------------------------

def test_relu_written_with_heaviside_derives_like_relu(capsys):
    relu, other = _json(capsys, "relu"), _json(capsys, "heaviside(x)*x")
    assert all(s["status"] == "available" for s in other["sections"])
    for key in ("fourier_transform", "spectral_weight", "null_space_order", "kernel", "asymptotic_slopes"):
        assert other[key] == relu[key], key


def test_sum_with_a_sine_is_transformed_by_linearity(capsys):
    data = _json(capsys, "(x+abs(x))/2 + 0.1*sin(x)")
    relu = -1 / OMEGA**2 + sp.I * sp.pi * sp.DiracDelta(OMEGA, 1)
    sine = sp.I * sp.pi * (_delta(-1) - _delta(1)) / 10
    assert sp.simplify(_read(data["fourier_transform"]) - relu - sine) == 0
    assert _read(data["spectral_weight"]) == OMEGA**4 and data["null_space_order"] == 2
    # the flat-offset kernel would need |delta|^2: it says so instead of giving a number
    assert data["kernel"] is None and "point masses" in data["kernel_unavailable"]


def test_a_failing_section_is_marked_unavailable_and_the_others_remain(monkeypatch):
    def broken(act, dim):
        raise theory.Unsupported("this topic needs something the activation lacks")

    monkeypatch.setattr(derive_module, "SECTIONS", [*derive_module.SECTIONS, ("broken topic", broken)])
    derive_module.derive.cache_clear()
    try:
        derivation = theory.derive("x/(1+abs(x))")
    finally:
        derive_module.derive.cache_clear()
    sections = {s.title: s for s in derivation.sections}
    assert sections["broken topic"].status == "unavailable"
    assert "needs something" in sections["broken topic"].reason
    assert derivation.results["spectral_weight"] is not None
    assert "== broken topic == (unavailable: this topic needs something" in derivation.to_text()
    assert {"title": "broken topic", "status": "unavailable",
            "reason": "this topic needs something the activation lacks"} in derivation.to_dict()["sections"]


def test_unavailable_section_constructor():
    section = Section.unavailable("t", "why")
    assert (section.status, section.reason, section.results) == ("unavailable", "why", {})


@pytest.mark.parametrize("formula", ["log(x)", "sqrt(x)", "x**(1/3)"])
def test_not_real_on_the_line_is_one_clean_error(capsys, formula):
    assert main(["derive", formula]) == 2
    err = capsys.readouterr().err.strip()
    assert "real function on the whole line" in err and "\n" not in err


def test_derive_accepts_strings_and_refuses_other_types():
    assert theory.derive("relu").results["null_space_order"] == 2
    assert theory.derive("leaky_relu(a=0.2)").parameter_values == {"a": sp.Rational(1, 5)}
    with pytest.raises(theory.IbcheckError, match="activation"):
        theory.derive(3)


def test_dimension_two_step_states_the_dimension_two_rate():
    text = theory.derive("relu", 2).to_text()
    assert "W ~ omega^5 (d = 2)" in text and "(d = 1)" not in text


def test_x_erf_x_rank_reason_says_the_slope_vanishes_not_that_sigma_decreases():
    reason = theory.derive("x*erf(x)").results["rank_one_attractor_reason"]
    assert "sigma'(0+) = 0" in reason and "not increasing" not in reason


def test_a_regular_part_valid_only_for_positive_omega_is_written_piecewise():
    """1/(omega + i) is not conj-symmetric: on the line it becomes 1/(omega + i) for omega > 0 and
    conj(1/(-omega + i)) = 1/(-omega - i) below (sigma real => sigma_hat(-omega) = conj(sigma_hat(omega)))."""
    positive = sp.Symbol("omega", positive=True)
    ft = theory.FourierResult(theory.activation("relu"), "closed_form_verified", regular=1 / (positive + sp.I))
    line = derive_module.regular_on_line(ft)
    assert complex(line.subs(OMEGA, 2)) == pytest.approx(1 / (2 + 1j))
    assert complex(line.subs(OMEGA, -2)) == pytest.approx((1 / (2 + 1j)).conjugate())
