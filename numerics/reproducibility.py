"""Seeds and the record of what produced a number (versions, machine, thread policy).

torch is imported inside the functions that need it, so that importing this module (the command
line does) costs nothing.
"""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np

from . import threads


def generators(seed: int):
    """Independent numpy and torch generators (``np.random.Generator``, ``torch.Generator``) derived from one seed."""
    import torch

    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return rng, gen


def environment() -> dict:
    """Package versions, machine facts and the thread policy recorded next to every result."""
    import torch

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
        "cpus": threads.available_cpus(), "torch_threads": torch.get_num_threads(), **threads.describe(),
    }
