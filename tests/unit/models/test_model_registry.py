"""glass_sm.models.registry: names, hyperparameters from the parameters, display names and colours, and a toy
model registered with one class and one dict entry."""

from pathlib import Path

import pytest
import torch
from matplotlib.colors import is_color_like
from torch import nn

from glass_sm import config
from glass_sm.config import ConfigError
from glass_sm.models import (
    MODEL_REGISTRY,
    LSTMRegressor,
    XGBoostRegressor,
    build_model,
    count_flops,
    default_hparams,
    display_name,
    is_torch_model,
    model_color,
    model_hparams,
)
from glass_sm.models.registry import hparam_docs, hparam_types

PARAMS = Path(__file__).resolve().parents[3] / "params"
TORCH_MODELS = ["lstm", "bilstm", "atlstm", "atlstm_cl", "transformer"]
SMALL = {
    "lstm": {"hidden_size": 8},
    "bilstm": {"hidden_size": 8},
    "atlstm": {"hidden_size": 8},
    "atlstm_cl": {"hidden_size": 8},
    "transformer": {"d_model": 8, "n_heads": 2},
}


class ToyRegressor(nn.Module):
    """A toy model: a linear map of the last day's features.

    Parameters
    ----------
    n_features : int
        Input features per step.
    window : int
        Window length ``L``, days.
    hidden_size : int
        Unused width (takes ``models.hparams.common.hidden_size``).
    scale : float
        Output scale, dimensionless.
    """

    default_hparams = {"hidden_size": 4, "scale": 1.0}
    display_name = "Toy model"
    color = "#000000"

    def __init__(self, n_features: int, window: int, hidden_size: int = 4, scale: float = 1.0):
        super().__init__()
        self.n_features, self.window, self.hidden_size, self.scale = n_features, window, hidden_size, scale
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Soil moisture ``(batch,)``, m3 m-3."""
        return self.scale * self.linear(x[:, -1]).squeeze(-1)


@pytest.fixture
def toy(monkeypatch):
    """Register the toy model: one dict entry."""
    monkeypatch.setitem(MODEL_REGISTRY, "toy", ToyRegressor)
    return "toy"


def _windows(batch=5, window=7, n_features=3, seed=0):
    return torch.randn(batch, window, n_features, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_output_shape_and_dtype(name):
    torch.manual_seed(0)
    model = build_model(name, n_features=3, window=7, **SMALL[name]).eval()
    out = model(_windows())
    assert out.shape == (5,) and out.dtype == torch.float32
    assert model(_windows(batch=1)).shape == (1,)


def test_registry_names_and_defaults():
    assert list(MODEL_REGISTRY) == ["lstm", "bilstm", "atlstm", "atlstm_cl", "transformer", "xgboost",
                                    "xgboost_window"]
    model = build_model("lstm", 4, 30)
    assert isinstance(model, LSTMRegressor)
    assert (model.hidden_size, model.num_layers, model.window) == (64, 2, 30)
    assert default_hparams("atlstm")["hidden_size"] == 64
    assert isinstance(build_model("xgboost", 4, 30), XGBoostRegressor)
    assert build_model("xgboost", 4, 30).inputs == "target_day"  # the paper's benchmark
    assert build_model("xgboost_window", 4, 30).inputs == "window"  # the ablation
    assert isinstance(build_model("xgboost_window", 4, 30), XGBoostRegressor)


def test_registry_rejects_unknown_names():
    with pytest.raises(ValueError, match="did you mean 'atlstm'") as info:
        build_model("atlstn", 3, 7)
    for name in MODEL_REGISTRY:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="did you mean 'hidden_size'"):
        build_model("lstm", 3, 7, hiden_size=8)
    with pytest.raises(ValueError, match="unknown model 'lstn'"):
        model_hparams("lstn", config.load(None))


def test_count_flops_orders():
    sizes = {"lstm": {"hidden_size": 16}, "bilstm": {"hidden_size": 16}, "atlstm": {"hidden_size": 16}}
    flops = {name: count_flops(build_model(name, 5, 30, **hp)) for name, hp in sizes.items()}
    assert flops["lstm"] < flops["atlstm"] < flops["bilstm"]
    with pytest.raises(TypeError, match="XGBoost"):
        count_flops(build_model("xgboost", 5, 30))


def test_display_names_colours_and_kinds():
    names = {n: display_name(n) for n in MODEL_REGISTRY}
    assert names == {"lstm": "LSTM", "bilstm": "Bi-LSTM", "atlstm": "AtLSTM", "atlstm_cl": "AtLSTM [c; h_L]",
                     "transformer": "Transformer", "xgboost": "XGBoost", "xgboost_window": "XGBoost (window)"}
    colours = {n: model_color(n) for n in MODEL_REGISTRY}
    assert colours == {"lstm": "#56B4E9", "bilstm": "#E69F00", "atlstm": "#0072B2", "atlstm_cl": "#332288",
                       "transformer": "#CC79A7", "xgboost": "#D55E00", "xgboost_window": "#009E73"}
    assert all(is_color_like(c) for c in colours.values()) and len(set(colours.values())) == len(colours)
    assert (display_name("era5land"), model_color("era5land")) == ("era5land", None)  # not a model: as is
    assert [n for n in MODEL_REGISTRY if is_torch_model(n)] == TORCH_MODELS
    with pytest.raises(ValueError, match="unknown model"):
        is_torch_model("xgbost")


def test_every_hyperparameter_is_typed_and_documented():
    for name, cls in MODEL_REGISTRY.items():
        assert list(hparam_types(name)) == list(cls.default_hparams)
        docs = hparam_docs(name)
        assert list(docs) == list(cls.default_hparams)
        assert all(docs.values()), (name, [k for k, v in docs.items() if not v])
    assert hparam_types("atlstm")["attention_size"] == (int | None)  # the __init__ annotation
    assert hparam_types("xgboost")["learning_rate"] is float  # the default's type
    assert hparam_docs("xgboost")["colsample_bytree"] == hparam_docs("xgboost")["subsample"]  # "a, b : float"


def test_shipped_params_give_the_pre_restructure_hyperparameters():
    """The values experiments.model_hparams gave before models.hparams existed (stage 02/03 tables depend on them)."""
    recurrent = {"hidden_size": 16, "num_layers": 1, "dropout": 0.1}
    smoke = config.load(PARAMS / "smoke.yaml")
    assert {n: model_hparams(n, smoke) for n in MODEL_REGISTRY} == {
        "lstm": recurrent, "bilstm": recurrent, "atlstm": recurrent, "atlstm_cl": recurrent,
        "transformer": {"d_model": 16, "n_heads": 2, "num_layers": 1, "dropout": 0.1},
        "xgboost": {"n_estimators": 50, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20,
                    "n_jobs": 2, "seed": 7},
        "xgboost_window": {"n_estimators": 50, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20,
                           "n_jobs": 2, "seed": 7},
    }
    assert list(model_hparams("transformer", smoke)) == ["d_model", "n_heads", "num_layers", "dropout"]
    demo = config.load(PARAMS / "demo.yaml")
    assert model_hparams("atlstm", demo) == {"hidden_size": 32, "num_layers": 2, "dropout": 0.1}
    assert model_hparams("transformer", demo) == {"d_model": 32, "n_heads": 4, "num_layers": 2, "dropout": 0.1}
    assert model_hparams("xgboost", demo) == {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.1,
                                              "early_stopping_rounds": 20, "n_jobs": 2, "seed": 42}
    assert model_hparams("xgboost_window", demo) == model_hparams("xgboost", demo)  # same trees, other inputs
    defaults = config.load(None)
    assert model_hparams("bilstm", defaults) == {"hidden_size": 64, "num_layers": 2, "dropout": 0.1}
    assert model_hparams("xgboost", defaults)["n_estimators"] == 600


def test_model_section_wins_over_common_and_seed_precedence():
    cfg = config.load(PARAMS / "smoke.yaml", {"models.hparams.lstm.hidden_size": 8,
                                              "models.hparams.atlstm.attention_size": 4})
    assert model_hparams("lstm", cfg)["hidden_size"] == 8 and model_hparams("bilstm", cfg)["hidden_size"] == 16
    assert model_hparams("atlstm", cfg) == {"hidden_size": 16, "num_layers": 1, "dropout": 0.1, "attention_size": 4}
    assert model_hparams("xgboost", cfg, seed=3)["seed"] == 3
    assert model_hparams("lstm", cfg, seed=3) == model_hparams("lstm", cfg)  # torch models: no seed hyperparameter
    pinned = config.load(PARAMS / "smoke.yaml", {"models.hparams.xgboost.seed": 5})
    assert model_hparams("xgboost", pinned)["seed"] == 5
    assert model_hparams("xgboost", pinned, seed=3)["seed"] == 3


def test_toy_model_is_one_class_and_one_registry_entry(toy):
    cfg = config.load(PARAMS / "smoke.yaml", {"models.names": ["lstm", toy], "models.hparams.toy.scale": 2})
    hp = model_hparams(toy, cfg)
    assert hp == {"hidden_size": 16, "scale": 2.0} and isinstance(hp["scale"], float)  # common + own section
    model = build_model(toy, 3, 7, **hp)
    assert isinstance(model, ToyRegressor) and (model.hidden_size, model.scale) == (16, 2.0)
    assert model(_windows()).shape == (5,)
    assert (display_name(toy), model_color(toy), is_torch_model(toy)) == ("Toy model", "#000000", True)
    rows = {r["key"]: r for r in config.describe() if r["section"] == "models"}
    assert rows["hparams.toy.scale"]["doc"] == "Output scale, dimensionless."
    assert rows["hparams.toy.hidden_size"]["default"] == 64  # from models.hparams.common
    with pytest.raises(ConfigError, match=r"models\.hparams\.toy\.scal'; did you mean 'scale'"):
        config.load(None, {"models.hparams.toy.scal": 2.0})
    with pytest.raises(ConfigError, match=r"models\.hparams\.toy\.scale: expected a number"):
        config.load(None, {"models.hparams.toy.scale": "big"})


def test_unregistered_toy_is_refused():
    with pytest.raises(ConfigError, match=r"unknown parameter 'models\.hparams\.toy'"):
        config.load(None, {"models.hparams.toy.scale": 2.0})
    with pytest.raises(ConfigError, match="unknown model 'toy'"):
        config.load(None, {"models.names": ["toy"]})
