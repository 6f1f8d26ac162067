import numpy as np
import pytest

from pipeline.moments import ChannelMoments, TrainStatistics


def series(seed=0, t=23, c=3):
    rng = np.random.default_rng(seed)
    # geopotential-like offsets: E[x²] − E[x]² would lose digits here
    return rng.normal(size=(t, c, 4, 5)) * [[[1.0]], [[50.0]], [[1e3]]] + [[[0]], [[300]], [[1e5]]]


@pytest.mark.parametrize("block", [1, 4, 23, 100])
def test_moments_in_any_blocks_equal_numpy_on_the_whole(block):
    x = series()
    m = ChannelMoments(3)
    for a in range(0, len(x), block):
        m.add(x[a:a + block])
    np.testing.assert_allclose(m.mean, x.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(m.std(), x.std(axis=(0, 2, 3)), rtol=1e-12)


def test_hand_computed_two_blocks():
    m = ChannelMoments(1)
    m.add(np.array([1.0, 2.0]).reshape(2, 1, 1, 1))
    m.add(np.array([6.0]).reshape(1, 1, 1, 1))  # values 1, 2, 6: mean 3, variance 14/3
    assert m.n == 3 and m.mean[0] == pytest.approx(3.0)
    assert m.std()[0] == pytest.approx(np.sqrt(14 / 3))


@pytest.mark.parametrize("block", [1, 5, 7, 30])
def test_train_statistics_straddling_blocks(block):
    x = series(1)
    start, stop = 4, 19  # the training period is steps 4..18
    s = TrainStatistics(3, start, stop)
    for a in range(0, len(x), block):
        s.add(a, x[a:a + block])
    train = x[start:stop]
    out = s.result()
    np.testing.assert_allclose(out["mean"], train.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(out["std"], train.std(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(out["diff_std"], np.diff(train, axis=0).std(axis=(0, 2, 3)),
                               rtol=1e-12)


def test_train_statistics_refuses_gaps_and_missing_steps():
    x = series(2)
    s = TrainStatistics(3, 0, 10)
    s.add(0, x[0:4])
    with pytest.raises(ValueError, match="time order"):
        s.add(5, x[5:8])
    s.add(4, x[4:8])
    with pytest.raises(ValueError, match="8..9 were never added"):
        s.result()
