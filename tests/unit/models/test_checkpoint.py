"""glass_sm.models.checkpoint: the weights-only format, production checkpoints (bit-identical round trip, model
card) and loud mismatch errors."""

import hashlib
import json
import warnings

import numpy as np
import pytest
import torch

from glass_sm import config
from glass_sm.data import FeatureSpec, Normalizer
from glass_sm.models import (
    CHECKPOINT_FORMAT,
    CheckpointIntegrityError,
    CheckpointMismatchError,
    LoadedModel,
    build_model,
    default_hparams,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
    save_production_checkpoint,
)
from glass_sm.models.checkpoint import UnverifiedCheckpointWarning, same_units
from glass_sm.testing import make_toy_cube

WINDOW, N_FEATURES = 8, 3
SMALL = {**{n: {"hidden_size": 8, "num_layers": 1} for n in ("lstm", "bilstm", "atlstm", "atlstm_cl")},
         "transformer": {"d_model": 8, "n_heads": 2, "num_layers": 1}}


def _built(name, **hparams):
    torch.manual_seed(0)
    return build_model(name, N_FEATURES, WINDOW, **{**SMALL[name], **hparams}).eval()


def _x(n=20, seed=0):
    return torch.randn(n, WINDOW, N_FEATURES, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["lstm", "bilstm", "atlstm", "atlstm_cl", "transformer"])
