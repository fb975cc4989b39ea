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



# ----------------------------------------------------------------------------------------------------------
# Global or regional; each grid's own cells (issue 16)
# ----------------------------------------------------------------------------------------------------------
def test_global_extent_decision_and_panel_aspect():
    assert maps.is_global((-180.0, 180.0, -57.0, 81.0))
    assert maps.is_global((-170.0, 130.0, -10.0, 10.0))  # 300 deg: still the globe
    assert not maps.is_global((-100.0, -99.6, 40.0, 40.4))
    assert not maps.is_global((-20.0, 170.0, 0.0, 80.0))  # Eurasia-wide: a regional map
    assert maps.map_aspect((-180.0, 180.0, -57.0, 81.0)) == 2.0
    assert maps.map_aspect((-101.0, -99.0, 39.0, 40.0)) == 2.0
    assert maps.map_aspect((-101.0, -100.9, 39.0, 40.0)) == 0.6  # clipped


def test_cell_edges_and_cells_in_box_use_the_data_spacing():
    assert maps.grid_step([81.0, 78.0, 75.0]) == 3.0
    np.testing.assert_allclose(maps.cell_edges([81.0, 78.0, 75.0]), [82.5, 79.5, 76.5, 73.5])
    np.testing.assert_allclose(maps.cell_edges([-99.975, -99.925]), [-100.0, -99.95, -99.9])
    np.testing.assert_allclose(maps.cell_edges([10.5], step=3.0), [9.0, 12.0])
    with pytest.raises(ValueError, match="single cell"):
        maps.grid_step([10.0])
    coarse = xr.DataArray(np.arange(12.0).reshape(3, 4), dims=("lat", "lon"),
                          coords={"lat": [43.5, 40.5, 37.5], "lon": [-106.5, -103.5, -100.5, -97.5]})
    # a 1 x 1 deg box inside the cell (40.5 N, 100.5 W) keeps that cell although no centre lies inside it
    one = maps.cells_in_box(coarse, (-101.5, -100.5, 40.0, 41.0))
    assert one.shape == (1, 1) and float(one.values[0, 0]) == 6.0
    # a box on a cell boundary keeps the two cells on either side only
    two = maps.cells_in_box(coarse, (-103.0, -101.0, 40.0, 41.0))
    assert two.shape == (1, 2) and list(two["lon"].values) == [-103.5, -100.5]
    assert maps.extent(coarse) == pytest.approx((-108.0, -96.0, 36.0, 45.0))


def _global_field(res=3.0):
    """A toy global field: NaN 'oceans' (a band of longitudes), one land cell without data, the rest valid."""
    d = Domain.from_bounds(-57.0, 81.0, -180.0, 180.0, res=res)
    da = d.template("sm")
    lon = np.asarray(da["lon"])
    da[:] = 0.1 + 0.3 * (np.asarray(da["lat"])[:, None] + 57) / 138 + 0 * lon[None, :]
    ocean = (lon > -40) & (lon < -10)
    da[:, ocean] = np.nan
    land = xr.ones_like(da, dtype=bool)
    land[:, ocean] = False
    da[3, 3] = np.nan  # land without data
    da.attrs["units"] = "m3 m-3"
    return da, land


def test_global_map_is_a_robinson_world_with_blank_oceans_and_grey_no_data(no_network):
    da, land = _global_field()
    fig, ax = maps.plot_map(da, land=land, vmin=0, vmax=0.5)
    assert isinstance(ax.projection, type(maps.ROBINSON))
    x0, x1, y0, y1 = ax.get_extent(crs=maps.PLATE_CARREE)
    assert x1 - x0 == pytest.approx(360.0, abs=1.0) and y0 == pytest.approx(-57.0, abs=1.0)
    quads = [c for c in ax.collections if hasattr(c, "get_array") and c.get_array() is not None
             and getattr(c.get_array(), "ndim", 0) >= 1 and c.get_array().size >= 1]
    grey, field = quads[0], quads[1]
    # the grey layer holds exactly the one land cell without data; the field masks every NaN (ocean and no data)
    assert int(np.ma.count(grey.get_array())) == 1
    assert int(np.ma.count_masked(field.get_array())) == int(da.isnull().sum())
    assert maps.nodata(ax, da.fillna(0.2), land) is None  # every land cell has a value: nothing grey
    # a tile keeps the PlateCarree look
    _, ax2 = maps.plot_map(_field(), cbar=False)
    assert isinstance(ax2.projection, type(maps.PLATE_CARREE))


def test_projected_paths_are_remembered_by_content(no_network):
    """A path of the same vertices is projected once: the second, distinct but equal path gets the very result,
    which is what cartopy itself computes; a different path is projected anew."""
    from cartopy.mpl.geoaxes import InterProjectionTransform
    from matplotlib.path import Path

    assert maps.remember_projected_paths() is maps.remember_projected_paths()  # idempotent: wrapped once
    assert InterProjectionTransform.transform_path_non_affine._by_content
    line = np.column_stack([np.full(50, 30.0), np.linspace(-50.0, 70.0, 50)])  # a meridian, degrees
    tr = InterProjectionTransform(maps.PLATE_CARREE, maps.ROBINSON)
    first = tr.transform_path_non_affine(Path(line.copy()))
    again = InterProjectionTransform(maps.PLATE_CARREE, maps.ROBINSON).transform_path_non_affine(Path(line.copy()))
    assert again is first
    expected = maps.ROBINSON.transform_points(maps.PLATE_CARREE, line[:, 0], line[:, 1])[:, :2]
    np.testing.assert_allclose(first.vertices[[0, -1]], expected[[0, -1]], rtol=1e-9)
    other = tr.transform_path_non_affine(Path(line + [10.0, 0.0]))
    assert other is not first and other.vertices[0, 0] > first.vertices[0, 0]
