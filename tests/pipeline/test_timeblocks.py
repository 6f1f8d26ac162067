import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.errors import DataError
from pipeline.timeblocks import (
    SourceBlocks,
    check_no_nans,
    time_blocks,
    time_interpolation_patch,
)


def test_time_blocks_cover_the_series_within_the_budget():
    assert time_blocks(10, 4, budget=8 * 4 * 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert time_blocks(5, 10**9, budget=1) == [(i, i + 1) for i in range(5)]  # at least 1 step
    assert time_blocks(0, 4) == []


def source(values):
    """values [T, 3, H, W] as a dataset: channels 0, 1 the levels of "a" (stored level-reversed,
    so the picks matter), channel 2 the surface variable "s"."""
    t = pd.date_range("2020-01-01", periods=values.shape[0], freq="6h").values
    # uneven times would matter for interpolation by coordinate: make step 3 → 4 a 12 h gap
    t = np.concatenate([t[:4], t[4:] + np.timedelta64(6, "h")])
    ds = xr.Dataset({
        "a": (("time", "level", "latitude", "longitude"), values[:, [1, 0]]),
        "s": (("time", "latitude", "longitude"), values[:, 2]),
    }, coords={"time": t, "level": [850, 500]}).chunk({"time": 2})
    return SourceBlocks(ds, [("a", 1), ("a", 0), ("s", None)], "threads"), t


def test_source_blocks_return_the_block():
    x = np.arange(8 * 3 * 2 * 3, dtype=np.float32).reshape(8, 3, 2, 3)
    load, _ = source(x)
    np.testing.assert_array_equal(load(3, 6), x[3:6])
    assert load(3, 6).dtype == np.float32


def test_interpolation_patch_fills_interior_gaps_linearly_in_time():
    x = np.ones((8, 3, 2, 3))
    x[:, 1, 0, 2] = np.arange(8) * 10.0
    x[2, 1, 0, 2] = np.nan  # interior: between t1 (10) and t3 (30), 6 h each side → 20
    x[4, 1, 0, 2] = np.nan  # t3 → t5 spans 6 h + 12 h... times: t3 + 12 h = t4, t5 = t4 + 6 h
    x[0, 0, 1, 1] = np.nan  # before the first valid value: stays NaN
    load, t = source(x)
    patch = time_interpolation_patch(load, time_blocks(8, 18, budget=8 * 18 * 3))
    filled = load(0, 8)
    for a, b in time_blocks(8, 18, budget=8 * 18 * 3):
        block = filled[a:b].copy()
        patch.apply(block, a, b)
        filled[a:b] = block
    assert filled[2, 1, 0, 2] == pytest.approx(20.0)
    hours = (t - t[0]) / np.timedelta64(1, "h")  # 0 6 12 18 30 36 42 48
    expect = 30 + (50 - 30) * (hours[4] - hours[3]) / (hours[5] - hours[3])
    assert filled[4, 1, 0, 2] == pytest.approx(expect) and expect != pytest.approx(40.0)
    assert np.isnan(filled[0, 0, 1, 1])
    assert np.isnan(filled).sum() == 1


def test_check_no_nans_names_channel_time_and_where_reading_stopped():
    times = pd.date_range("2020-01-01", periods=6, freq="6h").values
    x = np.zeros((3, 2, 2, 2))
    check_no_nans(x, 3, 6, times, ["a", "b"], "src.zarr")
    x[1, 1, 0, 0] = x[2, 1, 1, 1] = x[2, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"2 NaNs, the first at 2020-01-02T00.*stopped"):
        check_no_nans(x, 3, 6, times, ["a", "b"], "src.zarr")
