"""Closed forms and invariants of glass_sm.evaluation.metrics (pytesmo-style)."""

import numpy as np
import pytest

from glass_sm.evaluation import metrics
from glass_sm.evaluation.metrics import bias, bootstrap_ci, n_valid, r, r2, rmse, summary, ubrmse


@pytest.fixture
def noisy_pair():
    """A reference soil-moisture series (m3 m-3) and a biased, noisy estimate of it."""
    rng = np.random.default_rng(1)
    ref = 0.25 + 0.08 * np.sin(np.linspace(0, 12, 400)) + 0.01 * rng.standard_normal(400)
    est = 0.9 * ref + 0.04 + 0.02 * rng.standard_normal(400)
    return est, ref


@pytest.mark.parametrize("offset", [-0.1, 0.0, 0.03])
def test_constant_offset_closed_forms(offset):
    ref = np.linspace(0.05, 0.45, 50)
    est = ref + offset
    assert bias(est, ref) == pytest.approx(offset, abs=1e-12)
    assert rmse(est, ref) == pytest.approx(abs(offset), abs=1e-12)
    assert ubrmse(est, ref) == pytest.approx(0.0, abs=1e-12)
    assert r(est, ref) == pytest.approx(1.0, abs=1e-12)


def test_against_numpy_formulas(noisy_pair):
    est, ref = noisy_pair
    diff = est - ref
    assert r(est, ref) == pytest.approx(np.corrcoef(est, ref)[0, 1], rel=1e-12)
    assert r2(est, ref) == pytest.approx(1 - np.sum(diff**2) / np.sum((ref - ref.mean()) ** 2), rel=1e-12)
    assert ubrmse(est, ref) == pytest.approx(np.sqrt(rmse(est, ref) ** 2 - bias(est, ref) ** 2), rel=1e-9)
    assert n_valid(est, ref) == 400


def test_r2_closed_forms():
    ref = np.array([0.1, 0.2, 0.3, 0.4])
    assert r2(ref, ref) == 1.0
    assert r2(np.full(4, ref.mean()), ref) == pytest.approx(0.0, abs=1e-12)
    # a bias c lowers it by n c^2 / SST (SST = 0.05 here), unlike r, down to negative values
    assert r2(ref + 0.1, ref) == pytest.approx(1 - 4 * 0.1**2 / 0.05)
    assert r2(ref + 0.2, ref) == pytest.approx(-2.2)


