"""The product's files (glass_sm.product): names, seamless values, CF encoding, flags, open_mfdataset, the readers,
and agreement with the checkpoint's own prediction."""

import numpy as np
import pytest
import xarray as xr

from glass_sm import product
from glass_sm.models import load_checkpoint
from glass_sm.product import FLAG_BITS, open_product, open_record
from glass_sm.production import run_production


def test_files_and_names(produced):
    folder = produced["cfg"].results / "product"
    assert [p.name for p in produced["files"]] == [f"GLASS_AVHRR_SM_{y}.nc" for y in (1999, 2000, 2001)]
    assert produced["files"] == [product.product_path(folder, y) for y in (1999, 2000, 2001)]
    assert all(p.exists() for p in produced["files"])
    assert sorted(p.name for p in (folder / "annual").glob("*.nc")) == [
        f"GLASS_AVHRR_SM_annual_mean_{y}.nc" for y in (1999, 2000, 2001)]
    assert not (folder / ".work").exists() or not any((folder / ".work").iterdir())
    assert not list(folder.rglob(".*.partial"))  # no temporary left behind
    assert (produced["cfg"].results / "tables" / "production_timing.csv").exists()


def test_seamless_and_cf_attributes(produced):
    land = produced["cube"]["land_mask"].values == 1
    with xr.open_dataset(produced["files"][1]) as ds:
        sm, flag = ds["sm"].values, ds["sm_flag"].values
        assert ds.sizes["time"] == 366  # 2000
        assert ds["sm"].attrs["standard_name"] == "volume_fraction_of_condensed_water_in_soil"
        assert ds["sm"].attrs["units"] == "m3 m-3"
        assert ds.attrs["Conventions"] == "CF-1.8, ACDD-1.3" and "10.5194/essd-17-5181-2025" in ds.attrs["references"]
        assert "synthetic twin" in ds.attrs["source"] and "AtLSTM" in ds.attrs["source"]
        assert len(ds.attrs["checkpoint_sha256"]) == 64 and "tile_size: 3" in ds.attrs["params"]
        assert "{results_dir}" in ds.attrs["params"] and "n_workers" not in ds.attrs["params"]
        assert ds["lat"].values[0] > ds["lat"].values[-1]
    assert np.isfinite(sm[:, land]).all()  # every land pixel, every day
    assert np.isnan(sm[:, ~land]).all()
    assert ((sm[:, land] >= 0) & (sm[:, land] <= 1)).all()
    assert (flag[:, land] <= 31).all()
    with xr.open_dataset(produced["files"][1], mask_and_scale=False) as raw:
        v = raw["sm"]
        assert v.dtype == np.int16 and v.attrs["_FillValue"] == -32768 and v.attrs["add_offset"] == 0
        assert float(v.attrs["scale_factor"]) == pytest.approx(1e-4)
        assert v.encoding["zlib"] and v.encoding["chunksizes"] == (32, 3, 3)


def test_spin_up_padding_flagged_only_at_period_start(produced, toy):
    land = produced["cube"]["land_mask"].values == 1
    padded = FLAG_BITS["window_padded_at_period_edge"]
    with xr.open_dataset(produced["files"][0], mask_and_scale=False) as ds:
        bit = (ds["sm_flag"].values[:, land] & padded) > 0
    assert bit[:toy.WINDOW - 1].all() and not bit[toy.WINDOW - 1:].any()
    with xr.open_dataset(produced["files"][1], mask_and_scale=False) as ds:  # 2000 reads the end of 1999
        assert not ((ds["sm_flag"].values[:, land] & padded) > 0).any()


def test_gap_flags_come_from_the_cube(produced):
    cube, land = produced["cube"], produced["cube"]["land_mask"].values == 1
    with xr.open_dataset(produced["files"][2], mask_and_scale=False) as ds:
        flag = ds["sm_flag"].values
    want = cube["albedo_filled"].sel(time="2001").values
    assert (((flag & 1) > 0)[:, land] == (want > 0)[:, land]).all()


