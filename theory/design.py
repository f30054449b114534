r"""Activation design: from a target spectral penalty to an activation (spectral_bias.md section 4).

With flat offsets and a fixed first-layer norm, the kernel regime sees only
:math:`|\hat\sigma|`: an activation realises the radial penalty :math:`W^*` in dimension d iff

.. math:: |\hat\sigma(t)|^2 = C\,|t|^{d-1} / W^*(|t|) \qquad (C = 1 \text{ here}).

The phase is free.  Two choices are offered:

* ``minimum`` phase: the one-sided (causal, ReLU-like) activation, :math:`\sigma(t) = 0` for t < 0.
  It exists iff the Paley-Wiener condition :math:`\int |\log|\hat\sigma(t)||\,/(1+t^2)\,dt < \infty`
  holds; Gaussian-type penalties fail it (no one-sided activation gives a Gaussian-RBF penalty).
* ``zero`` phase: the even activation with :math:`\hat\sigma \ge 0`.

Closed forms (each verified by running the Fourier engine on the result and comparing its
spectral weight with the target):

* power :math:`W^* = c\,\omega^{2n}` (after the :math:`|t|^{d-1}` factor): minimum phase
  :math:`t_+^{n-1}/((n-1)!\sqrt c)`; zero phase, n even: :math:`(-1)^{n/2}|t|^{n-1}/(2(n-1)!\sqrt c)`;
* rational in :math:`\omega^2` (Sobolev :math:`(1+\omega^2)^s` with integer s, Matérn, ...):
  minimum phase by spectral factorisation, keeping the poles and zeros of
  :math:`\hat\sigma` in the upper half plane, then :math:`\mathcal F^{-1}[(\omega - r)^{-p}] =
  i^p t^{p-1} e^{irt} H(t)/(p-1)!`; e.g. :math:`(1+\omega^2)^s \mapsto t^{s-1}e^{-t}H(t)/\Gamma(s)`;
* Sobolev :math:`(1+\omega^2)^s`, zero phase: the Bessel potential
  :math:`(|t|/2)^{(s-1)/2} K_{(s-1)/2}(|t|) / (\sqrt\pi\,\Gamma(s/2))` (elementary for odd s,
  e.g. :math:`e^{-|t|}/2` for s = 2... see :func:`design_activation`);
* Gaussian :math:`W^* = c\,e^{a\omega^2}`, zero phase: :math:`e^{-t^2/(2a)}/\sqrt{2\pi a c}`.

Otherwise, for a penalty with :math:`W^*(0) > 0` (an integrable activation), the zero-phase
activation is computed numerically, :math:`\sigma(t) = \frac1\pi\int_0^\infty |\hat\sigma(\omega)|\cos(\omega t)\,d\omega`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import mpmath
import numpy as np
import scipy.integrate as si
import sympy as sp

from .activations import Activation
from .derivation import Derivation, Section, Step, name
from .errors import IbcheckError, Unsupported
from .evaluation import compile_expression
from .fourier import fourier_transform
from .penalty import spectral_weight
from .symbols import omega as W
from .symbols import x as X
from .timeouts import time_limit

PHASES = ("minimum", "zero")
_Z = sp.Symbol("z")  # complex frequency for the spectral factorisation


@dataclass
class Design:
    """The designed activation (closed form or numerical) and its verification."""

    target: sp.Expr
    dim: int
    phase: str
    how: str
    activation: Activation | None = None
    numeric: Callable[[np.ndarray], np.ndarray] | None = None
    verification: dict = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def derivation(self) -> Derivation:
        section = Section(f"Design of an activation for W*(omega) = {self.target} (d = {self.dim}, "
                          f"{self.phase} phase)", self.steps,
                          {"target": self.target, "activation": self.activation.expr if self.activation else None,
                           "method": self.how})
        status = "closed_form_verified" if self.verification.get("passed") and self.activation else \
            ("numerical_only" if self.activation is None else "closed_form_unverified")
        return Derivation(f"design[{self.target}]", self.activation.expr if self.activation else None,
                          status, [section], self.verification)


#: frequencies at which :func:`_varies` compares values, and the digits it works with
_PROBES = ("0.37", "1.3", "2.9")
_PROBE_DPS = (50, 100)
#: relative spread of the values beyond which an expression varies, provided both precisions
#: give the same spread (rounding noise after a cancellation changes with the digits, a true
#: difference does not)
_PROBE_SPREAD = 1e-12


def _spread(expr: sp.Expr, dps: int) -> tuple | None:
    """max - min and max |value| of ``expr`` at the probes with ``dps`` digits (constants
    included: compiled at that precision), as mpf, or None where a value is not real and finite."""
    with mpmath.workdps(dps):
        f = compile_expression(expr, "mpmath", W)
        values = [f(mpmath.mpf(p)) for p in _PROBES]
        if not all(isinstance(v, mpmath.mpf) and mpmath.isfinite(v) for v in values):
            return None
        return max(values) - min(values), max(abs(v) for v in values)


def _varies(expr: sp.Expr) -> bool:
    r"""Whether ``expr`` (in :math:`\omega`) is certainly not constant: its values at a few
    frequencies differ by more than 1e-12 relative, by the same amount with 50 and with 100
    digits.  False means "not known", also where it cannot be evaluated there (a pole, a complex
    value, an unsupported function).

    A guard in front of ``sp.simplify(expr)`` when only a constant result is of use: simplify
    keeps an expression's values, so it never turns a varying expression into one free of
    :math:`\omega`; skipping it there changes no result and saves the design's slowest calls."""
    try:
        low, high = (_spread(expr, dps) for dps in _PROBE_DPS)
    except (IbcheckError, ArithmeticError, TypeError, ValueError):
        return False
    if low is None or high is None:
        return False
    (spread_low, _), (spread, size) = low, high
    with mpmath.workdps(_PROBE_DPS[-1]):
        return bool(spread > _PROBE_SPREAD * size and abs(spread_low - spread) <= mpmath.mpf("1e-6") * spread)


