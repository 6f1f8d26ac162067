"""A deterministic synthetic ERA5-style Zarr whose fields evolve by real barotropic dynamics.

The store follows WeatherBench2's names and layout, so every stage downstream (ingest, training,
evaluation) can run on a laptop with no download, on data whose evolution is learnable and known
exactly.

Grid and coordinates
--------------------
``time`` [T] (every ``freq_hours``), ``level`` [L] (hPa), ``latitude`` [H] = linspace(90, -90, H)
(descending, the ERA5/WB2 convention), ``longitude`` [W] = 360 k / W, k = 0..W-1.
φ = latitude, λ = longitude (radians), μ = sin φ, t = seconds since ``EPOCH`` (a fixed origin, so
a store covering January equals the first part of one covering January and February).

Streamfunction at the reference level p_ref = 500 hPa, ψ [T, H, W] in m² s⁻¹
----------------------------------------------------------------------------
    ψ = -a² ω μ  +  Σ_k a² K_k A_k(t) P̃_{n_k}^{m_k}(μ) cos(m_k (λ - ν_k t) + α_k)

* solid-body super-rotation ω (u = a ω cos φ);
* Rossby–Haurwitz waves (Haurwitz 1940): zonal wavenumber m, total wavenumber n > m,
  P̃_n^m = sqrt((2n+1) (n-m)!/(n+m)!) P_n^m (``scipy.special.lpmv``), normalised so that
  P̃² has unit mean over the sphere; amplitude K (s⁻¹), phase α;
* each wave drifts at the exact linear phase speed of the barotropic vorticity equation about
  solid-body rotation ω (rad s⁻¹, positive eastward):

      ν = [n(n+1) ω - 2(Ω + ω)] / [n(n+1)]

* a slow amplitude modulation A(t) = 1 + ε sin(2π t / τ + β), τ of several days, so the system
  is not strictly periodic (the waves still drift at exactly ν).

Winds (non-divergent, analytic), u, v [T, H, W] in m s⁻¹
--------------------------------------------------------
    u = -(1/a) ∂ψ/∂φ,      v = 1/(a cos φ) ∂ψ/∂λ
    dP_n^m/dφ = [(n+m) P_{n-1}^m(μ) - n μ P_n^m(μ)] / cos φ

Every wave has m ≥ 2, so P_n^m ∝ cos^m φ and u, v of the waves vanish at the poles: both
expressions are finite (zero) there.

Vertical structure (equivalent barotropic)
------------------------------------------
Every level shares ψ's pattern and phase speeds, scaled by s(p) = exp(-(p - 500) / 700 hPa)
(s(850) ≈ 0.61): the flow is stronger aloft.

    u(p) = s(p) u,   v(p) = s(p) v

Geopotential Φ [T, L, H, W] in m² s⁻²: standard atmosphere plus the f-scaled streamfunction,

    Φ(p) = Φ̄(p) + s(p) (f ψ + c),   f = 2Ω sin φ,   c = (2/3) Ω ω a²
    Φ̄(p) = (g T₀ / Γ) [1 - (p / p₀)^κ],   κ = R_d Γ / g

Φ̄(500) ≈ 5.47e4 and Φ̄(850) ≈ 1.43e4 m² s⁻². f ψ is the geostrophic relation with the local f
(no equatorial floor is needed since Φ is never divided by f); for the super-rotation it gives
f ψ = -2Ωωa² sin²φ, so the poles are lower. c removes that term's global mean, so the
area mean of Φ(p) is Φ̄(p). The β-term error of this balance is ~cot φ / n of the wave wind.

Temperature T [T, L, H, W] in K, from the hydrostatic relation T = -(1/R_d) ∂Φ/∂ln p:

    T(p) = T₀ (p / p₀)^κ + p / (700 hPa · R_d) · s(p) (f ψ + c)

This is the hypsometric relation in differential form: its ln p-mean over 850..500 hPa is exactly
(Φ_500 - Φ_850) / (R_d ln(850/500)), and the ISA factor (p/p₀)^κ is the 6.5 K/km lapse adjustment
that makes T(850) warmer than T(500). It holds for any levels, not only the pair 500/850.

2 m temperature [T, H, W] in K (no seasonal cycle):

    t2m = T(850) + Γ · 1.5 km + 3 K cos φ cos(2π (h_local - 15) / 24),   h_local = h_UTC + λ°/15

the diurnal cycle peaking at 15 local solar time.

Constants: a = 6.371e6 m, Ω = 7.292e-5 s⁻¹, ω = 2e-6 s⁻¹, g = 9.80665 m s⁻², R_d = 287.05
J kg⁻¹ K⁻¹, Γ = 6.5e-3 K m⁻¹, T₀ = 288.15 K, p₀ = 1013.25 hPa.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import lpmv

from pipeline.ingest import atomic_directory

EARTH_RADIUS = 6.371e6  # a, m
EARTH_ROTATION = 7.292e-5  # Ω, s⁻¹
SUPER_ROTATION = 2.0e-6  # ω, s⁻¹: u = a ω cos φ ≈ 13 m s⁻¹ at the equator at 500 hPa
GRAVITY = 9.80665  # g, m s⁻²
R_DRY = 287.05  # R_d, J kg⁻¹ K⁻¹
LAPSE_RATE = 6.5e-3  # Γ, K m⁻¹
T_SURFACE = 288.15  # T₀, K (ISA)
P_SURFACE = 1013.25  # p₀, hPa (ISA)
REFERENCE_LEVEL = 500.0  # hPa, where s(p) = 1
VERTICAL_SCALE = 700.0  # hPa, e-folding of s(p)
SCREEN_HEIGHT = 1500.0  # m, 850 hPa above the 2 m screen in the ISA
DIURNAL_AMPLITUDE = 3.0  # K at the equator
EPOCH = np.datetime64("2020-01-01T00:00", "ns")

DEFAULT_PERIODS = {
    "train": ("2020-01-01", "2020-02-09T18"),
    "val": ("2020-02-10", "2020-02-19T18"),
    "test": ("2020-02-20", "2020-02-29T18"),
}

_KAPPA = R_DRY * LAPSE_RATE / GRAVITY


@dataclass(frozen=True)
class RossbyHaurwitzWave:
    """One wave of ψ: a² K A(t) P̃_n^m(sin φ) cos(m (λ - ν t) + α), A(t) = 1 + ε sin(2π t/τ + β)."""

    m: int  # zonal wavenumber
    n: int  # total wavenumber, n > m
    amplitude: float  # K, s⁻¹
    phase: float  # α, rad
    modulation_depth: float = 0.0  # ε
    modulation_period_days: float = 1.0  # τ, days
    modulation_phase: float = 0.0  # β, rad


def phase_speed(n: int, omega: float = SUPER_ROTATION) -> float:
    """Angular phase speed ν = [n(n+1)ω - 2(Ω+ω)] / [n(n+1)] in rad s⁻¹ (positive eastward)."""
    nn1 = n * (n + 1)
    return (nn1 * omega - 2.0 * (EARTH_ROTATION + omega)) / nn1


def draw_waves(seed: int, n_waves: int = 4) -> tuple[RossbyHaurwitzWave, ...]:
    """Draw waves with distinct m in 2..6 (one phase speed per zonal wavenumber), n - m in 1..3.

    Mixing both parities of n - m keeps the two hemispheres from being mirror images.
    """
    rng = np.random.default_rng(seed)
    ms = rng.choice(np.arange(2, 7), size=n_waves, replace=False)
    return tuple(
        RossbyHaurwitzWave(
            m=int(m),
            n=int(m + rng.integers(1, 4)),
            amplitude=float(rng.uniform(1.0e-7, 2.4e-7)),
            phase=float(rng.uniform(0.0, 2.0 * np.pi)),
            modulation_depth=float(rng.uniform(0.2, 0.4)),
            modulation_period_days=float(rng.uniform(4.0, 12.0)),
            modulation_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
        )
        for m in ms
    )


def _legendre(m: int, n: int, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P̃_n^m(sin φ) and dP̃_n^m/dφ, both [H], for φ [H] in radians."""
    norm = math.sqrt((2 * n + 1) * math.factorial(n - m) / math.factorial(n + m))
    mu = np.sin(phi)
    p_n = lpmv(m, n, mu)
    # (1-μ²) dP_n^m/dμ = (n+m) P_{n-1}^m - n μ P_n^m and d/dφ = cos φ d/dμ. At φ = ±90° the
    # numerator is exactly 0 (m ≥ 1) and cos φ ≈ 6e-17 (never 0 in floating point), so the
    # quotient is 0 there, as it should be.
    dp_dphi = ((n + m) * lpmv(m, n - 1, mu) - n * mu * p_n) / np.cos(phi)
    return norm * p_n, norm * dp_dphi


