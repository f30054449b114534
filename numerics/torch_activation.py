r"""Torch functions generated from an activation's sympy expression.

:func:`torch_activation` compiles :math:`\sigma` (and, on request, :math:`\sigma'`) with the
shared expression compiler of :mod:`theory.evaluation`, using the ``torch`` backend registered
here: tensors in, tensors out, differentiable by autograd.  The compiler's stable forms
apply (:math:`\log(1+e^u)` is ``softplus``, :math:`1/(1+e^{-u})` is ``sigmoid``, a rational
function of :math:`e^u` over :math:`(1 + e^u)^n` a sum of products of sigmoids, :math:`1 \pm
\mathrm{erf}` and :math:`1 - \tanh^2` are ``erfc`` and ``sech``:sup:`2`; :mod:`theory.evaluation`).

For a piecewise activation every branch is evaluated on the whole tensor and ``torch.where``
selects.  A branch that overflows where it is *not* selected would poison the gradient
(``inf * 0 = nan``), so exponentials saturate at the float64 overflow point:
:math:`e^u` is evaluated as :math:`e^{\min(u, 709)}`.  Pre-activations beyond 709 are far
outside any training run; the tests compare the generated derivative with autograd on
:math:`|u| \le 50`.

:data:`ARRAYS` is a second backend registered here, for float64 numpy arrays (the quadratures of
:mod:`numerics.infinite_width`): numpy's backend with the primitives where torch's float64 kernels
are several times faster on CPU (measured on the 2-core EPYC of issue 18, ns per element on
arrays of 1e5-4e6 entries: erf 2.3-4.8 vs 6-25 with scipy, sin/cos 2.2-4.7 vs 7-27, sigmoid
0.5-1.2 vs 3.9-7.9 with scipy's expit, softplus 2.3-5.8 vs 14-27 with ``logaddexp``), applied to
the array's memory without a copy; numpy keeps exp, log and tanh (tanh 0.8-1.3 vs 3.6-7.5 ns).
Both compute the same functions to float64 rounding: softplus (of both backends) is the identity
only above :math:`u = 37`, where :math:`\log(1 + e^{-u}) < 10^{-16}` is below half an ulp of u
(torch's default threshold, 20, is off by up to :math:`2\cdot10^{-9}` there).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp
import torch

from theory.activations import Activation
from theory.errors import IbcheckError
from theory.evaluation import NUMPY, Backend, compile_expression, compile_expressions, register_backend

_COMPARE = {
    sp.StrictLessThan: torch.lt, sp.LessThan: torch.le, sp.StrictGreaterThan: torch.gt,
    sp.GreaterThan: torch.ge, sp.Equality: torch.eq, sp.Unequality: torch.ne,
}


def _as_tensor_op(op):
    def apply(a, b):
        a = a if torch.is_tensor(a) else torch.as_tensor(a, dtype=torch.float64)
        return op(a, b)
    return apply


def _plain_array(u) -> np.ndarray | None:
    """The float64 array behind ``u`` where a numpy kernel may compute on it: a CPU tensor outside
    autograd (None for a tensor that requires grad, a ``torch.func``-transformed one, another dtype)."""
    if not torch.is_tensor(u) or u.requires_grad or u.dtype != torch.float64 or u.device.type != "cpu":
        return None
    try:
        return u.numpy()
    except RuntimeError:  # a functorch-batched tensor has no storage of its own
        return None


def _numpy_when_plain(numpy_fn, torch_fn):
    """``torch_fn``, computed by the numpy ufunc ``numpy_fn`` where ``u`` is a plain float64 tensor.

    numpy's float64 exp, log and tanh are SIMD kernels that torch 2.13 on CPU lacks (measured on
    the 2-core EPYC of issue 18, (6, 10^4) tensors: exp 28 vs 172 us, tanh 41 vs 313 us); both are
    accurate to float64 rounding.  Tensors that autograd or ``torch.func`` tracks keep torch's."""
    def apply(u):
        array = _plain_array(u)
        if array is None:
            return torch_fn(u)
        out = np.empty(array.shape)
        with np.errstate(all="ignore"):  # torch's silence: log(-1) is nan, log(0) is -inf
            numpy_fn(array, out=out)
        return torch.from_numpy(out)
    return apply


def _numpy_safe_exp(array, out):
    np.minimum(array, 709.0, out=out)
    return NUMPY.functions[sp.exp](out, out=out)  # np.exp without its slow path for underflowing results


_exp = _numpy_when_plain(_numpy_safe_exp, lambda u: torch.exp(torch.clamp(u, max=709.0)))


