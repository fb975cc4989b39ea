"""The product's STAC catalog: a collection of the daily year files and one of the annual means, one item per file.

Stage 04 writes it beside the product (:func:`write_catalog`), made with ``pystac``, so that a data portal or a
user can find the files, their extent, days, variables and checksums without opening them::

    product/catalog.json                                   root catalog (entry point)
    product/collection.json                                collection GLASS_AVHRR_SM (daily year files)
    product/GLASS_AVHRR_SM_<YYYY>.json                     item of GLASS_AVHRR_SM_<YYYY>.nc, beside it
    product/annual/collection.json                         collection GLASS_AVHRR_SM_annual_mean
    product/annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.json  item of the annual-mean file of <YYYY>

Every link and asset href is *relative* (a self-contained catalog), so the ``product/`` folder can be moved or
published as it is. Each item carries

- ``bbox``/``geometry``: the area the cells cover (cell *edges*: the centres +- half a cell), and
  ``start_datetime``/``end_datetime``: the first day 00:00 to the last day 23:59:59 UTC;
- the datacube extension (``cube:dimensions`` time/lat/lon with extent and step, ``cube:variables`` ``sm`` and
  ``sm_flag`` with units and meaning);
- the file extension on its asset (``file:size``, ``file:checksum``: SHA-256 as a multihash, ``1220`` + hex);
- the scientific extension (the paper, doi:10.5194/essd-17-5181-2025, with its ``cite-as`` link).

Everything is read from the files themselves (their CF/ACDD attributes, :mod:`glass_sm.product`), and nothing
depends on the clock or the machine, so the same files give the same catalog bytes.

:func:`validate_catalog` checks it offline: the core STAC JSON schemas that ``pystac`` ships (item, collection,
catalog) with ``jsonschema``, and -- because the extension schemas would have to be downloaded -- the
extensions' fields structurally (required fields, types, multihash form), then that every asset exists with the
recorded size (and, with ``checksums=True``, SHA-256). :func:`open_from_catalog` opens the record from it with
xarray.

Cost: writing hashes every file once (SHA-256 reads about 0.5-1 GB/s per core), which for the paper's global
record is a few tens of minutes next to thousands of core-hours of production.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pystac
import pystac.validation
import xarray as xr
from pystac.extensions.datacube import DatacubeExtension, Dimension, Variable
from pystac.extensions.file import FileExtension
from pystac.extensions.scientific import Publication, ScientificExtension

from glass_sm import product
from glass_sm.grid import RES

__all__ = [
    "CATALOG_NAME",
    "DAILY_COLLECTION",
    "ANNUAL_COLLECTION",
    "ASSET_KEY",
    "CatalogError",
    "catalog_path",
    "file_sha256_multihash",
    "item_for_file",
    "build_catalog",
    "write_catalog",
    "validate_catalog",
    "open_from_catalog",
    "catalog_summary",
]

CATALOG_NAME = "catalog.json"  #: the root catalog, ``product/catalog.json``
DAILY_COLLECTION = product.PRODUCT_NAME  #: id of the collection of the daily year files
ANNUAL_COLLECTION = f"{product.PRODUCT_NAME}_annual_mean"  #: id of the collection of the annual means
ASSET_KEY = "data"  #: key of the NetCDF asset of every item
NETCDF_MEDIA_TYPE = "application/x-netcdf"  #: the registered media type of NetCDF files
PAPER_URL = f"https://doi.org/{product.PAPER_DOI}"
MULTIHASH_SHA256 = "1220"  #: multihash prefix of a SHA-256 digest (code 0x12, 32 bytes)


class CatalogError(ValueError):
    """The catalog does not describe the product correctly (what and where is in the message)."""


def catalog_path(product_folder: str | os.PathLike) -> Path:
    """``<product_folder>/catalog.json``."""
    return Path(product_folder) / CATALOG_NAME


def file_sha256_multihash(path: str | os.PathLike, block: int = 1 << 22) -> str:
    """SHA-256 of a file as the STAC file extension wants it: a hex multihash, ``"1220" + hexdigest``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return MULTIHASH_SHA256 + h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Items and collections
