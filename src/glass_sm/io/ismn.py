"""In situ soil moisture from the International Soil Moisture Network (ISMN), read through the ``ismn`` library.

The ISMN (https://ismn.earth, TU Wien) delivers a zip archive (or its extracted folder) with one folder per
network and station and one ``.stm`` file per sensor::

    <NETWORK>/<STATION>/<CSE>_<NETWORK>_<STATION>_sm_<from>_<to>_<SENSOR>_<YYYYMMDD>_<YYYYMMDD>.stm
    <NETWORK>/<STATION>/<CSE>_<NETWORK>_<STATION>_static_variables.csv

in one of two layouts, both read by :class:`ismn.interface.ISMN_Interface`: *header+values* (a header line with
network, station, lat, lon, elevation, depths, sensor; then ``date time value flag orig_flag`` lines) and
*CEOP separate* (every line repeats the header fields). Line endings LF, CRLF and CR-only all occur in real
archives and are handled. Times are UTC, values are hourly (ISMN harmonises every network to hourly steps),
in m3 m-3.

Processing here
---------------
1. The library's metadata scan of the archive is cached (``python_metadata/`` next to the data, or under
   ``cache_dir`` - needed when the data folder is read-only); the cache is rebuilt when the archive changes.
2. Sensors measuring ``variable`` whose depth range lies *within* ``depth`` are selected (``(0, 0.05)`` keeps
   0-5 cm and 5-5 cm probes, not 0-10 cm).
3. Only values flagged ``G`` (good, ISMN quality control) are kept (``good_only``), in ``[start, end]``.
4. Daily means per UTC day, from days with at least ``min_obs_per_day`` hourly values (default 12: half of the
   day observed, so a daily mean is not one morning's value). Days with fewer are dropped.

A sensor (or station) that fails to read is listed with the reason in the ``note`` column and the others go on.
Folders whose ``.stm`` files are not laid out ``NETWORK/STATION/`` (loose files) are staged as symbolic links in
the cache first.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from glass_sm.io.errors import CorruptFileError, EmptyDataError, MissingFileError, MissingVariableError, found_list

__all__ = ["read_ismn", "daily_means", "default_cache_dir", "STATION_COLUMNS", "MIN_OBS_PER_DAY"]

log = logging.getLogger(__name__)

#: columns of the station table returned by :func:`read_ismn`
STATION_COLUMNS = ["network", "station", "lat", "lon", "elevation", "depth_from", "depth_to", "sensor", "start",
                   "end", "n_hourly", "n_daily", "note"]
#: default minimum number of hourly values for a daily mean
MIN_OBS_PER_DAY = 12
_FINGERPRINT = "{name}.glass_sm_fingerprint.json"  # next to the library's <name>.csv


def default_cache_dir() -> Path:
    """``$GLASS_SM_CACHE/ismn`` or ``~/.cache/glass_sm/ismn``."""
    base = os.environ.get("GLASS_SM_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "glass_sm") / "ismn"


def _key(path: Path) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', path.name)}-{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"


def _fingerprint(path: Path) -> dict:
    """Cheap identity of the archive: size + mtime of the zip, or count/size/mtime of the folder's files."""
    if path.is_file():
        st = path.stat()
        return {"kind": "zip", "size": st.st_size, "mtime": int(st.st_mtime)}
    n = size = mtime = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "python_metadata"]
        for f in files:
            if f.endswith((".stm", ".csv")):
                st = os.stat(os.path.join(root, f))
                n, size, mtime = n + 1, size + st.st_size, max(mtime, int(st.st_mtime))
    return {"kind": "dir", "files": n, "size": size, "mtime": mtime}


def _stage_loose_files(path: Path, cache: Path) -> Path:
    """Symlink ``.stm``/``.csv`` files not laid out ``NETWORK/STATION/`` into such a tree under ``cache``."""
    stms = sorted(path.rglob("*.stm"))
    if all(len(p.relative_to(path).parts) == 3 for p in stms):
        return path
    staged = cache / f"staged-{_key(path)}"
    if staged.exists():
        shutil.rmtree(staged)
    for p in stms:
        rel = p.relative_to(path).parts
        elems = p.name.split("_")
        if len(elems) < 9:
            log.warning("%s: not an ISMN data file name, skipped", p)
            continue
        network = rel[-2] if len(rel) == 2 else (rel[-3] if len(rel) >= 3 else elems[1])
        station = elems[2]
        dest = staged / network / station
        dest.mkdir(parents=True, exist_ok=True)
        for f in [p] + sorted(p.parent.glob(f"*_{station}_static_variables.csv")):
            target = dest / f.name
            if not target.exists():
                try:
                    target.symlink_to(f.resolve())
                except OSError:  # pragma: no cover - filesystems without symlinks
                    shutil.copy2(f, target)
    return staged


