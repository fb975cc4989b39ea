"""Where things live: ``results/<run>/{data,models,tables,figures,notebooks,product,provenance}``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunPaths", "atomic_path"]


@dataclass(frozen=True)
class RunPaths:
    """The folders and files of one run (see ``book/design.md``)."""

    root: Path

    @classmethod
    def from_config(cls, cfg) -> "RunPaths":
        return cls(Path(cfg.run.results_dir) / cfg.run.name)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def cube(self) -> Path:
        return self.data / "cube.zarr"

    @property
    def truth(self) -> Path:
        return self.data / "truth.nc"

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
    def provenance(self) -> Path:
        return self.root / "provenance"

    def ensure(self) -> "RunPaths":
        """Create every folder (idempotent)."""
        for p in (self.raw, self.models, self.tables, self.figures, self.notebooks, self.product,
                  self.provenance):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def table(self, name: str) -> Path:
        """``tables/<name>.csv``."""
        self.tables.mkdir(parents=True, exist_ok=True)
        return self.tables / (name if name.endswith(".csv") else f"{name}.csv")


def atomic_path(path: str | Path) -> Path:
    """A temporary sibling of ``path`` to write to before ``os.replace(tmp, path)``."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")