def _numpy_sech(array, out):
    np.cosh(array, out=out)
    return np.reciprocal(out, out=out)


#: 1/cosh (cosh's overflow above |u| = 710 gives 0, the value rounded); numpy's cosh for plain tensors
#: (a (1e6,) tensor: 1.1 vs 2.7 CPU-ms with torch's cosh and division)
_sech = _numpy_when_plain(_numpy_sech, lambda u: 1 / torch.cosh(u))


def _safe_exp(u):
    """exp saturating at the float64 overflow point (module docstring)."""
    return _exp(u) if torch.is_tensor(u) else torch.exp(torch.as_tensor(u))


def _where(cond, a, b):
    if not torch.is_tensor(cond):
        return a if cond else b
    a = a if torch.is_tensor(a) else torch.full_like(cond, float(a), dtype=torch.float64)
    b = b if torch.is_tensor(b) else torch.full_like(cond, float(b), dtype=torch.float64)
    return torch.where(cond, a, b)


@lru_cache(maxsize=None)
def _scalar(value: float, dtype: torch.dtype) -> torch.Tensor:
    """A cached 0-d tensor: creating one per call costs as much as the operation itself."""
    return torch.tensor(value, dtype=dtype)


def _heaviside(u, h0):
    """H(u) with H(0) = h0, as (1 + sign u)/2: torch.heaviside is an order of magnitude slower on CPU
    (torch 2.13, a (20, 1e4) tensor: 2.5 vs 0.15 ms), and the step function is the slope of every
    ReLU-like network.  The values equal torch.heaviside's except at NaN (1/2 instead of 0, where a
    NaN pre-activation has made the loss NaN already)."""
    step = torch.sign(u).add_(1).mul_(0.5)
    if float(h0) != 0.5:
        step.masked_fill_(u == 0, float(h0))
    return step


def _maximum(a, b):
    if not torch.is_tensor(a):
        a, b = b, a
    return torch.maximum(a, b) if torch.is_tensor(b) else torch.clamp(a, min=float(b))


def _minimum(a, b):
    if not torch.is_tensor(a):
        a, b = b, a
    return torch.minimum(a, b) if torch.is_tensor(b) else torch.clamp(a, max=float(b))


def _exact_softplus(u):
    """log(1 + e^u), the identity only where that is exact in float64 (module docstring)."""
    return torch.nn.functional.softplus(u, threshold=37.0)


def _all_finite(u) -> bool:
    """Whether every entry of ``u`` is finite (one sum: inf and NaN propagate; a sum that overflows only
    costs the compiler's slow path), read as a Python float (``torch.isfinite`` on the 0-d sum costs
    twice the sum itself: 12 us per call, once per activation call of every training step).  A tensor
    under ``torch.func.vmap`` cannot be branched on: False, and the slow path (``torch.where`` on
    every entry) computes the same values."""
    if not torch.is_tensor(u):
        return bool(np.isfinite(np.sum(u)))
    try:
        return math.isfinite(u.detach().sum().item())
    except RuntimeError:  # data-dependent control flow inside vmap
        return False


def _power(a, b):
    if isinstance(b, int) and b < 0:
        return 1.0 / torch.pow(a, -b)
    return torch.pow(a, b)


TORCH = Backend(
    name="torch",
    constant=lambda c: float(c),
    functions={
        sp.exp: _safe_exp, sp.log: _numpy_when_plain(np.log, torch.log), sp.sin: torch.sin, sp.cos: torch.cos,
        sp.tan: torch.tan, sp.sinh: torch.sinh, sp.cosh: torch.cosh, sp.tanh: _numpy_when_plain(np.tanh, torch.tanh),
        sp.sech: _sech, sp.coth: lambda u: 1 / torch.tanh(u),
        sp.csch: lambda u: 1 / torch.sinh(u), sp.erf: torch.special.erf, sp.erfc: torch.special.erfc,
        sp.atan: torch.atan, sp.asinh: torch.asinh, sp.Abs: torch.abs, sp.sign: torch.sign,
    },
    power=_power,
    where=_where,
    softplus=_exact_softplus,
    sigmoid=torch.sigmoid,
    comparisons={k: _as_tensor_op(v) for k, v in _COMPARE.items()},
    logical={sp.And: lambda *a: _reduce(torch.logical_and, a), sp.Or: lambda *a: _reduce(torch.logical_or, a),
             sp.Not: torch.logical_not},
    maximum=_maximum,
    minimum=_minimum,
    heaviside=_heaviside,
    all_finite=_all_finite,
    edges=lambda: torch.tensor([-np.inf, np.inf, np.nan], dtype=torch.float64),
)


