"""Vertical structure: 13 pressure levels and the surface, derived from one core state.

Level-dependent climatology (``climatology.py``): each layer's own time-mean temperature T_z
(jets, seasonal stratosphere), the surface pressure belts Φ_s, their geostrophic wind, the
Hadley/Ferrel v, a land–sea boundary-layer term, the trade-wind inversion and a level-dependent
relative-humidity multiplier M are added to the terms below (T += T_z + T_l, Φ += Φ_z, u += u_z,
v += v_z, RH *= M).

The core's Φ_c and wind enter split into their zonal mean (m = 0, subscript z), eddies (x) and
the eddies' quadrature (y, Hilbert transform in λ: coefficients × -i for m > 0): the surface
takes a0z = 0.05 of the zonal mean (the surface belts come from the climatology) and a0 = 0.25 of
the eddies; the temperature term is c_k Φ_z + c'_k (cos α_k Φ_x + sin α_k Φ_y), and θ1's eddies
likewise, with α_k = -110° min(ln(1000/p), ln 4)/ln 4 a westward phase tilt with height; every
part's wind uses the same gains, so geostrophy and the hydrostatic integral stay exact.

Inputs on any grid (``sht.SphericalGrid``: the native Gauss–Legendre grid, or a finer
equiangular one by spectral synthesis), each [H, W]: the core's rotational wind (u_c, v_c), its
geopotential anomaly Φ_c, the tracers θ1, θ2 (K) and χ = exp(s); the insolation I and land
fraction L (``forcing.py``).

Temperature, [L, H, W] in K (p in hPa, k a level):
    T_k = T_b(p_k) + c_k Φ_c / R_d + w1_k θ1 + w2_k θ2 + d_k B + e_k (χ_k - 0.5)
          + s_k θ3 + i_k T_inv
    B = ΔT_bl (0.3 + 0.7 L)(I - 1/π): the boundary layer's diurnal cycle
with the level profiles c, w1, w2, d, e, s, i of ``profiles()`` (a barotropic part, a lower- and
an upper-tropospheric mode that changes sign in the stratosphere, the boundary layer, latent
heating, the stratosphere's own advected temperature θ3, the surface inversion). T is taken as
piecewise linear in ln p between the 13 levels, which are always all computed (selecting levels
never changes a value).

The base profile bends at a tropopause that moves (``tropopause``, ``base_temperature``):
    ln T_b = ln 288.15 + κ (ln p_tp + w sp((ln p - ln p_tp)/w) - ln 1013.25)
             + κ_s τ w sp((ln p_tp - ln p)/w),   sp(x) = ln(1 + eˣ),  κ = R_d Γ / g
    ln p_tp = ln 300 - ln 3 · τ(φ) - r tanh(σ T'_300 / r)
    τ = (1 - tanh((|φ - φ_s/3| - 32°)/8°)) / 2
i.e. the ISA lapse rate below the tropopause; above it isothermal outside the tropics and warming
(κ_s) above the cold tropical tropopause; p_tp ≈ 100 hPa inside the tropopause break (τ = 1),
≈ 300 hPa poleward, lifted by up to r = 0.4 in ln p over warm upper-tropospheric eddies (T'_300,
the zonal-eddy part of c_300 Φ_c/R_d + w2_300 θ2) and lowered over cold ones. Where the
tropopause crosses a level the level's temperature follows it and the level above does not: the
levels between 100 and 400 hPa each see their own horizontal pattern, as in ERA5.

Surface inversion, [H, W] K at screen level (``surface_inversion``; i_1000 = 0.4 of it at
1000 hPa, next to nothing at 925 hPa):
    T_inv = -ΔT_inv (0.2 + 0.8 L) (W sin²φ + (1 - min(πI, 1))/2) exp(-|V_1000| / V_calm)
(W the winter hemisphere's weight): radiative cooling over land, at night and in the polar
winter, where the wind is calm. Moisture's eddies tilt with height like θ1's:
    χ_k = clip(exp(s_z + cos α_k s_x + sin α_k s_y), 0.05, 1).

Geopotential, hydrostatic, integrated upwards from 1000 hPa (exact for that T):
    Φ_1000 = Φ_ISA(1000 hPa) + a0 Φ_c,  Φ_ISA(1000) = g · 110.9 m
    Φ_k = Φ_{k+1} + R_d (T_k + T_{k+1}) / 2 · ln(p_{k+1} / p_k)
so Φ_500 - Φ_1000 = R_d T̄ ln 2 with T̄ the ln p-trapezoid mean of T over 1000..500 hPa.

Winds (geostrophic in mid-latitudes, thermal wind included): each T term X_j with profile
coefficient x_{j,k} adds G_{j,k} X_j to Φ_k, with G_{j,k} = R_d · (ln-p trapezoid of x_j from
1000 hPa to p_k); its wind is G_{j,k} (u_g, v_g)(X_j), with
    u_g(X) = -(1/f̃) (1/a) ∂X/∂φ,  v_g(X) = (1/f̃) (1/(a cos φ)) ∂X/∂λ,
    1/f̃ = sin φ / (2Ω (sin²φ + sin²12°))   (1/f within 8 % poleward of 45°, 0 at the equator)
evaluated on θ smoothed by exp(-l(l+1)/(l₀(l₀+1))), l₀ = 16: the thermal wind balances the
synoptic-scale temperature field, fronts narrower than ~1000 km carry no extra wind. T_b's
thickness R_d Σ_j G_kj T_b,j is projected on the harmonics, smoothed likewise, and carries its
geostrophic wind too; and the core's own part is A_k (u_c, v_c) with A_k = a0 + G_{c,k} / R_d
scaled likewise. The small boundary-layer, latent and inversion terms (d, e, i) carry no wind.
The core's divergent wind is added as 10 b_k (u_χ, v_χ), b_k = cos(π ln(1000/p) / ln(1000/150))
(first baroclinic mode).

Humidity, kg kg⁻¹: q_k = RH_k q_sat(T_k, p_k) + q_strat,  RH_k = r_k χ^{n_k} ≤ 1,
    q_sat = ε e_s / (p - (1 - ε) e_s),   e_s = 6.112 exp(17.67 (T - 273.15) / (T - 29.65)) hPa
    q_strat = 2.5e-6 (1 + 0.01 θ2)   (the stratosphere's near-constant water vapour)

Surface, [H, W]:
    2m_temperature = T_1000 - 0.5 K + (1 - i_1000) T_inv
                     + ΔT_2m (0.2 + 0.8 L) cos φ cos(2π (h_local - 15 h) / 24 h)
    10 m wind = (0.75 - 0.2 L) R(α) (u, v)_1000,  α = 20° tanh(φ / 10°) (backing towards low
                pressure, Ekman turning), R(α) the anticlockwise rotation
    mean_sea_level_pressure = 1000 hPa · exp(Φ_1000 / (R_d (T_1000 + Γ Φ_1000 / (2 g))))  [Pa]
"""

