"""The global 0.05 deg GLASS grid, domains on it, and regridding helpers.

The global grid has 3600 rows x 7200 columns; row 0 touches 90 N, column 0 touches 180 W. Cell centres are
``lat_i = 90 - (i + 0.5) * 0.05`` and ``lon_j = -180 + (j + 0.5) * 0.05``. Latitude is descending (north-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = ["RES", "NROWS", "NCOLS", "Domain", "block_mean", "upsample_repeat", "lat_lon_attrs", "nearest_index"]

RES = 0.05
NROWS = 3600
NCOLS = 7200
_EPS = 1e-9


@dataclass(frozen=True)
class Domain:
    """A rectangle of whole cells of a regular lat/lon grid (default: the 0.05 deg global grid).

    Attributes
    ----------
    row0, col0 : int
        Index of the north-west cell in the global grid of spacing ``res``.
    nrows, ncols : int
        Size in cells.
    res : float
        Cell size, degrees.
    """

    row0: int
    col0: int
    nrows: int
    ncols: int
    res: float = RES

    @classmethod
    def from_bounds(cls, lat_min: float, lat_max: float, lon_min: float, lon_max: float,
                    res: float = RES) -> "Domain":
        """The smallest domain of whole cells covering the box (degrees)."""
        if not (-90 <= lat_min < lat_max <= 90 and -180 <= lon_min < lon_max <= 180):
            raise ValueError(f"invalid box lat {lat_min}..{lat_max}, lon {lon_min}..{lon_max}")
        row0 = int(math.floor((90 - lat_max) / res + _EPS))
        row1 = int(math.ceil((90 - lat_min) / res - _EPS))
        col0 = int(math.floor((lon_min + 180) / res + _EPS))
        col1 = int(math.ceil((lon_max + 180) / res - _EPS))
        return cls(row0, col0, row1 - row0, col1 - col0, res)

    @classmethod
    def from_config(cls, cfg) -> "Domain":
        d = cfg.domain
        return cls.from_bounds(d.lat_min, d.lat_max, d.lon_min, d.lon_max, d.resolution)

    # ---- coordinates -----------------------------------------------------------------------------
    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, descending, degrees north (float64)."""
        return np.round(90 - (self.row0 + np.arange(self.nrows) + 0.5) * self.res, 6)

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, ascending, degrees east (float64)."""
        return np.round(-180 + (self.col0 + np.arange(self.ncols) + 0.5) * self.res, 6)

    @property
    def north(self) -> float:
        return round(90 - self.row0 * self.res, 9)

    @property
    def south(self) -> float:
        return round(90 - (self.row0 + self.nrows) * self.res, 9)

    @property
    def west(self) -> float:
        return round(-180 + self.col0 * self.res, 9)

    @property
    def east(self) -> float:
        return round(-180 + (self.col0 + self.ncols) * self.res, 9)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrows, self.ncols)

    @property
    def size(self) -> int:
        return self.nrows * self.ncols

    def coarsen(self, factor: int) -> "Domain":
        """The same box on a grid ``factor`` times coarser (the box must be whole coarse cells)."""
        if self.row0 % factor or self.col0 % factor or self.nrows % factor or self.ncols % factor:
            raise ValueError(f"domain {self} is not aligned to a grid {factor}x coarser")
        return Domain(self.row0 // factor, self.col0 // factor, self.nrows // factor, self.ncols // factor,
                      self.res * factor)

    def expand_to_multiple(self, factor: int) -> "Domain":
        """The smallest domain containing this one whose edges fall on a grid ``factor`` times coarser."""
        r0 = (self.row0 // factor) * factor
        c0 = (self.col0 // factor) * factor
        r1 = -(-(self.row0 + self.nrows) // factor) * factor
        c1 = -(-(self.col0 + self.ncols) // factor) * factor
        return Domain(r0, c0, r1 - r0, c1 - c0, self.res)

    def slices_in(self, outer: "Domain") -> tuple[slice, slice]:
        """Row/column slices of this domain inside ``outer`` (same resolution)."""
        if abs(self.res - outer.res) > _EPS:
            raise ValueError(f"resolutions differ: {self.res} vs {outer.res}")
        r = self.row0 - outer.row0
        c = self.col0 - outer.col0
        if r < 0 or c < 0 or r + self.nrows > outer.nrows or c + self.ncols > outer.ncols:
            raise ValueError(f"domain {self} is not inside {outer}")
        return slice(r, r + self.nrows), slice(c, c + self.ncols)

    def template(self, name: str = "template") -> xr.DataArray:
        """An all-NaN float32 (lat, lon) DataArray on this domain with CF coordinates."""
        da = xr.DataArray(
            np.full(self.shape, np.nan, np.float32),
            dims=("lat", "lon"),
            coords={"lat": self.lat, "lon": self.lon},
            name=name,
        )
        return lat_lon_attrs(da)

    def index_of(self, lat: float, lon: float) -> tuple[int, int]:
        """Row, column (in this domain) of the cell holding a point; raises ValueError if outside."""
        r = int(math.floor((self.north - lat) / self.res))
        c = int(math.floor((lon - self.west) / self.res))
        if not (0 <= r < self.nrows and 0 <= c < self.ncols):
            raise ValueError(f"point ({lat}, {lon}) is outside the domain {self.bounds_str()}")
        return r, c

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat < self.north and self.west <= lon < self.east

    def bounds_str(self) -> str:
        return f"lat {self.south:.3f}..{self.north:.3f}, lon {self.west:.3f}..{self.east:.3f}"


def lat_lon_attrs(obj):
    """Attach CF attributes to ``lat``/``lon`` coordinates (in place) and return the object."""
    if "lat" in obj.coords:
        obj["lat"].attrs.update(standard_name="latitude", long_name="latitude", units="degrees_north",
                                axis="Y")
    if "lon" in obj.coords:
        obj["lon"].attrs.update(standard_name="longitude", long_name="longitude", units="degrees_east",
                                axis="X")
    return obj


def block_mean(a: np.ndarray, factor: int, min_valid: int = 1) -> np.ndarray:
    """Mean over non-overlapping ``factor x factor`` blocks of the last two axes, ignoring NaN.

    Blocks with fewer than ``min_valid`` finite values are NaN. The last two axes must be multiples of
    ``factor``.
    """
    *lead, ny, nx = a.shape
    if ny % factor or nx % factor:
        raise ValueError(f"shape {a.shape[-2:]} is not a multiple of {factor}")
    b = a.reshape(*lead, ny // factor, factor, nx // factor, factor)
    valid = np.isfinite(b)
    n = valid.sum(axis=(-3, -1))
    s = np.where(valid, b, 0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / n
    out[n < min_valid] = np.nan
    return out.astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64)


def upsample_repeat(a: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of the last two axes by an integer factor."""
    return np.repeat(np.repeat(a, factor, axis=-2), factor, axis=-1)


