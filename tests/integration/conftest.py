"""The smoke run as a chain of session fixtures in stage order: ``stage01`` -> ``stage02`` -> ... -> ``stage06``.

Each fixture runs its stage notebook once, through papermill (``tools/pipeline.py``'s :func:`run_stage`), on
``params/smoke.yaml`` into one temporary results folder, after the fixtures of the stages before it. A test asks
only for the fixture of the stage it checks, so each runs alone (``pytest tests/integration -k stage05`` runs
stages 01-04 as fixtures, then 05 and its test). Fixtures return frozen :class:`StageRun` records; no test
changes what another one sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

import pipeline
from glass_sm import config
from glass_sm.paths import RunPaths

REPO = pipeline.find_repo(Path(__file__))
SMOKE = REPO / "params" / "smoke.yaml"


@dataclass(frozen=True)
class StageRun:
    """One executed stage of the smoke run.

    Attributes
    ----------
    stage : str
        ``NN_name``.
    notebook : Path
        The executed notebook.
    paths : RunPaths
        The run's files (``paths.root`` is ``<tmp>/smoke``).
    overrides : tuple
        ``(key, value)`` overrides of ``params/smoke.yaml`` the run used (the temporary results folder).
    """

    stage: str
    notebook: Path
    paths: RunPaths
    overrides: tuple

    @property
    def cfg(self) -> config.Config:
        """The run's parameters (a fresh object on each access)."""
        return config.load(SMOKE, dict(self.overrides))


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> tuple:
    """The overrides that send the smoke run into a temporary results folder (outside the repository)."""
    return (("run.results_dir", str(tmp_path_factory.mktemp("results"))),)


def run_smoke_stage(stage: str, overrides: tuple) -> StageRun:
    """Run ``stage`` of the smoke run through papermill; fail with the error cells if any."""
    if stage not in pipeline.stage_notebooks(REPO):
        pytest.skip(f"notebook {stage} not written yet")
    out = pipeline.run_stage(stage, SMOKE, dict(overrides), repo=REPO)
    nb = nbformat.read(out, as_version=4)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{stage}: {errors}"
    cfg = config.load(SMOKE, dict(overrides))
    return StageRun(stage, out, RunPaths(pipeline.results_root(cfg, REPO)), overrides)


@pytest.fixture(scope="session")
def stage01(smoke_results) -> StageRun:
    return run_smoke_stage("01_data_preparation", smoke_results)


@pytest.fixture(scope="session")
def stage02(stage01) -> StageRun:
    return run_smoke_stage("02_model_comparison", stage01.overrides)


@pytest.fixture(scope="session")
def stage03(stage02) -> StageRun:
    return run_smoke_stage("03_atlstm_training", stage02.overrides)


@pytest.fixture(scope="session")
def stage04(stage03) -> StageRun:
    return run_smoke_stage("04_global_production", stage03.overrides)


@pytest.fixture(scope="session")
def stage05(stage04) -> StageRun:
    return run_smoke_stage("05_validation", stage04.overrides)


@pytest.fixture(scope="session")
def stage06(stage05) -> StageRun:
    return run_smoke_stage("06_paper_figures", stage05.overrides)
