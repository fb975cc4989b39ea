r"""The synthetic twin: a small world with known soil moisture, written in the real products' file formats.

The twin lets every stage of the paper run offline and be scored against a truth that the real world never
gives. Soil moisture (SM) is a *state with memory* driven by weather and soil; the satellite-like inputs only
see it indirectly (wet soil is darker and cooler), as in nature. Nothing here is tuned to favour a model.

Everything is simulated on a 0.05 deg *simulation grid* slightly larger than the run's domain (so that the
0.1 deg ERA5-Land points and the 0.25 deg CCI cells that touch the domain are whole) and written for the domain.
Every random component has its own generator seeded by ``(run.seed, component name)``: changing the number of
stations does not change the weather.

Equations
---------
**Climate** (per 0.05 deg cell; :math:`\phi` latitude, :math:`z` elevation in m, *d* day of year):

.. math::

    AI &= AI_W + (AI_E - AI_W)\,\frac{\lambda - \lambda_W}{\lambda_E - \lambda_W}\;e^{0.1 g_{AI}}
        \quad\text{(aridity index P/PET, cfg.twin.aridity\_west\_east)}\\
    \bar T &= T_0 - a_\phi|\phi| - \Gamma z, \qquad \Gamma = 6.5\ \mathrm{K\,km^{-1}}\\
    T_{air}(t) &= \bar T + A_T(\phi)\cos\!\big(2\pi (d - d_T)/365.25\big) + T'(t),\qquad
        T'(t) = \rho_T T'(t-1) + \sigma_T\sqrt{1-\rho_T^2}\,\varepsilon_t\\
    R_a &= \text{FAO-56 extraterrestrial radiation (Allen et al. 1998, eq. 21)},\quad
        R_{s,clear} = (0.75 + 2\cdot10^{-5} z) R_a\\
    R_s &= R_{s,clear}\,(1 - 0.75\,c^{3.4})\quad\text{(Kasten \& Czeplak 1980; cloud fraction } c)\\
    DTR &= DTR_{clear}(AI)\,(1 - 0.6\,c)\\
    PET &= 0.0023 \cdot 0.408\,R_a\,(T_{air} - 273.15 + 17.8)\sqrt{DTR}\quad\text{(Hargreaves \& Samani 1985)}

**Weather generator** (Richardson 1981; Wilks 1999): wet-day frequency :math:`f(d)` and mean annual
precipitation :math:`\bar P = AI\cdot\overline{PET}` with a summer-peaked seasonal cycle; occurrence is a
first-order Markov chain

.. math::

    p_{01} = f(1-r),\quad p_{11} = p_{01} + r,\qquad
    \text{wet}_t = \big[\Phi(g^{occ}_t) < (p_{11}\ \text{if wet}_{t-1}\ \text{else}\ p_{01})\big]

and amounts are gamma distributed, :math:`P_t = F^{-1}_{\Gamma(k,\,\mu/k)}\big(\Phi(g^{amt}_t)\big)`,
where :math:`g_t` are smooth unit-variance Gaussian random fields drawn anew each day (random Fourier
features with a Gaussian covariance of length ``storm_length_km``), so that neighbouring cells share storms.
Clouds: :math:`\text{cloudy}_t = [\Phi(g^{cld}_t) < p_c]`, :math:`p_c` = ``cloud_wet`` on wet days, else
``cloud_base``; :math:`c = 0.8` when cloudy, 0.2 otherwise.

**Terrain and soil** (on the fine static grid, ``twin.static_resolution``; 0.05 deg values are block means):

.. math::

    h &= 0.6\,g_1 + 0.8\,\frac{e^{-2 g_2^2} - 5^{-1/2}}{(1/3 - 1/5)^{1/2}}
        \quad\text{(unit variance; ridges along the zero lines of } g_2)\\
    z &= \bar z\,e^{s h - s^2/2},\quad s^2 = \ln\big(1 + (\sigma_z/\bar z)^2\big)
        \quad\text{(mean = mean\_elevation, sd = relief, always positive)}\\
    (sand, clay, silt) &= \mathrm{softmax}\big(0.35h + 0.5g_s + 0.6\,w,\ \ln 0.5 - 0.3h + 0.5g_c,\ 0\big)

(:math:`g_1, g_2` smooth fields of 40 and 25 km, :math:`g_s, g_c` of 20 km, :math:`w` = 1 at the western
(dry) edge, 0 at the eastern: sandier uplands and dry west, clayey lowlands), stored in g/kg as SoilGrids does
-> Saxton & Rawls (2006) :math:`\theta_{wp}=\theta_{1500}, \theta_{fc}=\theta_{33}, \theta_s, K_s,
\lambda` (organic matter 2.5 %), residual :math:`\theta_r` by Rawls & Brakensiek (1985). See
:func:`hydraulic_limits`.

**True 0-5 cm SM**: a bucket of depth :math:`Z = 50` mm (TWIN.md), per day, operator-split in the order
drainage, evapotranspiration, infiltration:

.. math::

    D &= \min\!\Big(24 K_s \big(\tfrac{\theta-\theta_{fc}}{\theta_s-\theta_{fc}}\big)^{3+2/\lambda},\;
         (\theta-\theta_{fc})Z\Big)\ \ \text{if } \theta > \theta_{fc}\ \text{else } 0;\qquad
         \theta_1 = \theta - D/Z\\
    ET &= \min\!\Big(PET\cdot\mathrm{clip}\big(\tfrac{\theta_1-\theta_{wp}}{\theta_{fc}-\theta_{wp}},0,1\big),\;
          (\theta_1-\theta_{wp})Z\Big);\qquad \theta_2 = \theta_1 - ET/Z\\
    I &= \min\big(P,\ (\theta_s-\theta_2)Z\big)\ \ (\text{excess runs off});\qquad
    \theta(t+1) = \mathrm{clip}(\theta_2 + I/Z,\ \theta_r,\ \theta_s)

(the cap on ET avoids the explicit-Euler overshoot below :math:`\theta_{wp}` when :math:`PET/Z >
\theta_{fc}-\theta_{wp}`; the twin is snow-free: all precipitation is rain). One year before the period spins
the bucket up.

**Vegetation** (phenology lagging rain): :math:`M = \mathrm{EMA}_{30}(P)/\max(\mathrm{EMA}_{30}(PET), 0.5)`,
:math:`G = \mathrm{EMA}_{20}\big(\mathrm{clip}(M,0,1)\cdot\mathrm{clip}((\mathrm{EMA}_{10}(T_{air})-278.15)/10,
0,1)\big)`, :math:`f_{veg} = f_{min} + (f_{max}(AI) - f_{min})\,G` (EMA_n: exponential moving average, n days).

**AVHRR-like albedo** (white-sky WSA; black-sky BSA at the overpass sun):

.. math::

    \alpha_{soil}(\theta) &= \alpha_{dry} - (\alpha_{dry} - \alpha_{wet})\,\mathrm{clip}(\theta/\theta_s, 0, 1),
        \quad \alpha_{wet} = 0.5\,\alpha_{dry}\quad\text{(Idso et al. 1975)}\\
    \alpha_{WSA} &= \big[f_{veg}\alpha_{veg} + (1-f_{veg})\alpha_{soil}(\theta)\big](1 + b_p) + \epsilon_\alpha,
    \qquad \alpha_{BSA} = \alpha_{WSA}\,\big(1 + 0.3(0.5 - \mu_0)\big)

with :math:`b_p` the platform calibration step, :math:`\mu_0` the cosine of the solar zenith angle at the
overpass (later overpass: lower sun), retrievals with :math:`\mu_0 < 0.17` (SZA > 80 deg) missing.

**AVHRR-like LST** at the overpass local solar time *h* (evaporative fraction
:math:`EF = (1-f_{veg})\beta(\theta) + 0.7 f_{veg}`, :math:`\beta` the bucket's ET factor):

.. math::

    \Delta T &= \frac{R_s}{30\ \mathrm{MJ\,m^{-2}d^{-1}}}\big(2 + 16(1 - EF)\big)\ \mathrm{K}
        \quad\text{(wet is cooler; cf. the Ts-Ta trapezoid of Moran et al. 1994)}\\
    LST_{peak} &= T_{air} + DTR/2 + \Delta T,\quad A = LST_{peak} - (T_{air} - DTR/2)\\
    C(h) &= A\big(1 - \cos(\pi\max(h - 13, 0)/12)\big)\quad\text{(daytime cosine, Goettsche \& Olesen 2001)}\\
    LST &= LST_{peak} - C(13.5) - \rho_{drift}\big(C(h) - C(13.5)\big) + s_p + \epsilon_T

with :math:`h` the platform's drifting equator-crossing time (:mod:`glass_sm.platforms`), :math:`\rho_{drift}`
= ``drift_residual``, :math:`s_p` the platform's LST step. Cloudy pixel-days are missing (QC bit 0, fill);
5 % of clear retrievals, all albedo retrievals with SZA > 70 deg and the late-1994 NOAA-11 extension are
low quality (QC bit 1, noise x3).

**ERA5-Land-like SM**: the same bucket with :math:`P_{E} = P\,e^{\sigma\varepsilon - \sigma^2/2}`,
:math:`\sigma^2 = \ln(1 + cv^2)` (cv = ``era5_precip_error``, :math:`\varepsilon` a smooth field), a deeper
layer :math:`Z_E = 70` mm (ERA5-Land layer 1 is 0-7 cm) and wetter soil limits
:math:`\theta_{wp,fc} + \delta`, :math:`\theta_s + \delta/2`,
:math:`\delta = b\,\min\big(1, (0.25/AI)^{0.7}\big)` (b = ``era5_wet_bias``: largest in dry climates), averaged
to 0.1 deg grid points, written 6-hourly by linear interpolation between daily values placed at 12 UTC.

**Labels / comparison products / stations**: GLASS-MODIS-like = truth of the 0.05 deg cell holding each
sinusoidal pixel's centre + N(0, ``label_noise``) per pixel, whole cell-days missing with probability
``label_gap_fraction``, from ``period.label_start`` on. ESA-CCI-like = :math:`s_c\,\bar\theta_{0.25} +
N(0,\sigma_c)`, :math:`s_c \sim N(1, \text{cci\_scale\_error})` per cell, frequent gaps, noisier (x1.5) and
sparser before 2007, masked when :math:`T_{air} < 0` degC. Stations: :math:`\theta_{st} = a + b\,\theta_{pixel}
+ e_t`, :math:`e_t` AR(1) (:math:`\rho = 0.9`, sd ``station_noise``), hourly with a small diurnal cycle,
outages, frozen days (:math:`T_{air} < -2` degC: liquid water only, x0.6, ISMN flag D03), upward sensor-drift
stretches (flag D05), range flags C01/C02, 'G' otherwise (flags of Dorigo et al. 2013).

References
----------
Allen, R. G., Pereira, L. S., Raes, D., Smith, M. (1998). Crop evapotranspiration. FAO Irrigation and
Drainage Paper 56.
Dorigo, W. A. et al. (2013). Global automated quality control of in situ soil moisture data from the
International Soil Moisture Network. Vadose Zone J. 12(3).
Goettsche, F.-M., Olesen, F. S. (2001). Modelling of diurnal cycles of brightness temperature extracted from
METEOSAT data. Remote Sens. Environ. 76, 337-348.
Hargreaves, G. H., Samani, Z. A. (1985). Reference crop evapotranspiration from temperature. Appl. Eng.
Agric. 1(2), 96-99.
Idso, S. B., Jackson, R. D., Reginato, R. J., Kimball, B. A., Nakayama, F. S. (1975). The dependence of bare
soil albedo on soil water content. J. Appl. Meteorol. 14, 109-113.
Kasten, F., Czeplak, G. (1980). Solar and terrestrial radiation dependent on the amount and type of cloud.
Solar Energy 24, 177-189.
Moran, M. S., Clarke, T. R., Inoue, Y., Vidal, A. (1994). Estimating crop water deficit using the relation
between surface-air temperature and spectral vegetation index. Remote Sens. Environ. 49, 246-263.
Rawls, W. J., Brakensiek, D. L. (1985). Prediction of soil water properties for hydrologic modeling. Proc.
Watershed Management in the Eighties, ASCE, 293-299.
Richardson, C. W. (1981). Stochastic simulation of daily precipitation, temperature, and solar radiation.
Water Resour. Res. 17(1), 182-190.
Saxton, K. E., Rawls, W. J. (2006). Soil water characteristic estimates by texture and organic matter for
hydrologic solutions. Soil Sci. Soc. Am. J. 70, 1569-1578.
Wilks, D. S. (1999). Interannual variability and extreme-value characteristics of several stochastic daily
precipitation models. Agric. For. Meteorol. 93, 153-169.
"""

