"""The dynamical core tested as physics: SHT operators, Rossby–Haurwitz, Williamson 2, budgets."""

import numpy as np
import pytest
from scipy.special import lpmv

from pipeline.atmosphere.core import (
    EARTH_ROTATION,
    N_TRACERS,
    AtmosphereConfig,
    CoreState,
    ShallowWaterCore,
    integrate,
)
from pipeline.atmosphere.sht import SphericalGrid

A = 6.371e6
UNFORCED = {"lmax": 21, "nlat": 32, "nlon": 64, "forcing": False, "dissipation": False}


def _grid_field(grid, fn):
    phi = np.deg2rad(grid.latitude)[:, None]
    lam = np.deg2rad(grid.longitude)[None, :]
    return fn(phi, lam)


def test_laplacian_of_spherical_harmonic_is_minus_n_n_plus_1_over_a2():
    grid = SphericalGrid(lmax=21, nlat=32, nlon=64)
    for n, m in [(1, 0), (4, 3), (10, 2), (21, 21)]:
        y = _grid_field(grid, lambda phi, lam, n=n, m=m: lpmv(m, n, np.sin(phi)) * np.cos(m * lam))
        lap = grid.to_grid(grid.laplacian_eigenvalues * grid.to_spectral(y))
        np.testing.assert_allclose(lap, -n * (n + 1) / A**2 * y, atol=1e-12 * np.abs(y).max()
                                   * n * (n + 1) / A**2)


@pytest.mark.parametrize("geometry,nlat", [("GL", 32), ("CC", 33), ("F1", 32)])
def test_analysis_synthesis_round_trip_is_identity_on_band_limited_fields(geometry, nlat):
    grid = SphericalGrid(lmax=21, nlat=nlat, nlon=64, geometry=geometry)
    rng = np.random.default_rng(0)
    alm = rng.standard_normal(grid.nalm) + 1j * rng.standard_normal(grid.nalm)
    alm[grid.order == 0] = alm[grid.order == 0].real
    np.testing.assert_allclose(grid.to_spectral(grid.to_grid(alm)), alm, atol=1e-12)


def test_winds_and_div_curl_are_inverse_and_match_finite_differences():
    grid = SphericalGrid(lmax=21, nlat=32, nlon=64)
    rng = np.random.default_rng(1)
    psi, chi = (rng.standard_normal(grid.nalm) * 1e6 + 0j for _ in range(2))
    psi[0] = chi[0] = 0
    u, v = grid.winds(psi, chi)
    div, curl = grid.div_curl(u, v)
    np.testing.assert_allclose(div, grid.laplacian_eigenvalues * chi, atol=1e-18)
    np.testing.assert_allclose(curl, grid.laplacian_eigenvalues * psi, atol=1e-18)
    # u = -(1/a) ∂ψ/∂φ for a zonal ψ = cos²φ-like field: ψ = a² sin φ → u = -a cos φ
    zonal = grid.to_spectral(_grid_field(grid, lambda phi, lam: A**2 * np.sin(phi) + 0 * lam))
    u, v = grid.winds(zonal * 1e-6, 0 * zonal)
    expect = -A * 1e-6 * np.cos(np.deg2rad(grid.latitude))[:, None]
    np.testing.assert_allclose(u, np.broadcast_to(expect, u.shape), atol=1e-9)
    assert np.abs(v).max() < 1e-9


def _rossby_haurwitz(grid, omega, k, m):
    """ψ = -a² ω sin φ + a² K cos^m φ sin φ cos(m λ) (Williamson et al. 1992, case 6), spectral.

    cos^m φ sin φ ∝ P_{m+1}^m(sin φ): total wavenumber n = m + 1.
    """
    return grid.to_spectral(_grid_field(
        grid, lambda phi, lam: -A**2 * omega * np.sin(phi)
        + A**2 * k * np.cos(phi) ** m * np.sin(phi) * np.cos(m * lam)))


def test_rossby_haurwitz_wave_moves_at_its_analytic_speed():
    config = AtmosphereConfig(**UNFORCED, barotropic=True, dt=1200.0)
    core = ShallowWaterCore(config)
    g = core.grid
    omega, k, m = 7.848e-6, 7.848e-6, 4
    n = m + 1
    psi = _rossby_haurwitz(g, omega, k, m)
    zero = np.zeros(g.nalm, complex)
    state = CoreState(0.0, g.laplacian_eigenvalues * psi, zero,
                      zero, np.zeros((N_TRACERS, g.nalm), complex))
    days = 5
    states = list(integrate(core, state, int(days * 86400 / config.dt), int(21600 / config.dt)))
    last = states[-1]
    i = g.index(n, m)
    # ζ ∝ cos(m(λ - ν t)) → its (n, m) coefficient turns as e^{-i m ν t}; unwrap 6-hourly.
    phase = np.unwrap([np.angle(s.vorticity[i] / state.vorticity[i]) for s in states])
    speed = -phase[-1] / (m * days * 86400.0)
    nn1 = n * (n + 1)
    analytic = (nn1 * omega - 2.0 * (omega + EARTH_ROTATION)) / nn1
    assert abs(speed / analytic - 1.0) < 0.01, (speed, analytic)
    assert abs(abs(last.vorticity[i]) / abs(state.vorticity[i]) - 1.0) < 1e-3


