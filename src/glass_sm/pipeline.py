"""Run the stage notebooks through papermill, re-running only stale stages.

``python -m glass_sm.pipeline params/demo.yaml [--stages 01 02] [--force]``

A stage is stale when its executed notebook ``results/<run>/notebooks/<stage>.ipynb`` is missing or older than
any of: the stage notebook, the params file, a module of the package, or the executed notebook of the stage
before it. A stage is executed into ``<stage>.partial.ipynb`` and renamed on success, so a failed or interrupted
stage never looks finished; on failure the partial notebook is kept as ``<stage>.failed.ipynb`` for debugging.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from glass_sm import config

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
STAGES = (
    "01_data_preparation",
    "02_model_comparison",
    "03_atlstm_training",
    "04_global_production",
    "05_validation",
    "06_paper_figures",
)

__all__ = ["STAGES", "stage_notebooks", "stale_stages", "run_stage", "run"]


def stage_notebooks() -> list[str]:
    """The stages whose notebook exists, in order."""
    return [s for s in STAGES if (NOTEBOOK_DIR / f"{s}.ipynb").exists()]


def _newest_source_mtime(params_file: Path) -> float:
    pkg = Path(__file__).resolve().parent
    times = [params_file.stat().st_mtime]
    times += [p.stat().st_mtime for p in pkg.rglob("*.py")]
    return max(times)


def stale_stages(params_file: str | os.PathLike, stages: list[str] | None = None) -> list[str]:
    """Stages (of ``stages``, default all present) that must run, in order; a stale stage makes later ones stale."""
    params_file = Path(params_file)
    cfg = config.load(params_file)
    out_dir = cfg.results / "notebooks"
    base = _newest_source_mtime(params_file)
    todo, previous_mtime, upstream_stale = [], 0.0, False
    for s in stage_notebooks():
        out = out_dir / f"{s}.ipynb"
        src = NOTEBOOK_DIR / f"{s}.ipynb"
        newest_input = max(base, src.stat().st_mtime, previous_mtime)
        stale = upstream_stale or not out.exists() or out.stat().st_mtime < newest_input
        if stages is None or s in stages:
            if stale:
                todo.append(s)
        upstream_stale = upstream_stale or stale
        previous_mtime = out.stat().st_mtime if out.exists() and not stale else time.time()
    return todo


def run_stage(stage: str, params_file: str | os.PathLike, overrides: dict | None = None,
              out_dir: str | os.PathLike | None = None, kernel_name: str = "python3") -> Path:
    """Execute one stage notebook with papermill; returns the executed notebook's path."""
    import papermill as pm  # noqa: PLC0415 (slow import, only when running)

    params_file = Path(params_file).resolve()
    cfg = config.load(params_file, overrides)
    out_dir = Path(out_dir) if out_dir is not None else (REPO / cfg.results / "notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stage}.ipynb"
    partial = out_dir / f"{stage}.partial.ipynb"
    parameters = {"params_file": str(params_file)}
    if overrides:
        parameters["overrides"] = overrides
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(NOTEBOOK_DIR / f"{stage}.ipynb"), str(partial), parameters=parameters,
            kernel_name=kernel_name, cwd=str(REPO), progress_bar=False, log_output=False,
        )
    except BaseException:
        if partial.exists():
            os.replace(partial, out_dir / f"{stage}.failed.ipynb")
        raise
    os.replace(partial, out)
    (out_dir / f"{stage}.seconds").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return out


def run(params_file: str | os.PathLike, stages: list[str] | None = None, force: bool = False) -> list[str]:
    """Run the stale stages (or all requested ones with ``force``); returns those run."""
    todo = [s for s in stage_notebooks() if stages is None or s in stages] if force else \
        stale_stages(params_file, stages)
    if not todo:
        print("pipeline: every stage is up to date")
    for s in todo:
        t0 = time.perf_counter()
        print(f"pipeline: running {s} on {params_file} ...", flush=True)
        out = run_stage(s, params_file)
        print(f"pipeline: {s} done in {time.perf_counter() - t0:.0f} s -> {out.relative_to(REPO)}", flush=True)
    return todo


def _main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m glass_sm.pipeline", description=__doc__.splitlines()[0])
    ap.add_argument("params", help="params YAML file")
    ap.add_argument("--stages", nargs="*", help="stage prefixes, e.g. 01 02 (default: all)")
    ap.add_argument("--force", action="store_true", help="run even if up to date")
    a = ap.parse_args(argv)
    try:
        config.load(a.params)
    except config.ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stages = None
    if a.stages:
        stages = [s for s in STAGES if any(s.startswith(p) for p in a.stages)]
    run(a.params, stages, a.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
