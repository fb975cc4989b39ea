"""glass_sm.data.cube gap filling: closed forms and invariants."""

import numpy as np
import pandas as pd
import pytest

from glass_sm.data.cube import doy_climatology, fill_gaps


def test_short_gap_linear_interpolation_and_flags():
    t = pd.date_range("2001-01-01", periods=10)
    v = np.arange(10, dtype=float)[:, None].repeat(2, axis=1)
    v[3:6, 0] = np.nan
    out, flag = fill_gaps(v, t, max_gap_days=5)
    assert np.allclose(out[:, 0], np.arange(10))
    assert flag[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert flag[:, 1].sum() == 0 and out.dtype == np.float32
    # observed values are never changed
    assert np.array_equal(out[~flag.astype(bool)], v[~flag.astype(bool)].astype(np.float32))


def test_long_gap_uses_climatology_not_interpolation():
    t = pd.date_range("2000-01-01", "2003-12-31")
    doy = t.dayofyear.values
    clim = 10 + np.sin(2 * np.pi * doy / 365.25)
    v = clim[:, None].copy()
    gap = (t >= "2002-03-01") & (t < "2002-06-01")  # 92 days
    v[gap, 0] = np.nan
    out, flag = fill_gaps(v, t, max_gap_days=30)
    assert flag[gap, 0].all()
    # a 31-day moving mean damps a unit annual sine by 1 - sinc(31/365.25) ~ 0.012
    assert np.max(np.abs(out[gap, 0] - clim[gap])) < 0.03


def test_edges_and_all_nan_pixel_use_day_mean():
    t = pd.date_range("2001-01-01", periods=6)
    v = np.array([[np.nan, 1.0], [np.nan, 2.0], [np.nan, 3.0], [np.nan, 4.0], [np.nan, 5.0], [np.nan, 6.0]])
    out, flag = fill_gaps(v, t, max_gap_days=3)
    assert np.allclose(out[:, 0], out[:, 1])  # day mean of the other pixel
    assert flag[:, 0].all()


def test_doy_climatology_constant_field():
    t = pd.date_range("2001-01-01", "2002-12-31")
    v = np.full((len(t), 3), 2.5)
    c = doy_climatology(v, t.dayofyear.values)
    assert c.shape == (366, 3)
    assert np.allclose(c, 2.5)
