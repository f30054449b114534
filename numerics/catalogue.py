"""The built-in activations (name, parameters, description) and checks (id, title, claim, option
names) as data, in report order, for ``ibcheck list``; and the run profiles.

Listing the checks from the registry would import every check module, and with them torch,
scipy's solvers and scikit-learn (seconds) for a command that prints twenty lines; listing the
activations from :data:`theory.BUILTINS` would import sympy (a third of a second).  These tables
are what ``ibcheck list`` prints instead; ``tests/test_imports.py`` asserts that they equal the
registry that :data:`numerics.checks.CHECK_MODULES` loads and :data:`theory.BUILTINS`, so that a
check or activation added, renamed or given new options without updating a table fails a test
rather than the listing.  After such a change, ``python -m numerics.catalogue`` prints the
tables to paste below.
"""

from __future__ import annotations

import sys

#: the run profiles: quick (minutes for the whole suite) or full (the notes' reference sizes)
PROFILES = ("quick", "full")

ACTIVATIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ('relu', (), 'rectified linear unit max(0, x)'),
    ('leaky_relu', ('a',), 'leaky ReLU, slope a for x < 0'),
    ('abs', (), 'absolute value |x|'),
    ('relu_k', ('k',), 'truncated power max(0, x)^k'),
    ('step', (), 'Heaviside step H(x)'),
    ('softplus', ('beta',), 'softplus log(1 + e^(beta x))/beta'),
    ('sigmoid', (), 'logistic sigmoid 1/(1 + e^-x)'),
    ('tanh', (), 'hyperbolic tangent'),
    ('erf', (), 'error function erf(x)'),
    ('gelu', (), 'GELU x Phi(x), Phi the standard normal CDF'),
    ('silu', (), 'SiLU / swish x sigmoid(x)'),
    ('elu', ('alpha',), 'ELU: x for x >= 0, alpha (e^x - 1) for x < 0'),
    ('gaussian', (), 'Gaussian bump exp(-x^2/2)'),
    ('sin', (), 'sine'),
    ('cos', (), 'cosine'),
    ('exp', (), 'exponential (not tempered: no Fourier transform)'),
)

CHECKS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ('transform', 'Generalized Fourier transform', 'P1', ()),
    ('fd-theorems', 'Functional dimension: theorems F1-F7 on random deep ReLU nets', 'F1-F7', ('architecture', 'trials')),
    ('fd-sampling', 'Functional dimension: CFFD by exact region enumeration and the sampling bound', 'F8-F9', ('architecture', 'scale', 'draws')),
    ('fd-training', 'Functional dimension during training (geometry-induced regularization)', 'F10-F13', ('seeds', 'mnist', 'dataset', 'epochs', 'architecture', 'n_train', 'n_test', 'device')),
    ('stable-rank', 'Stable rank per class and of the full matrix (Kou et al.)', 'stable_rank.md P1, P2, P8, P9, P14, P15', ('n', 'd', 'm', 'data', 'sigma0', 'eta', 'T', 'seeds')),
    ('margins', 'Loss constant, margin law, equal normalized margins, linear boundary', 'stable_rank.md P4-P7, P13', ('n', 'd', 'm', 'data', 'sigma0', 'eta', 'T', 'seeds')),
    ('one-step-collapse', 'One GD step collapses the rank at small init (Frei et al.)', 'stable_rank.md P11, P12', ('n', 'd', 'm', 'data', 'sigma0', 'eta', 'T', 'seeds')),
    ('rank-conditions', 'Barrier z* and never-activated pairs (generic activations)', 'stable_rank.md P16, Sec. 3', ('n', 'd', 'm', 'data', 'sigma0', 'eta', 'T', 'seeds')),
    ('kernel-fit-1d', 'Kernel regime in 1D: random features vs the exact infinite-width and the idealized prediction', 'P4, P5, P6', ('data', 'init', 'offset', 'rho', 'weight_scale', 'widths', 'seeds', 'spacing')),
    ('kernel-fit-2d', 'Kernel regime in 2D: random features vs the exact infinite-width and the idealized prediction', 'P7', ('data', 'init', 'offset', 'rho', 'weight_scale', 'widths', 'seeds', 'spacing')),
    ('kernel-training', 'Full training vs the exact infinite-width NTK prediction and the linearized model', 'kernel regime (2.1)', ('data', 'widths', 'seeds', 'steps', 'step_fraction', 'spacing')),
    ('kernel-rate', 'Spectral decay rates in the kernel regime', 'P8', ('width', 'seeds')),
    ('activation-specificity', 'Activation specificity: each network is closest to its own predicted interpolant', "the paper's core claim (spectral_bias.md 2, P4-P7)", ('activations', 'width', 'seeds', 'data', 'spacing')),
    ('design-round-trip', 'Activation design round trip: designed activations reproduce the requested penalty', 'spectral_bias.md 4, P8, P9', ('target', 'width', 'seeds')),
    ('pinning', 'Datapoint pinning (sign rule, pinned fractions; soft pinning)', 'P10, P11, P12', ('seeds', 'width', 'steps', 'step_size', 'init_scale', 'data', 'sharpness', 'field_steps')),
    ('zero-plane-clusters', 'Zero-plane clusters at data points', 'P13', ('seeds', 'width', 'steps', 'step_size', 'init_scale', 'data')),
    ('attractor-stability', 'Stability of zero-plane equilibria and pinned fixed points', '5.2, 5.4, 5.5', ('seeds', 'width', 'steps', 'step_size', 'init_scale', 'data', 'field_steps')),
    ('digits-zero-planes', 'Zero-planes through digit images', 'MNIST stand-in', ('seeds', 'images', 'width', 'steps', 'step_size', 'init_scale')),
)


def from_registry() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The table as the registry has it (imports every check module: seconds): the checks of
    :data:`~numerics.checks.CHECK_MODULES`, in that order (the order a fresh process registers them)."""
    from . import checks

    def rank(check) -> int | None:  # the CHECK_MODULES entry its code lives in (a module or a package)
        module = getattr(check.run, "__module__", "") or ""
        return next((index for index, name in enumerate(checks.CHECK_MODULES)
                     if module == name or module.startswith(name + ".")), None)

    registered = [c for c in checks.all_checks().values() if rank(c) is not None]
    return [(c.id, c.title, c.claim, tuple(c.options)) for c in sorted(registered, key=rank)]


def activations_from_theory() -> list[tuple[str, tuple[str, ...], str]]:
    """The activation table as :data:`theory.BUILTINS` has it (imports sympy)."""
    from theory.activations import BUILTINS

    return [(spec.name, spec.parameters, spec.description) for spec in BUILTINS.values()]


def listed_checks() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The catalogue, then any check registered at run time that it does not name (a plug-in, a test;
    registering one imports :mod:`numerics.checks`, so without that module there is none)."""
    checks = sys.modules.get(f"{__package__}.checks")
    registered = checks.REGISTRY.values() if checks is not None else ()
    known = {entry[0] for entry in CHECKS}
    return list(CHECKS) + [(c.id, c.title, c.claim, tuple(c.options)) for c in registered if c.id not in known]


if __name__ == "__main__":
    for table, entries in (("ACTIVATIONS", activations_from_theory()), ("CHECKS", from_registry())):
        print(f"{table} = (")
        for entry in entries:
            print(f"    {entry!r},")
        print(")")
