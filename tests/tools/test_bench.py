"""tools/bench.py: the benchmark re-runs only when the checkpoint it measured changed."""

from __future__ import annotations

import json

import pandas as pd

import bench
from glass_sm.contract import read_table, write_table
from glass_sm.models.checkpoint import file_sha256
from glass_sm.paths import RunPaths


def test_measured_checkpoint_follows_the_checkpoint_content(tmp_path):
    paths = RunPaths(tmp_path / "run").ensure()
    paths.checkpoint.write_bytes(b"weights v1")
    sha = file_sha256(paths.checkpoint)
    assert bench.measured_checkpoint(paths) is None  # never measured
    write_table(paths, "bench", pd.DataFrame([{"key": "a", "quantity": "q", "value": 1.0, "unit": "u", "note": ""}]))
    (paths.tables / "bench.json").write_text(json.dumps({"machine": {"checkpoint_sha256": sha}, "rows": []}))
    assert bench.measured_checkpoint(paths) == sha
    paths.checkpoint.write_bytes(b"weights v2")
    assert bench.measured_checkpoint(paths) != file_sha256(paths.checkpoint)  # changed: measure again
    assert list(read_table(paths, "bench").columns) == ["key", "quantity", "value", "unit", "note"]
    paths.table("bench").unlink()
    assert bench.measured_checkpoint(paths) is None  # the table is gone: measure again


def test_if_checkpoint_changed_skips_an_up_to_date_benchmark(tmp_path, capsys):
    params = tmp_path / "p.yaml"
    params.write_text(f"run:\n  name: b\n  results_dir: {tmp_path / 'results'}\n")
    paths = RunPaths(tmp_path / "results" / "b").ensure()
    paths.checkpoint.write_bytes(b"weights")
    write_table(paths, "bench", pd.DataFrame([{"key": "a", "quantity": "q", "value": 1.0, "unit": "u", "note": ""}]))
    doc = {"machine": {"checkpoint_sha256": file_sha256(paths.checkpoint)}, "rows": []}
    (paths.tables / "bench.json").write_text(json.dumps(doc))
    assert bench.main([str(params), "--if-checkpoint-changed"]) == 0
    assert "bench: up to date" in capsys.readouterr().out
    assert json.loads((paths.tables / "bench.json").read_text()) == doc  # nothing measured, nothing rewritten


def test_machine_details_name_the_cpu_flags_versions_and_threads():
    from glass_sm import config

    d = bench.machine_details(config.load(None, {"production.threads_per_worker": 3}))
    assert set(d["cpu_flags"]) <= set(bench.CPU_FLAGS)
    assert d["threads"]["threads_per_worker"] == 3
    assert d["onednn"] is None or d["onednn"][0].isdigit()
    assert set(d["optional_backends"]) == {"onnxruntime", "openvino"}


def test_engine_rate_and_profile_on_a_tiny_model(one_torch_thread):
    """Smoke test (no timing asserted): the parts of the profile are disjoint pieces of the wall time."""
    import torch

    from glass_sm.models.lstm import AtLSTMRegressor

    torch.manual_seed(0)
    model = AtLSTMRegressor(3, 5, hidden_size=4, num_layers=2, dropout=0.0).eval()
    assert bench.engine_rate(model, 5, 3, 1, 2, 16, 64, n_windows=40, repeats=1, n_out=10) > 0
    parts = bench.profile_engine(model, 5, 3, 16, 64, n_windows=40, n_out=10)
    inside = [v for k, v in parts.items() if k.startswith(("layer", "attention", "head"))]
    assert {"layer 1: input projection (once per pixel-day)", "layer 1: recurrent steps",
            "layer 2: input + recurrent steps", "attention", "head"} <= set(parts)
    assert 0 < sum(inside) <= parts["total (wall)"]
    assert 0 <= parts["Python and dispatch overhead (wall - ATen, share)"] <= 1
