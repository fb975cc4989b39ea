"""training.device / production.device: validation, resolution on this machine, and a CPU fit recording it."""

import pytest
import torch

from glass_sm import config
from glass_sm.config import ConfigError
from glass_sm.training import DEVICES, resolve_device

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without CUDA")


@pytest.mark.parametrize("key", ["training.device", "production.device"])
def test_config_accepts_the_three_devices_and_names_the_key_of_a_wrong_one(key):
    section, name = key.split(".")
    assert getattr(getattr(config.load(None), section), name) == "cpu"  # the tested default
    for value in DEVICES:
        assert getattr(getattr(config.load(None, {key: value}), section), name) == value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load(None, {key: "gpu"})


def test_cpu_resolves_to_cpu_and_a_wrong_value_names_the_key():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match=r"production\.device must be one of"):
        resolve_device("tpu", "production.device")


@NO_CUDA
def test_auto_is_cpu_and_cuda_is_a_clear_error_without_cuda():
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match=r"training\.device is 'cuda' but torch .* sees no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match=r"production\.device is 'cuda'"):
        resolve_device("cuda", "production.device")


@NO_CUDA
def test_a_cuda_fit_fails_before_training_naming_the_key(one_torch_thread):
    from glass_sm.data import build_samples
    from glass_sm.fitting import fit_model, fit_models
    from glass_sm.testing import make_toy_cube

    over = {"samples.window": 4, "samples.max_train_samples": 200, "samples.max_eval_samples": 100,
            "samples.block_size": 2, "models.hparams.common.hidden_size": 4, "models.hparams.common.num_layers": 1,
            "training.epochs": 1, "training.batch_size": 64}
    cube = make_toy_cube(n_lat=4, n_lon=4, start="2000-03-01", end="2000-12-31", seed=1)
    cfg = config.load(None, over)
    s = build_samples(cube, cfg)
    fit = fit_model("lstm", s, cfg, progress=False)
    assert fit.device == "cpu" and next(fit.model.parameters()).device.type == "cpu"
    assert fit_model("lstm", s, config.load(None, {**over, "training.device": "auto"}), progress=False).device == "cpu"
    bad = config.load(None, {**over, "training.device": "cuda", "training.parallel_fits": 2})
    with pytest.raises(ConfigError, match=r"training\.device is 'cuda'"):
        fit_model("lstm", s, bad, progress=False)
    with pytest.raises(ConfigError, match=r"training\.device is 'cuda'"):
        fit_models([("lstm", s, {}), ("atlstm", s, {})], bad)  # before any process starts


@NO_CUDA
def test_production_predict_tile_on_cpu_and_a_cuda_production_is_refused(tmp_path):
    import numpy as np

    from glass_sm import production
    from glass_sm.models.lstm import AtLSTMRegressor

    torch.manual_seed(0)
    model = AtLSTMRegressor(3, 5, hidden_size=4, num_layers=1, dropout=0.0).eval()
    x = np.random.default_rng(0).standard_normal((14, 6, 3)).astype(np.float32)
    a = production.predict_tile(model, x, 10, method="module")
    b = production.predict_tile(model, x, 10, method="module", device="cpu")
    np.testing.assert_array_equal(a, b)
    cfg = config.load(None, {"run.results_dir": str(tmp_path), "production.device": "cuda"})
    with pytest.raises(ConfigError, match=r"production\.device is 'cuda'"):
        production.run_production(cfg, checkpoint_path=tmp_path / "missing.pt")
