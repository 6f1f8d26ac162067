"""The synthetic ERA5-style store: layout, determinism, atomic writes, and real dynamics."""

import numpy as np
import pytest
import xarray as xr

from pipeline import synthetic
from pipeline.synthetic import (
    DEFAULT_PERIODS,
    EARTH_RADIUS,
    EARTH_ROTATION,
    R_DRY,
    RossbyHaurwitzWave,
    nondivergent_wind,
    streamfunction,
    write_synthetic_era5,
)

OMEGA = 2.0e-6  # the module's super-rotation, restated so the phase-speed checks are independent
SMALL = {"start": "2020-01-01", "end": "2020-01-05T18", "n_lat": 16, "n_lon": 32}


def open_store(path) -> xr.Dataset:
    return xr.open_zarr(path, consolidated=False, chunks=None).load()


@pytest.fixture(scope="module")
def era5(tmp_path_factory):
    """The default-size store, written once for the module."""
    return open_store(write_synthetic_era5(tmp_path_factory.mktemp("synthetic") / "era5.zarr"))


def linear_phase_speed(n, omega=OMEGA):
    """ν = [n(n+1)ω - 2(Ω+ω)] / [n(n+1)] (Haurwitz 1940), rad s⁻¹."""
    return (n * (n + 1) * omega - 2 * (EARTH_ROTATION + omega)) / (n * (n + 1))


def ddphi(x, lat_deg):
    return np.gradient(x, np.deg2rad(lat_deg), axis=-2)


def ddlam(x, lon_deg):
    step = np.deg2rad(lon_deg[1] - lon_deg[0])
    return (np.roll(x, -1, axis=-1) - np.roll(x, 1, axis=-1)) / (2 * step)


def interior_rms(x):
    """RMS over [T, H, W] without the pole rows, where 1/cos φ amplifies rounding."""
    return np.sqrt(np.mean(x[:, 1:-1] ** 2))


def test_layout_units_and_physical_ranges(era5):
    assert dict(era5.sizes) == {"time": 240, "level": 2, "latitude": 32, "longitude": 64}
    np.testing.assert_array_equal(era5.latitude, np.linspace(90, -90, 32))
    np.testing.assert_array_equal(era5.longitude, np.arange(64) * 5.625)
    assert era5.level.values.tolist() == [500, 850]
    assert era5.time.values[0] == np.datetime64("2020-01-01T00")
    assert era5.time.values[-1] == np.datetime64("2020-02-29T18")
    assert np.all(np.diff(era5.time.values) == np.timedelta64(6, "h"))
    units = {"geopotential": "m**2 s**-2", "temperature": "K", "u_component_of_wind": "m s**-1",
             "v_component_of_wind": "m s**-1", "2m_temperature": "K"}
    for name, unit in units.items():
        var = era5[name]
        assert var.dtype == np.float32 and var.attrs["units"] == unit and var.attrs["long_name"]
        assert np.isfinite(var.values).all(), name
    assert era5["2m_temperature"].dims == ("time", "latitude", "longitude")
    assert era5.attrs["seed"] == 0 and len(era5.attrs["waves"]) == 4

    t500 = era5.temperature.sel(level=500)
    assert 225 < float(t500.min()) and float(t500.max()) < 275
    assert 220 < float(era5["2m_temperature"].min())
    assert float(era5["2m_temperature"].max()) < 320
    assert float(abs(era5.u_component_of_wind).max()) < 80
    assert float(abs(era5.v_component_of_wind).max()) < 80
    z_mean = era5.geopotential.weighted(np.cos(np.deg2rad(era5.latitude))).mean(
        ("time", "latitude", "longitude"))
    np.testing.assert_allclose(z_mean, [5.47e4, 1.43e4], rtol=0.02)
    # Poles lower than the equator; the flow stronger at 500 than at 850 hPa.
    zonal_z = era5.geopotential.mean(("time", "longitude"))
    assert (zonal_z.isel(latitude=[0, -1]) < zonal_z.isel(latitude=16)).all()
    speed = np.hypot(era5.u_component_of_wind, era5.v_component_of_wind).mean(
        ("time", "latitude", "longitude"))
    assert float(speed.sel(level=500)) > 1.5 * float(speed.sel(level=850))


def test_default_periods_tile_the_default_range(era5):
    times = era5.time.to_index()
    counts = {k: len(times[times.slice_indexer(*v)]) for k, v in DEFAULT_PERIODS.items()}
    assert counts == {"train": 160, "val": 40, "test": 40}


