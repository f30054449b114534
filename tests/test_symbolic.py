"""theory.symbolic: the erf -> erfc rewrite inside cached_limit keeps every limit's value.

Reference route: sympy's plain ``limit`` on the unrewritten expression (slower, independent of
the rewrite), and the textbook values erf(+-inf) = +-1, x (1 + erf x) -> 0 at -inf.
"""

import pytest
import sympy as sp

from theory.symbolic import cached_limit
from theory.symbols import x as X

CASES = [
    (sp.erf(X) + 1, -sp.oo),
    (X * (sp.erf(sp.sqrt(2) * X / 2) + 1) / 2, -sp.oo),               # GELU at -inf
    (X * (sp.erf(sp.sqrt(2) * X / 2) + 1) / 2 - X, sp.oo),            # GELU minus its asymptote
    (X**3 * (sp.erf(X) + 1), -sp.oo),
    (X * sp.erf(X), sp.oo),
    (2 * X * sp.exp(-X**2) / sp.sqrt(sp.pi) + sp.erf(X), -sp.oo),
    (sp.erf(X) / X, sp.S.Zero),                                          # finite point: no rewrite
]


@pytest.mark.parametrize("expr, point", CASES, ids=[f"{e} at {p}" for e, p in CASES])
def test_cached_limit_matches_plain_sympy(expr, point):
    assert cached_limit(expr, X, point) == sp.limit(expr, X, point)


def test_cached_limit_textbook_values():
    assert cached_limit(sp.erf(X), X, sp.oo) == 1
    assert cached_limit(sp.erf(X), X, -sp.oo) == -1
    assert cached_limit(X * (1 + sp.erf(X)), X, -sp.oo) == 0
