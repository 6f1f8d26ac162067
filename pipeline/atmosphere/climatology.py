"""Level-dependent climatology added on top of the core's weather (``columns.py``).

The core carries one layer; without this module every variable has the same time-mean
north–south pattern at every level, and the 69 channels are nearly rank one. Real ERA5 has a
different time-mean (and seasonal) horizontal structure in each layer; this module supplies it.
φ latitude, φ_s(t) the thermal equator and S(t) the season (``forcing.py``, S = +1 in northern
summer), L the land fraction; ln-p profiles (p in hPa), each [L]:

    P_bl  = exp(-(ln(1000/p)/0.12)²)      boundary layer
    P_ut  = exp(-(ln(p/250)/0.35)²)       upper troposphere (jet level)
    P_tr  = exp(-(ln(p/850)/0.06)²)       trade-wind inversion
    P_st  = exp(-(ln(p/50)/0.45)²)        stratosphere

Temperature, [L, H, 1] zonal part T_z (carries a wind) plus [L, H, W] land part T_l (none), K:

    T_z = ΔT_ut P_ut W(φ) (J(φ - φ_s/3) - 1/2)                  subtropical plateau → jets at 30°
        + ΔT_st P_st sin φ S(t)                                  summer pole warm, winter cold
    J(x) = (1 - tanh((|x| - 28°)/8°))/2,   W(φ) = 1 - 0.3 S(t) tanh(φ/10°)  (winter jet stronger)
    T_l = ΔT_ls P_bl L (S(t) tanh(φ/15°) - 0.3)                  land–sea contrast (cold winter
                                                                  continents, cool land on average)
        + ΔT_tr P_tr (1 - L) exp(-((|φ - φ_s/2| - 20°)/8°)²)     trade-wind inversion over the
                                                                  subtropical oceans

Surface geopotential (sea-level pressure belts), [H, 1], m² s⁻²:

    Φ_s = -ΔΦ_s cos 6φ - ΔΦ_ant exp(-((φ + 62°)/10°)²)
          - ΔΦ_w exp(-((|φ| - 60°)/12°)²)(1 - S(t) tanh(φ/10°))/2
    (equatorial trough, subtropical highs at ±30°, subpolar lows at ±60° deeper in winter and
    around Antarctica, polar highs)

Geopotential: Φ_z,k = Φ_s + R_d Σ_j G_kj T_z,j (the hydrostatic thickness operator of
``columns.thickness_operator``), and its geostrophic wind, [L, H, 1]:

    u_z = -(1/f̃) (1/a) ∂Φ_z/∂φ        (∂/∂φ by a centred difference of the analytic φ-function)

which gives trade easterlies, mid-latitude westerlies and polar easterlies at the surface,
subtropical jets aloft, the polar-night jet and summer easterlies in the stratosphere.

Hadley/Ferrel meridional wind (ageostrophic), [L, H, 1], x = φ - φ_s (degrees):

    v_z = -V_lo Q_lo(p) sin(6x) (0.35 + 0.65 exp(-(x/28°)²))    inflow to the ITCZ at low levels
          + V_up Q_up(p) sin(6x) exp(-(x/22°)²)                  poleward outflow aloft
    Q_lo = exp(-(ln(1000/p)/0.25)²),  Q_up = exp(-(ln(p/200)/0.35)²)

Relative-humidity multiplier, [L, H, W] (multiplies r_k χ^{n_k} in ``columns.py``):

    M = B_lo(p) (1 - 0.25 L exp(-((|φ| - 25°)/10°)²))                moist ocean, dry deserts
      + B_mid(p) (0.55 + 0.9 exp(-((φ - 0.6 φ_s)/10°)²) + 0.35 exp(-((|φ| - 48°)/12°)²))
      + B_up(p) (0.35 + 1.6 exp(-((φ - 0.6 φ_s)/8°)²))               deep convection only
    with B_lo = exp(-(ln(1000/p)/0.2)²), B_up = exp(-(ln(p/250)/0.3)²), B_mid = 1 - B_lo - B_up
    clipped at 0.
"""

from __future__ import annotations

import numpy as np

from pipeline.atmosphere import forcing

DT_UPPER = 8.0  # ΔT_ut, K
DT_STRATOSPHERE = 12.0  # ΔT_st, K
DT_LAND_SEA = 3.0  # ΔT_ls, K
DT_TRADE = 4.0  # ΔT_tr, K
PHI_BELTS = 700.0  # ΔΦ_s, m² s⁻² (≈ 8.5 hPa)
PHI_ANTARCTIC = 500.0  # ΔΦ_ant
PHI_WINTER_LOW = 400.0  # ΔΦ_w
V_LOWER = 3.0  # V_lo, m s⁻¹
V_UPPER = 4.0  # V_up, m s⁻¹
_EPS = 1.0e-5  # rad, the centred difference for ∂/∂φ


def _bump(p, centre, width) -> np.ndarray:
    return np.exp(-((np.log(p / centre) / width) ** 2))


def layer_profiles(levels) -> dict[str, np.ndarray]:
    """The ln-p layer weights of the module docstring, each [L]."""
    p = np.asarray(levels, dtype=np.float64)
    lo, up = _bump(p, 1000.0, 0.2), _bump(p, 250.0, 0.3)
    return {
        "bl": _bump(p, 1000.0, 0.12), "ut": _bump(p, 250.0, 0.35),
        "st": _bump(p, 50.0, 0.45), "trade": _bump(p, 850.0, 0.06),
        "v_lo": _bump(p, 1000.0, 0.25), "v_up": _bump(p, 200.0, 0.35),
        "rh_lo": lo, "rh_up": up, "rh_mid": np.maximum(1.0 - lo - up, 0.0),
    }


