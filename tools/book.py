"""Build the Jupyter Book of a run: its executed stage notebooks plus the narrative pages, as offline HTML.

``python tools/book.py params/demo.yaml [--book-dir book] [--no-strict] [--repo DIR]``

What :func:`build_book` does, in order:

1. copies the executed notebooks ``<results>/notebooks/<stage>.ipynb`` of the stages that exist into
   ``<book>/chapters/`` (a stage without an executed notebook is skipped with a message and left out of the
   table of contents), adding under each title a box that says which run and data source produced it
   (synthetic twin or real data) -- twin numbers are never the paper's -- and removing machine paths from
   what the pages show (:func:`pipeline.relativize_notebook`: the repository's absolute path, and a results
   folder outside it, shown as ``<results>``);
2. generates ``chapters/params_reference.md`` (the parameter table, from :func:`glass_sm.config.describe`),
   ``chapters/run_info.md`` (this build's run, stages and provenance, included by ``intro.md``),
   ``chapters/paper_claims.md`` (the run's ``tables/paper_claims.csv`` as a table, included by ``intro.md``) and
   ``chapters/_toc.yml`` (``<book>/_toc.yml`` minus the pages that do not exist);
3. runs ``jupyter-book build <book> --builder html --toc chapters/_toc.yml`` (from an empty ``_build/``) with
   the running interpreter's environment, warnings as errors (``-W``) unless ``strict=False``; the notebooks
   are *not* re-executed;
4. returns (and the CLI prints) ``<book>/_build/html/index.html``.

The build needs no network and the pages load nothing from outside the built folder: the book's Sphinx extension
``book/_ext/glass_sm_sphinx.py`` renders every formula at build time (no MathJax from a CDN). The pages hold no
path of the machine they were built on (the params file is named relative to the repository), so the book is
the same wherever it is built; ``book/_static/glass_sm.css`` keeps long code lines and wide tables inside the
text column (they scroll within their cell).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any, Callable

import nbformat
import pandas as pd
import yaml

from glass_sm import config
from glass_sm.contract import producing_stage, table_spec
from glass_sm.evaluation.claims import claims_markdown
from glass_sm.paths import atomic_write
from pipeline import STAGES, find_repo, path_replacements, relativize_notebook, results_root

GENERATED = "chapters"  # sub-folder of the book written by the build (git-ignored)

__all__ = [
    "GENERATED",
    "build_book",
    "copy_chapters",
    "filtered_toc",
    "paper_claims_markdown",
    "params_reference_markdown",
    "tidy_streams",
]


# ----------------------------------------------------------------------------------------------------------
# Chapters
# ----------------------------------------------------------------------------------------------------------
def _write_if_changed(path: Path, data: bytes | str) -> bool:
    """Write ``data`` atomically, unless the file already holds it (unchanged files keep their mtime)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == raw:
        return False
    with atomic_write(path) as tmp:
        tmp.write_bytes(raw)
    return True


def _run_label(cfg: config.Config) -> str:
    return "synthetic twin" if cfg.is_twin else "real data"


def _params_label(cfg: config.Config, repo: Path) -> str:
    """The run's params file as the book names it: relative to the repository when it is inside it, else its file
    name only (the book shows no path of the machine it was built on)."""
    if not cfg.source_file:
        return "(defaults)"
    path = Path(cfg.source_file)
    if not path.is_absolute() and not path.exists():
        path = Path(repo) / path  # relative to the repository, as the notebooks (cwd: the repository) read it
    try:
        return path.resolve().relative_to(Path(repo).resolve()).as_posix()
    except ValueError:
        return f"{path.name} (outside the repository)"


def _provenance_note(cfg: config.Config, stage: str, nb: Any, seconds: str | None, repo: Path) -> str:
    """Markdown admonition inserted under a chapter's title: which run, which data, when."""
    params = _params_label(cfg, repo)
    pm = nb.metadata.get("papermill", {}) if hasattr(nb, "metadata") else {}
    when = str(pm.get("end_time") or "")[:19].replace("T", " ")
    lines = [
        f":::{{admonition}} Run `{cfg.run.name}` on the {_run_label(cfg)}",
        ":class: " + ("note" if cfg.is_twin else "important"),
        f"This chapter is notebook `notebooks/{stage}.ipynb` as papermill executed it with `{params}`"
        + (f" (finished {when} UTC" + (f", {seconds} s" if seconds else "") + ")" if when else "")
        + "; the book shows its stored outputs and does not re-run it.",
    ]
    if cfg.is_twin:
        lines.append(
            "Its data are the **synthetic twin**: every number and figure below describes the twin, whose true "
            "soil moisture is known, and is **not** a result of Zhang et al. (2025)."
        )
    else:
        lines.append("Its data are the **real** input products read from the paths of the params file.")
    lines.append(":::")
    return "\n".join(lines)


