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
all indices of a batch at once; they are read into one [B, h + k, C, H, W] block and
`collate_windows` returns views of it. torch's `default_collate` also works, but copies every
batch once more (in a worker, into shared memory), which costs a third of the throughput with 2
workers at 240x121x69.

Batch buffers in DataLoader workers (`BatchBuffers`). A worker's block must be memory the main
process can map, so that the batch's bytes are never copied or pickled. torch's way, a fresh
shared segment per batch, halves a worker's rate (measured at 16 MB batches: ~640 against
~1250 MB/s in process): the kernel zeroes and faults in every page in the worker, and the
main process receives a file descriptor over a socket, maps it and frees the pages. So each
worker keeps a few buffers ("slabs", anonymous memfds) and decodes into one whose previous batch
the main process has given back; the main process maps it through ``/proc/<worker>/fd/<fd>``
(nothing is named, so nothing leaks if a worker is killed). It hands out tensors over a numpy
view of the slab, and a `weakref.finalize` on that view writes the batch's generation into the
slab's header once the view is freed; every slice, ``.numpy()`` or other view of the batch keeps
the view alive, so a slab is never written while the consumer can still see its batch. A
consumer that holds more batches than a worker has slabs (`MAX_SLABS`) gets the rest in fresh
segments, as before: it never waits, and never sees a batch change.
"""

from __future__ import annotations

import mmap
import os
import sys
import weakref
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

    `WeatherWindows.__getitems__` reads a whole batch into one block [B, h + k, C, H, W];
    `collate_windows` returns the batched tensors (no copy), while torch's `default_collate`
    still sees a plain list of samples (and stacks them, copying). ``slab``: the worker's
    `Slab` the block lives in, if any; the batch then travels as `LentWindows`.
    """

    def __init__(self, block: torch.Tensor, history: int, time_ns: torch.Tensor,
                 slab: Slab | None = None):
        inputs, targets = block[:, :history], block[:, history:]
        super().__init__(zip(inputs, targets, time_ns, strict=True))
        if slab is None:
            self.batched = (inputs, targets, time_ns)
        else:
            self.batched = LentWindows(block, history, time_ns, slab)


def collate_windows(batch):
    """collate_fn for `WeatherWindows`: [B, h, C, H, W], [B, k, C, H, W], [B] without a copy."""
    if isinstance(batch, WindowBatch):
        return batch.batched
    return default_collate(batch)


# -- batch buffers of DataLoader workers (see the module docstring) ----------------------------
HEADER_BYTES = 64  # before a slab's payload: int64 [lent, returned] generations, then padding
# Slabs per worker; 0 turns the pool off (a fresh shared segment per batch). In use at once are
# the worker's prefetched batches (prefetch_factor 2), the one it reads, and those the consumer
# still holds (its current one, often its previous one): 8 leaves room for a few more.
MAX_SLABS = int(os.environ.get("SLUICE_WORKER_SLABS", "8"))
# A slab is an anonymous memfd that the main process opens through /proc/<worker>/fd (Linux).
SLABS_POSSIBLE = sys.platform == "linux" and hasattr(os, "memfd_create")


