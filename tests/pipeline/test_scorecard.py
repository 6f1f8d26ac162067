"""The scoring driver and the scorecard it writes (scores.json, scorecard.csv, PNG curves)."""

import csv
import json

import numpy as np
import pytest
import torch

from pipeline.baselines import ClimatologyForecast, LinearAR, Persistence
from pipeline.climatology import Climatology, compute_climatology, open_climatology
from pipeline.datasets import WeatherWindows
from pipeline.errors import DataError
from pipeline.ingest import open_prepared
from pipeline.metrics import lat_weights
from pipeline.scorecard import (
    StepForecaster,
    channel_variable_level,
    score_forecasters,
    write_scorecard,
)
from tests.pipeline.helpers import small_prepared_store

LAT, LON = np.array([90.0, 30.0, -30.0, -90.0]), np.arange(0.0, 360.0, 60.0)  # 4 x 6
HOURS = [0, 6, 12, 18]
CHANNELS = ["geopotential_500", "2m_temperature"]
SIX_HOURS = 6 * 3600 * 10**9
START = np.datetime64("2021-03-01T00", "ns").astype(np.int64)


class SeriesWindows(torch.utils.data.Dataset):
    """WeatherWindows' samples over an in-memory series [T, C, H, W] of 6-hourly states."""

    def __init__(self, series: np.ndarray, history: int, lead_steps: int):
        self.series = torch.as_tensor(series, dtype=torch.float32)
        self.history, self.lead_steps = history, lead_steps

    def __len__(self):
        return max(0, len(self.series) - self.history - self.lead_steps + 1)

    def __getitem__(self, i):
        t = i + self.history - 1
        return (self.series[t - self.history + 1:t + 1],
                self.series[t + 1:t + 1 + self.lead_steps],
                torch.tensor(START + t * SIX_HOURS))


