"""glass_sm.figures.style: maps render offline (no Natural Earth download) and figures are saved."""

import socket

import numpy as np
import pytest

from glass_sm.figures import style as plots
from glass_sm.grid import Domain


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_map_renders_offline_and_saves(tmp_path, no_network):
    plots.style()
    da = Domain.from_bounds(39.0, 40.0, -101.0, -99.0).template("sm")
    da[:] = np.linspace(0.05, 0.45, da.size).reshape(da.shape)
    da.attrs["units"] = "m3 m-3"
    fig, ax = plots.plot_map(da, title="test", vmin=0, vmax=0.5, pad_deg=2)
    paths = plots.savefig(fig, tmp_path, "map", formats=("png", "pdf"), dpi=50)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    # coastlines/borders were drawn from the shipped shapefiles
    assert len(ax.collections) >= 2
