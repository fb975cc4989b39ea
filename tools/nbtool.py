"""Developer tool: convert a percent-format script (``# %%`` cells) to a clean notebook, and back.

``python tools/nbtool.py to-ipynb notebook.py notebooks/NN_name.ipynb``
``python tools/nbtool.py to-py notebooks/NN_name.ipynb notebook.py``

Cells: ``# %%`` starts a code cell, ``# %% [markdown]`` a markdown cell (its lines start with ``# ``),
``# %% tags=["parameters"]`` the papermill parameters cell. Notebooks are written without outputs.
"""

import argparse
import json
import re

import nbformat


def to_ipynb(src: str, dst: str) -> None:
    """Write the percent-format script ``src`` as the notebook ``dst`` (no outputs, cell ids ``cell-NN``)."""
    cells, kind, tags, buf = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            c = nbformat.v4.new_code_cell(text)
            if tags:
                c.metadata["tags"] = tags
            cells.append(c)

    for line in open(src).read().splitlines():
        m = re.match(r"^# %%(.*)$", line)
        if m:
            flush()
            rest = m.group(1).strip()
            kind = "markdown" if rest.startswith("[markdown]") else "code"
            tm = re.search(r"tags=(\[.*\])", rest)
            tags = json.loads(tm.group(1)) if tm else []
            buf = []
        else:
            buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (glass-sm)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.write(nb, dst)


def to_py(src: str, dst: str) -> None:
    """Write the notebook ``src`` as the percent-format script ``dst`` (sources and tags only)."""
    nb = nbformat.read(src, as_version=4)
    out = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            out.append("# %% [markdown]")
            out += [("# " + l) if l else "#" for l in c.source.splitlines()]
        else:
            tags = c.metadata.get("tags", [])
            out.append("# %%" + (f" tags={json.dumps(tags)}" if tags else ""))
            out += c.source.splitlines()
        out.append("")
    open(dst, "w").write("\n".join(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/nbtool.py", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["to-ipynb", "to-py"])
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args(argv)
    {"to-ipynb": to_ipynb, "to-py": to_py}[a.command](a.src, a.dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
