"""Reading one GLASS HDF4 / HDF-EOS2 file: QC layers and their meaning, packing (scale, fill, valid range, with the
products' fallbacks), the grid (attributes or ``StructMetadata.0``), hyperslabs of the domain."""

from __future__ import annotations

import ctypes
import functools
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pyhdf.error import HDF4Error
from pyhdf import hdfext as _hdfext
from pyhdf.SD import SD, SDC

from glass_sm.grid import NCOLS, NROWS, Domain
from glass_sm.io.errors import (
    CorruptFileError,
    DataError,
    GridMismatchError,
    MissingVariableError,
    UnitsPolicy,
    check_units_on_probe,
    check_units_upper_bound,
    fill_attribute,
    found_list,
)
from glass_sm.io.glass_products import *  # noqa: F401,F403
from glass_sm.io.glass_products import _ALIGN_TOL, _GEO_KEYS, _GRID_TOL, _product_key


# ----------------------------------------------------------------------------------------------------------
# QC layers and packing
# ----------------------------------------------------------------------------------------------------------
def qc_layer_candidates(product: str, band: str | None = None,
                        qc_layer: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The QC layer names looked up, in order, for one product (and albedo band).

    Albedo band ``b``: ``QC_<b>``, ``QC_VIS``, ``QC`` (duplicates removed); LST: ``QC``. ``qc_layer`` (a name or
    a list of names) replaces the list.
    """
    if qc_layer is not None:
        return (qc_layer,) if isinstance(qc_layer, str) else tuple(qc_layer)
    if _product_key(product) == "lst":
        return ("QC",)
    names = [f"QC_{band}" if band else None, "QC_VIS", "QC"]
    return tuple(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class Packing:
    """How one SDS's stored integers become physical values, and where each number came from.

    Attributes
    ----------
    scale, offset : float
    scale_source : str
        ``'file'`` (attribute), ``'fallback'`` (:data:`RULES`) or ``'float SDS'`` (scale 1).
    calibrated : bool
        HDF4 calibration convention ``scale * (stored - offset)`` (``calibrated_nt`` attribute).
    fills : tuple
        Stored fill values.
    fill_source : str
        The attribute's name, ``'fallback'`` or ``'none'``.
    valid : (lo, hi)
        Valid stored range (either may be None).
    valid_source : str
        ``'valid_range'``, ``'valid_min/valid_max'``, ``'fallback'`` or ``'none'``.
    negative_invalid : bool
        Negative stored values are invalid (albedo).
    """

    scale: float
    offset: float
    scale_source: str
    calibrated: bool
    fills: tuple
    fill_source: str
    valid: tuple
    valid_source: str
    negative_invalid: bool

    def describe(self) -> str:
        """One line: scale, offset, fill and valid range in force, with their sources."""
        lo, hi = self.valid
        conv = "scale * (stored - offset)" if self.calibrated else "stored * scale + offset"
        fills = ", ".join(str(f) for f in self.fills) if self.fills else "none"
        return (f"{conv}: scale {self.scale:g} ({self.scale_source}), offset {self.offset:g}; fill {fills} "
                f"({self.fill_source}); valid stored range {lo}..{hi} ({self.valid_source})"
                + ("; any negative stored value invalid" if self.negative_invalid else ""))


def _scalar(v):
    return np.ravel(v)[0] if v is not None and np.size(v) else None


def sds_packing(attrs: dict, dtype, rules: ProductRules) -> Packing:
    """The :class:`Packing` in force for an SDS with attributes ``attrs`` and stored type ``dtype``.

    Attributes present in the file win; absent ones take the product's fallbacks (integer SDS only).
    """
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    if "scale_factor" in attrs:
        scale, src = float(_scalar(attrs["scale_factor"])), "file"
    elif integer:
        scale, src = rules.scale, "fallback"
    else:
        scale, src = 1.0, "float SDS"
    if "add_offset" in attrs:
        offset = float(_scalar(attrs["add_offset"]))
    else:
        offset = rules.offset if integer else 0.0
    name, fills = fill_attribute(attrs)
    if name is not None:
        fill_source = name
    elif integer and rules.fill_stored:
        fills, fill_source = list(rules.fill_stored), "fallback"
    else:
        fills, fill_source = [], "none"
    vr = attrs.get("valid_range")
    if vr is not None and np.size(vr) >= 2:
        lo, hi = (np.ravel(vr)[:2].tolist())
        vsrc = "valid_range"
    elif "valid_min" in attrs or "valid_max" in attrs:
        lo, hi = _scalar(attrs.get("valid_min")), _scalar(attrs.get("valid_max"))
        lo, hi = (None if lo is None else lo.item() if hasattr(lo, "item") else lo,
                  None if hi is None else hi.item() if hasattr(hi, "item") else hi)
        vsrc = "valid_min/valid_max"
    elif integer and rules.valid_stored is not None:
        (lo, hi), vsrc = rules.valid_stored, "fallback"
    else:
        lo, hi, vsrc = None, None, "none"
    return Packing(scale, offset, src, "calibrated_nt" in attrs, tuple(fills), fill_source, (lo, hi), vsrc,
                   rules.negative_invalid)


def _unpack(stored: np.ndarray, packing: Packing) -> np.ndarray:
    """Stored values -> float32 physical values, fill / invalid as NaN.

    ``physical = float32(stored * scale + offset)`` (calibrated: ``float32((stored - offset) * scale)``), each
    operation in float64, in place in one float64 buffer."""
    stored = np.asarray(stored)
    bad = np.zeros(stored.shape, bool)
    for f in packing.fills:
        bad |= stored == f
    lo, hi = packing.valid
    if lo is not None:
        bad |= stored < lo
    if hi is not None:
        bad |= stored > hi
    if packing.negative_invalid:
        bad |= stored < 0
    if not np.issubdtype(stored.dtype, np.integer):
        bad |= ~np.isfinite(stored)
    work = stored.astype(np.float64)
    if packing.calibrated:  # HDF4 SDsetcal convention
        work -= packing.offset
        work *= packing.scale
    else:
        work *= packing.scale
        work += packing.offset
    out = work.astype(np.float32)
    out[bad] = np.nan
    return out


def _qc_bad(stored: np.ndarray, attrs: dict, rules: ProductRules, keep) -> np.ndarray:
    """True where the QC layer says: do not use (``keep``: max level for 'level', mask bits for 'bits').

    The bits of an integer layer are tested in its own type (the low bits of a two's-complement integer are
    the same in int64); another type is converted to int64 first."""
    stored = np.asarray(stored)
    q = stored if np.issubdtype(stored.dtype, np.integer) else stored.astype(np.int64)
    if rules.qc_kind == "level":
        bad = np.bitwise_and(q, QC_LEVEL_BITS) > keep
    else:
        bad = np.bitwise_and(q, keep) != 0
    _, fills = fill_attribute(attrs)
    for f in fills:
        bad |= stored == f
    return bad


def _qc_keep(rules: ProductRules, qc: str):
    table = ALBEDO_QC_POLICIES if rules.qc_kind == "level" else LST_QC_POLICIES
    if qc not in table:
        raise ValueError(f"qc for {rules.short} must be one of {list(table)}, got {qc!r}")
    keep = table[qc]
    return None if keep is None or (rules.qc_kind == "bits" and keep == 0) else keep


# ----------------------------------------------------------------------------------------------------------
# the file's grid
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FileGrid:
    north: float  # upper edge, degrees
    west: float  # left edge, degrees
    res: float  # degrees
    nrows: int
    ncols: int
    source: str  # how the grid was known, for messages

    def describe(self) -> str:
        south = self.north - self.nrows * self.res
        east = self.west + self.ncols * self.res
        return (f"{self.nrows} x {self.ncols} cells of {self.res:g} deg, lat {south:.3f}..{self.north:.3f}, "
                f"lon {self.west:.3f}..{east:.3f} ({self.source})")


def _dms_to_deg(v: float) -> float:
    """HDF-EOS packed degrees ``DDDMMMSSS.SS`` -> decimal degrees."""
    sign = -1.0 if v < 0 else 1.0
    a = abs(v)
    d = math.floor(a / 1e6)
    m = math.floor((a - d * 1e6) / 1e3)
    s = a - d * 1e6 - m * 1e3
    return sign * (d + m / 60.0 + s / 3600.0)


_PAIR = r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)"


def parse_struct_metadata(text: str) -> list[dict]:
    """The grids of an HDF-EOS2 ``StructMetadata.0`` text.

    Returns
    -------
    list of dict
        One per ``GROUP=GRID_<n>``: ``name``, ``xdim``, ``ydim``, ``projection`` and, when present,
        ``upper_left`` / ``lower_right`` as (lon, lat) in decimal degrees (packed ``DDDMMMSSS.SS`` converted;
        plain degrees kept when all four numbers are within +-360), ``fields`` (data field names).
    """
    grids = []
    for m in re.finditer(r"GROUP=(GRID_\d+)(.*?)END_GROUP=\1", text, re.DOTALL):
        body = m.group(2)

        def get(key, body=body):
            mm = re.search(rf"^\s*{key}\s*=\s*(.+?)\s*$", body, re.MULTILINE)
            return mm.group(1).strip().strip('"') if mm else None

        g = {"name": get("GridName"), "projection": get("Projection"), "xdim": None, "ydim": None}
        for k in ("xdim", "ydim"):
            v = get("XDim" if k == "xdim" else "YDim")
            g[k] = int(float(v)) if v is not None else None
        corners = []
        for key in ("UpperLeftPointMtrs", "LowerRightMtrs"):
            mm = re.search(rf"{key}\s*=\s*{_PAIR}", body)
            corners.append((float(mm.group(1)), float(mm.group(2))) if mm else None)
        if all(c is not None for c in corners):
            plain = all(abs(x) <= 360.0 for c in corners for x in c)
            conv = (lambda x: x) if plain else _dms_to_deg
            g["upper_left"] = tuple(conv(x) for x in corners[0])
            g["lower_right"] = tuple(conv(x) for x in corners[1])
        g["fields"] = re.findall(r'DataFieldName\s*=\s*"?([^"\n]+?)"?\s*$', body, re.MULTILINE)
        grids.append(g)
    return grids


@functools.lru_cache(maxsize=64)
def _parsed_struct_metadata(text: str) -> tuple:
    """:func:`parse_struct_metadata` remembered per process by the text (every file of a product carries the same
    ``StructMetadata.0``; parsing it is ~0.2 ms a file). The grids are read, never modified, by the caller."""
    return tuple(parse_struct_metadata(text))


def _struct_metadata(gattrs: dict) -> str | None:
    parts = sorted((k for k in gattrs if str(k).startswith("StructMetadata.") and
                    re.fullmatch(r"StructMetadata\.\d+", str(k))),
                   key=lambda k: int(str(k).split(".")[1]))
    if not parts:
        return None
    return "".join(str(gattrs[k]) for k in parts)


def _file_grid(gattrs: dict, shape: Sequence[int], path: str, var: str, short: str | None = None) -> _FileGrid:
    nrows, ncols = int(shape[0]), int(shape[1])
    present = [k for k in _GEO_KEYS if k in gattrs]
    if present and len(present) < 3:
        missing = [k for k in _GEO_KEYS if k not in gattrs]
        raise GridMismatchError(f"has geolocation attribute(s) {found_list(present)} but not {found_list(missing)}: "
                                "cannot place the sub-tile", file=path, variable=var)
    if present:
        try:
            north, west, res = (float(np.ravel(gattrs[k])[0]) for k in _GEO_KEYS)
        except (TypeError, ValueError) as e:
            raise GridMismatchError(f"has unreadable geolocation attributes ({e})", file=path, variable=var) from None
        return _FileGrid(north, west, res, nrows, ncols, "UpperLeftLatitude/UpperLeftLongitude/GridResolution")
    text = _struct_metadata(gattrs)
    key = (text, nrows, ncols, short)  # all the grid depends on from here (an error names the file: not kept)
    grid = _GRIDS.get(key)
    if grid is None:
        grid = _grid_from_metadata(text, nrows, ncols, path, var, short)
        if len(_GRIDS) < 256:
            _GRIDS[key] = grid
    return grid


#: (StructMetadata text, rows, columns, short name) -> the grid :func:`_file_grid` found (every file of a product
#: carries the same text: ~5 us a file saved)
_GRIDS: dict = {}


def _grid_from_metadata(text: str | None, nrows: int, ncols: int, path: str, var: str,
                        short: str | None) -> _FileGrid:
    """:func:`_file_grid` of a file without geolocation attributes: its ``StructMetadata.0`` grid, else global."""
    if text is not None:
        grids = [g for g in _parsed_struct_metadata(text) if "upper_left" in g]
        g = next((g for g in grids if short and g["name"] == short), None)
        g = g or next((g for g in grids if (g["ydim"], g["xdim"]) == (nrows, ncols)), None)
        if g is not None:
            where = f"StructMetadata.0 grid {g['name']!r}"
            if g["projection"] not in (None, "GCTP_GEO"):
                raise GridMismatchError(f"{where} has projection {g['projection']}; only GCTP_GEO (lat/lon) is "
                                        "supported", file=path, variable=var)
            if (g["ydim"], g["xdim"]) != (nrows, ncols):
                raise GridMismatchError(f"has shape {nrows} x {ncols} but {where} is YDim {g['ydim']} x XDim "
                                        f"{g['xdim']}", file=path, variable=var)
            (w, n), (e, s) = g["upper_left"], g["lower_right"]
            rx, ry = (e - w) / ncols, (n - s) / nrows
            if abs(rx - ry) > _GRID_TOL or rx <= 0:
                raise GridMismatchError(f"{where} has cells of {rx:g} x {ry:g} deg (lon x lat): not a square "
                                        "north-up grid", file=path, variable=var)
            return _FileGrid(n, w, rx, nrows, ncols, where)
    res = 180.0 / nrows
    if abs(ncols * res - 360.0) > 1e-6:
        raise GridMismatchError(f"has no UpperLeftLatitude/UpperLeftLongitude/GridResolution attributes nor a "
                                f"usable StructMetadata.0, so it should be a global grid ({NROWS} x {NCOLS}), but "
                                f"its shape is {nrows} x {ncols}", file=path, variable=var)
    return _FileGrid(90.0, -180.0, res, nrows, ncols, "global grid, no geolocation attributes")


def _hyperslab(grid: _FileGrid, domain: Domain, path: str, var: str) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of ``domain`` in the file's grid."""
    if abs(grid.res - domain.res) > _GRID_TOL:
        raise GridMismatchError(f"is on a {grid.res:g} deg grid but the domain needs {domain.res:g} deg "
                                f"(file grid: {grid.describe()})", file=path, variable=var)
    r0f = (grid.north - domain.north) / grid.res
    c0f = (domain.west - grid.west) / grid.res
    if abs(r0f - round(r0f)) > _ALIGN_TOL or abs(c0f - round(c0f)) > _ALIGN_TOL:
        raise GridMismatchError(f"grid is not aligned with the domain's cells (offset {r0f:.3f} rows, {c0f:.3f} "
                                f"columns; file grid: {grid.describe()})", file=path, variable=var)
    r0, c0 = int(round(r0f)), int(round(c0f))
    r1, c1 = r0 + domain.nrows, c0 + domain.ncols
    if r0 < 0 or c0 < 0 or r1 > grid.nrows or c1 > grid.ncols:
        raise GridMismatchError(f"does not cover the domain {domain.bounds_str()} (file grid: {grid.describe()})",
                                file=path, variable=var)
    return r0, r1, c0, c1


# ----------------------------------------------------------------------------------------------------------
# one file
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _FileRead:
    arrays: list  # one float32 array per requested SDS, QC and plausibility applied
    satellite: str  # '' when the file has no 'Satellite' attribute
    qc_used: list  # per SDS: the QC layer applied, or None
    no_qc: bool  # QC was wanted and no candidate layer exists
    implausible: list  # per SDS: number of values masked as implausible
    packing: list = field(default_factory=list)


#: numeric HDF4 attribute types -> the numpy type of the values pyhdf's ``SDAttr.get`` returns (its SWIG arrays)
_ATTR_DTYPES = {SDC.INT8: np.dtype(np.int8), SDC.UCHAR8: np.dtype(np.uint8), SDC.UINT8: np.dtype(np.uint8),
                SDC.INT16: np.dtype(np.int16), SDC.UINT16: np.dtype(np.uint16), SDC.INT32: np.dtype(np.int32),
                SDC.UINT32: np.dtype(np.uint32), SDC.FLOAT32: np.dtype(np.float32),
                SDC.FLOAT64: np.dtype(np.float64)}


def hdf_attributes(obj, natts: int | None = None) -> dict:
    """The attributes of an SD file or SDS as pyhdf's ``obj.attributes()`` returns them, read faster.

    pyhdf converts a string (``CHAR8``) attribute to ``str`` one byte at a time in Python (``_array_to_str``):
    ~4 ms for a GLASS file's global attributes, whose ``StructMetadata.0`` and ``CoreMetadata.0`` run to
    thousands of characters, i.e. most of the cost of reading a small file. Here the ``CHAR8`` buffer filled by
    the same C call (``SDreadattr``) is copied in one ``ctypes.string_at`` and decoded as Latin-1, which maps
    each byte to the character ``chr(byte)`` as pyhdf does, so the result is identical (tested against
    ``attributes()``). A numeric attribute is read by the same call into a byte buffer and converted by numpy
    (``tolist``: the Python ints / floats pyhdf's typed SWIG arrays return; one value: a scalar, else a list), each
    attribute's name, type and count asked once (``SDattrinfo``; pyhdf asks three times). An empty numeric
    attribute goes through pyhdf's own ``get``. Any failure of the fast path falls back to ``obj.attributes()``.
    ``natts``: the number of attributes when the caller knows it (asked from the object otherwise).
    """
    try:
        oid = obj._id
        if natts is None:
            natts = obj.info()[1] if isinstance(obj, SD) else obj.info()[4]
        infos = []
        for n in range(natts):
            status, name, kind, count = _hdfext.SDattrinfo(oid, n)
            if status == -1:
                raise HDF4Error(f"SDattrinfo failed on attribute {n}")
            infos.append((name, kind, count))
        # one byte buffer, as large as the largest attribute, filled by each SDreadattr in turn
        size = max([max(count, 1) * (_ATTR_DTYPES[kind].itemsize if kind in _ATTR_DTYPES else 1)
                    for _, kind, count in infos] or [1])
        buf = _hdfext.array_byte(size)
        ptr = int(buf.this)
        out = {}
        for n, (name, kind, count) in enumerate(infos):
            if kind == SDC.CHAR8:
                if _hdfext.SDreadattr(oid, n, buf) == -1:
                    raise HDF4Error(f"SDreadattr failed on attribute {name!r}")
                out[name] = ctypes.string_at(ptr, count).decode("latin-1") if count else ""
            elif count > 0 and kind in _ATTR_DTYPES:
                dt = _ATTR_DTYPES[kind]
                if _hdfext.SDreadattr(oid, n, buf) == -1:
                    raise HDF4Error(f"SDreadattr failed on attribute {name!r}")
                vals = np.frombuffer(ctypes.string_at(ptr, count * dt.itemsize), dt).tolist()
                out[name] = vals[0] if count == 1 else vals
            else:
                out[name] = obj.attr(n).get()
        return out
    except (HDF4Error, TypeError, ValueError, AttributeError):
        return obj.attributes()


#: SDS types pyhdf's ``SDS.get`` reads (``SDC.equivNumericTypes``)
_READ_TYPES = frozenset(SDC.equivNumericTypes)


def _sds_table(sd: SD) -> dict:
    """Name -> (shape, type, number of attributes) of every SDS of the file: the keys (same order) and shapes of
    ``sd.datasets()`` with its C calls (``SDselect``, ``SDgetinfo``, ``SDgetdimid``, ``SDdiminfo``) and none of
    its Python objects (~3 us an SDS instead of ~15). A name held by several SDS has the last one's shape, as in
    ``sd.datasets()``, and type and count None (``sd.select(name)`` may open another). Any failed call falls back
    to ``sd.datasets()``, which then raises its own error."""
    try:
        status, nds, _ = _hdfext.SDfileinfo(sd._id)
        if status == -1:
            raise HDF4Error("SDfileinfo")
        out = {}
        buf = _hdfext.array_int32(_hdfext.H4_MAX_VAR_DIMS)
        ptr = int(buf.this)
        for n in range(nds):
            sid = _hdfext.SDselect(sd._id, n)
            if sid is None or sid < 0:
                raise HDF4Error("SDselect")
            try:
                status, name, rank, kind, natts = _hdfext.SDgetinfo(sid, buf)
                if status == -1:
                    raise HDF4Error("SDgetinfo")
                for k in range(rank):
                    did = _hdfext.SDgetdimid(sid, k)
                    if did is None or did < 0 or _hdfext.SDdiminfo(did)[0] == -1:
                        raise HDF4Error("SDgetdimid / SDdiminfo")
                shape = struct.unpack(f"={rank}i", ctypes.string_at(ptr, 4 * rank))  # the int32 dimension sizes
                out[name] = (shape, None, None) if name in out else (shape, kind, natts)
            finally:
                _hdfext.SDendaccess(sid)
        return out
    except (HDF4Error, TypeError, ValueError, AttributeError):
        return {k: (v[1], None, None) for k, v in sd.datasets().items()}


def _open(path: str) -> SD:
    try:
        return SD(path, SDC.READ)
    except HDF4Error as e:
        size = os.path.getsize(path) if os.path.exists(path) else None
        raise CorruptFileError(f"cannot be opened as HDF4 ({e}; {size} bytes): truncated or not an HDF4 file",
                               file=path) from None


def _read_slab(sd: SD, available: dict, name: str, gattrs: dict, domain: Domain, path: str, short: str,
               window, grids: dict):
    """The domain's slab of SDS ``name``: (its rows and columns, its attributes, the stored values). ``grids``:
    the file's (grid, slab) by SDS shape, filled here (both depend on the global attributes, the shape and the
    domain only)."""
    shape, kind, natts = available[name]
    if len(shape) != 2:
        raise GridMismatchError(f"has {len(shape)} dimensions {tuple(shape)}; expected 2 (rows, columns)",
                                file=path, variable=name)
    hit = grids.get(tuple(shape))
    if hit is None:
        grid = _file_grid(gattrs, shape, path, name, short)
        slab = _hyperslab(grid, domain, path, name)
        grids[tuple(shape)] = (grid, slab)
    else:  # the same grid and domain: the same slab (the first SDS of that shape passed the checks)
        slab = hit[1]
    if window is not None and slab != window:
        raise GridMismatchError(f"has shape {tuple(shape)} unlike the other SDS of the file", file=path,
                                variable=name)
    r0, r1, c0, c1 = slab
    sds = sd.select(name)
    try:
        attrs = hdf_attributes(sds, natts)
        stored = None
        if kind in _READ_TYPES:  # pyhdf's SDS.get without its Python checks (the slab is inside the shape)
            try:
                stored = _hdfext._SDreaddata_0(sds._id, kind, [r0, c0], [r1 - r0, c1 - c0], [1, 1])
            except Exception:  # noqa: BLE001 - pyhdf's own path below answers, or raises its own error
                stored = None
        if stored is None:
            stored = sds[r0:r1, c0:c1]
        stored = np.asarray(stored)
    finally:
        sds.endaccess()
    return slab, attrs, stored


def _read_file(path: str, sds_names: Sequence[str], qc_names: Sequence[tuple[str, ...]], domain: Domain,
               rules: ProductRules, keep, units_policy: UnitsPolicy) -> _FileRead:
    """Read the domain's slice of each SDS of one file, with QC (``keep`` None: no QC) and plausibility."""
    sd = _open(path)
    try:
        gattrs = hdf_attributes(sd)
        available = _sds_table(sd)
        window, grids = None, {}
        values, packs = [], []
        for name in sds_names:
            if name not in available:
                raise MissingVariableError(f"not found (found: {found_list(available)})", file=path, variable=name)
            window, attrs, stored = _read_slab(sd, available, name, gattrs, domain, path, rules.short, window,
                                               grids)
            pack = sds_packing(attrs, stored.dtype, rules)
            v = _unpack(stored, pack)
            # both units checks decided on their one statistic, computed once (errors.units_probe)
            v, probe = check_units_on_probe(v, attrs, rules.units, path, name, policy=units_policy)
            check_units_upper_bound(probe, rules.units, path, name,
                                    how=f"scale_factor {pack.scale:g} ({pack.scale_source})")
            values.append(np.asarray(v, dtype=np.float32))
            packs.append(pack)
        qc_used, no_qc, cache = [], False, {}
        if keep is not None:
            for v, cands in zip(values, qc_names):
                layer = next((c for c in cands if c in available), None)
                qc_used.append(layer)
                if layer is None:
                    no_qc = True
                    continue
                if layer not in cache:
                    window, attrs, stored = _read_slab(sd, available, layer, gattrs, domain, path, rules.short,
                                                       window, grids)
                    cache[layer] = _qc_bad(stored, attrs, rules, keep)
                v[cache[layer]] = np.nan
        else:
            qc_used = [None] * len(values)
        lo, hi = rules.plausible
        implausible = []
        for v in values:
            with np.errstate(invalid="ignore"):
                out = np.less(v, lo)
                out |= np.greater(v, hi)
            n_out = int(np.count_nonzero(out))
            implausible.append(n_out)
            if n_out:
                v[out] = np.nan
        sat = gattrs.get("Satellite")
        sat = str(sat).strip() if sat is not None else ""
        return _FileRead(values, sat, qc_used, no_qc, implausible, packs)
    except DataError:
        raise
    except HDF4Error as e:
        raise CorruptFileError(f"cannot be read ({e}): truncated or damaged HDF4 file", file=path) from None
    finally:
        try:
            sd.end()
        except HDF4Error:  # pragma: no cover - closing a damaged file
            pass
