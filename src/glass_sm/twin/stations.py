"""ISMN-like station placement for the twin's ``earth`` climate: where the in situ network is, and when.

The International Soil Moisture Network (ISMN) is not spread evenly over the land: it is dominated by North
America (SCAN, SNOTEL, USCRN, PBO_H2O, SOILSCAPE, COSMOS) and Europe (REMEDHUS, SMOSMANIA, FMI, HOBE, TERENO,
...), and sparse in Africa, South America, Asia and Australia (Dorigo et al. 2011, HESS 15, 1675-1698;
Dorigo et al. 2021, HESS 25, 5749-5804: 2842 stations in 71 networks). Its records before 2000 come almost
only from the gravimetric networks of the Global Soil Moisture Data Bank (Robock et al. 2000, BAMS 81,
1281-1299): the agro-meteorological and grassland plots of the former USSR (Russia, Ukraine, Kazakhstan), China
(1981-1999), Mongolia (1964-2002) and Illinois (1981-2010). A twin whose stations are uniform over the land
would give the pre-2000 evaluation and the station map a geography the real one does not have.

:data:`NETWORKS` is an ISMN-like table of networks: a centre, a spread, a relative weight (the approximate
number of ISMN stations) and the years recorded. :func:`place_stations` draws stations around it. The counts
and years follow the ISMN network list and the papers above; **the centres and spreads are approximate**
(one Gaussian blob per network, fitted by eye to where its stations are), not station coordinates.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

__all__ = ["Network", "NETWORKS", "network_table", "place_stations"]

Y2K = pd.Timestamp("2000-01-01")
YEAR = pd.Timedelta(days=365)
MIN_LEN_BEFORE = 2 * YEAR    #: shortest pre-2000 record (as sensors.station_periods): two growing seasons
MIN_LEN_AFTER = 3 * YEAR     #: shortest post-2000 record (as sensors.station_periods)
MIN_WINDOW = pd.Timedelta(days=90)   #: a network is eligible for a kind if it offers at least a season of days
BATCH, ROUNDS = 64, 8        #: candidate positions drawn per try, tries before the nearest-land fallback
FOOTPRINT_SIGMA = 2.0        #: a network "touches" the domain if centre +- 2 spread (95 %) meets it
FALLBACK_HALF_WIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0)   #: nearest-land search boxes, deg (x max(3 spread, 1))
FALLBACK_LATTICE = 81        #: lattice points per side of a fallback search box
MIN_COS_LAT = 0.2            #: floor of cos(lat) when a spread in degrees of arc is turned into longitude


class Network(NamedTuple):
    """One ISMN-like network.

    Attributes
    ----------
    name : str
        ISMN network abbreviation.
    lat, lon : float
        Approximate centre of its stations, degrees.
    spread : float
        Standard deviation of station positions about the centre, degrees of great-circle arc (the longitude
        spread is ``spread / cos(lat)``).
    weight : float
        Relative weight of the network in the draw: the approximate number of its ISMN stations (its share of
        the network).
    first, last : int
        First and last year recorded (``last=None``: still running, open-ended).
    pre2000 : bool
        A Global Soil Moisture Data Bank network (Robock et al. 2000), the source of the twin's records before
        2000. Modern networks (a few SCAN and ARM plots started in the late 1990s) are drawn after 2000 only.
    """

    name: str
    lat: float
    lon: float
    spread: float
    weight: float
    first: int
    last: int | None
    pre2000: bool = False


#: ISMN-like networks. Station counts and years: the ISMN network list (Dorigo et al. 2011, 2021) and the Global
#: Soil Moisture Data Bank (Robock et al. 2000); centres and spreads approximate (see the module docstring).
NETWORKS: tuple[Network, ...] = (
    # ---- Global Soil Moisture Data Bank: the pre-2000 records (Robock et al. 2000), gravimetric
    Network("RUSWET-GRASS", 53.0, 55.0, 8.0, 122, 1972, 1985, True),   # FSU grassland plots: Russia, Ukraine,
    #                                                                    Kazakhstan (0-10 cm from 1977)
    Network("RUSWET-AGRO", 51.0, 42.0, 6.0, 78, 1987, 1988, True),     # 78 FSU agricultural districts (ISMN: 212
    #                                                                    spring/winter crop "stations")
    Network("RUSWET-VALDAI", 57.9, 33.3, 0.3, 3, 1960, 1990, True),    # Valdai catchments, NW Russia
    Network("CHINA", 37.0, 114.0, 6.0, 40, 1981, 1999, True),          # north-east and central China
    Network("MONGOLIA", 47.0, 104.0, 3.5, 44, 1964, 2002, True),       # warm season only (Apr-Oct)
    Network("ICN", 40.0, -89.0, 1.5, 19, 1981, 2010, True),            # Illinois Climate Network ("ILLINOIS")
    Network("IOWA", 42.0, -93.5, 1.0, 6, 1972, 1994, True),            # Iowa watersheds
    # ---- North America
    Network("SCAN", 38.0, -95.0, 8.0, 230, 1996, None),       # NRCS Soil Climate Analysis Network, CONUS
    Network("SNOTEL", 42.0, -113.0, 5.0, 440, 2005, None),    # snow-course sites of the western mountains
    Network("USCRN", 39.0, -98.0, 9.0, 115, 2009, None),      # US Climate Reference Network, CONUS
    Network("PBO_H2O", 40.0, -112.0, 6.0, 150, 2004, 2017),   # GPS-reflectometry sites, western US
    Network("SOILSCAPE", 37.5, -120.5, 2.0, 120, 2011, None),  # wireless clusters, mostly California
    Network("COSMOS", 38.0, -100.0, 10.0, 60, 2008, None),    # cosmic-ray probes, mostly US
    Network("ARM", 36.6, -97.5, 1.0, 30, 1996, None),         # Southern Great Plains (Oklahoma, Kansas)
    Network("TxSON", 30.4, -98.8, 0.3, 40, 2015, None),       # Texas Soil Observation Network
    Network("RISMA", 50.5, -98.0, 4.0, 24, 2013, None),       # Canadian prairies (Manitoba, Saskatchewan)
    # ---- Europe
    Network("REMEDHUS", 41.3, -5.4, 0.2, 24, 2005, None),     # Duero basin, Spain
    Network("SMOSMANIA", 43.6, 1.5, 1.5, 22, 2003, None),     # Atlantic-Mediterranean transect, S France
    Network("FMI", 67.4, 26.6, 1.0, 27, 2007, None),          # Sodankyla, Finland
    Network("HOBE", 55.9, 8.9, 0.3, 32, 2009, 2019),          # Skjern catchment, Denmark
    Network("TERENO", 51.0, 9.0, 2.5, 5, 2009, None),         # German observatories (Eifel to Harz)
    Network("UMBRIA", 42.9, 12.4, 0.5, 13, 2002, 2017),       # central Italy
    Network("UDC_SMOS", 47.9, 11.2, 0.3, 11, 2007, 2012),     # upper Danube, Germany
    Network("WEGENERNET", 46.9, 15.9, 0.1, 12, 2007, None),   # Feldbach region, Austria
    Network("HOAL", 48.2, 15.2, 0.1, 33, 2013, None),         # Petzenkirchen, Austria
    Network("RSMN", 45.5, 25.5, 2.0, 20, 2014, None),         # Romanian Soil Moisture Network
    Network("COSMOS-UK", 53.0, -2.0, 2.0, 50, 2013, None),    # cosmic-ray probes, Great Britain
    # ---- Africa
    Network("AMMA-CATCH", 12.5, 1.0, 3.0, 7, 2006, None),     # Benin, Niger, Mali (Sahel)
    Network("TAHMO", 5.0, 20.0, 14.0, 40, 2015, None),        # Trans-African Hydro-Meteorological Observatory
    Network("DAHRA", 15.4, -15.4, 0.2, 1, 2002, 2015),        # Senegal
    Network("SD_DEM", 13.3, 30.5, 0.5, 2, 2002, 2012),        # Sudan
    # ---- South America
    Network("LAB-net", -35.0, -71.5, 2.5, 4, 2014, None),     # Chile
    # ---- Asia
    Network("CTP_SMTMN", 31.4, 91.9, 0.5, 57, 2010, None),    # central Tibetan Plateau (Naqu)
    Network("MAQU", 33.9, 102.1, 0.3, 20, 2008, None),        # eastern Tibetan Plateau
    Network("NGARI", 32.5, 80.0, 0.5, 20, 2010, None),        # western Tibetan Plateau
    Network("SW-WHU", 30.5, 114.4, 0.3, 7, 2014, None),       # Wuhan, China
    Network("KIHS_CMC", 36.5, 127.8, 1.0, 18, 2019, None),    # Korea
    Network("IIT_KANPUR", 26.5, 80.2, 0.1, 1, 2011, None),    # India
    # ---- Australia
    Network("OZNET", -35.0, 146.5, 1.5, 38, 2001, None),      # Murrumbidgee catchment
    Network("SASMAS", -32.0, 150.5, 0.5, 14, 2002, 2007),     # upper Hunter, New South Wales
)


def network_table() -> pd.DataFrame:
    """:data:`NETWORKS` as a table (one row per network; ``last`` NaN while running), e.g. for the book."""
    return pd.DataFrame([n._asdict() for n in NETWORKS])


# ---- geometry
def _lon_scale(lat: float) -> float:
    """Degrees of longitude per degree of great-circle arc at ``lat`` (floored near the poles)."""
    return 1.0 / max(np.cos(np.deg2rad(lat)), MIN_COS_LAT)


def _wrap(lon, west: float):
    """Longitude ``lon`` (deg) wrapped into ``[west, west + 360)``."""
    return west + np.mod(np.asarray(lon, dtype=np.float64) - west, 360.0)


def _inside(lat, lon, bounds) -> np.ndarray:
    """Strictly inside ``bounds`` (``south < lat < north``, ``west <= lon < east``; ``lon`` already wrapped)."""
    s, n, w, e = bounds
    return (lat > s) & (lat < n) & (lon >= w) & (lon < e)


def _touches(net: Network, bounds) -> bool:
    """Does the network's footprint (centre +- :data:`FOOTPRINT_SIGMA` spreads) meet ``bounds``?"""
    s, n, w, e = bounds
    dlat = FOOTPRINT_SIGMA * net.spread
    if net.lat + dlat <= s or net.lat - dlat >= n:
        return False
    if e - w >= 360.0:
        return True
    dlon = FOOTPRINT_SIGMA * net.spread * _lon_scale(net.lat)
    lo = float(_wrap(net.lon - dlon, w))          # footprint start, measured eastwards from the west edge
    return lo < e or lo + 2 * dlon >= w + 360.0


