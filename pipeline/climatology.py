"""Verification climatology: WeatherBench2's day-of-year × hour-of-day mean of the training years.

(Not the synthetic atmosphere's forcing, which is `pipeline/atmosphere/climatology.py`.)

For each hour of day h present in the training times and each day of year d = 1..366,

    clim[d, h] = Σ_y Σ_{s} w(s − d) x_{y,s,h}  /  Σ_y Σ_{s} w(s − d) [x_{y,s,h} exists]

over the training years y and days of year s, the offset s − d taken around a 366-day circle
(so the window wraps at the year end: day 1's window reaches back to day 337), with window
weights w [window_days] of half-width (window_days − 1)/2 = 30 days for the 61-day window. This
is `weatherbench2.utils.compute_hourly_stat` (the "explicit" method of WB2's
`compute_climatology`): each year's samples are indexed by their calendar day of year
(1 March is day 60 in common years and 61 in leap years: no re-alignment), and a common year's
missing day 366 takes that year's day 365 (WB2's `fillna(stacked.sel(dayofyear=365))`), so
day 366 holds every year's 31 December (a common year's counts at both day 365 and day 366).
Missing days (a training period shorter than a year) are simply absent from both sums, as
xarray's weighted mean skips NaN; a (d, h) whose window holds no sample is NaN. (WB2 assumes
whole years: for partial years its wrap-around would join the last day present to day 1, and
its fill would copy day 365 into every missing day; here the circle is always the calendar's.)

Window shape. WB2's code (`create_window_weights`) weighs the 61 days *triangularly*,
w(o) ∝ 1 − |o|/30 for |o| ≤ 30 (zero at ±30 days, so the last sample that counts is 29 days
away). That is our default (``window="triangular"``). ``window="uniform"`` gives the plain
61-day boxcar mean (w = 1 for |o| ≤ 30), the textbook description of WB2's climatology.

Stored as a Zarr v3 group written atomically (a temporary sibling renamed into place):

    mean       [366, n_hours, C, H, W] float32, chunks (1, 1, C, H, W), NaN where undefined
    n_samples  [366, n_hours] int32     training samples with non-zero weight in the window
    hour       [n_hours] int64          hours of day, ascending
    latitude [H], longitude [W] float64 the prepared store's grid
    attrs: format, channels, window_days, window, window_weights, train_period, source,
           source_data_sha256 (the prepared store's manifest hash of `data`), first/last
           training time used. No wall-clock time, so re-running writes identical values.

Evaluation looks a field up by valid time: ``clim.at(time_ns, channels)`` reads
mean[dayofyear − 1, hour], one chunk per valid time (cached).
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import zarr

from pipeline.errors import DataError
from pipeline.ingest import atomic_directory, open_prepared

DAYS = 366  # day-of-year slots: leap years have 366 days; WB2's climatology has dayofyear 1..366
WINDOW_DAYS = 61  # WeatherBench2's window (±30 days)
WINDOW_SHAPES = ("triangular", "uniform")
FORMAT = "sluice.climatology/1"
DAY_BLOCK = 32  # output days smoothed (and held) at once by `compute_climatology`
MANIFEST = "sluice_manifest"  # the prepared store's attribute holding its array hashes


def window_weights(window_days: int = WINDOW_DAYS, shape: str = "triangular") -> np.ndarray:
    """Weights of day offsets −h..h, h = (window_days − 1)/2: [window_days] float64.

    triangular (WB2's `create_window_weights`): linspace(0, 1, h + 1) then linspace(1, 0, h + 1)
    without its repeated 1, i.e. w(o) = 1 − |o|/h; uniform: w(o) = 1. Only ratios matter.
    """
    if window_days < 1 or window_days % 2 == 0 or window_days > DAYS:
        raise ValueError(f"window_days: expected an odd number of days in 1..{DAYS}, "
                         f"got {window_days}")
    if shape not in WINDOW_SHAPES:
        raise ValueError(f"window: expected one of {WINDOW_SHAPES}, got {shape!r}")
    half = window_days // 2
    if shape == "uniform" or half == 0:
        return np.ones(window_days)
    return np.concatenate([np.linspace(0, 1, half + 1), np.linspace(1, 0, half + 1)[1:]])


def circular_window_matrix(weights: np.ndarray) -> np.ndarray:
    """W[d, s] = weights[o + h] with o = s − d taken around the 366-day circle, |o| ≤ h, else 0:
    [366, 366] float64 (row: the output day of year − 1, column: the sample's)."""
    half = len(weights) // 2
    day = np.arange(DAYS)
    offset = (day[None, :] - day[:, None] + DAYS // 2) % DAYS - DAYS // 2  # in −183..182
    out = np.zeros((DAYS, DAYS))
    inside = np.abs(offset) <= half
    out[inside] = np.asarray(weights, dtype=np.float64)[offset[inside] + half]
    return out


def day_of_year_and_hour(time_ns) -> tuple[np.ndarray, np.ndarray]:
    """Calendar day of year (1..366) and hour of day (0..23) of times: ([T] int64, [T] int64)."""
    t = pd.DatetimeIndex(np.asarray(time_ns).astype("datetime64[ns]"))
    return np.asarray(t.day_of_year, dtype=np.int64), np.asarray(t.hour, dtype=np.int64)


class Contributions(NamedTuple):
    """Which (hour, day-of-year) sums each sample adds to: M ≥ T rows."""

    sample: np.ndarray  # [M] index into the times
    hour_index: np.ndarray  # [M] index into ``hours``
    day_index: np.ndarray  # [M] day of year − 1
    hours: np.ndarray  # [n_hours] hours of day present, ascending


def contributions(times) -> Contributions:
    """Each sample at its (hour, day of year); plus, for every (year, hour) with a day 365 but no
    day 366, that day-365 sample once more at day 366 (WB2's fill of common years' day 366)."""
    times = np.asarray(times).astype("datetime64[ns]")
    doy, hour = day_of_year_and_hour(times)
    year = np.asarray(pd.DatetimeIndex(times).year, dtype=np.int64)
    has_366 = set(zip(year[doy == 366].tolist(), hour[doy == 366].tolist(), strict=True))
    fill = [i for i in np.flatnonzero(doy == 365) if (year[i], hour[i]) not in has_366]
    sample = np.concatenate([np.arange(times.size), np.asarray(fill, dtype=np.int64)])
    day = np.concatenate([doy - 1, np.full(len(fill), DAYS - 1)])
    hours = np.unique(hour)
    return Contributions(sample, np.searchsorted(hours, hour[sample]), day, hours)


class DayHourSums:
    """Running sums of samples per (hour, day of year) for one block of values [*shape]:
    only the slots that receive samples are stored ([n_slots, *shape] float64). ``hours``:
    the hour indices to hold (default all), so a store can be summed one hour at a time."""

    def __init__(self, contrib: Contributions, shape: tuple[int, ...], hours=None):
        keep = (np.ones(contrib.sample.size, dtype=bool) if hours is None
                else np.isin(contrib.hour_index, hours))
        hour_index, day_index = contrib.hour_index[keep], contrib.day_index[keep]
        self.slot = np.full((len(contrib.hours), DAYS), -1, dtype=np.int64)  # [n_hours, 366]
        self.counts = np.zeros((len(contrib.hours), DAYS), dtype=np.int64)
        np.add.at(self.counts, (hour_index, day_index), 1)
        used = self.counts > 0
        self.slot[used] = np.arange(int(used.sum()))
        self.sums = np.zeros((int(used.sum()), *shape))
        self.slots_of_sample: dict[int, list[int]] = {}
        slots = self.slot[hour_index, day_index]
        for s, slot in zip(contrib.sample[keep].tolist(), slots.tolist(), strict=True):
            self.slots_of_sample.setdefault(s, []).append(slot)

    @property
    def samples(self) -> list[int]:
        """The samples these sums need, ascending."""
        return sorted(self.slots_of_sample)

    def add(self, sample: int, values: np.ndarray) -> None:
        for slot in self.slots_of_sample.get(sample, ()):
            self.sums[slot] += values

    def smooth(self, matrix: np.ndarray, hour_index: int,
               days: slice = slice(0, DAYS)) -> tuple[np.ndarray, np.ndarray]:
        """(mean [D, *shape] float64, NaN where no weight; n_samples [D] int64) for one hour and
        the D output days ``days`` (0-based day of year), with W = `circular_window_matrix`:
        mean[d] = Σ_s W[d, s] S[s] / Σ_s W[d, s] N[s]."""
        have = np.flatnonzero(self.slot[hour_index] >= 0)  # the days holding samples
        w = matrix[days][:, have]  # [D, n_have]
        n = self.counts[hour_index, have]  # [n_have]
        sums = self.sums[self.slot[hour_index, have]].reshape(len(have), -1)  # [n_have, M]
        weight = w @ n.astype(np.float64)  # [D]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (w @ sums) / weight[:, None]
        mean[weight <= 0] = np.nan
        return mean.reshape(len(weight), *self.sums.shape[1:]), (w > 0).astype(np.int64) @ n


class DayHourMean(NamedTuple):
    mean: np.ndarray  # [366, n_hours, *shape] float64
    hours: np.ndarray  # [n_hours] int64
    n_samples: np.ndarray  # [366, n_hours] int64


def climatology_from_series(values: np.ndarray, times, *, window_days: int = WINDOW_DAYS,
                            window: str = "triangular") -> DayHourMean:
    """The day-of-year × hour climatology (module docstring) of an in-memory series.

    values [T, *shape], times [T] datetime64 → mean [366, n_hours, *shape] float64 (index
    [dayofyear − 1, hour index]), hours [n_hours], n_samples [366, n_hours].
    """
    values = np.asarray(values)
    if values.shape[0] != np.asarray(times).size or values.shape[0] == 0:
        raise ValueError(f"values [T, ...] and times [T] must be non-empty and agree: "
                         f"{values.shape} vs {np.asarray(times).shape}")
    contrib = contributions(times)
    sums = DayHourSums(contrib, values.shape[1:])
    for t in range(values.shape[0]):
        sums.add(t, values[t].astype(np.float64))
    matrix = circular_window_matrix(window_weights(window_days, window))
    parts = [sums.smooth(matrix, h) for h in range(len(contrib.hours))]
    return DayHourMean(np.stack([m for m, _ in parts], axis=1), contrib.hours,
                       np.stack([n for _, n in parts], axis=1))


# -- the stored climatology ---------------------------------------------------------------------
def train_slice(times: np.ndarray, period, where) -> slice:
    """Indices of ``times`` inside ``period`` (inclusive labels, read as `prepare_weather` does)."""
    sl = pd.DatetimeIndex(times).slice_indexer(*period)
    if len(range(*sl.indices(times.size))) == 0:
        raise DataError(where, "train_period", f"at least one time inside {list(period)}",
                        f"none in {times[0]}..{times[-1]}")
    return sl


def prepared_data_hash(store) -> str | None:
    """The prepared store's manifest hash of ``data`` (None for stores without a manifest)."""
    return store.attrs.get(MANIFEST, {}).get("hashes", {}).get("data")


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def compute_climatology(prepared_path, dest, *, train_period=None,
                        window_days: int = WINDOW_DAYS, window: str = "triangular",
                        memory_bytes: int = 1 << 30, overwrite: bool = False) -> Path:
    """Write the climatology of the prepared store's training period to ``dest`` (a directory).

    train_period: (start, end) inclusive labels; default the store's own ``train_period``.
    Works one hour of day and one block of channels at a time: a block holds, per channel,
    (days with samples at that hour + DAY_BLOCK) × H × W float64, at most ``memory_bytes`` (at
    least one channel). Each training time step is read once per channel block (the hours
    partition the time steps). FileExistsError if ``dest`` exists and ``overwrite`` is False;
    nothing is left at ``dest`` on failure.
    """
    window_weights(window_days, window)  # bad arguments fail before any reading
    store = open_prepared(prepared_path)
    period = tuple(str(t) for t in (train_period or store.attrs["train_period"]))
    sl = train_slice(store.times, period, prepared_path)
    first = sl.indices(store.times.size)[0]
    times = store.times[sl]
    contrib = contributions(times)
    n_channels, n_lat, n_lon = store.data.shape[1:]
    n_hours = len(contrib.hours)
    most_days = max(len(np.unique(contrib.day_index[contrib.hour_index == h]))
                    for h in range(n_hours))
    per_channel = (most_days + DAY_BLOCK) * n_lat * n_lon * 8
    block = int(min(n_channels, max(1, memory_bytes // per_channel)))
    matrix = circular_window_matrix(window_weights(window_days, window))
    attrs = {
        "format": FORMAT,
        "channels": list(store.channels),
        "window_days": window_days,
        "window": window,
        "window_weights": window_weights(window_days, window).tolist(),
        "train_period": list(period),
        "first_time": str(times[0]),
        "last_time": str(times[-1]),
        "n_times": int(times.size),
        "source": os.fspath(prepared_path),
        "source_data_sha256": prepared_data_hash(store),
        "convention": "WeatherBench2 compute_hourly_stat: per hour of day, window-weighted mean "
                      "over training years and days of year within ±(window_days-1)/2 days "
                      "around a 366-day circle; common years' day 366 = their day 365",
    }
    with atomic_directory(Path(dest), overwrite=overwrite) as tmp:
        group = zarr.open_group(os.fspath(tmp), mode="w", zarr_format=3)
        mean = group.create_array("mean", shape=(DAYS, n_hours, n_channels, n_lat, n_lon),
                                  chunks=(1, 1, n_channels, n_lat, n_lon), dtype="float32",
                                  fill_value=np.nan)
        n_samples = group.create_array("n_samples", shape=(DAYS, n_hours), dtype="int32",
                                       fill_value=0)
        group.create_array("hour", data=contrib.hours.astype(np.int64))
        group.create_array("latitude", data=np.asarray(store.lat, dtype=np.float64))
        group.create_array("longitude", data=np.asarray(store.lon, dtype=np.float64))
        for h, c0 in itertools.product(range(n_hours), range(0, n_channels, block)):
            c1 = min(n_channels, c0 + block)
            sums = DayHourSums(contrib, (c1 - c0, n_lat, n_lon), hours=[h])
            for t in sums.samples:
                sums.add(t, np.asarray(store.data[first + t, c0:c1], dtype=np.float64))
            for d0 in range(0, DAYS, DAY_BLOCK):
                m, n = sums.smooth(matrix, h, slice(d0, d0 + DAY_BLOCK))
                # Only days with samples in their window: the rest stay NaN (the fill value)
                # without a chunk file, which for a training period of weeks is most of them.
                for a, b in runs(n > 0):
                    mean[d0 + a:d0 + b, h, c0:c1] = m[a:b].astype(np.float32)
                if c0 == 0:
                    n_samples[d0:d0 + len(n), h] = n.astype(np.int32)
        group.attrs.update(attrs)
    return Path(dest)


class Climatology:
    """Climatological fields by valid time: ``at(time_ns, channels)`` → [B, C', H, W] float32.

    mean: [366, n_hours, C, H, W] (a zarr array or an ndarray), index [dayofyear − 1, hour
    index]; hours [n_hours]; channels [C]; lat [H], lon [W]. ``source`` names it in errors.
    The last ``cache_fields`` (day, hour) fields read are kept: a rollout asks for each valid
    time once per lead and forecaster.
    """

    def __init__(self, mean, hours, channels, lat, lon, *, source="<in-memory climatology>",
                 attrs: dict | None = None, cache_fields: int = 32):
        if tuple(mean.shape[:2]) != (DAYS, len(hours)) or mean.ndim != 5:
            raise DataError(source, "mean", f"[{DAYS}, n_hours={len(hours)}, C, H, W]",
                            f"shape {tuple(mean.shape)}")
        if mean.shape[2:] != (len(channels), len(lat), len(lon)):
            raise DataError(source, "mean", f"[.., C={len(channels)}, H={len(lat)}, "
                            f"W={len(lon)}] to match channels, latitude and longitude",
                            f"shape {tuple(mean.shape)}")
        self.mean = mean
        self.hours = np.asarray(hours, dtype=np.int64)
        self.channels = tuple(channels)
        self.lat, self.lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        self.source = str(source)
        self.attrs = dict(attrs or {})
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_fields = cache_fields

    def channel_index(self, channels) -> np.ndarray:
        """Positions of ``channels`` here: [C'] int64; DataError naming any that is missing."""
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise DataError(self.source, "channels", f"every evaluated channel, e.g. {missing}",
                            f"only {list(self.channels)}")
        return np.array([self.channels.index(c) for c in channels], dtype=np.int64)

    def field(self, dayofyear: int, hour: int) -> np.ndarray:
        """mean at (day of year 1..366, hour of day): [C, H, W] float32 (cached)."""
        key = (int(dayofyear), int(hour))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        where = np.flatnonzero(self.hours == hour)
        if where.size == 0:
            raise DataError(self.source, "hour", f"a valid time at one of the climatology's "
                            f"hours {self.hours.tolist()}", f"hour {hour}")
        values = np.asarray(self.mean[key[0] - 1, int(where[0])], dtype=np.float32)
        if np.isnan(values).any():
            raise DataError(self.source, "mean", f"a climatology at day of year {key[0]}, hour "
                            f"{hour} (training samples within the window)", "NaN: none there")
        self._cache[key] = values
        if len(self._cache) > self._cache_fields:
            self._cache.popitem(last=False)
        return values

    def at(self, time_ns, channels=None) -> np.ndarray:
        """The climatology at valid times [B] (int64 ns or datetime64): [B, C', H, W] float32,
        channels in the order asked (default: all, in stored order)."""
        index = None if channels is None else self.channel_index(channels)
        doy, hour = day_of_year_and_hour(np.asarray(time_ns).reshape(-1))
        fields = [self.field(d, h) for d, h in zip(doy.tolist(), hour.tolist(), strict=True)]
        out = np.stack(fields)  # [B, C, H, W]
        return out if index is None else out[:, index]


def open_climatology(path) -> Climatology:
    """Open a climatology written by `compute_climatology` (lazily: fields are read on demand)."""
    try:
        group = zarr.open_group(os.fspath(path), mode="r")
    except (FileNotFoundError, zarr.errors.NodeNotFoundError) as exc:
        raise DataError(path, "climatology", "a climatology written by compute_climatology",
                        "nothing there") from exc
    attrs = dict(group.attrs)
    if attrs.get("format") != FORMAT or "mean" not in group:
        raise DataError(path, "format", f"{FORMAT} (a climatology written by "
                        "compute_climatology)", f"{attrs.get('format')!r}")
    return Climatology(group["mean"], group["hour"][:], attrs["channels"], group["latitude"][:],
                       group["longitude"][:], source=os.fspath(path), attrs=attrs)


def ensure_climatology(prepared_path, path, *, train_period=None,
                       window_days: int = WINDOW_DAYS, window: str = "triangular",
                       memory_bytes: int = 1 << 30) -> Climatology:
    """The climatology at ``path`` if it was computed from this prepared store's data (same
    manifest hash), train period and window; otherwise (re)compute it there first."""
    store = open_prepared(prepared_path)
    period = [str(t) for t in (train_period or store.attrs["train_period"])]
    want = {"format": FORMAT, "train_period": period, "window_days": window_days,
            "window": window, "channels": list(store.channels),
            "source_data_sha256": prepared_data_hash(store)}
    if Path(path).exists():
        try:
            have = dict(zarr.open_group(os.fspath(path), mode="r").attrs)
        except (FileNotFoundError, zarr.errors.NodeNotFoundError):
            have = {}  # not a climatology (a half-copied directory, say): replace it
        # Without a data hash there is no telling whether the store changed: recompute.
        if want["source_data_sha256"] is not None and all(have.get(k) == v
                                                          for k, v in want.items()):
            return open_climatology(path)
    compute_climatology(prepared_path, path, train_period=period, window_days=window_days,
                        window=window, memory_bytes=memory_bytes, overwrite=True)
    return open_climatology(path)