from __future__ import annotations

# pyproj must be loaded before eccodes (pulled in by xarray's cfgrib engine discovery): the other order
# crashes this environment's wheels at the first CRS operation (see the report to the lead).
import pyproj  # noqa: F401  isort: skip

import contextlib
import datetime as dt
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import gammaincinv, ndtr
from tqdm import tqdm

from glass_sm.grid import RES, Domain, block_mean
from glass_sm.platforms import NOAA_PLATFORMS, equator_crossing_time, platform_index

__all__ = [
    "TWIN_VERSION",
    "TwinGrids",
    "twin_grids",
    "smooth_fields",
    "hydraulic_limits",
    "bucket_step",
    "run_bucket",
    "extraterrestrial_radiation",
    "simulate_static",
    "simulate_weather",
    "simulate_truth",
    "albedo_model",
    "lst_model",
    "simulate_avhrr",
    "simulate_era5",
    "generate_twin",
    "twin_hash",
    "modis_grid",
    "write_avhrr",
    "write_glass_modis",
    "write_era5",
    "write_cci",
    "write_static",
    "write_stations",
    "write_truth",
    "avhrr_filename",
    "modis_filename",
    "era5_filename",
    "cci_filename",
]

TWIN_VERSION = "1"
"""Bump when the physics or a writer changes: a manifest from another version forces regeneration."""

# ---- constants (sources in the module docstring) ---------------------------------------------------------
LAYER_MM = 50.0                 #: true layer depth (0-5 cm), mm (TWIN.md)
ERA5_LAYER_MM = 70.0            #: ERA5-Land layer 1 (0-7 cm), mm (Munoz-Sabater et al. 2021)
ERA5_DRY_AI = 0.25              #: aridity index at which the ERA5-like wet shift reaches era5_wet_bias
OM_PERCENT = 2.5                #: soil organic matter for Saxton & Rawls, % weight (their Table 3 value)
SPINUP_DAYS = 365               #: bucket / phenology spin-up before the period, days
EARTH_RADIUS_KM = 6371.0
LAPSE_RATE = 6.5e-3             #: K m-1 (ICAO standard atmosphere)
T_SEA_0, T_SEA_LAT = 303.0, 0.35    #: mean sea-level air temperature T0 - a|lat|, K (about 289 K at 40 N)
T_AMP_0, T_AMP_LAT = 2.0, 0.28      #: seasonal amplitude of air temperature, K (13 K at 40 N, continental)
T_PEAK_DOY = 200                #: warmest day of year (mid-July, ~30 d after the solstice)
T_ANOM_RHO, T_ANOM_SD, T_ANOM_KM = 0.7, 3.0, 500.0   #: AR(1) synoptic temperature anomalies (K, km)
DTR_DRY, DTR_AI_SLOPE = 16.0, 4.0   #: clear-sky diurnal air-temperature range 16 - 4 min(AI, 1.5), K
P_PEAK_DOY, P_SEAS_AMP = 170, 0.6   #: precipitation seasonality (June peak, as the US Great Plains)
F_WET_0, F_WET_AI = 0.12, 0.12      #: wet-day frequency 0.12 + 0.12 min(AI, 2) (Richardson & Wright 1984)
OCC_PERSISTENCE = 0.35          #: r = p11 - p01, lag-1 persistence of wet days (Wilks 1999: 0.2-0.4)
GAMMA_SHAPE = 0.75              #: gamma shape of wet-day amounts (Wilks 1999: 0.6-0.9)
AMOUNT_KM, CLOUD_KM, ERA5_ERR_KM = 30.0, 40.0, 25.0  #: correlation lengths of daily fields, km
CLOUD_FRAC_CLOUDY, CLOUD_FRAC_CLEAR = 0.8, 0.2
F_VEG_MIN = 0.05                #: bare-season vegetation cover
ALBEDO_VEG_SW, ALBEDO_VEG_VIS = 0.18, 0.05   #: green grass/crop canopy albedo (Oke 1987: 0.16-0.26 SW)
ALBEDO_WET_RATIO = 0.5          #: wet/dry soil albedo (Idso et al. 1975: 0.14/0.31)
ALBEDO_VIS_SOIL_RATIO = 0.7     #: soil VIS / shortwave albedo
EF_VEG = 0.7                    #: evaporative fraction of a transpiring canopy
DT_WET, DT_DRY, RS_REF = 2.0, 16.0, 30.0     #: surface-air temperature excess, K; reference Rs, MJ m-2 d-1
LST_PEAK_H, LST_OMEGA_H, LST_REF_H = 13.0, 12.0, 13.5   #: diurnal LST cosine, local solar hours
LOW_QUALITY_FRACTION = 0.05
MIN_MU0_ALBEDO, LOW_QUALITY_MU0 = 0.17, 0.34  #: no albedo for SZA > 80 deg, low quality for SZA > 70 deg
CCI_EARLY_END = dt.date(2007, 1, 1)           #: before: the sparser, noisier early ESA CCI period
STATION_RHO, STATION_DIURNAL = 0.9, 0.004     #: AR(1) error persistence; diurnal amplitude, m3 m-3
STATION_DRIFT_PROB = 0.5                      #: probability that a station has one drifting stretch
FROZEN_T, FROZEN_FACTOR = 271.15, 0.6         #: frozen soil: sensors see liquid water only
Y2K = pd.Timestamp("2000-01-01")

# ---- file conventions (book/design.md) ---------------------------------------------------------------------
ALBEDO_SDS = ("ABD_BSA_shortwave", "ABD_WSA_shortwave", "ABD_BSA_VIS", "ABD_WSA_VIS")
ALBEDO_SCALE, ALBEDO_FILL, LST_SCALE, LST_FILL, QC_FILL = 1e-4, 32767, 0.01, 0, 255
ALBEDO_PRODUCTION, LST_PRODUCTION = "2019353", "2021120"   #: fixed production dates in the file names
SINU_PROJ4 = "+proj=sinu +R=6371007.181 +nadgrids=@null +wktext"
SINU_R = 6371007.181
MODIS_X0, MODIS_Y0 = -20015109.354, 10007554.677     #: upper-left corner of the MODIS sinusoidal grid, m
MODIS_FILL, STATIC_FILL, DEM_FILL, CCI_FILL, ERA5_FILL = -9999.0, -32768, -9999.0, -9999.0, -32767
STATION_NETWORK = "TWIN"
STATION_SENSORS = ("ThetaProbe-ML2X", "Hydraprobe-II-Sdi-12", "CS655", "EC5")


def _rng(seed: int, name: str) -> np.random.Generator:
    """An independent generator per component: ``(seed, crc32(name))``."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


# =========================================================================================================
# Grids
# =========================================================================================================
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
        return self.out.slices_in(self.sim)

    @property
    def cci_in_sim(self) -> tuple[slice, slice]:
        k = round(self.cci.res / RES)
        fine = Domain(self.cci.row0 * k, self.cci.col0 * k, self.cci.nrows * k, self.cci.ncols * k)
        return fine.slices_in(self.sim)

    @property
    def era5_in_sim(self) -> tuple[slice, slice]:
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


def _km_coords(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Local equirectangular coordinates (x east, y north), km, of 2-D lat/lon arrays."""
    k = np.pi / 180 * EARTH_RADIUS_KM
    return (lon - lon0) * k * np.cos(np.deg2rad(lat0)), (lat - lat0) * k


# =========================================================================================================
# Random fields
# =========================================================================================================
def smooth_fields(rng: np.random.Generator, n: int, x_km: np.ndarray, y_km: np.ndarray, length_km: float,
                  n_modes: int = 64, dtype=np.float32) -> np.ndarray:
    """``n`` independent smooth Gaussian random fields of unit variance at points ``(x_km, y_km)``.

    Random Fourier features (Rahimi & Recht 2007): ``g(x) = K^-1/2 sum_k a_k cos(w_k.x) + b_k sin(w_k.x)``
    with ``a, b ~ N(0, 1)`` and wave vectors ``w_k ~ N(0, I / length_km^2)``, so that
    ``cov(g(x), g(x')) ~ exp(-|x - x'|^2 / (2 length_km^2))`` and ``var g = 1`` exactly at every point.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Number of fields (e.g. days).
    x_km, y_km : numpy.ndarray
        Point coordinates, km (any shape, the same for both).
    length_km : float
        Correlation length, km.
    n_modes : int
        Number of Fourier modes K.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,) + x_km.shape``, dimensionless.
    """
    shape = np.shape(x_km)
    w = rng.normal(0.0, 1.0 / length_km, size=(n_modes, 2))
    phase = w[:, :1] * np.ravel(x_km)[None, :] + w[:, 1:] * np.ravel(y_km)[None, :]
    basis = np.concatenate([np.cos(phase), np.sin(phase)]) / np.sqrt(n_modes)     # (2K, npts)
    coef = rng.standard_normal((n, 2 * n_modes))
    return (coef @ basis).astype(dtype).reshape((n,) + shape)


