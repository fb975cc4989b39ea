"""glass_sm.platforms: the NOAA AVHRR platform history (contiguous record, transitions, orbital drift)."""

from __future__ import annotations

import numpy as np

from glass_sm.platforms import NOAA_PLATFORMS, equator_crossing_time, platform_of, transition_dates


def test_platform_history():
    got = platform_of(["1981-08-23", "1981-08-24", "1994-11-15", "1995-01-01", "2000-12-31", "2001-01-01",
                       "2009-06-01", "2021-12-31"])
    assert got.tolist() == ["", "NOAA-7", "NOAA-11", "NOAA-14", "NOAA-14", "NOAA-16", "NOAA-19", "NOAA-19"]
    assert transition_dates("1998-01-01", "2002-12-31").strftime("%Y-%m-%d").tolist() == ["2001-01-01"]
    assert len(transition_dates("1982-01-01", "2021-12-31")) == 6
    # contiguous record: each platform starts the day after the previous one ends
    gaps = NOAA_PLATFORMS["start"].values[1:] - NOAA_PLATFORMS["end"].values[:-1]
    assert np.all(gaps == np.timedelta64(1, "D"))
    # orbital drift: the overpass gets later with platform age, and resets at a platform change
    ect = equator_crossing_time(["2001-01-01", "2005-08-31", "2005-09-01"])
    assert ect[1] > ect[0] + 1.0 and ect[2] < ect[1] - 1.0
    assert np.isnan(equator_crossing_time(["1980-01-01"])[0])