from __future__ import annotations

import numpy as np

from pipeline.atmosphere import climatology, forcing
from pipeline.atmosphere.core import EARTH_ROTATION, AtmosphereConfig, CoreState
from pipeline.atmosphere.sht import SphericalGrid

GRAVITY = 9.80665  # g, m s⁻²
R_DRY = 287.05  # R_d, J kg⁻¹ K⁻¹
LAPSE_RATE = 6.5e-3  # Γ, K m⁻¹
EPSILON = 0.622  # R_d / R_v
LEVELS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)  # hPa, WB2's 13
CORE_SURFACE_FRACTION = 0.25  # a0, of the core's eddies
EDDY_TEMPERATURE = 0.12  # c'_k in the troposphere (per Φ_c eddy / R_d)
ZONAL_SURFACE_FRACTION = 0.05  # a0z, of the core's zonal mean (the surface belts are climatology)
EDDY_TILT = np.deg2rad(110.0)  # westward phase tilt of the eddies from 1000 to 250 hPa
SURFACE_INVERSION = 10.0  # ΔT_inv, K at screen level
INVERSION_AT_1000 = 0.4  # the share of it at 1000 hPa (~100 m up)
CALM_WIND = 6.0  # V_calm, m s⁻¹: inversions break up in stronger wind
BOUNDARY_LAYER_DIURNAL = 4.0  # ΔT_bl, K
SCREEN_DIURNAL = 3.0  # ΔT_2m, K
DIVERGENT_GAIN = 10.0  # the core's divergent wind is weak (gravity waves, tides)
LATENT_HEATING = 4.0  # K per unit χ at 600 hPa
F_FLOOR = np.sin(np.deg2rad(12.0)) ** 2
TROPOPAUSE_TROPICS = 100.0  # hPa
TROPOPAUSE_POLAR = 300.0  # hPa
TROPOPAUSE_SENSITIVITY = 0.2  # σ, in ln p per K of upper-tropospheric eddy temperature
TROPOPAUSE_RANGE = 0.4  # r, the largest lift or drop, in ln p
TROPOPAUSE_WIDTH = 0.08  # w, in ln p
STRATOSPHERE_WARMING = 0.15  # κ_s: T ∝ p^(-κ_s) above the tropical tropopause
THERMAL_WIND_SCALE = 16  # l₀ of the Gaussian filter exp(-l(l+1)/(l₀(l₀+1))) on θ for the winds


