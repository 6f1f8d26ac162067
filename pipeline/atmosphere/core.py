"""The dynamical core: forced-dissipative shallow-water equations on the sphere, spectral (T42).

Prognostic fields, all spectral [nalm] complex (``sht.SphericalGrid``): relative vorticity ζ
(s⁻¹), divergence δ (s⁻¹), geopotential anomaly Φ' = Φ - Φ̄ (m² s⁻², Φ̄ = ``mean_geopotential``)
and four tracers [4, nalm]: θ1, θ2, θ3 (lower-tropospheric, upper-tropospheric and stratospheric
temperature anomalies, K) and s = ln χ (χ a relative-humidity-like moisture, dimensionless).

Equations (vorticity–divergence form; V = (u, v) = k × ∇ψ + ∇χ_v, ψ = ∇⁻²ζ, χ_v = ∇⁻²δ,
f = 2Ω sin φ, K = |V|²/2, κ_l = ν [l(l+1)/a²]^p the ∇^{2p} hyperdiffusion, p = 4):

    ∂ζ/∂t  = -∇·((ζ + f) V)                       + F_ζ(t)      - r_d ζ        - κ_l ζ
    ∂δ/∂t  =  k·∇×((ζ + f) V) - ∇²(K + Φ')                      - r_d δ        - κ_l δ
    ∂Φ'/∂t = -∇·(Φ' V) - Φ̄ δ                     - r_Φ (Φ' - Φ_eq)              - κ_l Φ'
    ∂q/∂t  = -V·∇q                               - r_q (q - q_eq)               - κ_l q

for q ∈ {θ1, θ2, θ3, s}; F_ζ, Φ_eq, q_eq come from ``forcing.py``. Mass: the l = 0 coefficient of
Φ' only changes through the relaxation, which is switched off for l = 0, so ∫Φ dA is constant.

Time stepping: semi-implicit leapfrog (Robert 1969; Hack & Jakob 1992) with the
Robert–Asselin–Williams filter (ν_RAW, α = 0.53). The gravity-wave terms -∇²Φ' and -Φ̄δ are
trapezoidal over [n-1, n+1]; with L = l(l+1)/a² and Δ = 2Δt:

    A = δⁿ⁻¹ + Δ N_δ + (Δ/2) L Φ'ⁿ⁻¹,        B = Φ'ⁿ⁻¹ + Δ N_Φ - (Δ/2) Φ̄ δⁿ⁻¹
    Φ'ⁿ⁺¹ = (B - (Δ/2) Φ̄ A) / (1 + (Δ/2)² Φ̄ L),       δⁿ⁺¹ = A + (Δ/2) L Φ'ⁿ⁺¹

then every linear damping is implicit: X ← (X + Δ r X_eq) / (1 + Δ (r + κ_l)). The first step
is the same with Δ = Δt and n-1 = n. ``barotropic=True`` keeps δ ≡ 0 (the non-divergent
barotropic vorticity equation, for the Rossby–Haurwitz test).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.atmosphere import forcing
from pipeline.atmosphere.sht import SphericalGrid

EARTH_ROTATION = 7.292e-5  # Ω, s⁻¹
EPOCH = np.datetime64("2001-01-01T00:00", "ns")  # t = 0; the trajectory starts spin-up before
RAW_ALPHA = 0.53  # Williams (2011)
N_TRACERS = 4  # θ1, θ2, θ3, s


@dataclass(frozen=True)
class AtmosphereConfig:
    """Everything that determines the trajectory (with ``seed``)."""

    lmax: int = 42  # triangular truncation (T42)
    nlat: int = 64  # Gauss–Legendre rings
    nlon: int = 128
    dt: float = 1200.0  # s; must divide 6 h
    seed: int = 0
    nthreads: int = 1
    spinup_days: float = 180.0  # integrated before EPOCH and discarded
    mean_geopotential: float = 3.0e4  # Φ̄, m² s⁻² (equivalent depth ≈ 3 km)
    forcing: bool = True
    dissipation: bool = True
    barotropic: bool = False
    # relaxation and damping
    height_relaxation_days: float = 10.0  # 1/r_Φ
    drag_days: float = 10.0  # 1/r_d (Rayleigh friction on ζ, δ)
    tracer_relaxation_days: tuple[float, ...] = (4.0, 12.0, 20.0, 3.0)  # θ1, θ2, θ3, s
    hyperdiffusion_hours: float = 6.0  # e-folding time of the l = lmax mode
    hyperdiffusion_order: int = 4  # p in ∇^{2p}
    raw_filter: float = 0.05  # ν_RAW
    # equilibria (forcing.py)
    jet_geopotential: float = 2.0e4  # ΔΦ_jet
    land_geopotential: float = 1.5e3  # ΔΦ_land
    diurnal_geopotential: float = 3.0e2  # ΔΦ_day
    lower_contrast: float = 40.0  # ΔT1, K
    land_temperature: float = 12.0  # ΔT_land, K
    diurnal_temperature: float = 6.0  # ΔT_day, K
    upper_contrast: float = 30.0  # ΔT2, K
    upper_wave: float = 4.0  # ΔT_wave, K
    stratosphere_contrast: float = 20.0  # ΔT3, K
    stratosphere_wave: float = 8.0  # ΔT3_wave, K
    stirring_modes: int = 16
    stirring_amplitude: float = 1.0e-10  # s⁻² per mode (spectral coefficient)
    initial_noise: float = 1.0e-6  # s⁻¹, seeded vorticity perturbation at spin-up start

    def grid(self) -> SphericalGrid:
        return SphericalGrid(lmax=self.lmax, nlat=self.nlat, nlon=self.nlon, geometry="GL",
                             nthreads=self.nthreads)


@dataclass
class CoreState:
    """Spectral state at ``time`` (s since EPOCH): ζ, δ, Φ' [nalm]; tracers [4, nalm]."""

    time: float
    vorticity: np.ndarray
    divergence: np.ndarray
    geopotential: np.ndarray
    tracers: np.ndarray = field(default_factory=lambda: np.zeros((N_TRACERS, 0), complex))

    def copy(self) -> CoreState:
        return CoreState(self.time, self.vorticity.copy(), self.divergence.copy(),
                         self.geopotential.copy(), self.tracers.copy())

    def _combine(self, other: CoreState, a: float, b: float) -> CoreState:
        return CoreState(self.time, a * self.vorticity + b * other.vorticity,
                         a * self.divergence + b * other.divergence,
                         a * self.geopotential + b * other.geopotential,
                         a * self.tracers + b * other.tracers)


