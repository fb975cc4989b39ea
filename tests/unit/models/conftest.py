"""Fixtures of the model tests."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every model test runs with one torch thread (``one_torch_thread`` of tests/conftest.py)."""
