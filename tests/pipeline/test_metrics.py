import numpy as np
import pytest

from pipeline.metrics import (
    LeadTimeScores,
    WeightedErrorAccumulator,
    anomaly_correlation,
    lat_weights,
)


def test_lat_weights_are_wb2_cell_areas_by_hand():
    # latitudes 90, 0, -90: edges 90, 45, -45, -90 → sin differences 1 - √½, √2, 1 - √½
    w = lat_weights(np.array([90.0, 0.0, -90.0]))
    areas = np.array([1 - np.sqrt(0.5), np.sqrt(2), 1 - np.sqrt(0.5)])
    np.testing.assert_allclose(w, areas / areas.mean(), rtol=1e-12)
    assert w[0] > 0  # a pole row is a half cell, not weightless
    np.testing.assert_allclose(lat_weights(np.array([-45.0, 45.0])), [1.0, 1.0])


def test_weighted_rmse_and_bias_by_hand():
    acc = WeightedErrorAccumulator(np.array([45.0, -45.0]), n_channels=1)
    truth = np.zeros((1, 2, 2))
    acc.add(np.full((1, 2, 2), 2.0), truth)   # error 2 everywhere
    acc.add(np.zeros((1, 2, 2)), truth)       # error 0
    # RMSE = sqrt(time mean of weighted MSE) = sqrt((4 + 0) / 2); bias = (2 + 0) / 2
    assert acc.rmse()[0] == pytest.approx(np.sqrt(2.0))
    assert acc.bias()[0] == pytest.approx(1.0)


# Cell areas of latitudes 90, 0, -90 (edges 90, 45, -45, -90), before normalisation.
POLE, EQUATOR = 1 - np.sqrt(0.5), np.sqrt(2.0)


def test_acc_of_a_known_anomaly_pair_by_hand():
    lat = np.array([90.0, 0.0, -90.0])
    f_anom = np.array([[1.0, 0.0], [2.0, -1.0], [0.0, 1.0]])  # [H=3, W=2]
    o_anom = np.array([[1.0, 1.0], [1.0, 0.0], [-1.0, 1.0]])
    clim = np.array([[280.0, 281.0], [300.0, 299.0], [250.0, 251.0]])
    a, b = POLE, EQUATOR  # row weights; their normalisation cancels in the ratio
    # Σ w f'o' = a(1 + 0) + b(2 + 0) + a(0 + 1);  Σ w f'² = a(1) + b(4 + 1) + a(1);
    # Σ w o'² = a(1 + 1) + b(1) + a(1 + 1)
    expected = (2 * a + 2 * b) / np.sqrt((2 * a + 5 * b) * (4 * a + b))
    got = anomaly_correlation(clim + f_anom, clim + o_anom, clim, lat)
    assert got == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 0.9  # a value that an unweighted or centred formula would miss
    unweighted = (2 + 2) / np.sqrt((2 + 5) * (4 + 1))
    assert abs(expected - unweighted) > 1e-3


def test_acc_is_the_mean_over_init_times_of_per_time_values():
    lat = np.array([45.0, -45.0])  # equal weights
    clim = np.zeros((2, 1, 2, 2))  # [B=2, C=1, H, W]
    truth = np.array([[[[1.0, 2.0], [3.0, 4.0]]], [[[1.0, -1.0], [1.0, -1.0]]]])
    forecast = truth.copy()
    forecast[1] *= -10.0  # the second init time: perfectly anti-correlated, much larger
    scores = LeadTimeScores(lat, n_leads=1, n_channels=1)
    scores.add(0, forecast, truth, clim)
    # per init time: +1 and -1, mean 0 (pooled sums over both times would give a negative ACC)
    assert scores.acc()[0, 0] == pytest.approx(0.0, abs=1e-12)


def test_acc_is_nan_where_the_forecast_anomaly_is_zero():
    clim = np.ones((1, 2, 2))
    truth = clim + np.array([[[1.0, 0.0], [0.0, -1.0]]])
    acc = anomaly_correlation(clim, truth, clim, np.array([45.0, -45.0]))
    assert acc.shape == (1,) and np.isnan(acc[0])


def test_forecast_equal_to_truth_plus_c_scores_rmse_c_and_bias_c_at_every_lead():
    lat = np.array([90.0, 0.0, -90.0])
    rng = np.random.default_rng(0)
    scores = LeadTimeScores(lat, n_leads=3, n_channels=2)
    for k in range(3):
        truth = rng.normal(size=(4, 2, 3, 5))  # [B, C, H, W]
        scores.add(k, truth + 0.75, truth, rng.normal(size=truth.shape))
    np.testing.assert_allclose(scores.rmse(), 0.75, rtol=1e-12)
    np.testing.assert_allclose(scores.bias(), 0.75, rtol=1e-12)
    assert scores.count.tolist() == [4, 4, 4]


def test_a_batch_counts_as_its_forecasts():
    lat = np.array([45.0, -45.0])
    one, batch = WeightedErrorAccumulator(lat, 1), WeightedErrorAccumulator(lat, 1)
    errors = (2.0, 0.0, 1.0)
    fields = np.stack([np.full((1, 2, 2), e) for e in errors])  # [B=3, C=1, H, W]
    for f in fields:
        one.add(f, np.zeros_like(f))
    batch.add(fields, np.zeros_like(fields))
    assert batch.count == 3
    assert batch.rmse()[0] == pytest.approx(np.sqrt((4 + 0 + 1) / 3))
    assert batch.bias()[0] == pytest.approx(1.0)
    assert one.rmse()[0] == pytest.approx(batch.rmse()[0])


def test_a_lead_without_forecasts_is_nan():
    scores = LeadTimeScores(np.array([45.0, -45.0]), n_leads=2, n_channels=1)
    scores.add(0, np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)))
    assert scores.rmse()[0, 0] == pytest.approx(1.0)
    assert np.isnan(scores.rmse()[1, 0]) and np.isnan(scores.acc()[1, 0])
