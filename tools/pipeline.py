"""Run the stage notebooks through papermill, re-running only the stages whose inputs changed.

``python tools/pipeline.py params/demo.yaml [--stages 01 02] [--force] [--dry-run] [--repo DIR]``

A stage ``NN_name`` runs ``notebooks/NN_name.ipynb`` into ``<results>/notebooks/NN_name.ipynb``. It is *stale*
(and re-runs) when, compared with the stamp ``<results>/notebooks/NN_name.stamp.json`` its last successful run
wrote, the content (sha256, never the modification time) of one of its inputs differs:

- its notebook (cell types, sources and tags: outputs and editor metadata do not count);
- the sections of the resolved parameters it reads: the ``CONFIG_SECTIONS`` its stage module declares
  (``glass_sm.stages.s01_data`` ... ``s06_figures``), or every section when the module declares none;
- the package modules it imports: the static import closure (``ast``, nothing is imported) over ``glass_sm.*``
  of its stage module and of the notebook's own imports, parent packages' ``__init__`` included;
- an upstream stage: one that is stale itself, or that re-ran since (its stamp changed).

So editing a caption in ``glass_sm/figures/captions.py`` re-runs only the stages whose imports reach it (stage 06).

A stage runs into ``<stage>.partial.ipynb``, renamed on success, after which its stamp is written; its old stamp is
removed before it starts, so a failed or interrupted stage is stale. On failure the partial notebook is kept as
``<stage>.failed.ipynb`` (removed again by the next success). A relative ``run.results_dir`` is relative to the
repository (the notebooks run there); an absolute one may be anywhere.

No machine paths: the notebooks run with the repository as working directory, so papermill injects the params
file *relative to the repository* (``params_file = "params/demo.yaml"``), and the executed notebook is written
with the repository's absolute path removed from its outputs and papermill metadata (:func:`relativize_notebook`):
it reads the same wherever the repository is.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

from glass_sm import config
from glass_sm.contract import STAGES
from glass_sm.paths import atomic_write

__all__ = [
    "STAGES", "STAGE_MODULES", "PACKAGE", "StageInputs", "Plan", "find_repo", "results_root", "stage_notebooks",
    "resolve_stages", "module_file", "import_closure", "notebook_imports", "config_sections", "notebook_digest",
    "params_digests", "stage_inputs", "stamp_path", "read_stamp", "stamp_digest", "write_stamp", "plan",
    "stale_stages", "run_stage", "run", "repo_relative", "path_replacements", "relativize_notebook",
]

PACKAGE = "glass_sm"
#: the one module each stage notebook calls (parsed, never imported)
STAGE_MODULES = {
    "01_data_preparation": "glass_sm.stages.s01_data",
    "02_model_comparison": "glass_sm.stages.s02_models",
    "03_atlstm_training": "glass_sm.stages.s03_atlstm",
    "04_global_production": "glass_sm.stages.s04_production",
    "05_validation": "glass_sm.stages.s05_validation",
    "06_paper_figures": "glass_sm.stages.s06_figures",
}
STAMP_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# Where things are
# ----------------------------------------------------------------------------------------------------------
def find_repo(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` holding ``pyproject.toml`` and ``notebooks/``.

    Parameters
    ----------
    start : path-like, optional
        Where to start looking (default: this file's folder).

    Raises
    ------
    FileNotFoundError
        No such folder above ``start``.
    """
    here = Path(start if start is not None else __file__).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    raise FileNotFoundError(f"no repository (a folder with pyproject.toml and notebooks/) at or above {here}")


def results_root(cfg: config.Config, repo: Path) -> Path:
    """``<results_dir>/<run>`` as the notebooks see it: a relative ``run.results_dir`` is relative to ``repo``."""
    return cfg.results if cfg.results.is_absolute() else repo / cfg.results


def stage_notebooks(repo: Path) -> list[str]:
    """The stages whose notebook exists in ``repo/notebooks``, in order."""
    return [s for s in STAGES if (repo / "notebooks" / f"{s}.ipynb").is_file()]