def tropopause(t: float, lat, upper_anomaly) -> tuple[np.ndarray, np.ndarray]:
    """(p_tp [H, W] in hPa, τ [H, 1]): the tropopause, ~100 hPa inside the tropopause break
    (τ = 1) and ~300 hPa poleward of it (τ = 0), lifted over a warm upper troposphere and
    lowered over a cold one (``upper_anomaly`` [H, W] in K, the eddies at 300 hPa)."""
    deg = np.asarray(lat, float)[:, None]
    x = np.abs(deg - forcing.thermal_equator(t) / 3.0)
    tropics = 0.5 * (1.0 - np.tanh((x - 32.0) / 8.0))
    ln_p = np.log(TROPOPAUSE_POLAR) - np.log(TROPOPAUSE_POLAR / TROPOPAUSE_TROPICS) * tropics
    lift = TROPOPAUSE_RANGE * np.tanh(TROPOPAUSE_SENSITIVITY * upper_anomaly / TROPOPAUSE_RANGE)
    return np.exp(ln_p - lift), tropics


def base_temperature(levels, p_tp, tropics) -> np.ndarray:
    """T_b [L, H, W] in K: the ISA lapse rate below the tropopause p_tp [H, W], above it
    isothermal outside the tropics and warming with height inside (τ [H, 1]):
        ln T_b = ln 288.15 K + κ (ln p_tp + w sp((ln p - ln p_tp)/w) - ln 1013.25 hPa)
                 + κ_s τ w sp((ln p_tp - ln p)/w),   sp(x) = ln(1 + eˣ),  κ = R_d Γ / g
    (w the width of the bend, κ_s the tropical lower stratosphere's warming)."""
    lnp = np.log(np.asarray(levels, float))[:, None, None]
    x = (lnp - np.log(p_tp)[None]) / TROPOPAUSE_WIDTH
    kappa = R_DRY * LAPSE_RATE / GRAVITY
    ln_t = (np.log(288.15) + kappa * (np.log(p_tp / 1013.25)[None]
                                      + TROPOPAUSE_WIDTH * np.logaddexp(0.0, x))
            + STRATOSPHERE_WARMING * tropics[None] * TROPOPAUSE_WIDTH * np.logaddexp(0.0, -x))
    return np.exp(ln_t)


def surface_inversion(t: float, lat, land, sun, speed) -> np.ndarray:
    """T_inv [H, W] in K (≤ 0) at screen level: radiative surface inversions, over land, in the
    winter hemisphere's high latitudes and at night, where the wind ``speed`` [H, W] is calm."""
    phi = np.deg2rad(np.asarray(lat, float))[:, None]
    winter = 0.5 * (1.0 - forcing.season(t) * np.tanh(np.rad2deg(phi) / 10.0))
    night = 1.0 - np.minimum(np.pi * sun, 1.0)
    cooling = (0.2 + 0.8 * land) * (winter * np.sin(phi) ** 2 + 0.5 * night)
    return -SURFACE_INVERSION * cooling * np.exp(-speed / CALM_WIND)


