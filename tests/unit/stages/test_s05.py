"""Stage 05 on a toy cube: every stage function writes its contract table and figure and returns it, the prose
functions quote the returned tables, and stage 05's domain means are stage 06's (area-weighted)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm import stages
from glass_sm.contract import read_table, tables_of
from glass_sm.evaluation import aggregate
from glass_sm.product import open_product
from glass_sm.stages import s05_validation as s05
from glass_sm.testing import make_toy_cube

TOY = {
    "run.seed": 5,
    "domain.lat_min": 39.7, "domain.lat_max": 40.0, "domain.lon_min": -100.0, "domain.lon_max": -99.75,
    "period.start": "1998-01-01", "period.end": "2002-12-31",
    "validation.min_days": 30, "validation.n_boot": 20, "validation.tc_min_n": 60, "validation.min_pairs": 30,
    "validation.break_window_days": 365, "validation.trend_min_periods": 4,
    "figures.formats": ["png"], "figures.dpi": 30,
}
STAGE = "05_validation"


def toy_data(seed: int = 2) -> s05.ValidationData:
    """The data sets of stage 05 made from a toy cube (6 x 5 cells, 1998-2002): the product is the truth plus
    noise and a 0.01 m3 m-3 step at the NOAA-14 -> NOAA-16 change (2001-01-01); three sensors, one with 20 days."""
    cube, truth = make_toy_cube(seed=seed, with_truth=True)
    rng = np.random.default_rng(seed)
    days = pd.DatetimeIndex(truth["time"].values)
    step = xr.DataArray(np.where(days >= "2001-01-01", 0.01, 0.0), dims="time", coords={"time": truth["time"]})
    product = (truth + step + rng.normal(0, 0.01, truth.shape)).astype(np.float32).rename(s05.PRODUCT)
    cci = xr.DataArray(truth.mean(("lat", "lon")).values[:, None, None] + rng.normal(0, 0.02, (days.size, 2, 2)),
                       dims=("time", "lat", "lon"), name=s05.CCI,
                       coords={"time": days, "lat": [39.875, 39.625], "lon": [-99.875, -99.625]})  # 0.25 deg
    sids = ["TOY/A/s/0-0.05m", "TOY/B/s/0-0.05m", "TOY/C/s/0-0.05m"]
    table = pd.DataFrame({"network": "TOY", "station": ["A", "B", "C"], "sensor": "s", "lat": [39.97, 39.87, 39.82],
                          "lon": [-99.97, -99.87, -99.92], "elevation": 100.0, "depth_from": 0.0, "depth_to": 0.05,
                          "note": ""}, index=pd.Index(sids, name="sensor_id"))
    daily = {}
    for sid, (la, lo) in zip(sids, zip(table["lat"], table["lon"])):
        s = truth.sel(lat=la, lon=lo, method="nearest").to_series() + 0.02 + rng.normal(0, 0.015, days.size)
        daily[sid] = s.iloc[:20] if sid.startswith("TOY/C") else s
    aridity = xr.DataArray(np.linspace(0.1, 1.0, truth.sizes["lat"] * truth.sizes["lon"]).reshape(truth.shape[1:]),
                           dims=("lat", "lon"), coords={"lat": truth["lat"], "lon": truth["lon"]})
    held_out = xr.zeros_like(cube["land_mask"], dtype=bool).rename("held_out")
    held_out[:, :2] = True
    return s05.ValidationData(product=product, era5=cube["sm_era5land"].rename(s05.ERA5),
                              labels=cube["sm_label"].rename(s05.LABELS), cci=cci, land=cube["land_mask"] == 1,
                              stations=(table, daily), truth=truth.rename(s05.TRUTH), aridity=aridity,
                              held_out=held_out)


def toy_regions(lat, lon):
    """A stand-in for :func:`glass_sm.evaluation.regions.earth_regions` on the toy cube: two zones split at
    39.85 N, one continent, and '' (sea at the centre) west of 99.95 W."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    return {"climate_zone": np.where(lat > 39.85, "C temperate", "B arid").astype(object),
            "continent": np.where(lon < -99.95, "", "North America").astype(object)}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return stages.setup(None, {**TOY, "run.results_dir": str(tmp_path_factory.mktemp("results"))}, STAGE)


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def run(ctx, data):
    """Every stage-05 function, in the notebook's order; returns what they returned."""
    out = {"sites": s05.insitu_sites(ctx, data)}
    out["med"] = s05.insitu_summary(ctx, out["sites"], data.products)
    out["wet"] = s05.wet_bias(ctx, data, out["sites"], regions=toy_regions)
    out["inter"], out["comps"] = s05.intercomparison(ctx, data)
    out["tcs"] = s05.triple_collocation(ctx, data)
    out["breaks"], out["series"] = s05.temporal_consistency(ctx, data)
    out["tsum"], out["tmaps"] = s05.trends(ctx, data)
    out["true_err"] = s05.true_error(ctx, data)
    s05.plot_insitu(ctx, out["sites"], data.products)
    s05.plot_wet_bias(ctx, out["wet"])
    s05.plot_wet_bias_regions(ctx, out["wet"])
    s05.plot_temporal_consistency(ctx, out["series"], out["breaks"])
    s05.plot_trend_maps(ctx, out["tmaps"])
    return out


