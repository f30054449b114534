r"""Assemble the full derivation for one activation: what ``ibcheck derive`` prints.

A derivation is a list of sections.  The first, :func:`spectral_section`, is the kernel-regime
theory: transform, spectral weight, null space, Radon operator and kernel.  Other topics
(adaptive-regime conditions, rank and margin constants) live in the modules named in
:data:`SECTION_MODULES`; each registers a builder with :func:`register_section`
(``builder(activation, dim) -> Section | None``; None when the topic does not apply), and the
sections follow in registration order.

Each section fails alone: a section whose builder raises is kept, marked ``unavailable`` with
the reason, and the others are still derived.

The transform is exported as a whole distribution (:func:`whole_transform`): the regular part
(a Hadamard finite part at 0) plus its point masses, in a real frequency symbol so that
:math:`\delta(\omega + 1)` is not evaluated away.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Callable

import sympy as sp

from .activations import Activation, ensure_real_valued
from .derivation import Derivation, Section, name
from .errors import IbcheckError, TimeLimitExceeded, Unsupported
from .fourier import FourierResult, fourier_transform
from .kernels import check_dimension, direction_averaged_kernel, kernel
from .linearity import transform_by_linearity
from .penalty import null_space_order, radon_operator, small_frequency_coefficient, spectral_weight
from .symbols import omega as W
from .symbols import omega_real as OMEGA_REAL
from .symbols import x as X

SectionBuilder = Callable[[Activation, int], "Section | None"]
SECTIONS: list[tuple[str, SectionBuilder]] = []

#: modules whose import registers further derivation sections
SECTION_MODULES: tuple[str, ...] = ("theory.rank", "theory.dynamics")


SPECTRAL_TITLE = "Generalized Fourier transform and kernel-regime spectral penalty"


def register_section(name: str, builder: SectionBuilder) -> None:
    """Add a topic to every derivation (idempotent by name)."""
    if all(existing != name for existing, _ in SECTIONS):
        SECTIONS.append((name, builder))


def point_mass_expression(ft: FourierResult) -> sp.Expr:
    r""":math:`\sum_j c_j\,\delta^{(k_j)}(\omega - \omega_j)` in the real frequency symbol."""
    return sum((a.coefficient * (sp.DiracDelta(OMEGA_REAL - a.location, a.order) if a.order
                                 else sp.DiracDelta(OMEGA_REAL - a.location)) for a in ft.singular), sp.S.Zero)


def regular_on_line(ft: FourierResult) -> sp.Expr | None:
    r"""The regular part for every real :math:`\omega \ne 0`, in the real symbol ``omega``.

    The engine derives it for :math:`\omega > 0`; a real :math:`\sigma` has
    :math:`\hat\sigma(-\omega) = \overline{\hat\sigma(\omega)}`.  The formula is kept as it is when it
    satisfies that identity at a few frequencies (all built-ins do), else written piecewise."""
    if ft.regular is None:
        return None
    formula = ft.regular.subs(W, OMEGA_REAL)
    bound = formula.subs(ft.activation.substitutions())
    for value in (sp.Rational(3, 10), sp.Rational(17, 10), sp.Integer(4)):
        plus, minus = complex(bound.subs(OMEGA_REAL, value).evalf(20)), complex(bound.subs(OMEGA_REAL, -value).evalf(20))
        if abs(minus - plus.conjugate()) > 1e-12 * max(abs(plus), 1e-300):
            return sp.Piecewise((formula, OMEGA_REAL > 0), (sp.conjugate(formula.subs(OMEGA_REAL, -OMEGA_REAL)), True))
    return formula


def whole_transform(ft: FourierResult) -> sp.Expr | None:
    r"""The transform as one distribution: regular part (for :math:`\omega \ne 0`, a finite part at 0)
    plus point masses, in the real symbol ``omega``; None without a closed-form regular part."""
    if ft.regular is None:
        return None
    return regular_on_line(ft) + point_mass_expression(ft)


def _support(ft: FourierResult) -> list[sp.Expr]:
    """The nonzero frequencies |omega_j| > 0 that carry point masses, sorted."""
    return sorted({sp.Abs(a.location) for a in ft.singular if a.location != 0}, key=float)


def _transform_results(ft: FourierResult) -> dict:
    return {"fourier_transform": whole_transform(ft),
            "regular_part": regular_on_line(ft),
            "point_masses": [{"location": a.location, "order": a.order, "coefficient": a.coefficient}
                             for a in ft.singular],
            "spectral_weight": None, "null_space_order": None, "kernel": None, "transform_status": ft.status}


def spectral_section(act: Activation, dim: int, ft: FourierResult | None = None) -> Section:
    r"""Transform, :math:`W(\omega)` in dimension d, null space, Radon operator and kernel."""
    ft = ft or fourier_transform(act)
    section = Section(SPECTRAL_TITLE)
    section.steps.extend(ft.steps)
    results = section.results
    results.update(_transform_results(ft))
    if ft.status == "not_applicable":
        section.status, section.reason = "unavailable", ft.reason
        return section
    support = _support(ft)
    if ft.singular and ft.regular is not None and not ft.pure_point_masses:  # else step 1 shows it whole
        section.step("The whole transform: the regular part (a Hadamard finite part at omega = 0) plus "
                     "the point masses.", sp.Eq(name("sigma_hat(omega)", r"\hat\sigma(\omega)"), whole_transform(ft)))
    if ft.pure_point_masses:
        results["spectral_support"] = support
        section.step(f"The transform is supported on |omega| in {{{', '.join(map(str, support))}}} only: W(omega) "
                     "is infinite at every other frequency and undefined (a point mass) there. With a fixed "
                     "first-layer norm the kernel regime can only produce those frequencies (with a random "
                     "norm rho, W(omega) ~ |omega|^(d-1) / q_R(|omega|): random Fourier features).")
        results["kernel_unavailable"] = ("the transform is a sum of point masses (band-limited): no flat-offset "
                                         "kernel (the Gaussian-weight NNGP/NTK exist: --kernel gaussian)")
        return section
    if ft.regular is None:
        section.step("With no closed-form transform, the spectral weight W(omega) = |omega|^(d-1) / "
                     "|sigma_hat(omega)|^2 is evaluated numerically from the quadrature transform.")
        return section
    weight = spectral_weight(ft, dim)
    results["spectral_weight"] = weight
    away = f" away from the point masses at |omega| in {{{', '.join(map(str, support))}}}" if support else ""
    section.step(f"Spectral weight at fixed first-layer norm rho (d = {dim}){away}: W(omega) = "
                 "|omega|^(d-1) rho^2 / |sigma_hat(omega/rho)|^2; at rho = 1:",
                 sp.Eq(name("W(omega)", r"W(\omega)"), weight))
    try:
        m = null_space_order(ft)
        results["null_space_order"] = m
        jump = small_frequency_coefficient(ft, m)
        section.step(f"Near omega = 0, (i omega)^{m} sigma_hat(omega) -> {jump}, so W ~ omega^{2 * m + dim - 1} "
                     f"(d = {dim}): the penalty ignores polynomials of degree < {m} (null space order m = {m}).",
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
    if support:
        reason = ("the transform has point masses at omega != 0, so |sigma_hat|^2 (a square of deltas) is not "
                  "defined and the flat-offset random-feature kernel does not exist")
        results["kernel_unavailable"] = reason
        section.step(f"No flat-offset kernel: {reason}. The Gaussian-weight NNGP/NTK kernels do exist "
                     "(theory.gaussian_kernel).")
        return section
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
        results["kernel_unavailable"] = str(err)
        section.step(f"No kernel: {err}.")
    return section


def _as_activation(act) -> Activation:
    if isinstance(act, Activation):
        return act
    if isinstance(act, str):
        from .parsing import parse_activation

        return parse_activation(act)
    raise IbcheckError(f"derive takes an activation or its name/formula as a string, got {type(act).__name__}")


def _section(title: str, build: Callable[[], "Section | None"]) -> "Section | None":
    """``build()``, or an unavailable section with the reason when it raises.

    User-level failures (:class:`IbcheckError`) give their message; any other exception is an
    internal error, named as such so that it is reported rather than hidden.
    """
    try:
        return build()
    except IbcheckError as err:
        return Section.unavailable(title, str(err))
    except Exception as err:  # noqa: BLE001 - one section's bug must not hide the others
        return Section.unavailable(title, f"internal error ({type(err).__name__}: {err}); please report it")


def activation_transform(act: Activation) -> FourierResult:
    """The transform of ``act``, by linearity when the engine cannot take it whole (sin + relu)."""
    ft = fourier_transform(act)
    if ft.status in ("not_applicable", "numerical_only") and X in act.bound.free_symbols:
        summed = transform_by_linearity(act)
        if summed is not None:
            return summed
    return ft


@lru_cache(maxsize=128)
def derive(act: Activation | str, dim: int = 1) -> Derivation:
    """The derivation of every registered topic for ``act`` in input dimension ``dim``.

    ``act`` is an :class:`Activation` or a string (a built-in name, a call such as
    ``"leaky_relu(a=0.2)"``, or a formula in x).  Remembered per (activation, dimension) for the
    life of the process; treat it as read-only.
    """
    act = _as_activation(act)
    check_dimension(dim)
    ensure_real_valued(act)
    ft = activation_transform(act)
    spectral = _section(SPECTRAL_TITLE, lambda: spectral_section(act, dim, ft))
    if not spectral.results:  # the section failed: its keys are still there (derive.schema.json)
        spectral.results.update(dict.fromkeys(("fourier_transform", "regular_part", "spectral_weight",
                                               "null_space_order", "kernel")),
                                point_masses=[], transform_status=ft.status)
    sections = [spectral]
    notes = []
    for module in SECTION_MODULES:
        importlib.import_module(module)
    for topic, builder in SECTIONS:
        section = _section(topic, lambda: builder(act, dim))
        if section is None:
            continue
        if section.status != "available":
            notes.append(f"{topic}: {section.reason}")
        sections.append(section)
    if ft.status == "not_applicable":
        notes.insert(0, ft.reason)
    verification = {}
    if ft.verification is not None:
        verification = {"frequencies": ft.verification.frequencies,
                        "max_relative_error": ft.verification.max_relative_error,
                        "tolerance": ft.verification.tolerance, "method": ft.verification.method,
                        "passed": ft.verification.passed}
    return Derivation(act.label, act.symbolic, ft.status, sections, verification, notes,
                      parameters={p.symbol: v for p, v in act.values})