def _streamfunction_terms(lat, lon, times, waves, omega):
    """ψ, ∂ψ/∂φ, ∂ψ/∂λ, each [T, H, W] in m² s⁻¹ (per radian for the derivatives)."""
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))[None, :, None]  # [1, H, 1]
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64))[None, None, :]  # [1, 1, W]
    t = np.asarray(times, dtype=np.float64)[:, None, None]  # [T, 1, 1]
    a2 = EARTH_RADIUS**2
    mu = np.sin(phi)
    shape = (t.shape[0], phi.shape[1], lam.shape[2])
    psi = np.broadcast_to(-a2 * omega * mu, shape).copy()
    dpsi_dphi = np.broadcast_to(-a2 * omega * np.cos(phi), shape).copy()
    dpsi_dlam = np.zeros(shape)
    for w in waves:
        p_n, dp_dphi = (x[None, :, None] for x in _legendre(w.m, w.n, phi[0, :, 0]))
        tau = w.modulation_period_days * 86400.0
        amp = a2 * w.amplitude * (1.0 + w.modulation_depth * np.sin(2 * np.pi * t / tau
                                                                      + w.modulation_phase))
        theta = w.m * (lam - phase_speed(w.n, omega) * t) + w.phase  # [T, 1, W]
        psi += amp * p_n * np.cos(theta)
        dpsi_dphi += amp * dp_dphi * np.cos(theta)
        dpsi_dlam -= amp * p_n * w.m * np.sin(theta)
    return psi, dpsi_dphi, dpsi_dlam


