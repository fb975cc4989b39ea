"""Splits: which candidate samples are held out for testing and validation (``samples.split``).

``'random'``
    Candidates are assigned to test / validation / training at random. Windows of different splits may
    overlap in their input days (the optimistic setting).
``'site'``
    Site-independent: the domain is cut into ``block_size x block_size`` cell blocks (counted from the cube's
    north-west corner); whole blocks are held out for testing, at random, until ``test_fraction`` of the
    pixels with samples are held out. The validation samples are a random ``val_fraction`` of the samples of the
    training pixels. No test pixel appears in training or validation.
``'year'``
    Held-out years: ``samples.test_years``, or ``round(test_fraction * n)`` of the ``n`` label years drawn at
    random. A sample belongs to the test split when its *target day* is in a test year; training and
    validation samples have their target day in the other years (validation: a random ``val_fraction`` of
    them). A window whose target day is near 1 January may *read inputs* (never labels) of the neighbouring,
    held-out year; inputs of every day are available at production time, so this is not label leakage.

Every random choice derives from ``seed`` through independent streams: ``(seed, 1)`` draws the test hold-out,
``(seed, 2)`` the validation samples, ``(seed, 3, k)`` the subsample of split ``k`` (:func:`subsample`), so the
same candidates, parameters and seed give the same splits.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["SPLITS", "STRATEGIES", "split_pools", "random_holdout", "site_holdout", "year_holdout", "subsample"]

SPLITS = ("train", "val", "test")
"""Names of the three splits of :class:`glass_sm.data.Samples`."""

STRATEGIES = ("random", "site", "year")
"""Split strategies (``samples.split``)."""


def random_holdout(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Hold out ``round(test_fraction * n)`` of ``n`` candidates at random.

    Parameters
    ----------
    n : int
        Number of candidates.
    test_fraction : float
        Fraction held out, dimensionless in (0, 1).
    rng : numpy.random.Generator
        The hold-out stream.

    Returns
    -------
    is_test : numpy.ndarray
        ``(n,)`` bool.
    info : dict
        Empty (nothing to record).
    """
    perm = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    is_test = np.zeros(n, bool)
    is_test[perm[:n_test]] = True
    return is_test, {}