def test_checkpoint_round_trip_weights_only(name, tmp_path):
    hparams = {**SMALL[name], "dropout": 0.0}
    model = _built(name, **hparams)
    extra = {"feature_mean": np.array([0.1, 0.2, 0.3]), "val_rmse": np.float32(0.04), "features": ["lst"]}
    path = save_checkpoint(tmp_path / f"{name}.pt", model, name, hparams, extra)

    payload = torch.load(path, weights_only=True)
    assert (payload["format"], payload["name"]) == (CHECKPOINT_FORMAT, name)
    assert (payload["window"], payload["n_features"]) == (WINDOW, N_FEATURES)
    assert payload["extra"]["feature_mean"] == pytest.approx([0.1, 0.2, 0.3])
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["hparams"] == {**default_hparams(name), **hparams} and metadata["n_parameters"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json", f"{name}.pt"]  # no temporaries

    loaded = load_model_weights(path)
    assert type(loaded) is type(model) and not loaded.training
    with torch.inference_mode():
        torch.testing.assert_close(loaded(_x()), model(_x()), rtol=0, atol=0)


def test_checkpoint_checks(tmp_path):
    model = _built("lstm")
    with pytest.raises(ValueError, match="not the registry's 'atlstm'"):
        save_checkpoint(tmp_path / "m.pt", model, "atlstm", SMALL["lstm"])
    with pytest.raises(TypeError, match=r"extra\['when'\]"):
        save_checkpoint(tmp_path / "m.pt", model, "lstm", SMALL["lstm"], {"when": object()})
    assert not list(tmp_path.iterdir())


def resave(payload, path):
    """Write ``payload`` as a checkpoint and record its hash in the sidecar, as ``save_checkpoint`` would: a
    well-formed file whose content contradicts something (not a damaged one)."""
    torch.save(payload, path)
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    sidecar.write_text(json.dumps({**meta, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
    return path


def test_legacy_atlstm_checkpoint_without_head_loads_with_the_context_last_head(tmp_path):
    """An AtLSTM saved before ``head`` existed had the [c; h_L] head: it reloads as such, predicting identically."""
    model = _built("atlstm", head="context_last", dropout=0.0)
    path = save_checkpoint(tmp_path / "old.pt", model, "atlstm", {**SMALL["atlstm"], "head": "context_last"})
    payload = torch.load(path, weights_only=True)
    resave({**payload, "hparams": {k: v for k, v in payload["hparams"].items() if k != "head"}}, path)
    assert "head" not in torch.load(path, weights_only=True)["hparams"]
    loaded = load_model_weights(path)
    assert loaded.head_input == "context_last" and loaded.head.net[0].in_features == 2 * 8
    with torch.inference_mode():
        torch.testing.assert_close(loaded(_x()), model(_x()), rtol=0, atol=0)


def test_new_atlstm_checkpoint_records_its_head(tmp_path):
    """Saved without ``head`` in the given hparams, a context-head AtLSTM still records it (no legacy guess)."""
    path = save_checkpoint(tmp_path / "new.pt", _built("atlstm"), "atlstm", SMALL["atlstm"])
    assert torch.load(path, weights_only=True)["hparams"]["head"] == "context"
    assert load_model_weights(path).head_input == "context"


def test_a_model_saved_under_another_registered_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="registered as 'atlstm_cl', not 'atlstm'"):
        save_checkpoint(tmp_path / "m.pt", _built("atlstm_cl"), "atlstm", SMALL["atlstm"])


def test_other_format_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _built("lstm"), "lstm", SMALL["lstm"])
    payload = torch.load(path, weights_only=True)
    resave({**payload, "format": CHECKPOINT_FORMAT + 1}, path)
    with pytest.raises(CheckpointMismatchError, match=f"format {CHECKPOINT_FORMAT + 1}, expected"):
        load_model_weights(path)


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
    bad = resave(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatchError, match="window inconsistent.*30"):
        load_checkpoint(bad)


def test_feature_list_must_match_normalizer(setup, tmp_path):
    names = list(reversed(setup["norm"].names))
    with pytest.raises(CheckpointMismatchError, match="differ"):
        save_production_checkpoint(tmp_path / "x.pt", setup["model"], "atlstm", setup["hp"], setup["norm"],
                                   features=names)


def test_same_units_aliases():
    assert same_units("m3 m-3", "m**3 m**-3") and same_units("1", "") and not same_units("K", "degC")


# ---- issue 13: integrity of the checkpoint file ----------------------------------------------------------------
LOADERS = {"load_checkpoint": load_checkpoint, "load_model_weights": load_model_weights}


def _copy(setup, tmp_path, sidecar=True):
    """A copy of the production checkpoint (and its sidecar json) to damage."""
    path = tmp_path / "atlstm_final.pt"
    path.write_bytes(setup["path"].read_bytes())
    if sidecar:
        path.with_suffix(".json").write_bytes(setup["path"].with_suffix(".json").read_bytes())
    return path


def test_sidecar_records_the_sha256(setup):
    meta = json.loads(setup["path"].with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(setup["path"].read_bytes()).hexdigest()


@pytest.mark.parametrize("loader", LOADERS)
def test_bit_flipped_checkpoint_is_refused(setup, tmp_path, loader):
    """Issue 13: 64 flipped bytes changed 17 weights and loaded silently (predictions off by 0.058 m3 m-3)."""
    path = _copy(setup, tmp_path)
    data = bytearray(path.read_bytes())
    recorded = hashlib.sha256(data).hexdigest()
    start = len(data) // 2
    for i in range(start, start + 64):
        data[i] ^= 0x01
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()
    with pytest.raises(CheckpointIntegrityError) as e:
        LOADERS[loader](path)
    msg = str(e.value)
    assert str(path) in msg and recorded in msg and actual in msg and "sha256" in msg


def _random(n):
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("damage", ["random", "truncated", "empty"])
def test_unreadable_checkpoint_names_the_file(setup, tmp_path, loader, damage):
    """Issue 13: random bytes or a truncated .pt gave torch's advice to retry with weights_only=False or
    `OSError: Invalid argument`, naming no file. Without a sidecar (nothing to compare with) the read fails."""
    path = _copy(setup, tmp_path, sidecar=False)
    original = path.read_bytes()
    path.write_bytes({"random": _random(len(original)), "truncated": original[: len(original) // 3],
                      "empty": b""}[damage])
    with pytest.warns(UnverifiedCheckpointWarning), pytest.raises(CheckpointIntegrityError) as e:
        LOADERS[loader](path)
    msg = str(e.value)
    assert str(path) in msg and "not a readable checkpoint" in msg and "weights_only" not in msg


@pytest.mark.parametrize("loader", LOADERS)
def test_damaged_checkpoint_with_sidecar_is_a_hash_mismatch(setup, tmp_path, loader):
    path = _copy(setup, tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointIntegrityError, match="sha256 .* differs from the .* recorded"):
        LOADERS[loader](path)


class _Payload:
    """Not a weights-only type: torch refuses to unpickle it with weights_only=True."""


@pytest.mark.parametrize("payload, pattern", [
    ({"format": CHECKPOINT_FORMAT, "obj": _Payload()}, "not a readable checkpoint .*weights-only"),
    ([1, 2, 3], "not a checkpoint: a list, not a mapping"),
    ({"format": CHECKPOINT_FORMAT, "name": "lstm"}, r"not a checkpoint: missing .*'state_dict'"),
])
def test_foreign_content_names_the_file(tmp_path, payload, pattern):
    path = resave(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointIntegrityError, match=pattern) as e:
        load_model_weights(path)
    assert str(path) in str(e.value) and "weights_only" not in str(e.value)


def test_weights_that_do_not_fit_the_model_name_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _built("lstm"), "lstm", SMALL["lstm"])
    payload = torch.load(path, weights_only=True)
    resave({**payload, "hparams": {**payload["hparams"], "hidden_size": 9}}, path)
    with pytest.raises(CheckpointIntegrityError, match=f"{path}: .*weights do not fit"):
        load_model_weights(path)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("sidecar", ["no sha256", "no sidecar"])
def test_checkpoint_without_recorded_hash_loads_with_one_warning(setup, tmp_path, loader, sidecar):
    """A checkpoint of an older run (no hash in its sidecar) still loads, with one warning naming the file."""
    path = _copy(setup, tmp_path)
    meta = path.with_suffix(".json")
    if sidecar == "no sidecar":
        meta.unlink()
    else:
        meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "sha256"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LOADERS[loader](path)
    unverified = [w for w in caught if issubclass(w.category, UnverifiedCheckpointWarning)]
    assert len(unverified) == 1 and str(path) in str(unverified[0].message), [str(w.message) for w in caught]


def test_unreadable_sidecar_is_refused(setup, tmp_path):
    path = _copy(setup, tmp_path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointIntegrityError, match=r"atlstm_final\.json: .*not valid JSON"):
        load_checkpoint(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    for loader in LOADERS.values():
        with pytest.raises(FileNotFoundError, match=f"checkpoint not found: {tmp_path / 'x.pt'}"):
            loader(tmp_path / "x.pt")
