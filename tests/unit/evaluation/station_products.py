"""Helpers of the in situ and triple-collocation tests: products built around real ISMN sample stations.

A product is made from the stations' own daily means plus a known offset (:data:`OFFSET`) and noise
(:data:`NOISE`), so the expected metrics are known (bias ~ offset) or computed by hand from the same collocated
series (:func:`hand_collocate`). Not a test module (no ``test_`` prefix): the tests of this folder import it.
"""

import numpy as np
import pandas as pd
import xarray as xr

OFFSET = 0.05  # m3 m-3 added to the station series to make the product
NOISE = 0.01  # m3 m-3 sd of the product's noise
MIN_SCORED_DAYS = 150
MULTINETWORK = "zip_archives/multinetwork/header_values/Data_header_values.zip"  # MAQU, SCAN, SOILSCAPE
CEOP_FOLDER = "Data_seperate_files_20170810_20180809"  # CEOP-format folder: FR_Aqui 'fraye' (flag G) + COSMOS


def grid_axis(lo, hi, res, centred_on_edges=True, descending=False, margin=2):
    """Cell centres covering [lo, hi] plus ``margin`` cells: GLASS-like (centres at edges + res/2) or
    ERA5-like (centres on multiples of res)."""
    off = res / 2 if centred_on_edges else 0.0
    k0 = int(np.floor((lo - off) / res)) - margin
    k1 = int(np.ceil((hi - off) / res)) + margin
    c = np.round(off + res * np.arange(k0, k1 + 1), 6)
    return c[::-1] if descending else c


def build_product(table, daily, sids, rng, res=0.05, descending=True, era5_like=False, lon360=False,
                  time=None, background=0.45, nan_fraction=0.05):
    """A daily product on a small grid around the sensors ``sids``: at each sensor's pixel its daily mean +
    OFFSET + N(0, NOISE), a few NaN days; elsewhere ``background`` (m3 m-3)."""
    sub = table.loc[sids]
    lat = grid_axis(sub["lat"].min(), sub["lat"].max(), res, not era5_like, descending)
    lon = grid_axis(sub["lon"].min(), sub["lon"].max(), res, not era5_like)
    if time is None:
        first = min(daily[s].index.min() for s in sids)
        last = max(daily[s].index.max() for s in sids)
        time = pd.date_range(first - pd.Timedelta(days=20), last + pd.Timedelta(days=20), freq="D")
    values = np.full((time.size, lat.size, lon.size), background)
    values += 0.002 * rng.standard_normal(values.shape)  # not constant, so a wrong pixel is noticed
    for sid in sids:
        i = int(np.argmin(np.abs(lat - sub.loc[sid, "lat"])))
        j = int(np.argmin(np.abs(lon - sub.loc[sid, "lon"])))
        s = daily[sid].reindex(time).to_numpy()
        pix = np.where(np.isfinite(s), s, np.nanmean(s)) + OFFSET + NOISE * rng.standard_normal(time.size)
        pix[rng.random(time.size) < nan_fraction] = np.nan
        values[:, i, j] = pix
    lon_coord = np.mod(lon, 360.0) if lon360 else lon
    da = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"time": time, "lat": lat, "lon": lon_coord},
                      name="sm", attrs={"units": "m3 m-3"})
    if lon360:
        da = da.sortby("lon")
    return da


def hand_collocate(product, lat, lon, series):
    """Independent collocation: nearest centre by brute force, inner join on days, NaN pairs dropped."""
    plon = product["lon"].values
    lon = lon % 360 if plon.max() > 180 else lon
    i = int(np.argmin(np.abs(product["lat"].values - lat)))
    j = int(np.argmin(np.abs(plon - lon)))
    p = pd.Series(product.values[:, i, j], index=pd.DatetimeIndex(product["time"].values))
    both = pd.concat([p, series], axis=1, join="inner").dropna()
    return both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy(), both.index


def long_sensors(table, daily, n=None):
    sids = [sid for sid in table.index if len(daily[sid]) >= MIN_SCORED_DAYS]
    return sids if n is None else sids[:n]


def nearby_group(table, sids, max_deg=1.0):
    """The largest group of sensors within ``max_deg`` of one another (one small grid holds them)."""
    best = []
    for s in sids:
        near = [o for o in sids if abs(table.loc[o, "lat"] - table.loc[s, "lat"]) <= max_deg
                and abs(table.loc[o, "lon"] - table.loc[s, "lon"]) <= max_deg]
        best = near if len(near) > len(best) else best
    return best


# ----------------------------------------------------------------------------------------------------------
# A toy grid of 3 x 2 cells and three sensors (pre-read, as read_ismn returns them)
# ----------------------------------------------------------------------------------------------------------
DAYS = pd.date_range("1998-01-01", "2001-12-31", freq="D")
LAT = np.array([40.375, 40.325, 40.275])
LON = np.array([-99.975, -99.925])


def field(values_fn, name="sm"):
    """A (time, lat, lon) DataArray on the toy grid from a function of (day index, row, col)."""
    t, r, c = np.meshgrid(np.arange(DAYS.size), np.arange(LAT.size), np.arange(LON.size), indexing="ij")
    return xr.DataArray(values_fn(t, r, c).astype(np.float64), dims=("time", "lat", "lon"),
                        coords={"time": DAYS, "lat": LAT, "lon": LON}, name=name, attrs={"units": "m3 m-3"})


def seasonal(t, r, c):
    return 0.25 + 0.08 * np.sin(2 * np.pi * t / 365.25) + 0.01 * r + 0.005 * c


def toy_stations():
    """Two sensors inside the toy grid (one with 20 days only) and one outside it."""
    table = pd.DataFrame({"network": "TOY", "station": ["A", "B", "C"], "lat": [40.33, 40.27, 41.5],
                          "lon": [-99.93, -99.97, -99.9], "note": ""},
                         index=pd.Index(["TOY/A/s/0-0.05m", "TOY/B/s/0-0.05m", "TOY/C/s/0-0.05m"], name="sensor_id"))
    rng = np.random.default_rng(1)
    truth_a = seasonal(np.arange(DAYS.size), 1, 1)
    daily = {
        "TOY/A/s/0-0.05m": pd.Series(truth_a + rng.normal(0, 0.01, DAYS.size), index=DAYS),
        "TOY/B/s/0-0.05m": pd.Series(0.2, index=DAYS[:20]),
        "TOY/C/s/0-0.05m": pd.Series(0.2, index=DAYS),
    }
    return table, daily