def site_holdout(pix: np.ndarray, rows: np.ndarray, cols: np.ndarray, block_size: int, test_fraction: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Hold out whole ``block_size x block_size`` cell blocks until ``test_fraction`` of the used pixels are out.

    Parameters
    ----------
    pix : numpy.ndarray
        ``(n,)`` pixel id of each candidate.
    rows, cols : numpy.ndarray
        ``(P,)`` cube cell of each pixel.
    block_size : int
        Block edge, cells (>= 1).
    test_fraction : float
        Fraction of the pixels with candidates to hold out (at least, by whole blocks), dimensionless.
    rng : numpy.random.Generator
        The hold-out stream.

    Returns
    -------
    is_test : numpy.ndarray
        ``(n,)`` bool.
    info : dict
        ``block_size``, ``test_blocks`` (``[block_row, block_col]`` pairs) and ``test_pixels`` (pixel ids).
    """
    bs = int(block_size)
    if bs < 1:
        raise ValueError(f"samples.block_size must be >= 1, got {bs}")
    n_bcols = int(cols.max()) // bs + 1
    block_of_pixel = (rows // bs) * n_bcols + cols // bs
    used = np.unique(pix)
    blocks, pix_per_block = np.unique(block_of_pixel[used], return_counts=True)
    if len(blocks) < 2:
        raise ValueError(f"site split: the samples lie in {len(blocks)} block(s) of {bs}x{bs} cells; "
                         "reduce samples.block_size")
    order = rng.permutation(len(blocks))
    cum = np.cumsum(pix_per_block[order])
    k = int(np.searchsorted(cum, test_fraction * len(used))) + 1
    k = min(max(k, 1), len(blocks) - 1)
    test_blocks = np.sort(blocks[order[:k]])
    test_pixel = np.isin(block_of_pixel, test_blocks)
    info = {"block_size": bs, "test_blocks": [[int(b // n_bcols), int(b % n_bcols)] for b in test_blocks],
            "test_pixels": np.flatnonzero(test_pixel & np.isin(np.arange(len(rows)), used)).tolist()}
    return test_pixel[pix], info


def year_holdout(day: np.ndarray, time: pd.DatetimeIndex, test_years: Sequence[int], test_fraction: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Hold out the candidates whose target day is in a test year.

    Parameters
    ----------
    day : numpy.ndarray
        ``(n,)`` day index of each candidate into ``time``.
    time : pandas.DatetimeIndex
        The cube's days.
    test_years : sequence of int
        Years to hold out; empty: ``round(test_fraction * n)`` of the ``n`` label years at random (at least one,
        at most ``n - 1``).
    test_fraction : float
        Fraction of the label years held out when ``test_years`` is empty, dimensionless.
    rng : numpy.random.Generator
        The hold-out stream.

    Returns
    -------
    is_test : numpy.ndarray
        ``(n,)`` bool.
    info : dict
        ``test_years`` and ``train_years`` (the other label years).
    """
    years = np.asarray(time.year)[day]
    label_years = np.unique(years)
    if test_years:
        test_years = sorted(int(y) for y in test_years)
        if not np.isin(test_years, label_years).any():
            raise ValueError(f"samples.test_years {test_years} hold no sample; label years are "
                             f"{label_years.min()}..{label_years.max()}")
    else:
        if len(label_years) < 2:
            raise ValueError(f"year split: the samples cover {len(label_years)} year(s); need 2 or more")
        k = min(max(int(round(test_fraction * len(label_years))), 1), len(label_years) - 1)
        test_years = sorted(int(y) for y in rng.choice(label_years, size=k, replace=False))
    info = {"test_years": test_years, "train_years": [int(y) for y in label_years if y not in test_years]}
    return np.isin(years, test_years), info


def split_pools(strategy: str, pix: np.ndarray, day: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                time: pd.DatetimeIndex, seed: int, *, test_fraction: float, val_fraction: float,
                block_size: int = 1, test_years: Sequence[int] = ()) -> tuple[dict, dict]:
    """Positions (into the candidate arrays) of the test, validation and training pools.

    Parameters
    ----------
    strategy : {'random', 'site', 'year'}
        See the module docstring.
    pix, day : numpy.ndarray
        ``(n,)`` pixel id and day index of each candidate sample.
    rows, cols : numpy.ndarray
        ``(P,)`` cube cell of each pixel (site split).
    time : pandas.DatetimeIndex
        The cube's days (year split).
    seed : int
        Seed of the streams ``(seed, 1)`` (test) and ``(seed, 2)`` (validation).
    test_fraction, val_fraction : float
        Fractions held out for testing (of candidates, pixels or years) and for validation (of the rest),
        dimensionless.
    block_size : int
        Site split: block edge, cells.
    test_years : sequence of int
        Year split: the test years (empty: drawn).

    Returns
    -------
    pools : dict
        ``{'test', 'val', 'train'}`` -> int positions into the candidates, ascending.
    info : dict
        Details of the hold-out (see :func:`site_holdout`, :func:`year_holdout`).
    """
    rng_split = np.random.default_rng([seed, 1])
    if strategy == "random":
        is_test, info = random_holdout(len(pix), test_fraction, rng_split)
    elif strategy == "site":
        is_test, info = site_holdout(pix, rows, cols, block_size, test_fraction, rng_split)
    elif strategy == "year":
        is_test, info = year_holdout(day, time, test_years, test_fraction, rng_split)
    else:
        raise ValueError(f"unknown split strategy {strategy!r}; valid: 'random', 'site', 'year'")
    test_pool = np.flatnonzero(is_test)
    rest = np.flatnonzero(~is_test)
    rest = rest[np.random.default_rng([seed, 2]).permutation(len(rest))]
    n_val = int(round(val_fraction * len(rest)))
    return {"test": test_pool, "val": np.sort(rest[:n_val]), "train": np.sort(rest[n_val:])}, info


def subsample(pool: np.ndarray, limit: int, seed: int, stream: int) -> np.ndarray:
    """``pool`` itself, or ``limit`` of its entries drawn without replacement from the stream ``(seed, 3, stream)``.

    Parameters
    ----------
    pool : numpy.ndarray
        Candidate positions of one split.
    limit : int
        Cap (``samples.max_train_samples`` or ``max_eval_samples``), samples.
    seed : int
        Seed.
    stream : int
        Index of the split in :data:`SPLITS` (an independent stream per split).
    """
    if len(pool) > limit:
        return np.random.default_rng([seed, 3, stream]).choice(pool, size=limit, replace=False)
    return pool