def _parse_name(name: str) -> dict | None:
    """Fields of an ISMN data file name ``CSE_NETWORK_STATION_VAR_FROM_TO_SENSOR..._START_END.stm``."""
    from ismn.const import VARIABLE_LUT  # noqa: PLC0415

    elems = name[:-4].split("_") if name.endswith(".stm") else []
    if len(elems) < 9:
        return None
    try:
        d_from, d_to = float(elems[4]), float(elems[5])
    except ValueError:
        return None
    return dict(network=elems[1], station=elems[2], variable=VARIABLE_LUT.get(elems[3], elems[3]),
                depth_from=d_from, depth_to=d_to, sensor="_".join(elems[6:-2]))


def _meta_path(data: Path, cache_dir: Path | None) -> Path:
    """Where the library keeps its metadata csv for ``data``."""
    if cache_dir is not None:
        return Path(cache_dir) / f"meta-{_key(data)}"
    default = (data.parent if data.is_file() else data) / "python_metadata"
    parent = default if default.exists() else default.parent
    if os.access(parent, os.W_OK):
        return default
    return default_cache_dir() / f"meta-{_key(data)}"


def _erroneous_files(meta_path: Path, name: str) -> list[str]:
    """Data files the library's scan skipped as malformed (from its log)."""
    logf = meta_path / f"{name}.log"
    if not logf.is_file():
        return []
    text = logf.read_text(errors="replace")
    if "Summary: Erroneous Files" not in text:
        return []
    block = text.split("Summary: Erroneous Files", 1)[1]
    return sorted({ln.strip() for ln in block.splitlines() if ln.strip().endswith(".stm")})


def _open_interface(data: Path, meta_path: Path, progress: bool):
    from ismn.interface import ISMN_Interface  # noqa: PLC0415

    meta_path.mkdir(parents=True, exist_ok=True)
    name = data.stem if data.is_file() else data.name  # the library's name for the archive (csv, log)
    fp = _fingerprint(data)
    fpf = meta_path / _FINGERPRINT.format(name=name)
    try:
        stale = json.loads(fpf.read_text()) != fp
    except (OSError, ValueError):
        stale = True
    if stale:  # the library appends to its log: start a fresh one with the fresh scan
        (meta_path / f"{name}.log").unlink(missing_ok=True)
    sink = contextlib.nullcontext() if progress else contextlib.ExitStack()
    with sink as stack:
        if not progress:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iface = ISMN_Interface(data, meta_path=meta_path, parallel=False, force_metadata_collection=stale,
                                   temp_root=meta_path / "tmp")
    fpf.write_text(json.dumps(fp))
    return iface


def daily_means(values: pd.Series, min_obs_per_day: int = MIN_OBS_PER_DAY) -> pd.Series:
    """Daily (UTC calendar day) means of a sub-daily series, from days with at least ``min_obs_per_day`` values.

    Parameters
    ----------
    values : pandas.Series
        Sub-daily values (m3 m-3) on a DatetimeIndex; NaN are ignored.
    min_obs_per_day : int
        Minimum count of finite values for a day to get a mean.

    Returns
    -------
    pandas.Series
        Float64 daily means indexed by midnight timestamps (only the days that pass).
    """
    v = values.dropna()
    if v.empty:
        return pd.Series([], dtype="float64", index=pd.DatetimeIndex([], name="time"))
    day = v.index.floor("D")
    g = v.groupby(day)
    out = g.mean()[g.count() >= min_obs_per_day]
    out.index = pd.DatetimeIndex(out.index, name="time")
    return out.astype("float64")


