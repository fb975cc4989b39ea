"""glass_sm.models.inference: the production engine computes the module's forward (the reference).

The engine shares the first layer's input projection between overlapping windows, runs day blocks time-major,
fuses the layer steps and writes ``tanh`` as ``2 sigmoid(2x) - 1``; none of this may change a prediction by more
than fp32 rounding: max |engine - module| <= 1e-6 m3 m-3 (outputs of order 0.1-1) for both AtLSTM heads, one and
two layers, and the plain LSTM.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glass_sm import production
from glass_sm.models import build_model
from glass_sm.models.inference import WindowEngine, supports, window_blocks
from glass_sm.models.lstm import AtLSTMRegressor, LSTMRegressor

F, L = 5, 7
FP32_TOL = 1e-6  # m3 m-3: fp32 rounding of a different but equivalent order of operations
BF16_TOL = 0.02  # m3 m-3: bf16 operands keep 8 significant bits (relative 2^-8 per product); see test_bf16


def _model(kind: str, head: str = "context", num_layers: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "atlstm":
        m = AtLSTMRegressor(F, L, hidden_size=8, num_layers=num_layers, dropout=0.0, head=head)
    else:
        m = LSTMRegressor(F, L, hidden_size=8, num_layers=num_layers, dropout=0.0)
    with torch.no_grad():  # larger weights than the default init: saturating gates and a peaked attention
        for p in m.parameters():
            p.mul_(3.0)
    return m.eval()


CASES = [("atlstm", "context", 2), ("atlstm", "context_last", 2), ("atlstm", "context", 1),
         ("atlstm", "context_last", 3), ("lstm", "context", 2)]


@pytest.mark.parametrize("kind,head,layers", CASES)
def test_engine_equals_the_module_forward_on_gathered_windows(kind, head, layers):
    model = _model(kind, head, layers)
    x = torch.randn(301, L, F, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = model(x)
    got = WindowEngine(model).forward_windows(x)
    assert got.shape == ref.shape == (301,)
    assert float(ref.std()) > 0.01  # the check is not on a constant
    assert float((got - ref).abs().max()) <= FP32_TOL


@pytest.mark.parametrize("kind,head,layers", CASES)
def test_predict_tile_engine_equals_the_module_path(kind, head, layers):
    """Sliding windows with partial pixel blocks and day blocks (7 pixels, 23 days, blocks of 2 x 8 windows)."""
    model = _model(kind, head, layers)
    n_out, P = 23, 7
    x = np.random.default_rng(2).standard_normal((n_out + L - 1, P, F)).astype(np.float32)
    ref = production.predict_tile(model, x, n_out, batch_size=50, model_batch=16, method="module")
    got = production.predict_tile(model, x, n_out, batch_size=50, model_batch=16)
    assert got.shape == ref.shape == (n_out, P)
    # day k of pixel p is the model on x[k:k+L, p], explicitly
    with torch.inference_mode():
        one = model(torch.from_numpy(np.ascontiguousarray(x[5:5 + L, 3][None]))).item()
    assert abs(ref[5, 3] - one) <= FP32_TOL
    assert np.abs(got - ref).max() <= FP32_TOL


def test_block_sizes_cover_every_window_once():
    assert window_blocks(400, 365, 8192, 1024) == (22, 46)  # 22 pixels x 46 days = 1012 windows per batch
    assert window_blocks(3, 365, 8192, 1024) == (3, 341)
    assert window_blocks(400, 365, 100, 256) == (1, 256)  # batch_size below a pixel-year: one pixel per block
    assert window_blocks(5000, 10, 8192, 128) == (128, 1)
    model = _model("atlstm")
    x = np.random.default_rng(3).standard_normal((10 + L - 1, 3, F)).astype(np.float32)
    for bs, mb in ((1, 1), (7, 3), (10 ** 6, 10 ** 6)):  # any blocking gives the same predictions
        np.testing.assert_allclose(production.predict_tile(model, x, 10, bs, mb),
                                   production.predict_tile(model, x, 10, 30, 30, method="module"), atol=FP32_TOL)


def test_bf16_is_close_but_not_exact():
    """bf16 GEMM operands: within BF16_TOL of fp32 (8-bit significands over two layers of 7 steps), not equal."""
    model = _model("atlstm")
    x = np.random.default_rng(4).standard_normal((40 + L - 1, 4, F)).astype(np.float32)
    ref = production.predict_tile(model, x, 40, method="module")
    for method in ("engine", "module"):
        got = production.predict_tile(model, x, 40, precision="bf16", method=method)
        d = np.abs(got - ref)
        assert 0 < d.max() <= BF16_TOL, method


def test_unsupported_models_use_their_forward():
    torch.manual_seed(0)
    model = build_model("transformer", F, L, d_model=8, n_heads=2, num_layers=1).eval()
    assert not supports(model) and production.inference_engine(model) is None
    x = np.random.default_rng(5).standard_normal((12 + L - 1, 2, F)).astype(np.float32)
    np.testing.assert_array_equal(production.predict_tile(model, x, 12),
                                  production.predict_tile(model, x, 12, method="module"))
    with pytest.raises(ValueError, match="does not support"):
        WindowEngine(model)


def test_bad_arguments_are_named():
    model = _model("atlstm")
    x = np.zeros((L, 1, F), np.float32)
    with pytest.raises(ValueError, match="precision"):
        production.predict_tile(model, x, 1, precision="fp16")
    with pytest.raises(ValueError, match="method"):
        production.predict_tile(model, x, 1, method="fast")
    assert production.predict_tile(model, np.zeros((L - 1, 0, F), np.float32), 0).shape == (0, 0)


def test_threads_sharing_one_engine_do_not_mix_their_work():
    """Dask runs tasks in threads of one process that share the cached model and its engine."""
    import threading

    model = _model("atlstm")
    xs = [np.random.default_rng(10 + i).standard_normal((30 + L - 1, 9, F)).astype(np.float32) for i in range(4)]
    ref = [production.predict_tile(model, x, 30, 64, 32, method="module") for x in xs]
    got = [None] * 4

    def work(i):
        for _ in range(3):
            got[i] = production.predict_tile(model, xs[i], 30, 64, 32)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r, g in zip(ref, got):
        assert np.abs(g - r).max() <= FP32_TOL
