"""glass_sm.stages.s05_validation: the stage-05 glue (product files, multi-product in situ table, paper columns, wet-bias classes,
the twin's check of triple collocation, held-out pixels, residual series and trend tables), on small synthetic
inputs whose answers are known."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.signal import lfilter

from glass_sm.stages import s05_validation as stage05
from glass_sm.evaluation import trends

DAYS = pd.date_range("1998-01-01", "2001-12-31", freq="D")
LAT = np.array([40.375, 40.325, 40.275])
LON = np.array([-99.975, -99.925])


def field(values_fn, name="sm"):
    """A (time, lat, lon) DataArray on the toy grid from a function of (day index, row, col)."""
    t, r, c = np.meshgrid(np.arange(DAYS.size), np.arange(LAT.size), np.arange(LON.size), indexing="ij")
    return xr.DataArray(values_fn(t, r, c).astype(np.float64), dims=("time", "lat", "lon"),
                        coords={"time": DAYS, "lat": LAT, "lon": LON}, name=name, attrs={"units": "m3 m-3"})


def seasonal(t, r, c):
    return 0.25 + 0.08 * np.sin(2 * np.pi * t / 365.25) + 0.01 * r + 0.005 * c


@pytest.fixture
def stations():
    """Two sensors inside the toy grid (one with 20 days only) and one outside it, as read_ismn returns them."""
    table = pd.DataFrame({"network": "TOY", "station": ["A", "B", "C"], "lat": [40.33, 40.27, 41.5],
                          "lon": [-99.93, -99.97, -99.9], "note": ""},
                         index=pd.Index(["TOY/A/s/0-0.05m", "TOY/B/s/0-0.05m", "TOY/C/s/0-0.05m"], name="sensor_id"))
    rng = np.random.default_rng(1)
    truth_a = seasonal(np.arange(DAYS.size), 1, 1)
    daily = {
        "TOY/A/s/0-0.05m": pd.Series(truth_a + rng.normal(0, 0.01, DAYS.size), index=DAYS),
        "TOY/B/s/0-0.05m": pd.Series(0.2, index=DAYS[:20]),
        "TOY/C/s/0-0.05m": pd.Series(0.2, index=DAYS),
    }
    return table, daily


# ----------------------------------------------------------------------------------------------------------
def test_open_product_reads_the_year_files_and_not_the_annual_means(tmp_path):
    da = field(seasonal)
    for year in (1998, 1999):
        part = da.sel(time=str(year)).to_dataset(name="sm")
        part.to_netcdf(tmp_path / f"GLASS_AVHRR_SM_{year}.nc", engine="netcdf4",
                       encoding={"sm": {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -32768}})
    (tmp_path / "annual").mkdir()
    da.isel(time=[0]).to_dataset(name="sm").to_netcdf(tmp_path / "annual" / "GLASS_AVHRR_SM_annual_mean_1998.nc",
                                                      engine="netcdf4")
    out = stage05.open_product(tmp_path)
    assert out.name == "GLASS-AVHRR" and out.dims == ("time", "lat", "lon")
    assert out.sizes["time"] == 365 + 365
    np.testing.assert_allclose(out.values, da.sel(time=slice("1998", "1999")).values, atol=1e-4)


def test_open_product_without_files_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="GLASS_AVHRR_SM_"):
        stage05.open_product(tmp_path)


def test_validate_products_lists_every_sensor_for_every_product(stations):
    good = field(seasonal, "good")
    wet = field(lambda t, r, c: seasonal(t, r, c) + 0.05, "wet")
    out = stage05.validate_products({"good": good, "wet": wet}, stations, min_days=60, n_boot=0)
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


def test_with_paper_values_puts_the_paper_beside_the_matching_row_only():
    summary = pd.DataFrame({"n_sites": [2, 5], "r": [0.8, 0.9], "ubrmse": [0.03, 0.02]},
                           index=pd.MultiIndex.from_tuples([("GLASS-AVHRR", "pre-2000"), ("GLASS-AVHRR", "post-2000")],
                                                           names=["product", "period"]))
    out = stage05.with_paper_values(summary, data_label="twin").set_index(["product", "period"])
    pre = out.loc[("GLASS-AVHRR", "pre-2000")]
    assert pre["paper_r"] == 0.73 and pre["paper_ubrmse"] == 0.041
    assert pre["paper_data"] == stage05.PAPER_LABEL and pre["r"] == 0.8 and pre["data"] == "twin"
    assert np.isnan(out.loc[("GLASS-AVHRR", "post-2000"), "paper_r"])
    # without a pre-2000 group of ours the paper's row is still shown
    out2 = stage05.with_paper_values(summary.iloc[[1]])
    assert ("GLASS-AVHRR", "pre-2000") in set(zip(out2["product"], out2["period"]))


def test_aridity_and_sm_classes_use_left_closed_bins():
    cls = stage05.aridity_class([0.01, 0.05, 0.3, 0.5, 0.65, 2.0, np.nan])
    assert list(cls[:6]) == ["hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid", "humid"]
    assert pd.isna(cls[6])
    sm = stage05.sm_class([0.05, 0.1, 0.35], [0.0, 0.1, 0.2, 1.0])
    assert list(sm) == ["0.00-0.10", "0.10-0.20", "0.20-1.00"]


def test_bias_by_class_means_medians_and_total():
    frame = pd.DataFrame({"k": ["a", "a", "b"], "p": [0.01, -0.03, 0.02], "e": [0.05, 0.07, np.nan]})
    out = stage05.bias_by_class(frame, "k", {"P": "p", "E": "e"}).set_index(["class", "estimate"])
    assert out.loc[("a", "P"), "bias_mean"] == pytest.approx(-0.01)
    assert out.loc[("a", "P"), "abs_bias_mean"] == pytest.approx(0.02)
    assert out.loc[("b", "E"), "n"] == 0 and np.isnan(out.loc[("b", "E"), "bias_mean"])
    assert out.loc[("all", "P"), "n"] == 3 and out.loc[("all", "E"), "bias_median"] == pytest.approx(0.06)


def test_true_error_sd_recovers_the_error_of_the_collocation_model():
    rng = np.random.default_rng(0)
    theta = 0.25 + 0.08 * rng.standard_normal(20000)
    frame = pd.DataFrame({"truth": theta, "x": 0.1 + 0.6 * theta + rng.normal(0, 0.02, theta.size),
                          "y": theta.copy()})
    out = stage05.true_error_sd(frame, "truth", ["x", "y"])
    assert out["n"] == theta.size
    assert out["true_err_sd_x"] == pytest.approx(0.02, rel=0.03)
    assert out["true_err_sd_y"] == pytest.approx(0.0, abs=1e-6) and out["true_rho2_y"] == pytest.approx(1.0)
    assert np.isnan(stage05.true_error_sd(frame.iloc[:2], "truth", ["x"])["true_err_sd_x"])


def test_collocate_at_stations_reads_each_product_at_the_station(stations):
    da = field(seasonal, "p")
    out = stage05.collocate_at_stations({"p": da}, stations)
    a = out["TOY/A/s/0-0.05m"]
    np.testing.assert_allclose(a["p"].loc[DAYS].to_numpy(), da.sel(lat=40.325, lon=-99.925).values)
    assert a["insitu"].notna().sum() == DAYS.size
    assert out["TOY/C/s/0-0.05m"]["p"].isna().all()  # outside the product


def test_held_out_mask_from_the_checkpoint_metadata(tmp_path):
    lat, lon = np.arange(4)[::-1] + 0.5, np.arange(6) + 0.5
    meta = {"extra": {"split": "site", "split_info": {"block_size": 2, "test_blocks": [[0, 1], [1, 2]]}}}
    (tmp_path / "m.json").write_text(json.dumps(meta))
    mask = stage05.held_out_mask(tmp_path / "m.json", lat, lon)
    expected = np.zeros((4, 6), bool)
    expected[0:2, 2:4] = True
    expected[2:4, 4:6] = True
    np.testing.assert_array_equal(mask.values, expected)
    assert mask.dims == ("lat", "lon")
    meta["extra"]["split"] = "year"
    (tmp_path / "y.json").write_text(json.dumps(meta))
    assert stage05.held_out_mask(tmp_path / "y.json", lat, lon) is None
    assert stage05.held_out_mask(tmp_path / "missing.json", lat, lon) is None


def test_domain_mean_respects_the_mask():
    da = field(lambda t, r, c: np.where(r == 0, 1.0, 0.0) + 0 * t)
    mask = xr.DataArray(np.array([[True, True], [False, False], [False, False]]), dims=("lat", "lon"),
                        coords={"lat": LAT, "lon": LON})
    assert (stage05.domain_mean(da, mask) == 1.0).all()
    assert stage05.domain_mean(da).iloc[0] == pytest.approx(1 / 3)


def test_rescaled_residual_keeps_an_own_step_and_drops_a_shared_one():
    rng = np.random.default_rng(0)
    n = DAYS.size
    weather = lfilter([1.0], [1.0, -0.95], rng.normal(0, 0.04 * np.sqrt(1 - 0.95**2), n))  # AR(1), sd 0.04
    soil_step = np.where(DAYS >= "1999-01-01", 0.04, 0.0)  # a real change of the soil, seen by both
    ref = pd.Series(0.25 + 0.05 * np.sin(2 * np.pi * np.arange(n) / 365.25) + weather + soil_step, index=DAYS)
    own_step = np.where(DAYS >= "2000-07-01", 0.01, 0.0)  # a calibration step of the product only
    gain_only = 0.05 + 0.7 * ref  # gain error, no own step
    with_step = gain_only + own_step + rng.normal(0, 0.002, n)
    plain = trends.break_test(gain_only - ref, "1999-01-01", window_days=365)
    assert plain["p"] < 0.01  # a plain difference sees the soil's step through the gain error
    assert np.nanmax(np.abs(stage05.rescaled_residual(gain_only, ref))) < 1e-9
    res = stage05.rescaled_residual(with_step, ref)
    shared = trends.break_test(res, "1999-01-01", window_days=365)
    assert abs(shared["step"]) < 0.2 * abs(plain["step"])
    own = trends.break_test(res, "2000-07-01", window_days=365)
    assert own["p"] < 0.01 and own["step"] == pytest.approx(0.01, abs=0.002)


def test_trend_table_and_summary_against_a_reference():
    years = np.arange(1982, 2002)
    days = pd.date_range("1982-01-01", "2001-12-31", freq="D")
    frac = (days.year - 1982).to_numpy()[:, None, None]
    slope = np.array([[0.01, -0.01], [0.02, 0.0]])  # per year
    vals = 0.25 + frac * slope[None] + 0 * np.zeros((days.size, 2, 2))
    da = xr.DataArray(vals, dims=("time", "lat", "lon"), coords={"time": days, "lat": [1.0, 0.0], "lon": [0.0, 1.0]})
    maps = {"a": trends.trend_map(da, min_periods=8), "b": trends.trend_map(da * 1.0, min_periods=8)}
    table = stage05.trend_table(maps)
    assert set(table["dataset"]) == {"a", "b"} and len(table) == 8
    a = table[table["dataset"] == "a"].set_index(["lat", "lon"])
    assert a.loc[(1.0, 0.0), "slope"] == pytest.approx(0.1)  # per decade
    annual = {"a": pd.Series(0.25 + 0.005 * (years - 1982), index=years), "b": pd.Series(0.25, index=years[:5])}
    summ = stage05.trend_summary(table, reference="b", annual_means=annual, min_periods=8).set_index("dataset")
    assert summ.loc["a", "slope_r"] == pytest.approx(1.0) and summ.loc["a", "sign_agreement"] == 1.0
    assert summ.loc["a", "slope_rmsd"] == pytest.approx(0.0, abs=1e-12)
    assert summ.loc["a", "domain_slope"] == pytest.approx(0.05) and summ.loc["a", "n_years"] == 20
    assert np.isnan(summ.loc["b", "domain_slope"]) and summ.loc["b", "n_years"] == 5
    assert summ.loc["a", "n_pixels"] == 4