def read_ismn(
    path: str | os.PathLike,
    depth: tuple[float, float] = (0.0, 0.05),
    start=None,
    end=None,
    variable: str = "soil_moisture",
    good_only: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    min_obs_per_day: int = MIN_OBS_PER_DAY,
    return_hourly: bool = False,
):
    """Read ISMN stations and return the selected sensors' daily mean soil moisture.

    Parameters
    ----------
    path : path-like
        ISMN zip archive, or the folder holding ``<NETWORK>/<STATION>/*.stm`` (loose files are staged).
    depth : (float, float)
        Depth range, m below the surface; sensors whose range lies within it are kept.
    start, end : date-like, optional
        Keep hourly values in ``[start, end]`` (inclusive; ``end`` as a date includes that whole day).
    variable : str
        ISMN variable name (``soil_moisture``, m3 m-3).
    good_only : bool
        Keep only values with ISMN quality flag ``G``.
    cache_dir : path-like, optional
        Where to keep the library's metadata scan (and staged loose files). Default: ``python_metadata/`` in
        the data folder when writable, else :func:`default_cache_dir`.
    progress : bool
        Show the library's messages and a tqdm bar over the sensors.
    min_obs_per_day : int
        Minimum number of (good) hourly values for a daily mean (default 12).
    return_hourly : bool
        Also return the hourly records (for diagnostics).

    Returns
    -------
    stations : pandas.DataFrame
        One row per selected sensor, indexed by ``sensor_id`` (``NETWORK/STATION/SENSOR/<from>-<to>m``), columns
        ``network, station, lat, lon`` (degrees), ``elevation`` (m), ``depth_from, depth_to`` (m), ``sensor``,
        ``start, end`` (first/last hourly timestamp of the file), ``n_hourly`` (values used), ``n_daily``
        (days with a mean), ``note`` (why a sensor has no data, empty otherwise). Data files the library
        skipped as malformed are listed with their reason and no data.
    daily : dict
        ``sensor_id -> pandas.Series`` of daily mean soil moisture (m3 m-3, float64, DatetimeIndex ``time``).
    hourly : dict, only with ``return_hourly``
        ``sensor_id -> pandas.DataFrame`` with columns ``value`` (m3 m-3) and ``flag`` (ISMN quality flag),
        every record of the period *before* the flag filter, indexed by UTC time.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    CorruptFileError
        The archive cannot be opened (e.g. a truncated zip).
    EmptyDataError
        The archive holds no ISMN data file at all.
    MissingVariableError
        No sensor of the archive measures ``variable`` (a sensor outside ``depth`` only gives an empty table).
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise MissingFileError("ISMN archive (zip or folder) not found (set data.stations_dir)", file=path,
                               variable=variable)
    cache = Path(cache_dir) if cache_dir is not None else None
    if path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise CorruptFileError(f"is not a readable zip archive ({e})", file=path, variable=variable) from e
        if not any(n.endswith(".stm") for n in names):
            raise EmptyDataError("has no ISMN .stm data file in the archive", file=path, variable=variable)
        data = path
    else:
        if not any(path.rglob("*.stm")):
            raise EmptyDataError("has no ISMN .stm data file in the folder", file=path, variable=variable)
        data = _stage_loose_files(path, cache or default_cache_dir())
    meta_path = _meta_path(data, cache)
    try:
        iface = _open_interface(data, meta_path, progress)
    except (zipfile.BadZipFile, OSError, ValueError, TypeError) as e:
        raise CorruptFileError(f"cannot be scanned by the ismn library ({type(e).__name__}: {e})", file=path,
                               variable=variable) from e

    t0 = pd.Timestamp(start) if start is not None else None
    t1 = pd.Timestamp(end) if end is not None else None
    if t1 is not None and t1 == t1.normalize():
        t1 = t1 + pd.Timedelta("1D") - pd.Timedelta("1ns")
    meta = iface.metadata
    ids = iface.get_dataset_ids(variable, min_depth=depth[0], max_depth=depth[1])
    if not ids:
        found = sorted({str(v) for v in meta[("variable", "val")].dropna()}) if len(meta) else []
        if variable not in found:
            raise MissingVariableError(f"not found in any sensor file (found: {found_list(found)})", file=path,
                                       variable=variable)
        log.warning("%s: no %s sensor within %s-%s m", path, variable, depth[0], depth[1])
    rows, daily, hourly = {}, {}, {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")  # pandas 3 deprecation in ismn 1.5.4
        for idx in tqdm(ids, desc="ISMN sensors", unit="sensor", disable=not progress):
            m = meta.loc[idx]

            def val(name, key="val", m=m):
                return m.get((name, key), np.nan)

            network, station, sensor = str(val("network")), str(val("station")), str(val("instrument"))
            d_from, d_to = float(val("instrument", "depth_from")), float(val("instrument", "depth_to"))
            sid = f"{network}/{station}/{sensor}/{d_from:g}-{d_to:g}m"
            if sid in rows:
                sid = f"{sid}#{idx}"
            row = dict(network=network, station=station, lat=float(val("latitude")), lon=float(val("longitude")),
                       elevation=float(val("elevation")), depth_from=d_from, depth_to=d_to, sensor=sensor,
                       start=pd.Timestamp(val("timerange_from")), end=pd.Timestamp(val("timerange_to")),
                       n_hourly=0, n_daily=0, note="")
            file_path = val("file_path")
            try:
                df = iface.read_ts(idx)
                if variable not in df.columns:
                    raise KeyError(f"column {variable!r} not in {list(df.columns)}")
                rec = pd.DataFrame({"value": pd.to_numeric(df[variable], errors="coerce"),
                                    "flag": df[f"{variable}_flag"].astype(str).str.strip()}).sort_index()
                rec.index.name = "time"
                if t0 is not None:
                    rec = rec[rec.index >= t0]
                if t1 is not None:
                    rec = rec[rec.index <= t1]
                if return_hourly:
                    hourly[sid] = rec
                values = (rec.loc[rec["flag"] == "G", "value"] if good_only else rec["value"]).dropna()
                day = daily_means(values, min_obs_per_day)
                day.name = sid
                day.attrs.update(units="m3 m-3", long_name=f"daily mean {variable} ({d_from:g}-{d_to:g} m)")
                row["n_hourly"], row["n_daily"] = int(values.size), int(day.size)
                if day.empty:
                    row["note"] = ("no good (flag G) values" if good_only else "no values") + \
                        (" in the period" if (t0 is not None or t1 is not None) else "") + \
                        ("" if values.empty else f" on days with >= {min_obs_per_day} hourly values")
                daily[sid] = day
            except Exception as e:  # a bad station must not stop the others
                row["note"] = f"read failed: {file_path}: variable {variable}: {type(e).__name__}: {e}"
                log.warning("ISMN sensor %s: %s", sid, row["note"])
                daily[sid] = pd.Series([], dtype="float64", index=pd.DatetimeIndex([], name="time"), name=sid)
            rows[sid] = row
    for bad in _erroneous_files(meta_path, iface.root.name):
        parsed = _parse_name(Path(bad).name)
        if parsed is None or parsed["variable"] != variable or not \
                (depth[0] - 1e-9 <= parsed["depth_from"] <= parsed["depth_to"] <= depth[1] + 1e-9):
            continue
        sid = f"{parsed['network']}/{parsed['station']}/{parsed['sensor']}/" \
              f"{parsed['depth_from']:g}-{parsed['depth_to']:g}m"
        if sid in rows:
            sid = f"{sid}#skipped"
        rows[sid] = dict(network=parsed["network"], station=parsed["station"], lat=np.nan, lon=np.nan,
                         elevation=np.nan, depth_from=parsed["depth_from"], depth_to=parsed["depth_to"],
                         sensor=parsed["sensor"], start=pd.NaT, end=pd.NaT, n_hourly=0, n_daily=0,
                         note=f"read failed: {bad}: variable {variable}: skipped by the ismn metadata scan "
                              f"(malformed file, see {meta_path / (iface.root.name + '.log')})")
        daily[sid] = pd.Series([], dtype="float64", index=pd.DatetimeIndex([], name="time"), name=sid)
    stations = pd.DataFrame.from_dict(rows, orient="index", columns=STATION_COLUMNS)
    stations.index.name = "sensor_id"
    stations.attrs.update(source=str(path), variable=variable, depth_m=list(depth), good_only=good_only,
                          min_obs_per_day=min_obs_per_day, units="m3 m-3")
    if return_hourly:
        return stations, daily, hourly
    return stations, daily
