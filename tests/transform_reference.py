r"""An independent check of a transform's final closed form: localized Parseval pairing.

For a test function :math:`\psi_c(\omega) = \omega^{2M} e^{-s^2(\omega - c)^2/2}` the definition
of the distributional transform gives

.. math::
   \int \hat\sigma(\omega)\,\psi_c(\omega)\,d\omega = \int \sigma(x)\,\hat\psi_c(x)\,dx,
   \qquad \hat\psi_c(x) = (i\partial_x)^{2M}\Big[\tfrac{\sqrt{2\pi}}{s}\,e^{-icx - x^2/(2s^2)}\Big].

:math:`\psi_c` vanishes to order 2M at 0, so with 2M above the order of the transform's
singularity the point masses at 0 pair to zero and the finite part is an ordinary integral:
the left side needs only the final regular part R (for :math:`\omega < 0`,
:math:`\hat\sigma(\omega) = \overline{R(-\omega)}`, :math:`\sigma` real), the right side only the
values of :math:`\sigma` itself (composite Gauss-Legendre in double precision; the closed form's
values at the nodes are computed at 30 digits, since a right form can cancel catastrophically in
double precision).  Nothing here uses the engine's derivatives, pieces or
quadrature, so a wrong closed form cannot agree with it by sharing a mistake.  With s = 2 the
pairing weighs frequencies within about 1/2 of c: three centres test the form at three places.
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy as sp

from theory.evaluation import compile_expression
from theory.fourier import FourierResult
from theory.piecewise import PiecewiseSmooth
from theory.symbols import omega as W
from theory.symbols import x as X

#: width parameter of the test functions (their width in omega is 1/s)
WIDTH = 2
#: the centre frequencies
CENTRES = (sp.Rational(3, 5), sp.Rational(17, 10), sp.Rational(7, 2))
#: Gauss-Legendre rule per panel (48 nodes: exact for polynomials of degree 95 per panel)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


def _integral(func, ends) -> complex:
    """Composite Gauss-Legendre on the panels between ``ends`` (vectorized; no node on an end)."""
    ends = np.asarray(ends, dtype=float)
    lo, hi = ends[:-1, None], ends[1:, None]
    t = (hi + lo) / 2 + (hi - lo) / 2 * _NODES[None, :]
    with np.errstate(all="ignore"):
        values = np.asarray(func(t), dtype=complex) * np.ones_like(t)
    return complex(np.sum(values * _WEIGHTS[None, :] * (hi - lo) / 2))


def _thirty_digits(expr: sp.Expr, var: sp.Symbol):
    """``expr`` as a function of a numpy array, each value computed with mpmath at 30 digits and
    rounded once.  A closed form can be right yet lose every digit in double precision: for
    relu(x/3 - 2) e^{-x^2} it is a difference of two terms of size e^{36} whose result is 1e-19
    (the fuzz's double-precision evaluation called that correct form wrong by 1.6e4)."""
    try:
        precise = sp.lambdify(var, expr, modules="mpmath")
        complex(precise(mpmath.mpf("1.3")))
    except Exception:  # noqa: BLE001 - what mpmath lacks: sympy's own evaluation
        def precise(v):
            return complex(expr.subs(var, sp.Float(str(v), 30)).evalf(30))

    def evaluate(values):
        with mpmath.workdps(30):
            flat = [complex(precise(mpmath.mpf(float(v)))) for v in np.ravel(values)]
        return np.array(flat, dtype=complex).reshape(np.shape(values))
    return evaluate


def pairing(ft: FourierResult, centre: sp.Expr) -> tuple[complex, complex, float]:
    """(closed-form side, activation side, scale): the two sides of the identity for
    :math:`\\psi_c`; ``scale`` is :math:`\\int|\\sigma\\hat\\psi_c|`, the size of the terms that
    cancel in the activation side (errors are measured against it)."""
    power = 2 * (ft.order + 1)
    c = float(centre)
    psi_expr = W**power * sp.exp(-WIDTH**2 * (W - centre) ** 2 / 2)
    regular = _thirty_digits(ft.regular_bound, W)

    def psi(w):
        return w**power * np.exp(-WIDTH**2 * (w - c) ** 2 / 2)

    reach = c + 14 / WIDTH + 4 * np.sqrt(power)
    def both_signs(w):
        r = regular(w)
        return r * psi(w) + np.conj(r) * psi(-w)
    closed = _integral(both_signs, np.linspace(0, reach, 17))
    masses = sum((a.coefficient.subs(ft.activation.substitutions()) * (-1) ** a.order
                  * sp.diff(psi_expr, W, a.order).subs(W, a.location) for a in ft.singular if a.location != 0),
                 sp.S.Zero)
    closed += complex(sp.N(masses, 20))

    base = sp.sqrt(2 * sp.pi) / WIDTH * sp.exp(-sp.I * centre * X - X**2 / (2 * WIDTH**2))
    psi_hat = sp.lambdify(X, sp.expand(sp.I**power * sp.diff(base, X, power)), modules="numpy")
    sigma = compile_expression(ft.activation.bound, "numpy", X)
    half = WIDTH * (12 + np.sqrt(power))
    breaks = [float(b) for b in PiecewiseSmooth.from_expr(ft.activation.bound).breaks if abs(float(b)) < half]
    ends = sorted(set(np.linspace(-half, half, 41).tolist() + breaks))
    direct = _integral(lambda t: sigma(t) * psi_hat(t), ends)
    scale = _integral(lambda t: np.abs(sigma(t) * psi_hat(t)), ends).real
    return closed, direct, scale


def parseval_error(ft: FourierResult, centres=CENTRES) -> float:
    """The worst :math:`|L - R| / \\max(|R|, 10^{-6}\\,\\mathrm{scale})` over the centres (inf if
    anything is not finite).  Double precision: both sides are good to ~1e-13 of the scale."""
    worst = 0.0
    for centre in centres:
        closed, direct, scale = pairing(ft, centre)
        if not all(np.isfinite([closed.real, closed.imag, direct.real, direct.imag, scale])):
            return float("inf")
        worst = max(worst, abs(closed - direct) / max(abs(direct), 1e-6 * scale))
    return worst