# =========================================================================================================
# Soil
# =========================================================================================================
def hydraulic_limits(sand, clay, om: float = OM_PERCENT) -> dict[str, np.ndarray]:
    """Soil hydraulic limits from texture: Saxton & Rawls (2006) + residual water of Rawls & Brakensiek (1985).

    Parameters
    ----------
    sand, clay : array-like
        Mass fractions, dimensionless (0-1).
    om : float
        Organic matter, % weight (2.5 in Saxton & Rawls' Table 3).

    Returns
    -------
    dict of numpy.ndarray
        ``theta_r``, ``theta_wp`` (-1500 kPa), ``theta_fc`` (-33 kPa), ``theta_s`` (saturation) in m3 m-3;
        ``ksat`` saturated conductivity, mm h-1; ``lam`` the pore-size index lambda = 1/B, dimensionless.

    Notes
    -----
    Saxton & Rawls (2006), eqs. 1-5, 15-16 (S, C fractions, OM %)::

        t1500t = -0.024S + 0.487C + 0.006OM + 0.005 S OM - 0.013 C OM + 0.068 S C + 0.031
        theta_wp = t1500t + (0.14 t1500t - 0.02)
        t33t = -0.251S + 0.195C + 0.011OM + 0.006 S OM - 0.027 C OM + 0.452 S C + 0.299
        theta_fc = t33t + (1.283 t33t^2 - 0.374 t33t - 0.015)
        ts33t = 0.278S + 0.034C + 0.022OM - 0.018 S OM - 0.027 C OM - 0.584 S C + 0.078
        ts33 = ts33t + (0.636 ts33t - 0.107)
        theta_s = theta_fc + ts33 - 0.097S + 0.043
        B = (ln 1500 - ln 33) / (ln theta_fc - ln theta_wp);  lambda = 1/B
        Ks = 1930 (theta_s - theta_fc)^(3 - lambda)   [mm h-1]

    Rawls & Brakensiek (1985) residual water (S, C in %, clipped to their 5-70 % sand, 5-60 % clay; phi =
    theta_s)::

        theta_r = -0.0182482 + 0.00087269 S + 0.00513488 C + 0.02939286 phi - 0.00015395 C^2
                  - 0.0010827 S phi - 0.00018233 C^2 phi^2 + 0.00030703 C^2 phi - 0.0023584 phi^2 C

    Loam (S 0.40, C 0.20): theta_wp 0.14, theta_fc 0.28, theta_s 0.46, Ks 15 mm/h; sand (0.88, 0.05): 0.05,
    0.10, 0.46, 108 mm/h; clay (0.25, 0.50): 0.30, 0.42, 0.50, 1.1 mm/h (cf. Saxton & Rawls 2006, Table 3).
    """
    S, C = np.asarray(sand, float), np.asarray(clay, float)
    if np.any((S < 0) | (C < 0) | (S + C > 1 + 1e-9)):
        raise ValueError("sand and clay must be fractions with sand + clay <= 1")
    OM = float(om)
    t1500t = -0.024 * S + 0.487 * C + 0.006 * OM + 0.005 * S * OM - 0.013 * C * OM + 0.068 * S * C + 0.031
    wp = t1500t + (0.14 * t1500t - 0.02)
    t33t = -0.251 * S + 0.195 * C + 0.011 * OM + 0.006 * S * OM - 0.027 * C * OM + 0.452 * S * C + 0.299
    fc = t33t + (1.283 * t33t**2 - 0.374 * t33t - 0.015)
    ts33t = 0.278 * S + 0.034 * C + 0.022 * OM - 0.018 * S * OM - 0.027 * C * OM - 0.584 * S * C + 0.078
    ts33 = ts33t + (0.636 * ts33t - 0.107)
    sat = fc + ts33 - 0.097 * S + 0.043
    B = (np.log(1500.0) - np.log(33.0)) / (np.log(fc) - np.log(wp))
    lam = 1.0 / B
    ksat = 1930.0 * (sat - fc) ** (3.0 - lam)
    Sp, Cp = np.clip(S * 100, 5, 70), np.clip(C * 100, 5, 60)
    phi = sat
    res = (-0.0182482 + 0.00087269 * Sp + 0.00513488 * Cp + 0.02939286 * phi - 0.00015395 * Cp**2
           - 0.0010827 * Sp * phi - 0.00018233 * Cp**2 * phi**2 + 0.00030703 * Cp**2 * phi
           - 0.0023584 * phi**2 * Cp)
    res = np.clip(res, 0.0, 0.9 * wp)
    return {"theta_r": res, "theta_wp": wp, "theta_fc": fc, "theta_s": sat, "ksat": ksat, "lam": lam}


def bucket_step(theta, precip, pet, limits: dict, z_mm: float = LAYER_MM):
    """One day of the surface bucket (drainage, then ET, then infiltration; see the module docstring).

    Parameters
    ----------
    theta : numpy.ndarray
        Volumetric SM at the start of the day, m3 m-3.
    precip, pet : numpy.ndarray
        Precipitation and potential evapotranspiration of the day, mm d-1.
    limits : dict
        Output of :func:`hydraulic_limits` (``theta_r, theta_wp, theta_fc, theta_s`` m3 m-3, ``ksat`` mm h-1,
        ``lam``).
    z_mm : float
        Layer depth, mm.

    Returns
    -------
    theta_new, et, drainage, runoff : numpy.ndarray
        SM at the end of the day (m3 m-3) and the day's fluxes (mm d-1).
    """
    r, wp, fc, s = limits["theta_r"], limits["theta_wp"], limits["theta_fc"], limits["theta_s"]
    c = 3.0 + 2.0 / limits["lam"]
    excess = np.maximum(theta - fc, 0.0)
    drain = np.minimum(24.0 * limits["ksat"] * (excess / (s - fc)) ** c, excess * z_mm)
    th = theta - drain / z_mm
    beta = np.clip((th - wp) / (fc - wp), 0.0, 1.0)
    et = np.minimum(pet * beta, np.maximum(th - wp, 0.0) * z_mm)
    th = th - et / z_mm
    infil = np.clip((s - th) * z_mm, 0.0, precip)
    runoff = precip - infil
    th = np.clip(th + infil / z_mm, r, s)
    return th, et, drain, runoff


def run_bucket(precip: np.ndarray, pet: np.ndarray, limits: dict, z_mm: float = LAYER_MM,
               theta0: np.ndarray | None = None, progress: bool = False, desc: str = "bucket") -> np.ndarray:
    """Integrate :func:`bucket_step` over the leading (time) axis.

    Parameters
    ----------
    precip, pet : numpy.ndarray
        ``(time, ...)`` forcing, mm d-1.
    limits : dict
        :func:`hydraulic_limits` fields broadcastable to ``precip.shape[1:]``.
    z_mm : float
        Layer depth, mm.
    theta0 : numpy.ndarray, optional
        Initial SM, m3 m-3 (default: field capacity).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    numpy.ndarray
        ``(time, ...)`` float32 SM at the end of each day, m3 m-3.
    """
    lim = {k: np.asarray(v, np.float64) for k, v in limits.items()}
    theta = np.array(lim["theta_fc"] if theta0 is None else theta0, np.float64) * np.ones(precip.shape[1:])
    out = np.empty(precip.shape, np.float32)
    for t in tqdm(range(precip.shape[0]), desc=desc, disable=not progress, mininterval=1.0, leave=False):
        theta = bucket_step(theta, precip[t], pet[t], lim, z_mm)[0]
        out[t] = theta
    return out


# =========================================================================================================
# Climate and weather
# =========================================================================================================
def extraterrestrial_radiation(doy, lat_deg) -> np.ndarray:
    """Daily extraterrestrial radiation Ra, MJ m-2 d-1 (FAO-56, Allen et al. 1998, eqs. 21-25)."""
    doy = np.asarray(doy, float)
    phi = np.deg2rad(np.asarray(lat_deg, float))
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    delta = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1, 1))
    return (24 * 60 / np.pi * 0.0820 * dr
            * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)))


def _cos_sza(doy, lat_deg, hour) -> np.ndarray:
    """Cosine of the solar zenith angle at local solar time ``hour`` (FAO-56 declination)."""
    phi = np.deg2rad(np.asarray(lat_deg, float))
    delta = 0.409 * np.sin(2 * np.pi * np.asarray(doy, float) / 365 - 1.39)
    return (np.sin(phi) * np.sin(delta)
            + np.cos(phi) * np.cos(delta) * np.cos(np.deg2rad(15.0 * (np.asarray(hour, float) - 12.0))))


def _hargreaves(ra, t_air_k, dtr) -> np.ndarray:
    """Hargreaves & Samani (1985) reference ET, mm d-1, from Ra (MJ m-2 d-1), T (K) and DTR (K)."""
    return np.maximum(0.0023 * 0.408 * ra * (t_air_k - 273.15 + 17.8) * np.sqrt(np.maximum(dtr, 0)), 0.0)


def _ema(x: np.ndarray, days: float) -> np.ndarray:
    """Exponential moving average along axis 0 with e-folding ``days``, started at ``x[0]``."""
    a = 1.0 - np.exp(-1.0 / days)
    zi = (1 - a) * x[:1]
    return lfilter([a], [1.0, -(1.0 - a)], x, axis=0, zi=zi)[0]


def simulate_static(cfg, grids: TwinGrids | None = None) -> dict[str, np.ndarray]:
    """Terrain, texture and climate fields of the simulation domain.

    Returns
    -------
    dict
        Fine grids (``twin.static_resolution``) over ``grids.sim``: ``dem_fine`` (m, float32),
        ``sand_fine``/``clay_fine``/``silt_fine`` (g kg-1, int16, summing to 1000). 0.05 deg fields over
        ``grids.sim`` (block means of the fine grids, as a reader aggregates them): ``elevation`` (m),
        ``sand``/``clay``/``silt`` (fractions), ``aridity`` (P/PET, dimensionless), ``lat``/``lon`` (2-D,
        degrees), ``x_km``/``y_km``, and the :func:`hydraulic_limits` fields.
    """
    grids = grids or twin_grids(cfg)
    S, tw = grids.sim, cfg.twin
    f = 0.05 / tw.static_resolution
    if abs(f - round(f)) > 1e-6 or round(f) < 1:
        raise ValueError(f"twin.static_resolution {tw.static_resolution} must divide 0.05 deg")
    f = round(f)
    rng = _rng(cfg.run.seed, "static")
    res_f = RES / f
    lat_f = S.north - (np.arange(S.nrows * f) + 0.5) * res_f
    lon_f = S.west + (np.arange(S.ncols * f) + 0.5) * res_f
    LATf, LONf = np.meshgrid(lat_f, lon_f, indexing="ij")
    lat0, lon0 = 0.5 * (S.north + S.south), 0.5 * (S.west + S.east)
    xf, yf = _km_coords(LATf, LONf, lat0, lon0)

    g = smooth_fields(rng, 1, xf, yf, 40.0, dtype=np.float64)[0]
    ridge_g = smooth_fields(rng, 1, xf, yf, 25.0, dtype=np.float64)[0]
    ridge = (np.exp(-2 * ridge_g**2) - 1 / np.sqrt(5)) / np.sqrt(1 / 3 - 1 / 5)   # standardised ridges
    h = 0.6 * g + 0.8 * ridge                                                      # unit variance
    # lognormal heights: positive, mean = mean_elevation and sd = relief exactly, sharp peaks, flat valleys
    s_ln = np.sqrt(np.log1p((tw.relief / tw.mean_elevation) ** 2))
    dem = (tw.mean_elevation * np.exp(s_ln * h - 0.5 * s_ln**2)).astype(np.float32)

    out = grids.out
    ai_w, ai_e = (float(v) for v in tw.aridity_west_east)
    dryness = np.clip((out.east - LONf) / (out.east - out.west), 0, 1)             # 1 at the western edge
    g_s, g_c = smooth_fields(rng, 2, xf, yf, 20.0, dtype=np.float64)
    logit_sand = 0.35 * h + 0.5 * g_s + 0.6 * dryness
    logit_clay = np.log(0.5) - 0.3 * h + 0.5 * g_c
    e = np.exp(np.stack([logit_sand, logit_clay, np.zeros_like(h)]))
    frac = e / e.sum(0)
    sand_gkg = np.round(frac[0] * 1000).astype(np.int16)
    clay_gkg = np.round(frac[1] * 1000).astype(np.int16)
    silt_gkg = (1000 - sand_gkg - clay_gkg).astype(np.int16)

    st: dict[str, np.ndarray] = {"dem_fine": dem, "sand_fine": sand_gkg, "clay_fine": clay_gkg,
                                 "silt_fine": silt_gkg, "fine_factor": np.array(f)}
    st["elevation"] = block_mean(dem.astype(np.float64), f)
    for k in ("sand", "clay", "silt"):
        st[k] = block_mean(st[f"{k}_fine"].astype(np.float64), f) / 1000.0
    LAT, LON = np.meshgrid(S.lat, S.lon, indexing="ij")
    st["lat"], st["lon"] = LAT, LON
    st["x_km"], st["y_km"] = _km_coords(LAT, LON, lat0, lon0)
    frac_we = (LON - out.west) / (out.east - out.west)
    g_ai = smooth_fields(rng, 1, st["x_km"], st["y_km"], 50.0, dtype=np.float64)[0]
    st["aridity"] = np.maximum((ai_w + (ai_e - ai_w) * frac_we) * np.exp(0.1 * g_ai), 0.05)
    st.update(hydraulic_limits(st["sand"], st["clay"]))
    return st


