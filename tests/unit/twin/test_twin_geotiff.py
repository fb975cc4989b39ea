"""glass_sm.twin.geotiff: the hand-written GeoTIFF encoder reads back through GDAL exactly like GDAL's own."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from glass_sm.twin.geotiff import FastGeoTiff

SINU = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext"


def test_fast_geotiff_round_trip_through_rasterio(tmp_path):
    transform = from_origin(-8_000_000.0, 4_500_000.0, 1000.0, 1000.0)
    a = np.random.default_rng(0).uniform(0, 0.5, (7, 11)).astype(np.float32)
    a[2, 3] = -9999.0
    path = FastGeoTiff(11, 7, transform, SINU, -9999.0).write(tmp_path / "x.tif", a)
    assert path == tmp_path / "x.tif" and not list(tmp_path.glob(".*partial"))
    ref = tmp_path / "gdal.tif"
    with rasterio.open(ref, "w", driver="GTiff", width=11, height=7, count=1, dtype="float32",
                       crs=rasterio.crs.CRS.from_proj4(SINU), transform=transform, nodata=-9999.0) as dst:
        dst.write(a, 1)
    with rasterio.open(path) as r, rasterio.open(ref) as g:
        np.testing.assert_array_equal(r.read(1), a)                       # lossless (deflate + predictor 3)
        assert r.transform == g.transform and r.crs == g.crs and r.nodata == g.nodata == -9999.0
        assert r.dtypes == g.dtypes == ("float32",) and r.read_masks(1)[2, 3] == 0


def test_fast_geotiff_rejects_wrong_shape():
    enc = FastGeoTiff(4, 3, from_origin(0.0, 0.0, 1.0, 1.0), "EPSG:4326", -9999.0)
    with pytest.raises(ValueError, match="template"):
        enc.encode(np.zeros((4, 3), np.float32))
