"""Static predictors: terrain height (DEM) and topsoil texture (sand, clay, silt) on the 0.05 deg grid.

Files (``book/design.md``)::

    <static_dir>/dem.tif                    terrain height, m, float32, NoData -9999 (MERIT DEM for real data)
    <static_dir>/sand.tif clay.tif silt.tif SoilGrids 2.0 convention: g/kg, int16, NoData -32768

``.vrt`` mosaics (``gdalbuildvrt dem.vrt tiles/*.tif``) are taken when no ``.tif`` exists. Any CRS that
rasterio/PROJ reads is accepted (SoilGrids is distributed in Interrupted Goode Homolosine). Each layer is cut
to the window covering the domain, then averaged onto the domain's 0.05 deg cells with GDAL's area-weighted
``average`` resampling (NoData ignored) through ``rioxarray``.

Texture units are taken from a ``units`` tag (``g/kg``, ``%``, ``1``) or, without one, detected from the
values: the median of sand + clay + silt over the domain must be close (within 10 %) to 1000 (g/kg), 100 (%) or
1 (fraction). The fractions are then renormalised to sum exactly 1 in each cell where all three are present.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from glass_sm.grid import Domain, lat_lon_attrs
from glass_sm.io.errors import (
    CorruptFileError,
    EmptyDataError,
    GridMismatchError,
    MissingFileError,
    MissingVariableError,
    UnitsError,
)

__all__ = ["read_static", "read_layer", "STATIC_ATTRS", "TEXTURE_UNITS"]

STATIC_ATTRS = {
    "elevation": dict(standard_name="height_above_mean_sea_level", long_name="terrain height above sea level",
                      units="m"),
    "sand": dict(long_name="sand mass fraction of the topsoil fine earth", units="1", valid_min=0.0,
                 valid_max=1.0),
    "clay": dict(long_name="clay mass fraction of the topsoil fine earth", units="1", valid_min=0.0,
                 valid_max=1.0),
    "silt": dict(long_name="silt mass fraction of the topsoil fine earth", units="1", valid_min=0.0,
                 valid_max=1.0),
}

#: texture units understood -> factor to mass fraction (dimensionless)
TEXTURE_UNITS = {
    "g/kg": 1e-3, "gkg-1": 1e-3, "g.kg-1": 1e-3, "gkg**-1": 1e-3, "permille": 1e-3, "‰": 1e-3,
    "%": 1e-2, "percent": 1e-2, "%weight": 1e-2, "%mass": 1e-2, "%(w/w)": 1e-2,
    "1": 1.0, "fraction": 1.0, "kg/kg": 1.0, "kgkg-1": 1.0, "dimensionless": 1.0,
}
_ELEVATION_UNITS = {"m", "metre", "meter", "meters", "metres", "masl", "m a.s.l."}
_TEXTURE_TOL = 0.10  # relative tolerance on the median sum of the three fractions


def _layer_path(static_dir: Path, name: str) -> Path:
    for ext in (".tif", ".tiff", ".vrt"):
        p = static_dir / f"{name}{ext}"
        if p.is_file():
            return p
    raise MissingFileError(
        "not found (also looked for .tiff/.vrt; data.static_dir must hold dem.tif, sand.tif, clay.tif, silt.tif)",
        file=static_dir / f"{name}.tif", variable="elevation" if name == "dem" else name,
    )


def _norm_units(units) -> str | None:
    if units is None:
        return None
    u = str(units).strip()
    return u.lower().replace(" ", "") if u else None


def read_layer(path: str | os.PathLike, domain: Domain, variable: str,
               band: int = 1) -> tuple[np.ndarray, str | None]:
    """One band of a GeoTIFF averaged onto ``domain`` (area-weighted mean, NoData ignored).

    Parameters
    ----------
    path : path-like
        GeoTIFF (or VRT) in any CRS rasterio reads.
    domain : glass_sm.grid.Domain
        Target 0.05 deg cells.
    variable : str
        Name used in error messages (``elevation``, ``sand`` ...).
    band : int
        1-based band index.

    Returns
    -------
    values : ndarray float64 (nrows, ncols)
        Mean of the valid source pixels in each cell, in the file's units (scale_factor/add_offset applied);
        NaN where no valid pixel.
    units : str or None
        The ``units`` tag of the band or file, if any.
    """
    import rasterio  # noqa: PLC0415
    from pyproj import Transformer  # noqa: PLC0415
    from rasterio.errors import RasterioError  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise MissingFileError("not found", file=path, variable=variable)
    try:
        with rasterio.open(path) as ds:
            count, crs, t = ds.count, ds.crs, ds.transform
            left, bottom, right, top = ds.bounds
            width, height = ds.width, ds.height
            tags = {**ds.tags(), **(ds.tags(band) if count >= band else {})}
            units = tags.get("units") or tags.get("UNITS") or tags.get("Units") or \
                (ds.units[band - 1] if count >= band else None) or None
    except (RasterioError, OSError) as e:
        raise CorruptFileError(f"cannot be opened as a raster ({e})", file=path, variable=variable) from e
    if count < band:
        raise MissingVariableError(f"not found: band {band} requested, the file has {count} band(s)", file=path,
                                   variable=variable)
    if crs is None:
        raise GridMismatchError("has no CRS in the raster (no georeferencing)", file=path, variable=variable)

    # window of the raster covering the domain (boundary densified in the source CRS)
    n = max(5, min(400, max(domain.nrows, domain.ncols) + 1))
    lons = np.linspace(domain.west, domain.east, n)
    lats = np.linspace(domain.south, domain.north, n)
    blon = np.concatenate([lons, lons, np.full(n, domain.west), np.full(n, domain.east)])
    blat = np.concatenate([np.full(n, domain.south), np.full(n, domain.north), lats, lats])
    bx, by = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(blon, blat)
    bx, by = np.asarray(bx), np.asarray(by)
    tol_x, tol_y = abs(t.a), abs(t.e)
    outside = ~np.isfinite(bx) | ~np.isfinite(by) | (bx < left - tol_x) | (bx > right + tol_x) | \
        (by < bottom - tol_y) | (by > top + tol_y)
    if outside.any():
        raise GridMismatchError(
            f"does not cover the domain {domain.bounds_str()}: the raster's bounds are {left:.4g}, {bottom:.4g}, "
            f"{right:.4g}, {top:.4g} in {crs.to_string()}",
            file=path, variable=variable,
        )
    cols, rows = (~t) @ (bx, by)
    col0 = max(int(math.floor(np.min(cols))) - 2, 0)
    row0 = max(int(math.floor(np.min(rows))) - 2, 0)
    col1 = min(int(math.ceil(np.max(cols))) + 2, width)
    row1 = min(int(math.ceil(np.max(rows))) + 2, height)

    try:
        with warnings.catch_warnings():  # affine 3 deprecation inside rioxarray 0.19
            warnings.filterwarnings("ignore", message="Use `@` matmul", category=PendingDeprecationWarning)
            values = _reproject_average(path, band, (row0, row1), (col0, col1), domain)
    except (RasterioError, OSError, ValueError) as e:
        raise CorruptFileError(f"cannot be read ({type(e).__name__}: {e})", file=path, variable=variable) from e
    return values, (str(units) if units else None)


def _reproject_average(path: Path, band: int, rows: tuple[int, int], cols: tuple[int, int],
                       domain: Domain) -> np.ndarray:
    """Area-weighted mean of a raster window onto the domain's 0.05 deg cells (GDAL ``average``)."""
    import rioxarray  # noqa: PLC0415  (also registers the .rio accessor)
    from rasterio.enums import Resampling  # noqa: PLC0415
    from rasterio.transform import from_origin  # noqa: PLC0415

    da = rioxarray.open_rasterio(path, mask_and_scale=True, cache=False)
    da = da.isel(band=band - 1, x=slice(*cols), y=slice(*rows)).astype(np.float64)
    da = da.rio.write_nodata(np.nan, encoded=False)
    out = da.rio.reproject(
        "EPSG:4326",
        transform=from_origin(domain.west, domain.north, domain.res, domain.res),
        shape=domain.shape,
        resampling=Resampling.average,
        nodata=np.nan,
    )
    return np.asarray(out.values, dtype=np.float64)