class ShallowWaterCore:
    """Tendencies and the semi-implicit leapfrog step for one ``AtmosphereConfig``."""

    def __init__(self, config: AtmosphereConfig):
        self.config = config
        self.grid = grid = config.grid()
        self.coriolis = 2.0 * EARTH_ROTATION * np.sin(np.deg2rad(grid.latitude))[:, None]
        self.ll1 = -grid.laplacian_eigenvalues  # L = l(l+1)/a², [nalm]
        kappa_max = self.ll1[-1] if grid.lmax else 0.0
        p = config.hyperdiffusion_order
        self.hyperdiffusion = np.zeros(grid.nalm)
        if config.dissipation:
            nu = 1.0 / (config.hyperdiffusion_hours * 3600.0 * kappa_max**p)
            self.hyperdiffusion = nu * self.ll1**p
        self.land = forcing.land_fraction(grid.latitude, grid.longitude)
        ls, ms, amp, period, alpha, beta = forcing.stirring_modes(config.seed,
                                                                   config.stirring_modes,
                                                                   grid.lmax)
        self._stir_index = np.array([grid.index(int(deg), int(m))
                                     for deg, m in zip(ls, ms, strict=True)])
        self._stir = (config.stirring_amplitude * amp, period, alpha, np.exp(1j * beta))

    # --- forcing ----------------------------------------------------------------------------
    def stirring(self, t: float) -> np.ndarray:
        """F_ζ(t), [nalm] s⁻²."""
        out = np.zeros(self.grid.nalm, complex)
        if not self.config.forcing:
            return out
        amp, period, alpha, rot = self._stir
        np.add.at(out, self._stir_index, amp * np.cos(2 * np.pi * t / period + alpha) * rot)
        return out

    def equilibria(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(Φ_eq [nalm], q_eq [4, nalm]) spectral, the targets of the relaxation."""
        c, g = self.config, self.grid
        lat, lon = g.latitude, g.longitude
        phi_eq = forcing.height_equilibrium(t, lat, lon, self.land, jet=c.jet_geopotential,
                                            land_amplitude=c.land_geopotential,
                                            diurnal=c.diurnal_geopotential)
        theta1 = forcing.lower_temperature_equilibrium(
            t, lat, lon, self.land, contrast=c.lower_contrast,
            land_amplitude=c.land_temperature, diurnal=c.diurnal_temperature)
        theta2 = forcing.upper_temperature_equilibrium(t, lat, lon, contrast=c.upper_contrast,
                                                       wave=c.upper_wave)
        theta3 = forcing.stratosphere_temperature_equilibrium(
            t, lat, lon, contrast=c.stratosphere_contrast, wave=c.stratosphere_wave)
        s_eq = forcing.humidity_equilibrium(t, lat, lon, self.land)
        q_eq = np.stack([g.to_spectral(x) for x in (theta1, theta2, theta3, s_eq)])
        return g.to_spectral(phi_eq), q_eq

    # --- dynamics ---------------------------------------------------------------------------
    def tendencies(self, state: CoreState) -> CoreState:
        """Explicit tendencies N (everything but the gravity-wave and damping terms)."""
        g = self.grid
        psi = g.inverse_laplacian * state.vorticity
        chi = g.inverse_laplacian * state.divergence
        u, v = g.winds(psi, chi)  # [H, W]
        absolute = g.to_grid(state.vorticity) + self.coriolis
        div_flux, curl_flux = g.div_curl(absolute * u, absolute * v)
        n_vort = -div_flux + self.stirring(state.time)
        if self.config.barotropic:
            n_div = np.zeros_like(n_vort)
            n_phi = np.zeros_like(n_vort)
        else:
            kinetic = g.to_spectral(0.5 * (u * u + v * v))
            n_div = curl_flux + self.ll1 * kinetic  # -∇²K = L K
            phi = g.to_grid(state.geopotential)
            n_phi = -g.div_curl(phi * u, phi * v)[0]
        n_tracers = np.empty_like(state.tracers)
        for i, q in enumerate(state.tracers):
            qx, qy = g.gradient(q)
            n_tracers[i] = g.to_spectral(-(u * qx + v * qy))
        return CoreState(state.time, n_vort, n_div, n_phi, n_tracers)

    def step(self, prev: CoreState, now: CoreState, first: bool = False):
        """Advance (n-1, n) → (n filtered, n+1); see the module docstring."""
        c = self.config
        dt = c.dt
        big = dt if first else 2.0 * dt  # Δ
        tend = self.tendencies(now)
        half = 0.5 * big
        vort = prev.vorticity + big * tend.vorticity
        tracers = prev.tracers + big * tend.tracers
        if c.barotropic:
            div = np.zeros_like(vort)
            phi = prev.geopotential.copy()
        else:
            a = prev.divergence + big * tend.divergence + half * self.ll1 * prev.geopotential
            b = (prev.geopotential + big * tend.geopotential
                 - half * c.mean_geopotential * prev.divergence)
            phi = (b - half * c.mean_geopotential * a) / (
                1.0 + half**2 * c.mean_geopotential * self.ll1)
            div = a + half * self.ll1 * phi
        t_next = now.time + dt
        kappa = self.hyperdiffusion
        drag = 1.0 / (c.drag_days * 86400.0) if c.dissipation else 0.0
        vort = vort / (1.0 + big * (drag + kappa))
        div = div / (1.0 + big * (drag + kappa))
        if c.forcing:
            phi_eq, q_eq = self.equilibria(t_next)
            r_phi = np.full(self.grid.nalm, 1.0 / (c.height_relaxation_days * 86400.0))
            r_phi[0] = 0.0  # the mean is never relaxed: mass is conserved
            phi = (phi + big * r_phi * phi_eq) / (1.0 + big * (r_phi + kappa))
            r_q = 1.0 / (np.asarray(c.tracer_relaxation_days) * 86400.0)[:, None]
            tracers = (tracers + big * r_q * q_eq) / (1.0 + big * (r_q + kappa))
        else:
            phi = phi / (1.0 + big * kappa)
            tracers = tracers / (1.0 + big * kappa)
        nxt = CoreState(t_next, vort, div, phi, tracers)
        # Robert–Asselin–Williams filter
        d = now._combine(prev, -c.raw_filter, 0.5 * c.raw_filter)._combine(nxt, 1.0,
                                                                              0.5 * c.raw_filter)
        filtered = now._combine(d, 1.0, RAW_ALPHA)
        nxt = nxt._combine(d, 1.0, -(1.0 - RAW_ALPHA))
        return filtered, nxt


def initial_state(config: AtmosphereConfig, t0: float) -> CoreState:
    """Rest, Φ' = 0, tracers at their equilibria, plus seeded small-scale vorticity noise."""
    core = ShallowWaterCore(config)
    g = core.grid
    rng = np.random.default_rng([config.seed, 1])
    noise = rng.standard_normal(g.nalm) + 1j * rng.standard_normal(g.nalm)
    noise[g.order == 0] = noise[g.order == 0].real
    band = (g.degree >= 5) & (g.degree <= 20)
    vort = np.where(band, noise, 0.0) * config.initial_noise
    _, q_eq = core.equilibria(t0)
    zero = np.zeros(g.nalm, complex)
    return CoreState(t0, vort, zero.copy(), zero.copy(), q_eq if config.forcing else
                     np.zeros((N_TRACERS, g.nalm), complex))


def integrate(core: ShallowWaterCore, state: CoreState, n_steps: int, every: int = 1
              ) -> Iterator[CoreState]:
    """Yield the state every ``every`` steps (starting with ``state``), n_steps steps in all."""
    prev, now = state, state
    yield now.copy()
    for k in range(n_steps):
        prev, now = core.step(prev, now, first=(k == 0))
        if (k + 1) % every == 0:
            yield now.copy()


def time_of(t: float) -> np.datetime64:
    return EPOCH + np.timedelta64(int(round(t)), "s")


def seconds_since_epoch(time) -> float:
    return float((np.datetime64(time, "ns") - EPOCH) / np.timedelta64(1, "s"))


def run_core(config: AtmosphereConfig, start, end, freq_hours: int = 6
             ) -> Iterator[tuple[np.datetime64, CoreState]]:
    """Yield (time, state) every ``freq_hours`` from ``start`` to ``end`` inclusive.

    The trajectory depends only on ``config`` (and its seed): it always starts from rest at
    EPOCH - spinup_days, so a state at a given time is the same whatever ``start`` and ``end``.
    ``start`` must be at or after EPOCH (2001-01-01) and on the 6-hourly cadence.
    """
    t_start, t_end = seconds_since_epoch(start), seconds_since_epoch(end)
    every_s = freq_hours * 3600.0
    if t_start < 0 or t_end < t_start or t_start % every_s:
        raise ValueError(f"need {EPOCH} <= start <= end on a {freq_hours}-hourly cadence, "
                         f"got start={start}, end={end}")
    every = round(every_s / config.dt)
    if abs(every * config.dt - every_s) > 1e-9:
        raise ValueError(f"dt={config.dt} s must divide {freq_hours} h")
    core = ShallowWaterCore(config)
    t0 = -config.spinup_days * 86400.0
    t0 = np.floor(t0 / every_s) * every_s
    n_steps = round((t_end - t0) / config.dt)
    for state in integrate(core, initial_state(config, t0), n_steps, every):
        if state.time >= t_start - 1e-6:
            yield time_of(state.time), state


def with_options(config: AtmosphereConfig, **changes) -> AtmosphereConfig:
    """A copy of ``config`` with ``changes`` (dataclasses.replace)."""
    return replace(config, **changes)