def profiles(levels=LEVELS) -> dict[str, np.ndarray]:
    """The level coefficients of every temperature term, each [L] (see the module docstring)."""
    p = np.asarray(levels, dtype=np.float64)
    lnp = np.log(p)
    troposphere = 1.0 / (1.0 + np.exp(-(lnp - np.log(180.0)) / 0.2))
    return {
        "core": 0.12 * troposphere - 0.04 * (1.0 - troposphere),  # c_k (per Φ_c / R_d)
        "eddy": EDDY_TEMPERATURE * troposphere - 0.04 * (1.0 - troposphere),  # c'_k
        "lower": np.exp(-((np.log(1000.0 / p) / 0.8) ** 2)),  # w1_k
        "upper": np.exp(-((np.log(p / 300.0) / 0.6) ** 2))
        - 0.3 * np.exp(-((np.log(p / 70.0) / 0.45) ** 2)),  # w2_k
        "boundary": np.exp(-((np.log(1000.0 / p) / 0.08) ** 2)),  # d_k
        "latent": LATENT_HEATING * np.exp(-((np.log(p / 600.0) / 0.4) ** 2)),  # e_k
        "stratosphere": np.exp(-((np.log(p / 50.0) / 0.7) ** 2)),  # s_k
        "inversion": INVERSION_AT_1000 * np.exp(-((np.log(1000.0 / p) / 0.06) ** 2)),  # i_k
        "rh_scale": 0.95 * (p / 1000.0) ** 0.6 * (troposphere + 0.003 * (1.0 - troposphere)),
        "rh_power": 1.0 + 2.0 * (1.0 - p / 1000.0),  # n_k
        "tilt": -EDDY_TILT * np.minimum(np.log(1000.0 / p), np.log(4.0)) / np.log(4.0),
        "baroclinic": np.cos(np.pi * np.log(1000.0 / p) / np.log(1000.0 / 150.0)),  # b_k
    }


def thickness_operator(levels=LEVELS) -> np.ndarray:
    """G [L, L]: Φ_k - Φ_1000 = R_d Σ_j G[k, j] T_j (ln-p trapezoid from the last level up).

    ``levels`` ascending in hPa, ending at the surface level (1000 hPa).
    """
    lnp = np.log(np.asarray(levels, dtype=np.float64))
    n = lnp.size
    g = np.zeros((n, n))
    for k in range(n - 2, -1, -1):
        g[k] = g[k + 1]
        half = 0.5 * (lnp[k + 1] - lnp[k])
        g[k, k] += half
        g[k, k + 1] += half
    return R_DRY * g


def saturation_specific_humidity(temperature, pressure_hpa) -> np.ndarray:
    """q_sat (kg kg⁻¹) from T (K) and p (hPa), Bolton's e_s over water."""
    e_s = 6.112 * np.exp(17.67 * (temperature - 273.15) / (temperature - 29.65))
    e_s = np.minimum(e_s, 0.5 * pressure_hpa)
    return EPSILON * e_s / (pressure_hpa - (1.0 - EPSILON) * e_s)


def _inverse_coriolis(lat) -> np.ndarray:
    s = np.sin(np.deg2rad(np.asarray(lat, float)))[:, None]
    return s / (2.0 * EARTH_ROTATION * (s * s + F_FLOOR))


