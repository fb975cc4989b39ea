r"""The synthetic twin: a small world with known soil moisture, written in the real products' file formats.

The twin lets every stage of the paper run offline and be scored against a truth that the real world never
gives. Soil moisture (SM) is a *state with memory* driven by weather and soil; the satellite-like inputs only
see it indirectly (wet soil is darker and cooler), as in nature. Nothing here is tuned to favour a model.

**One continuous world.** The world (terrain, texture, climate layout, daily weather) is defined at every
position on the sphere by the seed: every random field is a function of ``(run.seed, component, position, day)``
(:func:`glass_sm.twin.climate.sphere_fields`), never of the run's domain. A run samples it on a *simulation grid*
at its resolution r (``domain.resolution``) slightly larger than its domain (so that the ERA5-Land-like points at
2r and the CCI-like cells that touch the domain are whole) and writes the domain. A sub-domain, another resolution
or a sub-period (after the standard year of spin-up) of the same seed sees the same world; this is what makes a
0.05 deg regional zoom consistent with a coarse global run. Sensors (noise, gaps, per-cell errors) may depend on the
grid. Every other random component has its own generator seeded by ``(run.seed, component name)``: changing the
number of stations does not change the weather.

Modules
-------
====================================  ===========================================================================
:mod:`glass_sm.twin.grids`            the grids (simulation, domain, ERA5 points, CCI cells), seeded random
                                      streams, :data:`TWIN_VERSION`
:mod:`glass_sm.twin.climate`          random fields on the sphere, terrain and texture, weather generator,
                                      vegetation
:mod:`glass_sm.twin.geography`        Natural Earth land, permanent ice, countries and coasts (offline)
:mod:`glass_sm.twin.earth`            Earth's layout (``twin.climate: earth``): large-scale elevation, climate
                                      layout, Koppen zones, continents (land, ice, coasts re-exported)
:mod:`glass_sm.twin.stations`         ISMN-like networks and where their stations stand (``earth``)
:mod:`glass_sm.twin.soil`             Saxton & Rawls pedotransfer, the daily bucket
:mod:`glass_sm.twin.truth`            :func:`simulate_truth`: the hidden world over the period
:mod:`glass_sm.twin.sensors`          AVHRR-, ERA5-Land-, GLASS-MODIS-, ESA-CCI- and ISMN-like observations;
                                      the albedo's 8-day composites
:mod:`glass_sm.twin.labels`           the GLASS-MODIS-like labels as the real ones are made: MODIS-like inputs,
                                      an XGBoost retrieval trained on the stations, ``label_retrieval.json``
:mod:`glass_sm.twin.writers`          the real products' file formats (HDF-EOS2/HDF4, GeoTIFF, netCDF, ISMN
                                      ``.stm``)
:mod:`glass_sm.twin.netcdf`           the netCDF files: ERA5-Land-like, ESA-CCI-like, ``truth.nc`` (re-exported by
                                      :mod:`~glass_sm.twin.writers`)
:mod:`glass_sm.twin.geotiff`          a fast GeoTIFF encoder for the many daily GLASS-MODIS-like files
:mod:`glass_sm.twin.jobs`             the writers' worker processes (ordered jobs; the bytes of one process)
this module                           :func:`generate_twin` (simulate, write, manifest), :func:`twin_hash`
====================================  ===========================================================================

Equations
---------
**Random fields on the sphere** (:func:`~glass_sm.twin.climate.sphere_fields`; random Fourier features, Rahimi &
Recht 2007): with :math:`\mathbf{x}` the Earth-centred Cartesian position (km, radius 6371 km, longitude wrapped so
that 180 = -180),

.. math::

    g_i(\mathbf{x}) = K^{-1/2}\sum_{k=1}^{K} a_{ik}\cos(\mathbf{w}_k\cdot\mathbf{x})
        + b_{ik}\sin(\mathbf{w}_k\cdot\mathbf{x}),\qquad
    \mathbf{w}_k \sim N(0, I_3/L^2),\quad a_{ik}, b_{ik} \sim N(0, 1),\quad K = 64

so that :math:`\mathrm{var}\,g = 1` and :math:`\mathrm{cov}(g(\mathbf{x}), g(\mathbf{x}')) =
e^{-d^2/2L^2}` (*d* the chord distance). The wave vectors come from ``(seed, name)``, the coefficients of field *i*
from ``(seed, name#index_i)``; the index is 0..k-1 for static fields and the day since 1970-01-01 for daily ones.
Components (L): ``static.terrain`` (40 km), ``static.ridges`` (25 km), ``static.texture`` (2 fields, 20 km),
``static.aridity`` (50 km), ``weather.t_anomaly`` (500 km), ``weather.occurrence`` (``storm_length_km``),
``weather.amount`` (30 km), ``weather.cloud`` (40 km). The climatology depends on the day of year only, and the
mean precipitation uses the mean PET of the climatological year (days 1-365), so that it does not depend on the
period simulated.

**Climate layout** (``twin.climate``). ``gradient`` (a regional tile; :math:`\lambda` longitude,
:math:`\lambda_{W,E}` the domain's edges):

.. math::

    AI = \big(AI_W + (AI_E - AI_W)\,\tfrac{\lambda - \lambda_W}{\lambda_E - \lambda_W}\big)\,e^{0.1 g_{AI}},\quad
    T_{sl} = 303 - 0.35|\phi|\ \mathrm{K},\quad A_T = 2 + 0.28|\phi|\ \mathrm{K},\quad d_T = 200,\quad
    d_P = 170,\quad a_P = 0.6

(aridity index P/PET from ``twin.aridity_west_east``; a continental mid-latitude interior: 289 K and 13 K at 40 N,
warmest in mid-July ~30 d after the solstice, rain peaking in June as on the US Great Plains). ``earth``: the
layout of :mod:`glass_sm.twin.earth` at each position (no random numbers; its constants and sources are documented
there): :math:`AI = AI_{layout}\,e^{0.1 g_{AI}}`, and per cell :math:`T_{sl}` (sea-level annual mean), :math:`A_T`,
the warmest day :math:`d_T` (~200 in the north, ~17 in the south: the seasons in phase opposition), the
precipitation peak :math:`d_P` and its relative amplitude :math:`a_P`. Cells off Natural Earth land or on
permanent ice (``static['land'] & ~static['ice']`` false) are simulated like land, cheaply at coarse r, and masked
by the writers: surface SM is undefined there. The aridity has a floor of 0.05.

**Climate** (per cell; :math:`\phi` latitude, :math:`z` the cell's mean elevation in m, *d* day of year):

.. math::

    \bar T &= T_{sl} - \Gamma z, \qquad \Gamma = 6.5\ \mathrm{K\,km^{-1}}\ \text{(ICAO standard atmosphere)}\\
    T_{air}(t) &= \bar T + A_T\cos\!\big(2\pi (d - d_T)/365.25\big) + T'(t),\qquad
        T'(t) = \rho_T T'(t-1) + \sigma_T\sqrt{1-\rho_T^2}\,\varepsilon_t\\
    R_a &= \text{FAO-56 extraterrestrial radiation (Allen et al. 1998, eq. 21)},\quad
        R_{s,clear} = (0.75 + 2\cdot10^{-5} z) R_a\\
    R_s &= R_{s,clear}\,(1 - 0.75\,c^{3.4})\quad\text{(Kasten \& Czeplak 1980; cloud fraction } c)\\
    DTR &= DTR_{clear}(AI)\,(1 - 0.6\,c)\\
    PET &= 0.0023 \cdot 0.408\,R_a\,(T_{air} - 273.15 + 17.8)\sqrt{DTR}\quad\text{(Hargreaves \& Samani 1985)}

(:math:`\rho_T = 0.7`, :math:`\sigma_T = 3` K: synoptic anomalies of a few days, 500 km). **Frozen**: truth's
``frozen`` flag is :math:`T_{air} < 273.15` K (daily mean): the surface's liquid SM is undefined, as the real
products flag frozen soil.

**Weather generator** (Richardson 1981; Wilks 1999): mean annual precipitation
:math:`\bar P = AI\cdot\overline{PET}` with the seasonal cycle :math:`\bar P(d) = \bar P\,(1 + a_P
\cos(2\pi(d - d_P)/365.25))` and the wet-day frequency :math:`f(d) = (0.12 + 0.12\min(AI, 2))(1 + 0.5 a_P
\cos(\ldots))` (Richardson & Wright 1984), clipped to 0.02-0.8; occurrence is a first-order Markov chain

.. math::

    p_{01} = f(1-r),\quad p_{11} = p_{01} + r,\qquad
    \text{wet}_t = \big[\Phi(g^{occ}_t) < (p_{11}\ \text{if wet}_{t-1}\ \text{else}\ p_{01})\big]

and amounts are gamma distributed, :math:`P_t = F^{-1}_{\Gamma(k,\,\mu/k)}\big(\Phi(g^{amt}_t)\big)`,
where :math:`g_t` are smooth unit-variance Gaussian random fields drawn anew each day (random Fourier
features with a Gaussian covariance of length ``storm_length_km``), so that neighbouring cells share storms.
Clouds: :math:`\text{cloudy}_t = [\Phi(g^{cld}_t) < p_c]`, :math:`p_c` = ``cloud_wet`` on wet days, else
``cloud_base``; :math:`c = 0.8` when cloudy, 0.2 otherwise.

**Terrain and soil** (on the fine static grid, ``twin.static_resolution``; cell values, the aridity included, are
block means of the fine grid's; ``gradient`` terrain below):

.. math::

    h &= 0.6\,g_1 + 0.8\,\frac{e^{-2 g_2^2} - 5^{-1/2}}{(1/3 - 1/5)^{1/2}}
        \quad\text{(unit variance; ridges along the zero lines of } g_2)\\
    z &= \bar z\,e^{s h - s^2/2},\quad s^2 = \ln\big(1 + (\sigma_z/\bar z)^2\big)
        \quad\text{(mean = mean\_elevation, sd = relief, always positive)}\\
    (sand, clay, silt) &= \mathrm{softmax}\big(0.35h + 0.5g_s + c_w w,\ \ln 0.5 - 0.3h + 0.5g_c,\ 0\big)

(:math:`g_1, g_2` smooth fields of 40 and 25 km, :math:`g_s, g_c` of 20 km; sandier uplands and dry climates,
clayey lowlands). ``gradient``: :math:`w` = 1 at the western (dry) edge, 0 at the eastern, with the weight
:math:`c_w = 0.6`. ``earth``: the dryness :math:`w = \mathrm{clip}\big(\ln(0.65/AI)/\ln(0.65/0.2), 0, 1\big)`
(1 in the UNEP arid and hyper-arid classes, AI < 0.2; 0 in the humid class, AI > 0.65; Middleton & Thomas 1997)
with :math:`c_w = 1.25`: the median arid texture is then 70 % sand, 10 % clay, the sandy loam to loamy sand of the
Sahara, Arabian and Australian deserts in SoilGrids (Hengl et al. 2017), loam (40/20/40 %) in humid climates.
``earth`` terrain: :math:`z = z_{ls}\,e^{s h - s^2/2}`, :math:`s^2 = \ln(1 + cv^2)`, lognormal around the
large-scale height :math:`z_{ls}` of :func:`glass_sm.twin.earth.elevation_m` (its continental base included; 0 at
sea) with :math:`cv = 0.25`: the local relief grows with the height (~12 m sd on a 50 m coastal plain, ~1 km in the
highest ranges and plateaus: local relief of 1-2 km within 10 km in active ranges, Montgomery & Brandon 2002).
The texture (``(sand, clay, silt)`` above) is then stored in g/kg as SoilGrids does
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
overpass (later overpass: lower sun), retrievals with :math:`\mu_0 < 0.17` (SZA > 80 deg) missing; the
visible albedo from a soil VIS/SW ratio of 0.7 and a canopy VIS albedo of 0.05, the near infrared from
:math:`\alpha_{SW} = 0.5\,\alpha_{VIS} + 0.5\,\alpha_{NIR}`. Like GLASS02B05 the files hold **8-day
composites** (day of year 1, 9, ..., 361, ``data.albedo_cadence_days``): the composite dated *d* is the mean of
the clear-sky daily values of the 8 days whose middle is nearest the time the reader assigns to it (*d* +
``data.albedo_sample_offset_days``: days *d*-3..*d*+4 by default), and its QC level (bits 0-1) counts the clear
days *n* and the good-quality ones *g*: 0 if :math:`g \ge 2`, 1 if :math:`g = 1` or :math:`n \ge 2`, 2 for
a single low-quality day, 3 (value -1, invalid) for none (:func:`glass_sm.twin.sensors.albedo_composites`). The
real product is gap-free by temporal filtering; the twin's level-3 composites (high-latitude winters with a
drifted afternoon orbit) exercise the readers' gap handling.

**AVHRR-like LST** at the overpass local solar time *h* (evaporative fraction
:math:`EF = (1-f_{veg})\beta(\theta) + 0.7 f_{veg}`, :math:`\beta` the bucket's ET factor):

.. math::

    \Delta T &= \frac{R_s}{30\ \mathrm{MJ\,m^{-2}d^{-1}}}\big(2 + 16(1 - EF)\big)\ \mathrm{K}
        \quad\text{(wet is cooler; cf. the Ts-Ta trapezoid of Moran et al. 1994)}\\
    LST_{peak} &= T_{air} + DTR/2 + \Delta T,\quad A = LST_{peak} - (T_{air} - DTR/2)\\
    C(h) &= A\big(1 - \cos(\pi\max(h - 13, 0)/12)\big)\quad\text{(daytime cosine, Goettsche \& Olesen 2001)}\\
    LST &= LST_{peak} - C(13.5) - \rho_{drift}\big(C(h) - C(13.5)\big) + s_p + \epsilon_T

with :math:`h` the platform's drifting equator-crossing time (:mod:`glass_sm.platforms`), :math:`\rho_{drift}`
= ``drift_residual``, :math:`s_p` the platform's LST step. Cloudy pixel-days are missing (LST QC bit 0, fill);
5 % of clear retrievals, all albedo retrievals with SZA > 70 deg and the late-1994 NOAA-11 extension are
low quality (LST QC bit 1; noise x3; a low-quality day does not count as good in an albedo composite's level).
The AVHRR files are HDF-EOS2 grids (``StructMetadata.0``, grid named after the short name) without a
``Satellite`` attribute, as the real ones (``twin.avhrr_satellite_attribute`` adds it).

**ERA5-Land-like SM**: the same bucket with :math:`P_{E} = P\,e^{\sigma\varepsilon - \sigma^2/2}`,
:math:`\sigma^2 = \ln(1 + cv^2)` (cv = ``era5_precip_error``, :math:`\varepsilon` a smooth field), a deeper
layer :math:`Z_E = 70` mm (ERA5-Land layer 1 is 0-7 cm) and wetter soil limits
:math:`\theta_{wp,fc} + \delta`, :math:`\theta_s + \delta/2`,
:math:`\delta = b\,\min\big(1, (0.25/AI)^{0.7}\big)` (b = ``era5_wet_bias``: largest in dry climates), averaged
to 0.1 deg grid points, written 6-hourly by linear interpolation between daily values placed at 12 UTC.

**Labels** (``twin.labels``; :mod:`glass_sm.twin.labels`). The real GLASS-MODIS SM (Zhang et al. 2023) is
itself a retrieval, so the default ``retrieval`` makes the twin's labels the same way, from ``period.label_start``
(MODIS Terra, 2000-02-24) on:

.. math::

    \alpha_M &= \alpha_{WSA}(\theta, f_{veg}) + \epsilon,\ \epsilon \sim N(0, \sigma_{\alpha,M})
        \quad\text{(no platform step, no drift)}\\
    LST_M &= LST_{peak} - C(15.5) + \epsilon_T
        \quad\text{(10:30 Terra overpass: the daytime cosine is symmetric about 13:00)}\\
    NDVI &= NDVI_s + (NDVI_v - NDVI_s)\,f_{veg} + \epsilon_N,\quad NDVI_s = 0.04,\ NDVI_v = 0.52
        \quad\text{(Gutman \& Ignatov 1998)}\\
    \hat\theta &= \mathrm{clip}\big(F(\alpha_M, LST_M, NDVI, \theta_{ERA5}, z, sand, clay, \sin, \cos(2\pi d/365.25)),
        \ 0,\ \theta_s\big)

with :math:`\sigma` = ``twin.modis_albedo_noise`` (0.005), ``modis_lst_noise`` (1 K), ``ndvi_noise`` (0.02);
cloudy days (as for AVHRR) filled by linear interpolation in time between clear days, as GLASS products are
gap-free by temporal filtering; :math:`\theta_{ERA5}` the 0.1 deg value the ERA5-Land files carry. :math:`F` is
XGBoost (``twin.retrieval_rounds`` = 300, depth ``twin.retrieval_max_depth`` = 6, learning rate 0.05, subsample
0.8, hist, one thread, seed from ``(run.seed, 'label_retrieval')``) fitted to the daily means of the stations'
good (``G``, kept) hours, days with at least 12 of them in ``period.label_start .. label_end``: the targets are
truth + representativeness error, never the truth. No white noise is added: the error is the input errors (a
rain under clouds is seen on the next clear day; the stations' offsets and gains; ERA5-Land's bias) propagated
through a model fitted to points, smooth in time and correlated with the inputs, as the real product's. Each
sinusoidal pixel takes its 0.05 deg cell's value; whole cell-days are missing with probability
``label_gap_fraction``. ``label_retrieval.json`` (next to the truth, in the manifest) records the stations,
station-days, features, hyper-parameters and the fit against the station values. The ablation
``truth_plus_noise``: the truth of the cell holding each pixel's centre + N(0, ``label_noise``) per pixel.

**Comparison products / stations**: ESA-CCI-like = :math:`s_c\,\bar\theta_{0.25} +
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
Gutman, G., Ignatov, A. (1998). The derivation of the green vegetation fraction from NOAA/AVHRR data for use in
numerical weather prediction models. Int. J. Remote Sens. 19(8), 1533-1543.
Hargreaves, G. H., Samani, Z. A. (1985). Reference crop evapotranspiration from temperature. Appl. Eng.
Agric. 1(2), 96-99.
Idso, S. B., Jackson, R. D., Reginato, R. J., Kimball, B. A., Nakayama, F. S. (1975). The dependence of bare
soil albedo on soil water content. J. Appl. Meteorol. 14, 109-113.
Hengl, T. et al. (2017). SoilGrids250m: global gridded soil information based on machine learning. PLoS ONE
12(2), e0169748.
Kasten, F., Czeplak, G. (1980). Solar and terrestrial radiation dependent on the amount and type of cloud.
Solar Energy 24, 177-189.
Middleton, N., Thomas, D. (eds.) (1997). World Atlas of Desertification, 2nd ed. UNEP / Arnold, London.
Montgomery, D. R., Brandon, M. T. (2002). Topographic controls on erosion rates in tectonically active mountain
ranges. Earth Planet. Sci. Lett. 201, 481-489.
Moran, M. S., Clarke, T. R., Inoue, Y., Vidal, A. (1994). Estimating crop water deficit using the relation
between surface-air temperature and spectral vegetation index. Remote Sens. Environ. 49, 246-263.
Rahimi, A., Recht, B. (2007). Random features for large-scale kernel machines. Adv. Neural Inf. Process.
Syst. 20.
Rawls, W. J., Brakensiek, D. L. (1985). Prediction of soil water properties for hydrologic modeling. Proc.
Watershed Management in the Eighties, ASCE, 293-299.
Richardson, C. W. (1981). Stochastic simulation of daily precipitation, temperature, and solar radiation.
Water Resour. Res. 17(1), 182-190.
Richardson, C. W., Wright, D. A. (1984). WGEN: a model for generating daily weather variables. USDA ARS-8.
Saxton, K. E., Rawls, W. J. (2006). Soil water characteristic estimates by texture and organic matter for
hydrologic solutions. Soil Sci. Soc. Am. J. 70, 1569-1578.
Wan, Z. (2014). New refinements and validation of the collection-6 MODIS land-surface temperature/emissivity
product. Remote Sens. Environ. 140, 36-45.
Wilks, D. S. (1999). Interannual variability and extreme-value characteristics of several stochastic daily
precipitation models. Agric. For. Meteorol. 93, 153-169.
Zhang, Y., Liang, S., Ma, H., et al. (2023). Generation of global 1 km daily soil moisture product from 2000 to
2020 using ensemble learning trained with multiple in situ observations. Earth Syst. Sci. Data 15, 2055-2079.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from glass_sm.config import to_dict
from glass_sm.paths import atomic_write
from glass_sm.twin.climate import extraterrestrial_radiation, simulate_static, simulate_weather, sphere_fields
from glass_sm.twin.grids import TWIN_VERSION, TwinGrids, twin_grids
from glass_sm.twin.labels import RetrievalLabels, retrieval_info_path, retrieval_labels, write_retrieval_info
from glass_sm.twin.jobs import WRITE_PROCESSES, Jobs, resolve, write_processes
from glass_sm.twin.sensors import (ALBEDO_VEG_SW, albedo_model, first_label_day, lst_model, modis_grid,
                                   simulate_avhrr, simulate_era5, simulate_stations)
from glass_sm.twin.soil import bucket_step, hydraulic_limits, run_bucket
from glass_sm.twin.truth import simulate_truth
from glass_sm.twin.writers import (avhrr_filename, cci_filename, era5_filename, modis_filename, submit_avhrr,
                                   submit_cci, submit_era5, submit_glass_modis, submit_stations, submit_truth,
                                   write_avhrr, write_cci, write_era5, write_glass_modis, write_static,
                                   write_stations, write_truth)

__all__ = [
    "TWIN_VERSION",
    "TwinGrids",
    "twin_grids",
    "sphere_fields",
    "hydraulic_limits",
    "bucket_step",
    "run_bucket",
    "extraterrestrial_radiation",
    "simulate_static",
    "simulate_weather",
    "simulate_truth",
    "albedo_model",
    "lst_model",
    "ALBEDO_VEG_SW",
    "simulate_avhrr",
    "simulate_era5",
    "retrieval_labels",
    "RetrievalLabels",
    "write_retrieval_info",
    "retrieval_info_path",
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


def _manifest_path(cfg) -> Path:
    """``twin_manifest.json`` next to ``data.truth_path``: hash, version, seed and every file written."""
    return Path(cfg.data.truth_path).parent / "twin_manifest.json"


def twin_hash(cfg) -> str:
    """SHA-256 of everything that decides the twin's bytes: twin, domain, period, seed, data paths, version."""
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
    written last, so an interrupted run is never taken for a finished one. Order: :func:`simulate_truth`,
    :func:`simulate_avhrr` and :func:`write_avhrr`, then (``twin.labels: retrieval``) the stations (their own
    stream) and the label retrieval (:func:`retrieval_labels` and ``label_retrieval.json``), GLASS-MODIS,
    ERA5-Land, ESA CCI, static, stations (the same series) and ``truth.nc`` (each writer draws its own random
    stream, so the order does not change the bytes). The files are encoded by
    :data:`glass_sm.twin.jobs.WRITE_PROCESSES` worker processes while this process simulates (the ``submit_*``
    writers of :mod:`glass_sm.twin.writers`: every random draw stays here, so the bytes are those of one process).

    Parameters
    ----------
    cfg : glass_sm.config.Config
        Uses ``run.seed``, ``domain``, ``period``, ``twin`` and the ``data.*`` paths.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    dict
        ``albedo``, ``lst``, ``era5land``, ``glass_modis``, ``static``, ``esa_cci``, ``stations`` and, for
        ``twin.labels: retrieval``, ``label_retrieval`` (``label_retrieval.json``): lists of paths; ``truth``
        and ``manifest``: paths; ``regenerated``: bool.
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

    n_days = (cfg.period.end - cfg.period.start).days + 1
    with Jobs(write_processes(n_days)) as jobs:  # the workers start (imports) while the truth is simulated
        sim = simulate_truth(cfg, progress=progress)
        avhrr = simulate_avhrr(cfg, sim)
        pending = submit_avhrr(cfg, avhrr, sim["dates"], sim["grids"].out, jobs, progress)
        del avhrr                               # the jobs keep views of what they write, not the daily bands
        retrieval = stations = None
        info = []
        if cfg.twin.labels == "retrieval" and first_label_day(cfg, sim["dates"]) < len(sim["dates"]):
            stations = list(simulate_stations(cfg, sim))     # their own stream: the series the .stm files hold
            retrieval = retrieval_labels(cfg, sim, stations)
            info = [write_retrieval_info(cfg, retrieval)]
        pending["glass_modis"] = submit_glass_modis(cfg, sim, jobs, progress, retrieval)
        pending["era5land"] = submit_era5(cfg, sim, jobs, progress)
        pending["esa_cci"] = submit_cci(cfg, sim, jobs, progress)
        static = write_static(cfg, sim)
        pending["stations"], table = submit_stations(cfg, sim, jobs, progress, stations)
        del stations
        pending["truth"] = [submit_truth(cfg, sim, table, Path(cfg.data.truth_path), jobs)]
        done = resolve(pending)
    del retrieval
    files: dict[str, list[Path]] = {"albedo": done["albedo"], "lst": done["lst"]}   # the manifest's order
    if info:
        files["label_retrieval"] = info
    files.update(glass_modis=done["glass_modis"], era5land=done["era5land"], esa_cci=done["esa_cci"], static=static,
                 stations=done["stations"], truth=done["truth"])

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
    with atomic_write(mpath) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    return _result(files, mpath, regenerated=True)


def _result(files: dict, mpath: Path, regenerated: bool) -> dict:
    """:func:`generate_twin`'s return value from the files by kind."""
    res = {k: v for k, v in files.items() if k != "truth"}
    res["truth"] = files["truth"][0]
    res["manifest"] = mpath
    res["regenerated"] = regenerated
    return res
