"""Limits at +-infinity from leading terms (theory.asymptotics) against sympy's ``limit``.

The reference is sympy's own Gruntz-based ``limit`` (the route main used everywhere): wherever
the leading-term route answers, the two answers must be the same sympy object.  The one place
they differ, ``erfc(x - 5)`` at +infinity, sympy is wrong and an mpmath evaluation decides.
"""

import mpmath
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import theory
from theory.asymptotics import limit_at_infinity
from theory.evaluation import _limit_at
from theory.symbolic import cached_limit
from theory.symbols import x

ENDS = (sp.oo, -sp.oo)
#: formulas a user types, next to the built-ins (the hand-picked set of the issue)
USER_FORMULAS = ("leaky_relu(a=0.2)", "relu_k(k=3)", "elu(alpha=2)", "softplus(beta=3)", "x*tanh(2*x)",
                 "tanh(3*x + 1/2) + gelu(2*x - 1/2)/3", "x*erf(x - 1) + exp(-x^2)", "abs(x) + tanh(x)",
                 "heaviside(x)*exp(-x)", "max(0, x)^2 - x", "x/(1 + exp(-2*x)) - log(1 + exp(x))",
                 "erfc(2 - x)", "exp(-abs(x))*x", "sqrt(1 + x^2)", "x^3/(1 + x^2)", "cosh(x)^(-2)",
                 "1/(1 + exp(-x))^2", "log(1 + exp(-x))", "x*(1 + erf(-x))")


def _probes(act, orders: int = 2, both_ends: bool = False):
    """The expressions the derivations ask limits of: outer pieces of sigma and its first
    derivatives (``orders`` of them, sigma included), x^2 times them (integrability) and their
    quotients by x^g (growth), at their own end (or at both)."""
    pieces = act.pieces
    out = []
    for _ in range(orders):
        for piece, end in ((pieces.pieces[0], -sp.oo), (pieces.pieces[-1], sp.oo)):
            for expr in [piece, x**2 * piece] + [piece / x**g for g in (1, 2, 3)]:
                out += [(expr, e) for e in ENDS] if both_ends else [(expr, end)]
        pieces = pieces.derivative()
    return list(dict.fromkeys(out))


def _agree(probes):
    for expr, end in probes:
        fast = limit_at_infinity(expr, x, end)
        if fast is not None:
            assert fast == sp.limit(expr, x, end), (expr, end)


@pytest.mark.parametrize("name", theory.builtin_names())
def test_leading_terms_agree_with_sympy(name):
    _agree(_probes(theory.activation(name)))


@pytest.mark.parametrize("formula", USER_FORMULAS)
def test_leading_terms_agree_with_sympy_on_formulas(formula):
    _agree(_probes(theory.activation(formula), orders=1))


@pytest.mark.slow
@pytest.mark.parametrize("formula", theory.builtin_names() + list(USER_FORMULAS))
def test_leading_terms_agree_with_sympy_further(formula):
    """Up to the third derivative, each probe at both ends."""
    _agree(_probes(theory.activation(formula), orders=4, both_ends=True))


def test_symbolic_parameters_agree_with_sympy():
    """The derivations keep non-structural parameters symbolic (beta > 0, alpha > 0, a real)."""
    for name in ("softplus", "elu", "leaky_relu"):
        act = theory.activation(name)
        symbolic = theory.Activation(name, act.symbolic)
        _agree(_probes(symbolic))


@pytest.mark.parametrize("expr, end, value", [
    (1 - sp.tanh(x)**2, sp.oo, 0), (1 - sp.tanh(x)**2, -sp.oo, 0), (sp.tanh(x), -sp.oo, -1),
    ((x + sp.exp(x) + 1) * sp.exp(x) / (sp.exp(x) + 1)**2, sp.oo, 1),
    (sp.sqrt(2) * x * sp.exp(-x**2 / 2) / (2 * sp.sqrt(sp.pi)) + sp.erf(sp.sqrt(2) * x / 2) / 2 + sp.S.Half, -sp.oo, 0),
    (x**2 * sp.log(sp.exp(x) + 1), -sp.oo, 0), (sp.exp(x) / x**8, sp.oo, sp.oo), (-x * sp.erf(2 * x - 3), -sp.oo, -sp.oo),
    (sp.sqrt(x**2 + 1) / x, -sp.oo, -1)])
