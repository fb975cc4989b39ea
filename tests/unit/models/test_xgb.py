"""glass_sm.models.xgb: early stopping, determinism, atomic save and load, input checks."""

import numpy as np
import pytest

from glass_sm.models import XGBoostRegressor, build_model


@pytest.fixture
def xgb_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 6, 3)).astype(np.float32)
    y = (0.25 + 0.05 * X[:, 2, 0] + 0.02 * rng.standard_normal(600)).astype(np.float32)
    return X[:450], y[:450], X[450:], y[450:]


def _xgb(**hp):
    return build_model("xgboost", 3, 6, n_estimators=400, learning_rate=0.3, early_stopping_rounds=5, **hp)


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
