"""book/_ext/glass_sm_sphinx.py: formulas rendered offline by matplotlib mathtext (the book's math renderer)."""

from __future__ import annotations

import pytest

import glass_sm_sphinx as ext


@pytest.mark.parametrize("tex", [r"\lvert x \rvert \ge \tfrac{1}{2}", "a\n + b \\label{eq}", r"\theta_{\rm fc}"])
def test_math_renders_offline(tex):
    svg, width, height, depth = ext.render_math_svg(tex)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert width > 0 and height > 0 and depth >= 0


def test_tex_mathtext_lacks_is_rewritten():
    assert ext.normalize_tex(r"\lvert x\rvert \le 1 \label{e}") == r"| x| \leq 1"
    assert ext.normalize_tex("a\n  \\ne b") == r"a \neq b"


def test_aligned_display_math_becomes_one_line_each():
    assert ext._display_lines(r"\begin{aligned} a &= b \\ c &= d \end{aligned}") == ["a  = b", "c  = d"]


def test_round_author_year_style_uses_round_brackets():
    style = ext.RoundAuthorYearReferenceStyle()
    assert (style.bracket_parenthetical.left, style.bracket_textual.right) == ("(", ")")
