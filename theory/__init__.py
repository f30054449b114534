"""ibcheck's symbolic layer: what the theory predicts for an activation.

Public API::

    from theory import activation, derive, fourier_transform, spectral_weight, kernel, gaussian_kernel

    relu = activation("relu")                  # a built-in (see BUILTINS)
    mish = activation("x*tanh(log(1+exp(x)))") # any formula in x, parsed without eval
    print(derive(relu).to_text())              # the derivation, step by step

Everything here uses sympy and mpmath only; ``theory`` never imports ``numerics``.
"""

import importlib
import importlib.util
import sys
import types

from .errors import IbcheckError, TimeLimitExceeded, Unsupported

#: the public names and the submodules that define them, imported at first use (PEP 562):
#: ``import theory`` (and ``theory.errors``, which every layer imports) costs no sympy, so that
#: ``ibcheck list`` and ``--help`` start in a fraction of a second (issue 18)
_PUBLIC = {
    "Activation": "activations", "BUILTINS": "activations", "builtin_names": "activations",
    "get_activation": "activations", "Derivation": "derivation", "Section": "derivation", "Step": "derivation",
    "derive": "derive", "register_section": "derive", "FourierResult": "fourier", "fourier_transform": "fourier",
    "GaussianKernel": "gaussian_kernels", "gaussian_kernel": "gaussian_kernels", "Kernel": "kernels",
    "kernel": "kernels", "parse_activation": "parsing", "null_space_order": "penalty",
    "radon_operator": "penalty", "spectral_weight": "penalty",
}


def activation(text: str, **params) -> "Activation":
    """A built-in name (``"relu"``), a built-in call (``"leaky_relu(a=0.2)"``) or a formula in ``x``.

    Keyword arguments give parameter values: for a built-in, its parameters
    (``activation("elu", alpha=2)``); for a formula, its declared parameters
    (``activation("x*tanh(b*x)", b=2)``).
    """
    from .activations import BUILTINS, get_activation
    from .parsing import parse_activation

    if text.strip() in BUILTINS:
        return get_activation(text.strip(), **params)
    return parse_activation(text, params or None)


class _Package(types.ModuleType):
    """The module type of ``theory``: public names load on first use, and a submodule of the same
    name never replaces them (importing ``theory.derive`` leaves ``theory.derive`` the function;
    the import system sets a package attribute for every submodule it loads)."""

    def __getattr__(self, name: str):
        if name in _PUBLIC:
            value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            value = importlib.import_module(f"{__name__}.{name}")  # a submodule, as after the eager imports
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        if name in _PUBLIC and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_PUBLIC))


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Activation", "BUILTINS", "Derivation", "FourierResult", "GaussianKernel", "IbcheckError", "Kernel", "Section",
    "Step", "TimeLimitExceeded", "Unsupported", "activation", "builtin_names", "derive", "fourier_transform",
    "gaussian_kernel", "get_activation", "kernel", "null_space_order", "parse_activation", "radon_operator",
    "register_section", "spectral_weight",
]