def resolve_stages(names: Iterable[str] | None) -> list[str] | None:
    """Stage names from full names or unique prefixes (``"05"``, ``"05_validation"``), in stage order.

    Raises
    ------
    ValueError
        A name that matches no stage or more than one (the message lists the stages).
    """
    if names is None:
        return None
    chosen = set()
    for name in names:
        hits = [s for s in STAGES if s.startswith(name)] if name else []
        if len(hits) != 1:
            what = "ambiguous" if hits else "unknown"
            raise ValueError(f"{what} stage '{name}'; expected one of {', '.join(STAGES)} (or a unique prefix, "
                             "e.g. 05)")
        chosen.add(hits[0])
    return [s for s in STAGES if s in chosen]


# ----------------------------------------------------------------------------------------------------------
# Inputs of a stage: notebook, parameter sections, imported modules
# ----------------------------------------------------------------------------------------------------------
def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def module_file(name: str, src: Path) -> Path | None:
    """The source file of module ``name`` under ``src`` (``pkg/__init__.py`` or ``mod.py``), None if none."""
    base = src.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported_names(tree: ast.AST, package: str) -> set[str]:
    """Every module name an import in ``tree`` may load (anywhere, function-local ones too), absolute.

    ``package`` is the package relative imports resolve against. ``from a import b`` yields ``a`` and ``a.b``
    (``b`` may be a submodule); names that are not modules are dropped later. ``importlib.import_module`` with a
    literal name counts as an import.
    """
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[:len(parts) - node.level + 1])
                mod = ".".join(p for p in (base, node.module) if p)
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.add(node.args[0].value)
    return {n for n in out if n}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_closure(roots: Iterable[str], src: Path, package: str = PACKAGE) -> dict[str, Path]:
    """The modules of ``package`` that importing ``roots`` may execute: name -> file, sorted by name.

    Follows imports statically (``ast``), whatever their depth in a function; a module imports its parent
    packages (their ``__init__.py``). Names under ``package`` that are not modules (functions, constants) and
    modules outside it are ignored.
    """
    todo = [p for r in roots if r == package or r.startswith(package + ".") for p in _parents(r)]
    found: dict[str, Path] = {}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, src)
        if path is None:
            continue
        found[name] = path
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for imp in _imported_names(tree, name if is_pkg else name.rpartition(".")[0]):
            if imp == package or imp.startswith(package + "."):
                todo.extend(p for p in _parents(imp) if p not in seen)
    return dict(sorted(found.items()))