def test_same_arguments_give_identical_arrays(tmp_path, era5):
    again = open_store(write_synthetic_era5(tmp_path / "again.zarr"))
    for name in era5.variables:
        assert np.array_equal(era5[name].values, again[name].values), name
    other = open_store(write_synthetic_era5(tmp_path / "seed1.zarr", seed=1))
    assert not np.array_equal(era5.geopotential.values, other.geopotential.values)


def test_fields_depend_on_the_date_not_on_the_start_argument(tmp_path, era5):
    january = open_store(write_synthetic_era5(tmp_path / "jan.zarr", start="2020-01-10",
                                              end="2020-01-31T18"))
    same = era5.sel(time=january.time)
    for name in january.data_vars:
        assert np.array_equal(january[name].values, same[name].values), name


def test_chunks_hold_one_time_step(tmp_path):
    path = write_synthetic_era5(tmp_path / "s.zarr", **SMALL)
    ds = xr.open_zarr(path, consolidated=False)
    assert ds.geopotential.encoding["chunks"] == (1, 2, 16, 32)
    assert ds["2m_temperature"].encoding["chunks"] == (1, 16, 32)


def test_single_wave_drifts_at_the_linear_phase_speed():
    wave = RossbyHaurwitzWave(m=4, n=5, amplitude=2e-7, phase=0.3)
    lat, lon = np.linspace(90, -90, 19), np.arange(36) * 10.0
    dt = 6 * 3600.0
    now, later = streamfunction(lat, lon, [0.0, dt], [wave])
    shift = np.rad2deg(linear_phase_speed(5) * dt)  # degrees east moved in 6 h
    (rotated,) = streamfunction(lat, lon - shift, [0.0], [wave])
    assert np.sqrt(np.mean((later - now) ** 2)) > 1e-3 * np.abs(now).max()  # it moves
    np.testing.assert_allclose(later, rotated, rtol=0, atol=1e-9 * np.abs(now).max())


def test_geopotential_is_predicted_by_rotating_each_wave(era5):
    """Each zonal wavenumber m of Φ₅₀₀ moves by m ν Δt and scales by A(t+Δt)/A(t)."""
    waves = [RossbyHaurwitzWave(**w) for w in era5.attrs["waves"]]
    z = era5.geopotential.sel(level=500).values.astype(np.float64)  # [T, H, W]
    seconds = (era5.time.values - np.datetime64("2020-01-01")) / np.timedelta64(1, "s")
    dt = 6 * 3600.0
    spectrum = np.fft.rfft(z[:-1], axis=-1)  # [T-1, H, W/2+1]
    for w in waves:
        depth, tau, beta = w.modulation_depth, w.modulation_period_days * 86400, w.modulation_phase
        amp = 1 + depth * np.sin(2 * np.pi * seconds / tau + beta)  # [T]
        factor = amp[1:] / amp[:-1] * np.exp(-1j * w.m * linear_phase_speed(w.n) * dt)
        spectrum[:, :, w.m] *= factor[:, None]
    predicted = np.fft.irfft(spectrum, n=z.shape[-1], axis=-1)
    persistence = np.sqrt(np.mean((z[1:] - z[:-1]) ** 2))
    error = np.sqrt(np.mean((z[1:] - predicted) ** 2))
    assert persistence > 50.0  # m² s⁻², the pattern really moves in 6 h
    assert error < 1e-3 * persistence


def test_wind_is_nondivergent(era5):
    lat, lon = era5.latitude.values, era5.longitude.values
    u = era5.u_component_of_wind.sel(level=500).values.astype(np.float64)
    v = era5.v_component_of_wind.sel(level=500).values.astype(np.float64)
    cos = np.cos(np.deg2rad(lat))[:, None]
    # D = [∂u/∂λ + ∂(v cos φ)/∂φ] / (a cos φ),  ζ = [∂v/∂λ - ∂(u cos φ)/∂φ] / (a cos φ)
    div = (ddlam(u, lon) + ddphi(v * cos, lat)) / (EARTH_RADIUS * cos)
    vort = (ddlam(v, lon) - ddphi(u * cos, lat)) / (EARTH_RADIUS * cos)
    swapped = (ddlam(v, lon) + ddphi(u * cos, lat)) / (EARTH_RADIUS * cos)  # a divergent control
    assert interior_rms(div) < 0.05 * interior_rms(vort)  # second-order truncation error only
    assert interior_rms(swapped) > 0.3 * interior_rms(vort)


