"""Baseline forecasters: persistence, climatology, and the pointwise linear AR on anomalies."""

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pipeline.baselines import (
    ClimatologyForecast,
    LinearAR,
    Persistence,
    fit_linear_ar,
)
from pipeline.climatology import Climatology
from pipeline.errors import DataError
from pipeline.ingest import prepare_weather

LAT, LON = np.array([90.0, 30.0, -30.0, -90.0]), np.arange(0.0, 360.0, 60.0)  # 4 x 6, global
HOURS = [0, 6, 12, 18]


def constant_climatology(values, channels) -> Climatology:
    """A climatology equal to values[c] at every day, hour and grid point."""
    mean = np.broadcast_to(np.asarray(values, np.float32)[None, None, :, None, None],
                           (366, len(HOURS), len(channels), len(LAT), len(LON)))
    return Climatology(mean, HOURS, channels, LAT, LON)


def ar2_series(a, b, n_steps, rng, noise=1.0, start=(1.0, 0.5)):
    """x'_{t+1} = a x'_t + b x'_{t-1} + noise·ε_t, per point: a, b [*shape] → [n_steps, *shape]."""
    x = np.zeros((n_steps, *np.shape(a)))
    x[0], x[1] = start
    for t in range(1, n_steps - 1):
        x[t + 1] = a * x[t] + b * x[t - 1] + noise * rng.normal(size=np.shape(a))
    return x


def test_persistence_returns_the_initial_state():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert torch.equal(Persistence().step(x, None, torch.tensor([0])), x)


def test_climatology_forecast_is_the_climatology_at_the_valid_time():
    mean = np.zeros((366, 4, 1, len(LAT), len(LON)), np.float32)
    mean[31, 1] = 7.0  # day 32 (1 February), 06 UTC
    clim = Climatology(mean, HOURS, ["2m_temperature"], LAT, LON)
    forecaster = ClimatologyForecast(clim, ["2m_temperature"], step_hours=6)
    init = np.array(["2021-02-01T00"], dtype="datetime64[ns]").astype(np.int64)
    out = forecaster.step(torch.zeros(1, 1, 4, 6), None, torch.from_numpy(init))
    assert out.shape == (1, 1, 4, 6) and torch.all(out == 7.0)  # valid 06 UTC, not 00 UTC
    with pytest.raises(DataError, match="channels"):
        ClimatologyForecast(clim, ["geopotential_500"], step_hours=6)


def test_linear_ar_step_by_hand():
    mean = np.empty((366, 4, 1, len(LAT), len(LON)), np.float32)
    mean[:, :] = np.array([10.0, 11.0, 12.0, 13.0])[:, None, None, None]  # by hour 0, 6, 12, 18
    clim = Climatology(mean, HOURS, ["2m_temperature"], LAT, LON)
    a, b = np.full((1, 4, 6), 0.5), np.full((1, 4, 6), 0.25)
    ar = LinearAR(a, b, clim, ["2m_temperature"], step_hours=6)
    x_t, x_prev = torch.full((2, 1, 4, 6), 14.0), torch.full((2, 1, 4, 6), 12.0)
    t = torch.from_numpy(np.array(["2021-05-01T06"] * 2, dtype="datetime64[ns]").astype(np.int64))
    out = ar.step(x_t, x_prev, t)  # x_t at 06 UTC, x_prev at 00 UTC, forecast valid at 12 UTC
    assert torch.allclose(out, torch.tensor(12.0 + 0.5 * (14 - 11) + 0.25 * (12 - 10)))
    with pytest.raises(ValueError, match="history=2"):
        ar.step(x_t, None, t)


def test_linear_ar_recovers_known_coefficients_exactly_without_noise():
    a = np.array([[0.9, 1.6], [0.5, -0.3]])  # includes an oscillating (complex-root) pair
    b = np.array([[0.05, -0.8], [0.3, 0.2]])
    x = ar2_series(a, b, 40, np.random.default_rng(0), noise=0.0)
    got_a, got_b = fit_linear_ar(x)
    np.testing.assert_allclose(got_a, a, atol=1e-8)
    np.testing.assert_allclose(got_b, b, atol=1e-8)


def test_linear_ar_recovers_known_coefficients_from_noisy_data():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.2, 0.8, size=(2, 3)), rng.uniform(-0.5, 0.15, size=(2, 3))
    got_a, got_b = fit_linear_ar(ar2_series(a, b, 4000, rng))
    # standard errors ≈ sqrt((1 - b²)/T) ≈ 0.016 at T = 4000
    np.testing.assert_allclose(got_a, a, atol=0.06)
    np.testing.assert_allclose(got_b, b, atol=0.06)


def test_collinear_or_empty_anomalies_fall_back_to_ar1_then_climatology():
    constant = np.full((10, 1), 3.0)  # x'_t = x'_{t-1}: one regressor → AR(1), a = 1
    zero = np.zeros((10, 1))  # no anomaly at all → the climatology (a = b = 0)
    a, b = fit_linear_ar(np.concatenate([constant, zero], axis=1))
    np.testing.assert_allclose(a, [1.0, 0.0])
    np.testing.assert_allclose(b, [0.0, 0.0])
    with pytest.raises(ValueError, match="at least 3"):
        fit_linear_ar(np.zeros((2, 1)))


@pytest.fixture(scope="module")
def ar_store(tmp_path_factory):
    """A prepared store whose 2m temperature is 280 K + noise-free AR(2) anomalies with known
    a = 2r cos θ, b = −r² per point (slowly damped oscillations, r in 0.9..0.99: 60 steps keep
    them well above float32's resolution at 280 K)."""
    root = tmp_path_factory.mktemp("ar")
    rng = np.random.default_rng(2)
    r = rng.uniform(0.9, 0.99, size=(len(LAT), len(LON)))
    theta = rng.uniform(0.2, 1.2, size=(len(LAT), len(LON)))
    a, b = 2 * r * np.cos(theta), -(r**2)
    x = 280.0 + ar2_series(a, b, 60, rng, noise=0.0, start=(3.0, -2.0))
    times = pd.date_range("2020-01-01", periods=60, freq="6h")
    ds = xr.Dataset({"2m_temperature": (("time", "latitude", "longitude"), x.astype(np.float32))},
                    coords={"time": times, "latitude": LAT, "longitude": LON})
    ds.to_zarr(root / "src.zarr", zarr_format=3, consolidated=False,
               encoding={"2m_temperature": {"chunks": (1, len(LAT), len(LON))}})
    train = (str(times[0]), str(times[49]))
    prepare_weather(root / "src.zarr", root / "prepared.zarr", variables=["2m_temperature"],
                    train_period=train)
    return root / "prepared.zarr", a, b


def test_linear_ar_fit_on_a_prepared_store_recovers_its_coefficients(ar_store):
    path, a, b = ar_store
    ar = LinearAR.fit(path, constant_climatology([280.0], ["2m_temperature"]))
    # float32 storage of 280 + x' (resolution 3e-5 K) is the only error: ~1e-6 here
    np.testing.assert_allclose(ar.a.numpy()[0], a, atol=1e-4)
    np.testing.assert_allclose(ar.b.numpy()[0], b, atol=1e-4)
    with pytest.raises(DataError, match="channels"):
        LinearAR.fit(path, constant_climatology([280.0], ["2m_temperature"]),
                     channels=["geopotential_500"])
    with pytest.raises(DataError, match="train_period"):
        LinearAR.fit(path, constant_climatology([280.0], ["2m_temperature"]),
                     train_period=("2020-01-01T00", "2020-01-01T06"))
