"""Values as short text for tables: numbers to 4 significant digits, long text cut with an ellipsis.

Tables show these; the JSON report keeps every value in full.
"""

from __future__ import annotations

import re

VERDICT_LABELS = {"agrees": "agrees", "disagrees": "disagrees", "not_applicable": "n/a", "error": "error"}


def number(value: float) -> str:
    return f"{value:.4g}"


def short(value, width: int = 48, items: int = 4) -> str:
    """A compact one-line rendering of a check's prediction / measured / tolerance value:
    numbers to 4 significant digits, the first ``items`` entries of lists, cut at ``width``."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = number(value)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, (list, tuple)):
        more = f", \u2026 ({len(value)} values)" if len(value) > items else ""
        text = "[" + ", ".join(short(v, width, items) for v in value[:items]) + more + "]"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={short(v, width, items)}" for k, v in value.items())
    else:
        text = str(value)
    return cut(text, width)


def cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def full(value) -> str:
    """The value for a verdict table: the same style, longer (the JSON report has every digit)."""
    return short(value, width=400, items=8)


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def slug(text: str) -> str:
    """An id-safe version of ``text`` (letters, digits, dash)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"
