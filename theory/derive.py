r"""Assemble the full derivation for one activation: what ``ibcheck derive`` prints.

A derivation is a list of sections.  The first, :func:`spectral_section`, is the kernel-regime
theory: transform, spectral weight, null space, Radon operator and kernel.  Other topics
(adaptive-regime conditions, rank and margin constants) live in the modules named in
:data:`SECTION_MODULES`; each registers a builder with :func:`register_section`
(``builder(activation, dim) -> Section | None``; None when the topic does not apply), and the
sections follow in registration order.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Callable

import sympy as sp

from .activations import Activation
from .derivation import Derivation, Section, name
from .errors import TimeLimitExceeded, Unsupported
from .fourier import FourierResult, fourier_transform
from .kernels import check_dimension, direction_averaged_kernel, kernel
from .penalty import null_space_order, radon_operator, small_frequency_coefficient, spectral_weight
from .symbols import omega as W

SectionBuilder = Callable[[Activation, int], "Section | None"]
SECTIONS: list[tuple[str, SectionBuilder]] = []

#: modules whose import registers further derivation sections
SECTION_MODULES: tuple[str, ...] = ("theory.rank", "theory.dynamics")


def register_section(name: str, builder: SectionBuilder) -> None:
    """Add a topic to every derivation (idempotent by name)."""
    if all(existing != name for existing, _ in SECTIONS):
        SECTIONS.append((name, builder))


def spectral_section(act: Activation, dim: int, ft: FourierResult | None = None) -> Section:
    r"""Transform, :math:`W(\omega)` in dimension d, null space, Radon operator and kernel."""
    ft = ft or fourier_transform(act)
    section = Section("Generalized Fourier transform and kernel-regime spectral penalty")
    section.steps.extend(ft.steps)
    results = section.results
    results.update({
        "fourier_transform": ft.regular, "spectral_weight": None, "null_space_order": None,
        "kernel": None, "transform_status": ft.status,
    })
    if ft.status == "not_applicable":
        return section
    if ft.pure_point_masses:
        results["spectral_weight"] = sp.oo
        section.step("Away from the spike frequencies |sigma_hat|^2 = 0, so W is infinite there: with a "
                     "fixed first-layer norm the kernel regime can only produce those frequencies "
                     "(with a random norm rho, W(omega) ~ |omega|^(d-1) / q_R(|omega|): random Fourier features).",
                     sp.oo)
        return section
    if ft.regular is None:
        section.step("With no closed-form transform, the spectral weight W(omega) = |omega|^(d-1) / "
                     "|sigma_hat(omega)|^2 is evaluated numerically from the quadrature transform.")
        return section
    try:
        weight = spectral_weight(ft, dim)
    except (Unsupported, TimeLimitExceeded) as err:
        section.step(f"No closed-form spectral weight: {err}.")
        return section
    results["spectral_weight"] = weight
    section.step(f"Spectral weight at fixed first-layer norm rho (d = {dim}): W(omega) = "
                 "|omega|^(d-1) rho^2 / |sigma_hat(omega/rho)|^2; at rho = 1:",
                 sp.Eq(name("W(omega)", r"W(\omega)"), weight))
    try:
        m = null_space_order(ft)
        results["null_space_order"] = m
        jump = small_frequency_coefficient(ft, m) if ft.regular is not None else None
        section.step(f"Near omega = 0, (i omega)^{m} sigma_hat(omega) -> {jump}, so W ~ omega^{2 * m} (d = 1): "
                     f"the penalty ignores polynomials of degree < {m} (null space order m = {m}).",
                     sp.Eq(sp.Limit((sp.I * W) ** m * name("sigma_hat(omega)", r"\hat\sigma(\omega)"), W, 0), jump))
    except (Unsupported, TimeLimitExceeded) as err:
        section.step(f"The null-space order could not be determined: {err}.")
    try:
        op = radon_operator(ft, dim)
        formula = op.differential if op.differential is not None else op.multiplier
        section.step(f"Radon-domain operator D_sigma^(-1) Lambda^(d-1): Fourier symbol |t|^(d-1)/sigma_hat(t); "
                     f"{op.description}.", formula)
        results["radon_operator"] = formula
    except Unsupported as err:
        section.step(f"No Radon-domain operator: {err}.")
    try:
        k = kernel(ft)
        results["kernel"] = k.expr
        results["kernel_method"] = k.how
        if dim > 1:
            radial = direction_averaged_kernel(k, dim)
            results["kernel"] = radial
            section.step(f"In d = {dim} with uniform directions the kernel is K(x, x') = E_theta k(theta . (x - x'))"
                         + (f", a function of D = |x - x'| (closed form for the power law {k.expr})."
                            if radial is not None else "; no closed form: average k numerically over directions."),
                         sp.Eq(name("K(D)", "K(D)"), radial) if radial is not None else None)
        elif k.expr is not None:
            section.step(f"Infinite-width random-feature kernel (flat offsets, rho = 1), {k.how}; "
                         f"conditionally positive definite of order {k.order}, defined up to even "
                         f"polynomials of degree <= {max(2 * k.order - 2, 0)}. Checked against the "
                         f"finite-part Fourier integral: max relative error "
                         f"{k.verification['max_relative_error']:.1e}.", sp.Eq(name("k(D)", "k(D)"), k.expr))
            results["kernel_verification"] = k.verification
        else:
            section.step("No closed-form kernel; k(D) is computed by the finite-part Fourier integral "
                         "of |sigma_hat|^2.")
    except (Unsupported, TimeLimitExceeded) as err:
        section.step(f"No kernel: {err}.")
    return section


@lru_cache(maxsize=128)
def derive(act: Activation, dim: int = 1) -> Derivation:
    """The derivation of every registered topic for ``act`` in input dimension ``dim``.

    Remembered per (activation, dimension) for the life of the process; treat it as read-only.
    """
    check_dimension(dim)
    ft = fourier_transform(act)
    sections = [spectral_section(act, dim, ft)]
    notes = []
    for module in SECTION_MODULES:
        importlib.import_module(module)
    for topic, builder in SECTIONS:
        try:
            section = builder(act, dim)
        except (Unsupported, TimeLimitExceeded) as err:
            notes.append(f"{topic}: {err}")
            continue
        if section is not None:
            sections.append(section)
    if ft.status == "not_applicable":
        notes.insert(0, ft.reason)
    verification = {}
    if ft.verification is not None:
        verification = {"frequencies": ft.verification.frequencies,
                        "max_relative_error": ft.verification.max_relative_error,
                        "tolerance": ft.verification.tolerance, "method": ft.verification.method,
                        "passed": ft.verification.passed}
    return Derivation(act.label, act.symbolic, ft.status, sections, verification, notes)

