"""glass_sm.data.ingest: planning one source at a time (plan_sources) and submitting each source's blocks while
the next is listed give the store of the plan-everything-first path; a store left without its manifest is rebuilt;
the arrays a worker keeps open follow a store rebuilt at the same path; one listing of the sources serves the coverage
table and the plan."""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from glass_sm import config, twin
from glass_sm.data import ingest as ing
from glass_sm.data.coverage import SourceListing, coverage_table
from glass_sm.io import era5land
from glass_sm.io.errors import MissingFileError

SMOKE = Path(__file__).resolve().parents[3] / "params" / "smoke.yaml"
# test_ingest.py's SHORT, on two months: the label record starts on 2000-02-24 (the first blocks have none), 8 x 4
# cells in two build tiles, blocks of 8 days that do not divide the 60 days (the last has 4)
SHORT = {"period.start": "2000-02-01", "period.end": "2000-03-31", "domain.lon_max": -99.8, "twin.n_stations": 2,
         "cube.build_tile": 4, "cube.space_chunk": 4, "cube.ingest_block_days": 8, "cube.scheduler": "synchronous"}
REBUILT = r"left before its inputs were all listed\): rebuilt"


def _cfg(root, **over):
    return config.load(SMOKE, {"run.results_dir": str(root), **SHORT, **over})


@pytest.fixture(scope="module")
def twin_cfg(tmp_path_factory):
    cfg = _cfg(tmp_path_factory.mktemp("overlap_twin"))
    twin.generate_twin(cfg, progress=False)
    return cfg


@pytest.fixture(scope="module")
def sync_store(twin_cfg, tmp_path_factory):
    """The store of the synchronous path (the reference)."""
    store = tmp_path_factory.mktemp("sync") / "i.zarr"
    ing.ingest(twin_cfg, store, client="synchronous", progress=False)
    return store


def _markers(store: Path) -> dict:
    out = {}
    for p in sorted((store / "_done").glob("*.json")):
        info = json.loads(p.read_text())
        info.pop("seconds")
        out[p.name] = info
    return out


def assert_same_store(a: Path, b: Path) -> None:
    """Every array's metadata, attributes and bytes equal; the group's attributes (manifest included) equal; the
    same markers (but their ``seconds``)."""
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert ga.attrs.asdict() == gb.attrs.asdict()
    with warnings.catch_warnings():  # the markers' folder _done is no zarr node
        warnings.filterwarnings("ignore", "Object at _done is not recognized")
        names, names_b = sorted(ga.array_keys()), sorted(gb.array_keys())
    assert names == names_b and len(names) == 9
    for name in names:
        xa, xb = ga[name], gb[name]
        assert xa.metadata.to_dict() == xb.metadata.to_dict(), name
        assert xa.attrs.asdict() == xb.attrs.asdict(), name
        assert xa[...].tobytes() == xb[...].tobytes(), name  # NaN payloads included
    ma = _markers(a)
    assert ma == _markers(b) and ma


def test_plan_ingest_is_plan_sources_in_order(twin_cfg):
    blocks, manifest = ing.plan_ingest(twin_cfg)
    parts = list(ing.plan_sources(twin_cfg))
    assert blocks == [b for part in parts for b in part]
    assert len(blocks) == ing.n_blocks(twin_cfg) == 3 * 8 + 10  # 60 days in blocks of 8; 10 albedo composites
    # one source per part, in SUBMIT_ORDER (the order the lead fixed there: checked by name, not by position)
    assert sorted(ing.SUBMIT_ORDER) == ["albedo", "era5land", "label", "lst"]
    assert [{b.source for b in part} for part in parts] == [{s} for s in ing.SUBMIT_ORDER]
    assert tuple(b.source for b in blocks) == tuple(s for s in ing.SUBMIT_ORDER for _ in range(
        sum(b.source == s for b in blocks)))
    assert manifest == ing.manifest_of(twin_cfg, blocks)
    assert manifest["n_label_files"] == sum(b.n_files for b in blocks if b.source == "label") > 0


