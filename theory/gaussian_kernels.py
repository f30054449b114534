r"""Gaussian-weight infinite-width kernels: the NNGP and the NTK of a one-hidden-layer network.

The network (1-D input, NTK parameterisation, the convention of neural-tangents' ``stax``):

.. math:: x \mapsto u = w x + b,\quad w \sim N(0, \sigma_w^2),\ b \sim N(0, \sigma_b^2)
   \ \mapsto\ \sigma(u)\ \mapsto\ \text{a linear read-out with unit variance and no bias.}

With :math:`S(x, x') = \sigma_w^2 x x' + \sigma_b^2` and :math:`(u, u') \sim N(0, \Sigma)`,
:math:`\Sigma = \begin{pmatrix} S(x,x) & S(x,x') \\ S(x,x') & S(x',x') \end{pmatrix}`:

.. math:: K_{\rm NNGP}(x, x') = E[\sigma(u)\sigma(u')],\qquad
   K_{\rm NTK}(x, x') = K_{\rm NNGP}(x, x') + E[\sigma'(u)\sigma'(u')]\, S(x, x').

Write :math:`A = S(x,x)`, :math:`B = S(x',x')`, :math:`C = S(x,x')`, and
:math:`R = \sqrt{AB - C^2} = \sigma_w\sigma_b|x - x'|` (computed in this exact form, so that
nothing cancels near the diagonal), :math:`\theta = \operatorname{atan2}(R, C)` the angle
between the two pre-activation directions.  Closed forms:

* **arc-cosine family** (Cho & Saul 2009, "Kernel methods for deep learning"): every positively
  homogeneous :math:`\sigma(u) = c_+ u^k` (u > 0), :math:`c_- u^k` (u < 0), k = 0, 1, 2, ...
  (step, relu, leaky relu, abs, relu_k).  With :math:`d_+ = c_+`, :math:`d_- = (-1)^k c_-`,
  :math:`\sqrt{AB}^{\,k} J_k(\theta) = P_k(C, R) + (\pi - \theta) Q_k(C, R)` (polynomials from
  :math:`J_k(\theta) = (-1)^k \sin^{2k+1}\theta\, (\tfrac{1}{\sin\theta}\partial_\theta)^k
  \tfrac{\pi - \theta}{\sin\theta}`), and :math:`u' \to -u'` turning :math:`\theta` into
  :math:`\pi - \theta`:

  .. math:: E[\sigma(u)\sigma(u')] = \frac{(d_+^2 + d_-^2)\,\sqrt{AB}^{\,k} J_k(\theta)
     + 2 d_+ d_-\,\sqrt{AB}^{\,k} J_k(\pi - \theta)}{2\pi}.

  ReLU: :math:`(R + (\pi - \theta) C)/(2\pi)`; the derivative is homogeneous of degree k - 1
  with :math:`(k d_+, -k d_-)`.  neural-tangents' ``ABRelu`` is the case k = 1.
* **erf** (Williams 1997, "Computing with infinite networks"):
  :math:`\tfrac{2}{\pi}\operatorname{atan2}(2C, \sqrt{1 + 2A + 2B + 4R^2})` and
  :math:`E[\sigma'\sigma'] = \tfrac{4}{\pi}(1 + 2A + 2B + 4R^2)^{-1/2}`.
* **gaussian** :math:`e^{-u^2/2}`: :math:`(1 + A + B + R^2)^{-1/2}` and
  :math:`C (1 + A + B + R^2)^{-3/2}`.
* **sin, cos**: :math:`e^{-(A+B)/2}\sinh C` and :math:`e^{-(A+B)/2}\cosh C` (and swapped
  for the derivatives).
* **exp** :math:`e^{u}`: :math:`e^{(A+B)/2 + C}` for both.

**Jumps.** Where :math:`\sigma` jumps (step, sign) the NTK uses :math:`\sigma'` away from the
jumps, the derivative automatic differentiation computes and gradient descent follows (0 for the
step), as neural-tangents' ``Sign`` does: the NTK equals the NNGP.  The distributional
derivative would add :math:`(c_+ - c_-)^2 S(x, x')/(2\pi R)`, infinite on the diagonal
(``ntk_note`` says so).

Every other activation is integrated numerically (:func:`expectation`): composite
Gauss-Legendre in standard-normal coordinates, with panel edges at the breakpoints of
:math:`\sigma` (so kinks never fall inside a panel) and panels no wider than the activation's
scale; the achieved accuracy is measured in the tests against an independent adaptive
quadrature (better than 1e-12 on the built-ins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace
from typing import Callable

import numpy as np
import sympy as sp

from .activations import Activation, ensure_real_valued
from .derivation import Derivation, Section, name
from .errors import IbcheckError
from .evaluation import compile_expression
from .piecewise import PiecewiseSmooth
from .symbols import x as X

#: the second input of a kernel, x' (``xp`` in text)
XP = name("xp", "x'", real=True)

#: the same few functions, symbolic and numeric: one formula serves both
SYMPY = SimpleNamespace(sqrt=sp.sqrt, atan2=sp.atan2, exp=sp.exp, sinh=sp.sinh, cosh=sp.cosh, pi=sp.pi)
NUMPY = SimpleNamespace(sqrt=np.sqrt, atan2=np.arctan2, exp=np.exp, sinh=np.sinh, cosh=np.cosh, pi=np.pi)

#: standard-normal coordinates are integrated over [-HALF_WIDTH, HALF_WIDTH] (tail mass 2e-21)
HALF_WIDTH = 9.5
#: Gauss-Legendre nodes per panel
NODES_PER_PANEL = 16
#: widest panel, in units of the activation's argument (analytic strips of the built-ins are >= pi/2 wide)
PANEL_WIDTH_U = 2.5
#: widest panel in standard-normal units
PANEL_WIDTH_Z = 2.0
#: most array elements held at once during quadrature
CHUNK_ELEMENTS = 4_000_000


# ---------------------------------------------------------------------------------------
# closed forms: each is f(A, B, C, R, lib) -> (E[sigma sigma'], E[sigma' sigma'])

@lru_cache(maxsize=None)
def arc_cosine_polynomials(k: int) -> tuple[sp.Poly, sp.Poly]:
    r"""(P_k, Q_k) with :math:`\sqrt{AB}^{\,k} J_k(\theta) = P_k(C, R) + (\pi - \theta)\,Q_k(C, R)`.

    :math:`(\frac{1}{\sin}\partial_\theta)^k` acts on :math:`(\pi - \theta) u + v` as
    :math:`u \to u'/\sin\theta`, :math:`v \to (v' - u)/\sin\theta`, starting from
    :math:`u = 1/\sin\theta`, :math:`v = 0`; then :math:`\sin\theta = R/\rho`,
    :math:`\cos\theta = C/\rho`, :math:`\rho = \sqrt{C^2 + R^2}`.
    (k = 1: P = R, Q = C; k = 2: P = 3CR, Q = 3C^2 + R^2, Cho & Saul's J_2.)
    """
    theta = sp.Symbol("theta")
    c, r = sp.symbols("C R", positive=True)
    u, v = 1 / sp.sin(theta), sp.S.Zero
    for _ in range(k):
        u, v = sp.diff(u, theta) / sp.sin(theta), (sp.diff(v, theta) - u) / sp.sin(theta)
    rho = sp.sqrt(c**2 + r**2)

    def homogeneous(part):
        part = (-1) ** k * sp.sin(theta) ** (2 * k + 1) * part
        part = part.subs({sp.sin(theta): r / rho, sp.cos(theta): c / rho}) * rho**k
        return sp.Poly(sp.expand(sp.factor(sp.cancel(sp.together(part)))), c, r)

    return homogeneous(v), homogeneous(u)


def _poly_value(poly: sp.Poly, c, r, lib):
    total = 0
    for (i, j), coeff in poly.terms():
        total = total + (int(coeff) if lib is NUMPY else coeff) * c**i * r**j
    return total


def _arc_cosine_expectation(k: int, d_plus, d_minus, A, B, C, R, lib):
    r""":math:`E[\sigma(u)\sigma(u')]` for :math:`\sigma = d_+ u_+^k + d_- (-u)_+^k`."""
    p, q = arc_cosine_polynomials(k)
    theta = lib.atan2(R, C)
    same = _poly_value(p, C, R, lib) + (lib.pi - theta) * _poly_value(q, C, R, lib)
    flipped = _poly_value(p, -C, R, lib) + theta * _poly_value(q, -C, R, lib)
    return ((d_plus**2 + d_minus**2) * same + 2 * d_plus * d_minus * flipped) / (2 * lib.pi)


def _homogeneous_coefficients(act: Activation) -> tuple[int, sp.Expr, sp.Expr] | None:
    """(k, d+, d-) when ``act`` is c+ u^k for u > 0 and c- u^k for u < 0, else None."""
    k = act.homogeneity_degree
    if k is None:
        return None
    pieces = act.pieces
    left, right = pieces.pieces[0], pieces.pieces[-1]
    c_minus, c_plus = sp.simplify(left / X**k), sp.simplify(right / X**k)
    if c_minus.has(X) or c_plus.has(X):
        return None
    return k, c_plus, (-1) ** k * c_minus


def _arc_cosine(act: Activation):
    coefficients = _homogeneous_coefficients(act)
    if coefficients is None:
        return None
    k, d_plus, d_minus = coefficients

    def forms(A, B, C, R, lib):
        plus, minus = (float(d_plus), float(d_minus)) if lib is NUMPY else (d_plus, d_minus)
        nngp = _arc_cosine_expectation(k, plus, minus, A, B, C, R, lib)
        if k == 0:  # sigma' = 0 away from the jump (the distributional part is left out, module docstring)
            return nngp, 0 * nngp
        return nngp, k**2 * _arc_cosine_expectation(k - 1, plus, -minus, A, B, C, R, lib)

    return forms, (f"arc-cosine kernel of degree {k} (Cho & Saul 2009), coefficients "
                   f"d+ = {d_plus}, d- = {d_minus}")


def _erf(A, B, C, R, lib):
    root = lib.sqrt(1 + 2 * A + 2 * B + 4 * R**2)  # = sqrt((1 + 2A)(1 + 2B) - 4C^2)
    return 2 / lib.pi * lib.atan2(2 * C, root), 4 / (lib.pi * root)


def _gaussian(A, B, C, R, lib):
    det = 1 + A + B + R**2  # = det(I + Sigma)
    return 1 / lib.sqrt(det), C / (det * lib.sqrt(det))


def _sin(A, B, C, R, lib):
    damp = lib.exp(-(A + B) / 2)
    return damp * lib.sinh(C), damp * lib.cosh(C)


def _cos(A, B, C, R, lib):
    damp = lib.exp(-(A + B) / 2)
    return damp * lib.cosh(C), damp * lib.sinh(C)


def _exp(A, B, C, R, lib):
    value = lib.exp((A + B) / 2 + C)
    return value, value


#: sigma (bound, in x) -> (closed forms, what they are)
TEMPLATES: tuple[tuple[sp.Expr, Callable, str], ...] = (
    (sp.erf(X), _erf, "erf kernel (Williams 1997)"),
    (sp.exp(-X**2 / 2), _gaussian, "Gaussian-bump kernel (Gaussian integral, det(I + Sigma))"),
    (sp.sin(X), _sin, "sine kernel (E e^{i(u +- u')})"),
    (sp.cos(X), _cos, "cosine kernel (E e^{i(u +- u')})"),
    (sp.exp(X), _exp, "exponential kernel (log-normal moment)"),
)


def _same_function(expr: sp.Expr, template: sp.Expr) -> bool:
    """``expr`` equals ``template``: structurally, or (after agreeing at three points) by simplification."""
    if expr == template:
        return True
    try:
        if any(abs(complex(expr.subs(X, p).evalf(20)) - complex(template.subs(X, p).evalf(20))) > 1e-12
               for p in (sp.Rational(-7, 5), sp.Rational(3, 10), sp.Rational(11, 5))):
            return False
    except (TypeError, ValueError):  # not a number at a probe point
        return False
    return sp.simplify(expr - template) == 0


def _closed_form(act: Activation):
    """(forms, description) of the closed form for ``act``, or None."""
    for template, forms, how in TEMPLATES:
        if _same_function(act.bound, template):
            return forms, how
    try:
        return _arc_cosine(act)
    except IbcheckError:
        return None


# ---------------------------------------------------------------------------------------
# quadrature

def slope_away_from_jumps(act: Activation) -> sp.Expr:
    r""":math:`\sigma'` without the point masses at jumps: the smooth part of the distributional derivative."""
    first = act.pieces.derivative()
    return PiecewiseSmooth(first.breaks, first.pieces).as_expr()


def _panel_rule(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on the panels between sorted ``edges`` (last axis)."""
    t, w = np.polynomial.legendre.leggauss(NODES_PER_PANEL)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    half = (hi - lo) / 2
    nodes = ((hi + lo) / 2 + half * t).reshape(*edges.shape[:-1], -1)
    weights = (half * w).reshape(*edges.shape[:-1], -1)
    return nodes, weights


def _crossings(breaks: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The z where ``shift + scale * z`` crosses each breakpoint (last axis), clipped to [-L, L]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        crossings = (breaks - shift[..., None]) / scale[..., None]
    return np.clip(np.nan_to_num(crossings, nan=HALF_WIDTH), -HALF_WIDTH, HALF_WIDTH)


def _graded(centers: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Edges ``center +- width * 2^j`` (j = 0, 1, ...) up to the ends: panels that shrink
    geometrically onto a feature of the given width at each center (last axis)."""
    finite = width[(width > 0) & np.isfinite(width)]
    if centers.shape[-1] == 0 or finite.size == 0:
        return centers[..., :0]
    levels = int(np.clip(np.ceil(np.log2(2 * HALF_WIDTH / finite.min())) + 1, 0, 60))
    offsets = width[..., None, None] * 2.0 ** np.arange(levels)
    edges = np.concatenate([centers[..., None] - offsets, centers[..., None] + offsets], axis=-1)
    edges = np.nan_to_num(edges, nan=HALF_WIDTH, posinf=HALF_WIDTH, neginf=-HALF_WIDTH)
    return np.clip(edges, -HALF_WIDTH, HALF_WIDTH).reshape(*centers.shape[:-1], -1)


def _edges(scale: np.ndarray, *extra: np.ndarray) -> np.ndarray:
    """Panel edges on [-L, L] (last axis): a uniform grid fine enough for an integrand that varies
    on the scale 1/``scale`` in z (and on the unit scale), plus the ``extra`` edges (breakpoint
    crossings, graded edges)."""
    widest = min(PANEL_WIDTH_Z, PANEL_WIDTH_U / max(float(np.max(scale, initial=0.0)), 1e-300))
    count = int(np.ceil(2 * HALF_WIDTH / widest))
    grid = np.broadcast_to(np.linspace(-HALF_WIDTH, HALF_WIDTH, count + 1), (*scale.shape, count + 1))
    return np.sort(np.concatenate([grid, *extra], axis=-1), axis=-1)


def _normal(z):
    return np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)


def expectation(f: Callable, g: Callable, breaks, A, B, C, R) -> np.ndarray:
    r""":math:`E[f(u) g(u')]`, :math:`(u, u') \sim N(0, [[A, C], [C, B]])`, elementwise over the arrays.

    :math:`u = \sqrt A z_1`, :math:`u' = (C/\sqrt A) z_1 + (R/\sqrt A) z_2` (:math:`u' = \sqrt B z_2`
    when A = 0); the inner integral over :math:`z_2` for each outer node, then the outer one,
    each by composite Gauss-Legendre with edges at the breakpoints (``breaks``, of both f and g).
    Near the diagonal the inner expectation is a breakpoint of g smoothed over the width
    :math:`R/|C|` in :math:`z_1`; the outer panels are graded geometrically onto it.
    """
    A, B, C, R = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, C, R)))
    out = np.empty(A.shape)
    flat = [v.ravel() for v in (A, B, C, R)]
    breaks = np.asarray(sorted(float(b) for b in breaks), dtype=float)
    per_pair = (2 * HALF_WIDTH / min(PANEL_WIDTH_Z, PANEL_WIDTH_U / max(np.sqrt(flat[0].max(initial=0)),
                                                                         np.sqrt(flat[1].max(initial=0)), 1e-300))
                + breaks.size + 2) * NODES_PER_PANEL
    chunk = max(1, int(CHUNK_ELEMENTS // per_pair**2))
    result = out.ravel()
    for start in range(0, A.size, chunk):
        a, b, c, r = (v[start:start + chunk] for v in flat)
        root_a = np.sqrt(a)
        positive = root_a > 0
        safe = np.where(positive, root_a, 1.0)
        along = np.where(positive, c / safe, 0.0)       # u' = along * z1 + across * z2
        across = np.where(positive, r / safe, np.sqrt(b))
        # the inner expectation, as a function of z1, turns a breakpoint p of g into a feature of
        # width across/along at z1 = p/along (a kink smoothed by the conditional spread): graded panels
        with np.errstate(divide="ignore", invalid="ignore"):
            centers = _crossings(breaks, np.zeros_like(a), along)
            feature = np.abs(across / along)
        # the outer integrand varies on the scale of sigma(sqrt(A) z1) and of the inner mean along * z1
        z1, w1 = _panel_rule(_edges(np.maximum(root_a, np.abs(along)), _crossings(breaks, np.zeros_like(a), root_a),
                                    centers, _graded(centers, feature)))
        shift = along[:, None] * z1
        spread = across[:, None] * np.ones_like(z1)
        z2, w2 = _panel_rule(_edges(spread, _crossings(breaks, shift, spread)))
        inner = np.sum(w2 * _normal(z2) * g(shift[..., None] + across[:, None, None] * z2), axis=-1)
        result[start:start + chunk] = np.sum(w1 * _normal(z1) * f(root_a[:, None] * z1) * inner, axis=-1)
    return out


# ---------------------------------------------------------------------------------------
# the kernel object

def _variance(value, what: str) -> sp.Rational:
    try:
        exact = sp.Rational(repr(value)) if isinstance(value, float) else sp.nsimplify(value)
    except (TypeError, ValueError, sp.SympifyError):
        raise IbcheckError(f"{what} must be a number, got {value!r}") from None
    if not exact.is_Rational or exact < 0:
        raise IbcheckError(f"{what} must be a non-negative number, got {value!r}")
    return exact


@dataclass(frozen=True)
class GaussianKernel:
    r"""The NNGP and NTK of ``activation`` with Gaussian first-layer weights (module docstring).

    ``nngp_expr`` / ``ntk_expr``: closed forms in ``x`` and ``xp`` (None when there is none or,
    for the NTK, when :math:`\sigma'` is a distribution); ``method`` says how numbers are made.
    """

    activation: Activation
    weight_variance: sp.Rational
    bias_variance: sp.Rational
    nngp_expr: sp.Expr | None
    ntk_expr: sp.Expr | None
    method: str
    ntk_note: str = ""
    forms: Callable | None = field(default=None, repr=False, compare=False)

    def covariances(self, x, xp):
        """(A, B, C, R) of the pre-activations at x and x' (arrays, broadcast)."""
        x, xp = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(xp, dtype=float))
        w, v = float(self.weight_variance), float(self.bias_variance)
        return w * x * x + v, w * xp * xp + v, w * x * xp + v, np.sqrt(w * v) * np.abs(x - xp)

    def _pair(self, x, xp) -> tuple[np.ndarray, np.ndarray]:
        A, B, C, R = self.covariances(x, xp)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.forms is not None:
                nngp, dot = self.forms(A, B, C, R, NUMPY)
                return np.broadcast_to(nngp, A.shape), np.broadcast_to(dot, A.shape)
            sigma = self.activation.numeric("numpy")
            breaks = self.activation.pieces.breaks
            nngp = expectation(sigma, sigma, breaks, A, B, C, R)
            slope = compile_expression(slope_away_from_jumps(self.activation), "numpy")
            return nngp, expectation(slope, slope, breaks, A, B, C, R)

    def nngp(self, x, xp) -> np.ndarray:
        r""":math:`K_{\rm NNGP}(x, x') = E[\sigma(u)\sigma(u')]`, elementwise over broadcast arrays."""
        return self._pair(x, xp)[0]

    def ntk(self, x, xp) -> np.ndarray:
        r""":math:`K_{\rm NTK} = K_{\rm NNGP} + E[\sigma'(u)\sigma'(u')]\,S(x, x')` (:math:`\sigma'`
        away from jumps)."""
        nngp, dot = self._pair(x, xp)
        return nngp + dot * self.covariances(x, xp)[2]


def _symbolic_forms(forms: Callable, w: sp.Rational, v: sp.Rational) -> tuple[sp.Expr, sp.Expr]:
    A, B, C = w * X**2 + v, w * XP**2 + v, w * X * XP + v
    R = sp.sqrt(w * v) * sp.Abs(X - XP)
    nngp, dot = forms(A, B, C, R, SYMPY)
    return nngp, nngp + dot * C


def gaussian_kernel(act, weight_variance=1.0, bias_variance=1.0) -> GaussianKernel:
    r"""The Gaussian-weight NNGP and NTK of ``act`` (an :class:`Activation` or its name/formula),
    :math:`w \sim N(0, \text{weight\_variance})`, :math:`b \sim N(0, \text{bias\_variance})`."""
    if isinstance(act, str):
        from .parsing import parse_activation

        act = parse_activation(act)
    if not isinstance(act, Activation):
        raise IbcheckError(f"gaussian_kernel takes an activation or its name/formula, got {type(act).__name__}")
    ensure_real_valued(act)
    w = _variance(weight_variance, "weight_variance")
    v = _variance(bias_variance, "bias_variance")
    if w == 0:
        raise IbcheckError("weight_variance must be positive (with w = 0 the input is ignored)")
    forms = _closed_form(act)
    note = ("sigma jumps: the NTK uses sigma' away from the jumps (what autodiff and gradient descent see, as "
            "neural-tangents' Sign); the distributional derivative would add (c+ - c-)^2 S(x, x')/(2 pi R), "
            "R = sqrt(S(x,x) S(x',x') - S(x,x')^2), infinite on the diagonal") if act.is_discontinuous else ""
    if forms is not None:
        nngp, ntk = _symbolic_forms(forms[0], w, v)
        return GaussianKernel(act, w, v, nngp, ntk, f"closed form: {forms[1]}", note, forms[0])
    if not act.growth.tempered:
        raise IbcheckError(f"{act.label}: no closed-form Gaussian kernel, and the quadrature needs polynomial "
                           f"growth ({act.growth.reason})")
    return GaussianKernel(act, w, v, None, None,
                          f"quadrature: composite Gauss-Legendre ({NODES_PER_PANEL} nodes per panel, "
                          "edges at the breakpoints of sigma), in standard-normal coordinates", note)


#: (x, x') pairs at which a derivation lists kernel values
SAMPLE_PAIRS = ((-1.0, 1.0), (0.5, 0.5), (1.0, 2.0))


def gaussian_kernel_derivation(kern: GaussianKernel):
    """The kernel as a :class:`~theory.derivation.Derivation` (what ``derive --kernel gaussian`` prints)."""
    act, w, v = kern.activation, kern.weight_variance, kern.bias_variance
    section = Section("Gaussian-weight NNGP and NTK (one hidden layer, NTK parameterisation)")
    section.step(f"Network x -> u = w x + b, w ~ N(0, {w}), b ~ N(0, {v}) -> sigma(u) -> linear read-out "
                 "(unit variance, no bias). Pre-activation covariance:",
                 sp.Eq(name("S(x, xp)", "S(x, x')"), w * X * XP + v))
    section.step("NNGP = E[sigma(u) sigma(u')] and NTK = NNGP + E[sigma'(u) sigma'(u')] S(x, x'), "
                 "(u, u') ~ N(0, [[S(x,x), S(x,x')], [S(x,x'), S(x',x')]]).")
    results = section.results
    results.update({"kernel_convention": "gaussian_weights", "weight_variance": w, "bias_variance": v,
                    "nngp": kern.nngp_expr, "ntk": kern.ntk_expr, "method": kern.method})
    if kern.nngp_expr is not None:
        section.step(f"Closed form ({kern.method[len('closed form: '):]}):",
                     sp.Eq(name("K_NNGP(x, xp)", r"K_{\mathrm{NNGP}}(x, x')"), kern.nngp_expr))
        section.step("and", sp.Eq(name("K_NTK(x, xp)", r"K_{\mathrm{NTK}}(x, x')"), kern.ntk_expr))
    else:
        section.step(f"No closed form: {kern.method}.")
    if kern.ntk_note:
        section.step(f"Note: {kern.ntk_note}.")
        results["ntk_note"] = kern.ntk_note
    xs, xps = np.array([p[0] for p in SAMPLE_PAIRS]), np.array([p[1] for p in SAMPLE_PAIRS])
    nngp, ntk = kern.nngp(xs, xps), kern.ntk(xs, xps)
    results["values"] = [{"x": a, "xp": b, "nngp": float(n), "ntk": float(t) if np.isfinite(t) else None}
                         for a, b, n, t in zip(xs.tolist(), xps.tolist(), nngp, ntk)]
    section.step("Values: " + "; ".join(f"(x, x') = ({a:g}, {b:g}): NNGP {n:.12g}, NTK {t:.12g}"
                                        for a, b, n, t in zip(xs, xps, nngp, ntk)) + ".")
    return Derivation(act.label, act.symbolic, "gaussian_kernel", [section],
                      parameters={p.symbol: value for p, value in act.values})
