"""glass_sm.config: typed parameters, fail-fast errors, provenance."""

import datetime as dt
from pathlib import Path

import pytest
import yaml

from glass_sm import config
from glass_sm.config import ConfigError

PARAMS = Path(__file__).resolve().parents[2] / "params"


@pytest.mark.parametrize("name", ["smoke", "demo"])
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
        ({"samples.test_fraction": 1.5}, r"samples\.test_fraction: must be in \(0, 1\)"),
        ({"models.names": ["lstm", "atlsmt"]}, r"unknown model 'atlsmt'; did you mean 'atlstm'"),
    ],
)
def test_wrong_type_or_value_names_the_key(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config.load(PARAMS / "smoke.yaml", override)


def test_overrides_and_int_to_float():
    cfg = config.load(PARAMS / "smoke.yaml", {"training.epochs": 5, "twin": {"label_noise": 0}})
    assert cfg.training.epochs == 5
    assert cfg.twin.label_noise == 0.0 and isinstance(cfg.twin.label_noise, float)


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


def test_cli(capsys):
    assert config._main(["run-name", str(PARAMS / "smoke.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "smoke"
    assert config._main(["check", "missing.yaml"]) == 1
