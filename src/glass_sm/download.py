"""Optional helpers to download the real input data (nothing here runs unless you call it).

The default pipeline runs on the synthetic twin and never downloads anything; ``make all`` and the tests do not
call these functions (the tests only check the URLs and request dictionaries they build, offline). See the
book page *Running on the real data* (``book/real_data.md``) for volumes, licences and the full procedure.

=====================  ====================================================  ==========================
dataset                helper                                                access
=====================  ====================================================  ==========================
GLASS AVHRR albedo     :func:`fetch_glass` ``('albedo', dates, dest)``        free, https archive (8-day)
GLASS AVHRR LST        :func:`fetch_glass` ``('lst', dates, dest)``           free, https archive
GLASS-MODIS SM         :func:`fetch_glass` ``('glass_modis_sm', ...)``        free, https archive
ERA5-Land swvl1        :func:`download_era5land` (``cdsapi``)                 free CDS account + licence
ISMN in situ           manual (:data:`ISMN_INSTRUCTIONS`)                     free account, terms of use
ESA CCI SM, DEM, soil  see ``book/real_data.md``                              free
=====================  ====================================================  ==========================

GLASS archive URLs
------------------
The GLASS products are served as plain https directory listings. The layout assumed here is::

    {base_url}/{folder}/{YYYY}/{file name}

with ``base_url`` = :data:`GLASS_BASE_URL` and ``folder`` from :data:`GLASS_PRODUCTS`. **This pattern was
written from the archive's public layout at the time of writing and is not guaranteed**: the archive has
moved before (glass.umd.edu -> glass.hku.hk), and folder names may change. Check the site's browse page and
pass ``base_url=`` / edit the product's ``folder`` if a listing returns 404. No checksums are published, so the
pooch registry entries carry ``None`` (no hash check; the readers' format checks still apply).

AVHRR file names contain the collection version and the production date (``GLASS02B05.V04.A1982001.2018062.hdf``,
``GLASS08B31.V40.A2000045.2021250.hdf``), which cannot be predicted: those products need the year's directory
listing (:func:`list_glass_files`, one small https request per year, or a listing you pass in); any version
``V<digits>`` is accepted and, when a listing holds several files of one date, the highest version and then the
latest production date is fetched (the readers' rule). The albedo is an **8-day composite** product (files at day
of year 1, 9, ..., 361): :func:`fetch_glass` maps the days asked for to the composites needed to interpolate them
(:func:`needed_dates`). GLASS-MODIS SM names are fixed (``GLASS_MODIS_SM.A2000055.tif``).
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

__all__ = [
    "GLASS_BASE_URL",
    "GLASS_PRODUCTS",
    "ISMN_INSTRUCTIONS",
    "ERA5LAND_DATASET",
    "glass_year_url",
    "parse_listing",
    "list_glass_files",
    "glass_registry",
    "needed_dates",
    "fetch_glass",
    "era5land_area",
    "era5land_request",
    "download_era5land",
]

#: root of the GLASS https archive (may change: see the module docstring)
GLASS_BASE_URL = "https://glass.hku.hk/archive"

#: per product: archive folder (below the base URL), file-name regex (group 1: YYYY, 2: DDD; any collection version
#: ``V<digits>``), local sub-folder relative to the data folder of ``params/global.yaml``, first day, cadence in
#: days (8: composites at day of year 1, 9, ..., 361), whether names are predictable (``template``)
GLASS_PRODUCTS: dict[str, dict] = {
    "albedo": dict(
        folder="Albedo/AVHRR/0.05D",   # UNVERIFIED: the albedo folder of glass.hku.hk was not found (LST's was)
        pattern=r"GLASS02B05\.V\d+\.A(\d{4})(\d{3})\.\d{7}\.hdf",
        local="avhrr/albedo",
        first_day=dt.date(1981, 6, 18),   # GLASS02B05.V04.A1981169.2018062.hdf, the first file seen in public lists
        cadence_days=8,
        template=None,
        description="GLASS02B05 V04 AVHRR broadband albedo, 8-day composites (day of year 1, 9, ..., 361), "
                    "0.05 deg, HDF-EOS2",
    ),
    "lst": dict(
        folder="LST/AVHRR/0.05D",
        pattern=r"GLASS08B31\.V\d+\.A(\d{4})(\d{3})\.\d{7}\.hdf",
        local="avhrr/lst",
        first_day=dt.date(1981, 7, 4),   # start unclear (1981/82 or 1992); ends 2020 (2021 not found)
        cadence_days=1,
        template=None,
        description="GLASS08B31 V40 AVHRR land surface temperature, daily, 0.05 deg, HDF4 (ends 2020)",
    ),
    "glass_modis_sm": dict(
        folder="SM/MODIS/1KM",
        pattern=r"GLASS_MODIS_SM\.A(\d{4})(\d{3})\.tif",
        local="glass_modis",
        first_day=dt.date(2000, 2, 24),
        cadence_days=1,
        template="GLASS_MODIS_SM.A{year:04d}{doy:03d}.tif",
        description="GLASS-MODIS surface soil moisture, daily, ~1 km sinusoidal, GeoTIFF",
    ),
}

ISMN_INSTRUCTIONS = """\
ISMN in situ soil moisture: manual download (no public API; the terms of use require a registered account).