def _terminal_text(text: str) -> str:
    """What a terminal shows for ``text``: on each line a carriage return starts overwriting from its start."""
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            parts = line.split("\r")
            shown = ""
            for part in parts:  # each part overwrites the beginning of what is shown
                shown = part + shown[len(part):]
            line = shown
        lines.append(line)
    return "\n".join(lines)


def tidy_streams(nb: Any) -> Any:
    """Merge consecutive stdout/stderr outputs of a cell and resolve carriage returns, as Jupyter displays them.

    Progress bars (tqdm) then show their final state once instead of one box per update. Other outputs are
    untouched; the executed notebook in ``results/`` is not modified (this works on the book's copy).
    """
    for cell in nb.cells:
        if cell.get("cell_type") != "code" or not cell.get("outputs"):
            continue
        merged: list = []
        for out in cell.outputs:
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] += out.get("text", "")
            else:
                merged.append(copy.deepcopy(out))
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = _terminal_text(out.get("text", ""))
        cell.outputs = [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]
    return nb


def copy_chapters(cfg: config.Config, chapters_dir: Path, notebook_dir: Path | None = None,
                  stages: tuple[str, ...] = STAGES, log: Callable[[str], None] = print, *,
                  repo: Path | None = None) -> list[str]:
    """Copy the executed notebooks of ``stages`` that exist into ``chapters_dir``; return the stages copied.

    Each copy gets a provenance box (run, params file, twin or real) as its second cell, loses the machine paths
    of its outputs (:func:`pipeline.relativize_notebook`: the repository's absolute path, and the results folder
    as ``<results>`` when it lies outside the repository), and its stream outputs are tidied as Jupyter shows them
    (:func:`tidy_streams`). The notebooks in ``notebook_dir`` are only read.
    """
    repo = repo or find_repo()
    notebook_dir = Path(notebook_dir) if notebook_dir is not None else results_root(cfg, repo) / "notebooks"
    chapters_dir.mkdir(parents=True, exist_ok=True)
    root = results_root(cfg, repo)
    inside = os.path.abspath(root).startswith(os.path.abspath(repo) + os.sep)
    pairs = path_replacements(repo, None if inside else {root: "<results>"})
    present = []
    for stage in stages:
        src = notebook_dir / f"{stage}.ipynb"
        dst = chapters_dir / f"{stage}.ipynb"
        if not src.is_file():
            log(f"book: skipping {stage}: no executed notebook {src}")
            if dst.exists():
                dst.unlink()
            continue
        nb = tidy_streams(relativize_notebook(nbformat.read(src, as_version=4), pairs))
        sec = notebook_dir / f"{stage}.seconds"
        seconds = sec.read_text().strip() if sec.is_file() else None
        note = nbformat.v4.new_markdown_cell(_provenance_note(cfg, stage, nb, seconds, repo))
        note.metadata["tags"] = ["glass-sm-provenance"]
        if nb.nbformat_minor >= 5:
            note.id = "glass-sm-provenance"  # fixed, so an unchanged notebook is not rewritten
        else:
            note.pop("id", None)  # cell ids do not exist before nbformat 4.5
        first = nb.cells[0] if nb.cells else None
        at = 1 if first is not None and first.cell_type == "markdown" and first.source.lstrip().startswith("# ") \
            else 0
        nb.cells.insert(at, note)
        _write_if_changed(dst, nbformat.writes(nb) + "\n")
        present.append(stage)
    return present


# ----------------------------------------------------------------------------------------------------------
# Generated pages: parameter reference, run information, table of contents
# ----------------------------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|$~])")


