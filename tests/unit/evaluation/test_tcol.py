"""glass_sm.evaluation.tcol: triple collocation (closed forms, real ISMN stations) and its check against the truth."""

import numpy as np
import pandas as pd
import pytest
from station_products import DAYS, NOISE, build_product, field, long_sensors, nearby_group, seasonal, toy_stations

from glass_sm.evaluation.tcol import tc_at_stations, tc_table, triple_collocation, true_error_sd


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


@pytest.mark.network
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


# ----------------------------------------------------------------------------------------------------------
# The truth behind triple collocation
# ----------------------------------------------------------------------------------------------------------
def test_true_error_sd_recovers_the_error_of_the_collocation_model():
    rng = np.random.default_rng(0)
    theta = 0.25 + 0.08 * rng.standard_normal(20000)
    frame = pd.DataFrame({"truth": theta, "x": 0.1 + 0.6 * theta + rng.normal(0, 0.02, theta.size),
                          "y": theta.copy()})
    out = true_error_sd(frame, "truth", ["x", "y"])
    assert out["n"] == theta.size
    assert out["true_err_sd_x"] == pytest.approx(0.02, rel=0.03)
    assert out["true_err_sd_y"] == pytest.approx(0.0, abs=1e-6) and out["true_rho2_y"] == pytest.approx(1.0)
    assert np.isnan(true_error_sd(frame.iloc[:2], "truth", ["x"])["true_err_sd_x"])


def test_tc_table_raw_and_anomalies_with_the_true_errors():
    rng = np.random.default_rng(3)
    truth = field(lambda t, r, c: seasonal(t, r, c) + 0.03 * np.sin(t / 17.0), "truth")
    product = truth + rng.normal(0, 0.01, truth.shape)
    reference = 0.05 + 0.8 * truth + rng.normal(0, 0.02, truth.shape)
    table, daily = toy_stations()
    daily = dict(daily, **{"TOY/A/s/0-0.05m": truth.sel(lat=40.325, lon=-99.925).to_series()
                           + rng.normal(0, 0.015, DAYS.size)})
    out = tc_table(product, reference, (table, daily), truth=truth, names=("p", "r", "s"), min_n=100)
    assert list(out["anomalies"]) == [False] * 3 + [True] * 3
    a = out[out["station"] == "A"].set_index("anomalies")
    assert (a["status"] == "ok").all() and (a["n_truth_check"] == DAYS.size).all()
    assert a.loc[False, "true_err_sd_p"] == pytest.approx(0.01, rel=0.1)
    assert a.loc[False, "true_err_sd_r"] == pytest.approx(0.02, rel=0.1)
    assert a.loc[False, "true_err_sd_s"] == pytest.approx(0.015, rel=0.1)
    assert a.loc[False, "err_sd_r"] == pytest.approx(0.02, rel=0.25)  # independent errors: TC is right
    assert out.loc[out["station"] == "B", "status"].str.startswith("too few days").all()
    # without the truth the columns are there, empty
    blind = tc_table(product, reference, (table, daily), names=("p", "r", "s"), min_n=100)
    assert list(blind.columns) == list(out.columns)
    assert blind["true_err_sd_p"].isna().all() and blind["n_truth_check"].isna().all()
    pd.testing.assert_frame_equal(blind[out.columns[:-7]], out[out.columns[:-7]])
