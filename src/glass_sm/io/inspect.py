"""What the GLASS AVHRR readers will see in one file: ``python -m glass_sm.io.inspect FILE [FILE ...]``.

Run it on one real file before pointing ``params/global.yaml`` at an archive: it prints the SDS (names, HDF4
types, shapes, attributes), the global attributes (``StructMetadata.0`` grids and the ECS ``CoreMetadata.0``
fields summarised), the grid the reader will place the file on, the scale / fill / valid range in force for each
data SDS and where each comes from (the file or the product's fallback of :data:`glass_sm.io.glass_avhrr.RULES`),
the QC layer found for each data SDS and how it will be interpreted, the cadence inferred from the file name
(and whether the date is on the product's schedule) and the platform (the file's ``Satellite`` attribute or
:func:`glass_sm.platforms.platform_of`). Unless ``--no-values``, it also reads each data SDS whole and prints
what the unpacking makes of it (valid fraction, physical quartiles, values outside the plausible range) and the
histogram of each QC layer; nothing is written.

Everything is computed with the readers' own functions (:mod:`glass_sm.io.glass_avhrr`), so what it prints is
what :func:`~glass_sm.io.glass_avhrr.read_glass_albedo` / :func:`~glass_sm.io.glass_avhrr.read_glass_lst` will
do, not a second opinion.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from pyhdf.error import HDF4Error
from pyhdf.SD import SD, SDC

from glass_sm.io import glass_avhrr as ga
from glass_sm.io import glass_hdf
from glass_sm.io.errors import DataError, check_units
from glass_sm.platforms import platform_of

__all__ = ["describe_file", "format_report", "main"]

_SDC_NAMES = {getattr(SDC, n): n for n in ("CHAR8", "UCHAR8", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32",
                                           "FLOAT32", "FLOAT64")}
_CORE_KEYS = ("SHORTNAME", "VERSIONID", "RANGEBEGINNINGDATE", "RANGEENDINGDATE", "ASSOCIATEDPLATFORMSHORTNAME",
              "ASSOCIATEDSENSORSHORTNAME", "DATACOLUMNS", "DATAROWS")
_QC_TEXT = {
    "level": "bits 0-1 = quality level (0 good, 1 acceptable; 2, 3 undocumented, taken as worse); default "
             "qc='acceptable' keeps level <= 1",
    "bits": "ASSUMED bit 0 = cloudy / not retrieved, bit 1 = low quality (the real meaning is undocumented); "
            "default qc='cloud' masks bit 0",
}


def _short(v, limit: int = 100) -> str:
    if isinstance(v, str):
        one = v.strip().splitlines()[0] if v.strip() else ""
        more = f" ... ({len(v)} characters)" if len(v) > len(one) or len(one) > limit else ""
        return repr(one[:limit]) + more
    a = np.ravel(v)
    text = ", ".join(str(x) for x in a[:8].tolist()) + (" ..." if a.size > 8 else "")
    return text


def _core(text: str) -> dict:
    out = {}
    for key in _CORE_KEYS:
        m = re.search(rf"OBJECT\s*=\s*{key}\b.*?VALUE\s*=\s*(.+?)\s*$", text, re.DOTALL | re.MULTILINE)
        if m:
            out[key] = m.group(1).strip().strip('"')
    return out


def _data_sds(product: str | None, names) -> list[str]:
    if product == "albedo":
        return [n for n in names if n.startswith("ABD_")]
    if product == "lst":
        return [n for n in names if n == "LST"] or [n for n in names if n.upper().startswith("LST")]
    return []


def describe_file(path, values: bool = True) -> dict:
    """Everything :func:`format_report` prints, as a dict (see the module docstring).

    Parameters
    ----------
    path : path-like
        One GLASS AVHRR HDF4 file.
    values : bool
        Read each data SDS and QC layer whole and summarise them.

    Returns
    -------
    dict
        ``file``, ``name`` (parsed file name or None), ``product``, ``cadence``, ``global_attributes``,
        ``struct_grids``, ``core``, ``grid``, ``sds`` (name -> type, shape, attributes), ``data`` (per data SDS:
        packing, units, QC layer and its interpretation, value summary), ``qc_layers`` (histograms), ``platform``.
    """
    path = Path(path)
    info = ga.parse_glass_filename(path.name)
    product = info["product"] if info else None
    out: dict = {"file": str(path), "name": info, "product": product}
    if product is not None:
        c = ga.CADENCE_DAYS[product]
        day = info["date"]
        on = day is not None and (day.day_of_year - 1) % c == 0
        out["cadence"] = {"days": c, "on_schedule": on,
                          "text": (f"{c}-day {'composites' if c > 1 else 'files (daily)'}; day of year "
                                   f"{day.day_of_year if day is not None else '?'} is "
                                   f"{'on' if on else 'NOT on'} the schedule (1, {1 + c}, ...)"
                                   + ("" if on else ": the readers ignore this file unless cadence_days=1"))}
    sd = SD(str(path), SDC.READ)
    try:
        gattrs = sd.attributes()
        datasets = sd.datasets()
        out["global_attributes"] = {k: _short(v) for k, v in gattrs.items()}
        sm = glass_hdf._struct_metadata(gattrs)
        out["struct_grids"] = ga.parse_struct_metadata(sm) if sm else []
        core = "".join(str(v) for k, v in gattrs.items() if str(k).lower().startswith("coremetadata"))
        out["core"] = _core(core) if core else {}
        sds = {}
        for name, (dims, shape, typ, _idx) in datasets.items():
            s = sd.select(name)
            try:
                attrs = s.attributes()
            finally:
                s.endaccess()
            sds[name] = {"type": _SDC_NAMES.get(typ, str(typ)), "shape": tuple(shape), "dims": tuple(dims),
                         "attributes": attrs}
        out["sds"] = sds
        data = _data_sds(product, sds)
        rules = ga.RULES.get(product) if product else None
        out["grid"] = None
        first2d = next((n for n in data + list(sds) if len(sds[n]["shape"]) == 2), None)
        if first2d is not None:
            try:
                out["grid"] = glass_hdf._file_grid(gattrs, sds[first2d]["shape"], str(path), first2d,
                                            rules.short if rules else None).describe()
            except DataError as e:
                out["grid"] = f"ERROR: {e}"
        out["data"], out["qc_layers"] = {}, {}
        for name in data:
            entry = {}
            a = sds[name]["attributes"]
            dtype = _numpy_type(sds[name]["type"])
            pack = ga.sds_packing(a, dtype, rules)
            entry["packing"] = pack.describe()
            entry["units"] = a.get("units", f"(none: read as {rules.units!r})")
            band = name.split("_", 2)[2] if product == "albedo" and name.count("_") >= 2 else None
            cands = ga.qc_layer_candidates(product, band)
            found = next((q for q in cands if q in sds), None)
            entry["qc_candidates"] = cands
            entry["qc_layer"] = found
            entry["qc_meaning"] = (_QC_TEXT[rules.qc_kind] if found else
                                   "NO QC layer: read unmasked, with one warning per read call")
            if values:
                entry["values"] = _summary(sd, name, pack, a, rules, str(path))
            out["data"][name] = entry
            if values and found and found not in out["qc_layers"]:
                out["qc_layers"][found] = _qc_hist(sd, found, rules)
        sat = gattrs.get("Satellite")
        if sat:
            out["platform"] = f"{str(sat).strip()} (file attribute 'Satellite')"
        elif info and info["date"] is not None:
            p = platform_of([info["date"]])[0] or "none (before the AVHRR record)"
            out["platform"] = f"{p} (glass_sm.platforms.platform_of of the file date; no 'Satellite' attribute)"
        else:
            out["platform"] = "unknown (no 'Satellite' attribute, no date in the name)"
    finally:
        sd.end()
    return out


def _numpy_type(name: str):
    return {"CHAR8": np.int8, "UCHAR8": np.uint8, "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
            "UINT16": np.uint16, "INT32": np.int32, "UINT32": np.uint32, "FLOAT32": np.float32,
            "FLOAT64": np.float64}.get(name, np.float64)


def _summary(sd, name, pack, attrs, rules, path) -> str:
    s = sd.select(name)
    try:
        stored = np.asarray(s.get())
    finally:
        s.endaccess()
    v = glass_hdf._unpack(stored, pack)
    try:
        v = check_units(v, attrs, rules.units, path, name)
    except DataError as e:
        return f"UNITS ERROR: {e}"
    ok = np.isfinite(v)
    lo, hi = rules.plausible
    with np.errstate(invalid="ignore"):
        bad = ok & ((v < lo) | (v > hi))
    text = f"stored {stored.min()}..{stored.max()}; valid {ok.mean():.1%} of {v.size} cells"
    if ok.any():
        q = np.percentile(v[ok], [0, 25, 50, 75, 100])
        text += "; physical min/q1/median/q3/max " + " / ".join(f"{x:.4g}" for x in q)
        text += f"; {int(bad.sum())} outside the plausible {lo:g}..{hi:g} (masked)"
    return text


def _qc_hist(sd, name, rules) -> str:
    s = sd.select(name)
    try:
        q = np.asarray(s.get()).astype(np.int64)
    finally:
        s.endaccess()
    if rules.qc_kind == "level":
        lv, n = np.unique(q & ga.QC_LEVEL_BITS, return_counts=True)
        return "level " + ", ".join(f"{a}: {b / q.size:.1%}" for a, b in zip(lv, n))
    vals, n = np.unique(q, return_counts=True)
    top = sorted(zip(n, vals), reverse=True)[:8]
    return "values " + ", ".join(f"{v}: {c / q.size:.1%}" for c, v in top)


def format_report(d: dict) -> str:
    """The text printed for one file (from :func:`describe_file`)."""
    lines = [f"== {d['file']}"]
    info = d["name"]
    if info is None:
        lines.append("name: not a GLASS file name (<SHORT>.V<vv>.A<YYYY><DDD>.<YYYYDDD>.hdf): the readers will not "
                     "find it")
    else:
        day = info["date"].date() if info["date"] is not None else "invalid day of year"
        lines.append(f"name: {info['short']} ({info['product'] or 'not a product these readers read'}), version "
                     f"V{info['version']:02d}, date {day}, production {info['production']}")
    if "cadence" in d:
        lines.append(f"cadence: {d['cadence']['text']}")
    lines.append(f"platform: {d['platform']}")
    lines.append(f"grid (as the reader places it): {d['grid']}")
    lines.append("global attributes:")
    lines += [f"  {k} = {v}" for k, v in d["global_attributes"].items()] or ["  (none)"]
    for g in d["struct_grids"]:
        lines.append(f"  StructMetadata.0 grid {g['name']!r}: XDim {g['xdim']} x YDim {g['ydim']}, {g['projection']}, "
                     f"upper left {g.get('upper_left')}, lower right {g.get('lower_right')} (lon, lat deg), "
                     f"fields {', '.join(g['fields'])}")
    if d["core"]:
        lines.append("  CoreMetadata.0: " + ", ".join(f"{k} = {v}" for k, v in d["core"].items()))
    lines.append("SDS:")
    for name, s in d["sds"].items():
        lines.append(f"  {name}: {s['type']} {s['shape']} dims {', '.join(s['dims'])}")
        for k, v in s["attributes"].items():
            lines.append(f"      {k} = {_short(v)}")
    if d["data"]:
        lines.append("what the reader does with each data SDS:")
    for name, e in d["data"].items():
        lines.append(f"  {name}:")
        lines.append(f"      unpacking: {e['packing']}")
        lines.append(f"      units attribute: {e['units']}")
        qc = e["qc_layer"] or "none found"
        lines.append(f"      QC layer: {qc} (looked for {', '.join(e['qc_candidates'])}): {e['qc_meaning']}")
        if "values" in e:
            lines.append(f"      values: {e['values']}")
    for name, h in d.get("qc_layers", {}).items():
        lines.append(f"QC {name}: {h}")
    if d["product"] is None:
        lines.append("(no reader rules applied: the name is not GLASS02B05 / GLASS08B31)")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line: print :func:`format_report` for each file; exit status 1 if a file could not be read."""
    p = argparse.ArgumentParser(prog="python -m glass_sm.io.inspect", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="GLASS AVHRR HDF4 file(s)")
    p.add_argument("--no-values", action="store_true", help="do not read the data (attributes only)")
    args = p.parse_args(argv)
    status = 0
    for f in args.files:
        try:
            print(format_report(describe_file(f, values=not args.no_values)))
        except (HDF4Error, OSError, DataError) as e:
            print(f"== {f}\nERROR: cannot be read as HDF4 ({e})")
            status = 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
