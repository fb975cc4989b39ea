"""glass_sm.data.splits: random, site and year hold-outs without leakage, seeded, subsampled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glass_sm.data import (SPLITS, build_samples, random_holdout, site_holdout, split_pools, subsample,
                           year_holdout)


def pairs(idx):
    return set(map(tuple, np.asarray(idx).tolist()))


def test_random_split_is_disjoint_and_proportioned(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="random"))
    tr, va, te = pairs(s.train), pairs(s.val), pairs(s.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    n = s.counts["candidates"]
    assert abs(len(te) / n - 0.2) < 0.01
    assert abs(len(va) / (n - len(te)) - 0.1) < 0.01


def test_site_split_holds_out_whole_blocks(toy_cube, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="site"))
    test_pix = set(s.test[:, 0])
    assert test_pix and not test_pix & set(s.train[:, 0]) and not test_pix & set(s.val[:, 0])
    assert test_pix == set(s.info["test_pixels"])
    blocks = {tuple(b) for b in s.info["test_blocks"]}
    bs = s.info["block_size"]
    for p, (r, c) in enumerate(s.pixels):  # a pixel is held out iff its block is
        assert ((r // bs, c // bs) in blocks) == (p in test_pix)
    frac = len(test_pix) / s.n_pixels
    assert 0.2 <= frac < 0.2 + 4 / s.n_pixels + 1e-9  # "at least test_fraction", by whole blocks
    assert set(s.val[:, 0]) <= set(s.train[:, 0])  # validation: other samples of the training pixels
    assert not pairs(s.train) & pairs(s.val)


@pytest.mark.parametrize("test_years", [[], [2001]])
def test_year_split_never_puts_a_test_year_target_in_train_or_val(toy_cube, test_years, samples_cfg):
    s = build_samples(toy_cube, samples_cfg(split="year", test_years=test_years))
    held = s.info["test_years"]
    if test_years:
        assert held == test_years
    assert set(s.dates("test").year) <= set(held)
    for name in ("train", "val"):
        assert not set(s.dates(name).year) & set(held)
    assert not pairs(s.train) & pairs(s.val)


def test_year_split_rejects_years_without_labels(toy_cube, samples_cfg):
    with pytest.raises(ValueError, match="test_years"):
        build_samples(toy_cube, samples_cfg(split="year", test_years=[1990]))


def test_subsampling_is_capped_deterministic_and_drawn_from_the_pool(toy_cube, samples_cfg):
    cfg = samples_cfg(split="site", max_train_samples=500, max_eval_samples=200)
    a, b = build_samples(toy_cube, cfg), build_samples(toy_cube, cfg)
    full = build_samples(toy_cube, samples_cfg(split="site"))
    assert (len(a.train), len(a.val), len(a.test)) == (500, 200, 200)
    for name in SPLITS:
        np.testing.assert_array_equal(a.index(name), b.index(name))
        assert pairs(a.index(name)) <= pairs(full.index(name))
        idx = a.index(name)
        assert (np.lexsort((idx[:, 1], idx[:, 0])) == np.arange(len(idx))).all()  # sorted by pixel, day


def test_seed_decides_everything(toy_cube, samples_cfg):
    cfg = samples_cfg(split="random", max_train_samples=1000)
    a, b = build_samples(toy_cube, cfg), build_samples(toy_cube, cfg)
    c = build_samples(toy_cube, cfg, seed=99)
    for name in SPLITS:
        np.testing.assert_array_equal(a.index(name), b.index(name))
    np.testing.assert_array_equal(a.normalizer.mean, b.normalizer.mean)
    assert not np.array_equal(a.train, c.train)
    blocks = {str(build_samples(toy_cube, samples_cfg(split="site"), seed=k).info["test_blocks"]) for k in range(4)}
    years = {str(build_samples(toy_cube, samples_cfg(split="year"), seed=k).info["test_years"]) for k in range(6)}
    assert len(blocks) > 1 and len(years) > 1


# ---- the split functions on small arrays --------------------------------------------------------------------
def grid_pixels(n_rows=4, n_cols=4):
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    return rows.astype(np.int64), cols.astype(np.int64)


def test_random_holdout_takes_the_rounded_fraction():
    is_test, info = random_holdout(101, 0.2, np.random.default_rng(0))
    assert is_test.sum() == 20 and info == {}
    again, _ = random_holdout(101, 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal(is_test, again)


def test_site_holdout_takes_whole_blocks_until_the_fraction():
    rows, cols = grid_pixels()
    pix = np.repeat(np.arange(16), 3)  # three candidates per pixel
    is_test, info = site_holdout(pix, rows, cols, 2, 0.3, np.random.default_rng(1))
    test_pixels = np.unique(pix[is_test])
    assert info["block_size"] == 2 and info["test_pixels"] == test_pixels.tolist()
    assert len(test_pixels) == 4 * len(info["test_blocks"]) == 8  # 0.3 of 16 pixels -> 2 whole blocks of 4
    for p in range(16):
        assert ([rows[p] // 2, cols[p] // 2] in info["test_blocks"]) == (p in test_pixels)
    assert all(is_test[pix == p].all() or not is_test[pix == p].any() for p in range(16))
    with pytest.raises(ValueError, match="reduce samples.block_size"):
        site_holdout(pix, rows, cols, 4, 0.3, np.random.default_rng(1))
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        site_holdout(pix, rows, cols, 0, 0.3, np.random.default_rng(1))


def test_site_holdout_keeps_one_block_for_training():
    rows, cols = grid_pixels(2, 4)
    is_test, info = site_holdout(np.arange(8), rows, cols, 2, 0.99, np.random.default_rng(0))
    assert len(info["test_blocks"]) == 1 and is_test.sum() == 4


def test_year_holdout_given_drawn_and_rejected_years():
    time = pd.date_range("2000-01-01", "2003-12-31", freq="D")
    day = np.arange(0, len(time), 5)
    years = time.year.values[day]
    is_test, info = year_holdout(day, time, [2002], 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal(is_test, years == 2002)
    assert info == {"test_years": [2002], "train_years": [2000, 2001, 2003]}
    is_test, info = year_holdout(day, time, [], 0.5, np.random.default_rng(0))
    assert len(info["test_years"]) == 2 and set(years[is_test]) == set(info["test_years"])
    with pytest.raises(ValueError, match="hold no sample"):
        year_holdout(day, time, [1990], 0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="need 2 or more"):
        year_holdout(day[years == 2001], time, [], 0.2, np.random.default_rng(0))


@pytest.mark.parametrize("strategy", ["random", "site", "year"])
def test_split_pools_partition_the_candidates(strategy):
    rows, cols = grid_pixels()
    time = pd.date_range("2000-01-01", "2002-12-31", freq="D")
    pix, day = np.meshgrid(np.arange(16), np.arange(0, len(time), 7), indexing="ij")
    pix, day = pix.ravel(), day.ravel()
    pools, info = split_pools(strategy, pix, day, rows, cols, time, 5, test_fraction=0.25, val_fraction=0.1,
                              block_size=2)
    allpos = np.concatenate([pools["test"], pools["val"], pools["train"]])
    np.testing.assert_array_equal(np.sort(allpos), np.arange(len(pix)))  # disjoint and complete
    for name in ("test", "val", "train"):
        np.testing.assert_array_equal(pools[name], np.sort(pools[name]))
    assert len(pools["val"]) == round(0.1 * (len(pix) - len(pools["test"])))
    again, info2 = split_pools(strategy, pix, day, rows, cols, time, 5, test_fraction=0.25, val_fraction=0.1,
                               block_size=2)
    assert info == info2 and all(np.array_equal(pools[k], again[k]) for k in pools)
    with pytest.raises(ValueError, match="unknown split strategy"):
        split_pools("pixel", pix, day, rows, cols, time, 5, test_fraction=0.25, val_fraction=0.1)


def test_subsample_caps_without_replacement_per_stream():
    pool = np.arange(100, 200)
    assert subsample(pool, 100, 1, 0) is pool
    a = subsample(pool, 30, 1, 0)
    assert len(a) == len(np.unique(a)) == 30 and set(a) <= set(pool)
    np.testing.assert_array_equal(a, subsample(pool, 30, 1, 0))
    assert not np.array_equal(a, subsample(pool, 30, 1, 1))
