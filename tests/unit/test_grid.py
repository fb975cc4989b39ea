"""glass_sm.grid: the 0.05 deg grid, domains, aggregation."""

import numpy as np
import pytest

from glass_sm.grid import NCOLS, NROWS, Domain, block_mean, upsample_repeat


def test_global_domain_matches_glass_grid():
    g = Domain.from_bounds(-90, 90, -180, 180)
    assert (g.nrows, g.ncols) == (NROWS, NCOLS)
    assert g.lat[0] == pytest.approx(89.975) and g.lat[-1] == pytest.approx(-89.975)
    assert g.lon[0] == pytest.approx(-179.975) and g.lon[-1] == pytest.approx(179.975)


def test_from_bounds_snaps_outward_and_edges():
    d = Domain.from_bounds(40.01, 40.39, -99.99, -99.61)
    assert (d.north, d.south, d.west, d.east) == (40.4, 40.0, -100.0, -99.6)
    assert d.shape == (8, 8)
    assert np.all(np.diff(d.lat) < 0) and np.all(np.diff(d.lon) > 0)


def test_index_of_and_contains():
    d = Domain.from_bounds(40.0, 40.4, -100.0, -99.6)
    assert d.index_of(40.399, -99.999) == (0, 0)
    assert d.index_of(40.001, -99.601) == (7, 7)
    with pytest.raises(ValueError, match="outside the domain"):
        d.index_of(41.0, -99.8)
    assert d.contains(40.2, -99.8) and not d.contains(40.5, -99.8)


def test_coarsen_and_slices():
    d = Domain.from_bounds(40.0, 40.4, -100.0, -99.6)
    c = d.coarsen(2)
    assert c.res == pytest.approx(0.1) and c.shape == (4, 4)
    assert np.allclose(c.lat, block_mean(np.broadcast_to(d.lat[:, None], d.shape), 2)[:, 0])
    inner = Domain(d.row0 + 2, d.col0 + 3, 2, 2)
    rs, cs = inner.slices_in(d)
    assert (rs, cs) == (slice(2, 4), slice(3, 5))
    with pytest.raises(ValueError, match="not inside"):
        d.slices_in(inner)
    e = Domain(d.row0 + 1, d.col0 + 1, 3, 3).expand_to_multiple(2)
    assert e.row0 % 2 == 0 and e.nrows % 2 == 0 and e.ncols % 2 == 0


def test_block_mean_ignores_nan_and_closed_form():
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    m = block_mean(a, 2)
    assert m.tolist() == [[2.5, 4.5], [10.5, 12.5]]
    a[0, 0] = np.nan
    assert block_mean(a, 2)[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    assert np.isnan(block_mean(a, 2, min_valid=4)[0, 0])
    # mean of an upsampled field gives the field back
    assert np.array_equal(block_mean(upsample_repeat(m, 3), 3), m)


def test_template_has_cf_coords():
    t = Domain.from_bounds(40.0, 40.4, -100.0, -99.6).template()
    assert t.lat.attrs["units"] == "degrees_north" and t.lon.attrs["standard_name"] == "longitude"


def test_nearest_index_regular_descending_and_outside():
    from glass_sm.grid import nearest_index

    lat = np.array([40.375, 40.325, 40.275])  # descending, 0.05 deg
    idx, inside = nearest_index(lat, [40.38, 40.31, 40.2501, 40.24, np.nan])
    assert idx[:3].tolist() == [0, 1, 2]
    assert inside.tolist() == [True, True, True, False, False]
    # ties go to the lower coordinate value, ascending or descending alike
    assert nearest_index([0.0, 1.0], [0.5])[0][0] == nearest_index([1.0, 0.0], [0.5])[0][0] ^ 1