# ----------------------------------------------------------------------------------------------------------
def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_header(path: Path) -> dict:
    """What an item needs from a product file: global attributes, cell centres, days, variable attributes."""
    with netCDF4.Dataset(path) as nc:
        attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
        lat = np.asarray(nc["lat"][:], np.float64)
        lon = np.asarray(nc["lon"][:], np.float64)
        tv = nc["time"]
        days = netCDF4.num2date(tv[:], tv.units, getattr(tv, "calendar", "standard"),
                                only_use_cftime_datetimes=False, only_use_python_datetimes=True)
        times = pd.DatetimeIndex([pd.Timestamp(d) for d in np.atleast_1d(days)])
        if "time_bnds" in nc.variables:
            b = nc["time_bnds"][:]
            bounds = netCDF4.num2date(np.asarray(b).ravel(), tv.units, getattr(tv, "calendar", "standard"),
                                      only_use_cftime_datetimes=False, only_use_python_datetimes=True)
            bounds = pd.DatetimeIndex([pd.Timestamp(d) for d in bounds])
            start, end = bounds.min(), bounds.max() - pd.Timedelta(seconds=1)
        else:
            start, end = times.min(), times.max() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
        variables = {}
        for name in ("sm", "sm_flag"):
            if name in nc.variables:
                v = nc[name]
                variables[name] = {k: v.getncattr(k) for k in v.ncattrs()}
                variables[name]["dtype"] = str(v.dtype)
                variables[name]["dims"] = list(v.dimensions)
    return {"attrs": attrs, "lat": lat, "lon": lon, "times": times, "start": start, "end": end,
            "variables": variables, "annual": "time_bnds" in variables or "cell_methods" in variables.get("sm", {})}


def _edges(centres: np.ndarray) -> tuple[float, float]:
    """Outer edges of a regular axis of cell centres (its own spacing; a single cell: the product grid's)."""
    step = float(np.min(np.abs(np.diff(np.unique(centres))))) if np.unique(centres).size > 1 else RES
    half = step / 2
    return float(np.min(centres) - half), float(np.max(centres) + half)


def _bbox(lat: np.ndarray, lon: np.ndarray) -> list[float]:
    south, north = _edges(lat)
    west, east = _edges(lon)
    return [round(west, 6), round(south, 6), round(east, 6), round(north, 6)]


def _polygon(bbox: list[float]) -> dict:
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _datacube(head: dict) -> tuple[dict[str, Dimension], dict[str, Variable]]:
    lat, lon, times = head["lat"], head["lon"], head["times"]
    step = None
    if len(times) > 1:
        diffs = np.unique(np.diff(times.values).astype("timedelta64[D]").astype(int))
        step = f"P{int(diffs[0])}D" if len(diffs) == 1 else None
    dims = {
        "time": Dimension.from_dict({"type": "temporal", "extent": [_iso(head["start"]), _iso(head["end"])],
                                     "step": "P1Y" if head["annual"] else step,
                                     "description": ("year: 1 January, the mean is over time_bnds"
                                                     if head["annual"] else
                                                     "day (00:00 UTC of the day the value is for)")}),
        "lat": Dimension.from_dict({"type": "spatial", "axis": "y", "extent": [float(lat.min()), float(lat.max())],
                                    "step": float(round(lat[1] - lat[0], 10)) if len(lat) > 1 else None,
                                    "reference_system": 4326,
                                    "description": "cell centre latitude, descending (north up)"}),
        "lon": Dimension.from_dict({"type": "spatial", "axis": "x", "extent": [float(lon.min()), float(lon.max())],
                                    "step": float(round(lon[1] - lon[0], 10)) if len(lon) > 1 else None,
                                    "reference_system": 4326, "description": "cell centre longitude"}),
    }
    for d in dims.values():
        if d.properties.get("step") is None:
            d.properties.pop("step", None)
    variables = {}
    for name, v in head["variables"].items():
        props = {"type": "data" if name == "sm" else "auxiliary", "dimensions": v["dims"],
                 "description": str(v.get("long_name", name))}
        if name == "sm":
            props["unit"] = str(v.get("units", "m3 m-3"))
            props["extent"] = [product.VALID_MIN, product.VALID_MAX]
        else:
            props["description"] += (": bit field, " + ", ".join(
                f"{bit} {meaning}" for meaning, bit in product.FLAG_BITS.items())
                + f"; {product.FLAG_FILL_STORED} off land")
        variables[name] = Variable.from_dict(props)
    return dims, variables