@lru_cache(maxsize=64)
def _magnitude_squared(target: sp.Expr, dim: int) -> sp.Expr:
    """|omega|^(d-1) / W*, simplified (both phases of a design share it)."""
    return sp.simplify(W ** (dim - 1) / target)


@lru_cache(maxsize=64)
def _power_law(mag2: sp.Expr):
    """(c, n) with |sigma_hat|^2 = omega^(-2n)/c, or None (c simplified only where it may be constant)."""
    for n in range(1, 12):
        candidate = 1 / (mag2 * W ** (2 * n))
        if _varies(candidate):
            continue
        c = sp.simplify(candidate)
        if not c.has(W) and c.is_positive:
            return c, n
    return None


def _constant_or_none(expr: sp.Expr) -> sp.Expr | None:
    """``sp.simplify(expr)`` if it is free of omega, else None (skipping simplify where ``expr``
    certainly varies, :func:`_varies`)."""
    if _varies(expr):
        return None
    simple = sp.simplify(expr)
    return None if simple.has(W) else simple


def _other_power_law(mag2: sp.Expr) -> str | None:
    """Why a power law that :func:`_power_law` does not cover has no design here, or None if not a power law."""
    coeff, q = sp.powsimp(mag2, force=True).as_coeff_exponent(W)
    if coeff.has(W) or not q.is_number or q == 0 and mag2.has(W):
        return None
    if q >= 0:
        return (f"|sigma_hat|^2 = |omega|^(d-1)/W* = {mag2} does not decay, so the activation would be a "
                "distribution (a delta or its derivatives), not a function; the target must grow faster "
                "than |omega|^(d-1)")
    return (f"|sigma_hat|^2 = |omega|^(d-1)/W* = {mag2} is |omega|^({q}); the closed forms need an exponent "
            "-2n with a whole n >= 1 (a truncated power t_+^(n-1)), other powers are not implemented")


def _rational_factor(mag2: sp.Expr):
    """Minimum-phase factor h(omega) with |h|^2 = mag2 for a rational mag2 in omega^2, or None."""
    num, den = sp.fraction(sp.cancel(sp.together(mag2)))
    if not (num.is_polynomial(W) and den.is_polynomial(W)):
        return None
    num_p, den_p = sp.Poly(num, W), sp.Poly(den, W)
    if num_p.degree() >= den_p.degree() or any(e % 2 for (e,), _ in den_p.terms()) \
            or any(e % 2 for (e,), _ in num_p.terms()):
        return None

    def upper_factor(poly: sp.Poly):
        roots = sp.roots(poly.as_expr().subs(W, _Z), _Z)
        if sum(roots.values()) != poly.degree():
            raise Unsupported(f"cannot factor {poly.as_expr()} in closed form")
        factor = sp.S.One
        for r, mult in roots.items():
            if (sp.im(r) > 0) == sp.true:
                # i(omega - r) = s - p with s = i omega and p = i r in the left half plane:
                # conjugate poles pair up, so the factor has real coefficients in s (real sigma)
                factor *= (sp.I * (_Z - r)) ** mult
            elif sp.im(r) == 0:
                raise Unsupported("the target vanishes or blows up at a real frequency")
        return factor

    top, bottom = upper_factor(num_p), upper_factor(den_p)
    scale = sp.sqrt(num_p.LC() / den_p.LC())
    return scale * top / bottom


