"""Sphinx extension of the glass-sm book (``book/_config.yml``: ``sphinx.local_extensions``).

- ``html_math_renderer = 'mathtext'``: every formula is rendered at build time by matplotlib's mathtext (a LaTeX
  subset, no LaTeX installation) into an SVG embedded as a ``data:`` image, so the pages load no MathJax from a
  CDN. A formula mathtext cannot parse is a build warning (an error under ``-W``) naming the page, and is shown as
  its TeX source.
- ``bibtex_reference_style = 'author_year_round'``: sphinxcontrib-bibtex's author-year style with round brackets,
  "(Zhang et al., 2025)" and "Zhang et al. (2025)".
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import re
from pathlib import Path

import matplotlib
from docutils import nodes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser
from sphinx.locale import _ as translate
from sphinx.util import logging as sphinx_logging
from sphinx.util.math import get_node_equation_number
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

__all__ = ["normalize_tex", "render_math_svg", "RoundAuthorYearReferenceStyle", "setup"]

MATH_FONT_PT = 12.0  # size the formulas are rendered at; the HTML scales them with the text (em units)
DISPLAY_SCALE = 1.25  # display formulas a little larger than the text, as TeX's display style
_MATH_CSS = """/* glass_sm_sphinx: math rendered at build time by matplotlib mathtext into SVG images */
img.math { display: inline; margin: 0 0.1em; }
div.math > p { flex-grow: 1; margin: 0.5em 0; text-align: center; }
div.math img.math { display: block; margin: 0.25em auto; }
html[data-theme="dark"] img.math { filter: invert(0.85); }
"""


# LaTeX that mathtext lacks, rewritten to what it has (anything else is reported by the build)
_TEX_REWRITES = [
    (re.compile(r"\\(?:label|tag)\{[^}]*\}|\\(?:nonumber|notag|displaystyle|textstyle)(?![A-Za-z])"), ""),
    (re.compile(r"\\[lr]vert(?![A-Za-z])"), "|"),
    (re.compile(r"\\[lr]Vert(?![A-Za-z])"), r"\\Vert"),
    (re.compile(r"\\tfrac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\ge(?![A-Za-z])"), r"\\geq"),
    (re.compile(r"\\le(?![A-Za-z])"), r"\\leq"),
    (re.compile(r"\\ne(?![A-Za-z])"), r"\\neq"),
    (re.compile(r"\s+"), " "),  # mathtext reads one line
]


def normalize_tex(latex: str) -> str:
    """Rewrite the LaTeX commands mathtext does not know into equivalents it knows; one line."""
    for pattern, repl in _TEX_REWRITES:
        latex = pattern.sub(repl, latex)
    return latex.strip()


@functools.lru_cache(maxsize=4096)
def render_math_svg(latex: str, fontsize: float = MATH_FONT_PT) -> tuple[str, float, float, float]:
    """Render one TeX formula with matplotlib's mathtext (after :func:`normalize_tex`).

    Returns ``(svg text, width, height, depth)``, sizes in points (depth: below the baseline). Raises
    ``ValueError`` when mathtext cannot parse the formula.
    """
    text = f"${normalize_tex(latex)}$"
    with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.fonttype": "path", "svg.hashsalt": "glass-sm"}):
        prop = FontProperties(size=fontsize)
        width, height, depth, _, _ = MathTextParser("path").parse(text, dpi=72, prop=prop)
        fig = Figure(figsize=(width / 72.0, height / 72.0))
        fig.text(0, depth / height, text, fontproperties=prop, color="black")
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", dpi=72, metadata={"Date": None, "Creator": None}, transparent=True)
    return buf.getvalue().decode("utf-8"), width, height, depth


_ENVIRONMENT = re.compile(r"\\(begin|end)\{(aligned|align\*?|split|gather\*?|equation\*?|eqnarray\*?)\}")


def _display_lines(latex: str) -> list[str]:
    """Lines of a display formula (mathtext has no alignment environments: one image per line)."""
    body = _ENVIRONMENT.sub("", latex)
    lines = [ln.replace("&", " ").strip() for ln in re.split(r"\\\\", body)]
    return [ln for ln in lines if ln]


def _math_img(self, latex: str, scale: float = 1.0) -> str:
    svg, width, height, depth = render_math_svg(latex)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    em = MATH_FONT_PT / scale
    # class dark-light: the theme leaves the image alone in dark mode; glass_sm_math.css inverts it instead
    return (f'<img class="math dark-light" src="{uri}" alt="{self.encode(latex.strip())}" '
            f'style="height: {height / em:.3f}em; vertical-align: {-depth / em:.3f}em"/>')


def _math_error(self, node, latex: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    sphinx_logging.getLogger(__name__).warning(
        "math not renderable offline by matplotlib mathtext (rewrite it in the supported subset): %r: %s",
        latex, first, location=node, type="glass_sm", subtype="math")
    return f'<span class="math">{self.encode(latex)}</span>'


def _visit_math(self, node) -> None:
    latex = node.astext()
    try:
        self.body.append(_math_img(self, latex))
    except Exception as exc:  # noqa: BLE001 - mathtext raises ValueError and others
        self.body.append(_math_error(self, node, latex, exc))
    raise nodes.SkipNode


def _visit_displaymath(self, node) -> None:
    latex = node.astext()
    self.body.append(self.starttag(node, "div", CLASS="math"))
    self.body.append("<p>")
    if node.get("number"):
        number = get_node_equation_number(self, node)
        self.body.append(f'<span class="eqno">({number})')
        self.add_permalink_ref(node, translate("Link to this equation"))
        self.body.append("</span>")
    try:
        self.body.append("".join(_math_img(self, ln, DISPLAY_SCALE) for ln in _display_lines(latex)))
    except Exception as exc:  # noqa: BLE001
        self.body.append(_math_error(self, node, latex, exc))
    self.body.append("</p>\n</div>\n")
    raise nodes.SkipNode


def _write_math_css(app, exc) -> None:
    if exc is None and app.builder.format == "html":
        css = Path(app.outdir) / "_static" / "glass_sm_math.css"
        css.parent.mkdir(parents=True, exist_ok=True)
        css.write_text(_MATH_CSS, encoding="utf-8")


def _round_brackets() -> BracketStyle:
    return BracketStyle(left="(", right=")")


@dataclasses.dataclass
class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """``bibtex_reference_style = 'author_year_round'``: "(Zhang et al., 2025)" and "Zhang et al. (2025)"."""

    bracket_parenthetical: BracketStyle = dataclasses.field(default_factory=_round_brackets)
    bracket_textual: BracketStyle = dataclasses.field(default_factory=_round_brackets)
    bracket_author: BracketStyle = dataclasses.field(default_factory=_round_brackets)
    bracket_label: BracketStyle = dataclasses.field(default_factory=_round_brackets)
    bracket_year: BracketStyle = dataclasses.field(default_factory=_round_brackets)


def setup(app) -> dict:
    """Sphinx entry point (``book/_config.yml``: ``sphinx.local_extensions``).

    Registers the ``mathtext`` HTML math renderer (``html_math_renderer = 'mathtext'``) and the
    ``author_year_round`` citation style of sphinxcontrib-bibtex.
    """
    register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round", RoundAuthorYearReferenceStyle,
                    force=True)
    app.add_html_math_renderer("mathtext", (_visit_math, None), (_visit_displaymath, None))
    app.add_css_file("glass_sm_math.css")
    app.connect("build-finished", _write_math_css)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
