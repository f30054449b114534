"""Seeds and the record of what produced a number (versions, machine)."""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np
import torch


def generators(seed: int) -> tuple[np.random.Generator, torch.Generator]:
    """Independent numpy and torch generators derived from one seed."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return rng, gen


def environment() -> dict:
    """Package versions and machine facts recorded next to every result."""
    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "ibcheck": version("ibcheck"), "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__, "sympy": version("sympy"),
        "mpmath": version("mpmath"), "scipy": version("scipy"), "matplotlib": version("matplotlib"),
        "scikit-learn": version("scikit-learn"), "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }
