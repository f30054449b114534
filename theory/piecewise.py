r"""Piecewise-smooth functions and their distributional derivatives.

An activation such as ReLU, :math:`|x|` or ELU is smooth except at finitely many breakpoints.
Write it as

.. math::
   f = \sum_i p_i(x)\,\mathbf 1_{(b_{i-1}, b_i)}(x) + \sum_a c_a\,\delta^{(j_a)}(x - x_a),

with smooth pieces :math:`p_i` on the open intervals between sorted breakpoints
:math:`b_0 < \dots < b_{k-1}` (:math:`b_{-1} = -\infty`, :math:`b_k = \infty`) and point masses
(atoms).  The distributional derivative differentiates every piece, raises the order of every
atom, and adds an atom :math:`[f](b)\,\delta(x - b)` for each jump
:math:`[f](b) = f(b^+) - f(b^-)`:

.. math:: f' = \sum_i p_i' \mathbf 1_i + \sum_b [f](b)\,\delta(x-b) + \sum_a c_a \delta^{(j_a+1)}(x - x_a).

This is how ReLU'' becomes :math:`\delta`, and how the kink jump
:math:`\kappa = \sigma'(0^+) - \sigma'(0^-)` is read off.  Breakpoints must come from
conditions linear in ``x`` (``x < c``); anything else raises :class:`Unsupported`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .errors import IbcheckError, Unsupported
from .symbols import x as X
from .symbolic import cached_limit, remember_unless_time_limited, tidy
from .timeouts import time_limit

#: functions whose Piecewise rewrite exposes breakpoints
_PIECEWISE_FUNCS = (sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.sign)


@dataclass(frozen=True)
class Atom:
    r"""A point mass ``coefficient`` :math:`\cdot\,\delta^{(\mathrm{order})}(x - \mathrm{location})`."""

    location: sp.Expr
    order: int
    coefficient: sp.Expr


def _is_bad(value) -> bool:
    return value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or isinstance(value, sp.AccumBounds)


def one_sided_value(piece: sp.Expr, point: sp.Expr, side: str) -> sp.Expr:
    """The limit of ``piece`` at ``point`` from ``side`` ('+' or '-'); substitution first."""
    value = piece.subs(X, point)
    if not _is_bad(value):
        return sp.simplify(value) if sp.count_ops(value) < 20 else value
    return cached_limit(piece, X, point, side)


def _select_branch(expr: sp.Expr, point: sp.Expr) -> sp.Expr:
    """Replace every Piecewise in ``expr`` by its branch that holds at ``x = point``."""
    if isinstance(expr, sp.Piecewise):
        for branch, cond in expr.args:
            truth = cond.subs(X, point) if isinstance(cond, sp.Basic) else cond
            if truth is sp.true or truth is True:
                return _select_branch(branch, point)
            if truth is not sp.false and truth is not False:
                raise Unsupported(f"cannot decide the condition {cond} at x = {point}")
        raise IbcheckError(f"{expr} is undefined at x = {point}")
    if not expr.args or not expr.has(sp.Piecewise):
        return expr
    return expr.func(*[_select_branch(a, point) for a in expr.args])


def _breakpoint(rel: sp.Rel) -> sp.Expr:
    lhs = sp.expand(rel.lhs - rel.rhs)
    if not lhs.has(X):
        raise Unsupported(f"the condition {rel} does not involve x")
    poly = sp.Poly(lhs, X) if lhs.is_polynomial(X) else None
    if poly is None or poly.degree() != 1:
        raise Unsupported(f"the condition {rel} is not of the form x < c (only finitely many "
                          "breakpoints given by linear conditions are supported)")
    a, b = poly.all_coeffs()
    return sp.nsimplify(-b / a) if (b / a).is_Float else sp.simplify(-b / a)


def _same_function(p: sp.Expr, q: sp.Expr) -> bool:
    """True if two pieces are the same function (structurally, or after simplification)."""
    if p == q:
        return True
    difference = p - q
    for probe in (sp.Rational(-7, 3), sp.Rational(1, 5), sp.Rational(11, 4)):
        value = difference.subs(X, probe).evalf(20)
        if value.is_number and abs(value) > 1e-12:
            return False
    return sp.simplify(difference) == 0


@dataclass(frozen=True)
class PiecewiseSmooth:
    """Smooth pieces between sorted breakpoints, plus point masses (see the module docstring)."""

    breaks: tuple[sp.Expr, ...]
    pieces: tuple[sp.Expr, ...]
    atoms: tuple[Atom, ...] = ()

    @classmethod
    def from_expr(cls, expr: sp.Expr, seconds: float = 10.0) -> "PiecewiseSmooth":
        """Split ``expr`` (in ``x``) at the breakpoints of its Abs/Max/Min/Heaviside/sign/Piecewise.

        Remembered per expression for the life of the process (the transform, its verification
        and the distributional part split the same activation; the object is immutable and
        computes its derivative once), unless a time limit expired on the way."""
        return _split(expr, seconds)

    @classmethod
    def _merged(cls, breaks, pieces, atoms) -> "PiecewiseSmooth":
        """Drop breakpoints where neighbouring pieces coincide and no atom sits."""
        atom_points = {a.location for a in atoms}
        new_breaks, new_pieces = [], [pieces[0]]
        for b, p in zip(breaks, pieces[1:]):
            if b not in atom_points and _same_function(p, new_pieces[-1]):
                continue
            new_breaks.append(b)
            new_pieces.append(p)
        return cls(tuple(new_breaks), tuple(new_pieces), tuple(atoms))

    def intervals(self) -> list[tuple[sp.Expr, sp.Expr, sp.Expr]]:
        """``(a, b, piece)`` for each open interval, with infinite ends as ``-oo``/``oo``."""
        ends = (-sp.oo,) + self.breaks + (sp.oo,)
        return [(ends[i], ends[i + 1], p) for i, p in enumerate(self.pieces)]

    def jump(self, index: int) -> sp.Expr:
        """:math:`f(b^+) - f(b^-)` at ``breaks[index]``."""
        b = self.breaks[index]
        return sp.simplify(one_sided_value(self.pieces[index + 1], b, "+")
                           - one_sided_value(self.pieces[index], b, "-"))

    def value_at(self, point: sp.Expr, side: str) -> sp.Expr:
        """One-sided value of the smooth part at ``point``."""
        index = sum(1 for b in self.breaks if (b < point) == sp.true or (side == "+" and b == point))
        return one_sided_value(self.pieces[index], point, side)

    def derivative(self) -> "PiecewiseSmooth":
        """The distributional derivative (module docstring); computed once per object."""
        return self._derivative

    @cached_property
    def _derivative(self) -> "PiecewiseSmooth":
        atoms = [Atom(a.location, a.order + 1, a.coefficient) for a in self.atoms]
        for i, b in enumerate(self.breaks):
            j = self.jump(i)
            if j != 0:
                atoms.append(Atom(b, 0, j))
        pieces = [tidy(sp.diff(p, X)) for p in self.pieces]
        return PiecewiseSmooth._merged(self.breaks, pieces, tuple(atoms))

    @cached_property
    def is_zero(self) -> bool:
        return not self.atoms and all(p == 0 for p in self.pieces)

    def as_expr(self) -> sp.Expr:
        """The same object as one sympy expression (Piecewise plus DiracDelta terms)."""
        if self.breaks:
            branches = [(p, X < b) for p, b in zip(self.pieces, self.breaks)] + [(self.pieces[-1], True)]
            smooth = sp.Piecewise(*branches)
        else:
            smooth = self.pieces[0]
        return smooth + sum((a.coefficient * sp.DiracDelta(X - a.location, a.order) if a.order
                             else a.coefficient * sp.DiracDelta(X - a.location) for a in self.atoms),
                            sp.S.Zero)


@remember_unless_time_limited()
def _split(expr: sp.Expr, seconds: float) -> PiecewiseSmooth:
    """:meth:`PiecewiseSmooth.from_expr`, remembered."""
    if expr.has(sp.DiracDelta):
        raise Unsupported(f"{expr} contains a point mass; give the activation as a function")
    with time_limit(seconds, f"splitting {expr} into smooth pieces"):
        folded = sp.piecewise_fold(expr.rewrite(sp.Piecewise) if expr.has(*_PIECEWISE_FUNCS) else expr)
        rels = [r for r in folded.atoms(sp.Rel) if r.has(X)]
        points = {_breakpoint(r) for r in rels}
        try:
            breaks = tuple(sorted(points, key=lambda p: float(p)))
        except TypeError:
            raise Unsupported(f"the breakpoints {sorted(map(str, points))} depend on parameters; "
                              "give the parameters values") from None
        if breaks:
            tests = [breaks[0] - 1] + [(a + b) / 2 for a, b in zip(breaks, breaks[1:])] + [breaks[-1] + 1]
        else:
            tests = [sp.S.Zero]
        pieces = [sp.simplify(_select_branch(folded, t)) if folded.has(sp.Piecewise) else folded
                  for t in tests]
    return PiecewiseSmooth._merged(breaks, pieces, ())
