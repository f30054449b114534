"""The ``transform`` check: its verdict, and a prediction that shows the whole transform
(regular part and point masses; published pairs: F[sin] = i pi [delta(w+1) - delta(w-1)],
F[relu] = -1/w^2 + i pi delta'(w), F[tanh] = -i pi / sinh(pi w/2))."""

import pytest

import theory
from numerics.checks import Context, get_check, run_check


@pytest.mark.parametrize("text, shown", [
    ("sin", ["closed form 0 (omega != 0)", "(-I*pi)*delta(omega - 1)", "(I*pi)*delta(omega + 1)"]),
    ("relu", ["closed form -1/omega**2 (omega != 0)", "(I*pi)*delta^(1)(omega)"]),
    ("tanh", ["closed form -I*pi/sinh(pi*omega/2)"]),
])
def test_transform_check_shows_regular_part_and_point_masses(text, shown):
    result = run_check(get_check("transform"), theory.activation(text), Context())
    assert result.verdict == "agrees"
    assert all(part in result.prediction for part in shown)
    assert ("delta" in result.prediction) == (text != "tanh")


def test_transform_check_is_not_applicable_without_a_tempered_transform():
    result = run_check(get_check("transform"), theory.activation("exp"), Context())
    assert result.verdict == "not_applicable" and "exp" in result.reason