def _publication() -> Publication:
    return Publication(product.PAPER_DOI,
                       "Zhang, Y. et al. (2025): A seamless global daily 5 km soil moisture product from 1982 to "
                       "2021 using AVHRR satellite data and an attention-based deep learning model, Earth Syst. "
                       "Sci. Data 17, 5181-5207")


def _add_paper_links(obj: pystac.Item | pystac.Collection) -> None:
    """The paper as a ``sci:publications`` entry (the scientific extension adds its ``cite-as`` link)."""
    ScientificExtension.ext(obj, add_if_missing=True).apply(publications=[_publication()])
    if not any(link.rel == "cite-as" for link in obj.links):
        obj.add_link(pystac.Link("cite-as", PAPER_URL, media_type="text/html"))


def item_for_file(path: str | os.PathLike, checksum: bool = True) -> pystac.Item:
    """The STAC item of one product file (daily year file or annual mean), its asset's href absolute.

    Parameters
    ----------
    path : path-like
        ``GLASS_AVHRR_SM_<YYYY>.nc`` or ``annual/GLASS_AVHRR_SM_annual_mean_<YYYY>.nc``.
    checksum : bool
        Record ``file:checksum`` (SHA-256 of the whole file).
    """
    path = Path(path).resolve()
    head = _read_header(path)
    a = head["attrs"]
    bbox = _bbox(head["lat"], head["lon"])
    item = pystac.Item(
        id=path.stem, geometry=_polygon(bbox), bbox=bbox, datetime=None,
        start_datetime=head["start"].to_pydatetime(), end_datetime=head["end"].to_pydatetime(),
        properties={"title": str(a.get("title", path.stem)),
                    "description": str(a.get("summary", "")),
                    "glass_sm:product_version": str(a.get("product_version", "")),
                    "glass_sm:file_id": str(a.get("id", "")),
                    "glass_sm:checkpoint_sha256": str(a.get("checkpoint_sha256", "")),
                    "glass_sm:source": str(a.get("source", ""))},
    )
    item.common_metadata.license = "other"
    item.common_metadata.providers = [pystac.Provider(str(a.get("creator_name", product.CREATOR)),
                                                      roles=[pystac.ProviderRole.PRODUCER,
                                                             pystac.ProviderRole.PROCESSOR])]
    asset = pystac.Asset(href=str(path), media_type=NETCDF_MEDIA_TYPE, roles=["data"],
                         title=f"{path.name}: {a.get('title', '')}".rstrip(": "))
    item.add_asset(ASSET_KEY, asset)
    FileExtension.ext(asset, add_if_missing=True).apply(
        size=path.stat().st_size, checksum=file_sha256_multihash(path) if checksum else None)
    dims, variables = _datacube(head)
    DatacubeExtension.ext(item, add_if_missing=True).apply(dimensions=dims, variables=variables)
    _add_paper_links(item)
    return item