class Slab:
    """One reusable shared-memory batch buffer of a DataLoader worker.

    Layout, uint8 [HEADER_BYTES + nbytes]: int64 ``lent`` (written only by the worker, when the
    batch is pickled for the main process), int64 ``returned`` (written only by the main
    process, when the last view of that batch is freed), padding, then the payload. Free for the
    next batch when no tensor of the worker views it (``here`` False) and ``returned == lent``.
    """

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self.fd = os.memfd_create("sluice-batch", os.MFD_CLOEXEC)
        # Closing the fd with the slab leaves the pages to whoever still maps them.
        weakref.finalize(self, os.close, self.fd)
        os.ftruncate(self.fd, HEADER_BYTES + nbytes)
        self.inode = os.fstat(self.fd).st_ino
        self.memory = np.frombuffer(mmap.mmap(self.fd, HEADER_BYTES + nbytes), dtype=np.uint8)
        self.generations = self.memory[:16].view(np.int64)  # [lent, returned], zero-filled
        self.here = False

    def is_free(self) -> bool:
        # ``here`` covers a batch that never reached the main process (default_collate copied
        # it) or is still on its way (pickled later, by the result queue's feeder thread).
        return not self.here and self.generations[0] == self.generations[1]

    def lend_here(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The payload as a float32 tensor [*shape]; ``here`` until its last view is freed."""
        self.here = True
        return _lease(self.memory, shape, _come_home, self)

    def lend_away(self) -> tuple:
        """Mark the slab lent to the main process (when pickling): how `receive_windows` finds
        it there, (worker pid, fd, inode, size), and this loan's generation."""
        self.generations[0] += 1
        return (os.getpid(), self.fd, self.inode, self.memory.size), int(self.generations[0])


class BatchBuffers:
    """A DataLoader worker's pool of `Slab`s, at most ``max_slabs`` of them.

    `block` returns a free slab's payload (one of the same size, else a new slab, else one
    replacing a free slab of another size) or, with every slab in use, a fresh shared block that
    no slab tracks: the consumer may hold any number of batches, and never waits for a slab.
    """

    def __init__(self, max_slabs: int = MAX_SLABS):
        self.max_slabs = max_slabs if SLABS_POSSIBLE else 0
        self.slabs: list[Slab] = []

    def block(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, Slab | None]:
        """A float32 [*shape] block in shared memory, and the slab it lives in (None: fresh)."""
        slab = self._free_slab(4 * int(np.prod(shape)))
        if slab is None:
            return _empty(shape, shared=True), None
        return slab.lend_here(shape), slab

    def _free_slab(self, nbytes: int) -> Slab | None:
        free = [s for s in self.slabs if s.is_free()]
        same = next((s for s in free if s.nbytes == nbytes), None)
        if same is not None:
            return same
        if len(self.slabs) >= self.max_slabs:
            if not free:
                return None
            self.slabs.remove(free[0])  # of a batch size no longer asked for
        self.slabs.append(Slab(nbytes))
        return self.slabs[-1]


class LentWindows(tuple):
    """(inputs [B, h, C, H, W], targets [B, k, C, H, W], time_ns [B]) whose block [B, h + k, C,
    H, W] is a worker's `Slab`. Pickled (for the main process), it marks the slab lent and
    travels as a few numbers (where the slab is, the loan's generation, the shapes) and time_ns;
    `receive_windows` unpickles it."""

    def __new__(cls, block: torch.Tensor, history: int, time_ns: torch.Tensor, slab: Slab):
        windows = super().__new__(cls, (block[:, :history], block[:, history:], time_ns))
        windows.block_shape, windows.history, windows.slab = tuple(block.shape), history, slab
        return windows

    def __reduce__(self):
        where, generation = self.slab.lend_away()
        return receive_windows, (where, generation, self.block_shape, self.history,
                                 self[2].numpy())


def receive_windows(where: tuple, generation: int, block_shape: tuple[int, ...], history: int,
                    time_ns: np.ndarray) -> tuple:
    """Unpickle `LentWindows` (main process): (inputs, targets, time_ns) tensors whose last
    view, once freed, gives the slab back to its worker."""
    slab = _map_slab(*where)
    # The finalizer holds the header, so the slab stays mapped until the generation is written.
    block = _lease(slab, block_shape, _give_back, generation, slab[:16].view(np.int64),
                   os.getpid())
    return block[:, :history], block[:, history:], torch.from_numpy(time_ns)


def _map_slab(pid: int, fd: int, inode: int, size: int) -> np.ndarray:
    """A worker's slab mapped here: uint8 [size], unmapped when the array is freed."""
    try:
        here = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeError(f"cannot open DataLoader worker {pid}'s batch buffer ({e}); "
                           "SLUICE_WORKER_SLABS=0 sends every batch in a fresh segment") from e
    try:
        if os.fstat(here).st_ino != inode:  # a lent slab keeps its fd: this would be a bug
            raise RuntimeError(f"worker {pid}'s fd {fd} is no longer its batch buffer")
        return np.frombuffer(mmap.mmap(here, size), dtype=np.uint8)
    finally:
        os.close(here)


def _lease(slab: np.ndarray, shape: tuple[int, ...], release, *args) -> torch.Tensor:
    """float32 [*shape] tensor over the payload of ``slab`` (uint8 [HEADER_BYTES + n]);
    ``release(*args)`` runs once its storage, hence every view of it, is freed.

    The tensor's storage holds the payload array (torch.from_numpy keeps it), slices and
    ``.numpy()`` hold the storage, and the finalizer fires when the payload array goes.
    """
    payload = slab[HEADER_BYTES:HEADER_BYTES + 4 * int(np.prod(shape))]
    payload = payload.view(np.float32).reshape(shape)
    weakref.finalize(payload, release, *args).atexit = False
    return torch.from_numpy(payload)


def _come_home(slab: Slab) -> None:
    slab.here = False  # the worker's own views are gone (the batch was pickled, or copied)


def _give_back(generation: int, generations: np.ndarray, receiver: int) -> None:
    if os.getpid() != receiver:
        return  # a forked child dropping its copy: the receiver may still view the batch
    # The worker may write this slab again. The consumer's last reads of the batch happened
    # before its last reference went, so they precede this store (x86-64 keeps loads before
    # later stores; elsewhere the interpreter's work in between is the margin).
    generations[1] = generation


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
        self._buffers = None  # BatchBuffers, in a DataLoader worker only

    @property
    def times(self) -> np.ndarray:
        """Initial times t of the samples, in index order: [N] datetime64[ns]."""
        return self._store_times[self.index]

    def __len__(self) -> int:
        return len(self.index)

    def _open(self) -> ChunkReader:
        if self._reader is None:
            # The array alone: no group listing or attribute reads in every worker. A string
            # join, not a Path one: the store may be an object-store URL (memory://, s3://).
            self._reader = ChunkReader(zarr.open_array(
                f"{self.prepared_path.rstrip('/')}/data", mode="r"))
        return self._reader

    def __getitem__(self, i: int):
        t = int(self.index[i])
        h = self.history
        block = torch.from_numpy(self._open().read(t - h + 1, t + self.lead_steps + 1))
        time_ns = torch.tensor(self._store_times[t].astype(np.int64))
        return block[:h], block[h:], time_ns  # views of block [h + k, C, H, W]

    def __getitems__(self, indices: list[int]) -> WindowBatch:
        """A whole batch read into one block (what a DataLoader calls with a batch_size).

        In a DataLoader worker the block is one of the worker's reusable shared slabs, so with
        `collate_windows` it reaches the main process with no copy at all.
        """
        reader = self._open()
        h, span = self.history, self.history + self.lead_steps
        shape = (len(indices), span, *reader.array.shape[1:])
        block, slab = self._allocate(shape)  # [B, h + k, C, H, W]
        starts = self.index[np.asarray(indices, dtype=np.int64)]
        for j, t in enumerate(starts.tolist()):
            reader.read_into(t - h + 1, t - h + 1 + span, block[j].numpy())
        time_ns = torch.from_numpy(self._store_times[starts].astype(np.int64))
        return WindowBatch(block, h, time_ns, slab)

    def _allocate(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, Slab | None]:
        if get_worker_info() is None:
            return _empty(shape, shared=False), None
        if self._buffers is None:
            self._buffers = BatchBuffers()
        return self._buffers.block(shape)

    def __getstate__(self):
        return {**self.__dict__, "_reader": None, "_buffers": None}

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
