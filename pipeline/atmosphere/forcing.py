"""Forcing of the core: seasonal and diurnal equilibria, a land mask, and deterministic stirring.

All functions are pure: time ``t`` is seconds since ``EPOCH`` (float), latitude φ and longitude
λ are in degrees, grid fields are ``[nlat, nlon]``.

Sun (a 365.25-day year, so the seasonal phase keeps step with the calendar over the years)
    declination   δ☉(t) = 23.44° sin(2π (t - t_equinox) / year),     t_equinox = 20 March
    hour angle    h = 2π (t mod 1 day) / 1 day + λ - π                   (local solar time)
    cos Z = sin φ sin δ☉ + cos φ cos δ☉ cos h,   insolation I = max(cos Z, 0)

Thermal equator (lags the sun by ``SEASONAL_LAG_DAYS``, as surface temperatures do)
    φ_s(t) = 23.44° sin(2π (t - t_equinox - lag) / year)

Equilibria the core relaxes towards (see ``core.py`` for the rates)
    Φ_eq  = -ΔΦ_jet sin²(φ - φ_s) - ΔΦ_land L(φ, λ) S(t) sin φ + ΔΦ_day I         [m² s⁻²]
    θ1_eq = ΔT1 (cos²(φ - φ_s) - 2/3) + ΔT_land L S(t) sin φ
            + ΔT_day (0.3 + 0.7 L) (I - 1/π)                                       [K]
    θ2_eq = ΔT2 (cos²(φ - φ_s / 2) - 2/3) - ΔT_wave sin²φ cos(λ - 160°)          [K]
    θ3_eq = ΔT3 sin φ S(t) - ΔT3 (sin²φ - 1/3) / 2
            + ΔT3_wave sin²φ cos(2λ - 60°)                                          [K]
    s_eq  = ln RH_eq,  RH_eq = min(0.95, 0.2 + 0.6 exp(-((φ - φ_s)/12°)²)
                                       + 0.35 exp(-((|φ| - 55°)/15°)²) + 0.1 (1 - L))
with S(t) = sin(2π (t - t_equinox - lag) / year) (+1 in northern summer). Only anomalies matter:
the l = 0 part of Φ_eq is never used (mass is conserved).

Stirring: a vorticity source made of ``n`` spherical harmonics (l in 8..14) with seeded
amplitudes, frequencies (periods 3–15 days) and phases:
    F_ζ,lm(t) = A_k cos(2π t / P_k + α_k) e^{iβ_k}                               [s⁻², spectral]
"""

from __future__ import annotations

import numpy as np

DAY = 86400.0
YEAR = 365.25 * DAY
EQUINOX = 78.0 * DAY + 12 * 3600.0  # 20 March 12 UTC, seconds after 1 January 00 UTC
OBLIQUITY = 23.44  # degrees
SEASONAL_LAG_DAYS = 30.0

# "Continents": (latitude, longitude, angular radius) in degrees; super-Gaussian blobs.
CONTINENTS = (
    (50.0, 90.0, 38.0),  # Eurasia
    (32.0, 40.0, 20.0),
    (48.0, 260.0, 28.0),  # North America
    (5.0, 20.0, 25.0),  # Africa
    (-15.0, 300.0, 20.0),  # South America
    (-25.0, 135.0, 15.0),  # Australia
    (-85.0, 0.0, 18.0),  # Antarctica
)


def declination(t) -> np.ndarray:
    """δ☉(t) in degrees for t [T] (or scalar) in seconds since EPOCH (a 1 January 00 UTC)."""
    return OBLIQUITY * np.sin(2.0 * np.pi * (np.asarray(t, float) - EQUINOX) / YEAR)


def season(t) -> np.ndarray:
    """S(t) = sin(2π (t - t_equinox - lag)/year): +1 in late July (northern summer), -1 January."""
    return np.sin(2.0 * np.pi * (np.asarray(t, float) - EQUINOX - SEASONAL_LAG_DAYS * DAY) / YEAR)


def insolation(t: float, lat, lon) -> np.ndarray:
    """I = max(cos Z, 0), [nlat, nlon], for lat [nlat], lon [nlon] in degrees."""
    phi = np.deg2rad(np.asarray(lat, float))[:, None]
    lam = np.deg2rad(np.asarray(lon, float))[None, :]
    dec = np.deg2rad(declination(t))
    hour_angle = 2.0 * np.pi * (t % DAY) / DAY + lam - np.pi
    cos_zenith = np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(hour_angle)
    return np.maximum(cos_zenith, 0.0)