def _williamson2(grid, config):
    u0 = 2 * np.pi * A / (12 * 86400.0)
    gh0 = 2.94e4
    psi = grid.to_spectral(_grid_field(grid, lambda phi, lam: -A * u0 * np.sin(phi) + 0 * lam))
    height = _grid_field(grid, lambda phi, lam: gh0 - (A * EARTH_ROTATION * u0 + u0**2 / 2)
                         * np.sin(phi) ** 2 + 0 * lam)
    phi_anom = grid.to_spectral(height - config.mean_geopotential)
    zero = np.zeros(grid.nalm, complex)
    return CoreState(0.0, grid.laplacian_eigenvalues * psi, zero, phi_anom,
                     np.zeros((N_TRACERS, grid.nalm), complex))


def test_williamson_case_2_steady_geostrophic_flow_stays_steady():
    config = AtmosphereConfig(**UNFORCED, dt=1200.0)
    core = ShallowWaterCore(config)
    g = core.grid
    state = _williamson2(g, config)
    steps = int(5 * 86400 / config.dt)
    *_, last = integrate(core, state, steps, steps)
    h0 = g.to_grid(state.geopotential) + config.mean_geopotential
    h1 = g.to_grid(last.geopotential) + config.mean_geopotential
    l2 = np.sqrt(g.global_mean((h1 - h0) ** 2) / g.global_mean(h0**2))
    assert l2 < 1e-6, l2  # Williamson et al. (1992) normalised l2 height error after 5 days


def _energy(core, s):
    g, c = core.grid, core.config
    u, v = g.winds(g.inverse_laplacian * s.vorticity, g.inverse_laplacian * s.divergence)
    phi = g.to_grid(s.geopotential) + c.mean_geopotential
    return g.global_mean(0.5 * phi * (u * u + v * v) + 0.5 * phi * phi)


def _williamson6_height(phi, lam, omega=7.848e-6, k=7.848e-6, r=4, h0=8.0e3):
    """gh of Williamson et al. (1992) case 6, the balanced Rossby–Haurwitz height (m² s⁻²)."""
    c = np.cos(phi)
    a_ = omega / 2 * (2 * EARTH_ROTATION + omega) * c**2 + k**2 / 4 * c ** (2 * r) * (
        (r + 1) * c**2 + (2 * r * r - r - 2) - 2 * r * r * c**-2)
    b_ = 2 * (EARTH_ROTATION + omega) * k / ((r + 1) * (r + 2)) * c**r * (
        (r * r + 2 * r + 2) - (r + 1) ** 2 * c**2)
    c_ = k**2 / 4 * c ** (2 * r) * ((r + 1) * c**2 - (r + 2))
    return 9.80665 * h0 + A**2 * (a_ + b_ * np.cos(r * lam) + c_ * np.cos(2 * r * lam))


def test_unforced_inviscid_mass_is_conserved_and_energy_drift_is_bounded():
    # The semi-implicit reference Φ̄ must be at least the flow's mean (else it is unstable).
    config = AtmosphereConfig(**UNFORCED, dt=1200.0, mean_geopotential=9.80665 * 8.0e3)
    core = ShallowWaterCore(config)
    g = core.grid
    psi = _rossby_haurwitz(g, 7.848e-6, 7.848e-6, 4)
    height = g.to_spectral(_grid_field(g, _williamson6_height) - config.mean_geopotential)
    zero = np.zeros(g.nalm, complex)
    state = CoreState(0.0, g.laplacian_eigenvalues * psi, zero.copy(), height,
                      np.zeros((N_TRACERS, g.nalm), complex))
    e0, m0 = _energy(core, state), state.geopotential[0].real
    states = list(integrate(core, state, int(10 * 86400 / config.dt), 72))
    masses = np.array([s.geopotential[0].real for s in states])
    energies = np.array([_energy(core, s) for s in states])
    assert np.abs(masses - m0).max() <= 1e-13 * config.mean_geopotential
    drift = np.abs(energies / e0 - 1).max()
    assert drift < 1e-4, drift


def test_core_is_deterministic_and_seed_dependent():
    def run(seed):
        config = AtmosphereConfig(lmax=21, nlat=32, nlon=64, dt=1800.0, seed=seed)
        from pipeline.atmosphere.core import initial_state
        core = ShallowWaterCore(config)
        *_, last = integrate(core, initial_state(config, 0.0), 96, 96)
        return last.vorticity
    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