def test_the_route_answers_the_common_shapes(expr, end, value):
    """The shapes the derivations ask most (tanh', SiLU', GELU', softplus, exp growth) are
    answered by leading terms, with sympy's value (were they declined, nothing would be faster)."""
    assert limit_at_infinity(expr, x, end) == value == sp.limit(expr, x, end)


@pytest.mark.parametrize("expr, end", [
    (sp.sin(x), sp.oo), (x * sp.cos(x), -sp.oo),                       # oscillation: AccumBounds
    (-x + sp.log(sp.exp(x) + 1), sp.oo), (sp.sqrt(x**2 + 1) - x, sp.oo),  # leading terms cancel
    (sp.Symbol("a", real=True) * x, sp.oo),                            # sign undecided: oo*sign(a)
    (sp.log(x), sp.oo), (sp.exp(sp.exp(x)), sp.oo), (x**x, sp.oo), (sp.Float(0.5) * x, sp.oo)])
def test_the_route_declines_what_needs_more(expr, end):
    assert limit_at_infinity(expr, x, end) is None


def test_declined_limits_fall_back_to_sympy():
    assert cached_limit(sp.sin(x), x, sp.oo) == sp.AccumBounds(-1, 1)
    assert cached_limit(-x + sp.log(sp.exp(x) + 1), x, sp.oo) == 0
    assert _limit_at(sp.sin(x), x, sp.oo) == sp.limit(sp.sin(x), x, sp.oo)
    assert _limit_at(x / (1 + sp.exp(-x)), x, -sp.oo) == 0


def test_erfc_of_a_shifted_argument():
    """sympy 1.14 answers 2 for erfc(x - 5) as x -> oo; erfc(95) ~ 1e-3921 (mpmath) says 0, as
    do the leading terms (which is what the derivations now get)."""
    assert mpmath.erfc(95) < mpmath.mpf("1e-3900")
    assert limit_at_infinity(sp.erfc(x - 5), x, sp.oo) == 0 == cached_limit(sp.erfc(x - 5), x, sp.oo)
    assert limit_at_infinity(sp.erfc(x - 5), x, -sp.oo) == 2


_atoms = st.sampled_from([x, x**2, sp.exp(x), sp.exp(-x), sp.exp(2 * x), sp.exp(-x**2 / 2), sp.tanh(x),
                          sp.tanh(2 * x - 1), sp.erf(x), sp.erf(sp.sqrt(2) * x / 2), sp.erfc(x), sp.erfc(-2 * x),
                          sp.log(1 + sp.exp(x)), sp.cosh(x), sp.sech(x)])
_numbers = st.sampled_from([sp.S.One, sp.Integer(-1), sp.Integer(2), sp.Rational(1, 2), sp.Rational(-3, 10)])


def _formulas():
    terms = st.builds(lambda c, a, b: c * a * b, _numbers, _atoms, _atoms | st.just(sp.S.One))
    sums = st.lists(terms, min_size=1, max_size=3).map(lambda ts: sp.Add(*ts))
    return st.builds(lambda n, d, inverse: n / (1 + d) if inverse else n * d, sums, sums, st.booleans())


def _agrees_with_sympy(expr, end) -> None:
    """The leading-term limit, where it answers, is sympy's."""
    fast = limit_at_infinity(expr, x, end)
    if fast is not None:
        assert fast == sp.limit(expr, x, end), (expr, end)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_formulas(), st.sampled_from(ENDS))
def test_generated_formulas_agree_with_sympy(expr, end):
    _agrees_with_sympy(expr, end)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_formulas(), st.sampled_from(ENDS))
def test_many_generated_formulas_agree_with_sympy(expr, end):
    _agrees_with_sympy(expr, end)