def simulate_weather(cfg, static: dict, dates: pd.DatetimeIndex, progress: bool = False) -> dict:
    """Daily weather over the simulation domain (see the module docstring).

    Parameters
    ----------
    cfg : glass_sm.config.Config
    static : dict
        Output of :func:`simulate_static`.
    dates : pandas.DatetimeIndex
        Days to simulate.

    Returns
    -------
    dict of numpy.ndarray, each ``(time, lat, lon)``
        ``precip`` (mm d-1), ``wet`` (bool), ``t_air`` (K, daily mean), ``dtr`` (K), ``pet`` (mm d-1),
        ``rs`` (MJ m-2 d-1), ``cloudy`` (bool), plus ``pet_clim_mean`` and ``precip_clim_mean`` (lat, lon; mm
        d-1).
    """
    tw = cfg.twin
    rng = _rng(cfg.run.seed, "weather")
    T = len(dates)
    doy = dates.day_of_year.values.astype(float)[:, None, None]
    lat, elev, ai = static["lat"], static["elevation"], static["aridity"]
    x, y = static["x_km"], static["y_km"]

    ra = extraterrestrial_radiation(doy, lat[None])
    rs_clear = (0.75 + 2e-5 * elev) * ra
    t_mean = T_SEA_0 - T_SEA_LAT * np.abs(lat) - LAPSE_RATE * elev
    t_amp = T_AMP_0 + T_AMP_LAT * np.abs(lat)
    t_clim = t_mean + t_amp * np.cos(2 * np.pi * (doy - T_PEAK_DOY) / 365.25)
    innov = smooth_fields(rng, T, x, y, T_ANOM_KM) * (T_ANOM_SD * np.sqrt(1 - T_ANOM_RHO**2))
    t_air = t_clim + lfilter([1.0], [1.0, -T_ANOM_RHO], innov, axis=0).astype(np.float32)

    dtr_clear = DTR_DRY - DTR_AI_SLOPE * np.minimum(ai, 1.5)
    c_mean = tw.cloud_base * CLOUD_FRAC_CLOUDY + (1 - tw.cloud_base) * CLOUD_FRAC_CLEAR
    pet_clim_mean = _hargreaves(ra, t_clim, dtr_clear * (1 - 0.6 * c_mean)).mean(0)
    p_mean = ai * pet_clim_mean
    sp = np.cos(2 * np.pi * (doy - P_PEAK_DOY) / 365.25)
    p_clim = p_mean * (1 + P_SEAS_AMP * sp)
    f_wet = np.clip((F_WET_0 + F_WET_AI * np.minimum(ai, 2.0)) * (1 + 0.5 * P_SEAS_AMP * sp), 0.02, 0.8)
    p01 = f_wet * (1 - OCC_PERSISTENCE)
    p11 = p01 + OCC_PERSISTENCE
    u_occ = ndtr(smooth_fields(rng, T, x, y, tw.storm_length_km))
    wet = np.empty(u_occ.shape, bool)
    prev = u_occ[0] < f_wet[0]
    for t in tqdm(range(T), desc="weather", disable=not progress, mininterval=1.0, leave=False):
        prev = u_occ[t] < np.where(prev, p11[t], p01[t])
        wet[t] = prev
    # gamma quantiles through a table in normal-score space (exact to interpolation error, fast)
    zgrid = np.linspace(-7, 7, 4001)
    qgrid = gammaincinv(GAMMA_SHAPE, ndtr(zgrid))
    z_amt = smooth_fields(rng, T, x, y, AMOUNT_KM)
    mu = np.broadcast_to(p_clim / f_wet, wet.shape)
    precip = np.zeros(wet.shape, np.float32)
    precip[wet] = np.interp(z_amt[wet], zgrid, qgrid) * mu[wet] / GAMMA_SHAPE

    u_cld = ndtr(smooth_fields(rng, T, x, y, CLOUD_KM))
    cloudy = u_cld < np.where(wet, tw.cloud_wet, tw.cloud_base)
    c = np.where(cloudy, CLOUD_FRAC_CLOUDY, CLOUD_FRAC_CLEAR)
    rs = (rs_clear * (1 - 0.75 * c**3.4)).astype(np.float32)
    dtr = (dtr_clear * (1 - 0.6 * c)).astype(np.float32)
    pet = _hargreaves(ra, t_air, dtr).astype(np.float32)
    return {"precip": precip, "wet": wet, "t_air": t_air.astype(np.float32), "dtr": dtr, "pet": pet,
            "rs": rs, "cloudy": cloudy, "pet_clim_mean": pet_clim_mean,
            "precip_clim_mean": p_mean}


def _vegetation(static: dict, w: dict) -> np.ndarray:
    """Fractional vegetation cover, dimensionless, lagging rain (module docstring)."""
    m = _ema(w["precip"].astype(np.float64), 30) / np.maximum(_ema(w["pet"].astype(np.float64), 30), 0.5)
    warm = np.clip((_ema(w["t_air"].astype(np.float64), 10) - 278.15) / 10.0, 0, 1)
    G = _ema(np.clip(m, 0, 1) * warm, 20)
    f_max = np.clip(0.35 + 0.4 * static["aridity"], 0.35, 0.9)
    return (F_VEG_MIN + (f_max - F_VEG_MIN) * G).astype(np.float32)


def _era5_shift(aridity, wet_bias: float) -> np.ndarray:
    """Wet shift of the ERA5-like soil limits, m3 m-3: ``b min(1, (0.25/AI)^0.7)``."""
    return wet_bias * np.minimum(1.0, (ERA5_DRY_AI / np.asarray(aridity)) ** 0.7)


def simulate_truth(cfg, progress: bool = False) -> dict:
    """Static fields, weather, vegetation, the true SM and the ERA5-like SM over the simulation domain.

    Parameters
    ----------
    cfg : glass_sm.config.Config
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``grids`` (:class:`TwinGrids`), ``dates`` (the period), ``static`` (:func:`simulate_static`),
        ``weather`` (:func:`simulate_weather`, period only), ``f_veg`` and ``theta`` (true 0-5 cm SM, m3 m-3)
        and ``theta_era5`` (ERA5-like 0-7 cm SM at 0.05 deg before averaging, m3 m-3), each
        ``(time, lat, lon)`` float32 on ``grids.sim``; ``era5_limits`` (the shifted limits).
    """
    grids = twin_grids(cfg)
    dates = pd.date_range(cfg.period.start, cfg.period.end, freq="D")
    ext = pd.date_range(dates[0] - pd.Timedelta(days=SPINUP_DAYS), dates[-1], freq="D")
    static = simulate_static(cfg, grids)
    w = simulate_weather(cfg, static, ext, progress)
    lim = {k: static[k] for k in ("theta_r", "theta_wp", "theta_fc", "theta_s", "ksat", "lam")}
    theta = run_bucket(w["precip"], w["pet"], lim, LAYER_MM, progress=progress, desc="truth bucket")
    f_veg = _vegetation(static, w)

    rng = _rng(cfg.run.seed, "era5")
    cv = cfg.twin.era5_precip_error
    sig = np.sqrt(np.log1p(cv**2))
    eps = smooth_fields(rng, len(ext), static["x_km"], static["y_km"], ERA5_ERR_KM)
    p_era = (w["precip"] * np.exp(sig * eps - 0.5 * sig**2)).astype(np.float32)
    d = _era5_shift(static["aridity"], cfg.twin.era5_wet_bias)
    lim_e = dict(lim, theta_wp=lim["theta_wp"] + d, theta_fc=lim["theta_fc"] + d,
                 theta_s=np.minimum(lim["theta_s"] + 0.5 * d, 0.6), theta_r=lim["theta_r"])
    theta_e = run_bucket(p_era, w["pet"], lim_e, ERA5_LAYER_MM, progress=progress, desc="ERA5 bucket")

    keep = slice(SPINUP_DAYS, None)
    weather = {k: (v[keep] if np.ndim(v) == 3 else v) for k, v in w.items()}
    return {"grids": grids, "dates": dates, "static": static, "weather": weather, "f_veg": f_veg[keep],
            "theta": theta[keep], "theta_era5": theta_e[keep], "era5_limits": lim_e, "era5_shift": d}


# =========================================================================================================
# Sensors
# =========================================================================================================
def albedo_model(theta, theta_s, f_veg, sand, alpha_veg: float = ALBEDO_VEG_SW) -> np.ndarray:
    """Shortwave white-sky albedo of a soil-vegetation mix, dimensionless (module docstring).

    Parameters
    ----------
    theta, theta_s : array-like
        Surface SM and saturation, m3 m-3.
    f_veg : array-like
        Vegetation cover, dimensionless.
    sand : array-like
        Sand fraction (sandy soils are brighter: dry albedo 0.22 + 0.15 sand).
    alpha_veg : float
        Canopy albedo.
    """
    a_dry = 0.22 + 0.15 * np.asarray(sand)
    a_soil = a_dry * (1 - (1 - ALBEDO_WET_RATIO) * np.clip(np.asarray(theta) / theta_s, 0, 1))
    return f_veg * alpha_veg + (1 - np.asarray(f_veg)) * a_soil


def lst_model(t_air, dtr, rs, theta, limits: dict, f_veg, hour) -> np.ndarray:
    """Clear-sky LST at local solar time ``hour`` without drift correction, K (module docstring).

    Parameters
    ----------
    t_air, dtr : array-like
        Daily mean air temperature and diurnal range, K.
    rs : array-like
        Daily shortwave radiation, MJ m-2 d-1.
    theta : array-like
        Surface SM, m3 m-3.
    limits : dict
        ``theta_wp`` and ``theta_fc`` (m3 m-3).
    f_veg : array-like
        Vegetation cover, dimensionless.
    hour : array-like
        Local solar time, h.
    """
    beta = np.clip((theta - limits["theta_wp"]) / (limits["theta_fc"] - limits["theta_wp"]), 0, 1)
    ef = (1 - f_veg) * beta + f_veg * EF_VEG
    peak = t_air + 0.5 * dtr + rs / RS_REF * (DT_WET + DT_DRY * (1 - ef))
    amp = peak - (t_air - 0.5 * dtr)
    return peak - amp * (1 - np.cos(np.pi * np.maximum(np.asarray(hour) - LST_PEAK_H, 0) / LST_OMEGA_H))


