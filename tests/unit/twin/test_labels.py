"""glass_sm.twin.labels: the GLASS-MODIS-like labels made as the real ones, an XGBoost retrieval trained on the
twin's station days (deterministic, trained only on station values, never on the truth), and the
``truth_plus_noise`` ablation unchanged."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest

from glass_sm.twin import labels, sensors
from glass_sm.twin.grids import component_rng


def _lag1(err: np.ndarray) -> float:
    """Median over cells of the lag-1 autocorrelation of ``(time, lat, lon)`` errors (pairs of finite days)."""
    out = []
    for x in err.reshape(len(err), -1).T:
        a, b = x[:-1], x[1:]
        ok = np.isfinite(a) & np.isfinite(b)
        out.append(np.corrcoef(a[ok], b[ok])[0, 1])
    return float(np.median(out))


def _cell_means(img: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """Mean of the finite pixels of each 0.05 deg cell (NaN for a cell without any)."""
    ok = np.isfinite(img) & (idx >= 0)
    cnt = np.bincount(idx[ok], minlength=n)
    with np.errstate(invalid="ignore"):
        return np.bincount(idx[ok], img[ok], minlength=n) / np.where(cnt > 0, cnt, np.nan)


# ---------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------
def test_fill_linear_closed_form():
    x = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan], np.float32)[:, None]
    y = labels.fill_linear(np.concatenate([x, np.full_like(x, np.nan)], 1))
    np.testing.assert_array_equal(y[:, 0], [1, 1, 2, 3, 4, 4])                 # nearest at the ends, linear between
    assert np.isnan(y[:, 1]).all() and y.dtype == np.float32                     # nothing to fill from: stays NaN


def test_modis_inputs_noise_and_gap_filling(smoke_retrieval):
    cfg, s, _ = smoke_retrieval
    inp = labels.modis_inputs(cfg, s)
    g = s["grids"]
    rs, cs = g.out_in_sim
    t0 = sensors.first_label_day(cfg, s["dates"])
    assert inp["dates"][0] == pd.Timestamp(cfg.period.label_start) and len(inp["dates"]) == len(s["dates"]) - t0
    theta, fv = s["theta"][t0:, rs, cs], s["f_veg"][t0:, rs, cs]
    st = {k: s["static"][k][rs, cs] for k in ("theta_s", "sand")}
    clear = inp["clear"]
    assert 0.3 < clear.mean() < 0.9 and not clear.all()
    # clear days: the model + the MODIS-like noise (no platform step, no drift)
    e = (inp["albedo_wsa"] - sensors.albedo_model(theta, st["theta_s"], fv, st["sand"]))[clear]
    assert abs(e.mean()) < 5e-4 and e.std() == pytest.approx(cfg.twin.modis_albedo_noise, rel=0.05)
    e = (inp["ndvi"] - (labels.NDVI_SOIL + (labels.NDVI_VEG - labels.NDVI_SOIL) * fv))[clear]
    assert e.std() == pytest.approx(cfg.twin.ndvi_noise, rel=0.05)
    # cloudy days: between the neighbouring clear values (linear interpolation), no NaN left
    for k in ("albedo_wsa", "lst", "ndvi"):
        assert np.isfinite(inp[k]).all()
    x, ok = inp["lst"][:, 0, 0], clear[:, 0, 0]
    j = np.flatnonzero(~ok[1:-1] & ok[:-2] & ok[2:]) + 1                       # single cloudy days
    np.testing.assert_allclose(x[j], 0.5 * (x[j - 1] + x[j + 1]), rtol=1e-6)
    # ERA5-Land: the 0.1 deg value the files carry, shared by the 2 x 2 cells of a point
    era = sensors.simulate_era5(s)[t0:]
    ers, ecs = g.era5_in_sim
    for r, c in ((0, 0), (3, 6), (7, 7)):
        np.testing.assert_array_equal(inp["sm_era5land"][:, r, c],
                                      era[:, (rs.start + r - ers.start) // 2, (cs.start + c - ecs.start) // 2])
    assert set(labels.FEATURES) >= {"albedo_wsa", "lst", "ndvi", "sm_era5land"}
    assert not any("theta" in f or "truth" in f for f in labels.FEATURES)         # no truth among the inputs


# ---------------------------------------------------------------------------------------------------------
# the retrieval
# ---------------------------------------------------------------------------------------------------------
def test_retrieval_is_deterministic(smoke_retrieval):
    cfg, s, r = smoke_retrieval
    again = labels.retrieval_labels(cfg, s)
    assert np.array_equal(r.sm, again.sm) and r.info == again.info
    assert r.sm.shape == (len(r.dates),) + s["grids"].out.shape and r.sm.dtype == np.float32
    theta_s = s["static"]["theta_s"][s["grids"].out_in_sim]
    assert np.isfinite(r.sm).all() and r.sm.min() >= 0 and (r.sm <= theta_s[None] + 1e-7).all()


def test_trained_exactly_on_the_good_station_days_of_the_ismn_files(smoke_twin, smoke_retrieval):
    """The training rows are the station-days of the .stm files with >= 12 good ('G') hours in the label period,
    and the targets their daily means (the files hold 4 decimals)."""
    cfg, files = smoke_twin
    _, _, r = smoke_retrieval
    rows = []
    for p in files["stations"]:
        if p.suffix != ".stm":
            continue
        d = pd.read_csv(p, sep=" ", skiprows=1, header=None, names=["date", "hour", "sm", "flag", "m"])
        d = d[d["flag"] == "G"]
        day = d.groupby("date")["sm"].agg(["mean", "size"])
        day = day[day["size"] >= labels.MIN_GOOD_HOURS]
        day.index = pd.to_datetime(day.index, format="%Y/%m/%d")
        day = day[(day.index >= pd.Timestamp(cfg.period.label_start))
                  & (day.index <= pd.Timestamp(cfg.period.label_end))]
        rows += [(p.parent.name, t, m) for t, m in zip(day.index, day["mean"])]
    expected = pd.DataFrame(rows, columns=["station", "date", "mean"]).sort_values(["station", "date"])
    got = r.table.sort_values(["station", "date"])
    assert len(got) == len(expected) > 1000
    assert list(zip(got["station"], got["date"])) == list(zip(expected["station"], expected["date"]))
    np.testing.assert_allclose(got["sm_station"], expected["mean"], atol=6e-5)
    info = r.info
    assert info["station_days"] == len(got) and sum(info["stations"].values()) == len(got)
    assert info["features"] == list(labels.FEATURES)


def test_targets_never_see_the_truth_outside_the_station_cell_days(smoke_retrieval):
    cfg, s, r = smoke_retrieval
    g = s["grids"]
    rs, cs = g.out_in_sim
    seen = np.zeros(s["theta"].shape, bool)                    # (day, cell) pairs some station measures
    for st in sensors.simulate_stations(cfg, s):
        seen[s["dates"].get_loc(st.start):s["dates"].get_loc(st.end) + 1, rs.start + st.row, cs.start + st.col] = True
    theta = s["theta"].copy()
    theta[~seen] = np.clip(theta[~seen] + 0.1, 0, 0.6)          # perturb every other cell-day
    other = labels.retrieval_labels(cfg, dict(s, theta=theta))
    pd.testing.assert_series_equal(other.table["sm_station"], r.table["sm_station"])
    assert not np.array_equal(other.sm, r.sm)                   # the inputs did see the change
    # ... while the truth at a measured cell-day does reach the targets (through the station only)
    theta = s["theta"].copy()
    theta[seen] += 0.01
    moved = labels.station_days(cfg, sensors.simulate_stations(cfg, dict(s, theta=theta)), r.dates)
    assert (moved["sm_station"].to_numpy() - r.table["sm_station"].to_numpy()).mean() > 0.005
    # the fit takes only the table (inputs + station values): no truth argument
    assert list(inspect.signature(labels.fit_retrieval).parameters) == ["cfg", "table"]


def test_label_error_smooth_in_time_unlike_the_white_noise_ablation(smoke_retrieval, make_cfg, tmp_path):
    cfg, s, r = smoke_retrieval
    g = s["grids"]
    rs, cs = g.out_in_sim
    truth = s["theta"][sensors.first_label_day(cfg, s["dates"]):, rs, cs]
    ac_retrieval = _lag1(r.sm - truth)
    ablation = make_cfg(tmp_path, **{"twin.labels": "truth_plus_noise"})
    _, _, _, idx = sensors.modis_grid(g.out, cfg.twin.modis_pixel_m)
    cells = np.stack([_cell_means(img, idx, g.out.size).reshape(g.out.shape)
                      for _, img in sensors.simulate_glass_modis(ablation, s, idx)])
    ac_noise = _lag1(cells - truth)
    assert abs(ac_noise) < 0.1 and ac_retrieval > ac_noise + 0.2


def test_fit_refuses_an_empty_training_set(smoke_retrieval):
    cfg, _, r = smoke_retrieval
    with pytest.raises(ValueError, match="no station day.*truth_plus_noise"):
        labels.fit_retrieval(cfg, r.table.iloc[:0])


# ---------------------------------------------------------------------------------------------------------
# images, files, the ablation
# ---------------------------------------------------------------------------------------------------------
def test_retrieval_images_take_their_cell_value(smoke_retrieval):
    cfg, s, r = smoke_retrieval
    g = s["grids"]
    _, _, _, idx = sensors.modis_grid(g.out, cfg.twin.modis_pixel_m)
    with pytest.raises(ValueError, match="retrieval_labels"):
        next(sensors.simulate_glass_modis(cfg, s, idx))
    images = sensors.simulate_glass_modis(cfg, s, idx, r.sm)
    gaps = []
    for k in range(40):
        day, img = next(images)
        assert day == r.dates[k]
        ok = np.isfinite(img)
        assert not ok[idx < 0].any()
        np.testing.assert_array_equal(img[ok], r.sm[k].ravel()[idx[ok]])      # no extra noise
        gaps.append(np.isnan(_cell_means(img, idx, g.out.size)).mean())
    assert 0 < np.mean(gaps) < 3 * cfg.twin.label_gap_fraction


def test_truth_plus_noise_is_the_old_formula(smoke_sim, make_cfg, tmp_path):
    """The ablation draws the old stream exactly: per day a gap per cell, then N(0, label_noise) per pixel."""
    _, s, _ = smoke_sim
    cfg = make_cfg(tmp_path, **{"twin.labels": "truth_plus_noise"})
    g = s["grids"]
    rs, cs = g.out_in_sim
    _, _, _, idx = sensors.modis_grid(g.out, cfg.twin.modis_pixel_m)
    rng = component_rng(cfg.run.seed, "labels")
    t0 = sensors.first_label_day(cfg, s["dates"])
    cell = np.where(idx >= 0, idx, 0)
    for k, (day, img) in enumerate(sensors.simulate_glass_modis(cfg, s, idx)):
        truth = s["theta"][t0 + k, rs, cs].ravel()
        gap = rng.random(truth.size) < cfg.twin.label_gap_fraction
        val = np.maximum(truth[cell] + rng.normal(0, cfg.twin.label_noise, idx.shape).astype(np.float32), 0.0)
        np.testing.assert_array_equal(img, np.where((idx >= 0) & ~gap[cell], val, np.nan).astype(np.float32))
        if k == 5:
            break


def test_twin_writes_the_retrieval_and_its_report(smoke_twin, smoke_retrieval):
    cfg, files = smoke_twin
    _, _, r = smoke_retrieval
    (path,) = files["label_retrieval"]
    assert path == labels.retrieval_info_path(cfg)
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(r.info))
    assert doc["mode"] == "retrieval" and doc["hyperparameters"]["num_boost_round"] == cfg.twin.retrieval_rounds
    fit = doc["training_fit_vs_stations"]
    assert 0 < fit["rmse"] < 0.1 and fit["r2"] <= 1 and set(fit) == {"rmse", "bias", "r", "r2"}
    manifest = json.loads(files["manifest"].read_text())
    assert manifest["files"]["label_retrieval"] == ["label_retrieval.json"]


def test_stage01_reports_how_the_labels_were_made(smoke_twin, make_cfg, tmp_path):
    from types import SimpleNamespace

    from glass_sm.stages import s01_data as s01

    cfg, files = smoke_twin
    info = s01.label_retrieval(SimpleNamespace(cfg=cfg), files)
    text = s01.labels_text(info)
    assert f"{info['station_days']} station-days of {info['n_stations']} stations" in text
    assert f"RMSE {info['training_fit_vs_stations']['rmse']:.3f}" in text
    ablation = make_cfg(tmp_path, **{"twin.labels": "truth_plus_noise"})
    without = {k: v for k, v in files.items() if k != "label_retrieval"}
    info = s01.label_retrieval(SimpleNamespace(cfg=ablation), without)
    assert info == {"mode": "truth_plus_noise", "label_noise": 0.02} and "N(0, 0.02)" in s01.labels_text(info)
    with pytest.raises(FileNotFoundError, match="label_retrieval.json"):
        s01.label_retrieval(SimpleNamespace(cfg=cfg), {"label_retrieval": [tmp_path / "label_retrieval.json"]})
    assert s01.label_retrieval(SimpleNamespace(cfg=cfg), None) is None
    assert s01.labels_text(None).startswith("Labels: the real")
