"""glass_sm.evaluation.validation: in situ validation on REAL ISMN stations, product intercomparison, triple collocation.

The in situ tests read the real ISMN sample stations shipped with the ``ismn`` source distribution
(``ismn_testdata`` fixture) and build a product around them from their own daily means plus a known offset and
noise, so the expected metrics are known (bias ~ offset) or computed by hand from the same collocated series.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm.evaluation import metrics
from glass_sm.grid import Domain, block_mean, upsample_repeat
from glass_sm.evaluation.validation import (compare_products, locate_stations, regrid_like, summarize_sites, summary_table,
                                 tc_at_stations, triple_collocation, validate_against_ismn)

OFFSET = 0.05  # m3 m-3 added to the station series to make the product
NOISE = 0.01  # m3 m-3 sd of the product's noise
MIN_SCORED_DAYS = 150


# ----------------------------------------------------------------------------------------------------------
# Real ISMN stations and products built around them
# ----------------------------------------------------------------------------------------------------------
MULTINETWORK = "zip_archives/multinetwork/header_values/Data_header_values.zip"  # MAQU, SCAN, SOILSCAPE
CEOP_FOLDER = "Data_seperate_files_20170810_20180809"  # CEOP-format folder: FR_Aqui 'fraye' (flag G) + COSMOS


@pytest.fixture(scope="module")
def multinetwork(ismn_testdata):
    """The ismn sample archive with 8 real 5 cm sensors of 3 networks (zip, header+values, CR line ends)."""
    path = ismn_testdata / MULTINETWORK
    if not path.is_file():
        pytest.skip(f"{path} not in this ismn sdist")
    return path


@pytest.fixture(scope="module")
def real_stations(multinetwork, tmp_path_factory):
    """``(read_kwargs, stations, daily)`` of the real sample sensors at 0-5 cm.

    These 2007-2013 sample files carry the ISMN flags 'U' (unchecked), 'D..' and 'C..' and no 'G', so they are
    read with ``good_only=False`` (the values are still the real ones, which is what these tests need).
    """
    from glass_sm.io.ismn import read_ismn

    kwargs = {"cache_dir": tmp_path_factory.mktemp("ismn_cache"), "good_only": False}
    table, daily = read_ismn(multinetwork, progress=False, **kwargs)
    if sum(len(s) >= MIN_SCORED_DAYS for s in daily.values()) < 3:
        pytest.skip(f"{multinetwork} has fewer than 3 sensors with {MIN_SCORED_DAYS} days")
    return kwargs, table, daily


def grid_axis(lo, hi, res, centred_on_edges=True, descending=False, margin=2):
    """Cell centres covering [lo, hi] plus ``margin`` cells: GLASS-like (centres at edges + res/2) or
    ERA5-like (centres on multiples of res)."""
    off = res / 2 if centred_on_edges else 0.0
    k0 = int(np.floor((lo - off) / res)) - margin
    k1 = int(np.ceil((hi - off) / res)) + margin
    c = np.round(off + res * np.arange(k0, k1 + 1), 6)
    return c[::-1] if descending else c


def build_product(table, daily, sids, rng, res=0.05, descending=True, era5_like=False, lon360=False,
                  time=None, background=0.45, nan_fraction=0.05):
    """A daily product on a small grid around the sensors ``sids``: at each sensor's pixel its daily mean +
    OFFSET + N(0, NOISE), a few NaN days; elsewhere ``background`` (m3 m-3)."""
    sub = table.loc[sids]
    lat = grid_axis(sub["lat"].min(), sub["lat"].max(), res, not era5_like, descending)
    lon = grid_axis(sub["lon"].min(), sub["lon"].max(), res, not era5_like)
    if time is None:
        first = min(daily[s].index.min() for s in sids)
        last = max(daily[s].index.max() for s in sids)
        time = pd.date_range(first - pd.Timedelta(days=20), last + pd.Timedelta(days=20), freq="D")
    values = np.full((time.size, lat.size, lon.size), background)
    values += 0.002 * rng.standard_normal(values.shape)  # not constant, so a wrong pixel is noticed
    for sid in sids:
        i = int(np.argmin(np.abs(lat - sub.loc[sid, "lat"])))
        j = int(np.argmin(np.abs(lon - sub.loc[sid, "lon"])))
        s = daily[sid].reindex(time).to_numpy()
        pix = np.where(np.isfinite(s), s, np.nanmean(s)) + OFFSET + NOISE * rng.standard_normal(time.size)
        pix[rng.random(time.size) < nan_fraction] = np.nan
        values[:, i, j] = pix
    lon_coord = np.mod(lon, 360.0) if lon360 else lon
    da = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": time, "lat": lat, "lon": lon_coord},
                      name="sm", attrs={"units": "m3 m-3"})
    if lon360:
        da = da.sortby("lon")
    return da


def hand_collocate(product, lat, lon, series):
    """Independent collocation: nearest centre by brute force, inner join on days, NaN pairs dropped."""
    plon = product["lon"].values
    lon = lon % 360 if plon.max() > 180 else lon
    i = int(np.argmin(np.abs(product["lat"].values - lat)))
    j = int(np.argmin(np.abs(plon - lon)))
    p = pd.Series(product.values[:, i, j], index=pd.DatetimeIndex(product["time"].values))
    both = pd.concat([p, series], axis=1, join="inner").dropna()
    return both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy(), both.index


def long_sensors(table, daily, n=None):
    sids = [sid for sid in table.index if len(daily[sid]) >= MIN_SCORED_DAYS]
    return sids if n is None else sids[:n]


def nearby_group(table, sids, max_deg=1.0):
    """The largest group of sensors within ``max_deg`` of one another (one small grid holds them)."""
    best = []
    for s in sids:
        near = [o for o in sids if abs(table.loc[o, "lat"] - table.loc[s, "lat"]) <= max_deg
                and abs(table.loc[o, "lon"] - table.loc[s, "lon"]) <= max_deg]
        best = near if len(near) > len(best) else best
    return best


# ----------------------------------------------------------------------------------------------------------
# validate_against_ismn on real stations
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", [
    dict(res=0.05, descending=True),                                  # GLASS grid, north-up
    dict(res=0.05, descending=False),                                 # ascending latitude
    dict(res=0.1, descending=True, era5_like=True, lon360=True),      # ERA5-Land: 0.1 deg, 0..360
])
def test_validate_real_stations_recovers_offset_and_hand_metrics(real_stations, layout):
    _, table, daily = real_stations
    sids = long_sensors(table, daily)
    group = nearby_group(table, sids)
    rng = np.random.default_rng(7)
    product = build_product(table, daily, group, rng, **layout)
    df = validate_against_ismn(product, stations=(table, daily), n_boot=200, progress=False)

    assert len(df) == len(table)  # every sensor listed, none dropped
    assert list(df["sensor_id"]) == list(table.index)
    df = df.set_index("sensor_id")
    for sid in group:
        row = df.loc[sid]
        assert row["status"] == "ok", row["status"]
        est, ref, days = hand_collocate(product, table.loc[sid, "lat"], table.loc[sid, "lon"], daily[sid])
        diff = est - ref
        assert row["n"] == len(est)
        assert row["bias"] == pytest.approx(OFFSET, abs=4 * NOISE / np.sqrt(len(est)) + 1e-4)
        assert row["bias"] == pytest.approx(diff.mean(), rel=1e-10)
        assert row["r"] == pytest.approx(np.corrcoef(est, ref)[0, 1], rel=1e-10)
        assert row["ubrmse"] == pytest.approx(np.sqrt(np.mean((diff - diff.mean()) ** 2)), rel=1e-10)
        assert row["ubrmse"] == pytest.approx(NOISE, rel=0.25)
        assert row["rmse"] == pytest.approx(np.sqrt(np.mean(diff**2)), rel=1e-10)
        assert row["r_lo"] <= row["r"] <= row["r_hi"]
        assert row["ubrmse_lo"] <= row["ubrmse"] <= row["ubrmse_hi"]
        assert row["first"] == days[0] and row["last"] == days[-1]
        assert row["period"] == "post-2000"  # the sample stations all start after 2000
        assert abs(row["pixel_lat"] - table.loc[sid, "lat"]) <= layout["res"] / 2 + 1e-9
        assert row["distance_km"] < layout["res"] * 111 * 0.75
    for sid in set(table.index) - set(group):
        assert df.loc[sid, "status"] in ("outside product",) or df.loc[sid, "status"].startswith("no station")
        assert np.isnan(df.loc[sid, "r"]) and df.loc[sid, "n"] == 0


def test_validate_lists_station_outside_product(real_stations):
    _, table, daily = real_stations
    sids = long_sensors(table, daily)
    rng = np.random.default_rng(1)
    target = sids[0]
    product = build_product(table, daily, [target], rng)
    # move one more station just beyond the grid's edge (half a cell + epsilon): outside
    t2 = table.copy()
    other = sids[1]
    t2.loc[other, "lat"] = float(product["lat"].max()) + 0.025 + 1e-6
    t2.loc[other, "lon"] = float(product["lon"].min())
    # and one exactly on the half-cell edge: inside
    edge = sids[2] if len(sids) > 2 else None
    if edge is not None:
        t2.loc[edge, "lat"] = float(product["lat"].min()) - 0.025
        t2.loc[edge, "lon"] = float(product["lon"].max())
    df = validate_against_ismn(product, stations=(t2, daily), n_boot=0, progress=False).set_index("sensor_id")
    assert df.loc[target, "status"] == "ok"
    assert df.loc[other, "status"] == "outside product"
    assert np.isnan(df.loc[other, "pixel_lat"]) and np.isnan(df.loc[other, "bias"])
    if edge is not None:
        assert df.loc[edge, "status"] != "outside product"
    assert np.isnan(df.loc[target, "r_lo"])  # n_boot=0: no intervals


def test_validate_too_few_days(real_stations):
    _, table, daily = real_stations
    sid = long_sensors(table, daily)[0]
    s = daily[sid]
    time = pd.date_range(s.index[0], periods=40, freq="D")  # the product covers only 40 days
    product = build_product(table, daily, [sid], np.random.default_rng(2), time=time, nan_fraction=0.0)
    df = validate_against_ismn(product, stations=(table, daily), min_days=60, progress=False)
    row = df.set_index("sensor_id").loc[sid]
    n = int(s.reindex(time).notna().sum())
    assert row["status"] == f"too few days (n={n})"
    assert row["n"] == n and np.isnan(row["r"])
    # the same sensor passes when fewer days are required
    df = validate_against_ismn(product, stations=(table, daily), min_days=n, n_boot=50, progress=False)
    assert df.set_index("sensor_id").loc[sid, "status"] == "ok"


def test_validate_reads_the_archive_itself(real_stations, multinetwork):
    """End to end through read_ismn on the zip archive: the same table as from the pre-read stations."""
    kwargs, table, daily = real_stations
    sids = long_sensors(table, daily)
    group = nearby_group(table, sids)
    product = build_product(table, daily, group, np.random.default_rng(3))
    direct = validate_against_ismn(product, multinetwork, n_boot=50, progress=False, read_kwargs=kwargs)
    pre = validate_against_ismn(product, stations=(table, daily), n_boot=50, progress=False)
    pd.testing.assert_frame_equal(direct, pre)
    assert (direct["status"] == "ok").sum() == len(group)


def test_validate_good_flag_folder_end_to_end(ismn_testdata, tmp_path):
    """A CEOP-format folder read with the default good-only ('G') selection; the 0-19 cm COSMOS probes are
    not 0-5 cm sensors, so only FR_Aqui 'fraye' (5 cm) is validated."""
    from glass_sm.io.ismn import read_ismn

    folder = ismn_testdata / CEOP_FOLDER
    if not folder.is_dir():
        pytest.skip(f"{folder} not in this ismn sdist")
    kwargs = {"cache_dir": tmp_path / "cache"}
    table, daily = read_ismn(folder, progress=False, **kwargs)
    assert list(table["station"]) == ["fraye"]
    product = build_product(table, daily, list(table.index), np.random.default_rng(6))
    df = validate_against_ismn(product, folder, n_boot=100, progress=False, read_kwargs=kwargs)
    row = df.iloc[0]
    assert len(df) == 1 and row["status"] == "ok" and row["network"] == "FR_Aqui"
    est, ref, _ = hand_collocate(product, row["lat"], row["lon"], daily[row["sensor_id"]])
    assert row["n"] == len(est) > 1000
    assert row["bias"] == pytest.approx(OFFSET, abs=4 * NOISE / np.sqrt(len(est)))
    assert row["r"] == pytest.approx(np.corrcoef(est, ref)[0, 1], rel=1e-10)
    assert row["ubrmse"] == pytest.approx(np.std(est - ref), rel=1e-10)


def test_validate_period_window_and_summary(real_stations):
    _, table, daily = real_stations
    sids = long_sensors(table, daily)
    group = nearby_group(table, sids)
    product = build_product(table, daily, group, np.random.default_rng(4))
    start = max(daily[s].index[0] for s in group)
    end = start + pd.Timedelta(days=100)
    df = validate_against_ismn(product, stations=(table, daily), start=start, end=end, min_days=30,
                               n_boot=0, progress=False)
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 1
    assert (ok["first"] >= start).all() and (ok["last"] <= end).all() and (ok["n"] <= 101).all()
    summ = summarize_sites(df)
    assert summ.loc["all", "n_sites"] == len(ok) and summ.loc["all", "n_listed"] == len(df)
    assert summ.loc["all", "bias"] == pytest.approx(ok["bias"].median())
    assert summ.loc["post-2000", "ubrmse"] == pytest.approx(ok["ubrmse"].median())


# ----------------------------------------------------------------------------------------------------------
# validate_against_ismn: statuses and periods on a synthetic pre-read table (closed forms)
# ----------------------------------------------------------------------------------------------------------
def synthetic_stations():
    t = pd.date_range("1997-01-01", "2003-12-31", freq="D")
    rng = np.random.default_rng(0)
    base = 0.25 + 0.05 * np.sin(2 * np.pi * np.arange(t.size) / 365.25)
    daily = {
        "A/a/s/0-0.05m": pd.Series(base + 0.01 * rng.standard_normal(t.size), index=t),  # both periods
        "A/b/s/0-0.05m": pd.Series(base[:730], index=t[:730]),  # 1997-1998: pre-2000
        "A/c/s/0-0.05m": pd.Series([], dtype=float, index=pd.DatetimeIndex([])),  # read failure
        "A/d/s/0-0.05m": pd.Series([], dtype=float, index=pd.DatetimeIndex([])),  # no good values
        "A/e/s/0-0.05m": pd.Series(base, index=t),  # on an all-NaN (sea) pixel
    }
    table = pd.DataFrame({
        "network": "A", "station": list("abcde"), "lat": [40.01, 40.03, 40.01, 40.03, 40.06],
        "lon": [-99.99, -99.96, -99.99, -99.96, -99.94], "elevation": 100.0, "depth_from": 0.0, "depth_to": 0.05,
        "sensor": "s", "note": ["", "", "read failed: x.stm: variable soil_moisture: ValueError: bad line",
                                "no good (flag G) values", ""],
    }, index=pd.Index(list(daily), name="sensor_id"))
    dom = Domain.from_bounds(40.0, 40.1, -100.0, -99.9)
    values = np.tile((base + 0.02)[:, None, None], (1, *dom.shape))
    values[:, 0, 1] = np.nan  # pixel of station e
    product = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": t, "lat": dom.lat, "lon": dom.lon})
    return table, daily, product


def test_validate_statuses_and_periods():
    table, daily, product = synthetic_stations()
    df = validate_against_ismn(product, stations=(table, daily), n_boot=0, progress=False).set_index("sensor_id")
    st = df["status"]
    assert st["A/a/s/0-0.05m"] == "ok" and df.loc["A/a/s/0-0.05m", "period"] == "both"
    assert st["A/b/s/0-0.05m"] == "ok" and df.loc["A/b/s/0-0.05m", "period"] == "pre-2000"
    assert st["A/c/s/0-0.05m"] == "read error: x.stm: variable soil_moisture: ValueError: bad line"
    assert st["A/d/s/0-0.05m"] == "no station data in period (no good (flag G) values)"
    assert st["A/e/s/0-0.05m"] == "no valid product values"
    assert df.loc["A/b/s/0-0.05m", "bias"] == pytest.approx(0.02)
    assert df.loc["A/b/s/0-0.05m", "ubrmse"] == pytest.approx(0.0, abs=1e-12)
    # the period follows the collocated days: a product from 2000 on makes station a 'post-2000'
    later = validate_against_ismn(product.sel(time=slice("2000-01-01", None)), stations=(table, daily),
                                  n_boot=0, progress=False).set_index("sensor_id")
    assert later.loc["A/a/s/0-0.05m", "period"] == "post-2000"
    assert later.loc["A/b/s/0-0.05m", "status"] == "too few days (n=0)"


def test_validate_split_periods():
    table, daily, product = synthetic_stations()
    df = validate_against_ismn(product, stations=(table, daily), n_boot=0, progress=False, split_periods=True)
    a = df[df["sensor_id"] == "A/a/s/0-0.05m"].set_index("period")
    assert list(a.index) == ["pre-2000", "post-2000"]
    assert a.loc["pre-2000", "n"] == 1095 and a.loc["post-2000", "n"] == 1461
    assert a.loc["pre-2000", "last"] == pd.Timestamp("1999-12-31")
    s = daily["A/a/s/0-0.05m"]
    p = product.values[:, 0, 0]
    pre = s.index < "2000-01-01"
    assert a.loc["pre-2000", "r"] == pytest.approx(metrics.r(p[pre], s.values[pre]), rel=1e-12)
    summ = summarize_sites(df)
    assert summ.loc["pre-2000", "n_sites"] == 2 and summ.loc["post-2000", "n_sites"] == 1


def test_locate_stations_half_cell_tolerance():
    dom = Domain.from_bounds(40.0, 40.2, -100.0, -99.8)  # centres 40.175..40.025, -99.975..-99.825
    da = xr.DataArray(np.zeros((1, *dom.shape)), dims=("time", "lat", "lon"),
                      coords={"time": [np.datetime64("2001-01-01")], "lat": dom.lat, "lon": dom.lon})
    where = locate_stations(da, [40.05, 40.0, 39.99, 40.2, 40.1999, 40.1], [-99.9, -99.9, -99.9, -99.9, 260.1, -99.8])
    assert list(where["inside"]) == [True, True, False, True, True, True]
    assert where.loc[0, "pixel_lat"] in (40.025, 40.075)  # on the shared edge: either neighbour
    assert where.loc[4, "pixel_lon"] == pytest.approx(-99.875)  # 260.1 E == -99.9
    assert where.loc[5, "pixel_lon"] == pytest.approx(-99.825)


# ----------------------------------------------------------------------------------------------------------
# Product vs product
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def grids():
    d05 = Domain.from_bounds(40.0, 41.0, -100.0, -99.0)  # 20 x 20 at 0.05 deg
    return d05, d05.coarsen(2), Domain.from_bounds(40.0, 41.0, -100.0, -99.0, res=0.01)


def test_compare_coarser_reference_nearest(grids):
    d05, d10, _ = grids
    rng = np.random.default_rng(0)
    t = pd.date_range("2001-01-01", periods=90)
    era = xr.DataArray(rng.uniform(0.1, 0.4, (90, *d10.shape)), dims=("time", "latitude", "longitude"),
                       coords={"time": t, "latitude": d10.lat, "longitude": np.mod(d10.lon, 360)}, name="era5")
    ours = xr.DataArray(upsample_repeat(era.values, 2) + 0.03, dims=("time", "lat", "lon"),
                        coords={"time": t + pd.Timedelta(hours=12), "lat": d05.lat, "lon": d05.lon}, name="ours")
    ds = compare_products(ours, era)
    np.testing.assert_allclose(ds["bias"], 0.03, atol=1e-12)
    np.testing.assert_allclose(ds["rmse"], 0.03, atol=1e-12)
    np.testing.assert_allclose(ds["ubrmse"], 0.0, atol=1e-12)
    np.testing.assert_allclose(ds["r"], 1.0, atol=1e-12)
    assert (ds["n"] == 90).all() and ds.attrs["regrid"] == "lat: nearest, lon: nearest"


def test_compare_finer_reference_block_mean(grids):
    d05, _, d01 = grids
    rng = np.random.default_rng(1)
    t = pd.date_range("2001-01-01", periods=40)
    fine = rng.uniform(0.1, 0.4, (40, *d01.shape))
    fine[:, 3, 4] = np.nan
    ref = xr.DataArray(fine[:, ::-1], dims=("time", "lat", "lon"),  # ascending latitude
                       coords={"time": t, "lat": d01.lat[::-1], "lon": d01.lon}, name="fine")
    ours = xr.DataArray(block_mean(fine, 5) - 0.01, dims=("time", "lat", "lon"),
                        coords={"time": t, "lat": d05.lat, "lon": d05.lon}, name="ours")
    ds = compare_products(ours, ref)
    np.testing.assert_allclose(ds["bias"], -0.01, atol=1e-12)
    np.testing.assert_allclose(ds["ubrmse"], 0.0, atol=1e-12)
    assert ds.attrs["regrid"] == "lat: mean, lon: mean"
    np.testing.assert_allclose(regrid_like(ref, ours).sel(lat=ours.lat).values, block_mean(fine, 5), atol=1e-12)


def test_compare_per_pixel_equals_metrics_module(grids):
    d05, d10, _ = grids
    rng = np.random.default_rng(2)
    t = pd.date_range("2001-01-01", periods=120)
    truth = rng.uniform(0.1, 0.4, (120, *d05.shape))
    a = truth + 0.02 * rng.standard_normal(truth.shape)
    a[rng.random(a.shape) < 0.2] = np.nan
    b = block_mean(truth, 2) + 0.05 + 0.03 * rng.standard_normal((120, *d10.shape))
    b[rng.random(b.shape) < 0.1] = np.nan
    a_da = xr.DataArray(a, dims=("time", "lat", "lon"), coords={"time": t, "lat": d05.lat, "lon": d05.lon})
    b_da = xr.DataArray(b, dims=("time", "lat", "lon"), coords={"time": t, "lat": d10.lat, "lon": d10.lon})
    ds = compare_products(a_da, b_da, min_pairs=30)
    b_up = upsample_repeat(b, 2)
    for i, j in [(0, 0), (7, 13), (19, 2)]:
        assert int(ds["n"][i, j]) == metrics.n_valid(a[:, i, j], b_up[:, i, j])
        for name in ("bias", "r", "rmse", "ubrmse"):
            assert float(ds[name][i, j]) == pytest.approx(metrics.METRICS[name](a[:, i, j], b_up[:, i, j]),
                                                          rel=1e-9)
    # too few common days: NaN metrics, n still given
    ds_strict = compare_products(a_da, b_da, min_pairs=200)
    assert np.isnan(ds_strict["bias"]).all() and int(ds_strict["n"][0, 0]) == int(ds["n"][0, 0])


def test_compare_dask_equals_numpy(grids):
    pytest.importorskip("dask")
    d05, d10, _ = grids
    rng = np.random.default_rng(3)
    t = pd.date_range("2001-01-01", periods=60)
    a = xr.DataArray(rng.uniform(0, 0.4, (60, *d05.shape)), dims=("time", "lat", "lon"),
                     coords={"time": t, "lat": d05.lat, "lon": d05.lon})
    b = xr.DataArray(rng.uniform(0, 0.4, (60, *d10.shape)), dims=("time", "lat", "lon"),
                     coords={"time": t, "lat": d10.lat, "lon": d10.lon})
    lazy = compare_products(a.chunk({"time": 25}), b.chunk({"time": 20}))
    assert lazy["bias"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), compare_products(a, b))


def test_compare_no_common_day():
    a = xr.DataArray(np.zeros((2, 1, 1)), dims=("time", "lat", "lon"),
                     coords={"time": pd.date_range("2001-01-01", periods=2), "lat": [40.0], "lon": [0.0]}, name="a")
    b = a.assign_coords(time=pd.date_range("2005-01-01", periods=2)).rename("b")
    with pytest.raises(ValueError, match="no common day"):
        compare_products(a, b)


def test_summary_table_weights_and_regions():
    lat, lon = np.array([60.0, 0.0]), np.array([10.0, 20.0])
    bias = np.array([[0.1, 0.1], [0.0, np.nan]])
    ds = xr.Dataset({k: (("lat", "lon"), bias) for k in ("bias", "r", "rmse", "ubrmse")},
                    coords={"lat": lat, "lon": lon})
    ds["n"] = (("lat", "lon"), np.full((2, 2), 100))
    tab = summary_table({"x vs y": ds})
    assert tab.loc["x vs y", "n_pixels"] == 3
    assert tab.loc["x vs y", "bias_median"] == pytest.approx(0.1)
    # cos 60 = 0.5: weights 0.5, 0.5, 1 -> (0.05 + 0.05 + 0) / 2
    assert tab.loc["x vs y", "bias_mean"] == pytest.approx(0.05)
    regions = xr.DataArray([["north", "north"], ["south", "south"]], dims=("lat", "lon"),
                           coords={"lat": lat, "lon": lon})
    by_region = summary_table({"x vs y": ds}, regions=regions)
    assert by_region.loc[("x vs y", "south"), "bias_mean"] == 0.0
    assert by_region.loc[("x vs y", "north"), "n_pixels"] == 2


# ----------------------------------------------------------------------------------------------------------
# Triple collocation
# ----------------------------------------------------------------------------------------------------------
def test_triple_collocation_recovers_error_variances():
    rng = np.random.default_rng(0)
    n = 200_000
    t = 0.25 + 0.06 * rng.standard_normal(n)
    s1, s2, s3 = 0.02, 0.03, 0.04
    x = t + s1 * rng.standard_normal(n)
    y = 0.1 + 0.8 * t + s2 * rng.standard_normal(n)
    z = -0.05 + 1.2 * t + s3 * rng.standard_normal(n)
    res = triple_collocation(x, y, z)
    assert res["n"] == n
    assert res["err_var_x"] == pytest.approx(s1**2, rel=0.03)
    assert res["err_var_y"] == pytest.approx(s2**2, rel=0.03)
    assert res["err_var_z"] == pytest.approx(s3**2, rel=0.03)
    assert res["err_sd_z"] == pytest.approx(s3, rel=0.02)
    var_t = 0.06**2
    assert res["rho2_x"] == pytest.approx(var_t / (var_t + s1**2), abs=0.005)
    assert res["rho2_y"] == pytest.approx(0.64 * var_t / (0.64 * var_t + s2**2), abs=0.005)
    snr = 1.44 * var_t / s3**2
    assert res["snr_db_z"] == pytest.approx(10 * np.log10(snr), abs=0.2)


def test_triple_collocation_exact_covariances_and_nan():
    # the estimator is a function of the sample covariance matrix only: check it against np.cov by hand
    rng = np.random.default_rng(1)
    x, y, z = rng.standard_normal((3, 50)) + rng.standard_normal(50)
    x[3] = np.nan
    keep = np.isfinite(x)
    q = np.cov(np.vstack([x[keep], y[keep], z[keep]]))
    res = triple_collocation(x, y, z, names=("a", "b", "c"))
    assert res["n"] == 49
    assert res["err_var_a"] == pytest.approx(q[0, 0] - q[0, 1] * q[0, 2] / q[1, 2])
    assert res["err_var_b"] == pytest.approx(q[1, 1] - q[0, 1] * q[1, 2] / q[0, 2])
    assert res["err_var_c"] == pytest.approx(q[2, 2] - q[0, 2] * q[1, 2] / q[0, 1])
    assert np.isnan(triple_collocation([1.0, 2.0], [1.0, 2.0], [1.0, 2.0])["err_var_x"])


def test_tc_at_real_stations(real_stations):
    _, table, daily = real_stations
    sids = long_sensors(table, daily)
    group = nearby_group(table, sids)
    rng = np.random.default_rng(5)
    product = build_product(table, daily, group, rng, nan_fraction=0.0)  # error sd NOISE
    # a reference at ERA5-Land's 0.1 deg: 0.05 + 0.8 x station + N(0, 0.02)
    era = build_product(table, daily, group, rng, res=0.1, era5_like=True, nan_fraction=0.0)
    sd_ref = 0.02
    for sid in group:
        lat, lon = table.loc[sid, "lat"], table.loc[sid, "lon"]
        i = int(np.argmin(np.abs(era["lat"].values - lat)))
        j = int(np.argmin(np.abs(era["lon"].values - lon)))
        s = daily[sid].reindex(pd.DatetimeIndex(era["time"].values)).to_numpy()
        era.values[:, i, j] = np.where(np.isfinite(s), 0.05 + 0.8 * s + sd_ref * rng.standard_normal(s.size), np.nan)
    out = tc_at_stations(product, era, stations=(table, daily), min_n=100, progress=False,
                         names=("glass", "era5", "insitu")).set_index("sensor_id")
    assert len(out) == len(table)
    for sid in group:
        row = out.loc[sid]
        assert row["status"] == "ok"
        tol = 4 * np.sqrt(2 / row["n"])  # relative sampling error of a variance, generously
        assert row["err_var_glass"] == pytest.approx(NOISE**2, rel=tol + 0.1)
        assert row["err_var_era5"] == pytest.approx(sd_ref**2, rel=tol + 0.1)
        assert abs(row["err_var_insitu"]) < 0.3 * NOISE**2  # the station is the truth here
    assert set(out.loc[list(set(table.index) - set(group)), "status"]) <= {"outside product",
                                                                            "outside reference"} | {
        s for s in out["status"] if s.startswith("no station")}
