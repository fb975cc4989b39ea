"""Loud, specific data errors shared by every reader of :mod:`glass_sm.io`, and the units policy.

Every error names the file (or folder), the variable and what was found instead, e.g.::

    /data/lst/1999/GLASS08B31.V40.A1999032.2019001.hdf: variable 'LST' not found (found: 'LST_night', 'QC')

All errors derive from :class:`DataError`, so a caller can catch one class to report a per-file failure and go
on with the rest.

Units policy (:func:`check_units`)
----------------------------------
Readers return physical values in the cube's units: ``K`` for temperatures, ``m3 m-3`` for volumetric soil
moisture, ``1`` for albedo (see ``book/design.md``). For each variable a reader calls :func:`check_units` with
the values (already unpacked: ``stored * scale_factor + add_offset``, fill values masked) and the variable's
attributes:

1. **Known spellings of the expected unit are accepted as they are.** Temperature: ``K``, ``kelvin``,
   ``degK``, ``deg_K``. Volumetric water: ``m3 m-3``, ``m**3 m**-3``, ``m3/m3``, ``m^3 m^-3``, ``m3.m-3``,
   ``cm3 cm-3``, ``cm3/cm3``, ``1``, ``fraction``, ``(0 - 1)``. Albedo: ``1``, ``dimensionless``, ``unitless``,
   ``-``, ``none``, ``''``, ``fraction``, ``(0 - 1)``. Matching ignores case and blanks.
2. **Another unit of the same quantity is converted when the policy is ``'convert'``** (the default), or raises
   :class:`UnitsError` when it is ``'raise'``: ``degC``/``°C``/``Celsius`` -> ``K`` (+ 273.15);
   ``%`` -> ``m3 m-3`` or ``1`` (/ 100).
3. **Any other unit raises** :class:`UnitsError` (e.g. soil moisture in ``kg m-2``): we never guess a
   conversion that needs a layer depth or a density.
4. **A missing units attribute is read as the expected unit** (some producers omit it); the range check of
   step 5 still applies.
5. **Attributes that lie are caught from the values and always raise** :class:`UnitsError`, because the
   reader cannot know which of the two (attribute or values) is right:

   - temperature declared in K with a median below 100 (no land surface is that cold: the values are
     degC), or declared in degC with a median above 150 (the values are K);
   - volumetric water or albedo declared as a fraction with a maximum above 1.5 (the values are percent,
     or still packed).

   A declared percentage whose values are all below 1 is *not* flagged: 1 % of soil water is plausible in a
   hyper-arid tile.

The range checks use the finite values only and are skipped when there are none (an all-cloud day).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np

__all__ = [
    "DataError",
    "MissingFileError",
    "MissingVariableError",
    "UnitsError",
    "EmptyDataError",
    "TimeGapError",
    "GridMismatchError",
    "CorruptFileError",
    "DuplicateFileError",
    "raise_duplicates",
    "check_units",
    "check_units_on_probe",
    "units_probe",
    "canonical_units",
    "found_list",
    "format_dates",
    "DataWarning",
    "FILL_ATTRIBUTES",
    "fill_attribute",
    "check_units_upper_bound",
]

UnitsPolicy = Literal["convert", "raise"]


class DataError(Exception):
    """An input file does not hold what the reader expects.

    Parameters
    ----------
    detail : str
        What is wrong and what was found instead. Written to follow the variable name (``"not found
        (found: 'QC')"``) or, without a variable, the file name (``"is not a valid HDF4 file"``).
    file : str or path-like, optional
        The file or folder concerned.
    variable : str, optional
        The variable concerned.

    Attributes
    ----------
    file, variable, detail
        As given (``file`` as a string), so callers can build their own reports.
    """

    def __init__(self, detail: str, *, file: str | os.PathLike | None = None, variable: str | None = None):
        self.file = None if file is None else os.fspath(file)
        self.variable = variable
        self.detail = detail
        parts = []
        if self.file is not None:
            parts.append(f"{self.file}:")
        if variable is not None:
            parts.append(f"variable {variable!r}")
        parts.append(detail)
        super().__init__(" ".join(parts))

    def __reduce__(self):  # keep pickling (multiprocessing, dask) working with keyword-only arguments
        return (_rebuild, (type(self), self.detail, self.file, self.variable))


def _rebuild(cls, detail, file, variable):
    return cls(detail, file=file, variable=variable)


class MissingFileError(DataError, FileNotFoundError):
    """A file or folder does not exist, or a folder holds no file of the expected name pattern."""


class MissingVariableError(DataError, KeyError):
    """A variable (SDS, netCDF variable, GRIB shortName, attribute) is not in the file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class UnitsError(DataError, ValueError):
    """Units are missing a known conversion, contradict the policy, or contradict the values."""


class EmptyDataError(DataError, ValueError):
    """Every value in the requested domain and period is fill / masked."""


class TimeGapError(DataError, ValueError):
    """Days of the requested period have no file (or no time step)."""


class GridMismatchError(DataError, ValueError):
    """The file's grid does not cover the domain, or has another resolution / alignment."""


class DuplicateFileError(DataError, ValueError):
    """The same file (same name, or the same day, version and production date) was found at several paths.

    Which copy is right cannot be decided from the name: the error lists every path, so the user removes or
    renames the stale copies (nothing is chosen silently by directory-listing order).
    """


def raise_duplicates(paths_by_key: dict, what: str, root: str | os.PathLike | None = None) -> None:
    """Raise :class:`DuplicateFileError` when any key maps to more than one path (all duplicates listed)."""
    dups = {k: sorted(map(str, v)) for k, v in paths_by_key.items() if len(v) > 1}
    if not dups:
        return
    lines = [f"{k}: " + " | ".join(v) for k, v in sorted(dups.items(), key=lambda kv: str(kv[0]))]
    shown = "; ".join(lines[:5]) + (f"; ... ({len(lines) - 5} more)" if len(lines) > 5 else "")
    raise DuplicateFileError(f"{len(dups)} {what} found at more than one path (contents may differ); keep one copy "
                             f"of each: {shown}", file=root)


class DataWarning(UserWarning):
    """Something in the inputs is unusual but readable (no QC layer, implausible values masked, ...).

    Readers issue it once per read call with a count and an example file, never once per file.
    """


class CorruptFileError(DataError, OSError):
    """The file cannot be opened or read (truncated, wrong format, damaged)."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return Exception.__str__(self)


# ----------------------------------------------------------------------------------------------------------
# message helpers
# ----------------------------------------------------------------------------------------------------------
def found_list(names: Iterable[str], limit: int = 20) -> str:
    """``"'a', 'b', 'c'"`` (at most ``limit`` names, then ``"... (n more)"``); ``"nothing"`` when empty."""
    names = [str(n) for n in names]
    if not names:
        return "nothing"
    text = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        text += f", ... ({len(names) - limit} more)"
    return text


def format_dates(dates: Iterable, limit: int = 10) -> str:
    """Compact list of days: consecutive days become ranges, ``"1999-02-01..1999-02-03, 1999-02-10"``."""
    days = sorted({np.datetime64(d, "D") for d in dates})
    if not days:
        return "none"
    runs: list[tuple[np.datetime64, np.datetime64]] = []
    start = prev = days[0]
    for d in days[1:]:
        if d - prev == np.timedelta64(1, "D"):
            prev = d
            continue
        runs.append((start, prev))
        start = prev = d
    runs.append((start, prev))
    parts = [str(a) if a == b else f"{a}..{b}" for a, b in runs]
    text = ", ".join(parts[:limit])
    if len(parts) > limit:
        text += f", ... ({len(parts) - limit} more runs)"
    return f"{len(days)} day(s): {text}"


# ----------------------------------------------------------------------------------------------------------
# units
# ----------------------------------------------------------------------------------------------------------
def _norm(units: str) -> str:
    return "".join(str(units).split()).lower().replace("·", ".")


_KELVIN = {"k", "kelvin", "kelvins", "degk", "deg_k", "degreesk", "degrees_k"}
_CELSIUS = {"degc", "deg_c", "°c", "c", "celsius", "degreesc", "degrees_c", "degree_celsius", "degrees_celsius",
            "degreecelsius", "degreescelsius", "℃"}
_VOLUMETRIC = {"m3m-3", "m**3m**-3", "m3/m3", "m^3m^-3", "m^3/m^3", "m3.m-3", "m3m**-3", "cm3cm-3", "cm3/cm3",
               "1", "fraction", "(0-1)", "m3m-3(volumetric)", "vol/vol"}
_DIMENSIONLESS = {"1", "", "dimensionless", "unitless", "-", "none", "fraction", "(0-1)", "ratio"}
_PERCENT = {"%", "percent", "percentage", "pct", "%vol", "vol%", "volume%", "volumepercent"}

#: the unit each quantity is returned in, by the spellings callers may pass as ``expected``
_CANONICAL = {
    "K": "K",
    "m3 m-3": "m3 m-3",
    "1": "1",
    "dimensionless": "1",
}


def canonical_units(expected: str) -> str:
    """The units string written on the output for an ``expected`` of :func:`check_units`."""
    try:
        return _CANONICAL[expected]
    except KeyError:
        raise ValueError(f"expected must be one of {sorted(_CANONICAL)}, got {expected!r}") from None


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if np.ma.isMaskedArray(v):
        v = np.ma.filled(v.astype(np.float64), np.nan)
    v = v[np.isfinite(v)]
    return v


def _median(finite: np.ndarray):
    """``np.median(finite)`` of the 1-D array of finite values ``_finite`` returns, the same value and type, cheaper.

    float32 / float64: the middle order statistic (odd size) or ``(a + b) / 2`` in the array's type (even size),
    exactly as ``np.median`` computes it (one ``np.partition``, no mean); a one-element array is its element.
    Falls back to ``np.median`` for other types, a zero result (``np.median`` decides its sign by where its
    partition puts -0.0 and 0.0) and a sum that could overflow (so its warning is numpy's own)."""
    n = finite.size
    if n == 0 or finite.ndim != 1 or finite.dtype not in _FAST_MEDIAN:
        return np.median(finite)
    if n == 1:
        out = finite[0]
    else:
        k = n // 2
        part = np.partition(finite, k)
        out = part[k]
        if not n % 2:
            lo = part[:k].max()
            if abs(lo) >= _FAST_MEDIAN[finite.dtype] or abs(out) >= _FAST_MEDIAN[finite.dtype]:
                return np.median(finite)
            out = (lo + out) / 2
    return np.median(finite) if out == 0 else out


#: dtypes of :func:`_median`'s fast path -> magnitude from which ``a + b`` could overflow
_FAST_MEDIAN = {np.dtype(np.float32): np.float32(np.finfo(np.float32).max / 2),
                np.dtype(np.float64): np.float64(np.finfo(np.float64).max / 2)}


def check_units(values: np.ndarray, attrs: Mapping, expected: str, file: str | os.PathLike | None,
                var: str | None, *, policy: UnitsPolicy = "convert") -> np.ndarray:
    """Check (and if allowed convert) physical values against the unit a reader must return.

    See the module docstring for the full policy.

    Parameters
    ----------
    values : numpy.ndarray
        Unpacked physical values (fill already NaN), in the units ``attrs['units']`` declares.
    attrs : mapping
        The variable's attributes; only ``'units'`` is used (missing: read as ``expected``).
    expected : {'K', 'm3 m-3', '1', 'dimensionless'}
        Unit to return: temperature in kelvin, volumetric water content in m3 m-3, or a dimensionless
        fraction (albedo).
    file, var : str, optional
        File and variable named in the error messages.
    policy : {'convert', 'raise'}
        What to do with a known unit of the same quantity that is not ``expected`` (degC, %): convert it, or
        raise :class:`UnitsError`.

    Returns
    -------
    numpy.ndarray
        ``values`` in ``expected`` units (the same array object when nothing was converted; a new float
        array otherwise).

    Raises
    ------
    UnitsError
        Unknown unit, a convertible unit under ``policy='raise'``, or attributes contradicted by the values.
    """
    if policy not in ("convert", "raise"):
        raise ValueError(f"policy must be 'convert' or 'raise', got {policy!r}")
    target = canonical_units(expected)
    raw = attrs.get("units", None) if attrs is not None else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    declared = None if raw is None else _norm(raw)
    finite = _finite(values)

    def err(detail: str) -> UnitsError:
        return UnitsError(detail, file=file, variable=var)

    if target == "K":
        if declared is None or declared in _KELVIN:
            if finite.size and _median(finite) < 100.0:
                shown = "no units attribute" if declared is None else f"units {raw!r} (kelvin)"
                raise err(f"has {shown} but its median value is {_median(finite):.2f}, impossible for a "
                          "land surface temperature in K: the values look like degrees Celsius. Fix the "
                          "attribute or the values; the reader will not guess which is wrong")
            return values
        if declared in _CELSIUS:
            if finite.size and _median(finite) > 150.0:
                raise err(f"has units {raw!r} (Celsius) but its median value is {_median(finite):.2f}: "
                          "the values look like kelvin. Fix the attribute or the values")
            if policy == "raise":
                raise err(f"has units {raw!r} (Celsius); expected 'K' (units_policy='raise'; use 'convert' "
                          "to add 273.15)")
            return np.asarray(values, dtype=np.result_type(values, np.float32)) + 273.15
        raise err(f"has units {raw!r}; expected a temperature in 'K' (or degC, converted)")

    accepted = _VOLUMETRIC if target == "m3 m-3" else _DIMENSIONLESS
    quantity = "a volumetric water content" if target == "m3 m-3" else "a dimensionless fraction"
    if declared is None or declared in accepted:
        if finite.size and finite.max() > 1.5:
            shown = "no units attribute" if declared is None else f"units {raw!r}"
            raise err(f"has {shown} (expected {quantity}, 0..1) but its maximum value is {finite.max():.4g}: "
                      "the values look like percent (or are still packed). Fix the attribute or the values")
        return values
    if declared in _PERCENT:
        if policy == "raise":
            raise err(f"has units {raw!r} (percent); expected {target!r} (units_policy='raise'; use "
                      "'convert' to divide by 100)")
        return np.asarray(values, dtype=np.result_type(values, np.float32)) / 100.0
    raise err(f"has units {raw!r}; expected {quantity} in {target!r} (or percent, converted)")


def units_probe(values: np.ndarray, expected: str) -> np.ndarray:
    """The one value on which :func:`check_units` and :func:`check_units_upper_bound` decide for ``values`` in
    ``expected`` units, as a one-element array of ``values``' type: the median of the finite values for kelvin,
    their maximum otherwise (no finite value: an empty array).

    Both checks see the finite values through that statistic only (their messages print it), so on the probe
    they raise, pass or convert exactly as on ``values``, without sorting a whole field for each median."""
    finite = _finite(values)
    if not finite.size:
        return finite
    stat = _median(finite) if canonical_units(expected) == "K" else finite.max()
    return np.array([stat], dtype=finite.dtype)


def check_units_on_probe(values: np.ndarray, attrs: Mapping, expected: str, file: str | os.PathLike | None,
                         var: str | None, *, policy: UnitsPolicy = "convert",
                         probe: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`check_units` of ``values``, decided on their :func:`units_probe` (or on ``probe``, a reader's own
    statistic of the same kind, e.g. the maximum it already has); a conversion, elementwise, is applied to
    ``values`` themselves.

    Returns
    -------
    values : numpy.ndarray
        As :func:`check_units` returns them (the same object when nothing was converted).
    probe : numpy.ndarray
        The statistic in ``expected`` units, for :func:`check_units_upper_bound` (the converted values
        themselves after a conversion).
    """
    if probe is None:
        probe = units_probe(values, expected)
    if check_units(probe, attrs, expected, file, var, policy=policy) is probe:
        return values, probe
    values = check_units(values, attrs, expected, file, var, policy=policy)
    return values, values


# ----------------------------------------------------------------------------------------------------------
# fill-value attribute spellings, and the units check from above
# ----------------------------------------------------------------------------------------------------------
#: the spellings of a fill-value attribute that readers recognise, in this order of precedence (matched
#: case-insensitively): the CF/netCDF one, HDF-EOS's, two common lower-case variants, and CF's ``missing_value``
FILL_ATTRIBUTES = ("_FillValue", "FillValue", "fillvalue", "fill_value", "missing_value")


def fill_attribute(attrs: Mapping) -> tuple[str | None, list]:
    """The fill value(s) a variable's attributes declare, under any spelling of :data:`FILL_ATTRIBUTES`.

    Returns
    -------
    name : str or None
        The attribute found first in :data:`FILL_ATTRIBUTES` order (case-insensitive match), None when none is.
    values : list
        Every value declared by *any* of the spellings (a variable may carry both ``_FillValue`` and
        ``missing_value``; both mark missing data), scalars, in the order found.
    """
    lowered = {str(k).lower(): k for k in (attrs or {})}
    name, values = None, []
    for spelling in FILL_ATTRIBUTES:
        key = lowered.get(spelling.lower())
        if key is None:
            continue
        v = attrs[key]
        if isinstance(v, (str, bytes)):
            continue
        flat = [x for x in np.ravel(v).tolist()]
        if not flat:
            continue
        name = name or str(key)
        values += [x for x in flat if x not in values]
    return name, values


#: largest plausible *median* of a field in each returned unit: a median above it means the values are still
#: packed (a missing or wrong ``scale_factor``) or in another unit; no land surface is at 400 K on average
UNITS_UPPER_MEDIAN = {"K": 400.0}


def check_units_upper_bound(values: np.ndarray, expected: str, file: str | os.PathLike | None,
                            var: str | None, how: str = "") -> None:
    """Raise :class:`UnitsError` when the median of ``values`` exceeds :data:`UNITS_UPPER_MEDIAN` for the unit.

    :func:`check_units` catches temperatures that are too *low* for kelvin (degC) and fractions that are too
    large; this is the upper bound for kelvin: LST stored as ``30000`` (0.01 K) and read with scale 1 would
    otherwise pass as 30000 K. NaN values are ignored; an all-NaN field passes.

    Parameters
    ----------
    values : numpy.ndarray
        Physical values in ``expected`` units.
    expected : str
        The unit the reader returns (only ``'K'`` has an upper bound).
    file, var : str, optional
        Named in the message.
    how : str
        How the values were unpacked (e.g. ``"scale_factor 1 from the file"``), appended to the message.
    """
    bound = UNITS_UPPER_MEDIAN.get(canonical_units(expected))
    if bound is None:
        return
    finite = _finite(values)
    if finite.size and _median(finite) > bound:
        extra = f" ({how})" if how else ""
        raise UnitsError(f"has a median value of {_median(finite):.6g} after unpacking{extra}, above {bound:g} "
                         f"{expected}: the values look still packed (scale_factor missing or wrong) or not in "
                         f"{expected}. Fix the attribute; the reader will not guess", file=file, variable=var)