# ----------------------------------------------------------------------------------------------------------
# The stage on a toy cube
# ----------------------------------------------------------------------------------------------------------
def test_every_table_of_the_contract_is_written_and_returned(ctx, run):
    for spec in tables_of(STAGE):
        table = read_table(ctx.paths, spec.name)
        assert set(spec.columns) <= set(table.columns), spec.name
    pd.testing.assert_frame_equal(read_table(ctx.paths, "wet_bias"), run["wet"].reset_index(drop=True),
                                  check_dtype=False)
    assert len(read_table(ctx.paths, "validation_sites")) == len(run["sites"]) == 5 * 3  # products x sensors
    for name in ("05_insitu_boxplots", "05_wet_bias", "05_wet_bias_regions", "05_temporal_consistency", "05_trend_maps",
                 "05_true_error_maps"):  # the last drawn by s05.plot_maps, as 05_intercomparison_maps is
        assert ctx.paths.figure(name).is_file(), name


def test_in_situ_rows_and_medians(run, data):
    sites = run["sites"].set_index(["product", "station"])
    assert (sites.xs("C", level="station")["status"].str.startswith("too few days")).all()
    a = sites.loc[(s05.TRUTH, "A")]
    assert a["status"] == "ok" and a["bias"] == pytest.approx(-0.02, abs=0.003)  # the stations' +0.02 offset
    assert sites.loc[(s05.PRODUCT, "A"), "pixel_held_out"] and not sites.loc[(s05.PRODUCT, "B"), "pixel_held_out"]
    med = run["med"].set_index(["product", "period"])
    assert med.loc[(s05.PRODUCT, "pre-2000"), "paper_r"] == 0.73  # the paper's row stands beside ours
    assert list(run["med"]["product"].drop_duplicates()) == list(data.products)  # the notebook's order


def test_wet_bias_finds_era5_wetter_than_the_product(run):
    wet = run["wet"].set_index(["reference", "class_kind", "class", "estimate"])
    era5 = wet.loc[(s05.TRUTH, "aridity", "all", s05.ERA5), "bias_mean"]
    prod = wet.loc[(s05.TRUTH, "aridity", "all", s05.PRODUCT), "bias_mean"]
    assert era5 > 0.01 and abs(prod) < 0.01
    assert set(wet.index.get_level_values("reference")) == {s05.TRUTH, "in situ"}


