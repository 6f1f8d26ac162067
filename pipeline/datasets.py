"""Map-style datasets over the prepared weather store, read with plain zarr (no xarray, no dask).

`WeatherWindows` serves windows of consecutive 6-hourly states from ``data[time, channel, lat,
lon]`` (chunks (1, C, H, W), so one time step is one chunk). Sample t, with history h and lead
k:

    inputs  = X[t-h+1 .. t]     [h, C, H, W] float32   (oldest first; inputs[-1] is X_t)
    targets = X[t+1 .. t+k]     [k, C, H, W] float32
    time_ns = t                 int64 scalar tensor, ns since 1970-01-01: names the sample

in physical units: normalisation happens on the device in the task. The h + k steps of one
sample are one contiguous block ``data[t-h+1 : t+k+1]``, read into one fresh array that the
returned tensors share (views, no copy after decoding).

Reading a block (`ChunkReader`). The prepared store's layout is fixed (one chunk per time step,
codecs bytes + zstd, a local directory), so a block is h + k chunk files, each decoded by zstd
straight into its slot of the output array, in the calling thread. Measured on this project's
2-vCPU machine (240x121x69, warm cache): zarr's own ``data[a:b]`` decodes the chunks of one
call on its thread pool and then copies each into the output, ~1.1-1.4 GB/s for 1.4-1.6 cores
of CPU; this path decodes ~1.3-1.5 GB/s on one core, and one thread per process is what
DataLoader workers (one core each) need. Any other layout (a remote or in-memory store,
sharding, other codecs, a missing chunk) is read by zarr itself, still as one slice.

Batches (`__getitems__` + `collate_windows`). A DataLoader with a batch size hands the dataset
all indices of a batch at once; they are read into one [B, h + k, C, H, W] block (in shared
memory inside a worker, as torch's own collate allocates) and `collate_windows` returns views
of it. torch's `default_collate` also works, but copies every batch once more (in a worker, into
shared memory), which costs a third of the throughput with 2 workers at 240x121x69.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import zarr
from numcodecs import Zstd
from torch.utils.data import Dataset, default_collate, get_worker_info
from zarr.codecs import BytesCodec, ZstdCodec
from zarr.storage import LocalStore

from pipeline.ingest import open_prepared


def window_starts(times: np.ndarray, period: tuple, history: int, lead_steps: int) -> np.ndarray:
    """Initial-time indices t whose whole window t-h+1 .. t+k lies inside ``period``.

    times: [T] datetime64[ns], sorted. period: (start, end) labels, both inclusive, read as
    `prepare_weather` reads its periods (pandas partial strings: "2020-02-09" covers that day).
    Returns [N] int64 indices into ``times``, ascending.
    """
    inside = np.zeros(times.size, dtype=bool)
    inside[pd.DatetimeIndex(times).slice_indexer(*period)] = True
    span = history + lead_steps
    if times.size < span:
        return np.zeros(0, dtype=np.int64)
    whole = np.lib.stride_tricks.sliding_window_view(inside, span).all(axis=1)  # [T - span + 1]
    return np.flatnonzero(whole).astype(np.int64) + (history - 1)


class ChunkReader:
    """Blocks of whole time steps ``array[a:b]`` → [b - a, *array.shape[1:]] fresh ndarray.

    Reads the chunk files of a local Zarr v3 array chunked (1, *shape[1:]) with codecs bytes
    (native byte order) [+ zstd] directly, decoding each into its slot of the output; anything
    else goes through ``array[a:b]``. Single-threaded by design (see the module docstring).
    """

    def __init__(self, array: zarr.Array):
        self.array = array
        self.chunk_dir = self._chunk_dir(array)  # None: read through zarr
        codecs = array.metadata.codecs if self.chunk_dir is not None else ()
        self.zstd = Zstd() if len(codecs) == 2 else None

    @staticmethod
    def _chunk_dir(array: zarr.Array) -> Path | None:
        try:
            return ChunkReader._layout_dir(array)
        except (AttributeError, TypeError, IndexError):  # another zarr's internals: use zarr
            return None

    @staticmethod
    def _layout_dir(array: zarr.Array) -> Path | None:
        meta = array.metadata
        if meta.zarr_format != 3 or not isinstance(array.store, LocalStore):
            return None
        if array.chunks != (1, *array.shape[1:]):
            return None
        codecs = meta.codecs
        if not (isinstance(codecs[0], BytesCodec)
                and (codecs[0].endian is None or codecs[0].endian.value == sys.byteorder)
                and all(isinstance(c, ZstdCodec) for c in codecs[1:]) and len(codecs) <= 2):
            return None
        return Path(array.store.root) / array.path

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.array.shape[1:]), dtype=self.array.dtype)
        self.read_into(start, stop, out)
        return out

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill ``out`` [stop - start, *shape[1:]] (C-contiguous) with ``array[start:stop]``."""
        if self.chunk_dir is not None:
            zeros = (0,) * (self.array.ndim - 1)
            try:
                for j, t in enumerate(range(start, stop)):
                    key = self.array.metadata.encode_chunk_key((t, *zeros))
                    with open(self.chunk_dir / key, "rb") as f:
                        if self.zstd is None:
                            f.readinto(memoryview(out[j]).cast("B"))
                        else:
                            self.zstd.decode(f.read(), out=out[j])
                return
            except FileNotFoundError:
                pass  # a chunk never written holds the fill value: zarr knows it
        out[...] = self.array[start:stop]


