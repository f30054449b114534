"""Values as short text for tables: numbers to 4 significant digits, long text cut with an ellipsis.

Tables show these; the JSON report keeps every value in full.
"""

from __future__ import annotations

import re

VERDICT_LABELS = {"agrees": "agrees", "disagrees": "disagrees", "inconclusive": "inconclusive",
                  "not_applicable": "n/a", "error": "error"}

#: the header of :func:`criteria_rows`
CRITERIA_HEADER = ["role", "criterion", "prediction", "estimate", "95% interval", "accepted", "outcome"]


def verdict_label(result) -> str:
    """``agrees``, ``inconclusive (no power)``, ``n/a``, ..."""
    label = VERDICT_LABELS.get(result.verdict, result.verdict)
    kind = getattr(result, "inconclusive_kind", None)
    return f"{label} ({kind.replace('_', ' ')})" if kind else label


def criteria_rows(result) -> list[list[str]]:
    """The table under a check's verdict: judged criteria, reported ones, the control, the premises."""
    def interval(low, high) -> str:
        return number(low) if low == high else f"[{number(low)}, {number(high)}]"

    rows = []
    for role, criterion in [("judged" if c.judged else "reported, not part of the claim", c) for c in result.criteria] + \
            ([("control", result.control)] if result.control is not None else []):
        m = criterion.measurement
        outcome = criterion.outcome if role != "control" else \
            ("rejected" if criterion.outcome == "fail" else "not rejected")
        rows.append([role, criterion.name, short(criterion.prediction, 60), number(m.estimate)
                     + (f" (n = {m.n})" if m.n > 1 else ""), interval(*m.interval),
                     criterion.tolerance.text, outcome])
    for premise in result.premises:
        rows.append(["premise", premise.name, "", short(premise.measured, 60), "", premise.note,
                     "holds" if premise.holds else "fails"])
    return rows


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


def latex_text(text) -> str:
    """``text`` safe inside ``\\text{...}`` (LaTeX's special characters escaped)."""
    out = str(text)
    for char, replacement in (("\\", "\u29f5"), ("{", r"\{"), ("}", r"\}"), ("_", r"\_"), ("^", r"\hat{}"),
                              ("#", r"\#"), ("%", r"\%"), ("&", r"\&"), ("$", r"\$"), ("~", r"\sim ")):
        out = out.replace(char, replacement)
    return out


def latex_table(header: list[str], rows: list[list[str]]) -> str:
    """A MathJax-friendly table: ``$$\\begin{array}{l...}`` with every cell as text."""
    def line(cells):
        return " & ".join(f"\\text{{{latex_text(cut(c, 60))}}}" for c in cells)

    body = " \\\\ ".join([line(header)] + [line(r) for r in rows])
    return f"$$\\begin{{array}}{{{'l' * len(header)}}} {body} \\end{{array}}$$"