def _arc_deg(lat0, lon0, lat, lon) -> np.ndarray:
    """Great-circle distance, degrees of arc (haversine)."""
    p0, p, dl = np.deg2rad(lat0), np.deg2rad(lat), np.deg2rad(np.asarray(lon) - lon0)
    h = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(dl / 2) ** 2
    return np.rad2deg(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def _valid(land_fn, lat, lon, bounds) -> np.ndarray:
    """In ``bounds`` and on land (``land_fn`` evaluated only at the points inside)."""
    ok = _inside(lat, lon, bounds)
    if ok.any():
        land = np.asarray(land_fn(lat[ok], lon[ok]), dtype=bool).reshape(-1)
        if land.size != int(ok.sum()):
            raise ValueError(f"land_fn returned {land.size} values for {int(ok.sum())} points: it must map "
                             "arrays lat, lon (deg) to a bool array of the same shape")
        ok[np.flatnonzero(ok)] = land
    return ok


def _position(rng, net: Network, bounds, land_fn) -> tuple[float, float]:
    """A land position in ``bounds`` for a station of ``net`` (deg).

    Centre + Gaussian spread, drawn :data:`BATCH` at a time for up to :data:`ROUNDS` tries; the first valid
    candidate is taken. If none is valid (a small network on a coast at a coarse resolution, a network at the
    edge of the domain), the station goes to the valid lattice point nearest to the first candidate, searched
    in growing boxes about the network's centre (:data:`FALLBACK_HALF_WIDTHS`): a real station is on land, so
    it sits in the nearest land cell of the grid.
    """
    w = bounds[2]
    first = None
    for _ in range(ROUNDS):
        z = rng.standard_normal((2, BATCH))
        lat = net.lat + net.spread * z[0]
        lon = _wrap(net.lon + net.spread * _lon_scale(net.lat) * z[1], w)
        if first is None:
            first = (float(np.clip(lat[0], bounds[0], bounds[1])), float(lon[0]))
        ok = _valid(land_fn, lat, lon, bounds)
        if ok.any():
            k = int(np.argmax(ok))
            return float(lat[k]), float(lon[k])
    base = max(3.0 * net.spread, 1.0)
    for half in FALLBACK_HALF_WIDTHS:
        h = half * base
        la = np.linspace(max(net.lat - h, bounds[0]), min(net.lat + h, bounds[1]), FALLBACK_LATTICE)
        lo = net.lon + np.linspace(-h, h, FALLBACK_LATTICE) * _lon_scale(net.lat)
        la, lo = np.meshgrid(la, lo, indexing="ij")
        la, lo = la.ravel(), _wrap(lo.ravel(), w)
        ok = _valid(land_fn, la, lo, bounds)
        if ok.any():
            d = _arc_deg(first[0], first[1], la[ok], lo[ok])
            k = int(np.argmin(d))
            return float(la[ok][k]), float(lo[ok][k])
    raise ValueError(f"no land point inside the domain (south, north, west, east) = {tuple(bounds)} within "
                     f"{FALLBACK_HALF_WIDTHS[-1] * base:g} deg of network {net.name} "
                     f"(centre {net.lat:g}, {net.lon:g}): land_fn is False everywhere there")


# ---- periods
def _years(net: Network, p1: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day the network recorded (a running network: up to the run's end ``p1``)."""
    end = p1 if net.last is None else pd.Timestamp(f"{net.last}-12-31")
    return pd.Timestamp(f"{net.first}-01-01"), end


def _window(net: Network, kind: str, p0, p1):
    """``(lo, hi)``: the days a station of ``kind`` from ``net`` may cover within the run, or None.

    'before' ends before 2000 (Data Bank networks only), 'across' covers 1 January 2000 (Data Bank networks that
    kept recording after 1999), 'after' starts 2000 on (every network still recording then).
    """
    n0, n1 = _years(net, p1)
    lo, hi = max(p0, n0), min(p1, n1)
    if kind == "before":
        if not net.pre2000:
            return None
        hi = min(hi, Y2K - pd.Timedelta(days=1))
        need = min(MIN_WINDOW, p1 - p0)
    elif kind == "after":
        lo = max(lo, Y2K)
        need = min(MIN_WINDOW, p1 - p0)
    else:   # across: at least a season on each side of 1 January 2000
        if not net.pre2000 or lo > Y2K - MIN_WINDOW or hi < Y2K + MIN_WINDOW:
            return None
        return lo, hi
    return (lo, hi) if hi - lo >= need else None


def _span(rng, lo, hi, min_len) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A random sub-period of ``[lo, hi]`` at least ``min(min_len, (hi - lo) / 2)`` long (as station_periods)."""
    min_len = min(min_len, 0.5 * (hi - lo))
    start = lo + (hi - min_len - lo) * rng.random()
    length = min_len + (hi - start - min_len) * rng.random()
    return start.normalize(), min(start + length, hi).normalize()


def _period(rng, kind, lo, hi) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of a station of ``kind`` inside the window ``[lo, hi]`` (normalized days)."""
    if kind == "before":
        return _span(rng, lo, hi, MIN_LEN_BEFORE)
    if kind == "after":
        return _span(rng, lo, hi, MIN_LEN_AFTER)
    # across: starts in the first half of the pre-2000 part, ends a year or more after 2000 where possible
    s = (lo + (Y2K - MIN_WINDOW - lo) * rng.random() * 0.5).normalize()
    e0 = min(Y2K + YEAR, hi)
    e = (e0 + (hi - e0) * rng.random()).normalize()
    return s, min(max(e, Y2K), hi)


def _kinds(n: int, frac_pre2000: float, p0, p1) -> list[str]:
    """Kinds in the order of sensors.station_periods: the pre-2000 share half 'across', half 'before'."""
    if p1 < Y2K:
        return ["before"] * n
    if p0 >= Y2K:
        return ["after"] * n
    n_pre = int(round(frac_pre2000 * n))
    return ["across"] * ((n_pre + 1) // 2) + ["before"] * (n_pre // 2) + ["after"] * (n - n_pre)


def place_stations(rng: np.random.Generator, n: int, bounds: Sequence[float],
                   land_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], start, end,
                   frac_pre2000: float) -> pd.DataFrame:
    """Place ``n`` ISMN-like stations on land inside ``bounds`` and draw their record periods.

    The pre-2000 share (``round(frac_pre2000 n)`` stations, half 'across' 2000 and half 'before', as
    :func:`glass_sm.twin.sensors.station_periods`) is drawn from the Data Bank networks with records before 2000
    (``Network.pre2000``), the rest ('after') from every network still recording after 1999; within a kind, a
    network is drawn with probability proportional to its ``weight`` among the networks that can give that kind
    (records inside the run for at least a season, footprint meeting ``bounds``). A network whose footprint
    misses ``bounds`` gets weight 0, so a regional run draws only from the networks inside it. If no network can
    give 'across' but some can give 'before' (or the reverse), the pre-2000 share goes to the possible kind.
    Record periods lie inside the network's years and the run, at least 2 years before 2000 and 3 years after
    (clipped to half the available window), as :func:`glass_sm.twin.sensors.station_periods`.

    Parameters
    ----------
    rng : numpy.random.Generator
        The stations' stream (e.g. ``component_rng(seed, "stations")``); same state, same stations.
    n : int
        Number of stations.
    bounds : sequence of float
        ``(south, north, west, east)`` of the run's domain, deg; stations are strictly inside (``west <= lon <
        east``). A domain 360 deg wide is global in longitude (longitudes are then wrapped into it).
    land_fn : callable
        ``land_fn(lat, lon) -> bool array`` for 1-D arrays of positions (deg; longitudes in the domain's
        convention, wrapped into ``[west, west + 360)``): True where a station may stand (the twin's land mask at
        its resolution, permanent ice excluded).
    start, end : str or pandas.Timestamp
        The run's first and last day.
    frac_pre2000 : float
        Share of stations whose record starts before 2000, 0-1 (``twin.station_pre2000_fraction``).

    Returns
    -------
    pandas.DataFrame
        One row per station, columns ``network`` (str), ``lat``, ``lon`` (deg), ``start``, ``end`` (normalized
        Timestamps, ``start <= end``, inside ``start..end`` of the run) and ``kind`` (``'before'``: ends before
        2000; ``'across'``; ``'after'``: starts 2000 on), in the order across, before, after.

    Raises
    ------
    ValueError
        Bad arguments; no network inside ``bounds`` (``twin.climate: earth`` needs a domain containing at least
        one network); no network able to give a needed kind; or no land near a drawn network.
    """
    p0, p1 = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if p1 < p0:
        raise ValueError(f"place_stations: end {p1.date()} is before start {p0.date()}")
    if int(n) != n or n < 0:
        raise ValueError(f"place_stations: n must be a whole number >= 0, got {n!r}")
    if not 0.0 <= frac_pre2000 <= 1.0:
        raise ValueError(f"place_stations: frac_pre2000 (twin.station_pre2000_fraction) must be in 0..1, got "
                         f"{frac_pre2000!r}")
    s, nn, w, e = (float(b) for b in bounds)
    if not (-90.0 <= s < nn <= 90.0 and w < e and e - w <= 360.0):
        raise ValueError(f"place_stations: bounds (south, north, west, east) = {tuple(bounds)} is not a domain")
    bounds = (s, nn, w, e)
    cols = ["network", "lat", "lon", "start", "end", "kind"]
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("start", "end") else
                                          (float if c in ("lat", "lon") else object)) for c in cols})
    inside = [net for net in NETWORKS if _touches(net, bounds)]
    if not inside:
        raise ValueError(f"no ISMN-like network (glass_sm.twin.stations.NETWORKS) lies in the domain (south, "
                         f"north, west, east) = {bounds}: `twin.climate: earth` needs a domain containing at "
                         "least one network")
    kinds = _kinds(int(n), frac_pre2000, p0, p1)
    choices = {}
    for kind in ("across", "before", "after"):
        wins = [(net, _window(net, kind, p0, p1)) for net in inside]
        choices[kind] = [(net, win) for net, win in wins if win is not None]
    for a, b in (("across", "before"), ("before", "across")):
        if not choices[a] and choices[b]:
            kinds = [b if k == a else k for k in kinds]
    for kind in dict.fromkeys(kinds):
        if not choices[kind]:
            what = ("recording from 2000 on" if kind == "after" else
                    "with records before 2000 (a Data Bank network: NETWORKS with pre2000=True)")
            hint = ("" if kind == "after" else "; twin.station_pre2000_fraction: 0 asks for none")
            raise ValueError(f"no ISMN-like network {what} lies in the domain {bounds} and the period "
                             f"{p0.date()}..{p1.date()}: {kinds.count(kind)} '{kind}' stations asked by "
                             f"twin.n_stations and twin.station_pre2000_fraction{hint}")
    rows = []
    for kind in kinds:
        nets = choices[kind]
        wgt = np.array([net.weight for net, _ in nets], dtype=np.float64)
        net, (lo, hi) = nets[int(rng.choice(len(nets), p=wgt / wgt.sum()))]
        t0, t1 = _period(rng, kind, lo, hi)
        lat, lon = _position(rng, net, bounds, land_fn)
        rows.append((net.name, lat, lon, t0, t1, kind))
    return pd.DataFrame(rows, columns=cols)