def _collection(coll_id: str, description: str, items: list[pystac.Item], first: dict,
                title: str) -> pystac.Collection:
    """A collection of ``items`` (their union extent, the datacube of the whole record, the paper)."""
    bboxes = np.array([i.bbox for i in items])
    bbox = [float(bboxes[:, 0].min()), float(bboxes[:, 1].min()), float(bboxes[:, 2].max()),
            float(bboxes[:, 3].max())]
    starts = [i.common_metadata.start_datetime for i in items]
    ends = [i.common_metadata.end_datetime for i in items]
    a = first["attrs"]
    coll = pystac.Collection(
        id=coll_id, description=description, title=title, license="other",
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[min(starts), max(ends)]])),
        keywords=[k.strip() for k in str(a.get("keywords", "")).split(",") if k.strip()],
        providers=[pystac.Provider(str(a.get("creator_name", product.CREATOR)),
                                   roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.PROCESSOR],
                                   description=str(a.get("institution", "")))],
        extra_fields={"glass_sm:license": str(a.get("license", ""))},
    )
    head = dict(first, start=min(pd.Timestamp(s).tz_localize(None) for s in starts),
                end=max(pd.Timestamp(e).tz_localize(None) for e in ends))
    dims, variables = _datacube(head)  # the record's days; the step of the first file is the step of all
    DatacubeExtension.ext(coll, add_if_missing=True).apply(dimensions=dims, variables=variables)
    _add_paper_links(coll)
    for item in items:
        coll.add_item(item)
    return coll


def build_catalog(product_folder: str | os.PathLike, checksums: bool = True) -> pystac.Catalog:
    """The catalog of the files in ``product_folder`` (not written; hrefs set for :func:`write_catalog`).

    Raises
    ------
    FileNotFoundError
        No daily year file in ``product_folder`` (stage 04 has not run).
    """
    folder = Path(product_folder).resolve()
    daily = sorted(folder.glob(product.PRODUCT_GLOB))
    if not daily:
        raise FileNotFoundError(f"no product file {product.PRODUCT_GLOB} in {folder}: run stage 04 first")
    annual = sorted((folder / "annual").glob(product.ANNUAL_GLOB))
    first = _read_header(daily[0])
    a = first["attrs"]
    run = str(a.get("id", "run.x")).rsplit(".", 1)[0] or "run"
    twin = "synthetic twin" in str(a.get("source", ""))
    root = pystac.Catalog(
        id=f"glass-sm-{run}",
        title=f"glass-sm product of run '{run}' ({'synthetic twin' if twin else 'real data'})",
        description=(f"Catalog of the product files of the glass-sm run '{run}': the daily year files "
                     f"({DAILY_COLLECTION}) and their annual means ({ANNUAL_COLLECTION}). "
                     + ("Made on the synthetic twin: the values describe a synthetic world, not the real "
                        "GLASS-AVHRR product." if twin else "Made from the real input products.")),
    )
    summary = str(a.get("summary", ""))
    colls = [_collection(DAILY_COLLECTION, summary, [item_for_file(f, checksums) for f in daily], first,
                         str(a.get("title", DAILY_COLLECTION)))]
    if annual:
        colls.append(_collection(ANNUAL_COLLECTION, "Annual means (time: mean) of the daily values of each year. "
                                 + summary, [item_for_file(f, checksums) for f in annual],
                                 _read_header(annual[0]), str(a.get("title", "")) + ", annual means"))
    for coll in colls:
        root.add_child(coll)
    # hrefs: each item beside its file, each collection in the folder of its files
    root.set_self_href(str(folder / CATALOG_NAME))
    for coll in colls:
        base = folder if coll.id == DAILY_COLLECTION else folder / "annual"
        coll.set_self_href(str(base / "collection.json"))
        for item in coll.get_items():
            item.set_self_href(str(base / f"{item.id}.json"))
    return root


def write_catalog(product_folder: str | os.PathLike, checksums: bool = True) -> Path:
    """Write the self-contained catalog of ``product_folder`` (relative hrefs); return ``catalog.json``.

    Item files of years no longer in the folder are removed, so the catalog always lists exactly the files there.
    """
    folder = Path(product_folder).resolve()
    root = build_catalog(folder, checksums=checksums)
    wanted = {Path(o.get_self_href()) for o in [root, *root.get_children(), *root.get_items(recursive=True)]}
    for stale in [*folder.glob(f"{product.PRODUCT_NAME}_*.json"), *(folder / "annual").glob(
            f"{product.PRODUCT_NAME}_*.json")]:
        if stale.resolve() not in wanted:
            stale.unlink()
    root.make_all_asset_hrefs_relative()
    root.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return folder / CATALOG_NAME