def streamfunction(lat, lon, times, waves, omega: float = SUPER_ROTATION) -> np.ndarray:
    """ψ [T, H, W] (m² s⁻¹) at 500 hPa for lat [H], lon [W] (degrees), times [T] (s since EPOCH)."""
    return _streamfunction_terms(lat, lon, times, waves, omega)[0]


def nondivergent_wind(lat, lon, times, waves, omega: float = SUPER_ROTATION):
    """(u, v), each [T, H, W] in m s⁻¹ at 500 hPa: u = -(1/a) ∂ψ/∂φ, v = ∂ψ/∂λ / (a cos φ)."""
    _, dpsi_dphi, dpsi_dlam = _streamfunction_terms(lat, lon, times, waves, omega)
    cos_phi = np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)))[None, :, None]
    # ∂ψ/∂λ ∝ P_n^m is exactly 0 at the poles (m ≥ 2) and cos φ ≈ 6e-17 there: v = 0, no NaN.
    v = dpsi_dlam / (EARTH_RADIUS * cos_phi)
    return -dpsi_dphi / EARTH_RADIUS, v


def vertical_scale(levels) -> np.ndarray:
    """s(p) = exp(-(p - 500) / 700) for levels [L] in hPa."""
    return np.exp(-(np.asarray(levels, dtype=np.float64) - REFERENCE_LEVEL) / VERTICAL_SCALE)