def _platform_steps(seed: int, tw) -> tuple[np.ndarray, np.ndarray]:
    """Per-platform (albedo relative step, LST step K), one row of NOAA_PLATFORMS each."""
    rng = _rng(seed, "platforms")
    n = len(NOAA_PLATFORMS)
    return rng.normal(0, tw.platform_albedo_step, n), rng.normal(0, tw.platform_lst_step, n)


def simulate_avhrr(cfg, sim: dict) -> dict:
    """AVHRR-like albedo and LST on the run's domain, with clouds, QC, platform steps and orbital drift.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed`` and ``twin`` (noise, platform steps, drift residual).
    sim : dict
        Output of :func:`simulate_truth`.

    Returns
    -------
    dict
        ``bsa_sw, wsa_sw, bsa_vis, wsa_vis`` (dimensionless) and ``lst`` (K): float32 ``(time, lat, lon)`` on
        ``grids.out``, NaN where not retrieved; ``qc_albedo`` / ``qc_lst`` uint8 (bit 0 not retrieved, bit 1
        low quality); ``platform`` (str per day), ``overpass_h`` (local solar time per day, h),
        ``lst_clean`` (LST with no platform effect or noise, drift corrected at 13:30, K).
    """
    tw, g = cfg.twin, sim["grids"]
    rs_, cs_ = g.out_in_sim
    st = {k: v[rs_, cs_] for k, v in sim["static"].items() if np.shape(v) == g.sim.shape}
    w = {k: v[:, rs_, cs_] for k, v in sim["weather"].items() if np.ndim(v) == 3}
    theta, f_veg = sim["theta"][:, rs_, cs_], sim["f_veg"][:, rs_, cs_]
    dates = sim["dates"]
    rng = _rng(cfg.run.seed, "avhrr")
    shape = theta.shape
    pidx = platform_index(dates)
    if np.any(pidx < 0):
        raise ValueError(f"period starts before the AVHRR record ({NOAA_PLATFORMS['start'].iloc[0].date()})")
    hour = equator_crossing_time(dates)[:, None, None]
    doy = dates.day_of_year.values[:, None, None]
    mu0 = _cos_sza(doy, st["lat"][None], hour)
    a_step, t_step = _platform_steps(cfg.run.seed, tw)
    extended = (dates.values > NOAA_PLATFORMS["nominal_end"].values[pidx])[:, None, None]

    missing = w["cloudy"].copy()
    lowq = (rng.random(shape) < LOW_QUALITY_FRACTION) | extended
    noise_k = np.where(lowq, 3.0, 1.0)

    cal = (1 + a_step[pidx])[:, None, None]
    wsa = albedo_model(theta, st["theta_s"], f_veg, st["sand"]) * cal
    a_dry_vis = ALBEDO_VIS_SOIL_RATIO * (0.22 + 0.15 * st["sand"])
    wsa_vis = (f_veg * ALBEDO_VEG_VIS + (1 - f_veg) * a_dry_vis
               * (1 - (1 - ALBEDO_WET_RATIO) * np.clip(theta / st["theta_s"], 0, 1))) * cal
    bsa_k = 1 + 0.3 * (0.5 - mu0)
    e_sw = rng.normal(0, tw.albedo_noise, shape) * noise_k
    e_vis = rng.normal(0, tw.albedo_noise, shape) * noise_k
    alb_missing = missing | (mu0 < MIN_MU0_ALBEDO)
    alb_lowq = lowq | (mu0 < LOW_QUALITY_MU0)
    out = {}
    for name, val, e in (("wsa_sw", wsa, e_sw), ("bsa_sw", wsa * bsa_k, e_sw * bsa_k),
                         ("wsa_vis", wsa_vis, e_vis), ("bsa_vis", wsa_vis * bsa_k, e_vis * bsa_k)):
        out[name] = np.where(alb_missing, np.nan, np.clip(val + e, 0, 1)).astype(np.float32)

    lim = {"theta_wp": st["theta_wp"], "theta_fc": st["theta_fc"]}
    args = (w["t_air"], w["dtr"], w["rs"], theta, lim, f_veg)
    lst_ref = lst_model(*args, LST_REF_H)
    lst_h = lst_model(*args, hour)
    lst = (lst_ref + tw.drift_residual * (lst_h - lst_ref) + t_step[pidx][:, None, None]
           + rng.normal(0, tw.lst_noise, shape) * noise_k)
    out["lst"] = np.where(missing, np.nan, lst).astype(np.float32)
    out["lst_clean"] = lst_ref.astype(np.float32)
    out["qc_albedo"] = (alb_missing.astype(np.uint8) | (alb_lowq & ~alb_missing).astype(np.uint8) << 1)
    out["qc_lst"] = (missing.astype(np.uint8) | (lowq & ~missing).astype(np.uint8) << 1)
    out["platform"] = NOAA_PLATFORMS["platform"].to_numpy(dtype=str)[pidx]
    out["overpass_h"] = hour[:, 0, 0]
    return out


def simulate_era5(sim: dict) -> np.ndarray:
    """ERA5-like daily SM on the 0.1 deg points of ``grids`` (block means of the 0.05 deg run), m3 m-3.

    Returns
    -------
    numpy.ndarray
        ``(time, lat, lon)`` float32, latitude descending, the points of :class:`TwinGrids` ``era5_*``.
    """
    rs_, cs_ = sim["grids"].era5_in_sim
    return block_mean(sim["theta_era5"][:, rs_, cs_], 2)


# =========================================================================================================
# Writers
# =========================================================================================================
def avhrr_filename(kind: str, day: pd.Timestamp) -> str:
    """``GLASS02B05.V40.A<YYYY><DDD>.<prod>.hdf`` (albedo) or ``GLASS08B31...`` (LST) (book/design.md)."""
    short, prod = {"albedo": ("GLASS02B05", ALBEDO_PRODUCTION), "lst": ("GLASS08B31", LST_PRODUCTION)}[kind]
    return f"{short}.V40.A{day.year:04d}{day.day_of_year:03d}.{prod}.hdf"


def modis_filename(day: pd.Timestamp) -> str:
    """``GLASS_MODIS_SM.A<YYYY><DDD>.tif``."""
    return f"GLASS_MODIS_SM.A{day.year:04d}{day.day_of_year:03d}.tif"


def era5_filename(year: int) -> str:
    """``era5land_swvl1_<YYYY>.nc``."""
    return f"era5land_swvl1_{year:04d}.nc"