def test_int16_round_trip_matches_checkpoint_prediction(produced, toy):
    """Windows rebuilt by hand from the cube and fed to LoadedModel.predict give the product within 1e-4."""
    cfg, cube, w = produced["cfg"], produced["cube"], toy.WINDOW
    lm = load_checkpoint(cfg.results / "models" / "atlstm_final.pt")
    r, c = 2, 1
    raw = np.stack([cube[v].values[:, r, c] if "time" in cube[v].dims else np.full(cube.sizes["time"],
                    cube[v].values[r, c]) for v in lm.spec.cube_variables], axis=1)
    doy = np.asarray(cube.indexes["time"].day_of_year, float)
    raw = np.concatenate([raw, np.sin(2 * np.pi * doy / 365.25)[:, None], np.cos(2 * np.pi * doy / 365.25)[:, None]],
                         axis=1)
    padded = np.concatenate([np.repeat(raw[:1], w - 1, axis=0), raw])
    windows = np.lib.stride_tricks.sliding_window_view(padded, w, axis=0).transpose(0, 2, 1)
    expected = np.clip(lm.predict(windows), 0, 1)
    got = open_product(cfg.results / "product")
    try:
        series = got.isel(lat=r, lon=c).values
    finally:
        got.close()
    assert series.shape == expected.shape
    assert np.abs(series - expected).max() <= 0.5e-4 + 1e-6


def test_open_mfdataset_just_works(produced):
    folder = produced["cfg"].results / "product"
    with xr.open_mfdataset(str(folder / "*.nc")) as ds:
        assert ds.sizes["time"] == 365 + 366 + 365
        assert set(ds.data_vars) == {"sm", "sm_flag"}
        assert ds.indexes["time"].is_monotonic_increasing
    with xr.open_mfdataset(str(folder / "annual" / "*.nc")) as ann:
        assert ann.sizes["time"] == 3 and ann["sm"].attrs["cell_methods"] == "time: mean"
        with xr.open_dataset(produced["files"][0]) as d1999:
            np.testing.assert_allclose(ann["sm"].isel(time=0).values, d1999["sm"].mean("time").values,
                                       atol=1e-4)


def test_readers_open_the_record_and_the_annual_means(produced):
    folder = produced["cfg"].results / "product"
    with open_record(folder) as ds, open_record(folder, annual=True) as ann:
        assert set(ds.data_vars) == {"sm", "sm_flag"} and ds.sizes["time"] == 365 + 366 + 365
        assert ann.sizes["time"] == 3 and "sm_flag" not in ann
    flags = open_product(folder, name="x", variable="sm_flag")
    assert flags.name == "x" and flags.sizes["time"] == 365 + 366 + 365
    with pytest.raises(KeyError, match="lack variable 'nope'"):
        open_product(folder, variable="nope")


def test_readers_without_files_name_the_folder_and_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="run stage 04"):
        open_product(tmp_path)
    with pytest.raises(FileNotFoundError, match="annual_mean"):
        open_record(tmp_path, annual=True)


def test_float32_encoding(tmp_path, produced, toy):
    toy.write_run(tmp_path)
    cfg = toy.cfg(tmp_path, encoding="float32")
    (f,) = run_production(cfg, years=[2000], progress=False)
    with xr.open_dataset(f) as a, xr.open_dataset(produced["files"][1]) as b:
        assert a["sm"].dtype == np.float32
        assert np.nanmax(np.abs(a["sm"].values - b["sm"].values)) <= 0.5e-4 + 1e-6


def test_flag_fractions_count_land_pixel_days(produced, toy):
    land = produced["cube"]["land_mask"].values == 1
    table = product.flag_fractions(produced["files"], land)
    assert table["flag"].tolist() == list(FLAG_BITS) and table["bit"].tolist() == list(FLAG_BITS.values())
    frac = dict(zip(table["flag"], table["fraction_of_land_pixel_days"]))
    assert frac["window_padded_at_period_edge"] == pytest.approx((toy.WINDOW - 1) / (365 + 366 + 365))
    albedo = produced["cube"]["albedo_filled"].values[:, land]
    assert frac["albedo_gap_filled"] == pytest.approx((albedo > 0).mean())
    assert table["fraction_of_land_pixel_days"].between(0, 1).all()


def test_measured_bytes_count_land_pixel_days(produced):
    sizes = product.measure_product_bytes(produced["cfg"].results / "product")
    land = int((produced["cube"]["land_mask"].values == 1).sum())
    assert sizes["files"] == 3 and sizes["pixel_days"] == land * (365 + 366 + 365)
    assert sizes["bytes"] == sum(p.stat().st_size for p in produced["files"])
    assert sizes["bytes_per_pixel_day"] == pytest.approx(sizes["bytes"] / sizes["pixel_days"])


def test_stamp_changes_name_what_differs():
    stamp = {"checkpoint_sha256": "a" * 64, "cube_fingerprint": "c" * 64,
             "production_params": '{"batch_size": 500, "encoding": "int16"}'}
    assert product.stamp_changes(stamp, stamp) == []
    other = {**stamp, "checkpoint_sha256": "b" * 64, "production_params": '{"batch_size": 400, "encoding": "int16"}'}
    assert product.stamp_changes(stamp, other) == [
        f"checkpoint changed (sha256 {'a' * 12} -> {'b' * 12})", "production parameters changed: batch_size 500 -> 400"]
    assert product.stamp_changes({**stamp, "cube_fingerprint": None}, stamp) == ["file records no cube_fingerprint"]
    assert product.stamp_changes({**stamp, "production_params": "[]"}, stamp) == [
        "production parameters changed: batch_size (unset) -> 500, encoding (unset) -> int16"]


