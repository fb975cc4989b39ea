"""The STAC catalog of the product (glass_sm.catalog): written beside the files, valid offline, relative (the folder
moves), deterministic, complete (extent, days, variables, checksums), and the worked example of opening the record
from it with xarray.

The product is a toy run of the real production (the ``toy`` builders of this folder's ``conftest.py``), two years.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
import torch
import xarray as xr
from pystac.errors import STACValidationError

from glass_sm import catalog, product
from glass_sm.production import run_production
from glass_sm.testing import make_toy_cube

YEARS = (1999, 2000)


@pytest.fixture(scope="module")
def catalog_run(tmp_path_factory, toy):
    root = tmp_path_factory.mktemp("catalog")
    cfg = toy.cfg(root)
    cube = make_toy_cube(7, 5, toy.START, toy.END, seed=0, n_ocean=2)
    toy.write_cube(cfg, cube)
    toy.write_checkpoint(cfg, cube)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files = run_production(cfg, years=list(YEARS), progress=False)
    finally:
        torch.set_num_threads(threads)
    return {"folder": files[0].parent, "files": files, "cube": cube}


@pytest.fixture
def product_copy(catalog_run, tmp_path) -> Path:
    """A fresh copy of the product folder (tests that write or damage it)."""
    return Path(shutil.copytree(catalog_run["folder"], tmp_path / "product"))


def test_catalog_is_written_beside_the_product_and_valid_offline(product_copy):
    path = catalog.write_catalog(product_copy)
    assert path == product_copy / "catalog.json" == catalog.catalog_path(product_copy)
    for y in YEARS:
        assert (product_copy / f"GLASS_AVHRR_SM_{y}.json").is_file()
        assert (product_copy / "annual" / f"GLASS_AVHRR_SM_annual_mean_{y}.json").is_file()
    assert (product_copy / "collection.json").is_file() and (product_copy / "annual" / "collection.json").is_file()
    checked = catalog.validate_catalog(path, checksums=True)
    assert checked["collections"] == 2 and checked["items"] == 2 * len(YEARS)
    assert {u.rsplit("/", 1)[-1] for u in checked["schemas"]} == {"catalog.json", "collection.json", "item.json"}
    assert any("datacube" in u for u in checked["extensions"]) and any("/file/" in u for u in checked["extensions"])
    root = pystac.Catalog.from_file(str(path))
    assert [c.id for c in root.get_children()] == [catalog.DAILY_COLLECTION, catalog.ANNUAL_COLLECTION]


def test_items_describe_extent_days_variables_and_checksum(product_copy, catalog_run):
    catalog.write_catalog(product_copy)
    item = pystac.Item.from_file(str(product_copy / "GLASS_AVHRR_SM_2000.json"))
    cube = catalog_run["cube"]
    half = 0.025
    assert item.bbox == pytest.approx([float(cube.lon.min()) - half, float(cube.lat.min()) - half,
                                       float(cube.lon.max()) + half, float(cube.lat.max()) + half])
    assert item.datetime is None
    assert item.common_metadata.start_datetime.isoformat().startswith("2000-01-01T00:00:00")
    assert item.common_metadata.end_datetime.isoformat().startswith("2000-12-31T23:59:59")
    props = item.properties
    assert set(props["cube:dimensions"]) == {"time", "lat", "lon"} and props["cube:dimensions"]["time"]["step"] == "P1D"
    assert props["cube:variables"]["sm"]["unit"] == "m3 m-3"
    assert "window_padded_at_period_edge" in props["cube:variables"]["sm_flag"]["description"]
    assert props["sci:publications"][0]["doi"] == product.PAPER_DOI
    asset = item.assets["data"]
    assert asset.media_type == "application/x-netcdf"
    data = (product_copy / "GLASS_AVHRR_SM_2000.nc").read_bytes()
    assert asset.extra_fields["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
    assert asset.extra_fields["file:size"] == len(data)
    raw = json.loads((product_copy / "GLASS_AVHRR_SM_2000.json").read_text())
    assert raw["assets"]["data"]["href"] == "./GLASS_AVHRR_SM_2000.nc"  # relative
    assert all(not link["href"].startswith("/") for link in raw["links"])
    annual = json.loads((product_copy / "annual" / "GLASS_AVHRR_SM_annual_mean_2000.json").read_text())
    assert annual["properties"]["cube:dimensions"]["time"]["step"] == "P1Y"


def test_the_folder_moves_and_xarray_opens_the_record_from_the_catalog(product_copy, catalog_run, tmp_path):
    catalog.write_catalog(product_copy)
    moved = Path(shutil.move(str(product_copy), tmp_path / "published elsewhere"))
    path = moved / "catalog.json"
    assert catalog.validate_catalog(path, checksums=True)["items"] == 2 * len(YEARS)
    # the notebook's worked example: pystac finds the files, xarray opens them
    stac = pystac.Catalog.from_file(str(path))
    hrefs = sorted(i.assets["data"].get_absolute_href() for i in stac.get_child("GLASS_AVHRR_SM").get_items())
    assert [Path(h).parent for h in hrefs] == [moved] * len(YEARS)
    with xr.open_mfdataset(hrefs, combine="by_coords", data_vars="minimal") as ds, \
            product.open_record(catalog_run["folder"]) as ref:
        np.testing.assert_array_equal(ds["sm"].values, ref["sm"].values)
    with catalog.open_from_catalog(path, catalog.ANNUAL_COLLECTION) as ann:
        assert ann.sizes["time"] == len(YEARS)
    table = catalog.catalog_summary(path)
    assert table["href"].tolist()[:2] == [f"GLASS_AVHRR_SM_{y}.nc" for y in YEARS]
    assert not any(str(tmp_path) in str(v) for v in table.to_numpy().ravel())


def test_catalog_bytes_are_deterministic_and_follow_the_files(product_copy):
    catalog.write_catalog(product_copy)
    first = {p.relative_to(product_copy): p.read_bytes() for p in product_copy.rglob("*.json")}
    catalog.write_catalog(product_copy)
    assert {p.relative_to(product_copy): p.read_bytes() for p in product_copy.rglob("*.json")} == first
    # a year that is gone loses its item; the catalog lists exactly the files there
    product.product_path(product_copy, 1999).unlink()
    product.annual_path(product_copy, 1999).unlink()
    catalog.write_catalog(product_copy)
    assert not (product_copy / "GLASS_AVHRR_SM_1999.json").exists()
    assert not (product_copy / "annual" / "GLASS_AVHRR_SM_annual_mean_1999.json").exists()
    assert catalog.validate_catalog(product_copy / "catalog.json")["items"] == 2


def test_validation_names_what_is_wrong(product_copy, catalog_run):
    path = catalog.write_catalog(product_copy)
    f = product.product_path(product_copy, 2000)
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    f.write_bytes(bytes(data))
    catalog.validate_catalog(path)  # sizes only: passes
    with pytest.raises(catalog.CatalogError, match="GLASS_AVHRR_SM_2000.*file:checksum does not match"):
        catalog.validate_catalog(path, checksums=True)
    f.write_bytes(bytes(data[:-1]))
    with pytest.raises(catalog.CatalogError, match="file:size"):
        catalog.validate_catalog(path)
    item = product_copy / "GLASS_AVHRR_SM_1999.json"
    raw = json.loads(item.read_text())
    raw["assets"]["data"]["href"] = str(product.product_path(product_copy, 1999))
    item.write_text(json.dumps(raw))
    with pytest.raises(catalog.CatalogError, match="GLASS_AVHRR_SM_1999.*not relative"):
        catalog.validate_catalog(path)
    shutil.copy(catalog_run["files"][1], f)  # repaired; the catalog rewritten
    catalog.write_catalog(product_copy)
    (product_copy / "GLASS_AVHRR_SM_2003.nc").write_bytes(b"")  # a file the catalog does not list
    with pytest.raises(catalog.CatalogError, match="no item for.*GLASS_AVHRR_SM_2003.nc"):
        catalog.validate_catalog(path)


def test_core_schemas_are_checked_without_the_network():
    bad = {"type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": "x", "geometry": None,
           "properties": {}, "links": [], "assets": {}}  # no datetime: the core item schema refuses it
    with pytest.raises(STACValidationError):
        pystac.validation.validate_dict(bad, validator=catalog._OfflineValidator())


def test_no_product_no_catalog(tmp_path):
    with pytest.raises(FileNotFoundError, match="run stage 04"):
        catalog.write_catalog(tmp_path)
