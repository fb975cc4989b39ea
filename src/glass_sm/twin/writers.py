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
written, so the same parameters give the same bytes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import rasterio
from pyhdf.SD import SD, SDC
from rasterio.transform import from_origin
from tqdm import tqdm

from glass_sm.grid import Domain, upsample_repeat
from glass_sm.paths import atomic_write
from glass_sm.twin.geotiff import FastGeoTiff
from glass_sm.twin.grids import TWIN_VERSION
from glass_sm.twin.labels import RetrievalLabels, retrieval_labels
from glass_sm.platforms import platform_of
from glass_sm.twin.sensors import (FROZEN_AIR_T, albedo_composites, first_label_day, modis_grid,
                                   simulate_cci, simulate_era5, simulate_glass_modis, simulate_stations, soil_mask)
from glass_sm.twin.soil import OM_PERCENT

__all__ = ["avhrr_filename", "struct_metadata", "core_metadata", "modis_filename", "era5_filename", "cci_filename",
           "write_avhrr",
           "write_glass_modis", "write_static", "write_era5", "write_cci", "write_stations", "write_truth"]

# ---- file conventions (book/design.md) ---------------------------------------------------------------------
ALBEDO_SDS = ("ABD_BSA_shortwave", "ABD_WSA_shortwave", "ABD_BSA_VIS", "ABD_WSA_VIS", "ABD_BSA_NIR", "ABD_WSA_NIR")
ALBEDO_QC_SDS = ("QC_shortwave", "QC_VIS", "QC_NIR")   #: per-band QC (V04: LIS reads QC_VIS), quality level bits 0-1
ALBEDO_SCALE, ALBEDO_INVALID, LST_SCALE, LST_FILL, QC_FILL = 1e-4, -1, 0.01, 0, 255
ALBEDO_VERSION, LST_VERSION = 4, 40   #: V04 albedo (the version in circulation), V40 LST
ALBEDO_PRODUCTION, LST_PRODUCTION = "2018062", "2021250"   #: fixed production dates in the file names
SINU_PROJ4 = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext"
MODIS_FILL, STATIC_FILL, DEM_FILL, CCI_FILL, ERA5_FILL = -9999.0, -32768, -9999.0, -9999.0, -32767


# ---- file names --------------------------------------------------------------------------------------------
def avhrr_filename(kind: str, day: pd.Timestamp) -> str:
    """``GLASS02B05.V04.A<YYYY><DDD>.<prod>.hdf`` (albedo composite) or ``GLASS08B31.V40...`` (LST) (book/design.md)."""
    short, version, prod = {"albedo": ("GLASS02B05", ALBEDO_VERSION, ALBEDO_PRODUCTION),
                            "lst": ("GLASS08B31", LST_VERSION, LST_PRODUCTION)}[kind]
    return f"{short}.V{version:02d}.A{day.year:04d}{day.day_of_year:03d}.{prod}.hdf"


def modis_filename(day: pd.Timestamp) -> str:
    """``GLASS_MODIS_SM.A<YYYY><DDD>.tif``."""
    return f"GLASS_MODIS_SM.A{day.year:04d}{day.day_of_year:03d}.tif"


def era5_filename(year: int) -> str:
    """``era5land_swvl1_<YYYY>.nc``."""
    return f"era5land_swvl1_{year:04d}.nc"


def cci_filename(year: int) -> str:
    """``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYY>-fv08.1.nc`` (one file per year: a twin deviation)."""
    return f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{year:04d}-fv08.1.nc"


# ---- GLASS-like AVHRR HDF4 ---------------------------------------------------------------------------------
def _hdf_attr(obj, name: str, value, sdc_type) -> None:
    """Set the HDF4 attribute ``name`` of a file or dataset with an explicit SDC type."""
    att = obj.attr(name)
    att.set(sdc_type, value)


