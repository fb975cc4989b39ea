"""glass_sm.data.windows: window offsets, vectorised gathering, per-item dataset and batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glass_sm.data import (WindowBatches, WindowDataset, batch_iterator, build_samples, gather_windows,
                           window_offsets)


def manual_window(cube, s, p, t):
    """The normalised window of sample (p, t), sliced straight from the cube."""
    r, c = s.pixels[p]
    days = t + s.offsets
    cols = []
    for name, kind in zip(s.feature_names, s.features.kinds):
        if kind in ("dynamic", "flag"):
            v = cube[name].isel(lat=r, lon=c).values[days].astype(np.float64)
        elif kind == "static":
            v = np.full(len(days), float(cube[name].isel(lat=r, lon=c)))
        else:
            ang = 2 * np.pi * s.time[days].day_of_year.values / 365.25
            v = np.sin(ang) if name == "doy_sin" else np.cos(ang)
        cols.append(v)
    raw = np.stack(cols, axis=1)
    return (raw - s.normalizer.mean) / s.normalizer.sd


@pytest.mark.parametrize("mode,window", [("past", 10), ("centred", 10), ("centred", 7), ("past", 1)])
def test_windows_match_a_manual_slice_of_the_cube(toy_cube, mode, window, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="random", window=window, window_mode=mode,
                                                include_filled_flags=True))
    assert s.feature_names == ["albedo_bsa", "albedo_wsa", "lst", "sm_era5land", "albedo_filled", "lst_filled",
                               "elevation", "sand", "clay", "doy_sin", "doy_cos"]
    expected_offsets = np.arange(-(window - 1), 1) if mode == "past" else \
        np.arange(-(window // 2), (window - 1) // 2 + 1)
    np.testing.assert_array_equal(s.offsets, expected_offsets)
    rng = np.random.default_rng(0)
    pick = s.test[rng.choice(len(s.test), 25, replace=False)]
    x = gather_windows(s.arrays(), pick, s.window, s.window_mode)
    assert x.shape == (25, window, s.n_features) and x.dtype == np.float32
    for i, (p, t) in enumerate(pick):
        np.testing.assert_allclose(x[i], manual_window(toy_cube, s, p, t), rtol=1e-5, atol=1e-5)
    flags = x[..., 4:6]
    assert set(np.unique(flags)) <= {0.0, 1.0}  # flags are passed unnormalised


def test_gather_windows_equals_the_dataset_and_the_batches(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="year", window_mode="centred"))
    ds = s.dataset("val")
    x_all, y_all = s.xy("val")
    for i in (0, 7, len(ds) - 1):
        x, y = ds[i]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (s.window, s.n_features)
        assert y.dtype == torch.float32 and y.ndim == 0
        np.testing.assert_array_equal(x.numpy(), x_all[i])
        assert float(y) == pytest.approx(float(y_all[i]))
    ordered = batch_iterator(s, "val", batch_size=64, shuffle=False)
    assert isinstance(ordered, torch.utils.data.DataLoader)  # accepted by glass_sm.training as is
    assert len(ordered) == -(-len(s.val) // 64)
    xb = torch.cat([x for x, _ in ordered]).numpy()
    yb = torch.cat([y for _, y in ordered]).numpy()
    np.testing.assert_array_equal(xb, x_all)
    np.testing.assert_array_equal(yb, y_all)
    shuffled = batch_iterator(s, "val", batch_size=64, shuffle=True, seed=1)
    y1 = torch.cat([y for _, y in shuffled]).numpy()
    y2 = torch.cat([y for _, y in shuffled]).numpy()  # a second pass (epoch) reshuffles
    y1b = torch.cat([y for _, y in batch_iterator(s, "val", 64, True, seed=1)]).numpy()
    np.testing.assert_array_equal(np.sort(y1), np.sort(y_all))
    assert not np.array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y1b)
    capped = batch_iterator(s, "train", batch_size=32, max_batches=3, drop_last=True)
    assert len(capped) == 3 and [len(y) for _, y in capped] == [32, 32, 32]


def test_gather_windows_rejects_windows_outside_the_data():
    data = np.zeros((20, 3, 2), np.float32)
    with pytest.raises(IndexError):
        gather_windows(data, np.array([[0, 3]]), 5, "past")
    with pytest.raises(IndexError):
        gather_windows(data, np.array([[0, 18]]), 5, "centred")
    assert gather_windows(data, np.array([[2, 4]]), 5, "past").shape == (1, 5, 2)


def test_shorter_windows_reuse_the_samples(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="random", window=10))
    short = s.with_window(4)
    np.testing.assert_array_equal(short.test, s.test)
    np.testing.assert_array_equal(short.windows("test"), s.windows("test")[:, -4:])
    with pytest.raises(ValueError):
        s.with_window(12)


# ---- window_offsets, gather_windows, WindowDataset, WindowBatches on a closed-form array ---------------------
def coded_array(T=12, P=4, F=3):
    """``data[t, p, f] = 100 t + 10 p + f``: every gathered value names its day, pixel and feature."""
    t, p, f = np.meshgrid(np.arange(T), np.arange(P), np.arange(F), indexing="ij")
    return (100 * t + 10 * p + f).astype(np.float32)


def test_window_offsets_closed_forms_and_errors():
    np.testing.assert_array_equal(window_offsets(4, "past"), [-3, -2, -1, 0])
    np.testing.assert_array_equal(window_offsets(4, "centred"), [-2, -1, 0, 1])
    np.testing.assert_array_equal(window_offsets(5, "centered"), [-2, -1, 0, 1, 2])
    np.testing.assert_array_equal(window_offsets(1, "centred"), [0])
    assert window_offsets(7).dtype == np.int64
    with pytest.raises(ValueError, match="window must be >= 1"):
        window_offsets(0)
    with pytest.raises(ValueError, match="window mode"):
        window_offsets(3, "future")


@pytest.mark.parametrize("mode", ["past", "centred"])
def test_gather_windows_closed_form_across_chunks(mode):
    data = coded_array()
    idx = np.array([[0, 5], [3, 6], [1, 9], [2, 4], [0, 7]])
    x = gather_windows(data, idx, 4, mode, chunk=2)  # three np.take calls
    off = window_offsets(4, mode)
    for i, (p, t) in enumerate(idx):
        expected = 100 * (t + off)[:, None] + 10 * p + np.arange(3)[None, :]
        np.testing.assert_array_equal(x[i], expected)
    out = np.empty((5, 4, 3), np.float32)
    assert gather_windows(data, idx, 4, mode, out=out) is out
    np.testing.assert_array_equal(out, x)
    assert gather_windows(data, idx[:0], 4, mode).shape == (0, 4, 3)
    with pytest.raises(ValueError, match="C-contiguous"):
        gather_windows(data, idx, 4, mode, out=np.empty((5, 3, 3), np.float32))
    with pytest.raises(IndexError):
        gather_windows(data, np.array([[4, 6]]), 4, mode)  # pixel 4 of 4


def test_window_dataset_items_targets_and_bounds():
    data = coded_array()
    ds = WindowDataset(data, np.array([[1, 3], [2, 11], [0, 1]]), None, window=3, mode="past")
    x, y = ds[0]
    np.testing.assert_array_equal(x.numpy(), data[1:4, 1])
    assert np.isnan(float(y)) and len(ds) == 3
    with pytest.raises(IndexError, match="outside"):
        ds[2]  # days -1..1
    with pytest.raises(ValueError, match="targets"):
        WindowDataset(data, np.array([[1, 3]]), np.zeros(2), window=3)


def test_window_batches_reshuffle_each_pass_reproducibly():
    data = coded_array(T=30)
    idx = np.stack([np.arange(20) % 4, 5 + np.arange(20)], axis=1)
    targets = np.arange(20, dtype=np.float32)
    batches = WindowBatches(data, idx, targets, window=3, batch_size=6, shuffle=True, seed=4)
    assert isinstance(batches, torch.utils.data.DataLoader) and len(batches) == 4
    first = np.concatenate([y.numpy() for _, y in batches])
    second = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_array_equal(first, targets[np.random.default_rng([4, 0]).permutation(20)])
    np.testing.assert_array_equal(second, targets[np.random.default_rng([4, 1]).permutation(20)])
    for x, y in WindowBatches(data, idx, targets, window=3, batch_size=6, shuffle=False):
        np.testing.assert_array_equal(x.numpy(), gather_windows(data, idx[y.numpy().astype(int)], 3))
    assert len(WindowBatches(data, idx, targets, 3, batch_size=6, drop_last=True)) == 3
    assert len(WindowBatches(data, idx, targets, 3, batch_size=6, max_batches=2)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        WindowBatches(data, idx, targets, 3, batch_size=0)