class WindowBatch(list):
    """The samples of one batch as a list of (inputs, targets, time_ns), *and* already batched.

    `WeatherWindows.__getitems__` reads a whole batch into one block; `collate_windows` returns
    the batched tensors (no copy), while torch's `default_collate` still sees a plain list of
    samples (and stacks them, copying).
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, time_ns: torch.Tensor):
        super().__init__(zip(inputs, targets, time_ns, strict=True))
        self.batched = (inputs, targets, time_ns)


def collate_windows(batch):
    """collate_fn for `WeatherWindows`: [B, h, C, H, W], [B, k, C, H, W], [B] without a copy."""
    if isinstance(batch, WindowBatch):
        return batch.batched
    return default_collate(batch)


class WeatherWindows(Dataset):
    """(inputs [h, C, H, W], targets [k, C, H, W], time_ns) for every window inside ``period``.

    The zarr array is opened on first use in each process and never pickled, so spawned
    DataLoader workers each open their own (Zarr v3 is not fork-safe).
    """

    def __init__(self, prepared_path, period: tuple, *, history: int = 1, lead_steps: int = 1):
        if history < 1 or lead_steps < 1:
            raise ValueError(f"history ({history}) and lead_steps ({lead_steps}) must be >= 1")
        self.prepared_path = os.fspath(prepared_path)
        self.period = tuple(period)
        self.history, self.lead_steps = history, lead_steps
        store = open_prepared(self.prepared_path)
        self.channels: tuple[str, ...] = store.channels
        self.time_step_hours = store.time_step_hours
        self._store_times = store.times  # [T] datetime64[ns]
        self.index = window_starts(store.times, self.period, history, lead_steps)  # [N] → t
        self._reader = None  # ChunkReader, opened lazily per process

    @property
    def times(self) -> np.ndarray:
        """Initial times t of the samples, in index order: [N] datetime64[ns]."""
        return self._store_times[self.index]

    def __len__(self) -> int:
        return len(self.index)

    def _open(self) -> ChunkReader:
        if self._reader is None:
            # The array alone: no group listing or attribute reads in every worker.
            self._reader = ChunkReader(zarr.open_array(Path(self.prepared_path) / "data",
                                                       mode="r"))
        return self._reader

    def __getitem__(self, i: int):
        t = int(self.index[i])
        h = self.history
        block = torch.from_numpy(self._open().read(t - h + 1, t + self.lead_steps + 1))
        time_ns = torch.tensor(self._store_times[t].astype(np.int64))
        return block[:h], block[h:], time_ns  # views of block [h + k, C, H, W]

    def __getitems__(self, indices: list[int]) -> WindowBatch:
        """A whole batch read into one block (what a DataLoader calls with a batch_size).

        In a DataLoader worker the block is allocated in shared memory, so with
        `collate_windows` it reaches the main process with no copy at all.
        """
        reader = self._open()
        h, span = self.history, self.history + self.lead_steps
        shape = (len(indices), span, *reader.array.shape[1:])
        block = _empty(shape, shared=get_worker_info() is not None)  # [B, h + k, C, H, W]
        starts = self.index[np.asarray(indices, dtype=np.int64)]
        for j, t in enumerate(starts.tolist()):
            reader.read_into(t - h + 1, t - h + 1 + span, block[j].numpy())
        time_ns = torch.from_numpy(self._store_times[starts].astype(np.int64))
        return WindowBatch(block[:, :h], block[:, h:], time_ns)

    def __getstate__(self):
        return {**self.__dict__, "_reader": None}

    collate = staticmethod(collate_windows)

    @staticmethod
    def sample_ids(batch) -> list[int]:
        """The initial time t (ns since 1970-01-01) of each sample in a collated batch."""
        return batch[2].tolist()


def _empty(shape: tuple[int, ...], *, shared: bool) -> torch.Tensor:
    """An uninitialised float32 tensor (the prepared store's dtype); in shared memory if
    ``shared``, so sending it to the main process moves a file descriptor, not the bytes.
    `_new_shared` is the call torch's own `collate_tensor_fn` makes in workers."""
    if not shared:
        return torch.empty(shape, dtype=torch.float32)
    storage = torch.UntypedStorage._new_shared(4 * int(np.prod(shape)))
    return torch.empty(0, dtype=torch.float32).set_(storage).view(shape)