def test_the_step_of_the_product_is_found_against_the_truth_only(run):
    b = run["breaks"].set_index("series")
    assert list(b.index) == [s05.PRODUCT, s05.ERA5, s05.TRUTH, f"residual vs {s05.TRUTH}", f"residual vs {s05.ERA5}"]
    res = b.loc[f"residual vs {s05.TRUTH}"]
    assert res["significant"] and res["step"] == pytest.approx(0.01, abs=0.003)


def test_triple_collocation_and_true_error(run):
    tcs = run["tcs"]
    ok = tcs[(tcs["status"] == "ok") & ~tcs["anomalies"]]
    assert len(ok) == 2 and (ok["true_err_sd_product"] < 0.02).all()
    te = run["true_err"].set_index(["estimate", "period", "pixels"])
    assert {"all", "held-out pixels", "training pixels"} <= set(te.index.get_level_values("pixels"))
    assert te.loc[(s05.PRODUCT, "all", "all"), "r_median"] > te.loc[(s05.ERA5, "all", "all"), "r_median"] - 0.2


# ----------------------------------------------------------------------------------------------------------
# Prose from the returned tables
# ----------------------------------------------------------------------------------------------------------
def test_texts_quote_the_tables(ctx, run):
    med = run["med"]
    both = med[(med["product"] == s05.PRODUCT) & (med["period"] == "both")].iloc[0]
    txt = s05.insitu_text(med, run["sites"], ctx.data_label)
    assert f"* **both** (2 of 2 sensors scored): median R {both['r']:.2f}" in txt
    assert "* **pre-2000**: no scored sensor (1 listed)" in txt and "C: too few days (n=20)" in txt
    assert "paper, real data" in txt
    wet = run["wet"]
    e = wet[(wet["reference"] == s05.TRUTH) & (wet["estimate"] == s05.ERA5) & (wet["class"] == "all")].iloc[0]
    assert f"ERA5-Land's mean bias is {e['bias_mean']:+.3f}" in s05.wet_bias_text(wet)
    inter = run["inter"].set_index("comparison")
    assert f"median R {inter.iloc[0]['r_median']:.2f}" in s05.intercomparison_text(run["inter"])
    tc = s05.tc_text(run["tcs"], 60)
    assert "raw values (2 sensors)" in tc and "true — product" in tc and "1 sensor(s) not scored" in tc
    assert "1 of 1 transitions with a significant step (p < 0.05)" in s05.breaks_text(run["breaks"])
    ts = run["tsum"].set_index("dataset")
    assert f"median slope {ts.loc[s05.PRODUCT, 'slope_median']:+.4f}" in s05.trends_text(run["tsum"], 4)
    te = run["true_err"].set_index(["estimate", "period", "pixels"]).loc[(s05.PRODUCT, "pre-2000", "all")]
    assert f"product median R {te['r_median']:.2f}" in s05.true_error_text(run["true_err"])


def test_texts_of_an_empty_run():
    assert s05.breaks_text(pd.DataFrame(columns=["series", "date", "step", "significant"])) == \
        "No AVHRR platform change falls inside this run's period."
    tsum = pd.DataFrame({"dataset": ["GLASS-AVHRR"], "n_pixels": [0], "n_years": [5]})
    assert "holds 5 years, fewer than `validation.trend_min_periods` = 8" in s05.trends_text(tsum, 8)
    assert s05.true_error_text(None).startswith("Real data")
    assert s05.wet_bias_text(pd.DataFrame(columns=["reference", "estimate", "class"])) == \
        "No bias could be computed in this run."
    tcs = pd.DataFrame({"anomalies": [False, True], "status": ["too few days (n=3)"] * 2,
                        "true_err_sd_product": [np.nan, np.nan]})
    assert s05.tc_text(tcs, 100).startswith("* 1 sensor(s) not scored")


