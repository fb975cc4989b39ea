"""The twin's files, in the real products' formats (``book/design.md``).

One writer per product: GLASS-like AVHRR albedo composites and daily LST (HDF-EOS2 grids in HDF4,
:func:`write_avhrr`), GLASS-MODIS-like SM
(sinusoidal GeoTIFF, :func:`write_glass_modis`), DEM and texture (GeoTIFF, :func:`write_static`), ERA5-Land-like
swvl1 (legacy CDS netCDF, :func:`write_era5`), ESA-CCI-like SM (netCDF-4, :func:`write_cci`), ISMN-like stations
(``.stm`` + static-variables CSV, :func:`write_stations`) and the hidden truth (CF netCDF, :func:`write_truth`).
The values come from :mod:`glass_sm.twin.sensors`; here they are encoded (scale factors, fill values). Every grid
is the run's resolution r (``domain.resolution``): the HDF-EOS ``StructMetadata.0``, the GeoTIFF transforms and the
netCDF coordinates say so, and the readers infer the grid from them. Cells without soil (sea, ice:
:func:`glass_sm.twin.sensors.soil_mask`) are written as each product's missing value. Every file is written under
a temporary name and renamed (:func:`glass_sm.paths.atomic_write`), and no file records when or where it was
written, so the same parameters give the same bytes. The netCDF writers live in :mod:`glass_sm.twin.netcdf`
(re-exported here).

**Writing in worker processes.** Each writer ``write_<product>`` has a ``submit_<product>`` form that makes every
random draw in the calling process, in the order it always had, and hands the encoding (HDF4, zlib, text) of
batches of files to :class:`glass_sm.twin.jobs.Jobs`; :func:`glass_sm.twin.generate_twin` runs them in
:data:`glass_sm.twin.jobs.WRITE_PROCESSES` worker processes beside its own simulation. ``write_<product>`` runs
the same jobs in the calling process: the bytes do not depend on the number of processes
(``tests/unit/twin/test_twin_jobs.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import rasterio
from pyhdf import hdfext as _hdfext
from pyhdf.SD import SD, SDC
from pyhdf.error import HDF4Error
from rasterio.transform import from_origin
from tqdm import tqdm

from glass_sm.grid import Domain, upsample_repeat
from glass_sm.paths import atomic_write
from glass_sm.twin.geotiff import FastGeoTiff
from glass_sm.twin.jobs import Jobs, resolve
from glass_sm.twin.labels import RetrievalLabels, retrieval_labels
from glass_sm.twin.netcdf import (CCI_FILL, ERA5_FILL, cci_filename, era5_filename, submit_cci, submit_era5,
                                  submit_truth, write_cci, write_era5, write_truth)
from glass_sm.platforms import platform_of
from glass_sm.twin.sensors import (StationSeries, albedo_composites, first_label_day, modis_grid,
                                   glass_modis_draws, glass_modis_image, glass_modis_pixels, simulate_stations,
                                   soil_mask)
from glass_sm.twin.soil import OM_PERCENT

__all__ = ["avhrr_filename", "struct_metadata", "core_metadata", "modis_filename", "era5_filename", "cci_filename",
           "write_avhrr", "submit_avhrr", "write_glass_modis", "submit_glass_modis", "write_static", "write_era5",
           "submit_era5", "write_cci", "submit_cci", "write_stations", "submit_stations", "write_truth", "submit_truth",
           "CCI_FILL", "ERA5_FILL", "HDF4_BATCH", "GEOTIFF_BATCH"]

# ---- file conventions (book/design.md) ---------------------------------------------------------------------
ALBEDO_SDS = ("ABD_BSA_shortwave", "ABD_WSA_shortwave", "ABD_BSA_VIS", "ABD_WSA_VIS", "ABD_BSA_NIR", "ABD_WSA_NIR")
ALBEDO_QC_SDS = ("QC_shortwave", "QC_VIS", "QC_NIR")   #: per-band QC (V04: LIS reads QC_VIS), quality level bits 0-1
ALBEDO_SCALE, ALBEDO_INVALID, LST_SCALE, LST_FILL, QC_FILL = 1e-4, -1, 0.01, 0, 255
ALBEDO_VERSION, LST_VERSION = 4, 40   #: V04 albedo (the version in circulation), V40 LST
ALBEDO_PRODUCTION, LST_PRODUCTION = "2018062", "2021250"   #: fixed production dates in the file names
SINU_PROJ4 = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext"
MODIS_FILL, STATIC_FILL, DEM_FILL = -9999.0, -32768, -9999.0
#: Files per writing job (:mod:`glass_sm.twin.jobs`): HDF4 files (~2 ms each), GeoTIFFs (~6 ms each); large
#: enough that sending a job costs little next to its work, small enough to spread evenly over the workers.
HDF4_BATCH, GEOTIFF_BATCH = 32, 16


# ---- file names --------------------------------------------------------------------------------------------
def avhrr_filename(kind: str, day: pd.Timestamp) -> str:
    """``GLASS02B05.V04.A<YYYY><DDD>.<prod>.hdf`` (albedo composite) or ``GLASS08B31.V40...`` (LST) (book/design.md)."""
    short, version, prod = {"albedo": ("GLASS02B05", ALBEDO_VERSION, ALBEDO_PRODUCTION),
                            "lst": ("GLASS08B31", LST_VERSION, LST_PRODUCTION)}[kind]
    return f"{short}.V{version:02d}.A{day.year:04d}{day.day_of_year:03d}.{prod}.hdf"


def modis_filename(day: pd.Timestamp) -> str:
    """``GLASS_MODIS_SM.A<YYYY><DDD>.tif``."""
    return f"GLASS_MODIS_SM.A{day.year:04d}{day.day_of_year:03d}.tif"


# ---- GLASS-like AVHRR HDF4 ---------------------------------------------------------------------------------
def _hdf_attr(obj, name: str, value, sdc_type) -> None:
    """Set the HDF4 attribute ``name`` of a file or dataset with an explicit SDC type.

    A ``CHAR8`` string goes to ``SDsetattr`` in one block: pyhdf's ``SDAttr.set`` fills its SWIG byte array
    one ``ord`` at a time in Python (~6 ms per file for the ~8 kB of metadata; ~100 s over the demo's files),
    so the same SWIG array is allocated and filled by one ``memmove`` of the string's Latin-1 bytes (what
    ``ord`` gives for every character below 256). The C call, its arguments and so the file's bytes are the
    same (``tests/unit/twin/test_writers_fast.py``).
    """
    if sdc_type == SDC.CHAR8 and isinstance(value, str):
        raw = value.encode("latin-1")
        buf = _hdfext.array_byte(max(len(raw), 1))
        ctypes.memmove(int(buf.this), raw, len(raw))
        obj_id = obj._id
        if _hdfext.SDsetattr(obj_id, name, SDC.CHAR8, len(raw), buf) < 0:
            raise HDF4Error(f"HDF4 attribute {name!r}: SDsetattr failed")
        return
    att = obj.attr(name)
    att.set(sdc_type, value)


@contextlib.contextmanager
def _staging(folder: Path):
    """Work inside ``folder/.staging-<pid>`` (created), restoring the working directory afterwards.

    HDF4 stores the file name given to ``SDstart`` inside the file; creating files by their bare final name
    in a staging folder keeps the bytes independent of the output path, and the rename into place keeps the
    write atomic (same file system). One folder per process (the process id in its name), so that writer
    processes (:mod:`glass_sm.twin.jobs`) never remove a folder another is working in.
    """
    stage = Path(folder) / f".staging-{os.getpid()}"
    stage.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    os.chdir(stage)
    try:
        yield stage
    finally:
        os.chdir(old)
        with contextlib.suppress(OSError):
            stage.rmdir()


_DFNT = {SDC.INT16: "DFNT_INT16", SDC.UINT16: "DFNT_UINT16", SDC.UINT8: "DFNT_UINT8", SDC.INT8: "DFNT_INT8"}


def _dms(deg: float) -> float:
    """Decimal degrees -> the packed degrees ``DDDMMMSSS.SS`` HDF-EOS uses for GCTP_GEO grid corners."""
    sign = -1.0 if deg < 0 else 1.0
    a = round(abs(deg) * 3600.0, 6)          # arc-seconds
    d, rem = divmod(a, 3600.0)
    m, sec = divmod(rem, 60.0)
    return sign * (d * 1e6 + m * 1e3 + round(sec, 2))


def struct_metadata(short: str, fields: list[tuple[str, int]], out: Domain) -> str:
    """A minimal HDF-EOS2 ``StructMetadata.0``: one GCTP_GEO grid named ``short`` covering ``out``.

    ``XDim``/``YDim`` are the domain's columns/rows (7200/3600 for the globe); ``UpperLeftPointMtrs`` and
    ``LowerRightMtrs`` are the outer cell edges in packed degrees (``DDDMMMSSS.SS``), as HDF-EOS writes them for
    the geographic projection (the global grid: ``(-180000000.000000,90000000.000000)`` and
    ``(180000000.000000,-90000000.000000)``); ``fields``: (SDS name, SDC type) in the file's order.
    """
    ul = (_dms(out.west), _dms(out.north))
    lr = (_dms(out.east), _dms(out.south))
    lines = ["GROUP=SwathStructure", "END_GROUP=SwathStructure", "GROUP=GridStructure", "\tGROUP=GRID_1",
             f'\t\tGridName="{short}"', f"\t\tXDim={out.ncols}", f"\t\tYDim={out.nrows}",
             f"\t\tUpperLeftPointMtrs=({ul[0]:.6f},{ul[1]:.6f})", f"\t\tLowerRightMtrs=({lr[0]:.6f},{lr[1]:.6f})",
             "\t\tProjection=GCTP_GEO", "\t\tGridOrigin=HDFE_GD_UL", "\t\tGROUP=Dimension",
             "\t\tEND_GROUP=Dimension", "\t\tGROUP=DataField"]
    for i, (name, typ) in enumerate(fields, 1):
        lines += [f"\t\t\tOBJECT=DataField_{i}", f'\t\t\t\tDataFieldName="{name}"',
                  f"\t\t\t\tDataType={_DFNT[typ]}", '\t\t\t\tDimList=("YDim","XDim")',
                  f"\t\t\tEND_OBJECT=DataField_{i}"]
    lines += ["\t\tEND_GROUP=DataField", "\t\tGROUP=MergedFields", "\t\tEND_GROUP=MergedFields",
              "\tEND_GROUP=GRID_1", "END_GROUP=GridStructure", "GROUP=PointStructure", "END_GROUP=PointStructure",
              "END", ""]
    return "\n".join(lines)


def core_metadata(short: str, version: int, first: pd.Timestamp, last: pd.Timestamp, out: Domain) -> str:
    """A minimal ECS ``CoreMetadata.0`` (ODL): short name, version, period, platform ``NOAA``, columns/rows."""
    def obj(name, value):
        return (f"    OBJECT                 = {name}\n      NUM_VAL              = 1\n"
                f"      VALUE                = {value}\n    END_OBJECT             = {name}\n")
    return ("GROUP                  = INVENTORYMETADATA\n  GROUPTYPE            = MASTERGROUP\n"
            "  GROUP                  = COLLECTIONDESCRIPTIONCLASS\n" + obj("SHORTNAME", f'"{short}"')
            + obj("VERSIONID", str(version)) + "  END_GROUP              = COLLECTIONDESCRIPTIONCLASS\n"
            "  GROUP                  = RANGEDATETIME\n" + obj("RANGEBEGINNINGDATE", f'"{first:%Y-%m-%d}"')
            + obj("RANGEENDINGDATE", f'"{last:%Y-%m-%d}"') + "  END_GROUP              = RANGEDATETIME\n"
            "  GROUP                  = ASSOCIATEDPLATFORMINSTRUMENTSENSOR\n"
            + obj("ASSOCIATEDPLATFORMSHORTNAME", '"NOAA"') + obj("ASSOCIATEDSENSORSHORTNAME", '"AVHRR"')
            + "  END_GROUP              = ASSOCIATEDPLATFORMINSTRUMENTSENSOR\n"
            + obj("DATACOLUMNS", str(out.ncols)) + obj("DATAROWS", str(out.nrows))
            + "END_GROUP              = INVENTORYMETADATA\nEND\n")


def _write_hdf4(path: Path, sds: list[tuple], gattrs: dict, short: str, out: Domain) -> Path:
    """Write one GLASS-like HDF-EOS2 grid file (call inside :func:`_staging`; ``path`` absolute).

    ``sds``: list of (name, array, SDC type, attrs dict, _FillValue or None, valid_range or None); the global
    attribute ``StructMetadata.0`` describes them as the grid ``short`` covering ``out``.
    """
    tmp = Path(path.name)
    if tmp.exists():
        tmp.unlink()
    f = SD(path.name, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        for name, arr, typ, attrs, fill, vrange in sds:
            s = f.create(name, typ, arr.shape)
            s.dim(0).setname(f"YDim:{short}")
            s.dim(1).setname(f"XDim:{short}")
            if fill is not None:
                s.setfillvalue(fill)
            if vrange is not None:
                s.setrange(*vrange)
            for k, v in attrs.items():
                if isinstance(v, str):
                    _hdf_attr(s, k, v, SDC.CHAR8)
                else:
                    _hdf_attr(s, k, float(v), SDC.FLOAT64)
            s[:] = arr
            s.endaccess()
        gattrs = {"StructMetadata.0": struct_metadata(short, [(x[0], x[2]) for x in sds], out), **gattrs}
        for k, v in gattrs.items():
            if isinstance(v, str):
                _hdf_attr(f, k, v, SDC.CHAR8)
            else:
                _hdf_attr(f, k, float(v), SDC.FLOAT64)
    finally:
        f.end()
    os.replace(tmp.resolve(), path)   # the one rename not through atomic_write: the name is inside the file
    return path


def _encode(x: np.ndarray, scale: float, fill: int, lo: int, hi: int, dtype) -> np.ndarray:
    """Physical values -> scaled integers (``round(x / scale)`` clipped to [lo, hi]; NaN -> fill)."""
    q = np.round(np.nan_to_num(x, nan=0.0) / scale)
    return np.where(np.isfinite(x), np.clip(q, lo, hi), fill).astype(dtype)


_ALBEDO_LONG = {"bsa_sw": "black-sky albedo, shortwave (0.3-5.0 um)", "wsa_sw": "white-sky albedo, shortwave",
                "bsa_vis": "black-sky albedo, visible (0.4-0.7 um)", "wsa_vis": "white-sky albedo, visible",
                "bsa_nir": "black-sky albedo, near infrared (0.7-5.0 um)", "wsa_nir": "white-sky albedo, near infrared"}
_ALBEDO_QC_DESC = ("bits 0-1: quality level, 0 good, 1 acceptable, 2 poor (one low-quality clear day), 3 not "
                   "retrieved (no clear day; values -1)")
_LST_QC_DESC = "bit 0: 1 = cloudy/not retrieved; bit 1: 1 = low quality"


def write_avhrr(cfg, avhrr: dict, dates: pd.DatetimeIndex, out: Domain, progress: bool = False) -> dict:
    """Write the GLASS-like albedo composites and daily LST as HDF-EOS2 grid files (book/design.md).

    Albedo: one GLASS02B05 V04 file per composite (:func:`glass_sm.twin.sensors.albedo_composites`: day of year
    1, 9, ..., 361 with ``data.albedo_cadence_days`` = 8; the mean of the window's clear-sky days), six int16
    SDS (-1 invalid, no fill attribute) and the per-band quality levels ``QC_shortwave``/``QC_VIS``/``QC_NIR``.
    LST: one GLASS08B31 V40 file per day, uint16 ``LST`` and the uint8 ``QC``. Both carry ``StructMetadata.0``
    (the grid, named after the short name, covering ``out``) and a minimal ``CoreMetadata.0``; a ``Satellite``
    attribute only with ``twin.avhrr_satellite_attribute``.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.avhrr_dir`` receives ``albedo/<YYYY>/`` and ``lst/<YYYY>/``; ``data.albedo_cadence_days``,
        ``data.albedo_sample_offset_days``, ``twin.avhrr_satellite_attribute``.
    avhrr : dict
        Output of :func:`glass_sm.twin.sensors.simulate_avhrr` (albedo dimensionless, LST K, NaN = not retrieved).
    dates : pandas.DatetimeIndex
    out : Domain
        The domain the arrays cover (the grid of ``StructMetadata.0``).
    progress : bool

    Returns
    -------
    dict
        ``{'albedo': [paths], 'lst': [paths]}``.
    """
    with Jobs(0) as jobs:
        return resolve(submit_avhrr(cfg, avhrr, dates, out, jobs, progress))


def submit_avhrr(cfg, avhrr: dict, dates: pd.DatetimeIndex, out: Domain, jobs: Jobs, progress: bool = False) -> dict:
    """:func:`write_avhrr` as jobs of ``jobs`` (:mod:`glass_sm.twin.jobs`): ``{'albedo': [...], 'lst': [...]}``
    of job handles, each job writing :data:`HDF4_BATCH` files (:func:`glass_sm.twin.jobs.resolve` gives the
    paths). The jobs receive views of ``avhrr``'s arrays (the composites and the encoded LST, computed here):
    keep them unchanged until the jobs are resolved."""
    root = Path(cfg.data.avhrr_dir).resolve()
    comp = albedo_composites(avhrr, dates, cfg.data.albedo_cadence_days, cfg.data.albedo_sample_offset_days)
    satellite = bool(getattr(cfg.twin, "avhrr_satellite_attribute", False))
    cadence = cfg.data.albedo_cadence_days
    lst = _encode(avhrr["lst"], LST_SCALE, LST_FILL, 1, 65535, np.uint16)
    handles = {"albedo": [], "lst": []}
    for kind, days in (("albedo", comp["dates"]), ("lst", dates)):
        for year in sorted(set(days.year)):
            (root / kind / f"{year:04d}").mkdir(parents=True, exist_ok=True)
    items = []
    for i, day in enumerate(tqdm(comp["dates"], desc="AVHRR albedo HDF4", disable=not progress, mininterval=1.0)):
        extra = {"Satellite": str(platform_of([day])[0])} if satellite else {}
        end = day + pd.Timedelta(days=cadence - 1)
        items.append((day, end, {k: comp[k][i] for k in _ALBEDO_LONG}, comp["qc_level"][i], extra))
        if len(items) == HDF4_BATCH or i == len(comp["dates"]) - 1:
            handles["albedo"].append(jobs.submit(_albedo_job, root, out, items))
            items = []
    for t, day in enumerate(tqdm(dates, desc="AVHRR LST HDF4", disable=not progress, mininterval=1.0)):
        extra = {"Satellite": str(avhrr["platform"][t])} if satellite else {}
        items.append((day, lst[t], avhrr["qc_lst"][t], extra))
        if len(items) == HDF4_BATCH or t == len(dates) - 1:
            handles["lst"].append(jobs.submit(_lst_job, root, out, items))
            items = []
    return handles


def _albedo_job(root: Path, out: Domain, items: list) -> list[Path]:
    """Encode and write albedo composites ``(day, end, {band: values}, qc level, extra attributes)``."""
    paths = []
    with _staging(root):
        for day, end, comp, level, extra in items:
            alb = {k: _encode(v, ALBEDO_SCALE, ALBEDO_INVALID, 0, 10000, np.int16) for k, v in comp.items()}
            paths.append(_write_albedo(root, day, end, alb, level, out, extra))
    return paths


def _lst_job(root: Path, out: Domain, items: list) -> list[Path]:
    """Write LST days ``(day, encoded LST, QC, extra attributes)``."""
    with _staging(root):
        return [_write_lst_day(root, day, lst, qc, out, extra) for day, lst, qc, extra in items]


def _write_albedo(root: Path, day: pd.Timestamp, end: pd.Timestamp, alb: dict, level: np.ndarray, out: Domain,
                  extra: dict) -> Path:
    """One GLASS02B05-like composite: six scaled int16 albedo SDS (-1 invalid) and three int16 QC levels."""
    sds = [(name, alb[k], SDC.INT16, {"long_name": _ALBEDO_LONG[k], "units": "dimensionless",
                                      "scale_factor": ALBEDO_SCALE, "add_offset": 0.0}, None, (0, 10000))
           for k, name in zip(_ALBEDO_LONG, ALBEDO_SDS)]
    qc = level.astype(np.int16)
    sds += [(name, qc, SDC.INT16, {"long_name": f"quality control, {name[3:]} band", "description": _ALBEDO_QC_DESC},
             None, None) for name in ALBEDO_QC_SDS]
    path = root / "albedo" / f"{day.year:04d}" / avhrr_filename("albedo", day)
    gattrs = {"CoreMetadata.0": core_metadata("GLASS02B05", ALBEDO_VERSION, day, end, out),
              "Source": "glass-sm synthetic twin", **extra}
    return _write_hdf4(path, sds, gattrs, "GLASS02B05", out)


def _write_lst_day(root: Path, day: pd.Timestamp, lst: np.ndarray, qc: np.ndarray, out: Domain,
                   extra: dict) -> Path:
    """One GLASS08B31-like file: scaled uint16 LST (K) and the QC byte."""
    sds = [("LST", lst, SDC.UINT16, {"long_name": "land surface temperature", "units": "K",
                                     "scale_factor": LST_SCALE, "add_offset": 0.0}, LST_FILL, (15000, 40000)),
           ("QC", qc, SDC.UINT8, {"long_name": "quality control", "description": _LST_QC_DESC}, QC_FILL, None)]
    path = root / "lst" / f"{day.year:04d}" / avhrr_filename("lst", day)
    gattrs = {"CoreMetadata.0": core_metadata("GLASS08B31", 1, day, day, out),   # the real V40 file says VERSIONID 1
              "Source": "glass-sm synthetic twin", **extra}
    return _write_hdf4(path, sds, gattrs, "GLASS08B31", out)


# ---- GLASS-MODIS-like GeoTIFFs -----------------------------------------------------------------------------
def write_glass_modis(cfg, sim: dict, progress: bool = False,
                      retrieval: RetrievalLabels | None = None) -> list[Path]:
    """Daily GLASS-MODIS-like SM GeoTIFFs (sinusoidal, float32, NoData -9999) from ``period.label_start``.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.glass_modis_dir`` receives ``<YYYY>/GLASS_MODIS_SM.A<YYYY><DDD>.tif``; ``twin.modis_pixel_m``;
        ``twin.labels`` chooses how the values are made (:func:`glass_sm.twin.sensors.simulate_glass_modis`).
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool
    retrieval : RetrievalLabels, optional
        The retrieval (``twin.labels: retrieval``); computed by :func:`glass_sm.twin.labels.retrieval_labels`
        when not given.

    Returns
    -------
    list of pathlib.Path
    """
    with Jobs(0) as jobs:
        return resolve(submit_glass_modis(cfg, sim, jobs, progress, retrieval))


def submit_glass_modis(cfg, sim: dict, jobs: Jobs, progress: bool = False,
                       retrieval: RetrievalLabels | None = None) -> list:
    """:func:`write_glass_modis` as jobs of ``jobs`` (:mod:`glass_sm.twin.jobs`), :data:`GEOTIFF_BATCH` days each.

    The random draws (:func:`glass_sm.twin.sensors.glass_modis_draws`) are made here, in day order; a job makes
    its days' images (:func:`glass_sm.twin.sensors.glass_modis_image`) and encodes them. Its arguments are views
    of the labels (keep them until the jobs are resolved) and the day's gaps; the ablation's per-pixel noise is
    bounded (:class:`glass_sm.twin.jobs.Jobs`).
    """
    g, tw = sim["grids"], cfg.twin
    dates = sim["dates"]
    t0 = first_label_day(cfg, dates)
    if t0 >= len(dates):
        return []
    if tw.labels == "retrieval" and retrieval is None:
        retrieval = retrieval_labels(cfg, sim)
    field = retrieval.sm if tw.labels == "retrieval" else None
    transform, width, height, idx = modis_grid(g.out, tw.modis_pixel_m)
    writer = FastGeoTiff(width, height, transform, SINU_PROJ4, MODIS_FILL)
    cell, valid = glass_modis_pixels(sim, idx)
    root = Path(cfg.data.glass_modis_dir)
    for year in sorted(set(dates[t0:].year)):
        (root / f"{year:04d}").mkdir(parents=True, exist_ok=True)
    handles, items = [], []
    n = len(dates) - t0
    for k, (day, value, gap, noise) in enumerate(tqdm(glass_modis_draws(cfg, sim, idx.shape, field), total=n,
                                                      desc="GLASS-MODIS GeoTIFF", disable=not progress,
                                                      mininterval=1.0)):
        items.append((root / f"{day.year:04d}" / modis_filename(day), value, gap, noise))
        if len(items) == GEOTIFF_BATCH or k == n - 1:
            handles.append(jobs.submit(_glass_modis_job, writer, cell, valid, items, bounded=noise is not None))
            items = []
    return handles


def _glass_modis_job(writer: FastGeoTiff, cell: np.ndarray, valid: np.ndarray, items: list) -> list[Path]:
    """Make and write GLASS-MODIS-like images from their draws ``(path, value, gap, noise)``."""
    paths = []
    for path, value, gap, noise in items:
        img = glass_modis_image(value, gap, cell, valid, noise)
        img = np.where(np.isnan(img), MODIS_FILL, img).astype(np.float32)
        paths.append(writer.write(path, img))
    return paths


# ---- static GeoTIFFs ---------------------------------------------------------------------------------------
def write_static(cfg, sim: dict) -> list[Path]:
    """dem.tif (m, float32) and sand/clay/silt.tif (g/kg, int16) on the domain, EPSG:4326.

    Pixels of ``twin.static_resolution`` (dividing r); those of the cells without soil (sea, ice) are NoData, so
    the cube's ``land_mask`` (finite elevation) is 0 there.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.static_dir`` receives the four files.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth` (its fine-grid ``static`` fields).

    Returns
    -------
    list of pathlib.Path
    """
    g, st = sim["grids"], sim["static"]
    f = int(st["fine_factor"])
    rs_, cs_ = g.out_in_sim
    fr = slice(rs_.start * f, rs_.stop * f)
    fc = slice(cs_.start * f, cs_.stop * f)
    res = g.out.res / f
    transform = from_origin(g.out.west, g.out.north, res, res)
    soil = upsample_repeat(soil_mask(st)[rs_, cs_], f)
    root = Path(cfg.data.static_dir)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, key, dtype, nodata, units in (("dem", "dem_fine", "float32", DEM_FILL, "m"),
                                            ("sand", "sand_fine", "int16", STATIC_FILL, "g/kg"),
                                            ("clay", "clay_fine", "int16", STATIC_FILL, "g/kg"),
                                            ("silt", "silt_fine", "int16", STATIC_FILL, "g/kg")):
        a = np.where(soil, st[key][fr, fc], nodata).astype(dtype)
        path = root / f"{name}.tif"
        with atomic_write(path) as tmp, rasterio.open(
                tmp, "w", driver="GTiff", width=a.shape[1], height=a.shape[0], count=1, dtype=dtype,
                crs="EPSG:4326", transform=transform, nodata=nodata, compress="deflate") as dst:
            dst.write(a, 1)
            dst.update_tags(1, units=units, source="glass-sm synthetic twin")
        paths.append(path)
    return paths


# ---- ISMN-like stations ------------------------------------------------------------------------------------
def write_stations(cfg, sim: dict, progress: bool = False,
                   stations: Iterable[StationSeries] | None = None) -> tuple[list[Path], pd.DataFrame]:
    """ISMN 'header+values' station files and static-variables CSVs; returns paths and a station table.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.stations_dir`` receives ``<NETWORK>/<station>/`` (one ``.stm`` file and one static-variables CSV
        each; the network ``TWIN``, or in ``twin.climate: earth`` the ISMN-like network of each station).
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool
    stations : iterable of StationSeries, optional
        The stations; default :func:`glass_sm.twin.sensors.simulate_stations` (pass them when already simulated,
        e.g. for the label retrieval: their stream is their own, so they are the same series).

    Returns
    -------
    paths : list of pathlib.Path
    stations : pandas.DataFrame
        One row per station (:meth:`glass_sm.twin.sensors.StationSeries.table_row`).
    """
    with Jobs(0) as jobs:
        handles, table = submit_stations(cfg, sim, jobs, progress, stations)
        return resolve(handles), table


def submit_stations(cfg, sim: dict, jobs: Jobs, progress: bool = False,
                    stations: Iterable[StationSeries] | None = None) -> tuple[list, pd.DataFrame]:
    """:func:`write_stations` as jobs of ``jobs`` (:mod:`glass_sm.twin.jobs`), one per station; returns the job
    handles and the station table. Stations simulated here are bounded jobs (each holds its hourly series);
    ``stations`` given are in memory anyway."""
    rs_, cs_ = sim["grids"].out_in_sim
    st = sim["static"]
    res = sim["grids"].out.res
    rows, handles = [], []
    series = simulate_stations(cfg, sim) if stations is None else stations
    for s in tqdm(series, total=cfg.twin.n_stations, desc="ISMN stations", disable=not progress):
        folder = Path(cfg.data.stations_dir) / s.network / s.station
        folder.mkdir(parents=True, exist_ok=True)
        r, c = rs_.start + s.row, cs_.start + s.col
        soil = {k: st[k][r, c] for k in ("aridity", "theta_s", "clay", "sand", "silt")}
        handles.append(jobs.submit(_station_job, s, folder, soil, res, bounded=stations is None))
        rows.append(s.table_row())
    return handles, pd.DataFrame(rows)


def _station_job(s: StationSeries, folder: Path, soil: dict, res: float) -> list[Path]:
    """Write one station's ``.stm`` file (the kept hours: date, hour, SM with 4 decimals, flags, ``M``) and its
    static-variables CSV; returns both paths."""
    net = s.network
    ki = np.flatnonzero(s.keep)
    day_str = s.days.strftime("%Y/%m/%d").to_numpy(dtype=str)[ki // 24].tolist()
    hour_str = [f"{h:02d}:00" for h in range(24)]
    header = f"{net} {net} {s.station} {s.lat:.5f} {s.lon:.5f} {s.elevation:.1f} 0.0000 0.0500 '{s.sensor}'"
    body = map("{} {} {:.4f} {} M".format, day_str, [hour_str[h] for h in (ki % 24).tolist()],
               s.hourly[ki].tolist(), s.flags[ki].tolist())
    fn = f"{net}_{net}_{s.station}_sm_0.000000_0.050000_{s.sensor}_{s.start:%Y%m%d}_{s.end:%Y%m%d}.stm"
    path = folder / fn
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join([header, *body]) + "\n")
    return [path, _write_static_csv(folder, net, s.station, soil, res)]


def _write_static_csv(folder: Path, net: str, name: str, soil: dict, res: float) -> Path:
    """ISMN ``<NET>_<NET>_<STATION>_static_variables.csv`` (semicolon separated, as ISMN ships it); the soil
    ``soil`` (``aridity``, ``theta_s``, ``clay``, ``sand``, ``silt``) of the twin's cell of resolution ``res``
    (degrees) holding the station."""
    cols = ("quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
            "quantity_source_description;quantity_source_provider;quantity_source_version;"
            "quantity_source_resolution;quantity_source_timerange;quantity_source_url;")
    src = f"twin;glass-sm synthetic twin soil;glass-sm;1;{res:g}deg;;;"
    ai = float(soil["aridity"])
    climate = ("BSk", "Arid - Steppe - Cold") if ai < 0.5 else ("Dfa", "Cold - Without dry season - Hot Summer")
    lines = [cols,
             f"saturation;m^3*m^-3;0.00;0.30;{soil['theta_s']:.2f};;{src}",
             f"clay fraction;% weight;0.00;0.30;{100 * soil['clay']:.2f};;{src}",
             f"organic carbon;% weight;0.00;0.30;{OM_PERCENT / 1.724:.2f};;{src}",
             f"sand fraction;% weight;0.00;0.30;{100 * soil['sand']:.2f};;{src}",
             f"silt fraction;% weight;0.00;0.30;{100 * soil['silt']:.2f};;{src}",
             "land cover classification;;;;130;Grassland;CCI_landcover_2010;ESA CCI Land Cover "
             "(synthetic value);ESA;2010-v1.6.1;300m;2008-2012;;",
             f"climate classification;;;;{climate[0]};{climate[1]};koeppen_geiger_2007;Koeppen-Geiger Climate "
             "Classification (synthetic value);;Peel2007;0.1deg;;;"]
    path = folder / f"{net}_{net}_{name}_static_variables.csv"
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
