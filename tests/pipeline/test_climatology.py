"""Verification climatology: WB2's windowed day-of-year × hour mean, by hand and from a store."""

import numpy as np
import pytest
import zarr

from pipeline.climatology import (
    Climatology,
    circular_window_matrix,
    climatology_from_series,
    compute_climatology,
    ensure_climatology,
    open_climatology,
    window_weights,
)
from pipeline.errors import DataError
from pipeline.ingest import open_prepared
from tests.pipeline.helpers import small_prepared_store

SPECS = ("geopotential@500", "2m_temperature")
TRAIN = ("2020-01-01", "2020-01-08T18")  # 8 days of 6-hourly times; the store runs to 01-12


def daily(start: str, end: str, hour: int = 0) -> np.ndarray:
    """One time a day at ``hour`` UTC, start..end inclusive: [T] datetime64[ns]."""
    days = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    return (days + np.timedelta64(hour, "h")).astype("datetime64[ns]")


def test_window_weights_are_wb2s_triangle_or_a_boxcar():
    np.testing.assert_allclose(window_weights(5, "triangular"), [0, 0.5, 1, 0.5, 0])
    np.testing.assert_allclose(window_weights(5, "uniform"), np.ones(5))
    w = window_weights(61)
    assert w.shape == (61,) and w[0] == 0 and w[30] == 1 and w[29] == pytest.approx(29 / 30)
    for bad in ((60, "triangular"), (0, "uniform"), (5, "gaussian")):
        with pytest.raises(ValueError, match="window"):
            window_weights(*bad)


def test_window_matrix_wraps_around_the_366_day_circle():
    m = circular_window_matrix(window_weights(5, "triangular"))
    assert m.shape == (366, 366)
    assert m[0, 365] == 0.5 and m[0, 1] == 0.5 and m[0, 0] == 1 and m[0, 364] == 0
    assert m[365, 0] == 0.5 and m[200, 199] == 0.5 and m[200, 198] == 0


def test_61_day_boxcar_mean_of_a_hand_made_series_with_wrap_around():
    times = daily("2021-01-01", "2021-12-31")  # a common year: days 1..365
    values = np.arange(1, 366, dtype=np.float64)  # x = day of year
    clim = climatology_from_series(values, times, window_days=61, window="uniform")
    assert clim.mean.shape == (366, 1) and clim.hours.tolist() == [0]
    # Day 1: days 337..365, day 366 (= this common year's day 365, WB2's fill) and days 1..31
    expected_day1 = (sum(range(337, 366)) + 365 + sum(range(1, 32))) / 61
    assert clim.mean[0, 0] == pytest.approx(expected_day1, rel=1e-12)
    assert clim.mean[99, 0] == pytest.approx(100.0)  # days 70..130: symmetric around 100
    # Day 366: days 336..365, 366 (= 365) and 1..30
    expected_day366 = (sum(range(336, 366)) + 365 + sum(range(1, 31))) / 61
    assert clim.mean[365, 0] == pytest.approx(expected_day366, rel=1e-12)
    assert clim.n_samples[0, 0] == 61


def test_triangular_window_by_hand_at_the_year_end():
    values = np.arange(1, 367, dtype=np.float64)  # 2020 is a leap year: days 1..366
    clim = climatology_from_series(values, daily("2020-01-01", "2020-12-31"), window_days=5)
    # weights 0, ½, 1, ½, 0 → (½ x[d-1] + x[d] + ½ x[d+1]) / 2, wrapping 366 ↔ 1
    assert clim.mean[0, 0] == pytest.approx((0.5 * 366 + 1 + 0.5 * 2) / 2)
    assert clim.mean[365, 0] == pytest.approx((0.5 * 365 + 366 + 0.5 * 1) / 2)
    assert clim.n_samples[0, 0] == 3  # the ends of the triangle weigh nothing


def test_day_366_averages_a_leap_years_day_366_with_a_common_years_day_365():
    times = np.concatenate([daily("2020-01-01", "2020-12-31"), daily("2021-01-01", "2021-12-31")])
    values = np.concatenate([np.arange(1, 367), 1000 + np.arange(1, 366)]).astype(np.float64)
    clim = climatology_from_series(values, times, window_days=1)
    assert clim.mean[365, 0] == pytest.approx((366 + 1365) / 2)  # 31 Dec 2020; 31 Dec 2021
    assert clim.mean[59, 0] == pytest.approx((60 + 1060) / 2)  # calendar day 60 in both years
    assert clim.n_samples[365, 0] == 2


def test_hours_are_separate_and_missing_days_are_skipped_not_zero():
    times = np.concatenate([daily("2021-01-01", "2021-01-10", 0),
                            daily("2021-01-01", "2021-01-10", 12)])
    values = np.concatenate([np.arange(1.0, 11.0), 100 + np.arange(1.0, 11.0)])
    clim = climatology_from_series(values, times, window_days=61, window="uniform")
    assert clim.hours.tolist() == [0, 12]
    assert clim.mean[4, 0] == pytest.approx(5.5)  # all ten days lie within ±30 of day 5
    assert clim.mean[4, 1] == pytest.approx(105.5)
    assert np.isnan(clim.mean[199, 0]) and clim.n_samples[199, 0] == 0  # no sample near day 200