def test_stamp_changes_name_an_older_file_format():
    stamp = {"checkpoint_sha256": "a" * 64, "cube_fingerprint": "c" * 64, "production_params": "{}",
             "product_format_version": str(product.PRODUCT_FORMAT_VERSION)}
    old = {**stamp, "product_format_version": None}  # a file written before the attribute existed
    assert product.stamp_changes(old, stamp) == [f"file format changed (version 1 -> {product.PRODUCT_FORMAT_VERSION})"]
    assert product.stamp_changes(stamp, stamp) == []


def test_files_record_the_format_version_and_a_cf_byte_flag(produced):
    f = produced["files"][0]
    assert product.read_stamp(f)["product_format_version"] == str(product.PRODUCT_FORMAT_VERSION)
    land = produced["cube"]["land_mask"].values == 1
    with xr.open_dataset(f, mask_and_scale=False) as raw:
        flag = raw["sm_flag"]
        assert flag.dtype == np.int8 and flag.attrs["_FillValue"] == product.FLAG_FILL_STORED
        assert flag.attrs["flag_masks"].dtype == np.int8 and flag.attrs["valid_range"].tolist() == [0, 31]
        assert (flag.values[:, ~land] == product.FLAG_FILL_STORED).all()
        assert ((flag.values[:, land] >= 0) & (flag.values[:, land] <= 31)).all()


def test_stored_flags_keep_the_bits_and_map_the_scratch_fill():
    scratch = np.array([0, 1, 31, 16 | 4, product.FLAG_FILL], np.uint8)
    stored = product._stored_flags(scratch)
    assert stored.dtype == np.int8 and stored.tolist() == [0, 1, 31, 20, product.FLAG_FILL_STORED]


def test_acdd_attributes_describe_the_file(produced):
    cube = produced["cube"]
    with xr.open_dataset(produced["files"][1]) as ds:  # 2000
        a = ds.attrs
        assert a["Conventions"] == "CF-1.8, ACDD-1.3" and "summary" in a and "SOIL MOISTURE" in a["keywords"]
        assert a["id"] == "toy.GLASS_AVHRR_SM_2000" and a["naming_authority"] == product.NAMING_AUTHORITY
        assert a["creator_name"] == product.CREATOR and "MIT" in a["license"] and a["institution"]
        assert a["time_coverage_start"] == "2000-01-01" and a["time_coverage_end"] == "2000-12-31"
        assert a["time_coverage_duration"] == "P366D" and a["time_coverage_resolution"] == "P1D"
        # the extent of the cell centres (what the coordinates hold), as the checker compares it
        assert a["geospatial_lat_min"] == pytest.approx(float(cube.lat.min()))
        assert a["geospatial_lon_max"] == pytest.approx(float(cube.lon.max()))
        assert a["geospatial_bounds"].startswith("POLYGON ((") and a["geospatial_bounds_crs"] == "EPSG:4326"
        assert "date_created" not in a  # the toy cube records no build date, and the clock is never used
        assert ds["sm"].attrs["coverage_content_type"] == "modelResult"
        assert ds["lat"].attrs["coverage_content_type"] == "coordinate"
    with xr.open_dataset(product.annual_path(produced["files"][1].parent, 2000)) as ann:
        assert ann.attrs["id"] == "toy.GLASS_AVHRR_SM_annual_mean_2000"
        assert ann.attrs["time_coverage_resolution"] == "P1Y"


def test_creation_date_is_deterministic(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    cube = SimpleNamespace(ds=SimpleNamespace(attrs={"history": "2025-06-01 built by glass_sm.data.cube.build_cube"}))
    lm = SimpleNamespace(extra={})
    assert product.creation_date(lm, cube) == "2025-06-01"
    assert product.creation_date(SimpleNamespace(extra={"created": "2025-07-02T10:00:00+00:00"}), cube) == \
        "2025-07-02T10:00:00Z"  # the newest input
    assert product.creation_date(lm, SimpleNamespace()) is None  # nothing recorded: no date, never the clock
    assert product.creation_date(lm, SimpleNamespace(ds=SimpleNamespace(attrs={"history": "made in memory"}))) is None
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1735689600")
    assert product.creation_date(lm, cube) == "2025-01-01T00:00:00Z"
