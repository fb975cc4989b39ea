"""Stage 04's stage module (glass_sm.stages.s04_production): the functions notebook 04 calls, on the toy run, and
the pure table and text helpers on hand-made tables."""

import numpy as np
import pandas as pd
import pytest

from glass_sm import stages
from glass_sm.contract import read_table
from glass_sm.stages import s04_production as s04


@pytest.fixture(scope="module")
def ctx(produced, toy):
    return stages.setup(None, toy.overrides(produced["root"]), "04_global_production")


@pytest.fixture(scope="module")
def inputs(ctx):
    return s04.load_inputs(ctx)


@pytest.fixture(scope="module")
def record(ctx):
    ds, ann = s04.open_files(ctx)
    yield ds, ann
    ds.close()
    ann.close()


def timing_table(**extra):
    t = pd.DataFrame({"year": [2000, 2001, 2002], "pixel_days": [100, 100, 100],
                      "computed_pixel_days": [0, 100, 100], "wall_s": [0.0, 2.0, 3.0], "cores": [4, 4, 4],
                      "scheduler": ["distributed"] * 3, "torch_threads": [1, 1, 1]})
    return t.assign(**extra)


# ---- pure helpers ---------------------------------------------------------------------------------------
def test_central_pixel_is_the_land_cell_nearest_the_centre():
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[3, 3] = True
    assert s04.central_pixel(mask) == (3, 3)
    assert s04.central_pixel(np.ones((4, 4), bool)) == (2, 2)
    with pytest.raises(ValueError, match="no land"):
        s04.central_pixel(np.zeros((2, 2), bool))


def test_production_rate_of_the_run_that_computed_the_most():
    t = timing_table(run_wall_s=[np.nan, 4.0, 4.0], run_pixel_days=[np.nan, 200, 200])
    rate = s04.production_rate(t)
    assert rate["rate"] == 50.0 and rate["cores"] == 4 and rate["pixel_days"] == 300 and rate["files"] == 3
    assert "50 pixel-days/s" in s04.production_text(rate) and "300 pixel-days in 3 year files" in \
        s04.production_text(rate)


def test_production_rate_of_an_older_timing_table_and_of_nothing_computed():
    assert s04.production_rate(timing_table())["rate"] == pytest.approx(200 / 5.0)  # per-year rates only
    nothing = timing_table(computed_pixel_days=[0, 0, 0])
    assert s04.production_rate(nothing) is None
    assert "nothing computed" in s04.production_text(None)


def test_pixel_metrics_closed_forms():
    idx = pd.date_range("2000-01-01", periods=50, freq="D")
    truth = 0.2 + 0.1 * np.sin(np.arange(50) / 5)
    series = pd.DataFrame({"product": truth + 0.01, "ERA5-Land": 2 * truth, "truth": truth}, index=idx)
    series.attrs.update(lat=40.1, lon=-99.9)
    table = s04.pixel_metrics(series)
    assert table[["estimate", "reference"]].values.tolist() == [
        ["product", "twin truth"], ["ERA5-Land", "twin truth"], ["product", "ERA5-Land"]]
    prod = table.iloc[0]
    assert prod["r"] == pytest.approx(1) and prod["ubrmse"] == pytest.approx(0, abs=1e-12)
    assert prod["bias"] == pytest.approx(0.01) and prod["n"] == 50 and prod["lat"] == 40.1
    assert table.iloc[1]["bias"] == pytest.approx(truth.mean())
    no_truth = s04.pixel_metrics(series.drop(columns="truth"))
    assert no_truth["reference"].tolist() == ["ERA5-Land"]


