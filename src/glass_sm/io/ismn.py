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
4. Values outside the physical range ``valid_range`` are dropped, whatever their flag (default for soil
   moisture :data:`SM_PHYSICAL_RANGE`, 0-1 m3 m-3: a volume fraction cannot leave it; ISMN's own checks C01
   (< 0) and C02 (> 0.6 m3 m-3) flag most such values, but a network's ``G`` is not always right, e.g. 55 in a
   file of m3 m-3). They are counted per sensor in ``n_out_of_range`` and the note says so.
5. Daily means per UTC day, from days with at least ``min_obs_per_day`` hourly values (default 12: half of the
   day observed, so a daily mean is not one morning's value). Days with fewer are dropped.

Nothing is dropped silently: after the read, the archive's files are listed (zip members or folder) and every
``.stm`` file whose *name* matches ``variable`` and ``depth`` ends as one row of the station table, with a
``note`` naming the file when something is wrong; one bad file never stops the read of the others.

- A data file that cannot be read: no data, the note starts ``read failed: <file>: variable <v>:`` and says why
  (empty file, a single line, byte 0x.. at offset .. (line ..) not UTF-8, the parser's error).
- A station the library's scan left out whole, because its ``static_variables.csv`` cannot be parsed (a
  non-UTF-8 byte, an empty or garbled file; the scan then fails outright when no station is left): its data
  files are read directly with the library's file reader; the note names the csv and its fault. The static
  metadata (soil, land cover) is not used here; a station without one gets a note only.
- A file whose header line gives another variable or depth than its name: listed ``not selected``, no data.
- Damaged records inside a file (no number or no flag: a garbled line, the cut last line of a truncated file)
  are skipped and counted in the note.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from glass_sm.io.errors import CorruptFileError, EmptyDataError, MissingFileError, MissingVariableError, found_list

__all__ = ["read_ismn", "read_station_headers", "daily_means", "default_cache_dir", "STATION_COLUMNS",
           "HEADER_COLUMNS", "MIN_OBS_PER_DAY", "SM_PHYSICAL_RANGE"]

log = logging.getLogger(__name__)

#: columns of the station table returned by :func:`read_ismn`
STATION_COLUMNS = ["network", "station", "lat", "lon", "elevation", "depth_from", "depth_to", "sensor", "start",
                   "end", "n_hourly", "n_daily", "note", "n_out_of_range"]
#: columns of the station table returned by :func:`read_station_headers`
HEADER_COLUMNS = ["network", "station", "lat", "lon", "elevation", "depth_from", "depth_to", "first", "last"]
#: default minimum number of hourly values for a daily mean
MIN_OBS_PER_DAY = 12
#: physical range of volumetric soil moisture, m3 m-3: a volume fraction lies in [0, 1]
SM_PHYSICAL_RANGE = (0.0, 1.0)
#: default ``valid_range`` of :func:`read_ismn` per ISMN variable (none for the others)
_PHYSICAL_RANGE = {"soil_moisture": SM_PHYSICAL_RANGE}
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


def _parse_header(line: str) -> dict | None:
    """Station fields of the first line of an ``.stm`` file (either layout), or None when it is not a header."""
    fields = line.split()
    if len(fields) == 15:  # CEOP: date time date time CSE NETWORK STATION lat lon elev from to value flags
        fields = fields[4:12]
    try:  # fewer than 8 fields, or non-numbers where the position and depths belong: not a header
        lat, lon, elevation, depth_from, depth_to = (float(v) for v in fields[3:8])
    except ValueError:
        return None
    return dict(network=fields[1], station=fields[2], lat=lat, lon=lon, elevation=elevation,
                depth_from=depth_from, depth_to=depth_to)


def _within(depth: tuple[float, float], d_from: float, d_to: float) -> bool:
    """The library's depth selection: the sensor's range lies within ``depth`` (m)."""
    return depth[0] - 1e-9 <= d_from <= d_to <= depth[1] + 1e-9


def _meta_path(data: Path, cache_dir: Path | None) -> Path:
    """Where the library keeps its metadata csv for ``data``."""
    if cache_dir is not None:
        return Path(cache_dir) / f"meta-{_key(data)}"
    default = (data.parent if data.is_file() else data) / "python_metadata"
    parent = default if default.exists() else default.parent
    if os.access(parent, os.W_OK):
        return default
    return default_cache_dir() / f"meta-{_key(data)}"


def _archive_name(data: Path) -> str:
    """The library's name for the archive (its metadata csv and log are ``<name>.csv``, ``<name>.log``)."""
    return data.stem if data.is_file() else data.name


def _archive_files(data: Path) -> list[str]:
    """Every file of the archive as a posix path relative to its root (zip members, or files under the folder)."""
    if data.is_file():
        with zipfile.ZipFile(data) as zf:
            return sorted(n for n in zf.namelist() if not n.endswith("/"))
    return sorted(p.relative_to(data).as_posix() for p in data.rglob("*")
                  if "python_metadata" not in p.relative_to(data).parts and not p.is_dir())


def _read_bytes(data: Path, rel: str) -> bytes | None:
    """Raw bytes of an archive file (None when even that fails)."""
    try:
        if data.is_file():
            with zipfile.ZipFile(data) as zf:
                return zf.read(rel)
        return (data / rel).read_bytes()
    except Exception:  # noqa: BLE001 - a damaged member (zlib.error, EOFError, BadZipFile ...): no bytes to show
        return None


def _display(data: Path, rel: str) -> str:
    """A file of the archive as the user knows it (a staged symbolic link shows its target)."""
    p = data / rel
    return str(p.resolve()) if p.is_symlink() else str(p)


def _why(exc: BaseException | None, raw: bytes | None = None, data_file: bool = False) -> str:
    """Why a file could not be read, in one line: what is wrong with its bytes, else the innermost error.

    ``data_file``: ``raw`` is an ``.stm`` file, which needs two lines at least (header or record, record).
    """
    if raw is not None:
        if not raw.strip():
            return "empty file" if not raw else "the file holds only blank space"
        if data_file and len(raw.strip().splitlines()) < 2:
            return "a single line, no data records (a truncated file?)"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as u:
            line = len(raw[:u.start + 1].splitlines())
            return f"byte 0x{raw[u.start]:02x} at offset {u.start} (line {line}) is not UTF-8 text"
    if exc is None:
        return "unknown reason"
    seen = {id(exc)}
    while exc.__context__ is not None and id(exc.__context__) not in seen:  # the library re-raises as IOError
        exc = exc.__context__
        seen.add(id(exc))
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"[:300]


def _scan_log_entries(meta_path: Path, name: str) -> list[str]:
    """Files the library's scan reported as erroneous (its log's summary): data files it skipped, and static
    variables files it could not use (``.../*missing*`` when a station has none)."""
    logf = meta_path / f"{name}.log"
    if not logf.is_file():
        return []
    text = logf.read_text(errors="replace")
    if "Summary: Erroneous Files" not in text:
        return []
    entries = set()
    for block in text.split("Summary: Erroneous Files")[1:]:  # "----- Summary: ... -----", entries, "-----..."
        body = block.split("\n", 1)[1] if "\n" in block else ""
        entries.update(ln.strip() for ln in body.split("\n-----", 1)[0].splitlines() if ln.strip())
    return sorted(entries)


def _open_interface(data: Path, meta_path: Path, progress: bool):
    from ismn.interface import ISMN_Interface  # noqa: PLC0415

    meta_path.mkdir(parents=True, exist_ok=True)
    name = _archive_name(data)
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


def _unreadable_row(rel: str, parsed: dict, raw: bytes | None) -> dict:
    """A station-table row for a data file that could not be read: fields from its name (and header line)."""
    first = raw.lstrip().splitlines()[0].decode("ascii", "replace") if raw and raw.strip() else ""
    head = _parse_header(first) or {}
    return dict(network=_network(rel, parsed), station=parsed["station"], lat=head.get("lat", np.nan),
                lon=head.get("lon", np.nan), elevation=head.get("elevation", np.nan),
                depth_from=parsed["depth_from"], depth_to=parsed["depth_to"], sensor=parsed["sensor"],
                start=pd.NaT, end=pd.NaT, n_hourly=0, n_daily=0, note="", n_out_of_range=0)


def _network(rel: str, parsed: dict) -> str:
    """The network of a data file as the library names it: its top folder (``NETWORK/STATION/file``), else the
    network of its name."""
    return rel.split("/", 1)[0] if rel.count("/") >= 2 else parsed["network"]


def _folder(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _static_notes(entries: list[str], data: Path, files: list[str]) -> dict[str, tuple[str, ...]]:
    """Station folder -> notes on its static variables file, from the scan log's erroneous files.

    The library reports a station without a static variables csv as ``<root>/<station folder>/*missing*`` and
    goes on with placeholder metadata (unused here: the station's data are read all the same).
    """
    folders = sorted({_folder(f) for f in files if "/" in f}, key=len, reverse=True)
    notes: dict[str, list[str]] = {}
    for entry in entries:
        if entry.endswith(".stm"):
            continue  # a data file: it is not in the metadata, read_ismn reads it itself
        inside = entry.removeprefix(str(data)).replace(os.sep, "/")
        folder = next((f for f in folders if f"/{f}/" in inside), None)
        if folder is None:
            continue
        what = ("the station has no static_variables.csv" if entry.endswith("*missing*") else
                f"static variables file not usable: {entry}")
        notes.setdefault(folder, []).append(f"{what} (soil and land-cover metadata, not used here)")
    return {k: tuple(v) for k, v in notes.items()}


def _left_out_reason(root, data: Path, rel: str, files: list[str], temp_root: Path, otherwise: str) -> str:
    """Why the library's scan left out a data file that its file reader reads: its place in the archive, its
    station's static csv, else ``otherwise``."""
    from ismn.filehandlers import StaticMetaFile  # noqa: PLC0415

    if rel.count("/") < 2:
        return "not in a NETWORK/STATION/ folder of the archive, so the ismn metadata scan left it out"
    csvs = [f for f in files if f.endswith(".csv") and _folder(f) == _folder(rel)]
    if csvs:
        try:
            StaticMetaFile(root, csvs[0], load_metadata=True, temp_root=temp_root)
        except Exception as e:  # noqa: BLE001 - the reason goes into the note
            return (f"static variables file {_display(data, csvs[0])} not readable "
                    f"({_why(e, _read_bytes(data, csvs[0]))}), so the ismn metadata scan left the station out")
    return otherwise


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


@dataclass(frozen=True)
class _Selection:
    """What :func:`read_ismn` keeps of a sensor's hourly records."""

    variable: str
    good_only: bool
    t0: pd.Timestamp | None
    t1: pd.Timestamp | None
    min_obs_per_day: int
    valid_range: tuple[float, float] | None


def _empty_daily(sid: str) -> pd.Series:
    return pd.Series([], dtype="float64", index=pd.DatetimeIndex([], name="time"), name=sid)


def _sensor_row(m) -> dict:
    """A station-table row from the library's metadata of one sensor (``(name, key) -> value``)."""
    def val(name, key="val"):
        return m.get((name, key), np.nan)

    return dict(network=str(val("network")), station=str(val("station")), lat=float(val("latitude")),
                lon=float(val("longitude")), elevation=float(val("elevation")),
                depth_from=float(val("instrument", "depth_from")), depth_to=float(val("instrument", "depth_to")),
                sensor=str(val("instrument")), start=pd.Timestamp(val("timerange_from")),
                end=pd.Timestamp(val("timerange_to")), n_hourly=0, n_daily=0, note="", n_out_of_range=0)


def _select_values(df: pd.DataFrame, sel: _Selection, row: dict) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """Hourly records in the period, their daily means and the notes; fills ``row``'s counts.

    ``df`` is the library's reading of a data file (columns ``<variable>``, ``<variable>_flag``).
    """
    v = sel.variable
    if v not in df.columns:
        raise KeyError(f"column {v!r} not in {list(df.columns)}")
    flag = df[f"{v}_flag"]
    rec = pd.DataFrame({"value": pd.to_numeric(df[v], errors="coerce"),
                        "flag": flag.astype(str).str.strip().where(flag.notna(), "")}).sort_index()
    rec.index.name = "time"
    if sel.t0 is not None:
        rec = rec[rec.index >= sel.t0]
    if sel.t1 is not None:
        rec = rec[rec.index <= sel.t1]
    damaged = rec["value"].isna() | (rec["flag"] == "")
    values = (rec.loc[rec["flag"] == "G", "value"] if sel.good_only else rec["value"]).dropna()
    n_out = 0
    if sel.valid_range is not None:
        lo, hi = sel.valid_range
        inside = (values >= lo) & (values <= hi)
        n_out, values = int((~inside).sum()), values[inside]
    day = daily_means(values, sel.min_obs_per_day)
    row.update(n_hourly=int(values.size), n_daily=int(day.size), n_out_of_range=n_out)
    notes = []
    if day.empty:
        notes.append(("no good (flag G) values" if sel.good_only else "no values")
                     + (" within the physical range" if n_out and values.empty else "")
                     + (" in the period" if (sel.t0 is not None or sel.t1 is not None) else "")
                     + ("" if values.empty else f" on days with >= {sel.min_obs_per_day} hourly values"))
    if n_out:
        lo, hi = sel.valid_range
        notes.append(f"{n_out} hourly value(s) outside the physical range [{lo:g}, {hi:g}] dropped")
    if damaged.any():
        notes.append(f"{int(damaged.sum())} damaged record(s) skipped (no number or no flag: a cut or garbled "
                     "line, e.g. a truncated file)")
    return rec, day, notes


def _sensor_id(row: dict) -> str:
    return f"{row['network']}/{row['station']}/{row['sensor']}/{row['depth_from']:g}-{row['depth_to']:g}m"


class _Tables:
    """The station table (rows by sensor id), daily and hourly series of :func:`read_ismn`, one file at a time."""

    def __init__(self, data: Path, sel: _Selection, keep_hourly: bool):
        self.data, self.sel, self.keep_hourly = data, sel, keep_hourly
        self.rows, self.daily, self.hourly = {}, {}, {}
        self.files: set[str] = set()  # the archive's data files that have a row

    def _unique(self, sid: str, tag) -> str:
        return sid if sid not in self.rows else f"{sid}#{tag}"

    def add(self, sid: str, tag, row: dict, read, rel: str, extra=()) -> None:
        """Read the data file ``rel`` (``read()``: the library's DataFrame) as sensor ``sid``; a failure is the
        row's note, never the end of the read. ``tag`` tells apart two sensors of the same id."""
        sid, v = self._unique(sid, tag), self.sel.variable
        try:
            rec, day, notes = _select_values(read(), self.sel, row)
            day.name = sid
            day.attrs.update(units="m3 m-3", long_name=f"daily mean {v} ({row['depth_from']:g}-{row['depth_to']:g} m)")
            if self.keep_hourly:
                self.hourly[sid] = rec
            row["note"] = "; ".join([*notes, *extra])
            self.daily[sid] = day
        except Exception as e:  # a bad file must not stop the others
            raw = _read_bytes(self.data, rel) if isinstance(e, UnicodeDecodeError) else None
            row.update(n_hourly=0, n_daily=0, n_out_of_range=0,
                       note=f"read failed: {_display(self.data, rel)}: variable {v}: {_why(e, raw)}")
            log.warning("ISMN sensor %s: %s", sid, row["note"])
            self.daily[sid] = _empty_daily(sid)
        self.rows[sid] = row
        self.files.add(rel)

    def add_unread(self, sid: str, tag, row: dict, rel: str) -> None:
        """A row without data (``row['note']`` says why)."""
        sid = self._unique(sid, tag)
        log.warning("ISMN sensor %s: %s", sid, row["note"])
        self.rows[sid], self.daily[sid] = row, _empty_daily(sid)
        self.files.add(rel)


def _read_left_out(tables: _Tables, left_out: dict, scanned_meta: dict, files: list[str], temp_root: Path,
                   scan_failure: str) -> None:
    """Rows for the data files named for the variable and depth that the library's selection did not give.

    ``left_out``: archive path -> fields of its name; ``scanned_meta``: archive path -> the scan's metadata of
    the files the scan did see (their header line contradicts their name). The others, which the scan left out,
    are read directly with the library's file reader; what cannot be read is a row with the reason.
    """
    from ismn.base import IsmnRoot  # noqa: PLC0415
    from ismn.filehandlers import DataFile  # noqa: PLC0415

    data, v = tables.data, tables.sel.variable
    reasons: dict[str, str] = {}
    with IsmnRoot(data) as root:
        for rel, parsed in left_out.items():
            if rel in scanned_meta:  # scanned, but its header says another variable or depth than its name
                m = scanned_meta[rel]
                row = _sensor_row(m)
                row["note"] = (f"not selected: {_display(data, rel)}: its header gives {m.get(('variable', 'val'))} "
                               f"at {row['depth_from']:g}-{row['depth_to']:g} m, its name {v} at "
                               f"{parsed['depth_from']:g}-{parsed['depth_to']:g} m")
                tables.add_unread(_sensor_id(row), rel, row, rel)
                continue
            try:
                fh = DataFile(root, rel, temp_root=temp_root)
                row = _sensor_row(fh.metadata.to_pd())
            except Exception as e:  # noqa: BLE001 - the reason goes into the note
                raw = _read_bytes(data, rel)
                row = _unreadable_row(rel, parsed, raw)
                row["note"] = (f"read failed: {_display(data, rel)}: variable {v}: skipped by the ismn metadata "
                               f"scan: {_why(e, raw, data_file=True)}")
                tables.add_unread(_sensor_id(row), rel, row, rel)
                continue
            row["network"] = _network(rel, parsed)
            folder = _folder(rel)
            if folder not in reasons:
                reasons[folder] = _left_out_reason(root, data, rel, files, temp_root, scan_failure or
                                                   "the ismn metadata scan left it out (see its log)")
                log.warning("ISMN station %s: %s", folder, reasons[folder])
            tables.add(_sensor_id(row), rel, row, fh.read_data, rel,
                       (f"{reasons[folder]}; its data file was read directly, without static metadata",))


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
    valid_range: tuple[float, float] | None = None,
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
    valid_range : (float, float), optional
        Physical range ``[low, high]`` (inclusive) of the hourly values, in the variable's units: values outside
        it are dropped before the daily means, whatever their flag, and counted in ``n_out_of_range``. Default:
        :data:`SM_PHYSICAL_RANGE` (0-1 m3 m-3, a volume fraction) for ``soil_moisture``, no check for other
        variables. A tighter bound is e.g. ``(0, 0.6)``, ISMN's own plausibility limit (flags C01, C02; Dorigo
        et al. 2013, Vadose Zone J., doi:10.2136/vzj2012.0097); ``(-inf, inf)`` switches the check off.

    Returns
    -------
    stations : pandas.DataFrame
        One row per selected sensor, indexed by ``sensor_id`` (``NETWORK/STATION/SENSOR/<from>-<to>m``), columns
        :data:`STATION_COLUMNS`: ``network, station, lat, lon`` (degrees), ``elevation`` (m), ``depth_from,
        depth_to`` (m), ``sensor``, ``start, end`` (first/last hourly timestamp of the file), ``n_hourly``
        (values used), ``n_daily`` (days with a mean), ``note`` (why a sensor has no or fewer data, empty
        otherwise; ``read failed: <file>: ...`` when its file could not be read), ``n_out_of_range`` (hourly
        values dropped outside ``valid_range``). Every ``.stm`` file of the archive whose name matches
        ``variable`` and ``depth`` has a row, also when it could not be read (then with the position of its
        header line, or NaN, and no data).
    daily : dict
        ``sensor_id -> pandas.Series`` of daily mean soil moisture (m3 m-3, float64, DatetimeIndex ``time``).
    hourly : dict, only with ``return_hourly``
        ``sensor_id -> pandas.DataFrame`` with columns ``value`` (m3 m-3) and ``flag`` (ISMN quality flag),
        every record of the period *before* the flag and range filters, indexed by UTC time.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    CorruptFileError
        The archive cannot be opened (e.g. a truncated zip), or cannot be scanned and holds no data file named
        for ``variable`` within ``depth``.
    EmptyDataError
        The archive holds no ISMN data file at all.
    MissingVariableError
        No sensor of the archive measures ``variable`` (a sensor outside ``depth`` only gives an empty table).
    ValueError
        ``valid_range`` is not ``(low, high)`` with ``low <= high``.
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
    if valid_range is None:
        valid_range = _PHYSICAL_RANGE.get(variable)
    elif not (len(valid_range) == 2 and float(valid_range[0]) <= float(valid_range[1])):
        raise ValueError(f"valid_range must be (low, high) with low <= high, got {valid_range!r}")
    name, meta_path = _archive_name(data), _meta_path(data, cache)
    files = _archive_files(data)
    # every data file named for the variable within the depth range: each must end as a row
    named = {}
    for rel in files:
        parsed = _parse_name(rel.rsplit("/", 1)[-1])
        if parsed and parsed["variable"] == variable and _within(depth, parsed["depth_from"], parsed["depth_to"]):
            named[rel] = parsed
    scan_failure = ""
    try:
        iface = _open_interface(data, meta_path, progress)
    except (zipfile.BadZipFile, OSError, ValueError, TypeError) as e:
        if not named:
            raise CorruptFileError(f"cannot be scanned by the ismn library ({type(e).__name__}: {e})", file=path,
                                   variable=variable) from e
        iface, scan_failure = None, f"the ismn metadata scan of the archive failed ({type(e).__name__}: {e})"
        log.warning("%s: %s; its %d data file(s) of %s are read one by one", path, scan_failure, len(named),
                    variable)
    meta = iface.metadata if iface is not None else pd.DataFrame()
    ids = iface.get_dataset_ids(variable, min_depth=depth[0], max_depth=depth[1]) if iface is not None else []
    scanned = {str(f): i for i, f in meta[("file_path", "val")].items()} if len(meta) else {}
    if not ids and not any(rel not in scanned for rel in named):
        found = sorted({str(v) for v in meta[("variable", "val")].dropna()}) if len(meta) else []
        if variable not in found:
            raise MissingVariableError(f"not found in any sensor file (found: {found_list(found)})", file=path,
                                       variable=variable)
        log.warning("%s: no %s sensor within %s-%s m", path, variable, depth[0], depth[1])

    t0 = pd.Timestamp(start) if start is not None else None
    t1 = pd.Timestamp(end) if end is not None else None
    if t1 is not None and t1 == t1.normalize():
        t1 = t1 + pd.Timedelta("1D") - pd.Timedelta("1ns")
    tables = _Tables(data, _Selection(variable, good_only, t0, t1, min_obs_per_day, valid_range), return_hourly)
    static_notes = _static_notes(_scan_log_entries(meta_path, name), data, files)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")  # pandas 3 deprecation in ismn 1.5.4
        for idx in tqdm(ids, desc="ISMN sensors", unit="sensor", disable=not progress):
            m = meta.loc[idx]
            row, rel = _sensor_row(m), str(m.get(("file_path", "val")))
            tables.add(_sensor_id(row), idx, row, lambda idx=idx: iface.read_ts(idx), rel,
                       static_notes.get(_folder(rel), ()))
        # the guarantee: every data file named for the variable and depth has a row
        left_out = {rel: parsed for rel, parsed in named.items() if rel not in tables.files}
        if left_out:
            _read_left_out(tables, left_out, {rel: meta.loc[scanned[rel]] for rel in left_out if rel in scanned},
                           files, meta_path / "tmp", scan_failure)
    stations = pd.DataFrame.from_dict(tables.rows, orient="index", columns=STATION_COLUMNS)
    stations.index.name = "sensor_id"
    stations.attrs.update(source=str(path), variable=variable, depth_m=list(depth), good_only=good_only,
                          min_obs_per_day=min_obs_per_day, units="m3 m-3",
                          valid_range=None if valid_range is None else [float(v) for v in valid_range])
    if return_hourly:
        return stations, tables.daily, tables.hourly
    return stations, tables.daily


def read_station_headers(path: str | os.PathLike) -> pd.DataFrame:
    """Station metadata from the first line of each ISMN ``.stm`` file of a folder: no values read, no scan.

    Much faster than :func:`read_ismn` when only the stations' positions are needed (e.g. a map), and it writes
    nothing next to the data. Both layouts are read: *header+values* (the first line is ``CSE NETWORK STATION
    lat lon elevation depth_from depth_to sensor``) and *CEOP separate* (every line starts with two timestamps,
    then the same fields); any line ending. A file whose first line is neither is skipped.

    Parameters
    ----------
    path : path-like
        Folder holding the ``.stm`` files at any depth (``python_metadata/`` caches are ignored).

    Returns
    -------
    pandas.DataFrame
        One row per (network, station), columns :data:`HEADER_COLUMNS`: ``lat``, ``lon`` (degrees),
        ``elevation`` (m), ``depth_from`` (shallowest, m), ``depth_to`` (deepest, m) and ``first``, ``last``
        (the span of the dates in the station's file names, NaT when a name carries none).
    """
    rows = []
    for f in sorted(Path(path).rglob("*.stm")):
        if "python_metadata" in f.parts:
            continue
        with open(f, errors="replace") as fh:
            head = _parse_header(fh.readline())
        if head is None:
            continue
        dates = re.findall(r"_(\d{8})_(\d{8})\.stm$", f.name)
        first, last = (pd.Timestamp(dates[0][0]), pd.Timestamp(dates[0][1])) if dates else (pd.NaT, pd.NaT)
        rows.append(head | {"first": first, "last": last})
    t = pd.DataFrame(rows, columns=HEADER_COLUMNS)
    if t.empty:
        return t
    return (t.groupby(["network", "station"], as_index=False)
             .agg(lat=("lat", "first"), lon=("lon", "first"), elevation=("elevation", "first"),
                  depth_from=("depth_from", "min"), depth_to=("depth_to", "max"), first=("first", "min"),
                  last=("last", "max")))
