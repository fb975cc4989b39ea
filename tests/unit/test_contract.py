"""The run layout (RunPaths, atomic_write) and the table contract (declared once, checked on write and read)."""

from __future__ import annotations

import pandas as pd
import pytest

from glass_sm import contract
from glass_sm.contract import ContractError, read_table, table_spec, tables_of, write_table
from glass_sm.paths import RunPaths, atomic_path, atomic_write


def test_every_table_has_one_known_stage_and_columns():
    stages = set(contract.STAGES) | {"bench"}
    for name, spec in contract.TABLES.items():
        assert spec.name == name and spec.stage in stages and spec.columns and spec.description
    assert sum(len(tables_of(s)) for s in stages) == len(contract.TABLES)


def test_unknown_table_names_the_nearest(tmp_path):
    with pytest.raises(ContractError, match="did you mean 'model_comparison'"):
        table_spec("model_comparisn")
    with pytest.raises(ContractError):
        RunPaths(tmp_path).table("no_such_table")


def test_write_checks_declared_columns_and_read_round_trips(tmp_path):
    paths = RunPaths(tmp_path)
    df = pd.DataFrame({"mean_truth": [0.1, 0.2], "era5_bias": [0.03, 0.01], "extra": [1, 2]})
    path = write_table(paths, "era5_bias", df)
    assert path == paths.table("era5_bias") and path.name == "era5_bias.csv"
    pd.testing.assert_frame_equal(read_table(paths, "era5_bias"), df)
    with pytest.raises(ContractError, match=r"lacks declared column\(s\) \['era5_bias'\]"):
        write_table(paths, "era5_bias", df.drop(columns="era5_bias"))
    assert not list(tmp_path.rglob("*.partial"))


def test_gzip_table_and_missing_table_names_its_stage(tmp_path):
    paths = RunPaths(tmp_path)
    cols = list(table_spec("model_comparison_predictions").columns) + ["lstm"]
    df = pd.DataFrame([[i] * len(cols) for i in range(3)], columns=cols)
    path = write_table(paths, "model_comparison_predictions", df)
    assert path.name.endswith(".csv.gz") and path.read_bytes()[:2] == b"\x1f\x8b"
    pd.testing.assert_frame_equal(read_table(paths, "model_comparison_predictions"), df)
    with pytest.raises(FileNotFoundError, match="written by stage 05_validation"):
        read_table(paths, "breaks")


def test_atomic_write_leaves_nothing_on_error_and_replaces_on_success(tmp_path):
    target = tmp_path / "a" / "x.txt"
    with atomic_write(target) as tmp:
        tmp.write_text("one")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "one" and not atomic_path(target).exists()
    store = tmp_path / "cube.zarr"  # folders (zarr stores) too
    for content in ("v1", "v2"):
        with atomic_write(store) as tmp:
            tmp.mkdir()
            (tmp / "f").write_text(content)
    assert (store / "f").read_text() == "v2" and not atomic_path(store).exists()


def test_run_paths_own_the_checkpoint_names(tmp_path):
    paths = RunPaths(tmp_path / "demo")
    assert paths.checkpoint.name == "atlstm_final.pt" and paths.checkpoint_json.name == "atlstm_final.json"
    assert paths.checkpoint.parent == paths.models == paths.root / "models"
    assert paths.scratch == paths.product / ".work" and paths.bench_machine.name == "bench.json"
