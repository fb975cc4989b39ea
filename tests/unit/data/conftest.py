"""Fixtures of the samples tests: toy cubes (glass_sm.testing) and a configuration factory."""

from __future__ import annotations

import pytest

from glass_sm import config
from glass_sm.testing import make_toy_cube

SAMPLES_OVERRIDES = {"samples.block_size": 2, "samples.window": 10, "run.seed": 3}


@pytest.fixture(scope="module")
def samples_cfg():
    """``samples_cfg(split="site", ...)``: the default configuration with small samples; bare keys are
    ``samples.<key>``."""

    def make(**over):
        return config.load(None, {**SAMPLES_OVERRIDES,
                                  **{f"samples.{k}" if "." not in k else k: v for k, v in over.items()}})

    return make


@pytest.fixture(scope="module")
def toy_cube():
    return make_toy_cube(n_lat=6, n_lon=5, start="1999-06-01", end="2002-06-30", seed=1)


@pytest.fixture(scope="module")
def toy_cube_truth():
    return make_toy_cube(n_lat=4, n_lon=4, start="1999-10-01", end="2001-03-31", seed=2, with_truth=True)
