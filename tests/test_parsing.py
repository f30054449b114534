"""The formula parser: accepted formulas evaluate like Python references; everything else is a
one-line IbcheckError naming the offending token; no input can execute code."""

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory.errors import IbcheckError
from theory.parsing import parse_activation, parse_formula

# (formula, independent Python reference)
ACCEPTED = [
    ("x/(1+abs(x))", lambda x: x / (1 + abs(x))),
    ("x*tanh(log(1+exp(x)))", lambda x: x * math.tanh(math.log1p(math.exp(x)))),
    ("max(-1, min(1, x))", lambda x: max(-1.0, min(1.0, x))),
    ("x^2 - 3*x + 2", lambda x: x * x - 3 * x + 2),
    ("2**-x", lambda x: 2.0 ** (-x)),
    ("-x**2", lambda x: -(x**2)),
    ("sqrt(1 + x^2) - 1", lambda x: math.sqrt(1 + x * x) - 1),
    ("x*sigmoid(x)", lambda x: x / (1 + math.exp(-x))),
    ("leaky_relu(2*x, a=0.25)", lambda x: 2 * x if x > 0 else 0.5 * x),
    ("relu(x - 0.5) + relu(-x)", lambda x: max(0.0, x - 0.5) + max(0.0, -x)),
    ("erf(x/sqrt(2))*pi + e", lambda x: math.erf(x / math.sqrt(2)) * math.pi + math.e),
    ("1.5e-1*x", lambda x: 0.15 * x),
    ("heaviside(x)*x", lambda x: x if x > 0 else 0.0),
]


@pytest.mark.parametrize("text,reference", ACCEPTED)
def test_accepted_formulas_evaluate_like_python(text, reference):
    act = parse_activation(text)
    f = act.numeric("numpy")
    for x in (-2.3, -0.7, 0.4, 1.9):
        assert float(f(np.float64(x))) == pytest.approx(reference(x), rel=1e-12, abs=1e-12)


REJECTED = [
    ("x.__class__", "'.'"),
    ("__import__('os').system('true')", "'_'|\"'\""),
    ("lambda: 1", "':'"),
    ("foo(x)", "unknown function 'foo'"),
    ("os", "unknown name 'os'"),
    ("x[0]", "'\\['"),
    ("exec(x)", "unknown function 'exec'"),
    ("9**9**9**9", "too large"),
    ("x**1000", "too large"),
    ("1" * 40 + "*x", "digits"),
    ("x" + "+x" * 300, "characters long"),
    ("(" * 60 + "x" + ")" * 60, "nested"),
    ("sin(x, 1)", "takes 1 argument"),
    ("leaky_relu(a=2)", "out of range"),
    ("relu(beta=2)", "no parameter 'beta'"),
    ("x +", "ends too early"),
    ("x / 0", "division by zero"),
    ("3", "does not depend on x"),
    ("", "empty"),
    ("x $ 2", "'\\$'"),
    ("tanh", None),  # a built-in name is fine
]


@pytest.mark.parametrize("text,message", REJECTED)
def test_rejected_inputs_give_one_line_errors(text, message):
    if message is None:
        assert parse_activation(text).builtin
        return
    with pytest.raises(IbcheckError, match=message) as err:
        parse_activation(text)
    assert "\n" not in str(err.value)


def test_declared_parameters():
    act = parse_activation("x*tanh(b*x)", {"b": 2})
    assert float(act.numeric("numpy")(np.float64(0.5))) == pytest.approx(0.5 * math.tanh(1.0))
    with pytest.raises(IbcheckError, match="not used"):
        parse_activation("tanh(x)", {"b": 2})
    with pytest.raises(IbcheckError, match="cannot be a parameter name"):
        parse_activation("x", {"__class__": 1})


def test_builtin_call_returns_the_builtin_with_symbolic_parameters():
    act = parse_activation("leaky_relu(a=0.2)")
    assert act.builtin and act.parameters == {"a": theory.activations.sp.Rational(1, 5)}


def test_frequency_variable_for_design_targets():
    from theory.symbols import omega
    expr = parse_formula("(1+omega^2)^2", variable=("omega", omega))
    assert expr.subs(omega, 2) == 25
    with pytest.raises(IbcheckError, match="unknown name 'x'"):
        parse_formula("x", variable=("omega", omega))


CANARY = "/tmp/ibcheck_parser_canary"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("x()+-*/^.,=_ '\"[]:;aeilmnoprstxyz0123456789")), max_size=40))
def test_any_text_is_parsed_or_rejected_cleanly(text):
    """Fuzz: random text either parses or raises IbcheckError, and never runs code."""
    try:
        parse_activation(text)
    except IbcheckError:
        pass
    assert not os.path.exists(CANARY)


def test_injection_attempts_do_not_execute():
    for text in [f"__import__('os').system('touch {CANARY}')", f"exec('open(\"{CANARY}\",\"w\")')",
                 "x.__class__.__bases__[0].__subclasses__()", "eval('1')"]:
        with pytest.raises(IbcheckError):
            parse_activation(text)
    assert not os.path.exists(CANARY)