def test_cluster_ingest_into_a_fresh_store_equals_the_synchronous_one(twin_cfg, sync_store, threads_client,
                                                                       tmp_path):
    store = tmp_path / "d.zarr"
    rep = ing.ingest(twin_cfg, store, client=threads_client, progress=False)
    assert rep.n_blocks == ing.n_blocks(twin_cfg) and rep.n_blocks_skipped == 0
    assert_same_store(sync_store, store)
    assert zarr.open_group(str(store), mode="r").attrs["manifest"] == ing.plan_ingest(twin_cfg)[1]
    # overwrite=True over a store that differs (a changed array, a stray marker): the same store again
    g = zarr.open_group(str(store), mode="r+")
    g["lst"][:] = 0.0
    (store / "_done" / "stray.json").write_text("{}")
    rep = ing.ingest(twin_cfg, store, client=threads_client, progress=False, overwrite=True)
    assert rep.n_blocks_skipped == 0
    assert_same_store(sync_store, store)
    # resuming on the cluster: the complete store is kept, no block read again
    rep = ing.ingest(twin_cfg, store, client=threads_client, progress=False)
    assert rep.n_blocks_skipped == rep.n_blocks
    assert_same_store(sync_store, store)


def test_store_without_manifest_is_rebuilt(twin_cfg, sync_store, tmp_path):
    store = tmp_path / "i.zarr"
    shutil.copytree(sync_store, store)
    zarr.open_group(str(store), mode="r+").attrs["manifest"] = None
    with pytest.warns(UserWarning, match=REBUILT):
        rep = ing.ingest(twin_cfg, store, client="synchronous", progress=False)
    assert rep.n_blocks_skipped == 0 and rep.n_blocks == ing.n_blocks(twin_cfg)
    assert_same_store(sync_store, store)


def test_cluster_ingest_stopped_while_listing_leaves_no_manifest_and_is_rebuilt(twin_cfg, sync_store, threads_client,
                                                                                tmp_path, monkeypatch):
    store = tmp_path / "d.zarr"
    real = ing.plan_sources

    def stops_after_the_first_source(cfg, stats=None, listing=None):
        """Killed while listing the second source, once the first source's blocks are written (their markers
        there: no task still running when the store is rebuilt)."""
        gen = real(cfg, stats, listing)
        first = next(gen)
        yield first
        deadline = time.monotonic() + 10
        while len(list((store / "_done").glob("*.json"))) < len(first) and time.monotonic() < deadline:
            time.sleep(0.02)
        raise KeyboardInterrupt("killed while listing")

    monkeypatch.setattr(ing, "plan_sources", stops_after_the_first_source)
    with pytest.raises(KeyboardInterrupt):
        ing.ingest(twin_cfg, store, client=threads_client, progress=False)
    assert zarr.open_group(str(store), mode="r").attrs["manifest"] is None
    assert len(list((store / "_done").glob("*.json"))) == 8  # the first source (8 blocks) done, then killed
    monkeypatch.setattr(ing, "plan_sources", real)
    with pytest.warns(UserWarning, match=REBUILT):
        rep = ing.ingest(twin_cfg, store, client=threads_client, progress=False)  # resume: the plan first
    assert rep.n_blocks_skipped == 0
    assert_same_store(sync_store, store)


def test_store_array_follows_a_store_rebuilt_with_another_shape(twin_cfg, tmp_path):
    store = tmp_path / "s.zarr"
    other = _cfg(twin_cfg.run.results_dir, **{"period.end": "2000-03-21"})  # 50 days instead of 60
    ing._replace_store(store, twin_cfg, None)
    a = ing._store_array(str(store), "lst")
    assert a.shape[0] == 60 and ing._store_array(str(store), "lst") is a  # opened once
    a[0:8] = np.ones((8,) + a.shape[1:], np.float32)
    ing._replace_store(store, other, None)
    b = ing._store_array(str(store), "lst")
    assert b is not a and b.shape == (50,) + a.shape[1:]
    assert np.isnan(b[0:8]).all()  # the new, empty array (not the old one's values)
    b[0:8] = np.full((8,) + b.shape[1:], 2.0, np.float32)
    assert (zarr.open_array(str(store / "lst"), mode="r")[0:8] == 2.0).all()


def test_plan_stats_each_input_once_and_gives_the_same_manifest(twin_cfg, monkeypatch):
    """plan_ingest reads each GLASS and label file's size and modification time once (the planning's stat, reused
    by the manifest: on a parallel file system a stat counts) and its manifest equals one from fresh stats."""
    import os  # noqa: PLC0415

    blocks, manifest = ing.plan_ingest(twin_cfg)
    inputs = {f for b in blocks for f in b.files}
    assert inputs and manifest == ing.manifest_of(twin_cfg, blocks)
    real, seen = os.stat, []

    def counting(path, *args, **kw):
        if str(path) in inputs:
            seen.append(str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "stat", counting)
    again = ing.plan_ingest(twin_cfg)[1]
    assert again == manifest
    era5 = {f for b in blocks if b.source == "era5land" for f in b.files}
    assert sorted(p for p in seen if p not in era5) == sorted(inputs - era5)  # each GLASS / label file once
    # an ERA5-Land file also when listed and as the key of its time axis, read once per process (coverage)
    assert era5 and all(1 <= seen.count(p) <= 3 for p in era5)


