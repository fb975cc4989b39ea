"""glass_sm.data.ingest: the day-major cube equals the tile-by-tile cube; each file read once; resumable; empty
blocks; the choice of path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from glass_sm import config, twin
from glass_sm.data import cube
from glass_sm.data import ingest as ing
from glass_sm.data import rechunk
from glass_sm.grid import Domain
from glass_sm.io import era5land, glass_avhrr

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"
# Seven months (the label record starts on 2000-02-24: the first blocks have no label to read), 8 x 4 cells in two
# build tiles of 4 x 4, blocks of 8 days that do not divide the 213 days (the last block has 5).
SHORT = {"period.start": "2000-01-01", "period.end": "2000-07-31", "domain.lon_max": -99.8, "twin.n_stations": 2,
         "cube.build_tile": 4, "cube.space_chunk": 4, "cube.ingest_block_days": 8, "cube.scheduler": "synchronous"}
IGNORED_ATTRS = {"history", "ingest_method"}


def _cfg(root, **over):
    return config.load(SMOKE, {"run.results_dir": str(root), **SHORT, **over})


@pytest.fixture(scope="module")
def twin_cfg(tmp_path_factory):
    cfg = _cfg(tmp_path_factory.mktemp("ingest_twin"))
    twin.generate_twin(cfg, progress=False)
    return cfg


@pytest.fixture(scope="module")
def tile_cube(twin_cfg, tmp_path_factory):
    """The tile-by-tile cube (the reference)."""
    return cube.build_cube(twin_cfg, progress=False, path=tmp_path_factory.mktemp("ref") / "tile.zarr",
                           method="tile")


def assert_same_cube(a_path, b_path):
    """Every variable and coordinate equal (values, dtypes, attributes); every store attribute equal but
    ``history`` (the date) and ``ingest_method``."""
    a, b = cube.open_cube(a_path).load(), cube.open_cube(b_path).load()
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].attrs == b[name].attrs, name
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    keep = lambda attrs: {k: v for k, v in attrs.items() if k not in IGNORED_ATTRS}  # noqa: E731
    assert keep(a.attrs) == keep(b.attrs)
    return a, b


class Counter:
    """Counts the calls of a function (file opens of a reader) and delegates."""

    def __init__(self, fn):
        self.fn, self.calls, self.args = fn, 0, []

    def __call__(self, *args, **kw):
        self.calls += 1
        self.args.append(args[0] if args else None)
        return self.fn(*args, **kw)


def test_day_major_cube_equals_tile_cube(twin_cfg, tile_cube, tmp_path):
    cfg = twin_cfg
    assert len(cube.build_tiles(Domain.from_config(cfg), cfg.cube.build_tile)) == 2
    out = cube.build_cube(cfg, progress=False, path=tmp_path / "dm.zarr", method="day_major")
    a, b = assert_same_cube(tile_cube, out)
    assert a.attrs["ingest_method"] == "tile" and b.attrs["ingest_method"] == "day_major"
    assert np.isfinite(b["sm_label"].values).any() and np.isnan(b["sm_label"].sel(time="2000-02-23")).all()
    assert not (tmp_path / ".dm.ingest.zarr").exists()  # the intermediate store is removed once the cube is done


def test_each_file_read_once_and_report_counts(twin_cfg, tmp_path, monkeypatch):
    cfg = twin_cfg
    hdf = Counter(glass_avhrr._read_file)
    e5 = Counter(era5land._read_file)
    monkeypatch.setattr(glass_avhrr, "_read_file", hdf)
    monkeypatch.setattr(era5land, "_read_file", e5)
    import rasterio  # noqa: PLC0415

    tif = Counter(rasterio.open)
    monkeypatch.setattr(rasterio, "open", tif)
    rep = ing.ingest(cfg, tmp_path / "i.zarr", client="synchronous", progress=False)
    d = cfg.data
    comps = glass_avhrr.albedo_composites_needed(cfg.period.start, cfg.period.end, d.albedo_cadence_days,
                                                 d.albedo_sample_offset_days)
    alb = glass_avhrr.find_glass_files(d.avhrr_dir, "albedo", comps[0], comps[-1], allow_gaps=True)
    lst = glass_avhrr.find_glass_files(d.avhrr_dir, "lst", cfg.period.start, cfg.period.end, allow_gaps=True)
    n_hdf = int(alb.notna().sum() + lst.notna().sum())
    assert hdf.calls == n_hdf and len(set(hdf.args)) == n_hdf          # every HDF file read once, none twice
    labels = [str(p) for p in tif.args]  # ingest reads no static layer: every GeoTIFF opened is a label file
    assert len(labels) == len(set(labels))                              # each label GeoTIFF opened once
    e5_files = sorted(set(map(str, e5.args)))
    assert len(e5_files) == len(era5land.list_era5land_files(d.era5land_dir))  # one yearly file here
    n_days = len(pd.date_range(cfg.period.start, cfg.period.end))
    n_blocks = -(-len(comps) // 1) + 3 * -(-n_days // 8)
    assert rep.n_blocks == n_blocks and rep.n_blocks_skipped == 0
    assert rep.n_files == n_hdf + len(e5_files) + len(set(labels))
    sizes = sum(Path(p).stat().st_size for p in [*alb.dropna(), *lst.dropna(), *e5_files, *set(labels)])
    assert abs(rep.n_bytes - sizes) <= rep.n_blocks                     # ERA5 bytes shared by blocks: rounding
    assert rep.block_memory_bytes == ing.block_memory_bytes(cfg) > 0
    assert rep.peak_rss_bytes is not None and rep.peak_rss_bytes > 0
    assert rep.files_per_s > 0 and rep.bytes_per_s > 0


def test_killed_ingest_resumes_without_rereading(twin_cfg, tile_cube, tmp_path, monkeypatch):
    cfg = twin_cfg
    store = tmp_path / "i.zarr"
    real = ing._read_block
    calls = []

    def failing(block, domain, prm):
        calls.append(block.name)
        if len(calls) == 11:
            raise KeyboardInterrupt("killed")
        return real(block, domain, prm)

    monkeypatch.setattr(ing, "_read_block", failing)
    with pytest.raises(KeyboardInterrupt):
        ing.ingest(cfg, store, client="synchronous", progress=False)
    done = sorted(p.stem for p in (store / "_done").glob("*.json"))
    assert done == sorted(calls[:10])                                   # the killed block left no marker
    with pytest.raises(RuntimeError, match="10 of"):
        rechunk.cube_from_ingest(cfg, store, tmp_path / "early.zarr", client="synchronous", progress=False)
    calls.clear()
    monkeypatch.setattr(ing, "_read_block", lambda b, d, p: (calls.append(b.name), real(b, d, p))[1])
    rep = ing.ingest(cfg, store, client="synchronous", progress=False)
    assert rep.n_blocks_skipped == 10 and len(calls) == rep.n_blocks - 10
    assert not set(calls) & set(done)                                   # finished blocks not read again
    full = ing.ingest(cfg, tmp_path / "fresh.zarr", client="synchronous", progress=False)
    assert (rep.n_files, rep.n_bytes) == (full.n_files, full.n_bytes)   # markers keep the counts
    info = json.loads((store / "_done" / f"{done[0]}.json").read_text())
    assert {"n_files", "n_bytes", "empty"} <= set(info)
    out = rechunk.cube_from_ingest(cfg, store, tmp_path / "dm.zarr", client="synchronous", progress=False)
    assert_same_cube(tile_cube, out)
    calls.clear()
    ing.ingest(cfg, store, client="synchronous", progress=False, overwrite=True)  # overwrite: all read again
    assert len(calls) == rep.n_blocks


def test_empty_block_is_nan_and_counted(tmp_path):
    """LST files missing for a whole block (8 days: a short gap, allowed) -> a NaN block, filled by the cube
    exactly as the tile path fills it."""
    cfg = _cfg(tmp_path / "run", **{"period.end": "2000-03-31"})
    twin.generate_twin(cfg, progress=False)
    gone = pd.date_range("2000-01-17", "2000-01-24")  # block 2 of 8 days
    files = glass_avhrr.find_glass_files(cfg.data.avhrr_dir, "lst", gone[0], gone[-1])
    for p in files:
        Path(p).unlink()
    rep = ing.ingest(cfg, tmp_path / "i.zarr", client="synchronous", progress=False)
    markers = {m.stem: json.loads(m.read_text()) for m in (tmp_path / "i.zarr" / "_done").glob("*.json")}
    empty = sorted(k for k, v in markers.items() if v["empty"])
    assert rep.n_blocks_empty == len(empty)        # (the twin's winter albedo composites are all masked too)
    assert [k for k in empty if k.startswith("lst")] == ["lst-00002"] and markers["lst-00002"]["n_files"] == 0
    out = rechunk.cube_from_ingest(cfg, tmp_path / "i.zarr", tmp_path / "dm.zarr", client="synchronous",
                               progress=False)
    ref = cube.build_cube(cfg, progress=False, path=tmp_path / "tile.zarr", method="tile")
    a, _ = assert_same_cube(ref, out)
    assert (a["lst_filled"].sel(time=gone).values == 1).all()


def test_auto_method_and_validation(twin_cfg):
    assert cube.choose_ingest_method(twin_cfg, "auto") == "day_major"     # two build tiles
    one = _cfg(twin_cfg.run.results_dir, **{"cube.build_tile": 64, "cube.space_chunk": 64})
    assert cube.choose_ingest_method(one, "auto") == "tile"
    assert cube.choose_ingest_method(one, "day_major") == "day_major"
    with pytest.raises(ValueError, match="cube.ingest"):
        cube.choose_ingest_method(one, "column")


def test_auto_block_days_fill_the_task_budget(tmp_path):
    """Auto blocks (ingest_block_days 0): a multiple of 8 days in 8..368 whose stated task memory fits the budget
    and that gives at least TASKS_PER_THREAD tasks (4 sources x blocks) per worker thread, and no shorter than
    that needs (the period in the fewest blocks, of equal length)."""
    lo, hi = ing.BLOCK_DAYS_RANGE
    for over in ({}, {"cube.ingest_task_mb": 5.0}, {"cube.ingest_task_mb": 0.01}, {"domain.resolution": 0.25},
                 {"cube.n_workers": 7, "cube.threads_per_worker": 3}):
        cfg = config.load(SMOKE, {"run.results_dir": str(tmp_path), "cube.ingest_block_days": 0, **over})
        B = ing.block_days(cfg)
        assert B % 8 == 0 and lo <= B <= hi
        budget = cfg.cube.ingest_task_mb * 1e6
        assert B == lo or ing.block_memory_bytes(cfg) <= budget
        days = len(ing._days(cfg))
        n = -(-days // B)
        threads = cfg.cube.n_workers * cfg.cube.threads_per_worker
        assert B == lo or 4 * n >= ing.TASKS_PER_THREAD * threads
        if n > 1:  # one block fewer would be longer than the budget or the range allow, or too few tasks
            longer = 8 * -(-days // (8 * (n - 1)))
            assert (longer > hi or ing._block_bytes(cfg, longer) > budget
                    or 4 * (n - 1) < ing.TASKS_PER_THREAD * threads)


@pytest.mark.parametrize("over, expected", [
    # one year (366 days) on 2 x 1 threads: >= 8 tasks = 2 blocks of 183 days, rounded up to 184
    ({"period.start": "2000-01-01", "period.end": "2000-12-31"}, 184),
    # the same year on 8 x 1 threads: >= 32 tasks = 8 blocks of 45.75 days -> 48
    ({"period.start": "2000-01-01", "period.end": "2000-12-31", "cube.n_workers": 8}, 48),
    # the smoke period (1998-2002, 1826 days) on 2 threads: the one-year limit, 5 blocks of 365.2 -> 368
    ({}, 368),
    # a budget below one cadence's memory: the 8-day minimum
    ({"cube.ingest_task_mb": 0.01}, 8),
    # 64 days on 6 x 1 threads: >= 24 tasks = 6 blocks; 8 x ceil(64 / 48) = 16 days would give 4, so 8-day blocks
    ({"period.start": "2000-01-01", "period.end": "2000-03-04", "cube.n_workers": 6}, 8),
    # 64 days on 3 x 1 threads: >= 12 tasks = 3 blocks of 21.3 days -> 24 (3 blocks: 24, 24, 16)
    ({"period.start": "2000-01-01", "period.end": "2000-03-04", "cube.n_workers": 3}, 24),
    # an explicit length is kept
    ({"cube.ingest_block_days": 24}, 24),
])
def test_auto_block_days_hand_computed(tmp_path, over, expected):
    cfg = config.load(SMOKE, {"run.results_dir": str(tmp_path), "cube.ingest_block_days": 0, "cube.n_workers": 2,
                              "cube.threads_per_worker": 1, **over})
    assert ing.block_days(cfg) == expected


def _regrid_reference(field: np.ndarray, lat: np.ndarray, lon: np.ndarray, domain: Domain) -> np.ndarray:
    """The bilinear regrid as era5land.to_product_grid computed it before (zeros added for invalid corners)."""
    y0, y1, wy = era5land._linear_weights(lat, domain.lat)
    x0, x1, wx = era5land._linear_weights(lon, domain.lon)
    num = np.zeros((field.shape[0],) + domain.shape)
    den = np.zeros_like(num)
    for iy, ix, w in [(y0, x0, (1 - wy)[:, None] * (1 - wx)[None, :]), (y0, x1, (1 - wy)[:, None] * wx[None, :]),
                      (y1, x0, wy[:, None] * (1 - wx)[None, :]), (y1, x1, wy[:, None] * wx[None, :])]:
        v = field[:, iy][:, :, ix]
        ok = np.isfinite(v)
        num += np.where(ok, v, 0.0) * w
        den += ok * w
    with np.errstate(invalid="ignore", divide="ignore"):
        res = num / den
    res[den <= 1e-9] = np.nan
    return res.astype(np.float32)


def test_era5land_regrid_of_the_ingest_is_bit_identical_to_the_four_corner_sum():
    """The ERA5-Land bilinear regrid (one gather per corner, sums over the valid corners only) equals the plain
    four-corner sum with zeros for the invalid corners bit for bit: sea, NaN steps, signed zeros, a day all NaN."""
    rng = np.random.default_rng(7)
    lat = np.arange(60.0, -30.1, -1.5)          # descending, like ERA5-Land
    lon = np.arange(-20.0, 40.1, 1.5)
    field = rng.uniform(0.0, 0.5, (40, lat.size, lon.size)).astype(np.float32)
    field[:, rng.random((lat.size, lon.size)) < 0.3] = np.nan       # sea
    field[rng.random(field.shape) < 0.05] = np.nan                 # missing steps
    field[rng.random(field.shape) < 0.02] = -0.0
    field[5] = np.nan
    da = xr.DataArray(field, dims=("time", "lat", "lon"), name="sm_era5land",
                      coords={"time": pd.date_range("2001-01-01", periods=40), "lat": lat, "lon": lon})
    for domain in (Domain.from_bounds(-10.0, 50.0, -10.0, 30.0, res=0.5), Domain.from_bounds(0.0, 12.0, 0.0, 9.0,
                                                                                          res=3.0)):
        expect = _regrid_reference(field, lat, lon, domain)
        for chunk in (366, 7):
            got = era5land.to_product_grid(da, domain, time_chunk=chunk).values
            assert got.dtype == np.float32 and np.isfinite(got).any() and np.isnan(got[5]).all()
            assert np.array_equal(got.view(np.uint32), expect.view(np.uint32))