def test_a_series_and_its_times_must_agree():
    with pytest.raises(ValueError, match="agree"):
        climatology_from_series(np.zeros((3, 2)), daily("2021-01-01", "2021-01-02"))


# -- from a prepared store ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return small_prepared_store(tmp_path_factory.mktemp("clim"), SPECS,
                                ("2020-01-01", "2020-01-12T18"), TRAIN)


def test_store_climatology_is_the_window_mean_of_the_training_samples(prepared, tmp_path):
    store = open_prepared(prepared)
    path = compute_climatology(prepared, tmp_path / "clim.zarr", window="uniform")
    clim = open_climatology(path)
    assert clim.channels == store.channels and clim.hours.tolist() == [0, 6, 12, 18]
    assert clim.attrs["train_period"] == list(TRAIN) and clim.attrs["window_days"] == 61
    data = np.asarray(store.data[:], dtype=np.float64)  # [48, C, H, W]: 12 days × 4
    # Every training day (1..8 January) is within ±30 days of 20 January, and nothing else is
    # training data: the field at (day 20, 06 UTC) is the mean of the 8 training 06 UTC samples.
    expected = data[1:32:4].mean(axis=0)
    got = clim.at(np.array(["2020-01-20T06"], dtype="datetime64[ns]"))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert not np.allclose(got, data[1::4].mean(axis=0), rtol=1e-6)  # test days not included
    n_samples = zarr.open_group(str(path), mode="r")["n_samples"]
    assert n_samples[19, 1] == 8 and n_samples[200, 1] == 0


def test_channel_blocks_give_the_same_climatology(prepared, tmp_path):
    whole = open_climatology(compute_climatology(prepared, tmp_path / "a.zarr"))
    blocks = open_climatology(compute_climatology(prepared, tmp_path / "b.zarr", memory_bytes=1))
    np.testing.assert_array_equal(whole.mean[:], blocks.mean[:])


def test_lookup_by_valid_time_and_channel_order(prepared, tmp_path):
    clim = open_climatology(compute_climatology(prepared, tmp_path / "clim.zarr"))
    t = np.array(["2020-01-03T12", "2020-01-05T00"], dtype="datetime64[ns]")
    both = clim.at(t.astype(np.int64))  # int64 ns, as datasets give them
    assert both.shape == (2, 2, 8, 16) and both.dtype == np.float32
    np.testing.assert_array_equal(both[0], clim.mean[2, 2])  # day 3, hour index 2 (12 UTC)
    swapped = clim.at(t, ["2m_temperature", "geopotential_500"])
    np.testing.assert_array_equal(swapped[:, 0], both[:, 1])


def test_bad_lookups_name_the_field(prepared, tmp_path):
    clim = open_climatology(compute_climatology(prepared, tmp_path / "clim.zarr"))
    with pytest.raises(DataError, match="channels.*temperature_850"):
        clim.at(np.array(["2020-01-03"], dtype="datetime64[ns]"), ["temperature_850"])
    with pytest.raises(DataError, match="hour"):
        clim.at(np.array(["2020-01-03T03"], dtype="datetime64[ns]"))
    with pytest.raises(DataError, match="day of year 200"):
        clim.at(np.array(["2020-07-18"], dtype="datetime64[ns]"))  # no training day near it
    with pytest.raises(DataError, match="format"):
        open_climatology(prepared)  # a prepared store is not a climatology
    with pytest.raises(DataError, match="climatology"):
        open_climatology(tmp_path / "nothing.zarr")
    with pytest.raises(DataError, match=r"mean.*\[366"):
        Climatology(np.zeros((365, 1, 1, 2, 2)), [0], ["x"], [45, -45], [0, 180])


def test_written_atomically_and_never_over_an_existing_one(prepared, tmp_path):
    dest = tmp_path / "clim.zarr"
    compute_climatology(prepared, dest)
    with pytest.raises(FileExistsError):
        compute_climatology(prepared, dest)
    with pytest.raises(DataError, match="train_period"):
        compute_climatology(prepared, tmp_path / "empty.zarr", train_period=("2021", "2021"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clim.zarr"]  # no temporary left


def test_ensure_reuses_a_current_climatology_and_recomputes_a_stale_one(prepared, tmp_path):
    dest = tmp_path / "clim.zarr"
    first = ensure_climatology(prepared, dest).mean[:10]  # read now: dest is replaced below
    stamp = (dest / "mean" / "zarr.json").stat().st_mtime_ns
    again = ensure_climatology(prepared, dest)
    assert (dest / "mean" / "zarr.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(first, again.mean[:10])
    other = ensure_climatology(prepared, dest, train_period=("2020-01-01", "2020-01-04T18"))
    assert other.attrs["train_period"] == ["2020-01-01", "2020-01-04T18"]
    assert not np.array_equal(other.mean[4, 0], first[4, 0])
