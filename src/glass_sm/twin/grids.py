"""The twin's grids and random streams: what every part of the twin shares.

The twin simulates on a 0.05 deg *simulation grid* slightly larger than the run's domain (so that the 0.1 deg
ERA5-Land points and the 0.25 deg CCI cells that touch the domain are whole) and writes the domain
(:class:`TwinGrids`). Every random component draws from its own generator seeded by ``(run.seed, component
name)`` (:func:`component_rng`): changing the number of stations does not change the weather.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from glass_sm.grid import RES, Domain

__all__ = ["TWIN_VERSION", "EARTH_RADIUS_KM", "component_rng", "TwinGrids", "twin_grids", "km_coords"]

TWIN_VERSION = "2"
"""Bump when the physics or a writer changes: a manifest from another version forces regeneration."""

EARTH_RADIUS_KM = 6371.0  #: mean Earth radius, km (local km coordinates of the random fields)


def component_rng(seed: int, name: str) -> np.random.Generator:
    """An independent generator per component: ``(seed, crc32(name))``."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


@dataclass(frozen=True)
class TwinGrids:
    """The grids of the twin.

    Attributes
    ----------
    out : Domain
        The run's 0.05 deg domain (what the 0.05 deg files cover).
    sim : Domain
        0.05 deg simulation domain: ``out`` grown to whole ERA5 (0.1 deg) and CCI cells.
    cci : Domain
        The CCI grid cells touching ``out`` (resolution ``twin.cci_resolution``).
    era5_rows, era5_cols : tuple of int
        First and last (inclusive) ERA5-Land point indices: latitude ``90 - 0.1 m``, longitude
        ``-180 + 0.1 n`` (ERA5-Land's 0.1 deg grid of points; point *m* covers 0.05 deg rows ``2m-1, 2m``).
    """

    out: Domain
    sim: Domain
    cci: Domain
    era5_rows: tuple[int, int]
    era5_cols: tuple[int, int]

    @property
    def out_in_sim(self) -> tuple[slice, slice]:
        """(row, column) slices of the run's domain in the simulation grid."""
        return self.out.slices_in(self.sim)

    @property
    def cci_in_sim(self) -> tuple[slice, slice]:
        """(row, column) slices of the 0.05 deg cells covered by the CCI cells in the simulation grid."""
        k = round(self.cci.res / RES)
        fine = Domain(self.cci.row0 * k, self.cci.col0 * k, self.cci.nrows * k, self.cci.ncols * k)
        return fine.slices_in(self.sim)

    @property
    def era5_in_sim(self) -> tuple[slice, slice]:
        """(row, column) slices of the 0.05 deg cells averaged into the ERA5 points (2 x 2 each)."""
        (m0, m1), (n0, n1) = self.era5_rows, self.era5_cols
        fine = Domain(2 * m0 - 1, 2 * n0 - 1, 2 * (m1 - m0 + 1), 2 * (n1 - n0 + 1))
        return fine.slices_in(self.sim)

    @property
    def era5_lat(self) -> np.ndarray:
        """ERA5 point latitudes, descending, degrees north."""
        return np.round(90 - 0.1 * np.arange(self.era5_rows[0], self.era5_rows[1] + 1), 4)

    @property
    def era5_lon(self) -> np.ndarray:
        """ERA5 point longitudes in 0..360 (``lon % 360``), west to east, degrees east."""
        return np.round((-180 + 0.1 * np.arange(self.era5_cols[0], self.era5_cols[1] + 1)) % 360, 4)


def twin_grids(cfg) -> TwinGrids:
    """Grids of the twin for a config (see :class:`TwinGrids`)."""
    out = Domain.from_config(cfg)
    k = cfg.twin.cci_resolution / RES
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise ValueError(f"twin.cci_resolution {cfg.twin.cci_resolution} is not a multiple of {RES}")
    k = round(k)
    cci_fine = out.expand_to_multiple(k)
    cci = Domain(cci_fine.row0 // k, cci_fine.col0 // k, cci_fine.nrows // k, cci_fine.ncols // k,
                 cfg.twin.cci_resolution)
    m0, m1 = (out.row0 + 1) // 2, (out.row0 + out.nrows) // 2
    n0, n1 = (out.col0 + 1) // 2, (out.col0 + out.ncols) // 2
    era_fine = Domain(2 * m0 - 1, 2 * n0 - 1, 2 * (m1 - m0 + 1), 2 * (n1 - n0 + 1))
    r0, c0 = min(cci_fine.row0, era_fine.row0), min(cci_fine.col0, era_fine.col0)
    r1 = max(cci_fine.row0 + cci_fine.nrows, era_fine.row0 + era_fine.nrows)
    c1 = max(cci_fine.col0 + cci_fine.ncols, era_fine.col0 + era_fine.ncols)
    if r0 < 0 or c0 < 0 or r1 > 3600 or c1 > 7200:
        raise ValueError(f"the twin cannot simulate a domain touching the poles or the antimeridian "
                         f"({out.bounds_str()})")
    return TwinGrids(out, Domain(r0, c0, r1 - r0, c1 - c0), cci, (m0, m1), (n0, n1))


def km_coords(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Local equirectangular coordinates (x east, y north), km, of 2-D lat/lon arrays."""
    k = np.pi / 180 * EARTH_RADIUS_KM
    return (lon - lon0) * k * np.cos(np.deg2rad(lat0)), (lat - lat0) * k