# ----------------------------------------------------------------------------------------------------------
# Validation (offline) and use
# ----------------------------------------------------------------------------------------------------------
class _OfflineValidator(pystac.validation.JsonSchemaSTACValidator):
    """pystac's JSON-schema validator restricted to the schemas it ships: the core ones. Extension schemas
    (which it would download) are skipped and listed in ``skipped``; :func:`validate_catalog` checks those
    fields itself."""

    def __init__(self):
        super().__init__()
        self.skipped: set[str] = set()
        self.validated: set[str] = set()

    def validate_core(self, stac_dict, stac_object_type, stac_version, href=None):
        uri = super().validate_core(stac_dict, stac_object_type, stac_version, href)
        if uri:
            self.validated.add(uri)
        return uri

    def validate_extension(self, stac_dict, stac_object_type, stac_version, extension_id, href=None):
        if extension_id in self.schema_cache:
            return super().validate_extension(stac_dict, stac_object_type, stac_version, extension_id, href)
        self.skipped.add(extension_id)
        return None


def _check(cond: bool, what: str, where: str) -> None:
    if not cond:
        raise CatalogError(f"{where}: {what}")


def _check_datacube(d: dict, where: str) -> None:
    dims, variables = d.get("cube:dimensions"), d.get("cube:variables")
    _check(isinstance(dims, dict) and {"time", "lat", "lon"} <= set(dims), "cube:dimensions lacks time/lat/lon", where)
    _check(dims["time"].get("type") == "temporal" and len(dims["time"].get("extent", [])) == 2,
           "cube:dimensions.time is not a temporal dimension with a 2-element extent", where)
    for name, axis in (("lat", "y"), ("lon", "x")):
        dim = dims[name]
        _check(dim.get("type") == "spatial" and dim.get("axis") == axis and len(dim.get("extent", [])) == 2
               and all(isinstance(x, (int, float)) for x in dim["extent"]),
               f"cube:dimensions.{name} is not a spatial {axis} dimension with a numeric extent", where)
    _check(isinstance(variables, dict) and "sm" in variables, "cube:variables lacks sm", where)
    for name, v in variables.items():
        _check(v.get("type") in ("data", "auxiliary") and set(v.get("dimensions", [])) <= set(dims),
               f"cube:variables.{name} has a bad type or names an unknown dimension", where)


