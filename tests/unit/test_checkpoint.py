"""Production checkpoints: bit-identical round trip, model card, and loud mismatch errors."""

import hashlib
import json

import numpy as np
import pytest
import torch

from glass_sm import config
from glass_sm.models import CheckpointMismatchError, LoadedModel, build_model, load_checkpoint
from glass_sm.models.checkpoint import save_production_checkpoint, same_units
from glass_sm.data.samples import FeatureSpec, Normalizer, make_toy_cube


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def cube_normalizer(cube, cfg):
    """Statistics of each feature over the whole toy cube (stands in for the train-split fit)."""
    spec = FeatureSpec.from_config(cfg, cube)
    mean, sd = np.zeros(spec.n_features), np.ones(spec.n_features)
    for j, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
        if kind in ("dynamic", "static"):
            v = cube[name].values
            mean[j], sd[j] = np.nanmean(v), np.nanstd(v)
    return Normalizer(spec, mean, sd, {"rule": "test: whole cube"})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = config.load(None, {"samples.window": 7})
    cube = make_toy_cube(4, 4, "2000-01-01", "2000-12-31")
    norm = cube_normalizer(cube, cfg)
    torch.manual_seed(0)
    hp = {"hidden_size": 8, "num_layers": 1}
    model = build_model("atlstm", norm.spec.n_features, 7, **hp).eval()
    path = tmp_path_factory.mktemp("ckpt") / "atlstm_final.pt"
    save_production_checkpoint(path, model, "atlstm", hp, norm, window=7, window_mode="past",
                               train_period=["2000-01-01", "2000-12-31"], split="site", metrics={"r": 0.5},
                               source="synthetic twin", model_card={"intended_use": "unit test"})
    return {"cfg": cfg, "cube": cube, "norm": norm, "model": model, "path": path, "hp": hp}


def test_round_trip_bit_identical(setup):
    lm = load_checkpoint(setup["path"])
    assert isinstance(lm, LoadedModel) and lm.name == "atlstm" and lm.window == 7 and lm.window_mode == "past"
    assert lm.features == setup["norm"].names and not lm.model.training
    np.testing.assert_array_equal(lm.normalizer.mean, setup["norm"].mean)
    rng = np.random.default_rng(0)
    raw = (setup["norm"].mean + setup["norm"].sd * rng.standard_normal((50, 7, len(lm.features))))
    with torch.inference_mode():
        expected = setup["model"](torch.from_numpy(setup["norm"].apply(raw))).numpy()
    got = lm.predict(raw)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # bit-identical
    assert lm.sha256 == hashlib.sha256(setup["path"].read_bytes()).hexdigest()


def test_siblings_json_and_model_card(setup):
    meta = json.loads(setup["path"].with_suffix(".json").read_text())
    assert meta["extra"]["window"] == 7 and meta["extra"]["features"] == setup["norm"].names
    assert meta["extra"]["units"]["lst"] == "K"
    card = setup["path"].with_suffix(".md").read_text()
    assert "unit test" in card and "`lst`" in card and "SHA-256" in card
    assert not list(setup["path"].parent.glob(".*"))  # no temporary files left


def test_check_cube_accepts_matching_cube(setup):
    load_checkpoint(setup["path"]).check_cube(setup["cube"])


def test_missing_feature_is_named(setup):
    lm = load_checkpoint(setup["path"])
    with pytest.raises(CheckpointMismatchError, match="feature 'lst'.*missing from the cube"):
        lm.check_cube(setup["cube"].drop_vars("lst"))


def test_units_mismatch_is_named(setup):
    lm = load_checkpoint(setup["path"])
    cube = setup["cube"].copy()
    cube["lst"] = (cube["lst"] - 273.15).assign_attrs(units="degC")
    with pytest.raises(CheckpointMismatchError, match="feature 'lst'.*'degC'.*'K'"):
        lm.check_cube(cube)


def test_statistic_mismatch_is_named(setup):
    lm = load_checkpoint(setup["path"])
    cube = setup["cube"].copy()
    cube["lst"] = (cube["lst"] - 273.15).assign_attrs(units="K")  # wrong values behind the right label
    with pytest.raises(CheckpointMismatchError, match="feature 'lst': statistic mismatch"):
        lm.check_cube(cube)


def test_inconsistent_window_is_refused(setup, tmp_path):
    ckpt = torch.load(setup["path"], weights_only=True)
    ckpt["extra"]["window"] = 30
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointMismatchError, match="window inconsistent.*30"):
        load_checkpoint(bad)


def test_feature_list_must_match_normalizer(setup, tmp_path):
    names = list(reversed(setup["norm"].names))
    with pytest.raises(CheckpointMismatchError, match="differ"):
        save_production_checkpoint(tmp_path / "x.pt", setup["model"], "atlstm", setup["hp"], setup["norm"],
                                   features=names)


def test_same_units_aliases():
    assert same_units("m3 m-3", "m**3 m**-3") and same_units("1", "") and not same_units("K", "degC")
