"""Fixtures of the twin tests: one smoke-size twin written once per session (~15 s) and its simulation.

The fixtures are read-only: a test that writes (a second twin, a deleted file) works in its own ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from glass_sm import config
from glass_sm import twin as gtwin

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"


def smoke_cfg(root, **over):
    """The smoke configuration with results under ``root`` and dotted ``over``-rides."""
    return config.load(SMOKE, {"run.results_dir": str(root), **over})


@pytest.fixture(scope="session")
def make_cfg():
    """``make_cfg(root, **over)``: :func:`smoke_cfg` (the smoke configuration under ``root``)."""
    return smoke_cfg


@pytest.fixture(scope="session")
def smoke_twin(tmp_path_factory):
    """``(cfg, files)``: the smoke twin written by :func:`glass_sm.twin.generate_twin`."""
    cfg = smoke_cfg(tmp_path_factory.mktemp("twin"))
    return cfg, gtwin.generate_twin(cfg, progress=False)


@pytest.fixture(scope="session")
def smoke_sim(smoke_twin):
    """``(cfg, sim, avhrr)``: the smoke twin's simulation (:func:`simulate_truth`, :func:`simulate_avhrr`)."""
    cfg, _ = smoke_twin
    s = gtwin.simulate_truth(cfg)
    return cfg, s, gtwin.simulate_avhrr(cfg, s)


@pytest.fixture(scope="session")
def smoke_retrieval(smoke_sim):
    """``(cfg, sim, retrieval)``: the smoke twin's label retrieval (:func:`glass_sm.twin.labels.retrieval_labels`)."""
    cfg, s, _ = smoke_sim
    return cfg, s, gtwin.retrieval_labels(cfg, s)