def _texture_factor(units: dict[str, str | None], sums: np.ndarray, paths: dict[str, Path]) -> float:
    """Factor converting the three texture layers to mass fractions (see module docstring)."""
    files = ", ".join(str(p) for p in paths.values())
    declared = {k: _norm_units(u) for k, u in units.items() if u}
    factors = set()
    for k, u in declared.items():
        if u not in TEXTURE_UNITS:
            raise UnitsError(f"has units {units[k]!r}; expected a texture mass fraction in g/kg, % or 1",
                             file=paths[k], variable=k)
        factors.add(TEXTURE_UNITS[u])
    if len(factors) > 1:
        raise UnitsError(f"declare different units {units}", file=files, variable="sand, clay, silt")
    finite = sums[np.isfinite(sums)]
    if finite.size == 0:
        raise EmptyDataError("have no cell of the domain with all three values", file=files,
                             variable="sand, clay, silt")
    median = float(np.median(finite))
    if factors:
        factor = factors.pop()
        if abs(median * factor - 1.0) > _TEXTURE_TOL:
            raise UnitsError(
                f"sum to a median of {median:.4g} in the declared units {next(iter(declared.values()))!r}, i.e. "
                f"{median * factor:.3g} as a fraction, far from 1 (1000 g/kg): wrong units tag?",
                file=files, variable="sand + clay + silt",
            )
        return factor
    for factor in (1e-3, 1e-2, 1.0):
        if abs(median * factor - 1.0) <= _TEXTURE_TOL:
            return factor
    raise UnitsError(
        f"sum to a median of {median:.4g}, far from 1000 g/kg (SoilGrids), 100 % or 1: cannot tell the units "
        "(fix the values or add a 'units' tag)",
        file=files, variable="sand + clay + silt",
    )