def validate_catalog(path: str | os.PathLike, checksums: bool = False) -> dict:
    """Validate the catalog at ``path`` offline; return what was checked.

    1. Every catalog, collection and item against the core STAC JSON schemas ``pystac`` ships
       (``pystac.validation`` with ``jsonschema``; nothing is downloaded).
    2. The extensions structurally (their schemas are not available offline): datacube (``cube:dimensions``
       time/lat/lon, ``cube:variables`` with known dimensions), file (``file:size`` an integer, ``file:checksum``
       a SHA-256 multihash), every declared extension schema URI among those ``pystac`` knows.
    3. Every asset: a relative href to an existing file of the recorded size (and, ``checksums``, SHA-256);
       every product file in the folder has an item.

    Returns
    -------
    dict
        ``collections``, ``items`` (counts), ``schemas`` (core schema URIs validated against), ``extensions``
        (extension schema URIs checked structurally), ``checksums`` (bool).

    Raises
    ------
    pystac.errors.STACValidationError
        A core schema violation.
    CatalogError
        Anything else, naming the object and the problem.
    """
    path = Path(path).resolve()
    root = pystac.Catalog.from_file(str(path))
    validator = _OfflineValidator()
    known = {ext.get_schema_uri() for ext in (DatacubeExtension, FileExtension, ScientificExtension)}
    objects = [root, *root.get_children(), *root.get_items(recursive=True)]
    n_items = 0
    files_seen = set()
    for obj in objects:
        d = obj.to_dict(include_self_link=False, transform_hrefs=False)
        where = f"{type(obj).__name__} '{obj.id}'"
        pystac.validation.validate_dict(d, href=obj.get_self_href(), validator=validator)
        unknown = set(d.get("stac_extensions", [])) - known
        _check(not unknown, f"declares extension schemas this validator does not know: {sorted(unknown)}", where)
        if isinstance(obj, pystac.Collection):
            _check(DatacubeExtension.get_schema_uri() in d.get("stac_extensions", []),
                   "does not declare the datacube extension", where)
            _check_datacube(d, where)
        if isinstance(obj, pystac.Item):
            n_items += 1
            _check_datacube(d["properties"], where)
            _check(ASSET_KEY in obj.assets, f"has no '{ASSET_KEY}' asset", where)
            asset = obj.assets[ASSET_KEY]
            raw_href = d["assets"][ASSET_KEY]["href"]
            _check(not os.path.isabs(raw_href) and "://" not in raw_href,
                   f"asset href {raw_href!r} is not relative (the folder could not move)", where)
            f = Path(asset.get_absolute_href())
            _check(f.is_file(), f"asset {f} does not exist", where)
            files_seen.add(f.resolve())
            fe = FileExtension.ext(asset)
            _check(isinstance(fe.size, int) and fe.size == f.stat().st_size,
                   f"file:size {fe.size} is not the size of {f.name} ({f.stat().st_size} B)", where)
            cs = fe.checksum
            _check(isinstance(cs, str) and cs.startswith(MULTIHASH_SHA256) and len(cs) == 68
                   and all(c in "0123456789abcdef" for c in cs), "file:checksum is not a SHA-256 multihash", where)
            if checksums:
                _check(file_sha256_multihash(f) == cs, f"file:checksum does not match {f.name}", where)
    folder = path.parent
    on_disk = {p.resolve() for p in [*folder.glob(product.PRODUCT_GLOB),
                                     *(folder / "annual").glob(product.ANNUAL_GLOB)]}
    missing = sorted(p.name for p in on_disk - files_seen)
    _check(not missing, f"no item for {missing}", f"catalog {path}")
    return {"collections": len(list(root.get_children())), "items": n_items,
            "schemas": sorted(validator.validated), "extensions": sorted(validator.skipped),
            "checksums": checksums}


def _hrefs(path: str | os.PathLike, collection: str) -> list[str]:
    root = pystac.Catalog.from_file(str(Path(path).resolve()))
    coll = root.get_child(collection)
    if coll is None:
        raise KeyError(f"catalog {path} has no collection '{collection}' "
                       f"(found {[c.id for c in root.get_children()]})")
    return [item.assets[ASSET_KEY].get_absolute_href() for item in sorted(coll.get_items(), key=lambda i: i.id)]


def open_from_catalog(path: str | os.PathLike, collection: str = DAILY_COLLECTION) -> xr.Dataset:
    """The files of one collection of the catalog at ``path`` as one lazy Dataset (``xarray.open_mfdataset`` of
    the items' asset hrefs)."""
    return xr.open_mfdataset(_hrefs(path, collection), combine="by_coords", data_vars="minimal",
                             coords="minimal", compat="override")


def catalog_summary(path: str | os.PathLike, checked: dict | None = None) -> pd.DataFrame:
    """One row per item: ``collection``, ``item``, ``start``, ``end``, ``bbox``, ``href`` (relative to the
    catalog), ``size_bytes``, ``sha256`` (first 12 hex digits)."""
    path = Path(path).resolve()
    root = pystac.Catalog.from_file(str(path))
    rows = []
    for coll in root.get_children():
        for item in sorted(coll.get_items(), key=lambda i: i.id):
            asset = item.assets[ASSET_KEY]
            fe = FileExtension.ext(asset)
            rows.append({"collection": coll.id, "item": item.id,
                         "start": item.common_metadata.start_datetime.date().isoformat(),
                         "end": item.common_metadata.end_datetime.date().isoformat(),
                         "bbox": ", ".join(f"{x:g}" for x in item.bbox),
                         "href": os.path.relpath(asset.get_absolute_href(), path.parent),
                         "size_bytes": fe.size, "sha256": (fe.checksum or "")[4:16]})
    return pd.DataFrame(rows)
