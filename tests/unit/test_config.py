"""glass_sm.config: typed parameters, fail-fast errors, provenance."""

import dataclasses
import datetime as dt
import tracemalloc
import types
import typing
from pathlib import Path

import pytest
import yaml

from glass_sm import config
from glass_sm.config import ConfigError
from glass_sm.models import MODEL_REGISTRY
from glass_sm.models.registry import hparam_ranges, hparam_types

PARAMS = Path(__file__).resolve().parents[2] / "params"


@pytest.mark.parametrize("name", ["smoke", "demo", "global3", "regional", "full"])
def test_shipped_params_load(name):
    cfg = config.load(PARAMS / f"{name}.yaml")
    assert cfg.run.name == name
    assert isinstance(cfg.period.start, dt.date)
    assert cfg.data.avhrr_dir == Path(f"results/{name}/data/raw/avhrr")
    assert cfg.data.truth_path == Path(f"results/{name}/data/truth.nc")


def test_defaults_are_valid():
    cfg = config.load(None)
    assert cfg.run.name == "demo"
    assert cfg.results == Path("results/demo")


def test_unknown_key_names_key_and_suggestion(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("training:\n  epohcs: 3\n")
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert "training.epohcs" in msg and "did you mean 'epochs'" in msg and str(p) in msg


def test_unknown_section_suggestion(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("trainig:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"unknown parameter 'trainig'; did you mean 'training'"):
        config.load(p)


@pytest.mark.parametrize(
    "override, pattern",
    [
        ({"training.epochs": "ten"}, r"training\.epochs: expected an integer, got 'ten'"),
        ({"training.epochs": 2.5}, r"training\.epochs: expected an integer"),
        ({"twin.enabled": "yes"}, r"twin\.enabled: expected true/false"),
        ({"period.start": "1982-13-01"}, r"period\.start: expected a date"),
        ({"samples.split": "sites"}, r"samples\.split: 'sites' is not one of .*did you mean 'site'"),
        ({"samples.dynamic_features": "lst"}, r"samples\.dynamic_features: expected a list"),
        ({"domain.lat_min": 50.0}, r"domain: need -90 <= lat_min < lat_max"),
        ({"period.end": "1970-01-01"}, r"period: start .* is after end"),
        ({"samples.test_fraction": 1.5}, r"samples\.test_fraction: 1\.5 is out of range \(allowed: in \(0, 1\)\)"),
        ({"models.names": ["lstm", "atlsmt"]}, r"unknown model 'atlsmt'; did you mean 'atlstm'"),
        ({"models.hparams.xgbost.max_depth": 3}, r"'models\.hparams\.xgbost'; did you mean 'xgboost'"),
        ({"models.hparams.xgboost.max_dept": 3}, r"'models\.hparams\.xgboost\.max_dept'; did you mean 'max_depth'"),
        ({"models.hparams.common.hiden_size": 8}, r"'models\.hparams\.common\.hiden_size'; did you mean 'hidden_size'"),
        ({"models.hparams.lstm.d_model": 8}, r"'models\.hparams\.lstm\.d_model'.*valid keys here: hidden_size, "
                                             r"num_layers, dropout\)"),
        ({"models.hparams.xgboost.max_depth": "deep"}, r"models\.hparams\.xgboost\.max_depth: expected an integer"),
        ({"models.hparams.common.dropout": "0.1"}, r"models\.hparams\.common\.dropout: expected a number"),
        ({"models.hparams.atlstm.attention_size": 2.5}, r"models\.hparams\.atlstm\.attention_size: expected an integer, got 2\.5"),
        ({"models.hparams.xgboost": 5}, r"models\.hparams\.xgboost: expected a mapping"),
        ({"models.hparams": [1]}, r"models\.hparams: expected a mapping"),
        ({"models.xgb_n_estimators": 5}, r"'models\.xgb_n_estimators' has moved: .*'models\.hparams\.xgboost\."
                                         r"n_estimators'"),
        ({"models.hidden_size": 8}, r"'models\.hidden_size' has moved: .*'models\.hparams\.common\.hidden_size'"),
    ],
)
def test_wrong_type_or_value_names_the_key(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config.load(PARAMS / "smoke.yaml", override)


def test_overrides_and_int_to_float():
    cfg = config.load(PARAMS / "smoke.yaml", {"training.epochs": 5, "twin": {"label_noise": 0}})
    assert cfg.training.epochs == 5
    assert cfg.twin.label_noise == 0.0 and isinstance(cfg.twin.label_noise, float)


def test_hparams_merge_onto_defaults_key_by_key():
    smoke = config.load(PARAMS / "smoke.yaml")
    assert smoke.models.hparams == {
        "common": {"hidden_size": 16, "num_layers": 1, "dropout": 0.1, "d_model": 16, "n_heads": 2},
        "xgboost": {"n_estimators": 50, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20,
                    "n_jobs": 2},
        "xgboost_window": {"n_estimators": 50, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20,
                           "n_jobs": 2},
    }
    nested = config.load(PARAMS / "smoke.yaml", {"models": {"hparams": {"common": {"dropout": 0}}}})
    assert nested.models.hparams["common"]["hidden_size"] == 16  # the file's value survives a nested override
    assert nested.models.hparams["common"]["dropout"] == 0.0 and isinstance(
        nested.models.hparams["common"]["dropout"], float)
    empty = config.load(None, {"models.hparams.transformer": None})  # "transformer:" with nothing under it
    assert empty.models.hparams["transformer"] == {}
    assert config.load(None, {"models.hparams.atlstm.attention_size": None}).models.hparams["atlstm"] == {
        "attention_size": None}
    assert config.DEFAULT_HPARAMS["common"]["hidden_size"] == 64  # the defaults are never mutated


def test_root_template_requires_root(tmp_path, monkeypatch):
    monkeypatch.delenv("GLASS_SM_DATA", raising=False)
    p = tmp_path / "p.yaml"
    p.write_text("data:\n  source: real\n  avhrr_dir: '{root}/glass'\ntwin:\n  enabled: false\n")
    with pytest.raises(ConfigError, match=r"data\.avhrr_dir: uses \{root\}"):
        config.load(p)
    monkeypatch.setenv("GLASS_SM_DATA", str(tmp_path))
    assert config.load(p).data.avhrr_dir == tmp_path / "glass"


def test_real_source_with_twin_enabled_is_rejected():
    with pytest.raises(ConfigError, match="twin.enabled"):
        config.load(None, {"data.source": "real"})


def test_dump_roundtrip(tmp_path):
    cfg = config.load(PARAMS / "smoke.yaml")
    out = config.dump(cfg, tmp_path / "resolved.yaml")
    again = yaml.safe_load(out.read_text())
    assert again["training"]["epochs"] == cfg.training.epochs
    assert again["period"]["start"] == "1998-01-01"
    assert again["models"]["hparams"] == cfg.models.hparams
    models_only = tmp_path / "models.yaml"
    models_only.write_text(yaml.safe_dump({"models": again["models"]}))
    assert config.load(models_only).models.hparams == cfg.models.hparams


def test_provenance_has_params_commit_versions(tmp_path):
    cfg = config.load(PARAMS / "smoke.yaml")
    path = config.write_provenance(cfg, "01_data_preparation", tmp_path)
    doc = yaml.safe_load(path.read_text())
    assert doc["stage"] == "01_data_preparation"
    assert doc["params"]["run"]["name"] == "smoke"
    assert doc["packages"]["numpy"] != "not installed"
    assert doc["git_commit"]


def test_describe_documents_every_key():
    rows = config.describe()
    assert {r["section"] for r in rows} >= {"run", "domain", "twin", "samples", "training", "production"}
    assert all(r["doc"] for r in rows), [r["key"] for r in rows if not r["doc"]]


def test_describe_documents_every_hyperparameter():
    rows = {r["key"]: r for r in config.describe() if r["section"] == "models"}
    for name, cls in MODEL_REGISTRY.items():
        for key in cls.default_hparams:
            assert f"hparams.{name}.{key}" in rows, (name, key)
    for key, value in config.DEFAULT_HPARAMS["common"].items():
        assert rows[f"hparams.common.{key}"]["default"] == value
    assert rows["hparams.xgboost.n_estimators"] == {
        "section": "models", "key": "hparams.xgboost.n_estimators", "type": "int >= 1", "range": ">= 1",
        "default": 600, "doc": "Maximum boosting rounds."}
    assert rows["hparams.bilstm.hidden_size"]["default"] == 64
    assert "hparams.common.hidden_size" in rows["hparams.bilstm.hidden_size"]["doc"]
    assert rows["hparams.xgboost.seed"]["default"] == "run.seed"


def test_cli(capsys):
    assert config._main(["run-name", str(PARAMS / "smoke.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "smoke"
    assert config._main(["check", "missing.yaml"]) == 1


# ---- issue 13: numeric ranges, params-file faults, run names, wrong sections, twin memory ---------------------
@pytest.mark.parametrize(
    "override, pattern",
    [
        ({"training.epochs": -3}, r"training\.epochs: -3 is out of range \(allowed: >= 1\)"),
        ({"training.epochs": 0}, r"training\.epochs: 0 is out of range \(allowed: >= 1\)"),
        ({"training.batch_size": 0}, r"training\.batch_size: 0 .*>= 1"),
        ({"training.lr": 0}, r"training\.lr: 0\.0 .*> 0"),
        ({"training.lr": float("nan")}, r"training\.lr: expected a finite number, got nan"),
        ({"training.weight_decay": float("inf")}, r"training\.weight_decay: expected a finite number"),
        ({"training.max_batches_per_epoch": 0}, r"training\.max_batches_per_epoch: 0 .*>= 1"),
        ({"training.n_boot": 0}, r"training\.n_boot: 0 .*>= 1"),
        ({"training.torch_threads": -1}, r"training\.torch_threads: -1 .*>= 0"),
        ({"samples.window": 0}, r"samples\.window: 0 .*>= 1"),
        ({"samples.block_size": -2}, r"samples\.block_size: -2 .*>= 1"),
        ({"samples.max_train_samples": 0}, r"samples\.max_train_samples: 0 .*>= 1"),
        ({"samples.val_fraction": 1.0}, r"samples\.val_fraction: 1\.0 .*in \(0, 1\)"),
        ({"samples.test_years": [2000, 1950]}, r"samples\.test_years\[1\]: 1950 .*in \[1998, 2002\]"),
        ({"twin.n_stations": -5}, r"twin\.n_stations: -5 .*>= 1"),
        ({"twin.n_stations": 0}, r"twin\.n_stations: 0 .*>= 1"),
        ({"twin.label_gap_fraction": 1.5}, r"twin\.label_gap_fraction: 1\.5 .*in \[0, 1\)"),
        ({"twin.station_pre2000_fraction": -0.1}, r"twin\.station_pre2000_fraction: -0\.1 .*in \[0, 1\]"),
        ({"twin.lst_noise": -1}, r"twin\.lst_noise: -1\.0 .*>= 0"),
        ({"twin.aridity_west_east": [0.25, 0]}, r"twin\.aridity_west_east\[1\]: 0\.0 .*> 0"),
        ({"twin.aridity_west_east": [0.25]}, r"twin\.aridity_west_east: .*2 items"),
        ({"twin.cci_resolution": 0.12}, r"twin\.cci_resolution: 0\.12 .*multiple of 0\.05"),
        ({"cube.time_chunk": 0}, r"cube\.time_chunk: 0 .*>= 1"),
        ({"cube.build_tile": 6}, r"cube\.build_tile: 6 .*multiple of cube\.space_chunk"),
        ({"atlstm.lengths": [1, 0, 7]}, r"atlstm\.lengths\[1\]: 0 .*>= 1"),
        ({"atlstm.lengths": [1, "7"]}, r"atlstm\.lengths\[1\]: expected an integer"),
        ({"atlstm.lengths": []}, r"atlstm\.lengths: .*at least 1 item"),
        ({"atlstm.final_epochs": 0}, r"atlstm\.final_epochs: 0 .*>= 1"),
        ({"atlstm.length_models": ["atlstm", "lstn"]}, r"atlstm\.length_models: unknown model 'lstn'"),
        ({"production.n_workers": 0}, r"production\.n_workers: 0 .*>= 1"),
        ({"production.threads_per_worker": 0}, r"production\.threads_per_worker: 0 .*>= 1"),
        ({"production.tile_size": 0}, r"production\.tile_size: 0 .*>= 1"),
        ({"production.model_batch": -1}, r"production\.model_batch: -1 .*>= 1"),
        ({"production.batch_size": 0}, r"production\.batch_size: 0 .*>= 1"),
        ({"production.torch_threads": 0}, r"production\.torch_threads: 0 .*>= 1"),
        ({"production.years": [1998, 2030]}, r"production\.years\[1\]: 2030 .*in \[1998, 2002\]"),
        ({"validation.n_boot": -1}, r"validation\.n_boot: -1 .*>= 1"),
        ({"validation.depth_to": -0.05}, r"validation\.depth_to: -0\.05 .*> 0"),
        ({"validation.depth_from": 0.1}, r"validation: depth_from 0\.1 m must be above depth_to 0\.05 m"),
        ({"validation.min_pairs": 1}, r"validation\.min_pairs: 1 .*>= 2"),
        ({"figures.dpi": 0}, r"figures\.dpi: 0 .*in \[1, 1200\]"),
        ({"models.rate_windows": 0}, r"models\.rate_windows: 0 .*>= 1"),
        ({"models.sm_bins": [0.0, 0.2, 1.5]}, r"models\.sm_bins\[2\]: 1\.5 .*in \[0, 1\]"),
        ({"models.sm_bins": [0.0, 0.3, 0.2]}, r"models\.sm_bins: .*increasing"),
        ({"models.names": []}, r"models\.names: .*at least 1 item"),
        ({"domain.lat_min": -95.0}, r"domain\.lat_min: -95\.0 .*in \[-90, 90\]"),
        ({"domain.lon_max": 200}, r"domain\.lon_max: 200\.0 .*in \[-180, 180\]"),
        ({"run.seed": -1}, r"run\.seed: -1 .*>= 0"),
        ({"models.hparams.common.hidden_size": 0}, r"models\.hparams\.common\.hidden_size: 0 .*>= 1"),
        ({"models.hparams.common.dropout": 1.0}, r"models\.hparams\.common\.dropout: 1\.0 .*in \[0, 1\)"),
        ({"models.hparams.lstm.dropout": -0.1}, r"models\.hparams\.lstm\.dropout: -0\.1 .*in \[0, 1\)"),
        ({"models.hparams.lstm.num_layers": 0}, r"models\.hparams\.lstm\.num_layers: 0 .*>= 1"),
        ({"models.hparams.atlstm.attention_size": 0}, r"models\.hparams\.atlstm\.attention_size: 0 .*>= 1"),
        ({"models.hparams.transformer.n_heads": 3}, r"models\.hparams\.transformer: .*d_model 16.*n_heads 3"),
        ({"models.hparams.xgboost.subsample": 0}, r"models\.hparams\.xgboost\.subsample: 0\.0 .*in \(0, 1\]"),
        ({"models.hparams.xgboost.n_jobs": 0}, r"models\.hparams\.xgboost\.n_jobs: 0 .*>= 1"),
        ({"models.hparams.xgboost.learning_rate": -0.1}, r"xgboost\.learning_rate: -0\.1 .*in \(0, 1\]"),
        ({"models.hparams.xgboost.early_stopping_rounds": 0}, r"xgboost\.early_stopping_rounds: 0 .*>= 1"),
    ],
)
def test_out_of_range_number_names_key_value_and_range(override, pattern):
    """Issue 13: `training.epochs: -3` trained nothing and `production.n_workers: 0` hung; every numeric
    parameter (items of lists and model hyperparameters too) is range-checked at load."""
    with pytest.raises(ConfigError, match=pattern):
        config.load(PARAMS / "smoke.yaml", override)


def _numeric(tp) -> bool:
    """Whether a parameter annotation is a number, an optional number or a list of numbers."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is list:
        return _numeric(args[0]) if args else False
    if args and typing.get_origin(tp) in (typing.Union, types.UnionType):
        return all(_numeric(a) for a in args)
    return tp in (int, float)


def test_every_numeric_parameter_declares_its_range():
    """The class, not the cases: a numeric parameter without a declared range fails here."""
    missing = []
    for sec in dataclasses.fields(config.Config):
        if not dataclasses.is_dataclass(sec.default_factory):
            continue
        hints = typing.get_type_hints(sec.default_factory)
        for f in dataclasses.fields(sec.default_factory):
            if _numeric(hints[f.name]) and not f.metadata.get("range"):
                missing.append(f"{sec.name}.{f.name}")
    for name in MODEL_REGISTRY:
        ranges = hparam_ranges(name)
        for key, tp in hparam_types(name).items():
            if _numeric(tp) and key not in ranges:
                missing.append(f"models.hparams.{name}.{key}")
    assert not missing, missing
    assert any(_numeric(hints) for hints in typing.get_type_hints(config.AtLSTMConfig).values())


def test_describe_shows_the_range():
    rows = {(r["section"], r["key"]): r for r in config.describe()}
    assert rows["training", "epochs"]["range"] == ">= 1"
    assert rows["training", "epochs"]["type"] == "int >= 1"
    assert rows["samples", "test_fraction"]["type"] == "float in (0, 1)"
    assert rows["atlstm", "lengths"]["type"] == "list of int >= 1 (at least 1 item)"
    assert rows["models", "hparams.common.dropout"]["type"] == "float in [0, 1)"
    assert rows["models", "hparams.xgboost.subsample"]["range"] == "in (0, 1]"
    assert rows["run", "name"]["range"] == ""


@pytest.mark.parametrize(
    "text, pattern",
    [
        (b"run:\n  name: caf\xe9\n", r"not UTF-8 text \(line 2, byte 16: b'\\xe9'\)"),
        ("run:\n  name: x\n".encode("utf-16"), r"not UTF-8 text \(line 1, byte 0"),
        (b"run:\n\tname: x\n", r"not valid YAML: line 2, column 1: .*tab"),
        (b"run:\n  name: x\n   seed: 3\n", r"not valid YAML: line 3"),
        (b"training:\n  epochs: 3\n  epochs: 5\n",
         r"line 3, column 3: key 'training\.epochs' given twice \(first at line 2\)"),
        (b"training:\n  epochs: 3\ntraining:\n  lr: 0.1\n", r"line 3, column 1: key 'training' given twice"),
        (b"- a\n- b\n", r"expected a mapping of sections \(run:, domain:, \.\.\.\) at top level, got a list"),
        (b"hello\n", r"expected a mapping of sections .* got a str"),
        (b"training: 5\n", r"training: expected a mapping, got int"),
        (b"training: [1, 2]\n", r"training: expected a mapping, got list"),
        (b"", r"empty: no parameters"),
        (b"# only a comment\n\n", r"empty: no parameters"),
        (b"period:\n  start: 2000-13-45\n", r"line 2, column 10: invalid date '2000-13-45'"),
        (b"run: !!python/object/apply:os.system ['echo hi']\n", r"not valid YAML: line 1.*python/object"),
        (b"training:\n  lr: .nan\n", r"training\.lr: expected a finite number"),
        (b"run:\n  name: x\x00\n", r"not valid YAML"),
        (b"? [a, b]\n: 1\n", r"not valid YAML"),
    ],
)
def test_params_file_faults_are_config_errors_naming_the_file(tmp_path, text, pattern):
    """Issue 13: a non-UTF-8 byte or an impossible date in a params file gave a raw traceback; a duplicate key
    was silently resolved (the last one won); an empty file silently gave the defaults."""
    p = tmp_path / "p.yaml"
    p.write_bytes(text)
    with pytest.raises(ConfigError, match=pattern) as e:
        config.load(p)
    assert str(e.value).startswith(f"{p}: ")


def test_unreadable_params_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path}: .*not a file"):
        config.load(tmp_path)
    with pytest.raises(ConfigError, match="parameter file not found"):
        config.load(tmp_path / "missing.yaml")


def test_an_empty_section_is_an_empty_mapping(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("run:\n  name: x\ntraining:\n")
    assert config.load(p).training.epochs == config.TrainingConfig().epochs


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "a\\b", "..", ".", "", ".hidden", "a b", "x\n"])
def test_run_name_must_stay_inside_results(name):
    with pytest.raises(ConfigError, match=r"run\.name: .* must be a plain folder name"):
        config.load(None, {"run.name": name})


def test_plain_run_names_are_accepted():
    for name in ("smoke", "demo-2", "run_3.b", "Global2025"):
        assert config.load(None, {"run.name": name}).results == Path("results") / name


@pytest.mark.parametrize(
    "override, pattern",
    [
        ({"models.epochs": 3}, r"unknown parameter 'models\.epochs'.*: it belongs in training\.epochs"),
        ({"epochs": 3}, r"unknown parameter 'epochs'.*: it belongs in training\.epochs"),
        ({"training.tile_size": 3}, r"belongs in production\.tile_size"),
        ({"production.window": 3}, r"belongs in samples\.window"),
        ({"samples.n_boot": 3}, r"belongs in training\.n_boot or validation\.n_boot"),
        ({"training.hidden_size": 8}, r"belongs in models\.hparams\.common\.hidden_size"),
        ({"models.hparams.common.epochs": 3}, r"belongs in training\.epochs"),
        ({"models.hparams.lstm.n_estimators": 3},  # declared by xgboost and xgboost_window: the shared section
             r"belongs in models\.hparams\.common\.n_estimators"),
    ],
)
def test_key_in_the_wrong_section_says_where_it_belongs(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config.load(None, override)


def test_twin_too_big_for_memory_is_refused_before_any_work(monkeypatch):
    smoke = config.load(PARAMS / "smoke.yaml")
    need = config.twin_memory_bytes(smoke)
    monkeypatch.setattr(config.checks, "memory_limit_bytes", lambda: need - 1)
    with pytest.raises(ConfigError, match=r"the synthetic twin of this domain and period needs about "
                                          r"[0-9.]+ GiB .*limit [0-9.]+ GiB"):
        config.load(PARAMS / "smoke.yaml")
    monkeypatch.undo()
    big = {"domain.lat_min": -60.0, "domain.lat_max": 80.0, "domain.lon_min": -180.0, "domain.lon_max": 180.0}
    with pytest.raises(ConfigError, match=r"needs about [0-9.]+ GiB"):
        config.load(None, big)  # the twin of the global domain: tens of TiB
    real = config.load(None, {**big, "data.source": "real", "twin.enabled": False})  # no twin: no estimate
    assert real.domain.lat_min == -60.0


def test_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("GLASS_SM_MAX_MEMORY_GIB", "0.001")
    with pytest.raises(ConfigError, match=r"over the limit 0\.0 GiB \(\$GLASS_SM_MAX_MEMORY_GIB\)"):
        config.load(PARAMS / "smoke.yaml")
    monkeypatch.setenv("GLASS_SM_MAX_MEMORY_GIB", "1e6")
    assert config.memory_limit_bytes() == 10**6 * 2**30
    monkeypatch.setenv("GLASS_SM_MAX_MEMORY_GIB", "lots")
    with pytest.raises(ConfigError, match=r"GLASS_SM_MAX_MEMORY_GIB: 'lots' is not a positive number"):
        config.load(PARAMS / "smoke.yaml")


def test_twin_memory_estimate_bounds_the_measured_peak(tmp_path):
    """The estimate is >= the measured peak of generating the twin (its largest allocation) and not far above.

    20 x 20 cells over one year after the spin-up year (measured: estimate / peak 1.3; 30 x 30 cells over two
    years, 1.3, in twice the time)."""
    from glass_sm.twin import generate_twin, truth, twin_grids

    assert config.TWIN_SPINUP_DAYS == truth.SPINUP_DAYS
    cfg = config.load(PARAMS / "smoke.yaml", {"run.results_dir": str(tmp_path), "period.start": "2001-01-01",
                                              "period.end": "2001-12-31", "twin.station_pre2000_fraction": 0.0,
                                              "domain.lat_max": 41.0, "domain.lon_max": -99.0})
    grids = twin_grids(cfg)
    rows, cols = config.twin_sim_shape(cfg)
    assert rows >= grids.sim.nrows and cols >= grids.sim.ncols
    tracemalloc.start()
    try:
        generate_twin(cfg, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = config.twin_memory_bytes(cfg)
    assert peak <= estimate <= 2.0 * peak, (peak, estimate)