def _reduce(op, items):
    out = items[0]
    for item in items[1:]:
        out = op(out, item)
    return out


register_backend(TORCH)


def _on_arrays(torch_function: Callable[[torch.Tensor], torch.Tensor], numpy_function: Callable) -> Callable:
    """``numpy_function`` computed by torch's vectorized kernel on a numpy array's memory (a float64
    array; anything else, a number included, goes to ``numpy_function``)."""
    def apply(u):
        if isinstance(u, np.ndarray) and u.dtype == np.float64:
            return torch_function(torch.from_numpy(np.require(u, requirements=("C", "W")))).numpy()
        return numpy_function(u)
    return apply


#: numpy arrays in and out, each primitive from the faster library (module docstring); the
#: trainers of numerics.networks and numerics.stable_rank and the quadratures of
#: numerics.infinite_width evaluate sigma and sigma' with it
ARRAYS = replace(
    NUMPY, name="arrays",
    functions={**NUMPY.functions, **{f: _on_arrays(t, NUMPY.functions[f]) for f, t in (
        (sp.erf, torch.special.erf), (sp.erfc, torch.special.erfc), (sp.sin, torch.sin), (sp.cos, torch.cos))}},
    softplus=_on_arrays(_exact_softplus, NUMPY.softplus), sigmoid=_on_arrays(torch.sigmoid, NUMPY.sigmoid))
register_backend(ARRAYS)


def sigma_and_slope(act: Activation) -> Callable[[np.ndarray], tuple]:
    r""":math:`(\sigma(z), \sigma'(z))` in one pass on numpy arrays (:data:`ARRAYS`): a subexpression the two
    share is evaluated once (erf(x/sqrt 2) of GELU, the sigmoid of SiLU, the exp of ELU), each value the
    same number the separate programs give.  The trainers take both at the same pre-activations every
    step (on the (10, 100, 50) pre-activations of the Frei batch ~0.12 ms where numpy/scipy's primitives
    take 0.35-0.5 ms, one-step-collapse of sin 2.1 -> 1.1 s)."""
    return compile_expressions([act.bound, act.derivative(1)], ARRAYS.name)


@lru_cache(maxsize=128)
def _compiled(expr: sp.Expr) -> Callable:
    return compile_expression(expr, "torch")


def torch_activation(act: Activation, derivative: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """:math:`\\sigma^{(n)}` as a torch function (n = 0 or 1; higher derivatives via autograd).

    Raises :class:`IbcheckError` when the derivative is a distribution (ReLU'' has a point
    mass) or uses a function torch does not have.
    """
    if derivative not in (0, 1, 2):
        raise IbcheckError("torch_activation builds sigma, sigma' or sigma'' only")
    expr = act.bound if derivative == 0 else act.derivative(derivative)
    if expr.has(sp.DiracDelta):
        raise IbcheckError(f"{act.label}: sigma^({derivative}) has a point mass; it has no pointwise values")
    fn = _compiled(expr)

    def apply(u: torch.Tensor) -> torch.Tensor:
        return _full(fn(u), u)
    return apply


def _full(out, u: torch.Tensor) -> torch.Tensor:
    """What a compiled program returned for ``u``, as a tensor of u's shape (a constant piece, e.g. the
    slope of a linear activation, comes back as a number)."""
    return out if torch.is_tensor(out) and out.shape == u.shape else torch.broadcast_to(
        torch.as_tensor(out, dtype=u.dtype), u.shape).clone()


@lru_cache(maxsize=128)
def _compiled_pair(value: sp.Expr, slope: sp.Expr) -> Callable:
    return compile_expressions([value, slope], "torch")


def torch_sigma_and_slope(act: Activation) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    r""":math:`(\sigma(u), \sigma'(u))` as torch tensors of u's shape from one program: a subexpression
    the two share is evaluated once (as :func:`sigma_and_slope` on arrays), every value the one
    ``torch_activation(act)`` and ``torch_activation(act, 1)`` give.  Raises :class:`IbcheckError` where
    sigma' has a point mass."""
    slope = act.derivative(1)
    if slope.has(sp.DiracDelta):
        raise IbcheckError(f"{act.label}: sigma^(1) has a point mass; it has no pointwise values")
    program = _compiled_pair(act.bound, slope)

    def apply(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value, derivative = program(u)
        return _full(value, u), _full(derivative, u)
    return apply