# ----------------------------------------------------------------------------------------------------------
# One domain mean for stages 05 and 06 (issue 12)
# ----------------------------------------------------------------------------------------------------------
def test_stages_05_and_06_agree_on_a_domain_spanning_60_degrees_of_latitude(tmp_path):
    """A field with a latitude gradient over 0-60 deg N: stage 05's domain series (breaks, trends) is stage 06's
    area-weighted mean (``aggregate.domain_mean`` / ``monthly_domain_mean``), not the unweighted mean."""
    days = pd.date_range("2000-01-01", "2001-12-31", freq="D")
    lat, lon = np.arange(60.0, -0.1, -5.0), np.array([10.0, 10.5])
    t = np.arange(days.size)[:, None, None]
    values = 0.1 + 0.004 * lat[None, :, None] + 0.03 * np.sin(2 * np.pi * t / 365.25) + 0 * lon[None, None, :]
    field = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": days, "lat": lat, "lon": lon})
    land = xr.ones_like(field.isel(time=0), dtype=bool)
    data = s05.ValidationData(product=field.rename(s05.PRODUCT), era5=(field + 0.01).rename(s05.ERA5), labels=None,
                              cci=None, land=land, stations=None)
    stage05 = s05.domain_series(data)[s05.PRODUCT]
    stage06 = aggregate.domain_mean(field).to_series()
    np.testing.assert_allclose(stage05.to_numpy(), stage06.to_numpy(), rtol=1e-12)
    monthly05 = stage05.resample("MS").mean()
    np.testing.assert_allclose(monthly05.to_numpy(), aggregate.monthly_domain_mean(field).to_numpy(), rtol=1e-12)
    unweighted = field.mean(("lat", "lon")).to_series()
    assert (unweighted - stage05).min() > 0.005  # cos-lat weights favour the low (drier) latitudes
    # and what the stage writes is that series
    ctx = stages.setup(None, {**TOY, "run.results_dir": str(tmp_path)}, STAGE)
    s05.temporal_consistency(ctx, data)
    written = read_table(ctx.paths, "domain_means", index_col="time", parse_dates=["time"])
    np.testing.assert_allclose(written[s05.PRODUCT].to_numpy(), stage06.to_numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# Inputs: the product files, the held-out pixels, the paper's numbers
# ----------------------------------------------------------------------------------------------------------
def test_open_product_reads_the_year_files_and_not_the_annual_means(tmp_path):
    """Stage 05 reads the product with :func:`glass_sm.product.open_product`."""
    days = pd.date_range("1998-01-01", "1999-12-31")
    da = xr.DataArray(0.25 + 0.08 * np.sin(np.arange(days.size) / 58.0)[:, None, None] * np.ones((1, 3, 2)),
                      dims=("time", "lat", "lon"), coords={"time": days, "lat": [40.375, 40.325, 40.275],
                                                           "lon": [-99.975, -99.925]})
    for year in (1998, 1999):
        part = da.sel(time=str(year)).to_dataset(name="sm")
        part.to_netcdf(tmp_path / f"GLASS_AVHRR_SM_{year}.nc", engine="netcdf4",
                       encoding={"sm": {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -32768}})
    (tmp_path / "annual").mkdir()
    da.isel(time=[0]).to_dataset(name="sm").to_netcdf(tmp_path / "annual" / "GLASS_AVHRR_SM_annual_mean_1998.nc",
                                                      engine="netcdf4")
    out = open_product(tmp_path)
    assert out.name == "GLASS-AVHRR" and out.dims == ("time", "lat", "lon")
    assert out.sizes["time"] == 365 + 365
    np.testing.assert_allclose(out.values, da.values, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="GLASS_AVHRR_SM_"):
        open_product(tmp_path / "annual")


def test_held_out_mask_from_the_checkpoint_metadata(tmp_path):
    lat, lon = np.arange(4)[::-1] + 0.5, np.arange(6) + 0.5
    meta = {"extra": {"split": "site", "split_info": {"block_size": 2, "test_blocks": [[0, 1], [1, 2]]}}}
    (tmp_path / "m.json").write_text(json.dumps(meta))
    mask = s05.held_out_mask(tmp_path / "m.json", lat, lon)
    expected = np.zeros((4, 6), bool)
    expected[0:2, 2:4] = True
    expected[2:4, 4:6] = True
    np.testing.assert_array_equal(mask.values, expected)
    assert mask.dims == ("lat", "lon")
    meta["extra"]["split"] = "year"
    (tmp_path / "y.json").write_text(json.dumps(meta))
    assert s05.held_out_mask(tmp_path / "y.json", lat, lon) is None
    assert s05.held_out_mask(tmp_path / "missing.json", lat, lon) is None


def test_with_paper_values_puts_the_paper_beside_the_matching_row_only():
    summary = pd.DataFrame({"n_sites": [2, 5], "r": [0.8, 0.9], "ubrmse": [0.03, 0.02]},
                           index=pd.MultiIndex.from_tuples([("GLASS-AVHRR", "pre-2000"), ("GLASS-AVHRR", "post-2000")],
                                                           names=["product", "period"]))
    out = s05.with_paper_values(summary, data_label="twin").set_index(["product", "period"])
    pre = out.loc[("GLASS-AVHRR", "pre-2000")]
    assert pre["paper_r"] == 0.73 and pre["paper_ubrmse"] == 0.041
    assert pre["paper_data"] == s05.PAPER_LABEL and pre["r"] == 0.8 and pre["data"] == "twin"
    assert np.isnan(out.loc[("GLASS-AVHRR", "post-2000"), "paper_r"])
    # without a pre-2000 group of ours the paper's row is still shown
    out2 = s05.with_paper_values(summary.iloc[[1]])
    assert ("GLASS-AVHRR", "pre-2000") in set(zip(out2["product"], out2["period"]))


# ----------------------------------------------------------------------------------------------------------
# The wet bias by climate zone and continent (issue 16)
# ----------------------------------------------------------------------------------------------------------
def test_wet_bias_by_region_against_the_truth_and_the_stations(run, data):
    wet = run["wet"]
    zone = wet[(wet["reference"] == s05.TRUTH) & (wet["class_kind"] == "climate_zone")]
    assert set(zone["class"]) == {"B arid", "C temperate"} and set(zone["unit"]) == {"pixel-days"}
    # closed form: ERA5-Land's mean bias over the pixel-days of the northern zone, weights cos(lat)
    north = data.truth["lat"] > 39.85
    d = (data.era5 - data.truth).where(data.land & north)
    w = np.cos(np.deg2rad(d["lat"]))
    expect = float((d.sum("time") * w).sum() / (d.notnull().sum("time") * w).sum())
    row = zone[(zone["class"] == "C temperate") & (zone["estimate"] == s05.ERA5)].iloc[0]
    assert row["bias_mean"] == pytest.approx(expect, rel=1e-6)
    assert row["n"] == int(d.notnull().sum()) and row["n_pixels"] == int((data.land & north).sum())
    # each kind covers every land pixel-day once
    for kind in s05.REGION_KINDS:
        k = wet[(wet["reference"] == s05.TRUTH) & (wet["class_kind"] == kind) & (wet["estimate"] == s05.ERA5)]
        assert k["n"].sum() == int((data.era5 - data.truth).where(data.land).notnull().sum())
    # the stations: a sensor per region of its pixel, scored sensors only (C has 20 days: not scored)
    st = wet[(wet["reference"] == "in situ") & (wet["class_kind"] == "climate_zone")]
    assert set(st["unit"]) == {"sensors"} and st.groupby("estimate")["n"].sum().max() == 2
    text = s05.wet_bias_regions_text(wet)
    assert f"ERA5-Land {row['bias_mean']:+.3f}" in text and "Köppen main group" in text
    assert s05.wet_bias_regions_text(wet[wet["class_kind"] == "aridity"]).startswith("No bias by climate zone")
    # the class rows of before are unchanged in kind
    assert {"aridity", "mean_sm_class", "climate_zone", "continent"} <= set(wet["class_kind"])
