"""The NOAA AVHRR afternoon-platform history behind the GLASS AVHRR products (1981 on).

GLASS AVHRR albedo and LST are retrieved from the LTDR AVHRR record, which strings together the afternoon
NOAA satellites below. Each platform change brings a calibration step, and each platform's orbit drifts:
its equator-crossing time (ECT) moves later with age, so the afternoon overpass sees a cooler surface and a
lower sun. Readers use :func:`platform_of` to label days, validation uses :func:`transition_dates` to test for
breaks, and the synthetic twin uses the ECT columns to simulate the drift.

Table columns (``NOAA_PLATFORMS``)
----------------------------------
``platform``
    name as written in the GLASS files' ``Satellite`` attribute (``NOAA-7`` ... ``NOAA-19``).
``start``, ``end``
    first and last day (inclusive) the platform supplies the record.
``nominal_end``
    the end of the platform's nominal service in the record (differs from ``end`` only for NOAA-11, see below).
``launch``
    launch date (orbit age is counted from it).
``ect_launch_h``
    local solar equator-crossing time of the ascending (afternoon) node shortly after launch, hours.
``drift_h_per_year``
    mean drift of the ECT towards later hours, hours per year.

Dates follow the service periods of the LTDR/GIMMS AVHRR record (Pedelty et al. 2007; Pinzon & Tucker 2014)
to the month; where only the month of a change is known (NOAA-7 -> NOAA-9, February 1985) the change is put on
the 15th, a convention;
launch dates are NOAA's; ECT at launch and drift rates are approximate values read off Ignatov et al. (2004,
Fig. 1) and Price (1991), rounded to 0.05 h: they are plausible inputs for the twin, not calibration values.

The late-1994 gap
-----------------
NOAA-11's AVHRR degraded in September 1994 and NOAA-14 only entered the record in January 1995, so the real
record has a data gap (or badly drifted NOAA-11 data) for 1994-10..1994-12. This table *extends NOAA-11 to
1994-12-31* (``nominal_end`` 1994-09-13 keeps the nominal date), so that every day from 1981-08-24 on has a
platform; the twin marks those extended days as low quality (QC bit 1) and they carry NOAA-11's most drifted
orbit. Code that wants the gap can select ``dates > nominal_end`` itself.

References
----------
Ignatov, A., Laszlo, I., Harrod, E. D., Kidwell, K. B., Goodrum, G. P. (2004). Equator crossing times for NOAA,
ERS and EOS sun-synchronous satellites. Int. J. Remote Sens. 25(23), 5255-5266.
Pedelty, J. et al. (2007). Generating a long-term land data record from the AVHRR and MODIS instruments. IGARSS.
Pinzon, J. E., Tucker, C. J. (2014). A non-stationary 1981-2012 AVHRR NDVI3g time series. Remote Sens. 6,
6929-6960.
Price, J. C. (1991). Timing of NOAA afternoon passes. Int. J. Remote Sens. 12(1), 193-198.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NOAA_PLATFORMS", "platform_table", "platform_of", "platform_index", "transition_dates",
           "equator_crossing_time"]

_ROWS = [
    # platform,  start,        end,          nominal_end,  launch,       ECT h, drift h/yr
    ("NOAA-7", "1981-08-24", "1985-02-14", "1985-02-14", "1981-06-23", 14.50, 0.15),
    ("NOAA-9", "1985-02-15", "1988-11-07", "1988-11-07", "1984-12-12", 14.30, 0.40),
    ("NOAA-11", "1988-11-08", "1994-12-31", "1994-09-13", "1988-09-24", 13.65, 0.55),
    ("NOAA-14", "1995-01-01", "2000-12-31", "2000-12-31", "1994-12-30", 13.70, 0.50),
    ("NOAA-16", "2001-01-01", "2005-08-31", "2005-08-31", "2000-09-21", 14.00, 0.30),
    ("NOAA-18", "2005-09-01", "2009-05-31", "2009-05-31", "2005-05-20", 13.90, 0.25),
    ("NOAA-19", "2009-06-01", "2262-04-11", "2262-04-11", "2009-02-06", 13.65, 0.30),
]

NOAA_PLATFORMS: pd.DataFrame = pd.DataFrame(
    _ROWS, columns=["platform", "start", "end", "nominal_end", "launch", "ect_launch_h", "drift_h_per_year"]
)
for _c in ("start", "end", "nominal_end", "launch"):
    NOAA_PLATFORMS[_c] = pd.to_datetime(NOAA_PLATFORMS[_c])
NOAA_PLATFORMS.attrs["note"] = (
    "NOAA-11 extended from its nominal end 1994-09-13 to 1994-12-31 to bridge the late-1994 gap; "
    "NOAA-19 open-ended (end = pandas' largest date)"
)


def platform_table() -> pd.DataFrame:
    """A copy of :data:`NOAA_PLATFORMS` (safe to modify)."""
    return NOAA_PLATFORMS.copy()


#: the days :func:`_as_days` floors with numpy (its conversion of a unit's extreme values overflows)
_FAST_DAYS = (np.datetime64("1678-01-01", "D"), np.datetime64("2262-01-01", "D"))


def _as_days(dates) -> pd.DatetimeIndex:
    if isinstance(dates, pd.DatetimeIndex) and dates.tz is None:  # the same days, without pandas' round trips
        v = dates.to_numpy()
        if not ((v < _FAST_DAYS[0]) | (v > _FAST_DAYS[1])).any():  # NaT compares False
            return pd.DatetimeIndex(v.astype("datetime64[D]").astype(v.dtype))  # floor to the day, as normalize()
    return pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(dates)))).normalize()


_TABLE: tuple = (None, None, None, None)


def _table_arrays() -> tuple:
    """(start, end, names + ``''``) of :data:`NOAA_PLATFORMS` as numpy arrays, built once per table object (a
    column lookup costs ~20 us; the readers ask for every block of days)."""
    global _TABLE
    if _TABLE[0] is not NOAA_PLATFORMS:
        _TABLE = (NOAA_PLATFORMS, NOAA_PLATFORMS["start"].values, NOAA_PLATFORMS["end"].values,
                  np.append(NOAA_PLATFORMS["platform"].to_numpy(dtype=str), ""))
    return _TABLE[1:]


def platform_index(dates) -> np.ndarray:
    """Row of :data:`NOAA_PLATFORMS` serving each date, or -1 before NOAA-7 (1981-08-24).

    Parameters
    ----------
    dates : array-like of datetime-like
        Days (times of day are ignored).

    Returns
    -------
    numpy.ndarray of int
    """
    d = _as_days(dates).values
    starts, ends, _ = _table_arrays()
    idx = np.searchsorted(starts, d, side="right") - 1
    idx[(idx < 0) | (d > ends[np.clip(idx, 0, None)])] = -1
    return idx


def platform_of(dates) -> np.ndarray:
    """AVHRR platform name for each date (``''`` before the record starts on 1981-08-24).

    Parameters
    ----------
    dates : array-like of datetime-like

    Returns
    -------
    numpy.ndarray of str
        e.g. ``array(['NOAA-14', 'NOAA-16'])``.

    Examples
    --------
    >>> platform_of(["2000-12-31", "2001-01-01"]).tolist()
    ['NOAA-14', 'NOAA-16']
    """
    idx = platform_index(dates)
    return _table_arrays()[2][idx]


def transition_dates(start, end) -> pd.DatetimeIndex:
    """First days of the platforms that take over within ``(start, end]``.

    Parameters
    ----------
    start, end : datetime-like
        The period (inclusive); a platform starting on ``start`` itself is not a transition inside it.

    Returns
    -------
    pandas.DatetimeIndex
        e.g. ``transition_dates('1998-01-01', '2002-12-31')`` -> ``['2001-01-01']`` (NOAA-14 -> NOAA-16).
    """
    s, e = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    starts = NOAA_PLATFORMS["start"]
    return pd.DatetimeIndex(starts[(starts > s) & (starts <= e)].to_numpy(), name="transition")


def equator_crossing_time(dates) -> np.ndarray:
    """Local solar time of the afternoon overpass for each date, hours (NaN before the record).

    ``ECT = ect_launch_h + drift_h_per_year * (date - launch) / 365.25 d`` of the serving platform.
    """
    d = _as_days(dates)
    idx = platform_index(d)
    ok = idx >= 0
    out = np.full(len(d), np.nan)
    rows = NOAA_PLATFORMS.iloc[idx[ok]]
    age_years = (d[ok].values - rows["launch"].values) / np.timedelta64(1, "D") / 365.25
    out[ok] = rows["ect_launch_h"].values + rows["drift_h_per_year"].values * age_years
    return out