def linear_series(n_steps=10):
    """x[t] = base + t · pattern: [T, C=2, H=4, W=6], a different pattern per channel."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 4, 6)) + np.array([5000.0, 280.0])[:, None, None]
    pattern = rng.uniform(0.5, 1.5, size=(2, 4, 6)) * np.array([10.0, 1.0])[:, None, None]
    return base + np.arange(n_steps)[:, None, None, None] * pattern, base, pattern


def climatology_by_hour(base) -> Climatology:
    """base + 100·(hour index + 1): differs at every hour, so a wrong valid time shows."""
    mean = np.empty((366, 4, *base.shape), np.float32)
    for h in range(4):
        mean[:, h] = base + 100.0 * (h + 1)
    return Climatology(mean, HOURS, CHANNELS, LAT, LON)


def test_truth_plus_c_scores_rmse_c_and_bias_c_at_every_lead():
    series, base, _ = linear_series()
    c = 0.5

    def truth_plus_c(x_t, x_prev, time_ns):  # knows the truth at the valid time of x_{t+1}
        t = (time_ns.numpy() - START) // SIX_HOURS + 1
        return torch.as_tensor(series[t] + c, dtype=torch.float32)

    forecaster = StepForecaster("plus_c", truth_plus_c)
    scores = score_forecasters(SeriesWindows(series, 1, 3), [forecaster], CHANNELS, LAT,
                               climatology_by_hour(base), step_hours=6)
    assert scores.lead_hours == [6.0, 12.0, 18.0] and scores.n_forecasts == 7
    np.testing.assert_allclose(scores.rmse[0], c, rtol=1e-4)  # float32 states at ~5000
    np.testing.assert_allclose(scores.bias[0], c, rtol=1e-4)


def test_persistence_at_lead_k_is_the_state_at_t_and_rollouts_get_x_prev():
    series, base, pattern = linear_series()
    extrapolate = StepForecaster("extrapolate", lambda x, prev, t: 2 * x - prev, history=2)
    scores = score_forecasters(SeriesWindows(series, 2, 3), [Persistence(), extrapolate],
                               CHANNELS, LAT, climatology_by_hour(base), step_hours=6)
    w = lat_weights(LAT)[:, None]
    for k in (1, 2, 3):  # persistence error at lead k: x_t − x_{t+k} = −k · pattern
        expected = np.sqrt((w * (k * pattern) ** 2).mean(axis=(1, 2)))
        np.testing.assert_allclose(scores.rmse[0, k - 1], expected, rtol=1e-5)
        np.testing.assert_allclose(scores.bias[0, k - 1], -k * (w * pattern).mean(axis=(1, 2)),
                                   rtol=1e-5)
    # 2 x_t − x_{t-1} is exact on a linear series only if x_prev is inputs[-2], then the
    # forecaster's own previous state
    assert np.abs(scores.rmse[1]).max() < 1e-2 * np.abs(scores.rmse[0]).min()


def test_climatology_forecast_is_scored_against_the_valid_time_climatology():
    series, base, _ = linear_series()
    clim = climatology_by_hour(base)
    scores = score_forecasters(SeriesWindows(series, 1, 2),
                               [ClimatologyForecast(clim, CHANNELS, 6)], CHANNELS, LAT, clim,
                               step_hours=6)
    assert np.isnan(scores.acc).all()  # its anomaly is zero at the valid time: ACC undefined
    assert all(v is None for v in (scores.value("acc", "climatology", c, 0) for c in CHANNELS))


def test_bad_inputs_raise_clear_errors():
    series, base, _ = linear_series()
    clim = climatology_by_hour(base)
    ds = SeriesWindows(series, 1, 2)
    with pytest.raises(DataError, match="channels.*temperature_850"):
        score_forecasters(ds, [Persistence()], ["geopotential_500", "temperature_850"], LAT,
                          clim, step_hours=6)
    with pytest.raises(DataError, match="period.*at least one forecast window"):
        score_forecasters(SeriesWindows(series[:2], 1, 2), [Persistence()], CHANNELS, LAT, clim,
                          step_hours=6)
    other_grid = Climatology(clim.mean, HOURS, CHANNELS, [80.0, 30.0, -30.0, -80.0], LON)
    with pytest.raises(DataError, match="latitude/longitude"):
        score_forecasters(ds, [Persistence()], CHANNELS, LAT, other_grid, step_hours=6)
    with pytest.raises(DataError, match="inputs.*C=1"):
        score_forecasters(ds, [Persistence()], CHANNELS[:1], LAT, clim, step_hours=6)
    with pytest.raises(ValueError, match="history=2"):
        ar = LinearAR(np.zeros((2, 4, 6)), np.zeros((2, 4, 6)), clim, CHANNELS, 6)
        score_forecasters(ds, [ar], CHANNELS, LAT, clim, step_hours=6)
    with pytest.raises(ValueError, match="distinct names"):
        score_forecasters(ds, [Persistence(), Persistence()], CHANNELS, LAT, clim, step_hours=6)
    bad_shape = StepForecaster("bad", lambda x, prev, t: x[:, :1])
    with pytest.raises(ValueError, match="'bad'.*shape"):
        score_forecasters(ds, [bad_shape], CHANNELS, LAT, clim, step_hours=6)


def test_channel_names_give_variable_and_level():
    assert channel_variable_level("geopotential_500") == ("geopotential", 500.0)
    assert channel_variable_level("temperature_2.5") == ("temperature", 2.5)
    assert channel_variable_level("2m_temperature") == ("2m_temperature", None)
    assert channel_variable_level("10m_u_component_of_wind") == ("10m_u_component_of_wind", None)


def test_csv_and_json_agree_and_are_written_atomically(tmp_path):
    series, base, _ = linear_series()
    clim = climatology_by_hour(base)
    forecasters = [Persistence(), ClimatologyForecast(clim, CHANNELS, 6)]
    scores = score_forecasters(SeriesWindows(series, 1, 3), forecasters, CHANNELS, LAT, clim,
                               step_hours=6)
    paths = write_scorecard(tmp_path, scores, meta={"test_period": ["a", "b"]})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scorecard.csv", "scores.json", "scores_by_lead.png"]  # no temporary files left
    assert paths["png"].stat().st_size > 10_000

    def no_nan(token):
        raise AssertionError(f"{token} in scores.json (not JSON)")

    doc = json.loads(paths["json"].read_text(), parse_constant=no_nan)
    assert doc["lead_time_hours"] == [6.0, 12.0, 18.0] and doc["n_forecasts"] == 7
    assert doc["run"] == {"test_period": ["a", "b"]} and "acc" in doc["conventions"]
    assert doc["channels"]["geopotential_500"] == {"variable": "geopotential", "level_hpa": 500.0}
    with open(paths["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3  # forecasters × channels × leads
    for row in rows:
        lead = f"{float(row['lead_time_hours']):g}"
        cell = doc["scores"][row["forecaster"]][row["channel"]][lead]
        for m in ("rmse", "acc", "bias"):
            assert (cell[m] is None) if row[m] == "" else (float(row[m]) == cell[m]), (row, m)
        assert int(row["n_forecasts"]) == 7
    first = doc["variables"]["2m_temperature"]["rmse"]
    assert first["persistence"] == doc["scores"]["persistence"]["2m_temperature"]["6"]["rmse"]


# -- end to end on a prepared store -------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorecard")
    small_prepared_store(root, ("geopotential@500", "2m_temperature"),
                         ("2020-01-01", "2020-01-12T18"), ("2020-01-01", "2020-01-08T18"))
    clim = open_climatology(compute_climatology(root / "prepared.zarr", root / "clim.zarr"))
    return root / "prepared.zarr", clim


def test_every_baseline_on_a_prepared_store(store):
    path, clim = store
    prepared = open_prepared(path)
    ds = WeatherWindows(path, ("2020-01-09", "2020-01-12T18"), history=2, lead_steps=3)
    forecasters = [Persistence(), ClimatologyForecast(clim, prepared.channels, 6),
                   LinearAR.fit(path, clim)]
    scores = score_forecasters(ds, forecasters, prepared.channels, prepared.lat, clim,
                               step_hours=prepared.time_step_hours, max_samples=5, batch_size=2)
    assert scores.n_forecasts == 5 and scores.init_times[0] == "2020-01-09T06:00:00.000000000"
    # persistence at lead k against the stored states themselves
    data = np.asarray(prepared.data[:], dtype=np.float64)
    starts = np.searchsorted(prepared.times, ds.times[:5])
    w = lat_weights(prepared.lat)[:, None]
    for k in (1, 2, 3):
        err = data[starts] - data[starts + k]  # [5, C, H, W]
        np.testing.assert_allclose(scores.rmse[0, k - 1],
                                   np.sqrt((w * err**2).mean(axis=(2, 3)).mean(axis=0)), rtol=1e-6)
    assert np.isfinite(scores.rmse).all() and np.isnan(scores.acc[1]).all()
    assert np.isfinite(scores.acc[[0, 2]]).all()
    assert (scores.rmse[0] > 0).all() and (scores.rmse[0, 0] < scores.rmse[0, 2]).all()


def test_a_period_without_windows_is_an_error(store):
    path, clim = store
    prepared = open_prepared(path)
    ds = WeatherWindows(path, ("2020-01-12T12", "2020-01-12T18"), history=2, lead_steps=3)
    with pytest.raises(DataError, match="period"):
        score_forecasters(ds, [Persistence()], prepared.channels, prepared.lat, clim,
                          step_hours=6)


def test_init_stride_scores_every_strideth_window(store):
    """init_stride 3: the init times are windows 0, 3, 6, … and persistence scores equal
    those computed from exactly those states."""
    path, clim = store
    prepared = open_prepared(path)
    ds = WeatherWindows(path, ("2020-01-09", "2020-01-12T18"), history=2, lead_steps=2)
    scores = score_forecasters(ds, [Persistence()], prepared.channels, prepared.lat, clim,
                               step_hours=prepared.time_step_hours, init_stride=3, batch_size=2)
    picked = ds.times[::3]
    assert scores.n_forecasts == len(picked) == -(-len(ds) // 3)
    assert scores.init_times == [str(picked[0]), str(picked[-1])]
    data = np.asarray(prepared.data[:], dtype=np.float64)
    starts = np.searchsorted(prepared.times, picked)
    w = lat_weights(prepared.lat)[:, None]
    err = data[starts] - data[starts + 2]
    np.testing.assert_allclose(scores.rmse[0, 1],
                               np.sqrt((w * err**2).mean(axis=(2, 3)).mean(axis=0)), rtol=1e-6)
    capped = score_forecasters(ds, [Persistence()], prepared.channels, prepared.lat, clim,
                               step_hours=prepared.time_step_hours, init_stride=3, max_samples=2)
    assert capped.n_forecasts == 2 and capped.init_times[1] == str(picked[1])
    with pytest.raises(ValueError, match="init_stride"):
        score_forecasters(ds, [Persistence()], prepared.channels, prepared.lat, clim,
                          step_hours=prepared.time_step_hours, init_stride=0)
