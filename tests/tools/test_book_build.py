"""tools/book.py without building: chapters copied with their provenance box, table of contents, streams."""

from __future__ import annotations

import nbformat
import pytest

import book
from glass_sm import config

v4 = nbformat.v4
STAGE = "01_data_preparation"


def _executed(title: str = "# Stage 01 — test") -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    nb.metadata.papermill = {"end_time": "2025-01-01T12:00:00.000000"}
    nb.cells = [v4.new_markdown_cell(title), v4.new_code_cell("x = 1")]
    return nb


@pytest.fixture
def run(tmp_path):
    """A params file whose run folder is outside the repository, with one executed notebook."""
    params = tmp_path / "p.yaml"
    params.write_text(f"run:\n  name: booktest\n  results_dir: {tmp_path / 'results'}\n")
    cfg = config.load(params)
    nb_dir = cfg.results / "notebooks"
    nb_dir.mkdir(parents=True)
    nbformat.write(_executed(), nb_dir / f"{STAGE}.ipynb")
    (nb_dir / f"{STAGE}.seconds").write_text("12.5\n")
    return cfg


def test_copy_chapters_adds_the_provenance_box_under_the_title(run, tmp_path):
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    (chapters / "02_model_comparison.ipynb").write_text("{}")  # left from an older build
    messages: list[str] = []
    present = book.copy_chapters(run, chapters, log=messages.append)
    assert present == [STAGE]
    nb = nbformat.read(chapters / f"{STAGE}.ipynb", as_version=4)
    note = nb.cells[1]
    assert nb.cells[0].source.startswith("# Stage 01") and "glass-sm-provenance" in note.metadata["tags"]
    assert "Run `booktest` on the synthetic twin" in note.source and "12.5 s" in note.source
    # outside the repository: named by its file name only, no machine path
    assert "`p.yaml (outside the repository)`" in note.source and str(tmp_path) not in note.source
    assert not (chapters / "02_model_comparison.ipynb").exists()
    assert any("skipping 02_model_comparison" in m for m in messages)
    mtime = (chapters / f"{STAGE}.ipynb").stat().st_mtime_ns
    book.copy_chapters(run, chapters, log=messages.append)
    assert (chapters / f"{STAGE}.ipynb").stat().st_mtime_ns == mtime  # unchanged copy not rewritten


def test_toc_leaves_out_missing_pages(tmp_path):
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01_a.ipynb").write_text("{}")
    template = {
        "format": "jb-book",
        "root": "intro",
        "parts": [
            {"caption": "Stages", "chapters": [{"file": "chapters/01_a"}, {"file": "chapters/02_b"}]},
            {"caption": "Empty", "chapters": [{"file": "real_data"}]},
        ],
    }
    toc = book.filtered_toc(template, tmp_path, log=lambda m: None)
    assert toc["parts"] == [{"caption": "Stages", "chapters": [{"file": "chapters/01_a"}]}]
    assert len(template["parts"]) == 2  # the template itself is untouched


def test_toc_without_its_root_page_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="root page 'intro'"):
        book.filtered_toc({"format": "jb-book", "root": "intro"}, tmp_path)


def test_progress_bars_are_shown_in_their_final_state():
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("run()", outputs=[
        v4.new_output("stream", name="stderr", text="\rweather:   0%|          | 0/10"),
        v4.new_output("stream", name="stderr", text="\rweather: 100%|##########| 10/10\n"),
        v4.new_output("stream", name="stdout", text="done\n"),
        v4.new_output("stream", name="stderr", text="\r"),
    ])]
    outputs = book.tidy_streams(nb).cells[0].outputs
    assert [(o.name, o.text) for o in outputs] == [("stderr", "weather: 100%|##########| 10/10\n"),
                                                   ("stdout", "done\n")]


def test_params_reference_lists_every_parameter_escaped():
    rows = [{"section": "run", "key": "name", "type": "str", "default": "a|b", "doc": "the `run` name *here*"}]
    text = book.params_reference_markdown(rows)
    assert "| `run.name` | `str` | `a\\|b` | the `run` name \\*here\\* |" in text
    full = book.params_reference_markdown()
    assert all(f"`{r['section']}.{r['key']}`" in full for r in config.describe())
