"""The twin's grids and random streams: what every part of the twin shares.

The twin simulates on a *simulation grid* at the run's resolution r (``domain.resolution``: 0.05 deg as the
product, or a coarse multiple of 0.05 that divides 180) slightly larger than the run's domain, so that the
ERA5-Land-like points (spacing 2r, as 0.1 deg vs 0.05 deg) and the CCI-like cells (``twin.cci_resolution``) that
touch the domain are whole, and writes the domain (:class:`TwinGrids`). A domain spanning 360 deg of longitude is
*global in longitude*: the simulation grid then reaches one cell past the antimeridian (column -1, the same place
as the last column: every field of the world is a function of position, so the two carry the same values) and the
ERA5-Land-like points go round the globe without repeating one. Every random component draws from its own
generator seeded by ``(run.seed, component name)`` (:func:`component_rng`): changing the number of stations does not
change the weather.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from glass_sm.grid import RES, Domain

__all__ = ["TWIN_VERSION", "EARTH_RADIUS_KM", "LAT_LIMITS", "component_rng", "TwinGrids", "twin_grids",
           "check_resolution", "wrap_lon", "km_coords"]

TWIN_VERSION = "3"
"""Bump when the physics or a writer changes: a manifest from another version forces regeneration."""

EARTH_RADIUS_KM = 6371.0  #: mean Earth radius, km (local km coordinates of the random fields)

LAT_LIMITS = (-80.0, 84.0)
"""Southern and northern limits of a twin domain, degrees north: the twin never reaches the poles (its grids of
points at spacing 2r and its sinusoidal labels are made for latitudes where a cell has a finite width; the real
products' land north of 84 N and south of 80 S is ice)."""


def component_rng(seed: int, name: str) -> np.random.Generator:
    """An independent generator per component: ``(seed, crc32(name))``."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def check_resolution(res: float, key: str = "domain.resolution") -> int:
    """The number of 0.05 deg cells per twin cell for a resolution ``res`` (degrees); ValueError otherwise.

    The twin's resolution must be a multiple of the product's 0.05 deg (so that a coarse cell is whole 0.05 deg
    cells: a 0.05 deg zoom aggregates back onto it) and divide 180 deg (so that the global grid has whole rows
    from pole to pole and whole columns round the globe, and its cell edges fall on the product grid's).
    """
    k = res / RES
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise ValueError(f"{key}: {res} deg is not a multiple of {RES} deg (the product grid)")
    n = 180.0 / res
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"{key}: {res} deg does not divide 180 deg (whole rows from pole to pole)")
    return int(round(k))


def wrap_lon(lon) -> np.ndarray:
    """Longitudes wrapped to [-180, 180), degrees east (a column past the antimeridian -> its place on Earth)."""
    return np.round((np.asarray(lon, np.float64) + 180.0) % 360.0 - 180.0, 9)


@dataclass(frozen=True)
class TwinGrids:
    """The grids of the twin.

    Attributes
    ----------
    out : Domain
        The run's domain at its resolution r (what the product-grid files cover).
    sim : Domain
        Simulation domain at r: ``out`` grown to whole ERA5 points and CCI cells; its columns may lie past the
        antimeridian (negative, or >= 360/r) for a domain touching it or going round the globe.
    cci : Domain
        The CCI grid cells touching ``out`` (resolution ``twin.cci_resolution``).
    era5_rows, era5_cols : tuple of int
        First and last (inclusive) ERA5-Land-like point indices: latitude ``90 - 2r m``, longitude
        ``-180 + 2r n`` (the grid of points at spacing 2r; point *m* covers the r rows ``2m-1, 2m``, point *n* the
        columns ``2n-1, 2n``, as ERA5-Land's 0.1 deg points cover 0.05 deg cells).
    """

    out: Domain
    sim: Domain
    cci: Domain
    era5_rows: tuple[int, int]
    era5_cols: tuple[int, int]

    @property
    def res(self) -> float:
        """The run's resolution r, degrees."""
        return self.out.res

    @property
    def global_lon(self) -> bool:
        """Whether the domain goes round the globe in longitude (360 deg)."""
        return self.out.ncols * self.out.res >= 360.0 - 1e-6

    @property
    def sim_lat(self) -> np.ndarray:
        """Cell-centre latitudes of the simulation grid, descending, degrees north."""
        return self.sim.lat

    @property
    def sim_lon(self) -> np.ndarray:
        """Cell-centre longitudes of the simulation grid wrapped to [-180, 180), degrees east (where on Earth a
        column past the antimeridian is: evaluate the world's fields there)."""
        return wrap_lon(self.sim.lon)

    @property
    def out_in_sim(self) -> tuple[slice, slice]:
        """(row, column) slices of the run's domain in the simulation grid."""
        return self.out.slices_in(self.sim)

    @property
    def cci_factor(self) -> int:
        """Run cells per CCI cell along each axis."""
        return int(round(self.cci.res / self.out.res))

    @property
    def cci_in_sim(self) -> tuple[slice, slice]:
        """(row, column) slices of the r cells covered by the CCI cells in the simulation grid."""
        k = self.cci_factor
        fine = Domain(self.cci.row0 * k, self.cci.col0 * k, self.cci.nrows * k, self.cci.ncols * k, self.out.res)
        return fine.slices_in(self.sim)

    @property
    def era5_in_sim(self) -> tuple[slice, slice]:
        """(row, column) slices of the r cells averaged into the ERA5 points (2 x 2 each)."""
        (m0, m1), (n0, n1) = self.era5_rows, self.era5_cols
        fine = Domain(2 * m0 - 1, 2 * n0 - 1, 2 * (m1 - m0 + 1), 2 * (n1 - n0 + 1), self.out.res)
        return fine.slices_in(self.sim)

    @property
    def era5_lat(self) -> np.ndarray:
        """ERA5 point latitudes, descending, degrees north."""
        return np.round(90 - 2 * self.res * np.arange(self.era5_rows[0], self.era5_rows[1] + 1), 4)

    @property
    def era5_lon(self) -> np.ndarray:
        """ERA5 point longitudes in 0..360 (``lon % 360``), west to east, degrees east."""
        return np.round((-180 + 2 * self.res * np.arange(self.era5_cols[0], self.era5_cols[1] + 1)) % 360, 4)


def twin_grids(cfg) -> TwinGrids:
    """Grids of the twin for a config (see :class:`TwinGrids`).

    Raises
    ------
    ValueError
        ``domain.resolution`` not a multiple of 0.05 dividing 180; ``twin.cci_resolution`` not a multiple of it;
        a domain reaching beyond :data:`LAT_LIMITS`; a global domain whose CCI cells do not go round the globe
        exactly; a regional domain whose ERA5 points would reach longitude 180 (the readers take 180 for -180:
        use a global domain, or end the domain one point earlier).
    """
    r = float(cfg.domain.resolution)
    check_resolution(r)
    out = Domain.from_config(cfg)
    lo, hi = LAT_LIMITS
    if out.south < lo - 1e-9 or out.north > hi + 1e-9:
        raise ValueError(f"domain: the twin covers latitudes {lo:g}..{hi:g} only (it never reaches the poles), got "
                         f"{out.bounds_str()} at {r:g} deg (domain.lat_min / domain.lat_max, snapped outward)")
    k = cfg.twin.cci_resolution / r
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise ValueError(f"twin.cci_resolution {cfg.twin.cci_resolution} is not a multiple of domain.resolution {r}")
    k = round(k)
    ncols_globe = int(round(360.0 / r))
    glob = out.ncols >= ncols_globe
    cci_fine = out.expand_to_multiple(k)
    if glob and (cci_fine.col0 != 0 or cci_fine.ncols != ncols_globe):
        raise ValueError(f"twin.cci_resolution {cfg.twin.cci_resolution} does not divide 360 deg: the CCI-like cells "
                         "of a global domain would not go round the globe exactly")
    cci = Domain(cci_fine.row0 // k, cci_fine.col0 // k, cci_fine.nrows // k, cci_fine.ncols // k,
                 cfg.twin.cci_resolution)
    m0, m1 = (out.row0 + 1) // 2, (out.row0 + out.nrows) // 2
    if glob:            # every point once: n = 0 (lon -180 = 180) .. 180/r - 1, covering columns -1 .. 360/r - 2
        n0, n1 = 0, ncols_globe // 2 - 1
    else:
        n0, n1 = (out.col0 + 1) // 2, (out.col0 + out.ncols) // 2
        if n1 >= ncols_globe // 2:
            raise ValueError(f"domain: the twin's ERA5-Land-like points of a regional domain ending at longitude 180 "
                             f"would include the point at 180 deg, which the readers take for -180 "
                             f"({out.bounds_str()}); make the domain global (lon_min -180, lon_max 180) or end it "
                             f"one ERA5 point ({2 * r:g} deg) earlier")
    era_fine = Domain(2 * m0 - 1, 2 * n0 - 1, 2 * (m1 - m0 + 1), 2 * (n1 - n0 + 1), r)
    r0, c0 = min(cci_fine.row0, era_fine.row0, out.row0), min(cci_fine.col0, era_fine.col0, out.col0)
    r1 = max(cci_fine.row0 + cci_fine.nrows, era_fine.row0 + era_fine.nrows, out.row0 + out.nrows)
    c1 = max(cci_fine.col0 + cci_fine.ncols, era_fine.col0 + era_fine.ncols, out.col0 + out.ncols)
    nrows_globe = int(round(180.0 / r))
    if r0 < 0 or r1 > nrows_globe:
        raise ValueError(f"the twin's grids of domain {out.bounds_str()} reach a pole (twin.cci_resolution "
                         f"{cfg.twin.cci_resolution} at domain.resolution {r}): move the domain away from the pole")
    return TwinGrids(out, Domain(r0, c0, r1 - r0, c1 - c0, r), cci, (m0, m1), (n0, n1))


def km_coords(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Local equirectangular coordinates (x east, y north), km, of 2-D lat/lon arrays."""
    k = np.pi / 180 * EARTH_RADIUS_KM
    return (lon - lon0) * k * np.cos(np.deg2rad(lat0)), (lat - lat0) * k
