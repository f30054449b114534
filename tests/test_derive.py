"""`ibcheck derive`: the stable JSON interface, the renderers, and unsupported input."""

import json
import math
import subprocess
import sys

import pytest
import scipy.integrate as si
import sympy as sp

import theory
from numerics.cli import main

REQUIRED = {"activation": str, "expression": str, "status": str, "fourier_transform": (str, type(None)),
            "spectral_weight": (str, type(None)), "null_space_order": (int, type(None)),
            "kernel": (str, type(None)), "steps": list, "verification": dict}


def _derive_json(capsys, *argv) -> dict:
    assert main(["derive", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("text", ["relu", "tanh", "leaky_relu(a=0.2)", "x/(1+abs(x))", "sin"])
def test_json_interface_keys_and_types(capsys, text):
    data = _derive_json(capsys, text)
    for key, kind in REQUIRED.items():
        assert isinstance(data[key], kind), key
    assert data["status"] in ("closed_form_verified", "closed_form_unverified", "numerical_only", "not_applicable")
    assert all(set(step) >= {"text", "latex"} for step in data["steps"])
    assert data["verification"]["max_relative_error"] <= 1e-12


def test_json_strings_parse_back_to_the_published_results(capsys):
    """The JSON strings are sympy in omega / D: parse them back and compare with the table."""
    w, d = sp.Symbol("omega", positive=True), sp.Symbol("D", real=True)
    data = _derive_json(capsys, "relu", "--dim", "2")
    assert sp.simplify(sp.sympify(data["spectral_weight"], locals={"omega": w}) - w**5) == 0
    assert data["null_space_order"] == 2
    kernel = sp.sympify(data["kernel"], locals={"D": d})
    # d = 2, uniform directions: E_phi |cos phi|^3 |D|^3 / 12, the average done by quadrature here
    average = si.quad(lambda phi: abs(math.cos(phi)) ** 3, 0, 2 * math.pi)[0] / (2 * math.pi)
    assert float(kernel.subs(d, 1.7)) == pytest.approx(average * 1.7**3 / 12, rel=1e-10)


@pytest.mark.parametrize("fmt,marker", [("text", "Results:"), ("markdown", "$$"), ("latex", r"\begin{enumerate}")])
def test_renderers(capsys, fmt, marker):
    assert main(["derive", "gelu", "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["derive", "exp"], "tempered"),
    (["derive", "x.__class__"], "attribute access"),
    (["derive", "relu", "--dim", "0"], "dimension"),
    (["derive", "relu", "--format", "pdf"], "invalid choice"),
    (["derive", "leaky_relu", "--param", "a=7"], "out of range"),
])
def test_unsupported_input_exits_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "numerics", "derive", "step", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["spectral_weight"] == "omega**2"


def test_derivation_renders_in_jupyter():
    derivation = theory.derive(theory.activation("tanh"))
    assert derivation._repr_markdown_().startswith("# Derivation for `tanh`")
    assert derivation.results["null_space_order"] == 1
