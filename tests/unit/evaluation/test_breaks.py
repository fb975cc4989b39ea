"""Calibration of glass_sm.evaluation.breaks: climatology, anomalies, lag-1 autocorrelation, break tests at AVHRR
platform changes, the residual of a product beyond a reference."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.signal import lfilter

from glass_sm.evaluation.breaks import (BREAK_COLUMNS, anomalies, break_test, breaks_at_transitions, breaks_table,
                                        climatology, daily_series, lag1_autocorrelation, rescaled_residual)
from glass_sm.platforms import transition_dates


def ar1(n, rho, sd, rng):
    """AR(1) noise with lag-1 autocorrelation ``rho`` and marginal standard deviation ``sd``."""
    e = np.empty(n)
    e[0] = sd * rng.standard_normal()
    innov = sd * np.sqrt(1 - rho**2) * rng.standard_normal(n)
    for i in range(1, n):
        e[i] = rho * e[i - 1] + innov[i]
    return e


def daily_sm(start, end, rng, rho=0.8, sd=0.02, step=0.0, step_date=None):
    """Daily soil moisture (m3 m-3): seasonal cycle + AR(1) anomalies (+ a step at ``step_date``)."""
    t = pd.date_range(start, end, freq="D")
    y = 0.25 + 0.06 * np.sin(2 * np.pi * t.day_of_year.to_numpy() / 365.25) + ar1(t.size, rho, sd, rng)
    if step:
        y = y + step * (t >= pd.Timestamp(step_date))
    return pd.Series(y, index=t)


# ---- climatology and anomalies -------------------------------------------------------------------------
def test_anomalies_of_a_pure_annual_cycle_vanish():
    t = pd.date_range("2001-01-01", "2008-12-31", freq="D")
    doy = np.where(t.is_leap_year & (t.day_of_year >= 60), t.day_of_year - 1, t.day_of_year)
    s = pd.Series(0.2 + 0.05 * np.cos(2 * np.pi * doy / 365), index=t)
    np.testing.assert_allclose(anomalies(s, window_days=1).to_numpy(), 0.0, atol=1e-12)
    # a 31-day running mean damps the cycle by 1 - sin(31 pi/365) / (31 sin(pi/365)) = 1.2 %
    damp = 1 - np.sin(31 * np.pi / 365) / (31 * np.sin(np.pi / 365))
    assert np.abs(anomalies(s).to_numpy()).max() == pytest.approx(0.05 * damp, rel=0.02)


def test_climatology_leap_day_and_offset():
    t = pd.date_range("2003-01-01", "2006-12-31", freq="D")
    s = pd.Series(np.arange(t.size, dtype=float) % 3, index=t)
    clim = climatology(s, window_days=1)
    assert len(clim) == 365 and clim.index[0] == 1
    a = anomalies(s + 0.1, window_days=1)
    np.testing.assert_allclose(a.to_numpy(), anomalies(s, window_days=1).to_numpy(), atol=1e-12)
    # 29 February 2004 takes the climatology of 28 February
    assert a.loc["2004-02-29"] == pytest.approx(s.loc["2004-02-29"] - clim.loc[59])


def test_lag1_autocorrelation_of_ar1():
    rng = np.random.default_rng(2)
    s = pd.Series(ar1(20000, 0.7, 1.0, rng), index=pd.date_range("1990-01-01", periods=20000))
    assert lag1_autocorrelation(s) == pytest.approx(0.7, abs=0.02)
    s.iloc[::5] = np.nan  # gaps: only consecutive present days count
    assert lag1_autocorrelation(s) == pytest.approx(0.7, abs=0.03)


# ---- break test ----------------------------------------------------------------------------------------
def test_break_test_detects_injected_step():
    rng = np.random.default_rng(11)
    s = daily_sm("1997-01-01", "2004-12-31", rng, step=0.02, step_date="2001-01-01")
    res = break_test(s, "2001-01-01")
    assert res["status"] == "ok"
    assert res["p"] < 0.01
    assert res["step"] == pytest.approx(0.02, abs=0.006)
    assert res["n_before"] == res["n_after"] == 730
    assert res["n_eff_before"] < 0.2 * res["n_before"]  # AR(1) rho 0.8 -> n* ~ n/9


def test_break_test_no_step_not_significant():
    rng = np.random.default_rng(12)
    s = daily_sm("1997-01-01", "2004-12-31", rng)
    res = break_test(s, "2001-01-01")
    assert res["p"] > 0.05
    assert abs(res["step"]) < 0.01


def test_break_test_false_alarm_rate_needs_ar1_adjustment():
    """Without the effective sample size, autocorrelated noise gives far too many 'breaks'."""
    rng = np.random.default_rng(13)
    p_adj, p_raw = [], []
    for _ in range(60):
        s = daily_sm("2001-01-01", "2004-12-31", rng, rho=0.9)
        p_adj.append(break_test(s, "2003-01-01", window_days=365)["p"])
        p_raw.append(break_test(s, "2003-01-01", window_days=365, ar1_adjust=False)["p"])
    assert np.mean(np.array(p_adj) < 0.05) <= 0.15
    assert np.mean(np.array(p_raw) < 0.05) >= 0.4


def test_break_test_against_scipy_welch_without_adjustment():
    rng = np.random.default_rng(4)
    s = daily_sm("2000-01-01", "2003-12-31", rng, rho=0.0)
    res = break_test(s, "2002-01-01", window_days=731, deseasonalize=False, ar1_adjust=False)
    before, after = s[:"2001-12-31"], s["2002-01-01":]
    ref = stats.ttest_ind(after, before, equal_var=False)
    assert res["t"] == pytest.approx(ref.statistic)
    assert res["p"] == pytest.approx(ref.pvalue)


def test_break_test_too_few_days():
    rng = np.random.default_rng(0)
    s = daily_sm("2000-01-01", "2000-12-31", rng)
    res = break_test(s, "2000-12-20", min_days=30)
    assert np.isnan(res["p"]) and res["status"].startswith("too few days (before=")


def test_breaks_at_transitions_flags_only_the_real_step():
    rng = np.random.default_rng(21)
    s = daily_sm("1995-01-01", "2008-12-31", rng, step=0.02, step_date="2001-01-01")
    out = breaks_at_transitions(s, transition_dates("1995-01-01", "2008-12-31"))
    assert list(out["date"]) == [pd.Timestamp("2001-01-01"), pd.Timestamp("2005-09-01")]
    assert list(out["platform_before"]) == ["NOAA-14", "NOAA-16"]
    assert list(out["platform_after"]) == ["NOAA-16", "NOAA-18"]
    assert list(out["significant"]) == [True, False]
    # the default transitions are the platform changes inside the series
    pd.testing.assert_frame_equal(breaks_at_transitions(s), out)
    # a table with labels keeps them
    table = pd.DataFrame({"date": pd.to_datetime(["2001-01-01"]), "change": ["NOAA-14 -> NOAA-16"]})
    labelled = breaks_at_transitions(s, table)
    assert labelled.loc[0, "change"] == "NOAA-14 -> NOAA-16" and labelled.loc[0, "significant"]
    tuples = breaks_at_transitions(s, [(pd.Timestamp("2001-01-01"), "NOAA-14", "NOAA-16")])
    assert tuples.loc[0, "label"] == "NOAA-14 -> NOAA-16"


def test_breaks_table_bonferroni_columns_and_no_transition():
    rng = np.random.default_rng(21)
    s = daily_sm("1995-01-01", "2008-12-31", rng, step=0.02, step_date="2001-01-01")
    tr = transition_dates("1995-01-01", "2008-12-31")
    out = breaks_table({"a": s, "b": s * 1.0}, tr, window_days=730, alpha=0.05)
    assert tuple(out.columns) == BREAK_COLUMNS
    assert list(out["series"]) == ["a", "a", "b", "b"]
    single = breaks_at_transitions(s, tr, window_days=730, alpha=0.025)  # 0.05 / 2 transitions
    pd.testing.assert_frame_equal(out[out["series"] == "a"].drop(columns="series").reset_index(drop=True),
                                  single[[c for c in BREAK_COLUMNS if c != "series"]])
    empty = breaks_table({"a": s}, [])
    assert empty.empty and tuple(empty.columns) == BREAK_COLUMNS


def test_daily_series_utc_days_means_and_window():
    idx = pd.DatetimeIndex(["2001-01-02 23:00", "2001-01-01 06:00", "2001-01-01 18:00"], tz="Etc/GMT+2")
    s = daily_series(pd.Series([3.0, 1.0, 2.0], index=idx))  # UTC: 01-03 01:00, 01-01 08:00, 01-01 20:00
    assert list(s.index) == [pd.Timestamp("2001-01-01"), pd.Timestamp("2001-01-03")]
    assert list(s) == [1.5, 3.0]
    assert list(daily_series(pd.Series([3.0, 1.0, 2.0], index=idx), end="2001-01-02")) == [1.5]
    assert daily_series(None).empty
    with pytest.raises(TypeError, match="pandas Series"):
        daily_series([1.0, 2.0])


def test_rescaled_residual_keeps_an_own_step_and_drops_a_shared_one():
    days = pd.date_range("1998-01-01", "2001-12-31", freq="D")
    rng = np.random.default_rng(0)
    n = days.size
    weather = lfilter([1.0], [1.0, -0.95], rng.normal(0, 0.04 * np.sqrt(1 - 0.95**2), n))  # AR(1), sd 0.04
    soil_step = np.where(days >= "1999-01-01", 0.04, 0.0)  # a real change of the soil, seen by both
    ref = pd.Series(0.25 + 0.05 * np.sin(2 * np.pi * np.arange(n) / 365.25) + weather + soil_step, index=days)
    own_step = np.where(days >= "2000-07-01", 0.01, 0.0)  # a calibration step of the product only
    gain_only = 0.05 + 0.7 * ref  # gain error, no own step
    with_step = gain_only + own_step + rng.normal(0, 0.002, n)
    plain = break_test(gain_only - ref, "1999-01-01", window_days=365)
    assert plain["p"] < 0.01  # a plain difference sees the soil's step through the gain error
    assert np.nanmax(np.abs(rescaled_residual(gain_only, ref))) < 1e-9
    res = rescaled_residual(with_step, ref)
    shared = break_test(res, "1999-01-01", window_days=365)
    assert abs(shared["step"]) < 0.2 * abs(plain["step"])
    own = break_test(res, "2000-07-01", window_days=365)
    assert own["p"] < 0.01 and own["step"] == pytest.approx(0.01, abs=0.002)
