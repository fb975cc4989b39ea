"""What ran: resolved parameters, git commit and package versions, written beside each stage's outputs."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

from glass_sm.paths import atomic_write

from glass_sm.config.schema import *  # noqa: F401,F403
from glass_sm.config.files import *  # noqa: F401,F403


PROVENANCE_PACKAGES = (
    "glass-sm", "numpy", "pandas", "xarray", "dask", "zarr", "netCDF4", "pyhdf", "rioxarray", "ismn",
    "torch", "xgboost-cpu", "matplotlib", "cartopy", "papermill",
)


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """Current git commit (``+dirty`` when the tree has changes), or ``unknown`` outside a checkout."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = PROVENANCE_PACKAGES) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def write_provenance(cfg: Config, stage: str, folder: str | os.PathLike | None = None) -> Path:
    """Write ``provenance/<stage>.yaml``: resolved params, git commit, package versions, time."""
    folder = Path(folder) if folder is not None else cfg.results / "provenance"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "stage": stage,
        "params_file": cfg.source_file,
        "git_commit": git_commit(),
        "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "params": to_dict(cfg),
    }
    path = folder / f"{stage}.yaml"
    with atomic_write(path) as tmp, open(tmp, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path


def _main(argv: list[str]) -> int:
    usage = "usage: python -m glass_sm.config {check|run-name|results} PARAMS.yaml"
    if len(argv) != 2:
        print(usage, file=sys.stderr)
        return 2
    cmd, path = argv
    try:
        cfg = load(path)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if cmd == "check":
        print(f"{path}: OK (run '{cfg.run.name}')")
    elif cmd == "run-name":
        print(cfg.run.name)
    elif cmd == "results":
        print(cfg.results)
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0