def _code_cells(notebook: Path) -> list[str]:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return ["".join(c.get("source", "")) if isinstance(c.get("source"), list) else c.get("source", "")
            for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def notebook_imports(notebook: Path) -> set[str]:
    """The module names the code cells of ``notebook`` import (IPython magics and shell lines skipped)."""
    names: set[str] = set()
    for source in _code_cells(notebook):
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
        try:
            names |= _imported_names(ast.parse(code), "")
        except SyntaxError:  # a cell papermill would fail on anyway; its imports cannot be known
            continue
    return names


def config_sections(path: Path) -> tuple[str, ...] | None:
    """The ``CONFIG_SECTIONS`` a stage module declares at top level (a literal tuple/list of names), else None.

    Raises
    ------
    ValueError
        ``CONFIG_SECTIONS`` is not a literal sequence of names of :class:`glass_sm.config.Config` sections.
    """
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        if any(isinstance(t, ast.Name) and t.id == "CONFIG_SECTIONS" for t in targets) and node.value is not None:
            try:
                sections = tuple(ast.literal_eval(node.value))
            except ValueError as e:
                raise ValueError(f"{path}: CONFIG_SECTIONS must be a literal tuple of section names") from e
            known = [f.name for f in fields(config.Config) if f.name != "source_file"]
            unknown = [s for s in sections if s not in known]
            if unknown:
                raise ValueError(f"{path}: CONFIG_SECTIONS names unknown section(s) {unknown}; "
                                 f"sections are {known}")
            return sections
    return None


def notebook_digest(notebook: Path) -> str:
    """sha256 of what a notebook does: each cell's type, source and tags (not outputs, ids or editor metadata)."""
    raw = notebook.read_bytes()
    try:
        nb = json.loads(raw)
    except ValueError:  # not JSON: papermill will say so; any byte change still counts
        return _sha256(raw)
    cells = [[c.get("cell_type"), "".join(c.get("source", "")), sorted(c.get("metadata", {}).get("tags", []))]
             for c in nb.get("cells", [])]
    return _sha256(json.dumps(cells, ensure_ascii=False))


def params_digests(cfg: config.Config, sections: Iterable[str] | None = None) -> dict[str, str]:
    """sha256 of each parameter section of the resolved ``cfg`` (all sections when ``sections`` is None)."""
    tree = config.to_dict(cfg)
    tree.pop("source_file", None)
    names = list(tree) if sections is None else list(sections)
    return {s: _sha256(json.dumps(tree[s], sort_keys=True, default=str)) for s in names}


@dataclass(frozen=True)
class StageInputs:
    """Content digests of everything a stage reads but the files earlier stages wrote.

    Attributes
    ----------
    notebook : str
        :func:`notebook_digest` of the stage notebook.
    params : dict
        Section -> sha256 of the resolved parameters of that section (the stage's ``CONFIG_SECTIONS``).
    modules : dict
        Source file (relative to ``src/``) -> sha256 of its bytes, over the stage's import closure.
    note : str
        Why the tracking is coarser than usual (e.g. no stage module yet), or empty.
    """

    notebook: str
    params: dict
    modules: dict
    note: str = ""

    def as_dict(self) -> dict:
        return {"notebook": self.notebook, "params": dict(self.params), "modules": dict(self.modules)}


def stage_inputs(stage: str, cfg: config.Config, repo: Path) -> StageInputs:
    """The current :class:`StageInputs` of ``stage`` in ``repo`` for the resolved parameters ``cfg``.

    Without a stage module (``STAGE_MODULES``), every module of the package and every parameter section count.
    """
    src = repo / "src"
    notebook = repo / "notebooks" / f"{stage}.ipynb"
    mod_path = module_file(STAGE_MODULES[stage], src)
    note = ""
    if mod_path is None:
        note = f"no module {STAGE_MODULES[stage]}: every module of {PACKAGE} and every parameter counts"
        files = sorted((src / PACKAGE).rglob("*.py"))
        sections = None
    else:
        roots = {STAGE_MODULES[stage]} | notebook_imports(notebook)
        files = list(import_closure(roots, src).values())
        sections = config_sections(mod_path)
    modules = {p.relative_to(src).as_posix(): _sha256(p.read_bytes()) for p in files}
    return StageInputs(notebook_digest(notebook), params_digests(cfg, sections), modules, note)


# ----------------------------------------------------------------------------------------------------------
# Stamps and the plan
# ----------------------------------------------------------------------------------------------------------
def stamp_path(notebooks_dir: Path, stage: str) -> Path:
    """``<results>/notebooks/<stage>.stamp.json``."""
    return notebooks_dir / f"{stage}.stamp.json"


def read_stamp(notebooks_dir: Path, stage: str) -> dict | None:
    """The stamp of the last successful run of ``stage`` (None when absent or unreadable)."""
    try:
        stamp = json.loads(stamp_path(notebooks_dir, stage).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("version") == STAMP_VERSION else None


def stamp_digest(notebooks_dir: Path, stage: str) -> str | None:
    """sha256 of the stamp file of ``stage`` (changes each time the stage runs), None when absent."""
    path = stamp_path(notebooks_dir, stage)
    return _sha256(path.read_bytes()) if path.is_file() else None


def _changed(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _reasons(stamp: dict | None, inputs: StageInputs, executed: Path) -> list[str]:
    if not executed.is_file():
        return ["no executed notebook"]
    if stamp is None:
        return ["no stamp (never run by this pipeline, interrupted or failed)"]
    old = stamp.get("inputs", {})
    reasons = []
    if old.get("notebook") != inputs.notebook:
        reasons.append("notebook changed")
    if changed := _changed(old.get("params", {}), inputs.params):
        reasons.append("parameters changed: " + ", ".join(changed))
    if changed := _changed(old.get("modules", {}), inputs.modules):
        more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
        reasons.append("modules changed: " + ", ".join(changed[:5]) + more)
    return reasons


@dataclass(frozen=True)
class Plan:
    """One stage of a pipeline run: whether it runs and why."""

    stage: str
    run: bool
    reasons: tuple[str, ...]


def plan(params_file: str | os.PathLike, stages: Iterable[str] | None = None, *, force: bool = False,
         overrides: dict | None = None, repo: Path | None = None) -> list[Plan]:
    """For each stage whose notebook exists, in order: does it run, and why.

    A stage runs when it is requested (``stages`` None: all) and stale, or requested and ``force``. A stage is
    stale when an input changed (:func:`stage_inputs`), when it has no stamp or executed notebook, or when an
    earlier stage is stale or re-ran since it ran. ``stages`` are names or unique prefixes.
    """
    repo = repo or find_repo()
    wanted = resolve_stages(stages)
    cfg = config.load(params_file, overrides)
    nb_dir = results_root(cfg, repo) / "notebooks"
    out, upstream = [], {}  # upstream: earlier stage -> digest of its stamp, None when it is stale
    for stage in stage_notebooks(repo):
        stamp = read_stamp(nb_dir, stage)
        reasons = _reasons(stamp, stage_inputs(stage, cfg, repo), nb_dir / f"{stage}.ipynb")
        recorded = (stamp or {}).get("upstream", {})
        if stale := [up for up, digest in upstream.items() if digest is None]:
            reasons.append("upstream stale: " + ", ".join(stale))
        if stamp is not None and (rerun := [up for up, d in upstream.items() if d and recorded.get(up) != d]):
            reasons.append("upstream re-ran since: " + ", ".join(rerun))
        requested = wanted is None or stage in wanted
        runs = requested and (force or bool(reasons))
        if runs and not reasons:
            reasons = ["forced"]
        out.append(Plan(stage, runs, tuple(reasons)))
        upstream[stage] = None if reasons else stamp_digest(nb_dir, stage)
    if wanted is not None:
        missing = [s for s in wanted if s not in {p.stage for p in out}]
        if missing:
            raise FileNotFoundError(f"no notebook for stage(s) {missing} in {repo / 'notebooks'}")
    return out


def stale_stages(params_file: str | os.PathLike, stages: Iterable[str] | None = None, **kw) -> list[str]:
    """The stages :func:`plan` would run (``stages``: names or prefixes, default all), in order."""
    return [p.stage for p in plan(params_file, stages, **kw) if p.run]


# ----------------------------------------------------------------------------------------------------------
# No machine paths in the executed notebooks
# ----------------------------------------------------------------------------------------------------------
def repo_relative(path: str | os.PathLike, repo: Path) -> str:
    """``path`` as the notebooks (working directory: ``repo``) should see it: relative to ``repo`` (POSIX
    separators) when it is inside it, else relative to it with ``..`` (still found from there)."""
    path, repo = Path(os.path.abspath(path)), Path(os.path.abspath(repo))
    try:
        return path.relative_to(repo).as_posix() or "."
    except ValueError:
        return Path(os.path.relpath(path, repo)).as_posix()


def path_replacements(repo: Path, extra: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """``(absolute prefix, shown instead)`` pairs for :func:`relativize_notebook`: ``<repo>/`` -> ``""`` (so
    ``/home/me/glass-sm/results/x`` reads ``results/x``), plus ``extra`` (e.g. a results folder outside the
    repository -> ``<results>``); each path both as given and resolved (symbolic links), longest first."""
    pairs: dict[str, str] = {}
    for src, dst in [*((str(k), v) for k, v in (extra or {}).items()), (str(repo), "")]:
        for form in {os.path.abspath(src), os.path.realpath(src)}:
            if len(form) > 1:  # never the file-system root
                pairs.setdefault(form, dst)
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def _relativize_text(text: str, pairs: list[tuple[str, str]]) -> str:
    for src, dst in pairs:
        if src not in text:
            continue
        # "<src>/rest" -> "<dst>/rest" ("rest" alone when dst is empty); a bare "<src>" -> dst or "."
        text = text.replace(src + "/", (dst + "/") if dst else "")
        text = re.sub(re.escape(src) + r"(?![\w.-])", dst or ".", text)
    return text


def _relativize(value, pairs):
    if isinstance(value, str):
        return _relativize_text(value, pairs)
    if isinstance(value, list):
        return [_relativize(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: _relativize(v, pairs) for k, v in value.items()}
    return value


_TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex")


def relativize_notebook(nb, pairs: list[tuple[str, str]]):
    """Remove machine paths (``pairs``, from :func:`path_replacements`) from an executed notebook, in place.

    Touches what the reader sees and papermill records, never the code the notebook runs: stream text, the text
    forms of outputs (``text/plain``, ``text/html``, ``text/markdown``, ``text/latex``; images are left alone),
    error messages and tracebacks, the source of the papermill-injected parameters cell, and the papermill
    metadata (``input_path``, ``output_path``, ``parameters``). Returns ``nb``.
    """
    pm = nb.get("metadata", {}).get("papermill")
    if isinstance(pm, dict):
        for key in ("input_path", "output_path", "parameters", "cwd"):
            if key in pm:
                pm[key] = _relativize(pm[key], pairs)
    for cell in nb.get("cells", []):
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            cell["source"] = _relativize("".join(src) if isinstance(src, list) else src, pairs)
        for out in cell.get("outputs", []) or []:
            kind = out.get("output_type")
            if kind == "stream":
                out["text"] = _relativize(out.get("text", ""), pairs)
            elif kind in ("display_data", "execute_result"):
                data = out.get("data", {})
                for mime in _TEXT_MIMES:
                    if mime in data:
                        data[mime] = _relativize(data[mime], pairs)
            elif kind == "error":
                out["evalue"] = _relativize(out.get("evalue", ""), pairs)
                out["traceback"] = _relativize(out.get("traceback", []), pairs)
    return nb


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------
def run_stage(stage: str, params_file: str | os.PathLike, overrides: dict | None = None, *,
              repo: Path | None = None, kernel_name: str = "python3") -> Path:
    """Execute one stage notebook with papermill (cwd: the repository); return the executed notebook's path.

    The notebook gets ``params_file`` relative to the repository (``overrides`` are passed as given), so no machine
    path is injected for a params file in the repository; the executed notebook is then written with the
    repository's absolute path (and that of a results folder outside it, as ``<results>``) removed from its
    outputs and metadata (:func:`relativize_notebook`). The inputs are hashed before the run and recorded, with
    the stamps of the earlier stages, in the stage's stamp once the executed notebook is in place.

    Raises
    ------
    Exception
        What papermill raised (e.g. ``PapermillExecutionError``); the partial notebook is then kept as
        ``<stage>.failed.ipynb`` and the stage has no stamp.
    """
    import papermill as pm  # noqa: PLC0415 (slow import: only when a stage runs, not to plan)

    repo = repo or find_repo()
    (stage,) = resolve_stages([stage])
    params_file = Path(params_file).resolve()
    cfg = config.load(params_file, overrides)
    inputs = stage_inputs(stage, cfg, repo)
    nb_dir = results_root(cfg, repo) / "notebooks"
    nb_dir.mkdir(parents=True, exist_ok=True)
    stamp_path(nb_dir, stage).unlink(missing_ok=True)  # from here on the stage is stale until it succeeds
    out, partial, failed = (nb_dir / f"{stage}{s}.ipynb" for s in ("", ".partial", ".failed"))
    parameters = {"params_file": repo_relative(params_file, repo)}
    if overrides:
        parameters["overrides"] = overrides
    root = results_root(cfg, repo)
    outside = not os.path.abspath(root).startswith(os.path.abspath(repo) + os.sep)
    pairs = path_replacements(repo, {root: "<results>"} if outside else None)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(repo / "notebooks" / f"{stage}.ipynb"), str(partial), parameters=parameters,
            kernel_name=kernel_name, cwd=str(repo), progress_bar=False, log_output=False,
        )
    except BaseException:
        if partial.exists():
            _relativize_file(partial, pairs)
            os.replace(partial, failed)
        raise
    seconds = time.perf_counter() - t0
    _relativize_file(partial, pairs)
    os.replace(partial, out)
    failed.unlink(missing_ok=True)
    (nb_dir / f"{stage}.seconds").write_text(f"{seconds:.1f}\n")  # shown in the book's chapter header
    write_stamp(nb_dir, stage, inputs, params_file, seconds)
    return out


def _relativize_file(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Rewrite an executed notebook without the machine paths ``pairs`` (JSON in, JSON out: no nbformat
    validation or upgrade, so only the text changes)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # an unreadable partial notebook: keep it as it is for the post-mortem
    path.write_text(json.dumps(relativize_notebook(nb, pairs), indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def write_stamp(notebooks_dir: Path, stage: str, inputs: StageInputs, params_file: str | os.PathLike,
                seconds: float) -> Path:
    """Record a successful run of ``stage``: its input digests and the current stamps of the earlier stages.

    Parameters
    ----------
    notebooks_dir : Path
        ``<results>/notebooks`` (holds the executed notebook and the stamps).
    inputs : StageInputs
        The digests taken before the stage ran (a file edited during the run then still counts as changed).
    params_file : path-like
        The params file the stage ran with (for the reader; its content is in ``inputs.params``).
    seconds : float
        Wall time of the run, s.
    """
    earlier = STAGES[:STAGES.index(stage)]
    stamp = {
        "version": STAMP_VERSION,
        "stage": stage,
        "params_file": str(params_file),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
        "seconds": round(seconds, 1),
        "inputs": inputs.as_dict(),
        "upstream": {s: stamp_digest(notebooks_dir, s) for s in earlier if stamp_path(notebooks_dir, s).is_file()},
    }
    path = stamp_path(notebooks_dir, stage)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def run(params_file: str | os.PathLike, stages: Iterable[str] | None = None, force: bool = False, *,
        overrides: dict | None = None, repo: Path | None = None, dry_run: bool = False,
        log: Callable[[str], None] = print) -> list[str]:
    """Run the stale stages of ``stages`` (default all; every requested one with ``force``); return those run.

    Each stage is planned again after the previous one ran, so a stage made stale by an upstream re-run runs.
    """
    repo = repo or find_repo()
    done: list[str] = []
    while True:
        steps = plan(params_file, stages, force=force, overrides=overrides, repo=repo)
        todo = [p for p in steps if p.run and p.stage not in done]
        if dry_run:
            for p in steps:
                state = ("would run: " if p.run else "stale, not requested: " if p.reasons else "up to date")
                log(f"pipeline: {p.stage}: {state}{'; '.join(p.reasons)}")
            return [p.stage for p in todo]
        if not todo:
            break
        step = todo[0]
        log(f"pipeline: running {step.stage} on {params_file} ({'; '.join(step.reasons)}) ...")
        t0 = time.perf_counter()
        try:
            out = run_stage(step.stage, params_file, overrides, repo=repo)
        except Exception:
            log(f"pipeline: {step.stage} FAILED after {time.perf_counter() - t0:.0f} s; its executed cells are in "
                f"{step.stage}.failed.ipynb next to the executed notebooks")
            raise
        log(f"pipeline: {step.stage} done in {time.perf_counter() - t0:.0f} s -> {out}")
        done.append(step.stage)
    if not done:
        log("pipeline: every stage is up to date")
    return done


def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python tools/pipeline.py", description=__doc__.splitlines()[0])
    ap.add_argument("params", help="params YAML file")
    ap.add_argument("--stages", nargs="+", help="stage names or prefixes, e.g. 01 02 (default: all)")
    ap.add_argument("--force", action="store_true", help="run the requested stages even if up to date")
    ap.add_argument("--dry-run", action="store_true", help="say which stages would run, and why; run nothing")
    ap.add_argument("--repo", default=None, help="repository root (default: found above this file)")
    a = ap.parse_args(argv)
    try:
        repo = find_repo(a.repo) if a.repo else find_repo()
        resolve_stages(a.stages)
        config.load(a.params)
        run(a.params, a.stages, a.force, repo=repo, dry_run=a.dry_run)
    except (config.ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a failed stage: one line, the notebook holds the traceback
        last = str(e).strip().splitlines()[-1] if str(e).strip() else ""
        print(f"error: {type(e).__name__}: {last}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
