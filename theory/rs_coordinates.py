r"""RS (Radon-spline) coordinates of a neuron and the rescaling symmetry they remove.

spectral_bias.md 1.2-1.3.  A neuron :math:`v\,\sigma(w\cdot x + b)` with :math:`w \ne 0` has
RS coordinates

.. math:: \rho = \|w\|,\qquad \theta = w/\rho \in S^{d-1},\qquad \beta = -b/\rho,
          \qquad w\cdot x + b = \rho\,(\theta\cdot x - \beta),

so its zero-plane is :math:`H = \{x : \theta\cdot x = \beta\}`, a point :math:`(\theta, \beta)`
of the Radon domain.

*Positively k-homogeneous* :math:`\sigma` (:math:`\sigma(a u) = a^k\sigma(u)` for
:math:`a > 0`: ReLU, leaky ReLU, :math:`|x|`, ReLU^k, the step with k = 0): the rescaling
:math:`(v, w, b) \mapsto (v/a^k, a w, a b)` leaves the output unchanged and
:math:`(\mu, \theta, \beta)` with :math:`\mu = v\rho^k` constant on its orbits, so
:math:`f = \sum_i \mu_i\,\sigma(\theta_i\cdot x - \beta_i)` with d + 1 instead of d + 2
parameters per neuron.  Under gradient flow with equal rates the balance
:math:`k v^2 - \|w\|^2 - b^2` is conserved (Euler's identity :math:`u\sigma'(u) = k\sigma(u)`).

*Non-homogeneous* :math:`\sigma` (open question 1.3 of the notes; this module's treatment is
option (b)): there is no rescaling symmetry to remove, shown by two values of the Euler ratio
:math:`u\sigma'(u)/\sigma(u)` (constant k for a k-homogeneous :math:`\sigma`).  ibcheck keeps
:math:`\rho` as a coordinate, the *sharpness*:
:math:`f = \sum_i v_i\,\sigma(\rho_i(\theta_i\cdot x - \beta_i))`.  The map
:math:`(v, w, b) \leftrightarrow (v, \rho, \theta, \beta)` is a bijection of
:math:`\{w \ne 0\}`, nothing is reduced, the zero-plane :math:`(\theta, \beta)` is still well
defined and carries the adaptive dynamics of :mod:`theory.dynamics`, while :math:`\mu` and
the balance law do not exist (their defect is
:math:`k\sigma(z) - z\sigma'(z) \ne 0`).  Option (a) would drop the adaptive analysis for
smooth activations and option (c), :math:`\|w\| = 1`, changes the model instead of
reparameterizing it.

Every identity here is verified by sympy under :func:`theory.timeouts.time_limit`.  Vector
identities are checked with explicit components in dimension :data:`MAX_COMPONENTS` at most:
they only involve inner products, so the check in dimension min(d, 3) covers every d.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .activations import Activation
from .errors import IbcheckError
from .symbols import x as X
from .timeouts import time_limit

#: seconds for one symbolic identity
PROOF_SECONDS = 10.0
#: largest number of explicit vector components used in symbolic identities
MAX_COMPONENTS = 3
#: probe points of the Euler ratio u sigma'(u) / sigma(u) (both half-lines)
EULER_PROBES = (sp.Rational(-2), sp.Rational(-1, 2), sp.Rational(1, 2), sp.Rational(2),
                sp.Rational(3, 7), sp.Rational(-3, 7))


@dataclass(frozen=True)
class NeuronSymbols:
    """Symbols of one neuron :math:`v\\sigma(w\\cdot x + b)`, one input x and a scale a > 0."""

    dim: int
    v: sp.Symbol
    w: sp.Matrix
    b: sp.Symbol
    x: sp.Matrix
    a: sp.Symbol

    @property
    def rho(self) -> sp.Expr:
        return sp.sqrt(sum(c**2 for c in self.w))

    @property
    def theta(self) -> sp.Matrix:
        return self.w / self.rho

    @property
    def beta(self) -> sp.Expr:
        return -self.b / self.rho

    @property
    def preactivation(self) -> sp.Expr:
        return (self.w.T * self.x)[0, 0] + self.b


@lru_cache(maxsize=8)
def neuron_symbols(dim: int) -> NeuronSymbols:
    """Explicit components in dimension min(dim, :data:`MAX_COMPONENTS`) (module docstring)."""
    if not isinstance(dim, int) or dim < 1:
        raise IbcheckError(f"input dimension must be a positive integer, got {dim!r}")
    m = min(dim, MAX_COMPONENTS)
    w = sp.Matrix(sp.symbols(f"w1:{m + 1}", real=True))
    x = sp.Matrix(sp.symbols(f"x1:{m + 1}", real=True))
    return NeuronSymbols(m, sp.Symbol("v", real=True), w, sp.Symbol("b", real=True), x,
                         sp.Symbol("a", positive=True))


def vanishes(expr, what: str) -> bool:
    """True if sympy simplifies ``expr`` (or every entry of a matrix) to 0 for w != 0.

    sympy may answer ``Piecewise((nan, Eq(w1, 0)), (0, True))``: zero except on a
    measure-zero set of equalities (where RS coordinates are undefined), which counts as 0.
    """
    items = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    with time_limit(PROOF_SECONDS, what):  # expand proves most identities; simplify the rest
        return all(sp.expand(e) == 0 or _zero_off_equalities(sp.simplify(e)) for e in items)


def _zero_off_equalities(value: sp.Expr) -> bool:
    if value == 0:
        return True
    if isinstance(value, sp.Piecewise):
        return all(isinstance(cond, sp.Eq) or (cond is sp.true and _zero_off_equalities(piece))
                   for piece, cond in value.args)
    return False


@dataclass(frozen=True)
class Homogeneity:
    """Positive homogeneity of :math:`\\sigma`, with its proof or a witness against it.

    ``degree`` is k or None.  For homogeneous :math:`\\sigma`, ``identities`` are the
    per-piece differences :math:`p(a u) - a^k p(u)` (all verified to vanish).  Otherwise
    ``euler_ratios`` lists :math:`(u, u\\sigma'(u)/\\sigma(u))` at probe points; two
    different values (or :math:`\\sigma(u) = 0 \\ne \\sigma'(u)` at some :math:`u \\ne 0`)
    rule out every k.
    """

    degree: int | None
    identities: tuple[sp.Expr, ...] = ()
    euler_ratios: tuple[tuple[sp.Expr, sp.Expr], ...] = ()
    statement: str = ""


def _euler_ratios(act: Activation) -> tuple[tuple[sp.Expr, sp.Expr], ...]:
    r""":math:`(u, u\sigma'(u)/\sigma(u))` at :data:`EULER_PROBES` from 30-digit values.

    :math:`\sigma(u)` counts as 0 when its 30-digit value chops to 0 (``evalf(chop=True)``: below
    about :math:`10^{-30}`), the test ``nsimplify`` applies before it looks for a closed form of
    the number; that search (about 10 ms a value) is not needed, since only the value is used."""
    sigma, dsigma = act.bound, act.derivative(1)
    out = []
    for u in EULER_PROBES:
        with time_limit(PROOF_SECONDS, f"the Euler ratio of {act.label} at u = {u}"):
            s = sp.N(sigma.subs(X, u), 30)
            if s.is_number and s.evalf(30, chop=True) == 0:
                s = sp.S.Zero
            ds = sp.N(dsigma.subs(X, u), 30)
        if not (s.is_number and ds.is_number):
            continue
        ratio = sp.oo if s == 0 and ds != 0 else (sp.nan if s == 0 else sp.N(u * ds / s, 15))
        if ratio.is_finite and not ratio.is_Number:   # e.g. a point mass of sigma' at the probe
            continue
        out.append((u, ratio))
    return tuple(out)


def homogeneity(act: Activation) -> Homogeneity:
    r"""Prove :math:`\sigma(a u) = a^k\sigma(u)` (a > 0) piece by piece, or show it fails."""
    k = act.homogeneity_degree
    a, u = neuron_symbols(1).a, X
    if k is not None:
        identities = tuple(sp.expand(p.subs(X, a * u) - a**k * p) for p in act.pieces.pieces)
        if not all(vanishes(e, f"the homogeneity identity of {act.label}") for e in identities):
            raise IbcheckError(f"{act.label}: the pieces c x^{k} failed the identity p(a u) = a^{k} p(u)")
        power = {0: "", 1: "a "}.get(k, f"a^{k} ")
        return Homogeneity(k, identities, (), f"sigma(a u) = {power}sigma(u) for a > 0 (checked on each "
                                              f"piece), so sigma is positively {k}-homogeneous")
    ratios = _euler_ratios(act)
    finite = [r for _, r in ratios if r.is_finite]
    if any(r is sp.oo for _, r in ratios) or len({round(float(r), 10) for r in finite}) > 1:
        shown = ", ".join(f"{float(r):.4g} at u = {u}" if r.is_finite else f"infinite at u = {u}"
                          for u, r in ratios[:4])
        return Homogeneity(None, (), ratios, f"the Euler ratio u sigma'(u)/sigma(u) is {shown}; a "
                                             "positively k-homogeneous sigma has the constant ratio k, "
                                             "so no k exists")
    return Homogeneity(None, (), ratios, "the Euler ratio looks constant at the probes, but sigma is not a "
                                         "power c x^k with an integer k on each half-line; treated as "
                                         "non-homogeneous")


def rs_identity(dim: int) -> sp.Expr:
    r""":math:`w\cdot x + b - \rho(\theta\cdot x - \beta)`, verified to be 0."""
    s = neuron_symbols(dim)
    difference = s.preactivation - s.rho * ((s.theta.T * s.x)[0, 0] - s.beta)
    if not vanishes(difference, "the RS identity w.x + b = rho (theta.x - beta)"):
        raise IbcheckError("the RS identity failed")  # would be a bug in sympy or here
    return difference


def orbit_invariance(dim: int, k: int | None) -> dict[str, sp.Expr]:
    r"""How the RS coordinates change under :math:`(v, w, b) \mapsto (v/a^k, a w, a b)`.

    Returns the differences :math:`\theta(aw) - \theta(w)`, :math:`\beta(aw, ab) - \beta(w, b)`,
    :math:`\rho(aw) - a\rho(w)` and (for homogeneous :math:`\sigma`)
    :math:`\mu(v/a^k, aw) - \mu(v, w)`, each verified to vanish.
    """
    s = neuron_symbols(dim)
    scaled = {c: s.a * c for c in list(s.w) + [s.b]}
    theta_a, beta_a, rho_a = s.theta.subs(scaled, simultaneous=True), s.beta.subs(scaled, simultaneous=True), \
        s.rho.subs(scaled, simultaneous=True)
    out = {"theta": sp.Matrix([sp.simplify(e) for e in theta_a - s.theta]),
           "beta": beta_a - s.beta, "rho": rho_a - s.a * s.rho}
    if k is not None:
        out["mu"] = (s.v / s.a**k) * rho_a**k - s.v * s.rho**k
    for key, value in out.items():
        items = list(value) if isinstance(value, sp.MatrixBase) else [value]
        if not all(vanishes(e, f"orbit invariance of {key}") for e in items):
            raise IbcheckError(f"RS coordinate {key} is not invariant on rescaling orbits")
    return out


def balance_defect(act: Activation) -> sp.Expr:
    r""":math:`k\sigma(z) - z\sigma'(z)` for the Euler degree k (k = 1 when non-homogeneous).

    Gradient flow with equal rates gives
    :math:`\tfrac{d}{dt}(k v^2 - \|w\|^2 - b^2) = -\tfrac{2v}{N}\sum_j r_j\,(k\sigma(z_j) - z_j\sigma'(z_j))`
    (:func:`balance_rate`); the defect vanishes exactly for k-homogeneous :math:`\sigma`.
    """
    k = act.homogeneity_degree
    kk = 1 if k is None else k
    defect = sp.expand(kk * act.bound - X * act.derivative(1))
    return sp.S.Zero if k is not None and all(
        vanishes(sp.expand(kk * p - X * sp.diff(p, X)), "Euler's identity") for p in act.pieces.pieces) else defect


def balance_rate(dim: int) -> tuple[sp.Expr, sp.Expr]:
    r"""The time derivative of :math:`k v^2 - \|w\|^2 - b^2` for one data term (equal rates),
    derived by differentiating the loss, and the closed form
    :math:`-\tfrac{2v}{N} r\,(k\sigma(z) - z\sigma'(z))`; returns (derived, closed form), verified equal."""
    s = neuron_symbols(dim)
    k, r, N = sp.Symbol("k", positive=True), sp.Symbol("r", real=True), sp.Symbol("N", positive=True)
    sigma = sp.Function("sigma")
    z = s.preactivation
    loss = (r + s.v * sigma(z)) ** 2 / (2 * N)      # r = residual of the other neurons; own term added
    grads = [sp.diff(loss, p) for p in [s.v, *s.w, s.b]]
    flow = [-g for g in grads]
    derived = 2 * k * s.v * flow[0] - 2 * sum(c * fc for c, fc in zip(list(s.w) + [s.b], flow[1:]))
    total = r + s.v * sigma(z)
    closed = -(2 * s.v / N) * total * (k * sigma(z) - z * sp.Subs(sp.Derivative(sigma(X), X), X, z).doit())
    if not vanishes(sp.expand(derived - closed), "the balance-law rate"):
        raise IbcheckError("the balance-law rate does not match its closed form")
    return derived, closed
