"""Mathematics in derivation prose is typeset; words stay words (theory/prose.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.prose import typeset_prose

CASES = [
    ("W ~ omega^4 (d = 1)", r"$W \sim \omega ^{4} (d = 1)$"),
    ("F[delta^j(x - c)] = (i omega)^j", r"$F[\delta ^{j}(x - c)] = (i \omega )^{j}$"),
    ("Verified F[sigma^(2)] against quadrature", r"Verified $F[\sigma ^{(2)}]$ against quadrature"),
    ("Divide by (i omega)^2 for omega != 0.", r"Divide by $(i \omega )^{2}$ for $\omega \neq 0$."),
    ("the smooth part is integrable: m = 2.", "the smooth part is integrable: $m = 2$."),
    ("A sigma'' > 0 on the stable branch", r"A $\sigma '' > 0$ on the stable branch"),
    ("sigma_hat(omega) is tempered", r"$\hat{\sigma }(\omega )$ is tempered"),
    ("a (1+x^2)^2-weighted spline", "a $(1+x^{2})^{2}$-weighted spline"),
    ("W ~ |omega|^(d+3)", r"$W \sim |\omega |^{d+3}$"),
    ("I think a beta function is O(1)", r"I think a $\beta$ function is $O(1)$"),
]


@pytest.mark.parametrize("plain, typeset", CASES)
def test_mathematical_spans_become_inline_math(plain, typeset):
    assert typeset_prose(plain) == typeset


def test_latex_delimiters():
    assert typeset_prose("W ~ omega^4", (r"\(", r"\)")) == r"\(W \sim \omega ^{4}\)"


WORDS = st.lists(st.sampled_from(["the", "kernel", "regime", "is", "integrable", "spline", "penalty", "a", "of",
                                  "distributions", "weighted", "Divide", "Spectral", "weight", "norm"]),
                 min_size=1, max_size=12).map(" ".join)


@given(WORDS)
def test_plain_english_is_never_touched(sentence):
    assert typeset_prose(sentence) == sentence


@given(WORDS, st.sampled_from(["omega^4", "x^k", "sigma'", "rho = 1", "(i omega)^2"]), WORDS)
def test_math_between_words_is_one_balanced_span(before, math, after):
    out = typeset_prose(f"{before} {math} {after}")
    assert out.startswith(before + " $") and out.endswith("$ " + after)
    assert out.count("$") == 2 and out.count("{") == out.count("}")
    assert re.sub(r"\$[^$]*\$", "", out) == f"{before}  {after}"
