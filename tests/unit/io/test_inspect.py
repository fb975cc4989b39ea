"""``python -m glass_sm.io.inspect FILE``: what the readers will see in one file, on the twin's files and on the
evidence's variants (no QC layer, no scale attribute, off-schedule date)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import fixtures_real as fx  # noqa: E402

from glass_sm import config  # noqa: E402
from glass_sm.grid import Domain  # noqa: E402
from glass_sm.io.inspect import describe_file, format_report, main  # noqa: E402
from glass_sm.twin import sensors, writers  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TILE = Domain.from_bounds(40.0, 41.0, -100.0, -98.0)


@pytest.fixture(scope="module")
def twin_files(tmp_path_factory):
    """Albedo composites and LST days written by the twin's own writer (glass_sm.twin.writers.write_avhrr)."""
    root = tmp_path_factory.mktemp("inspect")
    cfg = config.load(ROOT / "params" / "smoke.yaml", {"run.results_dir": str(root)})
    dom = Domain.from_config(cfg)
    dates = pd.date_range("2000-12-28", "2001-01-12")
    n = len(dates)
    rng = np.random.default_rng(0)
    av = {k: rng.uniform(0.1, 0.3, (n,) + dom.shape).astype(np.float32) for k in sensors.ALBEDO_BANDS}
    av["qc_albedo"] = np.zeros((n,) + dom.shape, np.uint8)
    av["lst"] = rng.uniform(260, 300, (n,) + dom.shape).astype(np.float32)
    av["qc_lst"] = np.zeros((n,) + dom.shape, np.uint8)
    av["platform"] = np.array(["NOAA-14"] * 4 + ["NOAA-16"] * (n - 4))
    return writers.write_avhrr(cfg, av, dates, dom)


def test_inspect_twin_albedo_composite(twin_files, capsys):
    path = next(p for p in twin_files["albedo"] if "A2001001" in p.name)
    d = describe_file(path)
    assert d["product"] == "albedo" and d["cadence"]["days"] == 8 and d["cadence"]["on_schedule"]
    assert d["name"]["version"] == 4 and d["struct_grids"][0]["name"] == "GLASS02B05"
    assert d["data"]["ABD_BSA_shortwave"]["qc_layer"] == "QC_shortwave"
    assert d["data"]["ABD_BSA_VIS"]["qc_layer"] == "QC_VIS"
    assert d["sds"]["ABD_BSA_NIR"]["type"] == "INT16" and d["sds"]["QC_VIS"]["type"] == "INT16"
    assert d["platform"].startswith("NOAA-16 (glass_sm.platforms.platform_of")
    assert d["core"]["SHORTNAME"] == "GLASS02B05"
    assert main([str(path)]) == 0
    text = capsys.readouterr().out
    for expected in ("name: GLASS02B05 (albedo), version V04, date 2001-01-01",
                     "cadence: 8-day composites; day of year 1 is on the schedule (1, 9, ...)",
                     "StructMetadata.0 grid 'GLASS02B05'",
                     "ABD_WSA_shortwave: INT16 (8, 8)",
                     "scale 0.0001 (file), offset 0; fill none (none); valid stored range 0..10000 (valid_range); "
                     "any negative stored value invalid",
                     "QC layer: QC_shortwave (looked for QC_shortwave, QC_VIS, QC): bits 0-1 = quality level",
                     "QC QC_VIS: level 0: 100.0%",
                     "valid 100.0% of 64 cells"):
        assert expected in text, expected


def test_inspect_twin_lst_day(twin_files):
    d = describe_file(twin_files["lst"][0], values=False)
    text = format_report(d)
    assert "cadence: 1-day files (daily)" in text and "QC layer: QC (looked for QC): ASSUMED bit 0" in text
    assert "fill 0 (_FillValue)" in text and "platform: NOAA-14" in text and "values:" not in text


def test_inspect_shows_fallbacks_and_missing_qc(tmp_path):
    day = pd.Timestamp("1999-02-01")  # day of year 32: not an albedo composite date
    p = fx.albedo_real_variant(fx.glass_path(tmp_path, "albedo", day),
                               {n: np.full(TILE.shape, 0.2) for n in ("ABD_BSA_shortwave", "ABD_WSA_shortwave")},
                               qc_names=(), scale_attr=False)
    text = format_report(describe_file(p))
    assert "day of year 32 is NOT on the schedule (1, 9, ...): the readers ignore this file" in text
    assert "scale 0.0001 (fallback)" in text and "fill none (none)" in text
    assert "QC layer: none found (looked for QC_shortwave, QC_VIS, QC): NO QC layer: read unmasked" in text
    assert "StructMetadata.0 grid 'GLASS02B05'" in text and "no 'Satellite' attribute)" in text
    q = fx.write_glass_hdf(fx.glass_path(tmp_path, "lst", day), "lst", {}, raw={"LST": np.full(TILE.shape, 29000)},
                           sds_attrs={"LST": {"scale_factor": None, "add_offset": None}})
    text = format_report(describe_file(q))
    assert "scale 0.01 (fallback)" in text and "physical min/q1/median/q3/max 290 / 290" in text


def test_inspect_command_line(twin_files, tmp_path):
    bad = tmp_path / "GLASS08B31.V40.A2000001.2021250.hdf"
    bad.write_bytes(b"not hdf")
    r = subprocess.run([sys.executable, "-m", "glass_sm.io.inspect", "--no-values", str(twin_files["lst"][1]),
                        str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "name: GLASS08B31 (lst), version V40" in r.stdout and "ERROR: cannot be read as HDF4" in r.stdout
