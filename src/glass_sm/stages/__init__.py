"""The six stages of the paper, one module each; every notebook calls its stage module and nothing else.

``ctx = stages.setup(params_file, overrides, "05_validation")`` loads and validates the parameters, creates the run
folders, writes the provenance record (resolved parameters, git commit, package versions), applies the figure
style and returns a :class:`StageContext` that the stage functions take.

Modules: ``s01_data`` (sources -> cube), ``s02_models`` (model comparison), ``s03_atlstm`` (final AtLSTM,
sequence length, attention, importance), ``s04_production`` (tiled inference -> CF-NetCDF), ``s05_validation``
(in situ, intercomparison, wet bias, triple collocation, consistency, trends), ``s06_figures`` (the paper's
figures and tables from the files the stages wrote).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from glass_sm import config
from glass_sm.contract import STAGES
from glass_sm.figures import style
from glass_sm.grid import Domain
from glass_sm.paths import RunPaths

__all__ = ["StageContext", "setup", "STAGES"]


@dataclass
class StageContext:
    """What every stage function needs: parameters, paths, domain and how to label and save figures."""

    cfg: config.Config
    paths: RunPaths
    stage: str
    domain: Domain

    @property
    def is_twin(self) -> bool:
        """True when the run's inputs are the synthetic twin (results must be labelled as such)."""
        return bool(self.cfg.is_twin)

    @property
    def data_label(self) -> str:
        """``'synthetic twin (not the paper's data)'`` or ``'real data'``: goes into every title and caption."""
        return style.TWIN_LABEL if self.is_twin else "real data"

    def savefig(self, fig, name: str) -> list[Path]:
        """Save ``fig`` as ``figures/<name>.<fmt>`` for each of ``figures.formats`` at ``figures.dpi``."""
        return style.savefig(fig, self.paths.figures, name, self.cfg.figures.formats, self.cfg.figures.dpi)

    def open_truth(self) -> xr.Dataset | None:
        """The twin's hidden truth (``data.truth_path``: ``sm_true`` and the climate fields) or None.

        None for real data or when the file does not exist; evaluation only, never a model input.
        """
        path = self.cfg.data.truth_path
        if not self.is_twin or not path or not Path(path).exists():
            return None
        return xr.open_dataset(path, engine="netcdf4")

    def describe(self) -> str:
        """One line: run name, grid, period, data label."""
        d = self.domain
        return (f"run '{self.cfg.run.name}': {d.shape[0]} x {d.shape[1]} cells ({d.bounds_str()}), "
                f"{self.cfg.period.start} .. {self.cfg.period.end}; inputs: {self.data_label}")


def setup(params_file: str | os.PathLike, overrides: dict | None = None, stage: str = "") -> StageContext:
    """Load the run's parameters and prepare the run folders for ``stage`` (one of :data:`STAGES`).

    Raises
    ------
    glass_sm.config.ConfigError
        A bad parameter (named) or an unknown stage name.
    """
    if stage not in STAGES:
        raise config.ConfigError(f"unknown stage '{stage}'; expected one of {', '.join(STAGES)}")
    cfg = config.load(params_file, overrides)
    paths = RunPaths.from_config(cfg).ensure()
    config.write_provenance(cfg, stage)
    style.style()
    return StageContext(cfg=cfg, paths=paths, stage=stage, domain=Domain.from_config(cfg))
