"""glass_sm.cluster: the in-process mode and argument checks (a real scheduler with worker processes is exercised
by tests/integration/test_dask_cluster.py)."""

from __future__ import annotations

import pytest

from glass_sm.cluster import cluster_client


def test_synchronous_yields_no_client():
    with cluster_client("tcp://ignored:1", n_workers=4, scheduler="synchronous") as c:
        assert c is None  # no cluster made, no connection tried


def test_bad_scheduler_and_counts_rejected_before_any_cluster():
    with pytest.raises(ValueError, match="scheduler"):
        with cluster_client(scheduler="threads"):
            pass
    with pytest.raises(ValueError, match="n_workers"):
        with cluster_client(n_workers=0):
            pass
