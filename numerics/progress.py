"""Progress bars for long work: shown on a terminal, silent otherwise.

``IBCHECK_PROGRESS=1`` forces them on (``0`` forces them off), e.g. for a log file.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def enabled() -> bool:
    forced = os.environ.get("IBCHECK_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def progress(total: int | None = None, desc: str = "", unit: str = "it", leave: bool = False) -> tqdm:
    """A tqdm bar on stderr (disabled when not a terminal); use as a context manager."""
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, disable=not enabled(), file=sys.stderr,
                dynamic_ncols=True)