def read_static(static_dir: str | os.PathLike, domain: Domain) -> xr.Dataset:
    """Terrain height and topsoil texture averaged onto the 0.05 deg cells of ``domain``.

    Parameters
    ----------
    static_dir : path-like
        Folder with ``dem.tif`` (m) and ``sand.tif``, ``clay.tif``, ``silt.tif`` (g/kg, % or fraction).
    domain : glass_sm.grid.Domain
        Target 0.05 deg cells.

    Returns
    -------
    xarray.Dataset
        ``elevation`` (lat, lon) float32 in m (NaN over water / NoData) and ``sand``, ``clay``, ``silt``
        (lat, lon) float32 mass fractions (unit ``1``), renormalised to sum 1 where all three are present.

    Raises
    ------
    MissingFileError, MissingVariableError, CorruptFileError, GridMismatchError
        A layer is missing, has no such band, cannot be read or does not cover the domain.
    UnitsError
        Elevation not in metres (tag or implausible values), or texture units unknown / the three layers'
        sum far from 1000 g/kg.
    EmptyDataError
        A layer is NoData over the whole domain.
    """
    static_dir = Path(static_dir)
    if not static_dir.is_dir():
        raise MissingFileError("folder not found (dem.tif, sand/clay/silt.tif; set data.static_dir)",
                               file=static_dir, variable="elevation, sand, clay, silt")
    paths = {name: _layer_path(static_dir, name if name != "elevation" else "dem")
             for name in ("elevation", "sand", "clay", "silt")}
    layers, units = {}, {}
    for name, path in paths.items():
        layers[name], units[name] = read_layer(path, domain, name)
        if not np.isfinite(layers[name]).any():
            raise EmptyDataError(f"is NoData over the whole domain {domain.bounds_str()}", file=path,
                                 variable=name)

    # elevation: metres
    u = _norm_units(units["elevation"])
    if u is not None and u not in _ELEVATION_UNITS:
        raise UnitsError(f"has units {units['elevation']!r}; expected metres ('m')", file=paths["elevation"],
                         variable="elevation")
    elev = layers["elevation"]
    lo, hi = np.nanmin(elev), np.nanmax(elev)
    if lo < -500 or hi > 9000:
        raise UnitsError(f"has values {lo:.4g}..{hi:.4g}, not terrain heights in metres (expected -500..9000)",
                         file=paths["elevation"], variable="elevation")

    # texture: -> mass fractions summing to 1
    tex = {k: layers[k] for k in ("sand", "clay", "silt")}
    sums = tex["sand"] + tex["clay"] + tex["silt"]
    factor = _texture_factor({k: units[k] for k in tex}, sums, {k: paths[k] for k in tex})
    for k in tex:
        tex[k] = tex[k] * factor
        bad = np.nanmax(tex[k]) if np.isfinite(tex[k]).any() else 0.0
        if bad > 1 + _TEXTURE_TOL or np.nanmin(tex[k]) < -1e-6:
            raise UnitsError(f"has values outside 0..1 after conversion (factor {factor:g}): wrong units?",
                             file=paths[k], variable=k)
    total = tex["sand"] + tex["clay"] + tex["silt"]
    full = np.isfinite(total) & (total > 0)
    for k in tex:
        tex[k] = np.where(full, tex[k] / np.where(full, total, 1.0), tex[k])

    coords = {"lat": domain.lat, "lon": domain.lon}
    ds = xr.Dataset(
        {
            "elevation": (("lat", "lon"), elev.astype(np.float32)),
            **{k: (("lat", "lon"), v.astype(np.float32)) for k, v in tex.items()},
        },
        coords=coords,
    )
    for name, attrs in STATIC_ATTRS.items():
        ds[name].attrs.update(attrs, source=str(paths[name]), cell_methods="area: mean")
    for k in tex:
        ds[k].attrs["source_units"] = units[k] or {1e-3: "g/kg", 1e-2: "%", 1.0: "1"}[factor] + " (detected)"
    ds.attrs.update(Conventions="CF-1.8", title="glass-sm static predictors on the 0.05 deg grid")
    return lat_lon_attrs(ds)
