"""A derivation displays in Jupyter as HTML, Markdown and LaTeX: math typeset consistently, list
items keep their formulas, Heaviside written so that it clashes with nothing (theta is w / rho)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import sympy as sp

import theory
from numerics.report.mathml import to_mathml


@pytest.fixture(scope="module")
def relu():
    return theory.derive("relu")


def test_markdown_formulas_stay_inside_their_list_items_past_step_nine(relu):
    lines = relu.to_markdown().splitlines()
    for index, line in enumerate(lines):
        item = re.match(r"(\d+)\. ", line)
        if item and index + 2 < len(lines) and lines[index + 2].lstrip().startswith("$$"):
            # CommonMark: a continuation belongs to the item when indented by the marker's width
            assert lines[index + 2].startswith(" " * len(item[0]) + "$$"), lines[index + 2]
    assert any(line.startswith("10. ") for line in lines)


def test_no_ascii_math_in_the_typeset_prose(relu):
    markdown = relu.to_markdown()
    prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", "", markdown)  # what is left outside math and code
    assert "omega^4" not in prose and "omega" not in re.sub(r"^- \w+:.*$", "", prose, flags=re.M)
    assert r"$W \sim \omega ^{4} (d = 1)$" in markdown


def test_heaviside_is_step_not_theta():
    step = theory.derive("step")
    assert r"\operatorname{step}\left(x\right)" in step.to_markdown()
    assert r"\theta" not in step.to_latex().split("Adaptive regime")[0].replace(r"\theta =", "")
    mathml = to_mathml(sp.Heaviside(sp.Symbol("x")))
    assert ">step<" in mathml and "\u03b8" not in mathml


class _Tags(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.tags, self.depth, self.balanced = [], 0, True
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.depth += 1

    def handle_endtag(self, tag):
        self.depth -= 1
        self.balanced &= self.depth >= 0


def test_html_display_is_well_formed_with_math_delimiters(relu):
    text = relu._repr_html_()
    tags = _Tags(text)
    assert tags.balanced and tags.depth == 0 and "script" not in tags.tags
    steps = list(relu.numbered_steps())
    assert tags.tags.count("li") == len(steps)
    assert text.count(r"\[") == text.count(r"\]") == 1 + sum(1 for _, _, s in steps if s.formula is not None)
    assert r"\(W \sim \omega ^{4} (d = 1)\)" in text


def test_latex_display_is_one_balanced_mathjax_array(relu):
    latex = relu._repr_latex_()
    assert latex.startswith("$$\\begin{array}{l}") and latex.endswith("\\end{array}$$")
    unescaped = latex.replace("\\{", "").replace("\\}", "")
    assert unescaped.count("{") == unescaped.count("}")
    assert "\\text{10. " in latex


def test_a_formula_with_markup_characters_is_escaped_in_html():
    derivation = theory.derive(theory.activation("x/(1+abs(x))"))
    text = derivation._repr_html_()
    assert "<code>x/(1 + Abs(x))</code>" in text or "<code>x/(1+abs(x))</code>" in text
    assert _Tags(text).balanced


def test_latex_spellings_do_not_depend_on_what_ran_before():
    """Named quantities share one global LaTeX table: deriving an architecture first must not
    change an activation's derivation (it did: f(x) became f_theta(x) in pooled workers)."""
    from theory.derivation import name
    from theory.functional_dimension import derive_architecture

    before = theory.derive("relu").to_latex()
    derive_architecture("4-8-8-1").to_latex()
    assert theory.derive("relu").to_latex() == before
    with pytest.raises(ValueError, match="already spelled"):
        name("W(omega)", r"\mathcal{W}(\omega)")