def cci_filename(year: int) -> str:
    """``ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-<YYYY>-fv08.1.nc`` (one file per year: a twin deviation)."""
    return f"ESACCI-SOILMOISTURE-L3S-SSMV-COMBINED-{year:04d}-fv08.1.nc"


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _commit(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def _hdf_attr(obj, name: str, value, sdc_type) -> None:
    att = obj.attr(name)
    att.set(sdc_type, value)


@contextlib.contextmanager
def _staging(folder: Path):
    """Work inside ``folder/.staging`` (created), restoring the working directory afterwards.

    HDF4 stores the file name given to ``SDstart`` inside the file; creating files by their bare final name
    in a staging folder keeps the bytes independent of the output path, and the rename into place keeps the
    write atomic (same file system).
    """
    stage = Path(folder) / ".staging"
    stage.mkdir(parents=True, exist_ok=True)
    old = os.getcwd()
    os.chdir(stage)
    try:
        yield stage
    finally:
        os.chdir(old)
        with contextlib.suppress(OSError):
            stage.rmdir()


def _write_hdf4(path: Path, sds: list[tuple], gattrs: dict, short: str) -> Path:
    """Write one GLASS-like HDF4 file (call inside :func:`_staging`; ``path`` absolute).

    ``sds``: list of (name, array, SDC type, attrs dict, _FillValue, valid_range or None).
    """
    from pyhdf.SD import SD, SDC

    tmp = Path(path.name)
    if tmp.exists():
        tmp.unlink()
    f = SD(path.name, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        for name, arr, typ, attrs, fill, vrange in sds:
            s = f.create(name, typ, arr.shape)
            s.dim(0).setname(f"YDim:{short}")
            s.dim(1).setname(f"XDim:{short}")
            s.setfillvalue(fill)
            if vrange is not None:
                s.setrange(*vrange)
            for k, v in attrs.items():
                if isinstance(v, str):
                    _hdf_attr(s, k, v, SDC.CHAR8)
                else:
                    _hdf_attr(s, k, float(v), SDC.FLOAT64)
            s[:] = arr
            s.endaccess()
        for k, v in gattrs.items():
            if isinstance(v, str):
                _hdf_attr(f, k, v, SDC.CHAR8)
            else:
                _hdf_attr(f, k, float(v), SDC.FLOAT64)
    finally:
        f.end()
    return _commit(tmp.resolve(), path)


def _encode(x: np.ndarray, scale: float, fill: int, lo: int, hi: int, dtype) -> np.ndarray:
    """Physical values -> scaled integers (``round(x / scale)`` clipped to [lo, hi]; NaN -> fill)."""
    q = np.round(np.nan_to_num(x, nan=0.0) / scale)
    return np.where(np.isfinite(x), np.clip(q, lo, hi), fill).astype(dtype)


_ALBEDO_LONG = {"bsa_sw": "black-sky albedo, shortwave (0.3-5.0 um)", "wsa_sw": "white-sky albedo, shortwave",
                "bsa_vis": "black-sky albedo, visible (0.4-0.7 um)", "wsa_vis": "white-sky albedo, visible"}
_QC_DESC = "bit 0: 1 = cloudy/not retrieved; bit 1: 1 = low quality"


def write_avhrr(cfg, avhrr: dict, dates: pd.DatetimeIndex, out: Domain, progress: bool = False) -> dict:
    """Write the daily GLASS-like albedo and LST HDF4 files (book/design.md).

    Parameters
    ----------
    cfg : glass_sm.config.Config
        ``data.avhrr_dir`` receives ``albedo/<YYYY>/`` and ``lst/<YYYY>/``.
    avhrr : dict
        Output of :func:`simulate_avhrr` (albedo dimensionless, LST K, NaN = not retrieved).
    dates : pandas.DatetimeIndex
    out : Domain
        The domain the arrays cover (geolocation attributes).
    progress : bool

    Returns
    -------
    dict
        ``{'albedo': [paths], 'lst': [paths]}``.
    """
    root = Path(cfg.data.avhrr_dir).resolve()
    geo = {"UpperLeftLatitude": out.north, "UpperLeftLongitude": out.west, "GridResolution": RES}
    alb = {k: _encode(avhrr[k], ALBEDO_SCALE, ALBEDO_FILL, 0, 10000, np.int16) for k in _ALBEDO_LONG}
    lst = _encode(avhrr["lst"], LST_SCALE, LST_FILL, 1, 65535, np.uint16)
    written = {"albedo": [], "lst": []}
    for year in sorted(set(dates.year)):
        for k in written:
            (root / k / f"{year:04d}").mkdir(parents=True, exist_ok=True)
    with _staging(root):
        for t, day in enumerate(tqdm(dates, desc="AVHRR HDF4", disable=not progress, mininterval=1.0)):
            common = {"Satellite": str(avhrr["platform"][t]), "RangeBeginningDate": f"{day:%Y-%m-%d}",
                      "RangeEndingDate": f"{day:%Y-%m-%d}", "Source": "glass-sm synthetic twin", **geo}
            written["albedo"].append(_write_albedo_day(root, day, {k: v[t] for k, v in alb.items()},
                                                       avhrr["qc_albedo"][t], common))
            written["lst"].append(_write_lst_day(root, day, lst[t], avhrr["qc_lst"][t], common))
    return written


def _write_albedo_day(root: Path, day: pd.Timestamp, alb: dict, qc: np.ndarray, common: dict) -> Path:
    from pyhdf.SD import SDC

    sds = [(name, alb[k], SDC.INT16, {"long_name": _ALBEDO_LONG[k], "units": "dimensionless",
                                      "scale_factor": ALBEDO_SCALE, "add_offset": 0.0}, ALBEDO_FILL, (0, 10000))
           for k, name in zip(_ALBEDO_LONG, ALBEDO_SDS)]
    sds.append(("QC", qc, SDC.UINT8, {"long_name": "quality control", "description": _QC_DESC}, QC_FILL, None))
    path = root / "albedo" / f"{day.year:04d}" / avhrr_filename("albedo", day)
    return _write_hdf4(path, sds, {"ShortName": "GLASS02B05", "VersionID": "V40", **common}, "GLASS02B05")


def _write_lst_day(root: Path, day: pd.Timestamp, lst: np.ndarray, qc: np.ndarray, common: dict) -> Path:
    from pyhdf.SD import SDC

    sds = [("LST", lst, SDC.UINT16, {"long_name": "land surface temperature", "units": "K",
                                     "scale_factor": LST_SCALE, "add_offset": 0.0}, LST_FILL, (15000, 40000)),
           ("QC", qc, SDC.UINT8, {"long_name": "quality control", "description": _QC_DESC}, QC_FILL, None)]
    path = root / "lst" / f"{day.year:04d}" / avhrr_filename("lst", day)
    return _write_hdf4(path, sds, {"ShortName": "GLASS08B31", "VersionID": "V40", **common}, "GLASS08B31")


# ---- GeoTIFF ---------------------------------------------------------------------------------------------
_GEO_TAGS = (33550, 33922, 34735, 34736, 34737, 42113)  # pixel scale, tiepoint, GeoKeys, GDAL_NODATA


class _FastGeoTiff:
    """Writes many float32 single-band GeoTIFFs sharing one georeferencing.

    GDAL spends ~5 ms per file encoding a CRS into GeoTIFF keys; the demo writes ~8000 GLASS-MODIS files.
    This writer lets rasterio/GDAL write a template once, copies its GeoTIFF tags verbatim, and then emits
    baseline TIFFs itself (one strip, Adobe deflate, floating-point predictor 3, TIFF Tech. Note 3) that
    GDAL reads exactly like its own (tested against rasterio).
    """

    def __init__(self, width: int, height: int, transform, crs: str, nodata: float):
        import rasterio
        from rasterio.io import MemoryFile

        self.w, self.h = int(width), int(height)
        with MemoryFile() as mf:
            with mf.open(driver="GTiff", width=self.w, height=self.h, count=1, dtype="float32",
                         crs=rasterio.crs.CRS.from_proj4(crs) if crs.startswith("+") else crs,
                         transform=transform, nodata=nodata) as dst:
                dst.write(np.zeros((1, self.h, self.w), np.float32))
            self.geo_entries = self._read_tags(mf.read())

    @staticmethod
    def _read_tags(buf: bytes) -> list[tuple[int, int, int, bytes]]:
        if buf[:4] != b"II*\x00":
            raise ValueError("template is not a little-endian classic TIFF")
        sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 11: 4, 12: 8, 16: 8}
        (ifd,) = struct.unpack_from("<I", buf, 4)
        (n,) = struct.unpack_from("<H", buf, ifd)
        out = []
        for i in range(n):
            tag, typ, count, val = struct.unpack_from("<HHI4s", buf, ifd + 2 + 12 * i)
            if tag in _GEO_TAGS:
                nbytes = sizes[typ] * count
                data = val[:nbytes] if nbytes <= 4 else buf[struct.unpack("<I", val)[0]:][:nbytes]
                out.append((tag, typ, count, bytes(data)))
        return out

    def encode(self, a: np.ndarray) -> bytes:
        a = np.ascontiguousarray(a, np.float32)
        if a.shape != (self.h, self.w):
            raise ValueError(f"array {a.shape} != template {(self.h, self.w)}")
        planes = a.astype(">f4").view(np.uint8).reshape(self.h, self.w, 4).transpose(0, 2, 1)
        planes = planes.reshape(self.h, 4 * self.w)
        diff = np.diff(planes, axis=1, prepend=np.zeros((self.h, 1), np.uint8))   # wraps mod 256
        strip = zlib.compress(diff.tobytes(), 6)
        entries = [(256, 4, 1, struct.pack("<I", self.w)), (257, 4, 1, struct.pack("<I", self.h)),
                   (258, 3, 1, struct.pack("<H", 32)), (259, 3, 1, struct.pack("<H", 8)),
                   (262, 3, 1, struct.pack("<H", 1)), (273, 4, 1, struct.pack("<I", 8)),
                   (277, 3, 1, struct.pack("<H", 1)), (278, 4, 1, struct.pack("<I", self.h)),
                   (279, 4, 1, struct.pack("<I", len(strip))), (284, 3, 1, struct.pack("<H", 1)),
                   (317, 3, 1, struct.pack("<H", 3)), (339, 3, 1, struct.pack("<H", 3))]
        entries = sorted(entries + self.geo_entries)
        ifd_off = 8 + len(strip) + (len(strip) & 1)
        extra_off = ifd_off + 2 + 12 * len(entries) + 4
        ifd, extra = [struct.pack("<H", len(entries))], []
        for tag, typ, count, data in entries:
            if len(data) <= 4:
                ifd.append(struct.pack("<HHI", tag, typ, count) + data.ljust(4, b"\x00"))
            else:
                ifd.append(struct.pack("<HHII", tag, typ, count, extra_off))
                pad = data + b"\x00" * (len(data) & 1)
                extra.append(pad)
                extra_off += len(pad)
        ifd.append(struct.pack("<I", 0))
        return b"".join([b"II*\x00", struct.pack("<I", ifd_off), strip, b"\x00" * (len(strip) & 1),
                         *ifd, *extra])

    def write(self, path: Path, a: np.ndarray) -> Path:
        tmp = _partial(path)
        tmp.write_bytes(self.encode(a))
        return _commit(tmp, path)


def modis_grid(out: Domain, pixel_m: float) -> tuple:
    """MODIS-sinusoidal raster covering a lat/lon domain, snapped to the global MODIS grid corner.

    Returns
    -------
    transform : affine.Affine
    width, height : int
    cell_index : numpy.ndarray
        ``(height, width)`` flat index (row-major in ``out``) of the 0.05 deg cell holding each pixel centre,
        -1 outside the domain.
    """
    from rasterio.transform import from_origin

    lats = np.array([out.south, out.north] + ([0.0] if out.south < 0 < out.north else []))
    xs = [SINU_R * np.deg2rad(lo) * np.cos(np.deg2rad(la)) for lo in (out.west, out.east) for la in lats]
    x0 = MODIS_X0 + np.floor((min(xs) - MODIS_X0) / pixel_m) * pixel_m
    x1 = MODIS_X0 + np.ceil((max(xs) - MODIS_X0) / pixel_m) * pixel_m
    y1 = MODIS_Y0 - np.floor((MODIS_Y0 - SINU_R * np.deg2rad(out.north)) / pixel_m) * pixel_m
    y0 = MODIS_Y0 - np.ceil((MODIS_Y0 - SINU_R * np.deg2rad(out.south)) / pixel_m) * pixel_m
    width, height = int(round((x1 - x0) / pixel_m)), int(round((y1 - y0) / pixel_m))
    xc = x0 + (np.arange(width) + 0.5) * pixel_m
    yc = y1 - (np.arange(height) + 0.5) * pixel_m
    lat = np.rad2deg(yc / SINU_R)[:, None]
    lon = np.rad2deg(xc[None, :] / (SINU_R * np.cos(np.deg2rad(lat))))
    r = np.floor((out.north - lat) / RES).astype(int) * np.ones_like(lon, int)
    c = np.floor((lon - out.west) / RES).astype(int)
    inside = (r >= 0) & (r < out.nrows) & (c >= 0) & (c < out.ncols)
    idx = np.where(inside, r * out.ncols + c, -1)
    return from_origin(x0, y1, pixel_m, pixel_m), width, height, idx


def write_glass_modis(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """Daily GLASS-MODIS-like SM GeoTIFFs (sinusoidal, float32, NoData -9999) from ``period.label_start``."""
    g, tw = sim["grids"], cfg.twin
    rs_, cs_ = g.out_in_sim
    dates = sim["dates"]
    t0 = np.searchsorted(dates.values, np.datetime64(pd.Timestamp(cfg.period.label_start)))
    if t0 >= len(dates):
        return []
    transform, width, height, idx = modis_grid(g.out, tw.modis_pixel_m)
    writer = _FastGeoTiff(width, height, transform, SINU_PROJ4, MODIS_FILL)
    rng = _rng(cfg.run.seed, "labels")
    valid = idx >= 0
    root = Path(cfg.data.glass_modis_dir)
    for year in sorted(set(dates[t0:].year)):
        (root / f"{year:04d}").mkdir(parents=True, exist_ok=True)
    paths = []
    for t in tqdm(range(t0, len(dates)), desc="GLASS-MODIS GeoTIFF", disable=not progress, mininterval=1.0):
        truth = sim["theta"][t, rs_, cs_].ravel()
        gap = rng.random(truth.size) < tw.label_gap_fraction
        noise = rng.normal(0, tw.label_noise, idx.shape).astype(np.float32)
        cell = np.where(valid, idx, 0)
        val = np.maximum(truth[cell] + noise, 0.0)
        img = np.where(valid & ~gap[cell], val, MODIS_FILL).astype(np.float32)
        day = dates[t]
        paths.append(writer.write(root / f"{day.year:04d}" / modis_filename(day), img))
    return paths


def write_static(cfg, sim: dict) -> list[Path]:
    """dem.tif (m, float32) and sand/clay/silt.tif (g/kg, int16) on the domain, EPSG:4326."""
    import rasterio
    from rasterio.transform import from_origin

    g, st = sim["grids"], sim["static"]
    f = int(st["fine_factor"])
    rs_, cs_ = g.out_in_sim
    fr = slice(rs_.start * f, rs_.stop * f)
    fc = slice(cs_.start * f, cs_.stop * f)
    res = RES / f
    transform = from_origin(g.out.west, g.out.north, res, res)
    root = Path(cfg.data.static_dir)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, key, dtype, nodata, units in (("dem", "dem_fine", "float32", DEM_FILL, "m"),
                                            ("sand", "sand_fine", "int16", STATIC_FILL, "g/kg"),
                                            ("clay", "clay_fine", "int16", STATIC_FILL, "g/kg"),
                                            ("silt", "silt_fine", "int16", STATIC_FILL, "g/kg")):
        a = st[key][fr, fc].astype(dtype)
        path = root / f"{name}.tif"
        tmp = _partial(path)
        with rasterio.open(tmp, "w", driver="GTiff", width=a.shape[1], height=a.shape[0], count=1,
                           dtype=dtype, crs="EPSG:4326", transform=transform, nodata=nodata,
                           compress="deflate") as dst:
            dst.write(a, 1)
            dst.update_tags(1, units=units, source="glass-sm synthetic twin")
        paths.append(_commit(tmp, path))
    return paths


def _pack_int16(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """grib_to_netcdf-style packing: offset = mid-range, scale = range / 65532 (fill -32767 kept free)."""
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    scale = (hi - lo) / 65532.0 if hi > lo else 1e-6
    offset = 0.5 * (hi + lo)
    q = np.round((x - offset) / scale)
    return np.where(np.isfinite(x), q, ERA5_FILL).astype(np.int16), scale, offset


def write_era5(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """ERA5-Land-like swvl1, legacy CDS netCDF (NETCDF3 64-bit offset, int16 packed), one file per year."""
    import netCDF4

    g = sim["grids"]
    daily = simulate_era5(sim).astype(np.float64)
    dates = sim["dates"]
    root = Path(cfg.data.era5land_dir)
    root.mkdir(parents=True, exist_ok=True)
    prev = np.concatenate([daily[:1], daily[:-1]])
    nxt = np.concatenate([daily[1:], daily[-1:]])
    steps = np.stack([0.5 * (prev + daily), 0.75 * daily + 0.25 * prev, daily, 0.75 * daily + 0.25 * nxt], 1)
    base = pd.Timestamp("1900-01-01")
    paths = []
    for year in tqdm(sorted(set(dates.year)), desc="ERA5-Land netCDF", disable=not progress):
        sel = np.flatnonzero(dates.year == year)
        data = steps[sel].reshape(-1, *daily.shape[1:])
        hours = ((dates[sel] - base) / pd.Timedelta(hours=1)).values.astype(np.int64)
        hours = (hours[:, None] + np.array([0, 6, 12, 18])[None]).ravel().astype(np.int32)
        packed, scale, offset = _pack_int16(data)
        path = root / era5_filename(year)
        tmp = _partial(path)
        with netCDF4.Dataset(tmp, "w", format="NETCDF3_64BIT_OFFSET") as nc:
            nc.createDimension("longitude", daily.shape[2])
            nc.createDimension("latitude", daily.shape[1])
            nc.createDimension("time", None)
            v = nc.createVariable("longitude", "f4", ("longitude",))
            v.units, v.long_name = "degrees_east", "longitude"
            v[:] = g.era5_lon
            v = nc.createVariable("latitude", "f4", ("latitude",))
            v.units, v.long_name = "degrees_north", "latitude"
            v[:] = g.era5_lat
            v = nc.createVariable("time", "i4", ("time",))
            v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:0.0", "time", "gregorian"
            v[:] = hours
            v = nc.createVariable("swvl1", "i2", ("time", "latitude", "longitude"), fill_value=ERA5_FILL)
            v.set_auto_maskandscale(False)
            v.scale_factor, v.add_offset = scale, offset
            v.missing_value = np.int16(ERA5_FILL)
            v.units, v.long_name = "m**3 m**-3", "Volumetric soil water layer 1"
            v[:] = packed
            nc.Conventions = "CF-1.6"
            nc.history = ("glass-sm synthetic twin, written in the legacy CDS layout of "
                          "grib_to_netcdf-2.6.0 (no timestamp, for reproducible bytes)")
        paths.append(_commit(tmp, path))
    return paths


def write_cci(cfg, sim: dict, progress: bool = False) -> list[Path]:
    """ESA-CCI-like combined SM, one netCDF per year, on the CCI cells touching the domain."""
    import netCDF4

    g, tw = sim["grids"], cfg.twin
    k = round(g.cci.res / RES)
    rs_, cs_ = g.cci_in_sim
    truth = block_mean(sim["theta"][:, rs_, cs_], k)
    t_air = block_mean(sim["weather"]["t_air"][:, rs_, cs_], k)
    dates = sim["dates"]
    rng = _rng(cfg.run.seed, "cci")
    scale = rng.normal(1.0, tw.cci_scale_error, truth.shape[1:])
    early = np.asarray(dates < pd.Timestamp(CCI_EARLY_END))[:, None, None]
    noise = rng.normal(0, 1, truth.shape) * tw.cci_noise * np.where(early, 1.5, 1.0)
    gap = rng.random(truth.shape) < np.where(early, tw.cci_early_gap_fraction, tw.cci_gap_fraction)
    sm = np.clip(scale * truth + noise, 0.0, 0.6)
    sm = np.where(gap | (t_air < 273.15), CCI_FILL, sm).astype(np.float32)
    root = Path(cfg.data.esa_cci_dir)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for year in tqdm(sorted(set(dates.year)), desc="ESA-CCI netCDF", disable=not progress):
        sel = np.flatnonzero(dates.year == year)
        path = root / cci_filename(year)
        tmp = _partial(path)
        with netCDF4.Dataset(tmp, "w", format="NETCDF4_CLASSIC") as nc:
            nc.createDimension("time", None)
            nc.createDimension("lat", g.cci.nrows)
            nc.createDimension("lon", g.cci.ncols)
            v = nc.createVariable("time", "f8", ("time",))
            v.units, v.calendar, v.standard_name = "days since 1970-01-01 00:00:00 UTC", "standard", "time"
            v[:] = ((dates[sel] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).values
            for name, vals, std, units in (("lat", g.cci.lat, "latitude", "degrees_north"),
                                           ("lon", g.cci.lon, "longitude", "degrees_east")):
                v = nc.createVariable(name, "f4", (name,))
                v.standard_name, v.units = std, units
                v[:] = vals
            v = nc.createVariable("sm", "f4", ("time", "lat", "lon"), fill_value=np.float32(CCI_FILL),
                                  zlib=True, complevel=4, chunksizes=(1, g.cci.nrows, g.cci.ncols))
            v.long_name, v.units = "Volumetric Soil Moisture", "m3 m-3"
            v.standard_name = "volume_fraction_of_condensed_water_in_soil"
            v.valid_range = np.array([0.0, 1.0], np.float32)
            v.set_auto_mask(False)
            v[:] = sm[sel]
            nc.title = "ESA CCI Surface Soil Moisture Product (COMBINED), synthetic-twin imitation"
            nc.source = "glass-sm synthetic twin"
            nc.product_version = "08.1"
            nc.Conventions = "CF-1.8"
            nc.comment = ("One file per year (real CCI: one per day). Truth at 0.25 deg x per-cell scale "
                          "error + noise; sparser and noisier before 2007; frozen days masked.")
        paths.append(_commit(tmp, path))
    return paths


# ---- stations ---------------------------------------------------------------------------------------------
def _station_periods(rng, n: int, frac_pre: float, p0: pd.Timestamp, p1: pd.Timestamp) -> list[tuple]:
    """(kind, start, end) per station: 'before' (ends before 2000), 'across', 'after' (starts 2000 on)."""
    year = pd.Timedelta(days=365)
    if p1 < Y2K:
        kinds = ["before"] * n
    elif p0 >= Y2K:
        kinds = ["after"] * n
    else:
        n_pre = int(round(frac_pre * n))
        kinds = ["across"] * ((n_pre + 1) // 2) + ["before"] * (n_pre // 2) + ["after"] * (n - n_pre)

    def span(lo, hi, min_len):
        lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
        min_len = min(min_len, 0.5 * (hi - lo))
        start = lo + (hi - min_len - lo) * rng.random()
        length = min_len + (hi - start - min_len) * rng.random()
        return start.normalize(), min(start + length, hi).normalize()

    out = []
    for kind in kinds:
        if kind == "before":
            s, e = span(p0, min(p1, Y2K - pd.Timedelta(days=1)), 2 * year)
        elif kind == "after":
            s, e = span(max(p0, Y2K), p1, 3 * year)
        else:
            s = (p0 + (min(Y2K - pd.Timedelta(days=180), p1) - p0) * rng.random() * 0.5).normalize()
            e = (max(Y2K + year, s) + (p1 - max(Y2K + year, s)) * rng.random()).normalize()
            e = min(max(e, Y2K), p1)
        out.append((kind, s, e))
    return out


def write_stations(cfg, sim: dict, progress: bool = False) -> tuple[list[Path], pd.DataFrame]:
    """ISMN 'header+values' station files and static-variables CSVs; returns paths and a station table."""
    g, tw = sim["grids"], cfg.twin
    out = g.out
    rs_, cs_ = g.out_in_sim
    dates = sim["dates"]
    rng = _rng(cfg.run.seed, "stations")
    st = sim["static"]
    periods = _station_periods(rng, tw.n_stations, tw.station_pre2000_fraction, dates[0], dates[-1])
    root = Path(cfg.data.stations_dir) / STATION_NETWORK
    hours = np.arange(24)
    hour_str = np.array([f"{h:02d}:00" for h in hours])
    rows, paths = [], []
    for i, (kind, s, e) in enumerate(tqdm(periods, desc="ISMN stations", disable=not progress)):
        name = f"TW{i + 1:02d}"
        lat = out.south + out.nrows * RES * rng.uniform(0.02, 0.98)
        lon = out.west + out.ncols * RES * rng.uniform(0.02, 0.98)
        r, c = out.index_of(lat, lon)
        a, b = rng.normal(0.0, 0.03), float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3))
        sensor = STATION_SENSORS[i % len(STATION_SENSORS)]
        t0, t1 = dates.get_loc(s), dates.get_loc(e)
        n = t1 - t0 + 1
        pix = sim["theta"][t0:t1 + 1, rs_, cs_][:, r, c].astype(np.float64)
        tair = sim["weather"]["t_air"][t0:t1 + 1, rs_, cs_][:, r, c]
        sd = tw.station_noise
        e0 = rng.normal(0, sd)
        err = lfilter([1.0], [1.0, -STATION_RHO], rng.normal(0, sd * np.sqrt(1 - STATION_RHO**2), n),
                      zi=[STATION_RHO * e0])[0]
        daily = a + b * pix + err
        flag_drift = np.zeros(n, bool)
        if rng.random() < STATION_DRIFT_PROB and n > 120:
            L = int(rng.integers(60, min(240, n // 4) + 1))
            k0 = int(rng.integers(0, n - L))
            daily[k0:k0 + L] += np.linspace(0, rng.uniform(0.03, 0.08), L)
            flag_drift[k0:k0 + L] = True
        # hourly: daily values at 12:00, linear in between, + diurnal sensor cycle + noise
        th = np.arange(n * 24) / 24.0 - 0.5
        hourly = np.interp(th, np.arange(n), daily) + STATION_DIURNAL * np.sin(2 * np.pi * (np.tile(hours, n) - 9)
                                                                               / 24)
        hourly += rng.normal(0, 0.001, hourly.size)
        frozen = np.repeat(tair < FROZEN_T, 24)
        hourly = np.where(frozen, hourly * FROZEN_FACTOR, hourly)
        keep = rng.random(hourly.size) > 0.01
        for _ in range(rng.poisson(0.4 * n / 365.25)):
            L = int(rng.integers(3, 61)) * 24
            k0 = int(rng.integers(0, max(hourly.size - L, 1)))
            keep[k0:k0 + L] = False
        flags = np.full(hourly.size, "G", dtype=object)
        parts = [(frozen, "D03"), (np.repeat(flag_drift, 24), "D05"), (hourly < 0, "C01"), (hourly > 0.6, "C02")]
        for mask, code in parts:
            flags[mask] = np.where(flags[mask] == "G", code, flags[mask] + "," + code)
        day_str = np.repeat(dates[t0:t1 + 1].strftime("%Y/%m/%d").to_numpy(dtype=str), 24)
        hs = np.tile(hour_str, n)
        ki = np.flatnonzero(keep)
        elev = float(st["dem_fine"][(rs_.start + r) * int(st["fine_factor"]),
                                    (cs_.start + c) * int(st["fine_factor"])])
        header = (f"{STATION_NETWORK} {STATION_NETWORK} {name} {lat:.5f} {lon:.5f} {elev:.1f} "
                  f"0.0000 0.0500 '{sensor}'")
        lines = [header] + [f"{day_str[j]} {hs[j]} {hourly[j]:.4f} {flags[j]} M" for j in ki]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        fn = (f"{STATION_NETWORK}_{STATION_NETWORK}_{name}_sm_0.000000_0.050000_{sensor}_"
              f"{s:%Y%m%d}_{e:%Y%m%d}.stm")
        path = folder / fn
        tmp = _partial(path)
        tmp.write_text("\n".join(lines) + "\n")
        paths.append(_commit(tmp, path))
        paths.append(_write_static_csv(folder, name, st, rs_.start + r, cs_.start + c))
        rows.append({"station": name, "kind": kind, "start": s, "end": e, "lat": lat, "lon": lon, "row": r,
                     "col": c, "a": a, "b": b, "sensor": sensor})
    return paths, pd.DataFrame(rows)


def _write_static_csv(folder: Path, name: str, st: dict, r: int, c: int) -> Path:
    """ISMN ``<NET>_<NET>_<STATION>_static_variables.csv`` (semicolon separated, as ISMN ships it)."""
    cols = ("quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
            "quantity_source_description;quantity_source_provider;quantity_source_version;"
            "quantity_source_resolution;quantity_source_timerange;quantity_source_url;")
    src = "twin;glass-sm synthetic twin soil;glass-sm;1;0.05deg;;;"
    ai = float(st["aridity"][r, c])
    climate = ("BSk", "Arid - Steppe - Cold") if ai < 0.5 else ("Dfa", "Cold - Without dry season - Hot Summer")
    lines = [cols,
             f"saturation;m^3*m^-3;0.00;0.30;{st['theta_s'][r, c]:.2f};;{src}",
             f"clay fraction;% weight;0.00;0.30;{100 * st['clay'][r, c]:.2f};;{src}",
             f"organic carbon;% weight;0.00;0.30;{OM_PERCENT / 1.724:.2f};;{src}",
             f"sand fraction;% weight;0.00;0.30;{100 * st['sand'][r, c]:.2f};;{src}",
             f"silt fraction;% weight;0.00;0.30;{100 * st['silt'][r, c]:.2f};;{src}",
             "land cover classification;;;;130;Grassland;CCI_landcover_2010;ESA CCI Land Cover "
             "(synthetic value);ESA;2010-v1.6.1;300m;2008-2012;;",
             f"climate classification;;;;{climate[0]};{climate[1]};koeppen_geiger_2007;Koeppen-Geiger Climate "
             "Classification (synthetic value);;Peel2007;0.1deg;;;"]
    path = folder / f"{STATION_NETWORK}_{STATION_NETWORK}_{name}_static_variables.csv"
    tmp = _partial(path)
    tmp.write_text("\n".join(lines) + "\n")
    return _commit(tmp, path)


# ---- truth ---------------------------------------------------------------------------------------------
def write_truth(cfg, sim: dict, stations: pd.DataFrame, path: Path) -> Path:
    """``truth.nc``: the hidden true SM and the twin's soil, climate and station parameters (CF-1.8)."""
    import netCDF4

    g = sim["grids"]
    rs_, cs_ = g.out_in_sim
    out, dates = g.out, sim["dates"]
    st, w = sim["static"], sim["weather"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    chunks = (min(365, len(dates)), out.nrows, out.ncols)
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", len(dates))
        nc.createDimension("lat", out.nrows)
        nc.createDimension("lon", out.ncols)
        nc.createDimension("station", len(stations))
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.calendar, v.standard_name = f"days since {dates[0]:%Y-%m-%d}", "proleptic_gregorian", "time"
        v[:] = np.arange(len(dates))
        for name, vals, std, units, axis in (("lat", out.lat, "latitude", "degrees_north", "Y"),
                                             ("lon", out.lon, "longitude", "degrees_east", "X")):
            v = nc.createVariable(name, "f8", (name,))
            v.standard_name, v.long_name, v.units, v.axis = std, std, units, axis
            v[:] = vals

        def var3(name, data, units, long_name, std=None, digits=None):
            v = nc.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True, complevel=1, shuffle=True,
                                  chunksizes=chunks)
            v.units, v.long_name = units, long_name
            if std:
                v.standard_name = std
            d = data[:, rs_, cs_]
            v[:] = np.round(d, digits) if digits is not None else d

        var3("sm_true", sim["theta"], "m3 m-3", "true volumetric soil moisture, 0-5 cm",
             "volume_fraction_of_condensed_water_in_soil")
        var3("precipitation", w["precip"], "kg m-2", "daily precipitation", "precipitation_amount", 2)
        var3("t_air", w["t_air"], "K", "daily mean air temperature", "air_temperature", 2)
        var3("pet", w["pet"], "kg m-2", "daily potential evapotranspiration (Hargreaves)",
             "water_potential_evaporation_amount", 2)
        var3("f_veg", sim["f_veg"], "1", "fractional vegetation cover", "vegetation_area_fraction", 3)

        for name, data, units, long_name in (
            ("theta_r", st["theta_r"], "m3 m-3", "residual water content (Rawls & Brakensiek 1985)"),
            ("theta_wp", st["theta_wp"], "m3 m-3", "wilting point, -1500 kPa (Saxton & Rawls 2006)"),
            ("theta_fc", st["theta_fc"], "m3 m-3", "field capacity, -33 kPa (Saxton & Rawls 2006)"),
            ("theta_s", st["theta_s"], "m3 m-3", "saturation (Saxton & Rawls 2006)"),
            ("ksat", st["ksat"], "mm h-1", "saturated hydraulic conductivity (Saxton & Rawls 2006)"),
            ("elevation", st["elevation"], "m", "mean elevation of the cell"),
            ("sand", st["sand"], "1", "sand mass fraction"),
            ("clay", st["clay"], "1", "clay mass fraction"),
            ("silt", st["silt"], "1", "silt mass fraction"),
            ("aridity_index", st["aridity"], "1", "design aridity index P/PET"),
            ("precip_mean", w["precip_clim_mean"], "kg m-2 d-1", "climatological mean precipitation"),
            ("pet_mean", w["pet_clim_mean"], "kg m-2 d-1", "climatological mean potential evapotranspiration"),
            ("era5_wet_shift", sim["era5_shift"], "m3 m-3", "wet shift of the ERA5-like soil limits"),
        ):
            v = nc.createVariable(name, "f4", ("lat", "lon"))
            v.units, v.long_name = units, long_name
            v[:] = np.asarray(data)[rs_, cs_]
        v = nc.createVariable("station_name", str, ("station",))
        v.long_name = "ISMN station name (network TWIN)"
        for i, s in enumerate(stations.get("station", [])):
            v[i] = s
        for name, units, long_name in (("lat", "degrees_north", "station latitude"),
                                       ("lon", "degrees_east", "station longitude"),
                                       ("a", "m3 m-3", "station offset a in a + b * theta_pixel"),
                                       ("b", "1", "station gain b in a + b * theta_pixel")):
            v = nc.createVariable(f"station_{name}", "f8", ("station",))
            v.units, v.long_name = units, long_name
            if len(stations):
                v[:] = stations[name].to_numpy(float)
        nc.title = "glass-sm synthetic twin: hidden truth"
        nc.source = "glass-sm synthetic twin"
        nc.Conventions = "CF-1.8"
        nc.history = f"glass_sm.twin (twin version {TWIN_VERSION}), seed {cfg.run.seed}"
        nc.references = "Zhang et al. (2025), ESSD 17, 5181-5207; see glass_sm.twin for the physics"
    return _commit(tmp, path)


# =========================================================================================================
# Top level
# =========================================================================================================
def _manifest_path(cfg) -> Path:
    return Path(cfg.data.truth_path).parent / "twin_manifest.json"


def twin_hash(cfg) -> str:
    """SHA-256 of everything that decides the twin's bytes: twin, domain, period, seed, data paths, version."""
    from glass_sm.config import to_dict

    d = to_dict(cfg)
    base = _manifest_path(cfg).parent
    data = {k: (os.path.relpath(v, base) if isinstance(v, Path) else v) for k, v in vars(cfg.data).items()}
    key = {"version": TWIN_VERSION, "seed": cfg.run.seed, "twin": d["twin"], "domain": d["domain"],
           "period": d["period"], "data": data}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def generate_twin(cfg, progress: bool = True) -> dict:
    """Simulate the twin and write every input file in the real products' formats (book/design.md).

    Skips the work when ``twin_manifest.json`` (next to ``data.truth_path``) matches :func:`twin_hash` and
    every file it lists exists. Files are written under temporary names and renamed, and the manifest is
    written last, so an interrupted run is never taken for a finished one.

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``domain``, ``period``, ``twin`` and the ``data.*`` paths.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    dict
        ``albedo``, ``lst``, ``era5land``, ``glass_modis``, ``static``, ``esa_cci``, ``stations``: lists of
        paths; ``truth`` and ``manifest``: paths; ``regenerated``: bool.
    """
    if not cfg.is_twin:
        raise ValueError("data.source is 'real': refusing to write the synthetic twin over real-data folders")
    if cfg.data.truth_path is None:
        raise ValueError("data.truth_path must be set to generate the twin")
    mpath = _manifest_path(cfg)
    h = twin_hash(cfg)
    old = None
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            old = None
    if old and old.get("hash") == h:
        files = {k: [mpath.parent / p for p in v] for k, v in old["files"].items()}
        if all(p.exists() for v in files.values() for p in v):
            return _result(files, mpath, regenerated=False)
    if mpath.exists():
        mpath.unlink()          # from here on the tree is "unfinished" until the new manifest lands

    sim = simulate_truth(cfg, progress=progress)
    avhrr = simulate_avhrr(cfg, sim)
    files: dict[str, list[Path]] = {}
    files.update(write_avhrr(cfg, avhrr, sim["dates"], sim["grids"].out, progress))
    del avhrr
    files["glass_modis"] = write_glass_modis(cfg, sim, progress)
    files["era5land"] = write_era5(cfg, sim, progress)
    files["esa_cci"] = write_cci(cfg, sim, progress)
    files["static"] = write_static(cfg, sim)
    files["stations"], stations = write_stations(cfg, sim, progress)
    files["truth"] = [write_truth(cfg, sim, stations, Path(cfg.data.truth_path))]

    if old and "files" in old:          # remove files of an older twin that this one did not rewrite
        new = {p.resolve() for v in files.values() for p in v}
        for v in old["files"].values():
            for p in v:
                q = (mpath.parent / p).resolve()
                if q not in new and q.exists():
                    q.unlink()
    rel = {k: [os.path.relpath(p, mpath.parent) for p in v] for k, v in files.items()}
    doc = {"hash": h, "version": TWIN_VERSION, "seed": cfg.run.seed,
           "counts": {k: len(v) for k, v in files.items()}, "files": rel}
    tmp = _partial(mpath)
    tmp.write_text(json.dumps(doc, indent=1))
    _commit(tmp, mpath)
    return _result(files, mpath, regenerated=True)


def _result(files: dict, mpath: Path, regenerated: bool) -> dict:
    res = {k: v for k, v in files.items() if k != "truth"}
    res["truth"] = files["truth"][0]
    res["manifest"] = mpath
    res["regenerated"] = regenerated
    return res
