"""Fixtures of the evaluation tests: the real ISMN sample stations of the ``ismn`` sdist (``ismn_testdata``)."""

import pytest
from station_products import MIN_SCORED_DAYS, MULTINETWORK

from glass_sm.io.ismn import read_ismn


@pytest.fixture(scope="module")
def multinetwork(ismn_testdata):
    """The ismn sample archive with 8 real 5 cm sensors of 3 networks (zip, header+values, CR line ends)."""
    path = ismn_testdata / MULTINETWORK
    if not path.is_file():
        pytest.skip(f"{path} not in this ismn sdist")
    return path


@pytest.fixture(scope="module")
def real_stations(multinetwork, tmp_path_factory):
    """``(read_kwargs, stations, daily)`` of the real sample sensors at 0-5 cm.

    These 2007-2013 sample files carry the ISMN flags 'U' (unchecked), 'D..' and 'C..' and no 'G', so they are
    read with ``good_only=False`` (the values are still the real ones, which is what these tests need).
    """
    kwargs = {"cache_dir": tmp_path_factory.mktemp("ismn_cache"), "good_only": False}
    table, daily = read_ismn(multinetwork, progress=False, **kwargs)
    if sum(len(s) >= MIN_SCORED_DAYS for s in daily.values()) < 3:
        pytest.skip(f"{multinetwork} has fewer than 3 sensors with {MIN_SCORED_DAYS} days")
    return kwargs, table, daily
