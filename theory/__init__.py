"""ibcheck's symbolic layer: what the theory predicts for an activation.

Public API::

    from theory import activation, derive, fourier_transform, spectral_weight, kernel, gaussian_kernel

    relu = activation("relu")                  # a built-in (see BUILTINS)
    mish = activation("x*tanh(log(1+exp(x)))") # any formula in x, parsed without eval
    print(derive(relu).to_text())              # the derivation, step by step

Everything here uses sympy and mpmath only; ``theory`` never imports ``numerics``.
"""

from .activations import BUILTINS, Activation, builtin_names, get_activation
from .derivation import Derivation, Section, Step
from .derive import derive, register_section
from .errors import IbcheckError, TimeLimitExceeded, Unsupported
from .fourier import FourierResult, fourier_transform
from .gaussian_kernels import GaussianKernel, gaussian_kernel
from .kernels import Kernel, kernel
from .parsing import parse_activation
from .penalty import null_space_order, radon_operator, spectral_weight


def activation(text: str, **params) -> Activation:
    """A built-in name (``"relu"``), a built-in call (``"leaky_relu(a=0.2)"``) or a formula in ``x``.

    Keyword arguments give parameter values: for a built-in, its parameters
    (``activation("elu", alpha=2)``); for a formula, its declared parameters
    (``activation("x*tanh(b*x)", b=2)``).
    """
    if text.strip() in BUILTINS:
        return get_activation(text.strip(), **params)
    return parse_activation(text, params or None)


__all__ = [
    "Activation", "BUILTINS", "Derivation", "FourierResult", "GaussianKernel", "IbcheckError", "Kernel", "Section",
    "Step", "TimeLimitExceeded", "Unsupported", "activation", "builtin_names", "derive", "fourier_transform",
    "gaussian_kernel", "get_activation", "kernel", "null_space_order", "parse_activation", "radon_operator",
    "register_section", "spectral_weight",
]