def _inverse_causal(h: sp.Expr) -> sp.Expr:
    r""":math:`\mathcal F^{-1}[h]` for a proper rational h with poles in the upper half plane."""
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.apart(sp.expand(h), _Z, full=True).doit()):
        coeff, rest = term.as_independent(_Z, as_Add=False)
        base, power = (rest.base, -rest.exp) if rest.is_Pow else (rest, -1)
        if power < 1:
            raise Unsupported(f"unexpected term {term} in the partial fractions")
        r = sp.solve(base, _Z)[0]
        total += coeff * sp.I**power * X ** (power - 1) * sp.exp(sp.I * r * X) / sp.factorial(power - 1)
    real = sp.simplify(sp.expand_complex(total))
    if sp.im(real) != 0 and sp.simplify(sp.im(real)) != 0:
        raise Unsupported("the causal inverse is not real")
    return sp.simplify(sp.re(real)) * sp.Heaviside(X)


def _verify(act: Activation, target: sp.Expr, dim: int) -> dict:
    ft = fourier_transform(act)
    if ft.regular is None:
        return {"passed": False, "reason": f"the designed activation has no closed-form transform ({ft.reason})"}
    achieved = spectral_weight(ft, dim, bound=True)
    freqs = [0.3, 0.8, 1.5, 2.5, 4.0]
    f_t, f_a = compile_expression(target, "mpmath", W), compile_expression(achieved, "mpmath", W)
    errs = [float(abs(f_a(mpmath.mpf(f)) / f_t(mpmath.mpf(f)) - 1)) for f in freqs]
    return {"achieved_weight": str(achieved), "frequencies": freqs, "max_relative_error": max(errs),
            "tolerance": 1e-10, "passed": max(errs) <= 1e-10,
            "method": "spectral weight of the designed activation by the Fourier engine vs the target"}


def design_activation(target: sp.Expr, dim: int = 1, phase: str = "minimum") -> Design:
    """An activation whose kernel-regime spectral weight is ``target`` (module docstring)."""
    if phase not in PHASES:
        raise IbcheckError(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
    if not isinstance(dim, int) or dim < 1:
        raise IbcheckError(f"dimension must be a positive integer, got {dim!r}")
    if target.free_symbols - {W}:
        raise IbcheckError(f"the target may depend on omega only, found {sorted(map(str, target.free_symbols - {W}))}")
    mag2 = _magnitude_squared(target, dim)
    steps = [Step("The kernel regime fixes only |sigma_hat|: |sigma_hat(t)|^2 = |t|^(d-1) / W*(t).",
                  sp.Eq(name("|sigma_hat(omega)|^2", r"|\hat\sigma(\omega)|^2"), mag2))]
    design = Design(target, dim, phase, "", steps=steps)
    expr = None
    with time_limit(30.0, "the activation design"):
        power = _power_law(mag2)
        unsupported_power = None if power is not None else _other_power_law(mag2)
        if unsupported_power is not None:
            raise Unsupported(f"W* = {target} is a power law, but {unsupported_power}")
        if power is not None:
            c, n = power
            if phase == "minimum":
                expr = sp.Max(0, X) ** (n - 1) / (sp.factorial(n - 1) * sp.sqrt(c)) if n > 1 else \
                    sp.Heaviside(X) / sp.sqrt(c)
                design.how = "power law, minimum phase: truncated power"
            elif n % 2 == 0:
                expr = (-1) ** (n // 2) * sp.Abs(X) ** (n - 1) / (2 * sp.factorial(n - 1) * sp.sqrt(c))
                design.how = "power law, zero phase: |t|^(n-1)"
            else:
                raise Unsupported(f"the zero-phase activation for omega^(-{2 * n}) is of log|t| type; "
                                  "use the minimum phase")
        elif phase == "minimum":
            gaussian = _constant_or_none(sp.log(mag2).diff(W, 2))
            if gaussian is not None and gaussian != 0:
                raise Unsupported("minimum phase impossible: the Paley-Wiener condition fails for a "
                                  "Gaussian-type penalty (no one-sided activation realises it)")
            h = _rational_factor(mag2)
            if h is None:
                raise Unsupported("minimum phase is implemented for power laws and for rational penalties in "
                                  f"omega^2 whose |sigma_hat|^2 = |omega|^(d-1)/W* decays; here it is {mag2}")
            steps.append(Step("Spectral factorisation: keep the poles and zeros of sigma_hat in the upper "
                              "half plane (causal, one-sided activation).",
                              sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), h.subs(_Z, W))))
            expr = _inverse_causal(h)
            design.how = "rational penalty, minimum phase: spectral factorisation"
        else:
            expr = _zero_phase_closed_form(target, dim)
            if expr is None:
                return _numerical_zero_phase(design, mag2)
            design.how = "zero phase: closed form"
    act = Activation(f"design[{target}]", sp.simplify(expr), (), f"designed for W* = {target}", builtin=False)
    design.activation = act
    steps.append(Step(f"The designed activation ({design.how}).", sp.Eq(name("sigma(x)", r"\sigma(x)"), act.expr)))
    design.verification = _verify(act, target, dim)
    steps.append(Step(f"Recomputing the spectral weight of this activation with the Fourier engine gives "
                      f"{design.verification.get('achieved_weight')}: max relative deviation from the target "
                      f"{design.verification.get('max_relative_error', float('nan')):.1e}."))
    return design


