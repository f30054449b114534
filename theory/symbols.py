"""The shared symbols of the symbolic layer.

``x`` is the activation's argument, ``omega`` the frequency (Fourier convention
:math:`\\hat\\sigma(\\omega) = \\int \\sigma(u) e^{-i\\omega u}\\,du`), ``D`` the offset between
two inputs in a kernel :math:`k(x, x') = k(D)`, ``D = x - x'``, ``rho`` a first-layer weight norm.
"""

import sympy as sp

x = sp.Symbol("x", real=True)
omega = sp.Symbol("omega", positive=True)
#: the frequency on the whole line: exported transforms use it, so that delta(omega + 1) is kept
omega_real = sp.Symbol("omega", real=True)
D = sp.Symbol("D", real=True)
rho = sp.Symbol("rho", positive=True)
t = sp.Symbol("t", real=True)
