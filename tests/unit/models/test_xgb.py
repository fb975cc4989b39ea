"""glass_sm.models.xgb: early stopping, determinism, atomic save and load, input checks, the target-day benchmark
against the window ablation, stop reasons, legacy files."""

import json

import numpy as np
import pytest

from glass_sm.models import XGBoostRegressor, XGBoostWindowRegressor, build_model


@pytest.fixture
def xgb_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 6, 3)).astype(np.float32)
    y = (0.25 + 0.05 * X[:, 2, 0] + 0.02 * rng.standard_normal(600)).astype(np.float32)
    return X[:450], y[:450], X[450:], y[450:]


def _xgb(name="xgboost_window", **hp):
    """The mechanics tests use the window model: the fixture's target depends on day 3 of 6."""
    return build_model(name, 3, 6, n_estimators=400, learning_rate=0.3, early_stopping_rounds=5, **hp)


def test_xgboost_early_stopping(xgb_data):
    model = _xgb().fit(*xgb_data)
    assert model.n_rounds < 400
    assert model.n_rounds == model.best_iteration + 1 + 5
    history = model.history
    assert len(history) == model.n_rounds
    assert history.val_rmse.idxmin() == model.best_iteration
    assert history.val_rmse.min() < history.val_rmse.iloc[0]  # validation error improved
    assert model.predict(xgb_data[2]).shape == (150,)


def test_xgboost_deterministic_and_save_load(xgb_data, tmp_path):
    model = _xgb().fit(*xgb_data)
    X_test = xgb_data[2]
    prediction = model.predict(X_test)
    np.testing.assert_array_equal(_xgb().fit(*xgb_data).predict(X_test), prediction)
    path = model.save(tmp_path / "xgboost.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xgboost.json"]  # no temporary left
    assert path.read_text().startswith("{")  # XGBoost's JSON format
    loaded = XGBoostRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(X_test), prediction)
    assert (loaded.best_iteration, loaded.window, loaded.hparams) == (model.best_iteration, 6, model.hparams)
    assert type(loaded) is XGBoostWindowRegressor and loaded.inputs == "window"
    np.testing.assert_array_equal(loaded.predict(X_test.reshape(150, 18)), prediction)  # flat input too


def test_xgboost_input_checks(xgb_data):
    with pytest.raises(ValueError, match="unknown XGBoost"):
        XGBoostRegressor(3, 6, max_dept=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        XGBoostRegressor(3, 6).predict(xgb_data[2])
    model = build_model("xgboost", 3, 6, n_estimators=3).fit(xgb_data[0], xgb_data[1])  # no validation set
    assert model.n_rounds == 3 and model.history.empty
    with pytest.raises(ValueError, match=r"\(batch, 6, 3\)"):
        model.predict(np.zeros((4, 5, 3), dtype=np.float32))


def _perturb_all_but(X, step, seed=5):
    """``X`` with every day except ``step`` replaced by unrelated noise."""
    other = np.random.default_rng(seed).standard_normal(X.shape).astype(np.float32) * 10
    keep = np.zeros(X.shape[1], bool)
    keep[step] = True
    return np.where(keep[None, :, None], X, other)


@pytest.mark.parametrize("target_step", [-1, 2])
def test_target_day_xgboost_ignores_every_other_day(xgb_data, target_step):
    """The benchmark reads only the target day: any change to the other days leaves every prediction identical."""
    X, y, X_val, y_val = xgb_data
    model = _xgb("xgboost", target_step=target_step).fit(X, y, X_val, y_val)
    assert model.inputs == "target_day" and model.n_columns == 3
    np.testing.assert_array_equal(model.predict(_perturb_all_but(X_val, target_step)), model.predict(X_val))
    # the trees saw exactly the target day's 3 columns: training on those columns alone gives the same model
    flat = build_model("xgboost", 3, 1, n_estimators=400, learning_rate=0.3, early_stopping_rounds=5)
    flat.fit(X[:, [target_step]], y, X_val[:, [target_step]], y_val)
    np.testing.assert_array_equal(flat.predict(X_val[:, [target_step]]), model.predict(X_val))


def test_window_xgboost_uses_the_other_days(xgb_data):
    X, y, X_val, y_val = xgb_data
    model = _xgb().fit(X, y, X_val, y_val)
    assert model.inputs == "window" and model.n_columns == 18
    assert not np.array_equal(model.predict(_perturb_all_but(X_val, -1)), model.predict(X_val))
    # the target depends on day 3 (index 2) only: the window model finds it, the last-day benchmark cannot
    bench = _xgb("xgboost").fit(X, y, X_val, y_val)
    rmse = {m.inputs: float(np.sqrt(np.mean((m.predict(X_val) - y_val) ** 2))) for m in (model, bench)}
    assert rmse["window"] < 0.5 * rmse["target_day"]


def test_stop_reasons(xgb_data):
    assert _xgb().fit(*xgb_data).stop_reason == "early-stopped"
    capped = build_model("xgboost", 3, 6, n_estimators=3).fit(*xgb_data)
    assert capped.n_rounds == 3 and capped.stop_reason == "budget cap"
    assert build_model("xgboost", 3, 6, n_estimators=3).fit(*xgb_data[:2]).stop_reason == "budget cap"  # no val


def test_target_day_save_load_round_trips_inputs_and_target_step(xgb_data, tmp_path):
    model = _xgb("xgboost", target_step=2).fit(*xgb_data)
    loaded = XGBoostRegressor.load(model.save(tmp_path / "m.json"))
    assert type(loaded) is XGBoostRegressor and (loaded.inputs, loaded.hparams["target_step"]) == ("target_day", 2)
    np.testing.assert_array_equal(loaded.predict(xgb_data[2]), model.predict(xgb_data[2]))


def test_a_file_saved_before_inputs_existed_loads_as_the_window_model(xgb_data, tmp_path):
    model = _xgb().fit(*xgb_data)
    config = {k: v for k, v in model.hparams.items() if k not in ("inputs", "target_step")}
    model.booster.set_attr(glass_sm_config=json.dumps({"n_features": 3, "window": 6, **config}))
    loaded = XGBoostRegressor.load(model.save(tmp_path / "old.json"))
    assert type(loaded) is XGBoostWindowRegressor and loaded.inputs == "window"
    np.testing.assert_array_equal(loaded.predict(xgb_data[2]), model.predict(xgb_data[2]))


def test_bad_inputs_and_target_step_are_refused():
    with pytest.raises(ValueError, match="inputs must be one of"):
        XGBoostRegressor(3, 6, inputs="days")
    with pytest.raises(ValueError, match="target_step 6 is outside a window of 6"):
        XGBoostRegressor(3, 6, target_step=6)
