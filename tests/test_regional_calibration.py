"""`benchmarks/regional_calibration.py`: the per-lead, per-channel linear calibration (MOS)
against hand fits. Its use of a run's forecasts is tested on the nested-grid world
(tests/pipeline/test_weather_regional.py)."""

from __future__ import annotations

import numpy as np

from benchmarks.regional_calibration import LinearCalibration
from pipeline.metrics import lat_weights

LAT = np.array([30.0, 40.0, 50.0])


def test_an_exact_line_is_recovered_and_maps_the_forecast_onto_the_truth():
    rng = np.random.default_rng(0)
    clim = rng.normal(size=(4, 2, 3, 5))
    f = clim + rng.normal(size=clim.shape)
    a, b = np.array([0.5, -2.0]), np.array([0.1, 3.0])
    o = clim + a[None, :, None, None] * (f - clim) + b[None, :, None, None]
    cal = LinearCalibration(LAT, n_leads=2, n_channels=2)
    cal.add(1, f[:2], o[:2], clim[:2])  # two batches accumulate as one
    cal.add(1, f[2:], o[2:], clim[2:])
    got_a, got_b = cal.coefficients()
    np.testing.assert_allclose(got_a[1], a, rtol=1e-12)
    np.testing.assert_allclose(got_b[1], b, rtol=1e-12)
    np.testing.assert_allclose(cal.apply(1, f, clim), o, rtol=1e-12)
    # lead 0 saw nothing: no anomaly variance, a = 0
    assert np.all(cal.coefficients()[0][0] == 0)


def test_a_noisy_fit_is_weighted_least_squares_with_the_scores_latitude_weights():
    rng = np.random.default_rng(1)
    clim = rng.normal(size=(6, 1, 3, 4))
    f = clim + rng.normal(size=clim.shape)
    o = clim + 0.3 * (f - clim) + rng.normal(size=clim.shape)
    cal = LinearCalibration(LAT, n_leads=1, n_channels=1)
    cal.add(0, f, o, clim)
    w = np.broadcast_to(lat_weights(LAT)[:, None], f.shape).ravel()
    x, y = (f - clim).ravel(), (o - clim).ravel()
    # by hand: minimise Σ w (y − a x − b)² (np.polyfit weights the residual by its w argument)
    a, b = np.polyfit(x, y, 1, w=np.sqrt(w))
    got_a, got_b = cal.coefficients()
    np.testing.assert_allclose([got_a[0, 0], got_b[0, 0]], [a, b], rtol=1e-10)
    unweighted = np.polyfit(x, y, 1)
    assert abs(got_a[0, 0] - unweighted[0]) > 1e-6  # the weights matter here