# ----------------------------------------------------------------------------------------------------------
# one listing of the sources for the coverage table and the plan (SourceListing)
# ----------------------------------------------------------------------------------------------------------
def _count_listings(monkeypatch) -> Counter:
    """Counts every walk of a folder (``os.walk``, by root) and every ERA5-Land folder listing (not the reader's
    calls with its list of files)."""
    calls: Counter = Counter()
    walk, era5 = os.walk, era5land.list_era5land_files

    def counted_walk(top, *a, **k):
        calls[str(top)] += 1
        return walk(top, *a, **k)

    def counted_era5(paths_or_dir):
        if isinstance(paths_or_dir, (str, os.PathLike)) and os.path.isdir(paths_or_dir):
            calls["era5land:" + str(paths_or_dir)] += 1
        return era5(paths_or_dir)

    monkeypatch.setattr(os, "walk", counted_walk)
    monkeypatch.setattr(era5land, "list_era5land_files", counted_era5)
    return calls


def test_one_listing_walks_each_folder_once_for_the_coverage_table_and_the_plan(twin_cfg, monkeypatch):
    d = twin_cfg.data
    alone_table, alone_plan = coverage_table(twin_cfg), ing.plan_ingest(twin_cfg)  # each lists for itself
    calls = _count_listings(monkeypatch)
    listing = SourceListing(twin_cfg)
    assert not calls  # nothing listed until asked for
    table = coverage_table(twin_cfg, listing=listing)
    plan = ing.plan_ingest(twin_cfg, listing)
    assert dict(calls) == {str(d.avhrr_dir): 1, str(d.glass_modis_dir): 1, f"era5land:{d.era5land_dir}": 1}
    pd.testing.assert_frame_equal(table, alone_table)
    assert plan == alone_plan  # the same blocks and manifest
    calls.clear()
    coverage_table(twin_cfg)  # without a listing, the coverage table alone walks the AVHRR tree once (not per
    assert calls[str(d.avhrr_dir)] == 1  # product)


def test_the_coverage_table_and_the_plan_search_the_lst_names_once(twin_cfg, monkeypatch):
    from glass_sm.io import glass_avhrr

    searched = Counter()
    real = glass_avhrr.find_glass_files

    def counted(root, product, *a, **k):
        searched[product] += 1
        return real(root, product, *a, **k)

    monkeypatch.setattr(glass_avhrr, "find_glass_files", counted)
    listing = SourceListing(twin_cfg)
    coverage_table(twin_cfg, listing=listing)
    ing.plan_ingest(twin_cfg, listing)
    # LST: the same days for both, searched once; albedo: the table's composites of the period, the plan's those
    # bracketing it (interpolation), two searches
    assert searched == {"lst": 1, "albedo": 2}


def test_cluster_ingest_from_the_coverage_listing_equals_the_synchronous_one(twin_cfg, sync_store, threads_client,
                                                                            tmp_path, monkeypatch):
    listing = SourceListing(twin_cfg)
    cov = coverage_table(twin_cfg, listing=listing)
    calls = _count_listings(monkeypatch)
    ing.ingest(twin_cfg, tmp_path / "l.zarr", client=threads_client, progress=False, coverage=cov, listing=listing)
    assert not calls  # the ingest walked no folder
    assert_same_store(sync_store, tmp_path / "l.zarr")


def test_a_listing_of_another_run_is_refused(twin_cfg, tmp_path):
    listing = SourceListing(twin_cfg)
    other = _cfg(twin_cfg.run.results_dir, **{"period.end": "2000-03-21"})
    with pytest.raises(ValueError, match=r"another run \(period.end: '2000-03-31' \(listing\) vs '2000-03-21'\)"):
        ing.plan_ingest(other, listing)
    with pytest.raises(ValueError, match="another run"):
        coverage_table(other, listing=listing)
    assert SourceListing(other).check(other).key == SourceListing(other).key


def test_a_listing_keeps_the_missing_folder_error(twin_cfg, tmp_path):
    cfg = _cfg(twin_cfg.run.results_dir, **{"data.avhrr_dir": str(tmp_path / "nowhere")})
    with pytest.raises(MissingFileError) as alone:
        coverage_table(cfg)
    with pytest.raises(MissingFileError) as shared:
        coverage_table(cfg, listing=SourceListing(cfg))
    assert str(shared.value) == str(alone.value) and "nowhere" in str(shared.value)