def test_text_helpers_format_the_returned_tables():
    assert s04.self_check_text(None) == "the checkpoint carries no self-check predictions"
    check = pd.DataFrame({"abs_diff": [1e-5, 4e-5]})
    assert s04.self_check_text(check) == ("2 pixel-days: max |product - stage-03 prediction| = 4.00e-05 m3 m-3 "
                                          "(int16 quantization: 5e-05)")
    truth = pd.DataFrame({"year": [1, 2], "estimate": ["product"] * 2, "r": [0.8, 0.9], "ubrmse": [0.04, 0.02],
                          "bias": [0.01, -0.03]})
    assert s04.truth_text(truth) == ("  product vs twin truth, all land pixel-days, mean over years: r 0.850, "
                                     "ubRMSE 0.0300 m3 m-3, bias -0.0100 m3 m-3")
    assert "no truth" in s04.truth_text(None)
    layout = {"tiles": [0] * 6, "land_tiles": [0] * 4, "land_pixels": 33, "tile_size": 3, "memory_bytes": 2**20}
    assert s04.tile_text(layout) == ("6 tiles of up to 3 x 3 cells, 4 with land; 33 land pixels; array memory per "
                                     "task <= 1.0 MiB")


def test_paper_scale_estimate_closed_forms():
    t = s04.paper_scale_estimate(1000, 10, 500.0, 5, 2.0).set_index("quantity")["value"]
    assert t["pixel-days"] == 10_000
    assert t["core-hours"] == pytest.approx(10_000 / (500 / 5) / 3600)
    assert t["wall time on 1000 cores"] == pytest.approx(t["core-hours"] / 1000)
    assert np.isnan(t["GPU-hours"]) and t["daily product volume"] == pytest.approx(20_000 / 1e12)
    gpu = s04.paper_scale_estimate(1000, 10, 500.0, 5, 2.0, gpu_rate_pixel_days_per_s=1e4)
    assert gpu.set_index("quantity").loc["GPU-hours", "value"] == pytest.approx(1e4 / 1e4 / 3600)


def test_bench_profile_and_machine_line_quote_the_bench_file():
    bench = pd.DataFrame({"key": ["a", "p", "p", "p"], "quantity": ["GEMM", "profile: attention", "profile: head",
                                                                    "profile: Python and dispatch overhead (share)"],
                          "value": [100.0, 4.0, 1.0, 0.2], "unit": ["GFLOP/s", "us/window", "us/window", "fraction"],
                          "note": ["", "80.0% of the total", "20.0% of the total", ""]})
    prof = s04.bench_profile(bench)
    assert list(prof["part"]) == ["attention", "head", "Python and dispatch overhead (share)"]
    assert prof["value"].tolist() == [4.0, 1.0, 0.2]
    assert s04.bench_profile(bench[bench["key"] == "a"]) is None and s04.bench_profile(None) is None
    machine = {"cpu": "AMD EPYC", "cores": 2, "checkpoint": "ckpt", "cpu_flags": ["fma", "avx2"], "torch": "2.x",
               "onednn": "3.12.0", "onednn_bf16": False, "aten_cpu_capability": "AVX2",
               "threads": {"dask_workers": 1}}
    text = s04.bench_text(None, machine)
    assert "AMD EPYC (2 cores)" in text and "fma avx2" in text and "oneDNN 3.12.0 (bf16: False)" in text
    old = {k: machine[k] for k in ("cpu", "cores", "checkpoint")}  # a bench.json from before the flags
    assert s04.bench_text(None, old) == "measured on AMD EPYC (2 cores), model: ckpt"


def test_measured_rate_prefers_the_benchmark():
    bench = pd.DataFrame({"key": ["a", "c", "c", "b-gpu"], "quantity": ["q"] * 4, "value": [1.0, 900.0, 0.5, 7e4],
                          "unit": ["GFLOP/s", "pixel-days/s", "of (b)", "pixel-days/s"], "note": [""] * 4})
    run = {"rate": 100.0, "cores": 2}
    m = s04.measured_rate(run, bench, {"cores": 16})
    assert (m["rate"], m["cores"], m["rate_from"], m["gpu_rate"]) == (900.0, 16, "make bench (c)", 7e4)
    m = s04.measured_rate(run, None, None)
    assert (m["rate"], m["cores"], m["gpu_rate"]) == (100.0, 2, None) and "production" in m["rate_from"]
    with pytest.raises(RuntimeError, match="make bench"):
        s04.measured_rate(None, bench[bench["key"] == "a"], {"cores": 16})


