"""glass_sm.figures.maps: maps render offline (no Natural Earth download); colour limits and frames."""

import socket

import numpy as np
import pytest
import xarray as xr

from glass_sm.figures import maps, style
from glass_sm.grid import Domain


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _field():
    da = Domain.from_bounds(39.0, 40.0, -101.0, -99.0).template("sm")
    da[:] = np.linspace(0.05, 0.45, da.size).reshape(da.shape)
    da.attrs["units"] = "m3 m-3"
    return da


def test_map_renders_offline_and_saves(tmp_path, no_network):
    style.style()
    fig, ax = maps.plot_map(_field(), title="test", vmin=0, vmax=0.5, pad_deg=2)
    paths = style.savefig(fig, tmp_path, "map", formats=("png", "pdf"), dpi=50)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    # coastlines/borders were drawn from the shipped shapefiles
    assert len(ax.collections) >= 2
    assert not list(tmp_path.glob(".*partial*"))  # written atomically: no temporary file left


def test_extent_is_the_cell_edges_and_frame_is_drawn(no_network):
    da = _field()
    w, e, s, n = maps.extent(da)
    assert (w, e, s, n) == pytest.approx((-101.0, -99.0, 39.0, 40.0))
    assert maps.extent(da, pad=1.0) == pytest.approx((-102.0, -98.0, 38.0, 41.0))
    fig, ax = maps.plot_map(da, cbar=False)
    maps.frame(ax, (w, e, s, n))
    assert len(ax.patches) >= 1


def test_colour_limits():
    a = xr.DataArray(np.arange(101.0))
    assert maps.robust_limits([a]) == pytest.approx((2.0, 98.0))
    assert maps.robust_limits([a * 0 + 0.3]) == pytest.approx((0.29, 0.31))  # flat field: a small range
    assert maps.robust_limits([a * np.nan]) == (0.0, 1.0)
    assert maps.sym_limit([a - 50, -a]) == pytest.approx(np.percentile(np.abs(np.r_[a - 50, -a]), 98))
    assert maps.sym_limit([a * 0]) == 1e-3