def zonal_temperature(t: float, lat_rad, levels) -> np.ndarray:
    """T_z [L, n] in K at latitudes ``lat_rad`` [n] (radians)."""
    prof = layer_profiles(levels)
    s, phis = float(forcing.season(t)), np.deg2rad(forcing.thermal_equator(t))
    deg = np.rad2deg(lat_rad)
    x = np.abs(deg - np.rad2deg(phis) / 3.0)
    plateau = 0.5 * (1.0 - np.tanh((x - 28.0) / 8.0)) - 0.5
    winter = 1.0 - 0.3 * s * np.tanh(deg / 10.0)
    return (DT_UPPER * prof["ut"][:, None] * (winter * plateau)[None]
            + DT_STRATOSPHERE * prof["st"][:, None] * (np.sin(lat_rad) * s)[None])


def surface_geopotential(t: float, lat_rad) -> np.ndarray:
    """Φ_s [n] in m² s⁻²: the sea-level pressure belts."""
    s = float(forcing.season(t))
    deg = np.rad2deg(lat_rad)
    return (-PHI_BELTS * np.cos(6.0 * lat_rad)
            - PHI_ANTARCTIC * np.exp(-(((deg + 62.0) / 10.0) ** 2))
            - PHI_WINTER_LOW * np.exp(-(((np.abs(deg) - 60.0) / 12.0) ** 2))
            * 0.5 * (1.0 - s * np.tanh(deg / 10.0)))


def zonal_geopotential(t: float, lat_rad, levels, thickness) -> np.ndarray:
    """Φ_z [L, n]: Φ_s + G T_z with ``thickness`` G [L, L] (already times R_d)."""
    return surface_geopotential(t, lat_rad)[None] + thickness @ zonal_temperature(
        t, lat_rad, levels)


def zonal_fields(t: float, lat, levels, thickness) -> dict[str, np.ndarray]:
    """T_z, Φ_z, ∂Φ_z/∂φ and v_z, each [L, H, 1], at latitudes ``lat`` [H] (degrees)."""
    phi = np.deg2rad(np.asarray(lat, float))
    dphi = (zonal_geopotential(t, phi + _EPS, levels, thickness)
            - zonal_geopotential(t, phi - _EPS, levels, thickness)) / (2.0 * _EPS)
    prof = layer_profiles(levels)
    x = np.deg2rad(np.asarray(lat, float) - forcing.thermal_equator(t))
    xd = np.rad2deg(x)
    v = (-V_LOWER * prof["v_lo"][:, None] * (np.sin(6.0 * x) * (
        0.35 + 0.65 * np.exp(-((xd / 28.0) ** 2))))[None]
         + V_UPPER * prof["v_up"][:, None] * (np.sin(6.0 * x) * np.exp(-((xd / 22.0) ** 2)))[None])
    return {"temperature": zonal_temperature(t, phi, levels)[..., None],
            "geopotential": zonal_geopotential(t, phi, levels, thickness)[..., None],
            "dphi_dlat": dphi[..., None], "v": v[..., None]}


def land_temperature(t: float, lat, land, levels) -> np.ndarray:
    """T_l [L, H, W] in K: the boundary layer's land–sea contrast (carries no wind)."""
    s = float(forcing.season(t))
    deg = np.asarray(lat, float)[:, None]
    prof = layer_profiles(levels)
    return DT_LAND_SEA * prof["bl"][:, None, None] * (land * (s * np.tanh(deg / 15.0) - 0.3))[None]


def trade_inversion(t: float, lat, land, levels) -> np.ndarray:
    """T_tr [L, H, W] in K: the trade-wind inversion over the subtropical oceans (subsiding,
    warm air capping the marine boundary layer near 850 hPa; carries no wind)."""
    deg = np.asarray(lat, float)[:, None] - 0.5 * forcing.thermal_equator(t)
    pattern = (1.0 - land) * np.exp(-(((np.abs(deg) - 20.0) / 8.0) ** 2))
    return DT_TRADE * layer_profiles(levels)["trade"][:, None, None] * pattern[None]


def humidity_multiplier(t: float, lat, land, levels) -> np.ndarray:
    """M [L, H, W]: the level-dependent relative-humidity pattern."""
    prof = layer_profiles(levels)
    deg = np.asarray(lat, float)[:, None]
    itcz = 0.6 * forcing.thermal_equator(t)
    low = 1.0 - 0.25 * land * np.exp(-(((np.abs(deg) - 25.0) / 10.0) ** 2))
    mid = (0.55 + 0.9 * np.exp(-(((deg - itcz) / 10.0) ** 2))
           + 0.35 * np.exp(-(((np.abs(deg) - 48.0) / 12.0) ** 2))) + 0.0 * land
    up = (0.35 + 1.6 * np.exp(-(((deg - itcz) / 8.0) ** 2))) + 0.0 * land
    return (prof["rh_lo"][:, None, None] * low[None] + prof["rh_mid"][:, None, None] * mid[None]
            + prof["rh_up"][:, None, None] * up[None])