# ---- on the toy run -------------------------------------------------------------------------------------
def test_inputs_and_tiles(ctx, inputs, produced):
    lm, source = inputs
    assert lm.window == 5 and "cube check passed" in s04.checkpoint_text(lm)
    layout = s04.tile_layout(ctx, lm, source)
    # 7 x 5 cells in tiles of 3: 6 tiles; the last two cells are ocean, so the 1 x 2 corner tile is skipped
    assert len(layout["tiles"]) == 6 and layout["land_tiles"] == layout["tiles"][:5]
    assert layout["land_pixels"] == int((produced["cube"]["land_mask"].values == 1).sum())
    s04.plot_tiles(ctx, layout)
    assert ctx.paths.figure("04_tiles").exists()


def test_production_and_its_timing(ctx, produced):
    assert s04.produce(ctx, progress=False) == produced["files"]  # finished years: nothing to do
    rate = s04.production_rate(s04.timing(ctx))
    assert rate["pixel_days"] == 33 * (365 + 366 + 365) and rate["rate"] > 0


def test_self_check_compares_the_product_with_stored_predictions(ctx, inputs, record):
    lm, _ = inputs
    assert s04.self_check(ctx, lm) is None  # the toy checkpoint stores none
    ds, _ = record
    dates, lats, lons = ["1999-03-01", "2001-07-15"], [float(ds.lat[1]), float(ds.lat[3])], [float(ds.lon[0])] * 2
    truth = [float(ds["sm"].sel(time=d, lat=a, lon=o)) for d, a, o in zip(dates, lats, lons)]
    lm.extra["self_check"] = {"date": dates, "lat": lats, "lon": lons, "prediction": [truth[0] + 2e-5, 1.5]}
    try:
        table = s04.self_check(ctx, lm)
    finally:
        del lm.extra["self_check"]
    assert table["abs_diff"].tolist() == pytest.approx([2e-5, 1 - truth[1]], abs=1e-7)  # clipped to [0, 1]
    assert read_table(ctx.paths, "04_self_check").shape == (2, 6)


def test_files_maps_and_encoding(ctx, record, produced):
    ds, ann = record
    assert set(ds.data_vars) == {"sm", "sm_flag"} and ann.sizes["time"] == 3
    enc = s04.encoding_summary(produced["files"][0])
    assert enc["dtype"] == "int16" and enc["_FillValue"] == -32768 and enc["units"] == "m3 m-3"
    assert enc["zlib"] and "synthetic twin" in enc["source"]
    s04.plot_daily_maps(ctx, ds)
    s04.plot_annual_means(ctx, ann)
    assert ctx.paths.figure("04_daily_maps").exists() and ctx.paths.figure("04_annual_mean").exists()


def test_pixel_and_truth_metrics(ctx, inputs, record):
    _, source = inputs
    ds, _ = record
    series = s04.pixel_series(ctx, ds, source)
    assert list(series.columns) == ["product", "ERA5-Land", "truth"] and len(series) == 365 + 366 + 365
    table = s04.pixel(ctx, ds, source)
    pd.testing.assert_frame_equal(table, read_table(ctx.paths, "04_pixel_metrics"))
    assert table["n"].tolist() == [1096] * 3 and ctx.paths.figure("04_pixel_series").exists()
    truth = s04.truth_metrics(ctx, ds, source)
    assert truth["year"].tolist() == [1999, 1999, 2000, 2000, 2001, 2001]
    assert truth[["r", "ubrmse"]].notna().all().all() and (truth["r"] <= 1).all()
    assert "product vs twin truth" in s04.truth_text(truth)


def test_flags_and_paper_scale(ctx, inputs, produced):
    _, source = inputs
    flags = s04.flag_fractions(ctx, produced["files"], source)
    assert read_table(ctx.paths, "04_flag_fractions")["flag"].tolist() == flags["flag"].tolist()
    assert s04.bench(ctx) == (None, None) and "make bench" in s04.bench_text(ctx, None)
    rate = {"rate": 1000.0, "cores": 2}
    table = s04.paper_scale(ctx, rate, land_counts={"all_land": 100, "land_north_of_60S": 80})
    assert table["land_definition"].unique().tolist() == ["all_land", "land_north_of_60S"]
    assert read_table(ctx.paths, "04_paper_scale_estimate").shape == table.shape
    text = s04.paper_scale_text(table)
    assert text.count("\n") == 1 and "at 1,000 pixel-days/s on 2 cores (this run's production timing)" in text
