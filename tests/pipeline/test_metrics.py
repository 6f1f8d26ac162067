import numpy as np
import pytest

from pipeline.metrics import WeightedErrorAccumulator, lat_weights


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