@contextlib.contextmanager
def _staging(folder: Path):
    """Work inside ``folder/.staging`` (created), restoring the working directory afterwards.

    HDF4 stores the file name given to ``SDstart`` inside the file; creating files by their bare final name
    in a staging folder keeps the bytes independent of the output path, and the rename into place keeps the
    write atomic (same file system).
    """
    stage = Path(folder) / ".staging"
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
    root = Path(cfg.data.avhrr_dir).resolve()
    comp = albedo_composites(avhrr, dates, cfg.data.albedo_cadence_days, cfg.data.albedo_sample_offset_days)
    satellite = bool(getattr(cfg.twin, "avhrr_satellite_attribute", False))
    cadence = cfg.data.albedo_cadence_days
    lst = _encode(avhrr["lst"], LST_SCALE, LST_FILL, 1, 65535, np.uint16)
    written = {"albedo": [], "lst": []}
    for kind, days in (("albedo", comp["dates"]), ("lst", dates)):
        for year in sorted(set(days.year)):
            (root / kind / f"{year:04d}").mkdir(parents=True, exist_ok=True)
    with _staging(root):
        for i, day in enumerate(tqdm(comp["dates"], desc="AVHRR albedo HDF4", disable=not progress,
                                     mininterval=1.0)):
            alb = {k: _encode(comp[k][i], ALBEDO_SCALE, ALBEDO_INVALID, 0, 10000, np.int16) for k in _ALBEDO_LONG}
            extra = {"Satellite": str(platform_of([day])[0])} if satellite else {}
            end = day + pd.Timedelta(days=cadence - 1)
            written["albedo"].append(_write_albedo(root, day, end, alb, comp["qc_level"][i], out, extra))
        for t, day in enumerate(tqdm(dates, desc="AVHRR LST HDF4", disable=not progress, mininterval=1.0)):
            extra = {"Satellite": str(avhrr["platform"][t])} if satellite else {}
            written["lst"].append(_write_lst_day(root, day, lst[t], avhrr["qc_lst"][t], out, extra))
    return written


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
    root = Path(cfg.data.glass_modis_dir)
    for year in sorted(set(dates[t0:].year)):
        (root / f"{year:04d}").mkdir(parents=True, exist_ok=True)
    paths = []
    for day, img in tqdm(simulate_glass_modis(cfg, sim, idx, field), total=len(dates) - t0, desc="GLASS-MODIS GeoTIFF",
                         disable=not progress, mininterval=1.0):
        img = np.where(np.isnan(img), MODIS_FILL, img).astype(np.float32)
        paths.append(writer.write(root / f"{day.year:04d}" / modis_filename(day), img))
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


