"""Where things live: ``results/<run>/{data,models,tables,figures,notebooks,product,provenance}``.

:class:`RunPaths` owns every path of a run; no other module spells a file name of the run layout. Tables are
declared in :mod:`glass_sm.contract`. :func:`atomic_write` is the one write-then-rename of the package: a reader
never sees a half-written file, and an interrupted write leaves no file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["RunPaths", "atomic_path", "atomic_write", "FINAL_MODEL"]

FINAL_MODEL = "atlstm_final"  #: stem of the production checkpoint written by stage 03


@dataclass(frozen=True)
class RunPaths:
    """The folders and files of one run (see ``book/design.md``, "Run layout")."""

    root: Path

    @classmethod
    def from_config(cls, cfg) -> "RunPaths":
        return cls(Path(cfg.run.results_dir) / cfg.run.name)

    # ---- folders
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def product(self) -> Path:
        return self.root / "product"

    @property
    def zoom(self) -> "RunPaths":
        """The run's 0.05 deg regional zoom (``<run>/zoom/``, a run of its own: see :mod:`glass_sm.zoom`)."""
        return RunPaths(self.root / "zoom")

    @property
    def annual(self) -> Path:
        """Annual-mean product files."""
        return self.product / "annual"

    @property
    def scratch(self) -> Path:
        """Per-tile scratch of a production run in progress (``product/.work/<year>/``)."""
        return self.product / ".work"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance"

    # ---- files
    @property
    def cube(self) -> Path:
        return self.data / "cube.zarr"

    @property
    def ingest(self) -> Path:
        """The day-major ingest's intermediate store, chunked by time (:mod:`glass_sm.data.ingest`)."""
        return self.data / "ingest.zarr"

    @property
    def truth(self) -> Path:
        return self.data / "truth.nc"

    @property
    def checkpoint(self) -> Path:
        """The production checkpoint (stage 03 -> stage 04): ``models/atlstm_final.pt``."""
        return self.model_file(FINAL_MODEL, ".pt")

    @property
    def checkpoint_json(self) -> Path:
        """The checkpoint's sidecar (features, normalizer, params, metrics)."""
        return self.model_file(FINAL_MODEL, ".json")

    @property
    def checkpoint_card(self) -> Path:
        """The checkpoint's model card (markdown)."""
        return self.model_file(FINAL_MODEL, ".md")

    @property
    def checkpoint_history(self) -> Path:
        """The production model's training history (per epoch)."""
        return self.models / f"{FINAL_MODEL}_history.csv"

    @property
    def bench_machine(self) -> Path:
        """The machine description written by ``make bench`` beside its table (``tables/bench.json``)."""
        return self.tables / "bench.json"

    def model_file(self, stem: str, suffix: str = ".pt") -> Path:
        """``models/<stem><suffix>`` (e.g. the stage-02 comparison checkpoints ``compare_site_lstm.pt``)."""
        return self.models / f"{stem}{suffix}"

    def figure(self, name: str, fmt: str = "png") -> Path:
        """``figures/<name>.<fmt>``."""
        return self.figures / f"{name}.{fmt}"

    def ensure(self) -> "RunPaths":
        """Create every folder (idempotent)."""
        for p in (self.raw, self.models, self.tables, self.figures, self.notebooks, self.product,
                  self.provenance):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def table(self, name: str) -> Path:
        """Path of the declared table ``name`` (see :mod:`glass_sm.contract`; an undeclared name is an error)."""
        from glass_sm.contract import table_path  # noqa: PLC0415 (contract imports this module)

        self.tables.mkdir(parents=True, exist_ok=True)
        return table_path(self, name)


def atomic_path(path: str | os.PathLike) -> Path:
    """The temporary sibling ``.<name>.partial`` that :func:`atomic_write` writes before renaming."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it onto ``path``, on error remove it.

    Works for files and folders (e.g. a zarr store): ``with atomic_write(p) as tmp: ds.to_netcdf(tmp)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    _remove(tmp)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if tmp.is_dir() and path.exists():
        _remove(path)
    os.replace(tmp, path)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()