@pytest.mark.parametrize("offset", [0.5, -3.0, 100.0])
def test_ubrmse_invariant_to_offset(noisy_pair, offset):
    est, ref = noisy_pair
    assert ubrmse(est + offset, ref) == pytest.approx(ubrmse(est, ref), rel=1e-9)
    assert ubrmse(est, ref + offset) == pytest.approx(ubrmse(est, ref), rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_bounds(seed):
    rng = np.random.default_rng(seed)
    ref = rng.random(30)
    est = rng.random() * ref + rng.normal(0, rng.random(), 30)
    assert ubrmse(est, ref) <= rmse(est, ref)
    assert abs(bias(est, ref)) <= rmse(est, ref)
    assert -1 <= r(est, ref) <= 1
    assert r2(est, ref) <= 1


def test_r_clipped_to_one():
    ref = np.random.default_rng(0).random(1000) * 1e-3 + 0.3
    for scale in (1.0, 3.0, 1e6):
        assert -1.0 <= r(scale * ref, ref) <= 1.0
        assert -1.0 <= r(-scale * ref, ref) <= 1.0


def test_nan_pairs_dropped_pairwise(noisy_pair):
    est, ref = (a.copy() for a in noisy_pair)
    est[[3, 10]] = np.nan
    ref[[10, 20, 30]] = np.nan
    keep = ~(np.isnan(est) | np.isnan(ref))
    assert n_valid(est, ref) == keep.sum() == 396
    for name, func in metrics.METRICS.items():
        assert func(est, ref) == func(est[keep], ref[keep]), name


def test_two_dimensional_inputs_are_flattened(noisy_pair):
    est, ref = noisy_pair
    assert rmse(est.reshape(20, 20), ref.reshape(20, 20)) == rmse(est, ref)


def test_too_few_pairs_give_nan_not_errors():
    assert np.isnan(rmse([0.1], [0.2]))
    assert np.isnan(bias([np.nan, 0.1], [0.2, 0.3]))
    assert np.isnan(r([0.1, 0.2], [0.2, 0.4]))  # r needs 3 pairs
    assert np.isnan(r([0.1, 0.1, 0.1], [0.2, 0.3, 0.4]))  # constant estimate
    assert np.isnan(r2([0.1, 0.2, 0.3], [0.2, 0.2, 0.2]))  # constant reference
    assert rmse([0.1, 0.2], [0.2, 0.2]) == pytest.approx(np.sqrt(0.005))
    assert n_valid([], []) == 0
    out = summary([np.nan, 0.1], [0.2, np.nan])
    assert out["n"] == 0 and all(np.isnan(v) for k, v in out.items() if k != "n")


def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        rmse(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("name", list(metrics.METRICS))
def test_bootstrap_interval_contains_estimate(noisy_pair, name):
    est, ref = noisy_pair
    value = metrics.METRICS[name](est, ref)
    lo95, hi95 = bootstrap_ci(name, est, ref, n_boot=500, alpha=0.05, seed=3)
    lo90, hi90 = bootstrap_ci(metrics.METRICS[name], est, ref, n_boot=500, alpha=0.10, seed=3)
    assert lo95 <= lo90 <= value <= hi90 <= hi95
    assert lo95 < hi95


def test_bootstrap_reproducible_and_chunk_independent(noisy_pair, monkeypatch):
    est, ref = noisy_pair
    first = bootstrap_ci("ubrmse", est, ref, n_boot=300, seed=7)
    assert bootstrap_ci("ubrmse", est, ref, n_boot=300, seed=7) == first
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 1000)  # 2 resamples per chunk
    assert bootstrap_ci("ubrmse", est, ref, n_boot=300, seed=7) == first
    assert bootstrap_ci("ubrmse", est, ref, n_boot=300, seed=8) != first


def test_bootstrap_unknown_metric():
    with pytest.raises(ValueError, match="ubrmse"):
        bootstrap_ci("ubrsme", [0.1, 0.2, 0.3], [0.1, 0.2, 0.4])


def test_summary_matches_functions(noisy_pair):
    est, ref = noisy_pair
    out = summary(est, ref, n_boot=200, seed=5)
    assert out["n"] == 400
    for name, func in metrics.METRICS.items():
        assert out[name] == func(est, ref)
        assert (out[f"{name}_lo"], out[f"{name}_hi"]) == bootstrap_ci(name, est, ref, n_boot=200, seed=5)
    assert set(summary(est, ref, ci=False)) == {"n", *metrics.METRICS}


def test_shared_kernels_equal_each_kernel_bit_for_bit():
    """The bootstrap's shared evaluation gives every metric exactly its own kernel's value (constant rows too)."""
    rng = np.random.default_rng(11)
    est = rng.uniform(0.05, 0.45, (6, 257))
    ref = 0.8 * est + rng.normal(0, 0.03, est.shape)
    ref[1], est[2] = 0.2, 0.1  # a constant reference row (r, r2 NaN) and a constant estimate row (r NaN)
    for names in (list(metrics.METRICS), ["r"], ["r2", "rmse"], ["bias", "ubrmse"]):
        shared = metrics._kernels_shared(names, est, ref)
        assert set(shared) == set(names)
        for name in names:
            with np.errstate(all="ignore"):
                own = metrics._KERNELS[name](est, ref)
            np.testing.assert_array_equal(shared[name], own)
            assert np.array_equal(np.isnan(shared[name]), np.isnan(own))