1. Register (free) at https://ismn.earth and log in; read and accept the ISMN terms of use. Each network has
   its own citation: the archive's citation file lists them, cite them in any publication.
2. Data -> Data Access -> select networks (all, or those of the study region), variable 'soil moisture',
   period 1982-01-01 .. 2021-12-31 (the paper's validation uses stations with 0-5 cm sensors).
3. Choose the 'Variables stored in separate files (Header+values)' format (CEOP is read too) and request the
   download; ISMN e-mails a link to a zip archive when it is ready (minutes to hours for large requests).
4. Save the zip (do not extract: the reader takes the zip, or an extracted folder) and point
   data.stations_dir in params/global.yaml at it, e.g. {root}/ismn/Data_separate_files_header_19820101_20211231.zip
5. The first read scans the archive's metadata once (minutes for the full archive) and caches it in
   python_metadata/ next to the data (or in the cache_dir of glass_sm.io.ismn.read_ismn if read-only).
"""

ERA5LAND_DATASET = "reanalysis-era5-land"


# ----------------------------------------------------------------------------------------------------------
# GLASS (https archive, pooch)
# ----------------------------------------------------------------------------------------------------------
def _product(product: str) -> dict:
    try:
        return GLASS_PRODUCTS[product]
    except KeyError:
        raise ValueError(f"unknown GLASS product {product!r}; one of {', '.join(GLASS_PRODUCTS)}") from None


def glass_year_url(product: str, year: int, base_url: str = GLASS_BASE_URL) -> str:
    """URL of the archive folder holding one year of ``product``: ``{base_url}/{folder}/{YYYY}/``."""
    return f"{base_url.rstrip('/')}/{_product(product)['folder'].strip('/')}/{int(year):04d}/"


def parse_listing(text: str, product: str) -> list[str]:
    """File names of ``product`` found in a directory listing (HTML index page or plain text), sorted, unique."""
    pat = re.compile(_product(product)["pattern"])
    names = {m.group(0) for m in pat.finditer(html.unescape(text))}
    return sorted(names)


def list_glass_files(product: str, year: int, base_url: str = GLASS_BASE_URL) -> list[str]:
    """Download the year's directory listing (one https request) and return the file names of ``product``."""
    import pooch  # noqa: PLC0415

    url = glass_year_url(product, year, base_url)
    path = pooch.retrieve(url, known_hash=None, fname=f"glass_{product}_{year}_listing.html",
                          path=pooch.os_cache("glass_sm"), progressbar=False)
    return parse_listing(Path(path).read_text(errors="replace"), product)


def _name_date(name: str, product: str) -> dt.date:
    m = re.fullmatch(_product(product)["pattern"], name)
    if not m:
        raise ValueError(f"{name!r} is not a {product} file name")
    return dt.date(int(m.group(1)), 1, 1) + dt.timedelta(days=int(m.group(2)) - 1)


def _name_rank(name: str) -> tuple[int, int]:
    """(version, production date) of a GLASS AVHRR name, for "highest version, then latest production wins"."""
    m = re.search(r"\.V(\d+)\.A\d{7}\.(\d{7})\.", name)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def needed_dates(product: str, dates: Iterable[dt.date]) -> list[dt.date]:
    """The file dates of ``product`` needed for ``dates``: the dates themselves for a daily product; for a
    composite product (cadence ``c`` > 1, schedule day of year 1, 1 + c, ... restarting each year) the composite
    on or before each day and the next one (the two a daily value is interpolated from)."""
    spec = _product(product)
    c = int(spec.get("cadence_days", 1))
    days = sorted(set(dates))
    if c == 1:
        return days
    out = set()
    for d in days:
        doy = d.timetuple().tm_yday
        prev = dt.date(d.year, 1, 1) + dt.timedelta(days=(doy - 1) // c * c)
        nxt = prev + dt.timedelta(days=c)
        if nxt.year != prev.year:
            nxt = dt.date(prev.year + 1, 1, 1)
        out.add(prev)
        if prev != d:
            out.add(nxt)
    return sorted(out)


def glass_registry(
    product: str,
    years: Iterable[int],
    listing: Mapping[int, Iterable[str] | str] | None = None,
    base_url: str = GLASS_BASE_URL,
) -> tuple[dict[str, None], dict[str, str]]:
    """Pooch registry and URLs for whole years of a GLASS product.

    Parameters
    ----------
    product : {'albedo', 'lst', 'glass_modis_sm'}
        Key of :data:`GLASS_PRODUCTS`.
    years : iterable of int
        Years to include.
    listing : mapping, optional
        ``{year: file names or directory-listing text}``. Required for products whose names hold a production
        date (AVHRR); without it, names are built from the product's template (GLASS-MODIS SM).
    base_url : str
        Archive root (:data:`GLASS_BASE_URL`).

    Returns
    -------
    registry : dict
        ``{"<YYYY>/<file name>": None}`` (no known hashes) for ``pooch.create(registry=...)``.
    urls : dict
        ``{"<YYYY>/<file name>": full https URL}`` for ``pooch.create(urls=...)``.
    """
    spec = _product(product)
    registry: dict[str, None] = {}
    urls: dict[str, str] = {}
    for year in sorted(set(int(y) for y in years)):
        if listing is not None and year in listing:
            entry = listing[year]
            names = parse_listing(entry, product) if isinstance(entry, str) else sorted(set(entry))
        elif spec["template"] is not None:
            first = max(dt.date(year, 1, 1), spec["first_day"])
            last = dt.date(year, 12, 31)
            names = [spec["template"].format(year=d.year, doy=d.timetuple().tm_yday)
                     for d in (first + dt.timedelta(days=i) for i in range(max((last - first).days + 1, 0)))]
        else:
            raise ValueError(
                f"{product}: file names hold a production date; pass listing={{{year}: [...]}} or get it with "
                f"list_glass_files({product!r}, {year}) (reads {glass_year_url(product, year, base_url)})"
            )
        for name in names:
            if _name_date(name, product).year != year:
                continue
            key = f"{year:04d}/{name}"
            registry[key] = None
            urls[key] = glass_year_url(product, year, base_url) + name
    return registry, urls


def fetch_glass(
    product: str,
    dates: Iterable[dt.date],
    dest: str | os.PathLike,
    listing: Mapping[int, Iterable[str] | str] | None = None,
    base_url: str = GLASS_BASE_URL,
    progress: bool = True,
) -> list[Path]:
    """Download the files of ``product`` for ``dates`` into ``dest/<YYYY>/`` (skips files already there).

    Parameters
    ----------
    product : {'albedo', 'lst', 'glass_modis_sm'}
        Key of :data:`GLASS_PRODUCTS`.
    dates : iterable of datetime.date
        Days wanted (for the 8-day albedo: the composites on or before and after each day are fetched,
        :func:`needed_dates`); file dates missing from the archive's listing are skipped with one warning that
        lists them.
    dest : path-like
        Local product folder, e.g. ``$GLASS_SM_DATA/avhrr/albedo`` (the reader's layout).
    listing : mapping, optional
        Directory listings by year (see :func:`glass_registry`); fetched with :func:`list_glass_files` when
        missing and needed.
    base_url : str
        Archive root.
    progress : bool
        tqdm bar over the files.

    Returns
    -------
    list of pathlib.Path
        Local files, one per file date found in the archive.
    """
    import warnings  # noqa: PLC0415

    import pooch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    spec = _product(product)
    days = needed_dates(product, dates)
    years = sorted({d.year for d in days})
    listing = dict(listing or {})
    if spec["template"] is None:
        for y in years:
            if y not in listing:
                listing[y] = list_glass_files(product, y, base_url)
    registry, urls = glass_registry(product, years, listing, base_url)
    by_day: dict[dt.date, str] = {}
    for k in sorted(registry, key=lambda k: _name_rank(k.split("/", 1)[1])):   # highest version, latest production
        by_day[_name_date(k.split("/", 1)[1], product)] = k
    fetcher = pooch.create(path=Path(dest), base_url=base_url.rstrip("/") + "/", registry=registry, urls=urls,
                           retry_if_failed=3)
    out, missing = [], []
    for day in tqdm(days, desc=f"GLASS {product}", unit="file", disable=not progress):
        key = by_day.get(day)
        if key is None:
            missing.append(day)
            continue
        out.append(Path(fetcher.fetch(key, progressbar=False)))
    if missing:
        warnings.warn(f"GLASS {product}: {len(missing)} file date(s) not in the archive listing, e.g. {missing[:3]}",
                      stacklevel=2)
    return out


# ----------------------------------------------------------------------------------------------------------
# ERA5-Land (Copernicus Climate Data Store, cdsapi)
# ----------------------------------------------------------------------------------------------------------
def era5land_area(domain, margin: float = 0.1, res: float = 0.1) -> list[float]:
    """CDS ``area`` [North, West, South, East] covering ``domain`` on the 0.1 deg ERA5-Land grid, plus a margin.

    The box is snapped outward to the 0.1 deg grid and widened by ``margin`` degrees on each side so that the
    bilinear regridding to 0.05 deg has neighbours at the edges; it is clipped to the globe.
    """
    def down(v):
        return math.floor(round(v / res, 6)) * res

    def up(v):
        return math.ceil(round(v / res, 6)) * res

    north = min(90.0, up(domain.north) + margin)
    south = max(-90.0, down(domain.south) - margin)
    west = max(-180.0, down(domain.west) - margin)
    east = min(180.0, up(domain.east) + margin)
    return [round(north, 4), round(west, 4), round(south, 4), round(east, 4)]


def era5land_request(domain, years: Iterable[int], months: Iterable[int] = range(1, 13),
                     times: Iterable[str] | None = None, data_format: str = "netcdf") -> dict:
    """The cdsapi request for ERA5-Land volumetric soil water layer 1 (``swvl1``, 0-7 cm, m3 m-3).

    Parameters
    ----------
    domain : glass_sm.grid.Domain
        Area to request (see :func:`era5land_area`).
    years, months : iterable of int
        Years and months of the request (CDS limits the size of one request: one variable x one year of
        hourly steps over the globe is accepted at the time of writing; split per month if it is not).
    times : iterable of str, optional
        UTC hours ``"HH:00"``; default all 24 (hourly, the reader averages them to daily means).
    data_format : {'netcdf', 'grib'}
        Delivery format (both are read by :mod:`glass_sm.io.era5land`).

    Returns
    -------
    dict
        Request for ``cdsapi.Client().retrieve("reanalysis-era5-land", request, target)``.
    """
    if data_format not in ("netcdf", "grib"):
        raise ValueError(f"data_format must be 'netcdf' or 'grib', got {data_format!r}")
    years = sorted({int(y) for y in years})
    months = sorted({int(m) for m in months})
    if not years or not months or not all(1 <= m <= 12 for m in months):
        raise ValueError(f"need at least one year and months in 1..12, got {years}, {months}")
    return {
        "variable": ["volumetric_soil_water_layer_1"],
        "year": [f"{y:04d}" for y in years],
        "month": [f"{m:02d}" for m in months],
        "day": [f"{d:02d}" for d in range(1, 32)],
        "time": list(times) if times is not None else [f"{h:02d}:00" for h in range(24)],
        "area": era5land_area(domain),
        "data_format": data_format,
        "download_format": "unarchived",
    }


def download_era5land(domain, years: Iterable[int], dest: str | os.PathLike, months: Iterable[int] = range(1, 13),
                      per_month: bool = False, times: Iterable[str] | None = None, overwrite: bool = False,
                      client=None) -> list[Path]:
    """Download ERA5-Land swvl1 with ``cdsapi``: ``dest/era5land_swvl1_<YYYY>.nc`` (or ``_<YYYY><MM>.nc``).

    Needs a CDS account, the ERA5-Land licence accepted on the dataset page, and ``~/.cdsapirc`` with the API
    key (https://cds.climate.copernicus.eu/how-to-api). Files already present are skipped unless
    ``overwrite``; each file is written to ``<name>.partial`` first and renamed when complete.

    Parameters
    ----------
    domain : glass_sm.grid.Domain
        Area to download.
    years : iterable of int
        One file per year (or per month with ``per_month``).
    dest : path-like
        Folder (``data.era5land_dir``).
    months : iterable of int
        Months of each year.
    per_month : bool
        One request and file per month (for requests the CDS finds too large, e.g. the global domain).
    times : iterable of str, optional
        UTC hours, default all 24; ``["00:00", "06:00", "12:00", "18:00"]`` divides the volume by 6 (the daily
        mean is then a 4-step mean, as in the legacy CDS layout the twin imitates).
    overwrite : bool
        Download again files that exist.
    client : cdsapi.Client, optional
        An existing client (default: ``cdsapi.Client()`` from ``~/.cdsapirc``).

    Returns
    -------
    list of pathlib.Path
        The files, downloaded or already present.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if client is None:
        import cdsapi  # noqa: PLC0415

        client = cdsapi.Client()
    months = sorted({int(m) for m in months})
    times = list(times) if times is not None else None
    jobs = []
    for y in sorted({int(y) for y in years}):
        if per_month:
            jobs += [(dest / f"era5land_swvl1_{y:04d}{m:02d}.nc", era5land_request(domain, [y], [m], times))
                     for m in months]
        else:
            jobs.append((dest / f"era5land_swvl1_{y:04d}.nc", era5land_request(domain, [y], months, times)))
    out = []
    for target, request in jobs:
        if target.exists() and not overwrite:
            out.append(target)
            continue
        partial = target.with_name(target.name + ".partial")
        client.retrieve(ERA5LAND_DATASET, request, str(partial))
        os.replace(partial, target)
        out.append(target)
    return out