# ---- ERA5-Land-like netCDF ---------------------------------------------------------------------------------
def _pack_int16(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """grib_to_netcdf-style packing: offset = mid-range, scale = range / 65532 (fill -32767 kept free)."""
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    scale = (hi - lo) / 65532.0 if hi > lo else 1e-6
    offset = 0.5 * (hi + lo)
    q = np.round((x - offset) / scale)
    return np.where(np.isfinite(x), q, ERA5_FILL).astype(np.int16), scale, offset


def write_era5(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """ERA5-Land-like swvl1, legacy CDS netCDF (NETCDF3 64-bit offset, int16 packed), one file per year.

    The daily values of :func:`glass_sm.twin.sensors.simulate_era5` (placed at 12 UTC) are written 6-hourly
    (00, 06, 12, 18 UTC) by linear interpolation.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.era5land_dir`` receives ``era5land_swvl1_<YYYY>.nc``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool

    Returns
    -------
    list of pathlib.Path
    """
    g = sim["grids"]
    daily = simulate_era5(sim).astype(np.float64)
    dates = sim["dates"]
    root = Path(cfg.data.era5land_dir)
    root.mkdir(parents=True, exist_ok=True)
    prev = np.concatenate([daily[:1], daily[:-1]])
    nxt = np.concatenate([daily[1:], daily[-1:]])
    steps = np.stack([0.5 * (prev + daily), 0.75 * daily + 0.25 * prev, daily, 0.75 * daily + 0.25 * nxt], 1)
    base = pd.Timestamp("1900-01-01")
    paths = []
    for year in tqdm(sorted(set(dates.year)), desc="ERA5-Land netCDF", disable=not progress):
        sel = np.flatnonzero(dates.year == year)
        data = steps[sel].reshape(-1, *daily.shape[1:])
        hours = ((dates[sel] - base) / pd.Timedelta(hours=1)).values.astype(np.int64)
        hours = (hours[:, None] + np.array([0, 6, 12, 18])[None]).ravel().astype(np.int32)
        packed, scale, offset = _pack_int16(data)
        path = root / era5_filename(year)
        with atomic_write(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF3_64BIT_OFFSET") as nc:
            nc.createDimension("longitude", daily.shape[2])
            nc.createDimension("latitude", daily.shape[1])
            nc.createDimension("time", None)
            v = nc.createVariable("longitude", "f4", ("longitude",))
            v.units, v.long_name = "degrees_east", "longitude"
            v[:] = g.era5_lon
            v = nc.createVariable("latitude", "f4", ("latitude",))
            v.units, v.long_name = "degrees_north", "latitude"
            v[:] = g.era5_lat
            v = nc.createVariable("time", "i4", ("time",))
            v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:0.0", "time", "gregorian"
            v[:] = hours
            v = nc.createVariable("swvl1", "i2", ("time", "latitude", "longitude"), fill_value=ERA5_FILL)
            v.set_auto_maskandscale(False)
            v.scale_factor, v.add_offset = scale, offset
            v.missing_value = np.int16(ERA5_FILL)
            v.units, v.long_name = "m**3 m**-3", "Volumetric soil water layer 1"
            v[:] = packed
            nc.Conventions = "CF-1.6"
            nc.history = ("glass-sm synthetic twin, written in the legacy CDS layout of "
                          "grib_to_netcdf-2.6.0 (no timestamp, for reproducible bytes)")
        paths.append(path)
    return paths


# ---- ESA-CCI-like netCDF -----------------------------------------------------------------------------------
def write_cci(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """ESA-CCI-like combined SM, one netCDF per year, on the CCI cells touching the domain.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.esa_cci_dir`` receives ``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYY>-fv08.1.nc``.
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool

    Returns
    -------
    list of pathlib.Path
    """
    g = sim["grids"]
    sm = simulate_cci(cfg, sim)
    sm = np.where(np.isnan(sm), CCI_FILL, sm).astype(np.float32)
    dates = sim["dates"]
    root = Path(cfg.data.esa_cci_dir)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for year in tqdm(sorted(set(dates.year)), desc="ESA-CCI netCDF", disable=not progress):
        sel = np.flatnonzero(dates.year == year)
        path = root / cci_filename(year)
        with atomic_write(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4_CLASSIC") as nc:
            nc.createDimension("time", None)
            nc.createDimension("lat", g.cci.nrows)
            nc.createDimension("lon", g.cci.ncols)
            v = nc.createVariable("time", "f8", ("time",))
            v.units, v.calendar, v.standard_name = "days since 1970-01-01 00:00:00 UTC", "standard", "time"
            v[:] = ((dates[sel] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).values
            for name, vals, std, units in (("lat", g.cci.lat, "latitude", "degrees_north"),
                                           ("lon", g.cci.lon, "longitude", "degrees_east")):
                v = nc.createVariable(name, "f4", (name,))
                v.standard_name, v.units = std, units
                v[:] = vals
            v = nc.createVariable("sm", "f4", ("time", "lat", "lon"), fill_value=np.float32(CCI_FILL),
                                  zlib=True, complevel=4, chunksizes=(1, g.cci.nrows, g.cci.ncols))
            v.long_name, v.units = "Volumetric Soil Moisture", "m3 m-3"
            v.standard_name = "volume_fraction_of_condensed_water_in_soil"
            v.valid_range = np.array([0.0, 1.0], np.float32)
            v.set_auto_mask(False)
            v[:] = sm[sel]
            nc.title = "ESA CCI Surface Soil Moisture Product (COMBINED), synthetic-twin imitation"
            nc.source = "glass-sm synthetic twin"
            nc.product_version = "08.1"
            nc.Conventions = "CF-1.8"
            nc.comment = ("One file per year (real CCI: one per day). Truth at 0.25 deg x per-cell scale "
                          "error + noise; sparser and noisier before 2007; frozen days masked.")
        paths.append(path)
    return paths


# ---- ISMN-like stations ------------------------------------------------------------------------------------
def write_stations(cfg, sim: dict, progress: bool = False) -> tuple[list[Path], pd.DataFrame]:
    """ISMN 'header+values' station files and static-variables CSVs; returns paths and a station table.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.stations_dir`` receives ``<NETWORK>/<station>/`` (one ``.stm`` file and one static-variables CSV
        each; the network ``TWIN``, or in ``twin.climate: earth`` the ISMN-like network of each station).
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    progress : bool

    Returns
    -------
    paths : list of pathlib.Path
    stations : pandas.DataFrame
        One row per station (:meth:`glass_sm.twin.sensors.StationSeries.table_row`).
    """
    rs_, cs_ = sim["grids"].out_in_sim
    st = sim["static"]
    res = sim["grids"].out.res
    hour_str = np.array([f"{h:02d}:00" for h in range(24)])
    rows, paths = [], []
    for s in tqdm(simulate_stations(cfg, sim), total=cfg.twin.n_stations, desc="ISMN stations",
                  disable=not progress):
        n = len(s.days)
        day_str = np.repeat(s.days.strftime("%Y/%m/%d").to_numpy(dtype=str), 24)
        hs = np.tile(hour_str, n)
        ki = np.flatnonzero(s.keep)
        net = s.network
        header = f"{net} {net} {s.station} {s.lat:.5f} {s.lon:.5f} {s.elevation:.1f} 0.0000 0.0500 '{s.sensor}'"
        lines = [header] + [f"{day_str[j]} {hs[j]} {s.hourly[j]:.4f} {s.flags[j]} M" for j in ki]
        folder = Path(cfg.data.stations_dir) / net / s.station
        folder.mkdir(parents=True, exist_ok=True)
        fn = f"{net}_{net}_{s.station}_sm_0.000000_0.050000_{s.sensor}_{s.start:%Y%m%d}_{s.end:%Y%m%d}.stm"
        path = folder / fn
        with atomic_write(path) as tmp:
            tmp.write_text("\n".join(lines) + "\n")
        paths.append(path)
        paths.append(_write_static_csv(folder, net, s.station, st, rs_.start + s.row, cs_.start + s.col, res))
        rows.append(s.table_row())
    return paths, pd.DataFrame(rows)


def _write_static_csv(folder: Path, net: str, name: str, st: dict, r: int, c: int, res: float) -> Path:
    """ISMN ``<NET>_<NET>_<STATION>_static_variables.csv`` (semicolon separated, as ISMN ships it); the soil of the
    twin's cell of resolution ``res`` (degrees) holding the station."""
    cols = ("quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
            "quantity_source_description;quantity_source_provider;quantity_source_version;"
            "quantity_source_resolution;quantity_source_timerange;quantity_source_url;")
    src = f"twin;glass-sm synthetic twin soil;glass-sm;1;{res:g}deg;;;"
    ai = float(st["aridity"][r, c])
    climate = ("BSk", "Arid - Steppe - Cold") if ai < 0.5 else ("Dfa", "Cold - Without dry season - Hot Summer")
    lines = [cols,
             f"saturation;m^3*m^-3;0.00;0.30;{st['theta_s'][r, c]:.2f};;{src}",
             f"clay fraction;% weight;0.00;0.30;{100 * st['clay'][r, c]:.2f};;{src}",
             f"organic carbon;% weight;0.00;0.30;{OM_PERCENT / 1.724:.2f};;{src}",
             f"sand fraction;% weight;0.00;0.30;{100 * st['sand'][r, c]:.2f};;{src}",
             f"silt fraction;% weight;0.00;0.30;{100 * st['silt'][r, c]:.2f};;{src}",
             "land cover classification;;;;130;Grassland;CCI_landcover_2010;ESA CCI Land Cover "
             "(synthetic value);ESA;2010-v1.6.1;300m;2008-2012;;",
             f"climate classification;;;;{climate[0]};{climate[1]};koeppen_geiger_2007;Koeppen-Geiger Climate "
             "Classification (synthetic value);;Peel2007;0.1deg;;;"]
    path = folder / f"{net}_{net}_{name}_static_variables.csv"
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


# ---- truth ---------------------------------------------------------------------------------------------
def write_truth(cfg, sim: dict, stations: pd.DataFrame, path: Path) -> Path:
    """``truth.nc``: the hidden true SM and the twin's soil, climate and station parameters (CF-1.8).

    ``sm_true`` is NaN on the cells without soil (sea, ice; ``land`` and ``ice`` say which); ``frozen`` flags the
    cell-days whose daily-mean air temperature is below 0 degC (surface liquid soil moisture undefined, as the
    real products flag or mask them).

    Parameters
    ----------
    cfg : glass_sm.config.Config
    sim : dict
        :func:`glass_sm.twin.truth.simulate_truth`.
    stations : pandas.DataFrame
        The station table of :func:`write_stations`.
    path : pathlib.Path
        Output file (``data.truth_path``).

    Returns
    -------
    pathlib.Path
    """
    g = sim["grids"]
    rs_, cs_ = g.out_in_sim
    out, dates = g.out, sim["dates"]
    st, w = sim["static"], sim["weather"]
    chunks = (min(365, len(dates)), out.nrows, out.ncols)
    soil = soil_mask(st)
    land = np.broadcast_to(np.asarray(st.get("land", True), bool), soil.shape)
    ice = np.broadcast_to(np.asarray(st.get("ice", False), bool), soil.shape)
    with atomic_write(path) as tmp, netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", len(dates))
        nc.createDimension("lat", out.nrows)
        nc.createDimension("lon", out.ncols)
        nc.createDimension("station", len(stations))
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.calendar, v.standard_name = f"days since {dates[0]:%Y-%m-%d}", "proleptic_gregorian", "time"
        v[:] = np.arange(len(dates))
        for name, vals, std, units, axis in (("lat", out.lat, "latitude", "degrees_north", "Y"),
                                             ("lon", out.lon, "longitude", "degrees_east", "X")):
            v = nc.createVariable(name, "f8", (name,))
            v.standard_name, v.long_name, v.units, v.axis = std, std, units, axis
            v[:] = vals

        def var3(name, data, units, long_name, std=None, digits=None, mask=None):
            v = nc.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1, shuffle=True,
                                  chunksizes=chunks)
            v.units, v.long_name = units, long_name
            if std:
                v.standard_name = std
            d = data[:, rs_, cs_]
            if mask is not None:
                d = np.where(mask[None], d, np.nan)
            v[:] = np.round(d, digits) if digits is not None else d

        var3("sm_true", sim["theta"], "m3 m-3", "true volumetric soil moisture, 0-5 cm (NaN over sea and ice)",
             "volume_fraction_of_condensed_water_in_soil", mask=soil[rs_, cs_])
        var3("precipitation", w["precip"], "kg m-2", "daily precipitation", "precipitation_amount", 2)
        var3("t_air", w["t_air"], "K", "daily mean air temperature", "air_temperature", 2)
        var3("pet", w["pet"], "kg m-2", "daily potential evapotranspiration (Hargreaves)",
             "water_potential_evaporation_amount", 2)
        var3("f_veg", sim["f_veg"], "1", "fractional vegetation cover", "vegetation_area_fraction", 3)
        v = nc.createVariable("frozen", "i1", ("time", "lat", "lon"), zlib=True, complevel=1, fill_value=np.int8(-1),
                              chunksizes=chunks)
        v.long_name = "frozen day: daily-mean air temperature below 0 degC (surface liquid soil moisture undefined)"
        v.flag_values = np.array([0, 1], np.int8)
        v.flag_meanings = "not_frozen frozen"
        v.comment = f"t_air < {FROZEN_AIR_T} K; fill where t_air is undefined"
        ta = w["t_air"][:, rs_, cs_]
        with np.errstate(invalid="ignore"):
            v[:] = np.where(np.isfinite(ta), ta < FROZEN_AIR_T, -1).astype(np.int8)
        for name, mask, meaning in (("land", land, "sea land"), ("ice", ice, "no_ice permanent_ice")):
            v = nc.createVariable(name, "i1", ("lat", "lon"))
            v.long_name = {"land": "land (Natural Earth land mask; all land in twin.climate: gradient)",
                           "ice": "permanent ice sheet (land without soil: no soil moisture)"}[name]
            v.flag_values = np.array([0, 1], np.int8)
            v.flag_meanings = meaning
            v[:] = mask[rs_, cs_].astype(np.int8)

        for name, data, units, long_name in (
            ("theta_r", st["theta_r"], "m3 m-3", "residual water content (Rawls & Brakensiek 1985)"),
            ("theta_wp", st["theta_wp"], "m3 m-3", "wilting point, -1500 kPa (Saxton & Rawls 2006)"),
            ("theta_fc", st["theta_fc"], "m3 m-3", "field capacity, -33 kPa (Saxton & Rawls 2006)"),
            ("theta_s", st["theta_s"], "m3 m-3", "saturation (Saxton & Rawls 2006)"),
            ("ksat", st["ksat"], "mm h-1", "saturated hydraulic conductivity (Saxton & Rawls 2006)"),
            ("elevation", st["elevation"], "m", "mean elevation of the cell"),
            ("sand", st["sand"], "1", "sand mass fraction"),
            ("clay", st["clay"], "1", "clay mass fraction"),
            ("silt", st["silt"], "1", "silt mass fraction"),
            ("aridity_index", st["aridity"], "1", "design aridity index P/PET"),
            ("precip_mean", w["precip_clim_mean"], "kg m-2 d-1", "climatological mean precipitation"),
            ("pet_mean", w["pet_clim_mean"], "kg m-2 d-1", "climatological mean potential evapotranspiration"),
            ("era5_wet_shift", sim["era5_shift"], "m3 m-3", "wet shift of the ERA5-like soil limits"),
        ):
            v = nc.createVariable(name, "f4", ("lat", "lon"))
            v.units, v.long_name = units, long_name
            v[:] = np.asarray(data)[rs_, cs_]
        v = nc.createVariable("station_name", str, ("station",))
        v.long_name = "ISMN station name"
        for i, s in enumerate(stations.get("station", [])):
            v[i] = s
        v = nc.createVariable("station_network", str, ("station",))
        v.long_name = "ISMN network of the station"
        for i, s in enumerate(stations.get("network", [])):
            v[i] = s
        for name, units, long_name in (("lat", "degrees_north", "station latitude"),
                                       ("lon", "degrees_east", "station longitude"),
                                       ("a", "m3 m-3", "station offset a in a + b * theta_pixel"),
                                       ("b", "1", "station gain b in a + b * theta_pixel")):
            v = nc.createVariable(f"station_{name}", "f8", ("station",))
            v.units, v.long_name = units, long_name
            if len(stations):
                v[:] = stations[name].to_numpy(float)
        nc.title = "glass-sm synthetic twin: hidden truth"
        nc.source = "glass-sm synthetic twin"
        nc.Conventions = "CF-1.8"
        nc.history = f"glass_sm.twin (twin version {TWIN_VERSION}), seed {cfg.run.seed}"
        nc.references = "Zhang et al. (2025), ESSD 17, 5181-5207; see glass_sm.twin for the physics"
    return path