def column_fields(state: CoreState, config: AtmosphereConfig, grid: SphericalGrid,
                  ) -> dict[str, np.ndarray]:
    """All variables on ``grid`` at ``state.time`` (float64): 4-D ones [13, H, W], others [H, W].

    ``grid`` must have ``lmax == config.lmax``.
    """
    t = state.time
    lat, lon = grid.latitude, grid.longitude
    phi = np.deg2rad(lat)[:, None]
    # the core split into its zonal mean (m = 0), its eddies and their quadrature (Hilbert in λ)
    zonal = grid.order == 0
    psi = grid.inverse_laplacian * state.vorticity
    quadrature = np.where(zonal, 0.0, -1.0j)
    u_c, v_c = grid.winds(psi, 0.0 * psi)
    u_z, v_z = grid.winds(np.where(zonal, psi, 0.0), 0.0 * psi)
    u_q, v_q = grid.winds(quadrature * psi, 0.0 * psi)
    height = grid.to_grid(state.geopotential)
    height_z = grid.to_grid(np.where(zonal, state.geopotential, 0.0))
    height_q = grid.to_grid(quadrature * state.geopotential)
    core = {"z": (height_z, u_z, v_z), "x": (height - height_z, u_c - u_z, v_c - v_z),
            "y": (height_q, u_q, v_q)}
    theta2, theta3 = (grid.to_grid(q) for q in state.tracers[1:3])
    land = forcing.land_fraction(lat, lon)
    sun = forcing.insolation(t, lat, lon)
    prof = profiles()
    tilt = prof["tilt"]
    # s's eddies tilt with height like the wave's: χ_k = exp(s_zonal + cos α_k s' + sin α_k Hs')
    s_parts = [grid.to_grid(np.where(zonal, state.tracers[3], 0.0)),
               grid.to_grid(np.where(zonal, 0.0, state.tracers[3])),
               grid.to_grid(quadrature * state.tracers[3])]
    log_moisture = (s_parts[0] + np.cos(tilt)[:, None, None] * s_parts[1]
                    + np.sin(tilt)[:, None, None] * s_parts[2])
    moisture = np.clip(np.exp(log_moisture), 0.05, 1.0)  # χ_k [L, H, W]
    levels = np.asarray(LEVELS, float)[:, None, None]
    c = {k: v[:, None, None] for k, v in prof.items()}

    boundary = BOUNDARY_LAYER_DIURNAL * (0.3 + 0.7 * land) * (sun - 1.0 / np.pi)
    weights = {"z": (ZONAL_SURFACE_FRACTION, prof["core"]),
               "x": (CORE_SURFACE_FRACTION * np.cos(tilt[-1]), prof["eddy"] * np.cos(tilt)),
               "y": (CORE_SURFACE_FRACTION * np.sin(tilt[-1]), prof["eddy"] * np.sin(tilt))}
    core_t = sum(weights[b][1][:, None, None] * core[b][0] for b in core) / R_DRY
    # θ1's eddies tilt with height like the core's: w1_k (θ1_zonal + cos α_k θ1' + sin α_k Hθ1')
    t1_alm = {"z": np.where(zonal, state.tracers[0], 0.0),
              "x": np.where(zonal, 0.0, state.tracers[0]), "y": quadrature * state.tracers[0]}
    t1_w = {"z": prof["lower"], "x": prof["lower"] * np.cos(tilt),
            "y": prof["lower"] * np.sin(tilt)}
    theta1_tilted = sum(t1_w[b][:, None, None] * grid.to_grid(t1_alm[b]) for b in t1_alm)
    k300 = LEVELS.index(300)
    upper = core_t[k300] + prof["upper"][k300] * theta2
    upper = upper - upper.mean(axis=1, keepdims=True)  # the weather's part: eddies
    base = base_temperature(LEVELS, *tropopause(t, lat, upper))
    temperature = (base + core_t + theta1_tilted
                   + c["upper"] * theta2 + c["boundary"] * boundary
                   + c["latent"] * (moisture - 0.5) + c["stratosphere"] * theta3)
    g = thickness_operator()  # [L, L]
    clim = climatology.zonal_fields(t, lat, LEVELS, g)  # T_z, Φ_z, ∂Φ_z/∂φ, v_z: [L, H, 1]
    land_t = (climatology.land_temperature(t, lat, land, LEVELS)
              + climatology.trade_inversion(t, lat, land, LEVELS))  # [L, H, W]
    geopotential = (GRAVITY * 110.9 + sum(weights[b][0] * core[b][0] for b in core)
                    + np.einsum("kj,jhw->khw", g, temperature + land_t) + clim["geopotential"])
    temperature = temperature + clim["temperature"] + land_t

    # winds: the core's part A_k (u_c, v_c) plus the thermal wind of θ1, θ2 and the stratosphere
    inv_f = _inverse_coriolis(lat)
    gains = {name: g @ prof[name] for name in ("core", "lower", "upper", "stratosphere")}
    u = -inv_f * clim["dphi_dlat"] / grid.radius
    v = clim["v"]
    for b, (_, u_b, v_b) in core.items():
        gain = (weights[b][0] + g @ weights[b][1] / R_DRY)[:, None, None]
        u = u + gain * u_b
        v = v + gain * v_b
    ll1 = grid.degree * (grid.degree + 1.0)
    smooth = np.exp(-ll1 / (THERMAL_WIND_SCALE * (THERMAL_WIND_SCALE + 1.0)))
    for b in t1_alm:
        gains["lower_" + b] = g @ t1_w[b]
    for name, field in (("lower_z", t1_alm["z"]), ("lower_x", t1_alm["x"]),
                        ("lower_y", t1_alm["y"]), ("upper", state.tracers[1]),
                        ("stratosphere", state.tracers[2])):
        dx, dy = grid.gradient(smooth * field)
        u = u - gains[name][:, None, None] * inv_f * dy
        v = v + gains[name][:, None, None] * inv_f * dx
    # the base temperature's thermal wind (the tropopause varies in space)
    base_phi = np.einsum("kj,jhw->khw", g, base)
    for k in range(len(LEVELS)):
        dx, dy = grid.gradient(smooth * grid.to_spectral(base_phi[k]))
        u[k] = u[k] - inv_f * dy
        v[k] = v[k] + inv_f * dx
    # the core's divergent wind, in the first baroclinic mode (inflow low, outflow aloft)
    u_d, v_d = grid.winds(0.0 * state.divergence, grid.inverse_laplacian * state.divergence)
    u = u + DIVERGENT_GAIN * prof["baroclinic"][:, None, None] * u_d
    v = v + DIVERGENT_GAIN * prof["baroclinic"][:, None, None] * v_d

    # the surface inversion (no wind, like the other boundary-layer terms)
    # |V| band-limited: a scalar synthesised from its coefficients is single-valued at the
    # poles, where the components u, v are not
    speed = grid.to_grid(grid.to_spectral(np.hypot(u[-1], v[-1])))
    inversion = surface_inversion(t, lat, land, sun, np.maximum(speed, 0.0))  # [H, W]
    temperature = temperature + c["inversion"] * inversion
    geopotential = geopotential + (g @ prof["inversion"])[:, None, None] * inversion
    rh = np.minimum(c["rh_scale"] * moisture ** c["rh_power"]
                    * climatology.humidity_multiplier(t, lat, land, LEVELS), 1.0)
    strat = climatology.layer_profiles(LEVELS)["st"][:, None, None]
    humidity = rh * saturation_specific_humidity(temperature, levels) + 2.5e-6 * (
        1.0 + 0.01 * theta2) * (1.0 + 0.4 * strat * np.sin(phi) ** 2)

    t1000, phi1000 = temperature[-1], geopotential[-1]
    local_hour = (t % forcing.DAY) / 3600.0 + lon[None, :] / 15.0
    screen = SCREEN_DIURNAL * (0.2 + 0.8 * land) * np.cos(phi) * np.cos(
        2.0 * np.pi * (local_hour - 15.0) / 24.0)
    t2m = t1000 - 0.5 + (1.0 - prof["inversion"][-1]) * inversion + screen
    turn = np.deg2rad(20.0) * np.tanh(np.rad2deg(phi) / 10.0)
    factor = 0.75 - 0.2 * land
    u10 = factor * (np.cos(turn) * u[-1] - np.sin(turn) * v[-1])
    v10 = factor * (np.sin(turn) * u[-1] + np.cos(turn) * v[-1])
    mslp = 1.0e5 * np.exp(phi1000 / (R_DRY * (t1000 + LAPSE_RATE * phi1000 / (2 * GRAVITY))))
    return {
        "geopotential": geopotential,
        "temperature": temperature,
        "u_component_of_wind": u,
        "v_component_of_wind": v,
        "specific_humidity": humidity,
        "2m_temperature": t2m,
        "10m_u_component_of_wind": u10,
        "10m_v_component_of_wind": v10,
        "mean_sea_level_pressure": mslp,
    }