def land_fraction(lat, lon) -> np.ndarray:
    """L ∈ [0, 1], [nlat, nlon]: 1 - Π_k (1 - exp(-(d_k / r_k)⁴)), d_k the angular distance."""
    phi = np.deg2rad(np.asarray(lat, float))[:, None]
    lam = np.deg2rad(np.asarray(lon, float))[None, :]
    sea = np.ones(np.broadcast_shapes(phi.shape, lam.shape))
    for clat, clon, radius in CONTINENTS:
        p0, l0 = np.deg2rad(clat), np.deg2rad(clon)
        cos_d = np.sin(phi) * np.sin(p0) + np.cos(phi) * np.cos(p0) * np.cos(lam - l0)
        d = np.arccos(np.clip(cos_d, -1.0, 1.0)) / np.deg2rad(radius)
        sea *= 1.0 - np.exp(-(d**4))
    return 1.0 - sea


def thermal_equator(t: float) -> float:
    """φ_s(t) in degrees."""
    return float(OBLIQUITY * season(t))


def height_equilibrium(t, lat, lon, land, *, jet, land_amplitude, diurnal) -> np.ndarray:
    """Φ_eq [nlat, nlon] in m² s⁻² (only its l > 0 part is used)."""
    phi = np.asarray(lat, float)[:, None]
    phis = thermal_equator(t)
    out = -jet * np.sin(np.deg2rad(phi - phis)) ** 2
    out = out - land_amplitude * land * float(season(t)) * np.sin(np.deg2rad(phi))
    return out + diurnal * insolation(t, lat, lon)


def lower_temperature_equilibrium(t, lat, lon, land, *, contrast, land_amplitude,
                                  diurnal) -> np.ndarray:
    """θ1_eq [nlat, nlon] in K: lower-tropospheric temperature anomaly."""
    phi = np.asarray(lat, float)[:, None]
    phis = thermal_equator(t)
    out = contrast * (np.cos(np.deg2rad(phi - phis)) ** 2 - 2.0 / 3.0)
    out = out + land_amplitude * land * float(season(t)) * np.sin(np.deg2rad(phi))
    return out + diurnal * (0.3 + 0.7 * land) * (insolation(t, lat, lon) - 1.0 / np.pi)


def upper_temperature_equilibrium(t, lat, lon, *, contrast, wave) -> np.ndarray:
    """θ2_eq [nlat, nlon] in K: upper-tropospheric temperature anomaly (stationary wave 1)."""
    phi = np.deg2rad(np.asarray(lat, float))[:, None]
    lam = np.deg2rad(np.asarray(lon, float))[None, :]
    phis = np.deg2rad(thermal_equator(t))
    out = contrast * (np.cos(phi - 0.5 * phis) ** 2 - 2.0 / 3.0)
    return out - wave * np.sin(phi) ** 2 * np.cos(lam - np.deg2rad(160.0))


def stratosphere_temperature_equilibrium(t, lat, lon, *, contrast, wave) -> np.ndarray:
    """θ3_eq [nlat, nlon] in K: warm summer pole, cold winter pole, a stationary wave 2."""
    phi = np.deg2rad(np.asarray(lat, float))[:, None]
    lam = np.deg2rad(np.asarray(lon, float))[None, :]
    out = contrast * (np.sin(phi) * float(season(t)) - 0.5 * (np.sin(phi) ** 2 - 1.0 / 3.0))
    return out + wave * np.sin(phi) ** 2 * np.cos(2.0 * lam - np.deg2rad(60.0))


def humidity_equilibrium(t, lat, lon, land) -> np.ndarray:
    """s_eq = ln RH_eq [nlat, nlon]: moist thermal equator and storm tracks, dry subtropics."""
    phi = np.asarray(lat, float)[:, None]
    phis = thermal_equator(t)
    rh = (0.2 + 0.6 * np.exp(-(((phi - phis) / 12.0) ** 2))
          + 0.35 * np.exp(-(((np.abs(phi) - 55.0) / 15.0) ** 2)) + 0.1 * (1.0 - land))
    return np.log(np.minimum(rh, 0.95))


def stirring_modes(seed: int, n: int, lmax: int):
    """Seeded stirring: (l [n], m [n], amplitude factor [n], period s [n], α [n], β [n])."""
    rng = np.random.default_rng([seed, 7])
    ls = rng.integers(8, min(14, lmax) + 1, size=n)
    ms = np.array([rng.integers(1, l + 1) for l in ls])  # noqa: E741
    amp = rng.uniform(0.5, 1.0, size=n)
    period = rng.uniform(3.0, 15.0, size=n) * DAY
    alpha = rng.uniform(0.0, 2 * np.pi, size=n)
    beta = rng.uniform(0.0, 2 * np.pi, size=n)
    return ls, ms, amp, period, alpha, beta
