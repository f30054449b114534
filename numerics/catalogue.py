"""The built-in checks as data (id, title, claim, option names), in report order, for ``ibcheck list``.

Listing the checks from the registry would import every check module, and with them torch,
scipy's solvers and scikit-learn (seconds) for a command that prints twenty lines.  This table
is what ``ibcheck list`` prints instead; ``tests/test_imports.py`` asserts that it equals the
registry that :data:`numerics.checks.CHECK_MODULES` loads, so that a check added, renamed or
given new options without updating this table fails a test rather than the listing.  After such
a change, ``python -m numerics.catalogue`` prints the table to paste below.
"""

from __future__ import annotations

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


def listed_checks() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """The catalogue, then any check registered at run time that it does not name (a plug-in, a test)."""
    from .checks import REGISTRY

    known = {entry[0] for entry in CHECKS}
    return list(CHECKS) + [(c.id, c.title, c.claim, tuple(c.options)) for c in REGISTRY.values() if c.id not in known]


if __name__ == "__main__":
    for entry in from_registry():
        print(f"    {entry!r},")