def nearest_index(coord, x) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest coordinate for each x, and whether x lies within half a cell of it.

    Works for ascending or descending, regular or irregular coordinates; the half-cell of an edge cell is the
    half of its only neighbouring spacing (a single-cell axis accepts only exact matches).

    Parameters
    ----------
    coord : array_like
        Cell centres of one axis (degrees).
    x : array_like
        Points on that axis (degrees).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Positional index into ``coord`` (int) and ``inside`` (bool) for each point.
    """
    coord = np.asarray(coord, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = coord.size
    if n == 0:
        return np.zeros(x.shape, int), np.zeros(x.shape, bool)
    order = np.argsort(coord, kind="stable")
    c = coord[order]
    pos = np.clip(np.searchsorted(c, x), 1, max(1, n - 1)) if n > 1 else np.zeros(x.shape, int)
    if n > 1:
        left, right = c[pos - 1], c[pos]
        pick = np.where(np.abs(x - left) <= np.abs(right - x), pos - 1, pos)
    else:
        pick = pos
    spacing = np.diff(c)
    half_lo = np.concatenate([[spacing[0] if n > 1 else 0.0], spacing]) / 2  # towards lower neighbour
    half_hi = np.concatenate([spacing, [spacing[-1] if n > 1 else 0.0]]) / 2  # towards upper neighbour
    dist = x - c[pick]
    tol = np.where(dist < 0, half_lo[pick], half_hi[pick]) * (1 + 1e-9) + 1e-12
    inside = np.isfinite(x) & (np.abs(dist) <= tol)
    return order[pick], inside
