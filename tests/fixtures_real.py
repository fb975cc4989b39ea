"""Writers of small test files in the *real* products' layouts (``book/design.md``), for reader tests.

These deliberately do not use :mod:`glass_sm.twin`: a reader test must not depend on the twin writer it
is meant to check. Each writer takes physical values (NaN = missing) and packs them the way the producer does.

- :func:`write_glass_hdf`: a GLASS AVHRR HDF4 file (GLASS02B05 albedo or GLASS08B31 LST), sub-tile (with
  ``UpperLeftLatitude``/``UpperLeftLongitude``/``GridResolution``, or an HDF-EOS2 ``StructMetadata.0``) or global
  (3600 x 7200, no geolocation attributes or a global ``StructMetadata.0``; only the given block is written, the
  rest is fill), with the variants the evidence allows (``../shared/REAL_FORMATS.md``): QC layer ``QC`` /
  ``QC_VIS`` / per band / none, ``scale_factor`` present or absent, the fill attribute's spelling or none,
  NaN written as the fill or as -1; :func:`albedo_real_variant` is the V04 albedo as the evidence describes it.
- :func:`write_era5_legacy_nc`: the legacy CDS netCDF (``grib_to_netcdf``: NETCDF3, ``time`` in hours since 1900,
  int16 packed ``swvl1``, latitude descending, longitude 0..360).
- :func:`write_era5_cds_nc`: the current CDS netCDF (NETCDF4, ``valid_time`` in seconds since 1970, scalar
  ``number``, ``expver`` strings along ``valid_time``, float32 ``swvl1`` with NaN fill and GRIB_* attributes).
- :func:`write_era5_expver_dim_nc`: the 2019-2024 CDS netCDF of a request mixing final ERA5 and ERA5T rows
  (``expver`` as a dimension, 1 = final, 5 = ERA5T, NaN in the other row).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

GLASS_SPECS = {
    # product: (short name, {sds: (SDC type name, numpy dtype, scale, offset, fill, valid_range, units)})
    "albedo": ("GLASS02B05", {
        name: ("INT16", np.int16, 0.0001, 0.0, 32767, (0, 10000), "dimensionless")
        for name in ("ABD_BSA_shortwave", "ABD_WSA_shortwave", "ABD_BSA_VIS", "ABD_WSA_VIS", "ABD_BSA_NIR",
                     "ABD_WSA_NIR")
    }),
    "lst": ("GLASS08B31", {"LST": ("UINT16", np.uint16, 0.01, 0.0, 0, None, "K")}),
}
#: default collection version in the file names: V04 albedo (the one in circulation), V40 LST
GLASS_VERSIONS = {"albedo": 4, "lst": 40}
ALBEDO_SDS = tuple(GLASS_SPECS["albedo"][1])


def glass_path(root, product: str, day, version: int | None = None, production: str = "2019001") -> Path:
    """``<root>/<product>/<YYYY>/<SHORT>.V<vv>.A<YYYY><DDD>.<production>.hdf`` (the design.md tree)."""
    short = GLASS_SPECS[product][0]
    version = GLASS_VERSIONS[product] if version is None else version
    day = pd.Timestamp(day)
    return (Path(root) / product / f"{day.year:04d}"
            / f"{short}.V{version:02d}.A{day.year:04d}{day.day_of_year:03d}.{production}.hdf")


def _dms(deg: float) -> float:
    """Decimal degrees -> HDF-EOS packed degrees DDDMMMSSS.SS."""
    sign = -1.0 if deg < 0 else 1.0
    a = abs(deg)
    d = int(a)
    m = int((a - d) * 60 + 1e-9)
    sec = (a - d - m / 60.0) * 3600.0
    return sign * (d * 1e6 + m * 1e3 + round(sec, 4))


def struct_metadata(short: str, fields: dict, nrows: int, ncols: int, north: float = 90.0,
                    west: float = -180.0, res: float = 0.05, plain_degrees: bool = False) -> str:
    """A minimal HDF-EOS2 ``StructMetadata.0`` of one GCTP_GEO grid named ``short`` (fields: name -> DFNT type)."""
    conv = (lambda v: v) if plain_degrees else _dms
    ul = (conv(west), conv(north))
    lr = (conv(west + ncols * res), conv(north - nrows * res))
    lines = ["GROUP=SwathStructure", "END_GROUP=SwathStructure", "GROUP=GridStructure", "\tGROUP=GRID_1",
             f'\t\tGridName="{short}"', f"\t\tXDim={ncols}", f"\t\tYDim={nrows}",
             f"\t\tUpperLeftPointMtrs=({ul[0]:.6f},{ul[1]:.6f})", f"\t\tLowerRightMtrs=({lr[0]:.6f},{lr[1]:.6f})",
             "\t\tProjection=GCTP_GEO", "\t\tGridOrigin=HDFE_GD_UL", "\t\tGROUP=Dimension", "\t\tEND_GROUP=Dimension",
             "\t\tGROUP=DataField"]
    for i, (name, typ) in enumerate(fields.items(), 1):
        lines += [f"\t\t\tOBJECT=DataField_{i}", f'\t\t\t\tDataFieldName="{name}"', f"\t\t\t\tDataType=DFNT_{typ}",
                  '\t\t\t\tDimList=("YDim","XDim")', f"\t\t\tEND_OBJECT=DataField_{i}"]
    lines += ["\t\tEND_GROUP=DataField", "\t\tGROUP=MergedFields", "\t\tEND_GROUP=MergedFields", "\tEND_GROUP=GRID_1",
              "END_GROUP=GridStructure", "GROUP=PointStructure", "END_GROUP=PointStructure", "END", ""]
    return "\n".join(lines)


def write_glass_hdf(path, product: str, values: dict, qc: np.ndarray | None = None, *,
                    upper_left: tuple[float, float] | None = (41.0, -100.0), resolution: float = 0.05,
                    global_offset: tuple[int, int] | None = None, satellite: str | None = "NOAA-14",
                    day=None, sds_attrs: dict | None = None, raw: dict | None = None,
                    qc_names=("QC",), qc_type: str = "UINT8", qc_fill: int | None = 255,
                    fill_attr: str | None = "_FillValue", nan_as: int | None = None,
                    geolocation: str = "attributes") -> Path:
    """Write one GLASS AVHRR HDF4 file.

    Parameters
    ----------
    path : path-like
        Output file (parents created).
    product : {'albedo', 'lst'}
    values : dict
        SDS name -> 2-D physical values (albedo dimensionless, LST in K); NaN is written as ``nan_as`` (default
        the product's fill value). SDS of the product not given are not written.
    qc : numpy.ndarray, optional
        QC array of the same shape, written under each name of ``qc_names``; None writes zeros.
    upper_left : (lat, lon) or None
        North-west cell edges of a sub-tile; None: a file without geolocation (global unless ``global_offset``
        or ``geolocation='struct'``).
    resolution : float
        Grid spacing, degrees.
    global_offset : (row, col), optional
        Write a *global* 3600 x 7200 file holding the arrays at this offset and fill elsewhere (only the block is
        written, so this is fast).
    satellite : str or None
        ``Satellite`` global attribute (None: omitted, as in the real files).
    day : date-like, optional
        ``RangeBeginningDate`` attribute.
    sds_attrs : dict, optional
        SDS name -> attributes overriding the product's (e.g. ``{'LST': {'units': 'degC'}}``; a value None
        deletes the attribute: ``{'scale_factor': None}`` writes no scale attribute and packs with the
        product's scale).
    raw : dict, optional
        SDS name -> stored integer arrays written as they are (bypassing packing).
    qc_names : sequence of str
        QC layer names (``('QC',)`` collection 1 / twin LST, ``('QC_VIS',)`` V04 as LIS reads it,
        ``('QC_shortwave', 'QC_VIS', 'QC_NIR')`` per band); empty: no QC layer.
    qc_type : str
        SDC type name of the QC layers.
    qc_fill : int or None
        ``_FillValue`` of the QC layers (None: none).
    fill_attr : str or None
        Spelling of the data fill-value attribute (``_FillValue``, ``FillValue``, ``fillvalue``, ``fill_value``,
        ``missing_value``); None writes no fill attribute.
    nan_as : int, optional
        Stored value of NaN (default: the product's fill value; ``-1`` for albedo as the product writes it).
    geolocation : {'attributes', 'struct', 'struct_plain'}
        ``'attributes'``: ``UpperLeftLatitude``/``UpperLeftLongitude``/``GridResolution`` for a sub-tile;
        ``'struct'``: an HDF-EOS2 ``StructMetadata.0`` (corners in packed DMS degrees) for the sub-tile or the
        global grid; ``'struct_plain'``: the same with corners in plain degrees.
    """
    from pyhdf.SD import SD, SDC

    short, specs = GLASS_SPECS[product]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # HDF4 cannot truncate a damaged file in place
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    if satellite is not None:
        sd.Satellite = satellite
    if day is not None:
        sd.RangeBeginningDate = str(pd.Timestamp(day).date())
    if geolocation == "attributes":
        sd.ShortName = short
        if global_offset is None and upper_left is not None:
            sd.UpperLeftLatitude = float(upper_left[0])
            sd.UpperLeftLongitude = float(upper_left[1])
            sd.GridResolution = float(resolution)
    names = dict(values)
    names.update(raw or {})
    shape = None
    fields = {}
    for name in names:
        typ, dtype, scale, offset, fill, vrange, units = specs.get(name, next(iter(specs.values())))
        attrs = {"scale_factor": scale, "add_offset": offset, "_FillValue": fill, "units": units,
                 "long_name": name}
        if vrange is not None:
            attrs["valid_range"] = list(vrange)
        attrs.update((sds_attrs or {}).get(name, {}))
        fill_w = attrs.pop("_FillValue")
        if raw and name in raw:
            stored = np.asarray(raw[name]).astype(dtype)
        else:
            phys = np.asarray(values[name], np.float64)
            scale_w = attrs["scale_factor"] if attrs["scale_factor"] is not None else scale
            offset_w = attrs["add_offset"] if attrs["add_offset"] is not None else offset
            packed = np.round((phys - offset_w) / scale_w)
            info = np.iinfo(dtype)
            nan_w = (fill if fill_w is None else fill_w) if nan_as is None else nan_as
            stored = np.where(np.isfinite(phys), np.clip(np.nan_to_num(packed), info.min, info.max), nan_w)
            stored = stored.astype(dtype)
        shape = stored.shape
        full = (3600, 7200) if global_offset is not None else stored.shape
        sds = sd.create(name, getattr(SDC, typ), full)
        fields[name] = typ
        sds.dim(0).setname(f"YDim:{short}")
        sds.dim(1).setname(f"XDim:{short}")
        if fill_w is not None and fill_attr == "_FillValue":
            sds.setfillvalue(int(fill_w))
        elif fill_w is not None and fill_attr is not None:
            sds.attr(fill_attr).set(getattr(SDC, typ), int(fill_w))
        for k, v in attrs.items():
            if v is None or (isinstance(v, str) and not v):
                continue
            setattr(sds, k, v)
        _write_block(sds, stored, global_offset)
        sds.endaccess()
    for qc_name in (qc_names or ()):
        if shape is None:
            break
        qc_arr = np.zeros(shape, np.uint8) if qc is None else np.asarray(qc)
        sds = sd.create(qc_name, getattr(SDC, qc_type), (3600, 7200) if global_offset is not None else qc_arr.shape)
        fields[qc_name] = qc_type
        sds.dim(0).setname(f"YDim:{short}")
        sds.dim(1).setname(f"XDim:{short}")
        if qc_fill is not None:
            sds.setfillvalue(qc_fill)
        sds.long_name = "quality control"
        _write_block(sds, qc_arr.astype({"UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16,
                                         "INT8": np.int8}[qc_type]), global_offset)
        sds.endaccess()
    if geolocation in ("struct", "struct_plain") and shape is not None:
        if global_offset is not None or upper_left is None:
            text = struct_metadata(short, fields, 3600, 7200, plain_degrees=geolocation == "struct_plain")
        else:
            text = struct_metadata(short, fields, shape[0], shape[1], upper_left[0], upper_left[1], resolution,
                                   plain_degrees=geolocation == "struct_plain")
        sd.attr("StructMetadata.0").set(SDC.CHAR8, text)
    sd.end()
    return path


def _write_block(sds, stored: np.ndarray, offset) -> None:
    if offset is None:
        sds[:] = stored
    else:
        r, c = offset
        sds[r:r + stored.shape[0], c:c + stored.shape[1]] = stored


def albedo_real_variant(path, values: dict, qc=None, *, qc_names=("QC_VIS",), scale_attr: bool = True,
                        **kw) -> Path:
    """An albedo file as the evidence describes V04: -1 = invalid, no fill attribute, no ``Satellite``,
    HDF-EOS2 ``StructMetadata.0``, int16 QC layer(s) ``qc_names`` (quality level in bits 0-1);
    ``scale_attr=False`` also drops ``scale_factor``/``add_offset`` (whether they exist is unknown)."""
    attrs = {"_FillValue": None}
    if not scale_attr:
        attrs.update(scale_factor=None, add_offset=None)
    kw.setdefault("geolocation", "struct")
    kw.setdefault("satellite", None)
    return write_glass_hdf(path, "albedo", values, qc, sds_attrs={n: dict(attrs) for n in values},
                           qc_names=qc_names, qc_type="INT16", qc_fill=None, fill_attr=None, nan_as=-1, **kw)


# ----------------------------------------------------------------------------------------------------------
# ERA5 / ERA5-Land netCDF
# ----------------------------------------------------------------------------------------------------------
def era5_grid(lat_north: float, lat_south: float, lon_west: float, lon_east: float, res: float = 0.1):
    """Latitudes (descending) and longitudes (as given, e.g. 0..360) of a regular ERA5-Land grid, degrees."""
    nlat = int(round((lat_north - lat_south) / res)) + 1
    nlon = int(round((lon_east - lon_west) / res)) + 1
    lat = np.round(lat_north - res * np.arange(nlat), 6)
    lon = np.round(lon_west + res * np.arange(nlon), 6)
    return lat, lon


def _pack_int16(values: np.ndarray):
    """grib_to_netcdf packing: min -> -32766, max -> 32767 (-32767 is the fill value)."""
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scale = (vmax - vmin) / (2**16 - 3) or 1e-6
    offset = vmin + 32766 * scale
    packed = np.where(np.isfinite(values), np.round((np.nan_to_num(values) - offset) / scale), -32767)
    return packed.astype(np.int16), scale, offset


def write_era5_legacy_nc(path, times, lat, lon, swvl1, *, units: str = "m**3 m**-3", varname: str = "swvl1",
                         lsm: np.ndarray | None = None) -> Path:
    """Write a legacy-CDS ERA5(-Land) netCDF (NETCDF3 64-bit offset, as ``grib_to_netcdf`` wrote it).

    Parameters
    ----------
    times : sequence of datetime-like
        Time steps (UTC).
    lat, lon : numpy.ndarray
        Latitudes (descending for the real layout) and longitudes (0..360 for the real layout), degrees.
    swvl1 : numpy.ndarray
        ``(time, lat, lon)`` volumetric soil water of layer 1 in ``units`` (NaN = missing).
    units : str
        Units attribute (real files: ``m**3 m**-3``).
    varname : str
        Variable name (to test a missing ``swvl1``).
    lsm : numpy.ndarray, optional
        ``(time, lat, lon)`` land-sea mask to add as ``lsm``.
    """
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = pd.DatetimeIndex(times)
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as nc:
        nc.Conventions = "CF-1.6"
        nc.history = f"{dt.datetime(2018, 2, 9):%Y-%m-%d %H:%M:%S} GMT by grib_to_netcdf-2.6.0 (test fixture)"
        nc.createDimension("longitude", len(lon))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("time", None)
        v = nc.createVariable("longitude", "f4", ("longitude",))
        v.units, v.long_name = "degrees_east", "longitude"
        v[:] = lon
        v = nc.createVariable("latitude", "f4", ("latitude",))
        v.units, v.long_name = "degrees_north", "latitude"
        v[:] = lat
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:0.0", "time", "gregorian"
        v[:] = ((times - pd.Timestamp("1900-01-01")) / pd.Timedelta(hours=1)).to_numpy().astype(np.int32)
        fields = [(varname, np.asarray(swvl1, np.float64), units, "Volumetric soil water layer 1")]
        if lsm is not None:
            fields.append(("lsm", np.asarray(lsm, np.float64), "(0 - 1)", "Land-sea mask"))
        for name, values, u, long_name in fields:
            packed, scale, offset = _pack_int16(values)
            v = nc.createVariable(name, "i2", ("time", "latitude", "longitude"), fill_value=np.int16(-32767))
            v.set_auto_maskandscale(False)
            v.scale_factor = scale
            v.add_offset = offset
            v.missing_value = np.int16(-32767)
            if u is not None:
                v.units = u
            v.long_name = long_name
            v[:] = packed
    return path


def write_era5_cds_nc(path, times, lat, lon, swvl1, *, expver=None, number: int | None = 0,
                      units: str = "m**3 m**-3") -> Path:
    """Write a current-CDS ERA5-Land netCDF (2024 on): ``valid_time``, scalar ``number``, ``expver`` strings.

    Parameters
    ----------
    times : sequence of datetime-like
        ``valid_time`` steps (UTC).
    lat, lon : numpy.ndarray
        Latitudes / longitudes, degrees.
    swvl1 : numpy.ndarray
        ``(valid_time, lat, lon)`` in ``units``; NaN = missing (sea).
    expver : sequence of str, optional
        One per time step (``'0001'`` final, ``'0005'`` ERA5T); default all ``'0001'``.
    number : int or None
        Scalar ensemble member coordinate (None: omitted).
    units : str
        Units attribute.
    """
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = pd.DatetimeIndex(times)
    expver = ["0001"] * len(times) if expver is None else list(expver)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.GRIB_centre = "ecmf"
        nc.GRIB_centreDescription = "European Centre for Medium-Range Weather Forecasts"
        nc.Conventions = "CF-1.7"
        nc.institution = "European Centre for Medium-Range Weather Forecasts"
        nc.history = "2024-09-01T00:00 GRIB to CDM+CF via cfgrib-0.9.14.1/ecCodes-2.36.0 (test fixture)"
        nc.createDimension("valid_time", len(times))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("longitude", len(lon))
        if number is not None:
            v = nc.createVariable("number", "i8", ())
            v.long_name, v.units, v.standard_name = "ensemble member numerical id", "1", "realization"
            v.assignValue(number)
        v = nc.createVariable("valid_time", "i8", ("valid_time",))
        v.long_name, v.standard_name = "time", "time"
        v.units, v.calendar = "seconds since 1970-01-01", "proleptic_gregorian"
        v[:] = ((times - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)).to_numpy().astype(np.int64)
        v = nc.createVariable("latitude", "f8", ("latitude",))
        v.units, v.standard_name, v.long_name, v.stored_direction = ("degrees_north", "latitude", "latitude",
                                                                     "decreasing")
        v[:] = lat
        v = nc.createVariable("longitude", "f8", ("longitude",))
        v.units, v.standard_name, v.long_name = "degrees_east", "longitude", "longitude"
        v[:] = lon
        v = nc.createVariable("expver", str, ("valid_time",))
        v.long_name = "experiment version"
        for i, e in enumerate(expver):
            v[i] = e
        v = nc.createVariable("swvl1", "f4", ("valid_time", "latitude", "longitude"), fill_value=np.float32(np.nan),
                              zlib=True, complevel=1)
        v.GRIB_paramId = 39
        v.GRIB_shortName = "swvl1"
        v.GRIB_units = units
        v.GRIB_name = "Volumetric soil water layer 1"
        v.GRIB_typeOfLevel = "depthBelowLandLayer"
        v.long_name = "Volumetric soil water layer 1"
        if units is not None:
            v.units = units
        v.standard_name = "unknown"
        v.coordinates = "number valid_time latitude longitude expver" if number is not None else \
            "valid_time latitude longitude expver"
        v[:] = np.asarray(swvl1, np.float32)
    return path


def write_era5_expver_dim_nc(path, times, lat, lon, final, era5t, *, units: str = "m**3 m**-3") -> Path:
    """Write the 2019-2024 CDS netCDF of a request spanning final ERA5 and ERA5T: dims (time, expver, lat, lon).

    ``final`` and ``era5t`` are ``(time, lat, lon)``; NaN where that stream has no data (the CDS wrote NaN in
    the other row).
    """
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = pd.DatetimeIndex(times)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.6"
        nc.createDimension("longitude", len(lon))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("expver", 2)
        nc.createDimension("time", len(times))
        v = nc.createVariable("longitude", "f4", ("longitude",))
        v.units, v.long_name = "degrees_east", "longitude"
        v[:] = lon
        v = nc.createVariable("latitude", "f4", ("latitude",))
        v.units, v.long_name = "degrees_north", "latitude"
        v[:] = lat
        v = nc.createVariable("expver", "i4", ("expver",))
        v.long_name = "expver"
        v[:] = [1, 5]
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:00.0", "time", "gregorian"
        v[:] = ((times - pd.Timestamp("1900-01-01")) / pd.Timedelta(hours=1)).to_numpy().astype(np.int32)
        both = np.stack([np.asarray(final, np.float64), np.asarray(era5t, np.float64)], axis=1)
        packed, scale, offset = _pack_int16(both)
        v = nc.createVariable("swvl1", "i2", ("time", "expver", "latitude", "longitude"), fill_value=np.int16(-32767))
        v.set_auto_maskandscale(False)
        v.scale_factor, v.add_offset = scale, offset
        v.missing_value = np.int16(-32767)
        v.units, v.long_name = units, "Volumetric soil water layer 1"
        v[:] = packed
    return path


# ----------------------------------------------------------------------------------------------------------
# GRIB (from a real template message)
# ----------------------------------------------------------------------------------------------------------
def write_grib_swvl1(template, path, records, values, *, data_type: str = "an") -> Path:
    """Write ``swvl1`` GRIB messages cloned from the first ``swvl1`` message of a real GRIB file.

    The grid (and encoding) is the template's; only dates, steps and values change.

    Parameters
    ----------
    template : path-like
        A real GRIB file holding ``swvl1`` (e.g. ``shared/realdata/era5/erainterim_5deg_20000101.grb``).
    records : sequence of (datetime-like, int)
        Reference time and forecast step in hours of each message (valid time = reference + step).
    values : numpy.ndarray
        ``(len(records), Nj, Ni)`` in m3 m-3, north-to-south rows as the template scans them.
    data_type : str
        GRIB ``dataType`` (``'an'`` analysis, ``'fc'`` forecast).
    """
    import pyproj  # noqa: F401  (before ecCodes, see glass_sm.io.era5land)
    import eccodes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(template, "rb") as f:
        while True:
            h = eccodes.codes_grib_new_from_file(f)
            if h is None:
                raise ValueError(f"{template}: no swvl1 message")
            if eccodes.codes_get(h, "shortName") == "swvl1":
                break
            eccodes.codes_release(h)
    try:
        with open(path, "wb") as out:
            for (ref, step), v in zip(records, values):
                ref = pd.Timestamp(ref)
                m = eccodes.codes_clone(h)
                eccodes.codes_set(m, "dataType", data_type)
                eccodes.codes_set(m, "dataDate", int(ref.strftime("%Y%m%d")))
                eccodes.codes_set(m, "dataTime", int(ref.strftime("%H%M")))
                eccodes.codes_set(m, "stepRange", str(int(step)))
                eccodes.codes_set_values(m, np.asarray(v, np.float64).ravel())
                eccodes.codes_write(m, out)
                eccodes.codes_release(m)
    finally:
        eccodes.codes_release(h)
    return path


#: The GLASS-MODIS / MODIS sinusoidal projection (the sphere of radius 6,371,007.181 m), as a PROJ string.
SINU = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"


def sinusoidal_mapping(tmp_path, pixel_m: float, name: str, domain):
    """The label reader's pixel -> cell mapping (``glass_modis._build_mapping``) of a sinusoidal GeoTIFF grid of
    ``pixel_m`` pixels (8,000 x 8,000 km from (-4,000 km, 6,000 km)) over ``domain``, and its window's shape; the
    grid is written as ``<tmp_path>/<name>.tif``."""
    import rasterio  # noqa: PLC0415
    from rasterio.transform import from_origin  # noqa: PLC0415

    from glass_sm.io import glass_modis  # noqa: PLC0415

    w, h = int(2 * 4_000_000 / pixel_m), int(8_000_000 / pixel_m)
    path = Path(tmp_path) / f"{name}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", crs=SINU,
                       transform=from_origin(-4_000_000, 6_000_000, pixel_m, pixel_m), nodata=-9999.0) as ds:
        ds.write(np.zeros((h, w), np.float32), 1)
    with rasterio.open(path) as ds:
        m = glass_modis._build_mapping(ds, domain, path, 1)
    return m, (m.window.height, m.window.width)