def test_wind_at_the_poles_is_finite_and_zero():
    wave = RossbyHaurwitzWave(m=2, n=3, amplitude=2e-7, phase=1.0)
    u, v = nondivergent_wind([90.0, 45.0, -90.0], np.arange(8) * 45.0, [0.0, 3600.0], [wave])
    assert np.isfinite(u).all() and np.isfinite(v).all()
    np.testing.assert_allclose(v[:, [0, 2]], 0.0, atol=1e-12)
    np.testing.assert_allclose(u[:, [0, 2]], 0.0, atol=1e-6)  # a ω cos φ ≈ 1e-15 at the pole


def test_wind_is_geostrophic_with_geopotential(era5):
    lat = era5.latitude.values
    z = era5.geopotential.values.astype(np.float64)  # [T, L, H, W]
    u = era5.u_component_of_wind.values
    f = 2 * EARTH_ROTATION * np.sin(np.deg2rad(lat))[:, None]
    u_geostrophic = -ddphi(z, lat) / (f * EARTH_RADIUS)
    extratropics = (np.abs(lat) > 20) & (np.abs(lat) < 70)
    r = np.corrcoef(u_geostrophic[:, :, extratropics].ravel(), u[:, :, extratropics].ravel())
    assert r[0, 1] > 0.8


def test_temperature_obeys_the_hypsometric_relation(era5):
    z, t = era5.geopotential, era5.temperature
    thickness_t = (z.sel(level=500) - z.sel(level=850)) / (R_DRY * np.log(850 / 500))
    low = np.minimum(t.sel(level=500), t.sel(level=850))
    high = np.maximum(t.sel(level=500), t.sel(level=850))
    assert bool(((thickness_t > low - 0.01) & (thickness_t < high + 0.01)).all())
    assert bool((t.sel(level=850) > t.sel(level=500) + 15).all())  # lapse rate


def test_2m_temperature_peaks_in_the_local_afternoon(era5):
    equator = era5.sel(latitude=[era5.latitude.values[15], era5.latitude.values[16]])
    diurnal = (equator["2m_temperature"] - equator.temperature.sel(level=850)).mean("latitude")
    warmest_lon = era5.longitude.values[diurnal.argmax("longitude").values]  # [T]
    utc_hour = era5.time.dt.hour.values
    local_hour = (utc_hour + warmest_lon / 15) % 24
    assert np.all(np.abs(local_hour - 15) <= 0.5 * 360 / 64 / 15 + 1e-9)


def test_existing_path_needs_overwrite(tmp_path):
    path = write_synthetic_era5(tmp_path / "s.zarr", **SMALL)
    with pytest.raises(FileExistsError):
        write_synthetic_era5(path, **SMALL)
    write_synthetic_era5(path, **SMALL, seed=3, overwrite=True)
    assert open_store(path).attrs["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    real_to_zarr = xr.Dataset.to_zarr

    def write_then_fail(self, *args, **kwargs):
        real_to_zarr(self, *args, **kwargs)  # the temporary store is fully written ...
        raise KeyboardInterrupt  # ... and then the process is interrupted

    monkeypatch.setattr(xr.Dataset, "to_zarr", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        synthetic.write_synthetic_era5(tmp_path / "s.zarr", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_extending_a_store_equals_writing_the_longer_span(tmp_path):
    from pipeline.errors import DataError
    from pipeline.synthetic import extend_synthetic_era5, write_synthetic_era5

    short = write_synthetic_era5(tmp_path / "short.zarr", start="2020-01-01",
                                 end="2020-01-02T18", n_lat=8, n_lon=16, seed=3)
    long = write_synthetic_era5(tmp_path / "long.zarr", start="2020-01-01",
                                end="2020-01-04T00", n_lat=8, n_lon=16, seed=3)
    extend_synthetic_era5(short, "2020-01-04T00")
    a = xr.open_zarr(short, consolidated=False).load()
    b = xr.open_zarr(long, consolidated=False).load()
    assert a.identical(b)
    before = (short / "zarr.json").read_bytes()
    extend_synthetic_era5(short, "2020-01-03")  # already covered: untouched
    assert (short / "zarr.json").read_bytes() == before
    with pytest.raises(DataError, match="write_synthetic_era5"):
        extend_synthetic_era5(tmp_path / "absent.zarr", "2020-01-05")
