"""glass_sm.evaluation.insitu: in situ validation on REAL ISMN stations, and on synthetic stations with closed forms.

The real-station tests read the ISMN sample stations shipped with the ``ismn`` source distribution
(``ismn_testdata`` fixture) and build a product around them (:mod:`station_products`), so the expected metrics are
known (bias ~ offset) or computed by hand from the same collocated series.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from station_products import (CEOP_FOLDER, DAYS, NOISE, OFFSET, build_product, field, hand_collocate, long_sensors,
                              nearby_group, seasonal, toy_stations)

from glass_sm.evaluation import metrics
from glass_sm.grid import nearest_index
from glass_sm.evaluation.insitu import (collocate_at_stations, load_stations, locate_stations,
                                        station_problem, summarize_sites, validate_against_ismn, validate_products)
from glass_sm.grid import Domain
from glass_sm.io.ismn import read_ismn


# ----------------------------------------------------------------------------------------------------------
# validate_against_ismn on real stations
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.network
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


@pytest.mark.network
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


@pytest.mark.network
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


@pytest.mark.network
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


@pytest.mark.network
def test_validate_good_flag_folder_end_to_end(ismn_testdata, tmp_path):
    """A CEOP-format folder read with the default good-only ('G') selection; the 0-19 cm COSMOS probes are
    not 0-5 cm sensors, so only FR_Aqui 'fraye' (5 cm) is validated."""
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


@pytest.mark.network
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
# Several products at once, collocated series (toy grid)
# ----------------------------------------------------------------------------------------------------------
def test_validate_products_lists_every_sensor_for_every_product():
    good = field(seasonal, "good")
    wet = field(lambda t, r, c: seasonal(t, r, c) + 0.05, "wet")
    out = validate_products({"good": good, "wet": wet}, toy_stations(), min_days=60, n_boot=0)
    assert list(out.columns[:2]) == ["product", "sensor_id"]
    assert len(out) == 6
    a = out[out["station"] == "A"].set_index("product")
    assert (a["status"] == "ok").all()
    assert a.loc["wet", "bias"] - a.loc["good", "bias"] == pytest.approx(0.05, abs=1e-9)
    assert a.loc["good", "r"] > 0.9
    b = out[out["station"] == "B"]
    assert b["status"].str.startswith("too few days").all()
    c = out[out["station"] == "C"]
    assert (c["status"] == "outside product").all()


def test_collocate_at_stations_reads_each_product_at_the_station():
    da = field(seasonal, "p")
    out = collocate_at_stations({"p": da}, toy_stations())
    a = out["TOY/A/s/0-0.05m"]
    np.testing.assert_allclose(a["p"].loc[DAYS].to_numpy(), da.sel(lat=40.325, lon=-99.925).values)
    assert a["insitu"].notna().sum() == DAYS.size
    assert out["TOY/C/s/0-0.05m"]["p"].isna().all()  # outside the product
    # a window keeps the product's days inside it only
    win = collocate_at_stations({"p": da}, toy_stations(), start="1999-01-01", end="1999-12-31")
    assert win["TOY/A/s/0-0.05m"]["p"].notna().sum() == 365


def test_load_stations_accepts_either_layout_and_names_what_is_wrong():
    table, daily = toy_stations()
    by_index, _ = load_stations(stations=(table, daily))
    by_column, _ = load_stations(stations=(table.reset_index(), daily))
    pd.testing.assert_frame_equal(by_index, by_column)
    assert list(by_index["sensor_id"]) == list(table.index)
    with pytest.raises(ValueError, match="give either ismn_path"):
        load_stations()
    with pytest.raises(TypeError, match="pair of read_ismn"):
        load_stations(stations=table)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['lon'\]"):
        load_stations(stations=(table.drop(columns="lon"), daily))


def test_station_problem_reasons():
    s = pd.Series([0.2], index=pd.DatetimeIndex(["2001-01-01"]))
    assert station_problem(np.nan, s, s) is None
    assert station_problem(None, None, s) == "read error: no daily series for this sensor"
    assert station_problem("read failed: bad line", s, s) == "read error: bad line"
    assert station_problem("", s, s.iloc[:0]) == "no station data in period"


def test_nearest_index_descending_axis_and_half_cell():
    idx, inside = nearest_index([40.375, 40.325, 40.275], [40.33, 40.39, 40.40001, 40.25])
    assert list(idx[inside]) == [1, 0, 2]
    assert list(inside) == [True, True, False, True]