def _md_text(text: Any) -> str:
    """Plain text for a Markdown table cell: every Markdown/MyST special character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


_RST_CODE = re.compile(r"(?::[\w:]+:)?``?([^`]+)``?")


def _doc_md(text: Any) -> str:
    """A (numpydoc/RST) docstring line as Markdown: ``x`` and :role:`x` become code spans, the rest is escaped."""
    out, pos = [], 0
    text = str(text)
    for m in _RST_CODE.finditer(text):
        out.append(_md_text(text[pos:m.start()]))
        out.append(_md_code(m.group(1)))
        pos = m.end()
    out.append(_md_text(text[pos:]))
    return "".join(out)


def _md_code(value: Any) -> str:
    """A code span for a table cell (pipes escaped as the table syntax requires)."""
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}" if text else "`\"\"`"


def params_reference_markdown(rows: list[dict] | None = None) -> str:
    """The parameter reference as Markdown: one table per section, from :func:`glass_sm.config.describe`."""
    rows = config.describe() if rows is None else rows
    try:
        section_docs = {k: (v.__doc__ or "").strip().splitlines()[0]
                        for k, v in typing.get_type_hints(config.Config).items()
                        if dataclasses.is_dataclass(v)}
    except Exception:  # noqa: BLE001 - the docstrings are a nicety
        section_docs = {}
    out = [
        "<!-- generated by tools/book.py from glass_sm.config.describe(); do not edit -->",
        "",
        f"{len(rows)} parameters in {len({r['section'] for r in rows})} sections. In a params file each section "
        "is a mapping (`training:` then `  epochs: 5`); on the command line of papermill or in "
        "`config.load(path, overrides)` a parameter is a dotted key (`training.epochs`).",
        "",
    ]
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            out += ["", f"### `{section}`", ""]
            if section_docs.get(section):
                out += [_doc_md(section_docs[section]), ""]
            out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        out.append(
            f"| `{section}.{r['key']}` | {_md_code(r['type'])} | {_md_code(r['default'])} | {_doc_md(r['doc'])} |"
        )
    return "\n".join(out) + "\n"


def _run_info_markdown(cfg: config.Config, present: list[str], stages: tuple[str, ...], repo: Path) -> str:
    params = _params_label(cfg, repo)
    description = f" {_md_text(cfg.run.description.rstrip('.'))}." if cfg.run.description else ""
    lines = [
        "<!-- generated by tools/book.py; do not edit -->",
        f":::{{admonition}} This build: run `{cfg.run.name}` on the {_run_label(cfg)}",
        ":class: " + ("note" if cfg.is_twin else "important"),
        f"Built {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from `{params}`, git commit "
        f"`{config.git_commit(repo)}`.{description}",
        "",
    ]
    if present:
        lines.append("Chapters (executed notebooks of this run): "
                     + ", ".join(f"{{doc}}`/{GENERATED}/{s}`" for s in present) + ".")
    else:
        lines.append("No stage of this run has an executed notebook yet: run `make stages PARAMS=...` first.")
    missing = [s for s in stages if s not in present]
    if missing:
        lines += ["", "Not run yet, hence not in this book: " + ", ".join(f"`{s}`" for s in missing) + "."]
    if cfg.is_twin:
        lines += ["", "Every number in the chapters describes the **synthetic twin**, not the paper."]
    lines.append(":::")
    return "\n".join(lines) + "\n"


def paper_claims_markdown(cfg: config.Config, repo: Path) -> str:
    """``chapters/paper_claims.md`` (included by ``intro.md``): the run's ``tables/paper_claims.csv`` rendered by
    :func:`glass_sm.evaluation.claims.claims_markdown`, under a box that says which data computed it (the twin's
    verdicts are never the paper's); a line saying so when the run has no such table yet."""
    path = results_root(cfg, repo) / "tables" / table_spec("paper_claims").filename
    lines = ["<!-- generated by tools/book.py; do not edit -->"]
    if not path.is_file():
        lines.append(f"The run `{cfg.run.name}` has no `tables/{path.name}` yet: the paper's claims are tested by "
                     f"stage `{producing_stage('paper_claims')}` (run it, then rebuild the book).")
        return "\n".join(lines) + "\n"
    data = "synthetic twin" if cfg.is_twin else "real data"
    lines += [f":::{{admonition}} The paper's claims, computed on the {data} (run `{cfg.run.name}`)",
              ":class: " + ("note" if cfg.is_twin else "important"),
              (f"Every value and verdict below was computed on the **{data}** from the files of run "
               f"`{cfg.run.name}`" + (", not on the paper's data: it says whether the paper's claims hold in the "
                                       "twin world, against its labels and against its truth." if cfg.is_twin
                                       else "; there is no truth, so only the labels can be scored.")),
              "The decision rules were fixed before any run (module `glass_sm.evaluation.claims`).", ":::", "",
              claims_markdown(pd.read_csv(path))]
    return "\n".join(lines).rstrip("\n") + "\n"


def _doc_exists(book_dir: Path, docname: str) -> bool:
    base = book_dir / docname
    return base.is_file() or any(base.with_name(base.name + ext).is_file() for ext in (".md", ".ipynb", ".rst"))


def _filter_entries(entries: list, book_dir: Path, log: Callable[[str], None]) -> list:
    kept = []
    for e in entries:
        if not isinstance(e, dict):
            kept.append(e)
            continue
        e = dict(e)
        if "file" in e and not _doc_exists(book_dir, e["file"]):
            log(f"book: leaving '{e['file']}' out of the table of contents (no such page)")
            continue
        for key in ("sections", "chapters"):
            if key in e:
                e[key] = _filter_entries(e[key], book_dir, log)
                if not e[key]:
                    del e[key]
        if "file" not in e and not any(k in e for k in ("sections", "chapters", "url", "glob")):
            continue  # a part or group left empty
        kept.append(e)
    return kept


def filtered_toc(template: dict, book_dir: Path, log: Callable[[str], None] = print) -> dict:
    """``template`` (a jb-book toc) without the entries whose page does not exist in ``book_dir``."""
    toc = copy.deepcopy(template)
    if not _doc_exists(book_dir, toc["root"]):
        raise FileNotFoundError(f"book root page '{toc['root']}' not found in {book_dir}")
    for key in ("parts", "chapters", "sections"):
        if key in toc:
            toc[key] = _filter_entries(toc[key], book_dir, log)
            if not toc[key]:
                del toc[key]
    return toc


# ----------------------------------------------------------------------------------------------------------
# Build
# ----------------------------------------------------------------------------------------------------------
def _jupyter_book_command() -> list[str]:
    script = Path(sys.executable).with_name("jupyter-book")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def build_book(params_file: str | os.PathLike, strict: bool = True, *, book_dir: str | os.PathLike | None = None,
               notebook_dir: str | os.PathLike | None = None, log: Callable[[str], None] = print,
               repo: Path | None = None, overrides: dict | None = None) -> Path:
    """Build the HTML book of the run of ``params_file``; return the path of its ``index.html``.

    Parameters
    ----------
    params_file : path-like
        The run's params YAML (decides ``<results>/<run>/``).
    strict : bool
        Sphinx warnings are errors (``jupyter-book build -W``).
    book_dir : path-like, optional
        Book source folder (default: the repository's ``book/``); ``chapters/`` and ``_build/`` are written in it.
        Tests pass a temporary copy.
    notebook_dir : path-like, optional
        Where the executed notebooks are (default ``<results>/<run>/notebooks``).
    log : callable
        Receives the progress messages (default ``print``).
    repo : path-like, optional
        Repository root (default: found above this file); a relative ``run.results_dir`` is relative to it.
    overrides : dict, optional
        Dotted-key overrides of the params file, as the stages ran with (e.g. ``{"run.results_dir": ...}``).

    Every build starts from an empty ``<book>/_build``: Sphinx's incremental mode would keep the navigation of
    unchanged pages and the pages of stages that left the run stale, and saves only a few seconds here.

    Raises
    ------
    RuntimeError
        The build failed; the message holds the end of jupyter-book's output.
    """
    repo = Path(repo) if repo is not None else find_repo()
    cfg = config.load(params_file, overrides)
    book_dir = (Path(book_dir) if book_dir is not None else repo / "book").resolve()
    chapters = book_dir / GENERATED
    t0 = time.perf_counter()

    present = copy_chapters(cfg, chapters, notebook_dir, log=log, repo=repo)
    if not present:
        log(f"book: no executed notebook of run '{cfg.run.name}' found; building the narrative pages only")
    _write_if_changed(chapters / "params_reference.md", params_reference_markdown())
    _write_if_changed(chapters / "run_info.md", _run_info_markdown(cfg, present, STAGES, repo))
    _write_if_changed(chapters / "paper_claims.md", paper_claims_markdown(cfg, repo))
    with open(book_dir / "_toc.yml") as fh:
        template = yaml.safe_load(fh)
    toc = filtered_toc(template, book_dir, log=log)
    toc_path = chapters / "_toc.yml"
    _write_if_changed(toc_path, "# generated by tools/book.py from ../_toc.yml; do not edit\n"
                      + yaml.safe_dump(toc, sort_keys=False))

    shutil.rmtree(book_dir / "_build", ignore_errors=True)
    cmd = _jupyter_book_command() + ["build", str(book_dir), "--builder", "html", "--toc", str(toc_path)]
    if strict:
        cmd.append("-W")
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    log("book: " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=book_dir, env=env, capture_output=True, text=True)
    index = book_dir / "_build" / "html" / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = (proc.stdout + proc.stderr)[-6000:]
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}) for {book_dir}:\n{tail}")
    log(f"book: built {len(present)} chapter(s) in {time.perf_counter() - t0:.1f} s")
    return index


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------
def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python tools/book.py", description=__doc__.splitlines()[0])
    ap.add_argument("params", help="params YAML file of the run to publish")
    ap.add_argument("--book-dir", default=None, help="book source folder (default: the repository's book/)")
    ap.add_argument("--no-strict", action="store_true", help="do not turn Sphinx warnings into errors")
    ap.add_argument("--repo", default=None, help="repository root (default: found above this file)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        repo = find_repo(a.repo) if a.repo else find_repo()
        index = build_book(a.params, strict=not a.no_strict, book_dir=a.book_dir, repo=repo)
    except (config.ConfigError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"book: done in {time.perf_counter() - t0:.0f} s; open this file in a browser:")
    print(index.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