def hydrostatic_column(levels, balanced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Φ(p) = Φ̄(p) + s(p) B and T(p) = -(1/R_d) ∂Φ/∂ln p, each [T, L, H, W].

    levels [L] in hPa; balanced B = f ψ + c [T, H, W] in m² s⁻² (see the module docstring).
    """
    p = np.asarray(levels, dtype=np.float64)[None, :, None, None]  # [1, L, 1, 1]
    s = vertical_scale(levels)[None, :, None, None]
    isa = (p / P_SURFACE) ** _KAPPA
    geopotential = GRAVITY * T_SURFACE / LAPSE_RATE * (1.0 - isa) + s * balanced[:, None]
    # ∂s/∂ln p = -(p / 700) s, so the balanced part adds p s B / (700 R_d) to T.
    temperature = T_SURFACE * isa + p / (VERTICAL_SCALE * R_DRY) * s * balanced[:, None]
    return geopotential, temperature


def _attrs(units: str, long_name: str, standard_name: str) -> dict:
    return {"units": units, "long_name": long_name, "standard_name": standard_name}


def synthetic_era5(*, start="2020-01-01", end="2020-02-29T18", freq_hours=6, n_lat=32,
                   n_lon=64, levels=(500, 850), seed=0, waves=None) -> xr.Dataset:
    """The synthetic dataset in memory (float32 variables); see the module docstring."""
    waves = draw_waves(seed) if waves is None else tuple(waves)
    time = pd.date_range(start, end, freq=f"{freq_hours}h").values.astype("datetime64[ns]")
    level = np.asarray(levels, dtype=np.int64)
    lat = np.linspace(90.0, -90.0, n_lat)
    lon = np.arange(n_lon) * (360.0 / n_lon)
    seconds = (time - EPOCH) / np.timedelta64(1, "s")  # [T]

    psi = streamfunction(lat, lon, seconds, waves)  # [T, H, W]
    u, v = nondivergent_wind(lat, lon, seconds, waves)
    phi = np.deg2rad(lat)[None, :, None]
    coriolis = 2.0 * EARTH_ROTATION * np.sin(phi)  # [1, H, 1]
    balanced = coriolis * psi + (2.0 / 3.0) * EARTH_ROTATION * SUPER_ROTATION * EARTH_RADIUS**2

    geopotential, temperature = hydrostatic_column(level, balanced)  # [T, L, H, W]
    t850 = hydrostatic_column([850.0], balanced)[1][:, 0]  # [T, H, W]
    utc_hours = (seconds % 86400.0)[:, None, None] / 3600.0
    local_hours = utc_hours + lon[None, None, :] / 15.0
    diurnal = DIURNAL_AMPLITUDE * np.cos(phi) * np.cos(2 * np.pi * (local_hours - 15.0) / 24.0)
    t2m = t850 + LAPSE_RATE * SCREEN_HEIGHT + diurnal  # [T, H, W]

    s = vertical_scale(level)[None, :, None, None]  # [1, L, 1, 1]
    dims4, dims3 = ("time", "level", "latitude", "longitude"), ("time", "latitude", "longitude")
    f32 = np.float32
    data_vars = {
        "geopotential": (dims4, geopotential.astype(f32),
                         _attrs("m**2 s**-2", "Geopotential", "geopotential")),
        "temperature": (dims4, temperature.astype(f32),
                        _attrs("K", "Temperature", "air_temperature")),
        "u_component_of_wind": (dims4, (s * u[:, None]).astype(f32),
                                _attrs("m s**-1", "U component of wind", "eastward_wind")),
        "v_component_of_wind": (dims4, (s * v[:, None]).astype(f32),
                                _attrs("m s**-1", "V component of wind", "northward_wind")),
        "2m_temperature": (dims3, t2m.astype(f32),
                           _attrs("K", "2 metre temperature", "air_temperature")),
    }
    coords = {
        "time": ("time", time),
        "level": ("level", level, {"units": "hPa", "long_name": "pressure_level"}),
        "latitude": ("latitude", lat, {"units": "degrees_north", "long_name": "latitude"}),
        "longitude": ("longitude", lon, {"units": "degrees_east", "long_name": "longitude"}),
    }
    attrs = {
        "title": "Synthetic ERA5-style reanalysis (sluice)",
        "source": "pipeline.synthetic: analytic barotropic Rossby-Haurwitz waves, not ERA5",
        "dynamics": (
            "psi = -a^2 omega sin(lat) + sum_k a^2 K_k A_k(t) Pnm_k(sin lat) "
            "cos(m_k (lon - nu_k t) + alpha_k); nu = [n(n+1) omega - 2(Omega+omega)]/[n(n+1)]; "
            "u, v non-divergent from psi; Phi = Phi_ISA(p) + s(p)(f psi + c); "
            "T = -(1/R_d) dPhi/dln p; t2m = T850 + 9.75 K + diurnal"
        ),
        "seed": int(seed),
        "super_rotation": SUPER_ROTATION,
        "epoch": str(EPOCH),
        "waves": [asdict(w) for w in waves],
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def write_synthetic_era5(path, *, start="2020-01-01", end="2020-02-29T18", freq_hours=6,
                         n_lat=32, n_lon=64, levels=(500, 850), seed=0, waves=None,
                         overwrite=False) -> Path:
    """Write ``synthetic_era5(...)`` as a Zarr v3 store at ``path`` atomically; return the path.

    Chunks hold one time step. Same arguments give identical arrays. Raises FileExistsError if
    ``path`` exists and ``overwrite`` is False.
    """
    path = Path(os.fspath(path))
    with atomic_directory(path, overwrite=overwrite) as tmp:
        ds = synthetic_era5(start=start, end=end, freq_hours=freq_hours, n_lat=n_lat,
                            n_lon=n_lon, levels=levels, seed=seed, waves=waves)
        encoding = {name: {"chunks": (1,) + var.shape[1:]} for name, var in ds.data_vars.items()}
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    return path


def extend_synthetic_era5(path, end) -> Path:
    """Extend the synthetic store at ``path`` to ``end`` (inclusive), as analyses arrive.

    The fields are analytic in the time since `EPOCH`, so the extended store is the one
    `write_synthetic_era5` writes for the longer span: every earlier time keeps its bytes. It
    is rewritten whole and swapped in atomically (a reader sees the old span or the new one);
    an ``end`` at or before the store's last time leaves it untouched. The store's own
    coordinates and attributes give the arguments (start, step, grid, levels, seed, waves).
    """
    import zarr

    from pipeline.errors import DataError

    path = Path(os.fspath(path))
    try:
        attrs = dict(zarr.open_group(os.fspath(path), mode="r").attrs)
    except (FileNotFoundError, zarr.errors.NodeNotFoundError):
        raise DataError(path, "store", "a store written by write_synthetic_era5",
                        "nothing there") from None
    if "waves" not in attrs or "seed" not in attrs:
        raise DataError(path, "waves", "a store written by write_synthetic_era5",
                        f"attributes {sorted(attrs)}")
    ds = xr.open_zarr(path, consolidated=False)
    times = ds["time"].values.astype("datetime64[ns]")
    if np.datetime64(end, "ns") <= times[-1]:
        return path
    freq_hours = int((times[1] - times[0]) / np.timedelta64(1, "h"))
    waves = [RossbyHaurwitzWave(**w) for w in attrs["waves"]]
    return write_synthetic_era5(path, start=str(times[0]), end=str(np.datetime64(end, "s")),
                                freq_hours=freq_hours, n_lat=ds.sizes["latitude"],
                                n_lon=ds.sizes["longitude"],
                                levels=tuple(int(v) for v in ds["level"].values),
                                seed=int(attrs["seed"]), waves=waves, overwrite=True)