def _zero_phase_closed_form(target: sp.Expr, dim: int) -> sp.Expr | None:
    """Gaussian and Sobolev targets (d = 1), else None."""
    if dim != 1:
        return None
    log_t = sp.expand(sp.log(target).expand(force=True))
    a = _constant_or_none(log_t.diff(W, 2) / 2)
    if a is not None and (a > 0) == sp.true and sp.simplify(log_t - a * W**2).diff(W) == 0:
        c = sp.exp(sp.simplify(log_t - a * W**2))
        return sp.exp(-X**2 / (2 * a)) / sp.sqrt(2 * sp.pi * a * c)
    s_sym = sp.Wild("s", exclude=[W])
    match = target.match((1 + W**2) ** s_sym)
    if match and match[s_sym].is_positive:
        s = match[s_sym]
        nu = (s - 1) / 2
        bessel = (sp.Abs(X) / 2) ** nu * sp.besselk(nu, sp.Abs(X)) / (sp.sqrt(sp.pi) * sp.gamma(s / 2))
        expanded = sp.simplify(sp.expand_func(bessel))
        return expanded if not expanded.has(sp.besselk) else None
    return None


def _numerical_zero_phase(design: Design, mag2: sp.Expr) -> Design:
    magnitude = compile_expression(sp.sqrt(mag2), "numpy", W)
    at_zero = sp.limit(mag2, W, 0)
    if not at_zero.is_finite:
        raise Unsupported("the target vanishes at omega = 0 (a polynomial null space): the numerical "
                          "design needs an integrable activation, i.e. W*(0) > 0")

    def sigma(ts) -> np.ndarray:
        ts = np.atleast_1d(np.asarray(ts, dtype=float))
        return np.array([si.quad(lambda w: float(magnitude(w)), 0, np.inf, weight="cos", wvar=t)[0] / np.pi
                         if t != 0 else si.quad(lambda w: float(magnitude(w)), 0, np.inf)[0] / np.pi
                         for t in ts])
    design.numeric, design.how = sigma, "zero phase: numerical inverse Fourier integral"
    design.steps.append(Step("No closed form: sigma(t) = (1/pi) int_0^inf |sigma_hat(omega)| cos(omega t) domega, "
                             "evaluated numerically (scipy quad)."))
    design.verification = _verify_numerical(sigma, magnitude)
    design.steps.append(Step(f"Transforming the sampled activation back (Simpson's rule on [0, 40]) reproduces "
                             f"|sigma_hat| to {design.verification['max_relative_error']:.1e} at "
                             f"omega in {design.verification['frequencies']}."))
    return design


def _verify_numerical(sigma: Callable, magnitude: Callable) -> dict:
    r"""Sample the even activation on [0, 40], transform back by Simpson's rule
    (:math:`\hat\sigma(\omega) = 2\int_0^\infty \sigma(t)\cos\omega t\,dt`) and compare with the target
    magnitude.  Tolerance 1e-4: the grid spacing (1/30) and the truncation at t = 40 bound the error."""
    ts = np.linspace(0.0, 40.0, 1201)
    values = sigma(ts)
    freqs = [0.3, 0.8, 1.5, 2.5, 4.0]
    errs = []
    for f in freqs:
        back = 2 * si.simpson(values * np.cos(f * ts), x=ts)
        errs.append(abs(back / float(magnitude(f)) - 1))
    return {"frequencies": freqs, "max_relative_error": float(max(errs)), "tolerance": 1e-4,
            "passed": bool(max(errs) <= 1e-4),
            "method": "numerical transform of the sampled activation vs the target magnitude"}
