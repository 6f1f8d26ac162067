"""Reusable shared batch buffers of DataLoader workers: reused, never written while viewed."""

import gc
import os
from collections import deque
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch

from pipeline.datasets import (
    MAX_SLABS,
    BatchBuffers,
    LentWindows,
    WeatherWindows,
    receive_windows,
)
from pipeline.sampler import ResumableDistributedSampler
from pipeline.train import make_loader
from tests.pipeline.helpers import WINDOW_SPECS, WINDOW_TIMES, small_prepared_store

SPECS, ALL = WINDOW_SPECS, WINDOW_TIMES  # the store's 20 six-hourly times


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return small_prepared_store(tmp_path_factory.mktemp("buffers"))


SHARED = ("/memfd:sluice-batch", "/dev/shm/")  # a worker's slab, a fresh torch segment


def segment_of(tensor: torch.Tensor) -> tuple[str, int]:
    """(device, inode) of the shared-memory file mapped at ``tensor``'s data in this process."""
    ptr = tensor.data_ptr()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(a, 16) for a in fields[0].split("-"))
            if start <= ptr < end:
                assert any(kind in line for kind in SHARED), line
                return fields[3], int(fields[4])
    raise AssertionError(f"{ptr:#x} is not mapped")


def mapped_segments() -> set[tuple[str, int]]:
    with open("/proc/self/maps") as maps:
        return {(f[3], int(f[4])) for f in map(str.split, maps)
                if len(f) > 5 and f[5].startswith(SHARED)}


def send(windows: LentWindows) -> tuple:
    """Pickle a worker's batch as the DataLoader does and unpickle it (here, in one process)."""
    return ForkingPickler.loads(ForkingPickler.dumps(windows))


def lend(pool: BatchBuffers, fill: float):
    block, slab = pool.block((1, 2, 3))
    block.fill_(fill)
    return LentWindows(block, 1, torch.zeros(1, dtype=torch.int64), slab), slab


def test_a_slab_comes_back_only_when_its_last_view_is_freed():
    pool = BatchBuffers(max_slabs=2)
    windows, first = lend(pool, 1.0)
    held = send(windows)[1][0].numpy()  # a numpy view of one sample's targets [1, 3]
    del windows
    gc.collect()
    assert not first.is_free()  # the receiver still sees it
    windows, second = lend(pool, 2.0)
    assert second is not first and second is not None
    received = send(windows)
    del windows
    windows, over = lend(pool, 3.0)  # both slabs lent: a fresh block, tracked by no slab
    assert over is None and len(pool.slabs) == 2
    del windows, over
    np.testing.assert_array_equal(held, 1.0)
    del held
    gc.collect()
    assert first.is_free() and not second.is_free()
    windows, again = lend(pool, 4.0)
    assert again is first  # reused, not reallocated
    del received
    gc.collect()
    assert second.is_free() and not again.is_free()  # ``windows`` views ``again`` here


def test_a_batch_pickled_but_never_received_keeps_its_slab():
    pool = BatchBuffers(max_slabs=1)
    windows, slab = lend(pool, 1.0)
    ForkingPickler.dumps(windows)  # on its way: the receiver will give it back, not we
    del windows
    gc.collect()
    assert not slab.is_free()
    assert pool.block((1, 2, 3))[1] is None


def open_slab_fds() -> int:
    """File descriptors of this process open on a slab (a memfd)."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the directory's own fd, closed by now
            pass
    return sum("sluice-batch" in link for link in links)


def test_a_forked_child_dropping_a_batch_does_not_give_it_back():
    pool = BatchBuffers(max_slabs=1)
    windows, slab = lend(pool, 1.0)
    received = send(windows)
    del windows
    child = os.fork()
    if child == 0:  # drops its copy of the batch, then leaves without any clean-up
        del received
        gc.collect()
        os._exit(0 if not slab.is_free() else 1)
    assert os.waitpid(child, 0)[1] == 0
    assert not slab.is_free()  # we still view it
    del received
    gc.collect()
    assert slab.is_free()


def test_another_batch_size_replaces_a_free_slab():
    pool = BatchBuffers(max_slabs=1)
    block, slab = pool.block((2, 3))
    del block
    gc.collect()
    before = open_slab_fds()
    for shape in [(4 + n % 2, 3) for n in range(20)]:
        block, other = pool.block(shape)
        assert other is not slab and pool.slabs == [other] and block.shape == shape
        del block, slab  # freed by reference counting: no cycles to collect
        slab = other
    del slab
    assert open_slab_fds() <= before  # a replaced slab's memfd is closed
    block, none = BatchBuffers(max_slabs=0).block((2, 3))  # SLUICE_WORKER_SLABS=0: no pool
    assert none is None and block.untyped_storage().is_shared()


def test_a_buffer_that_is_not_the_slab_sent_is_refused():
    pool = BatchBuffers()
    windows, slab = lend(pool, 1.0)
    receive, (where, *rest) = windows.__reduce__()
    assert receive is receive_windows
    pid, fd, inode, size = where
    with pytest.raises(RuntimeError, match="no longer its batch buffer"):
        receive_windows((pid, fd, inode + 1, size), *rest)


def test_two_workers_match_in_process_while_the_consumer_holds_old_batches(prepared):
    """Five epochs through 2 spawned workers, bit for bit the 0-worker batches. In the first
    three the consumer keeps views of its last 4 batches and of every 7th one: no held batch
    changes, and the workers reuse their slabs. In the last two it keeps every batch, more than
    the workers have slabs: the rest come in fresh segments, all intact. Once nothing views
    them, the main process has unmapped every buffer it was sent."""
    ds = WeatherWindows(prepared, ALL, history=2, lead_steps=1)
    sampler = ResumableDistributedSampler(len(ds), seed=3)
    epochs, hoarding = range(5), range(3, 5)
    expected = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        expected += list(make_loader(ds, sampler, 2, 0, ds.collate))
    before = mapped_segments()

    loader = make_loader(ds, sampler, 2, 2, ds.collate)
    recent, kept, segments, step = deque(maxlen=4), [], set(), 0
    for epoch in epochs:
        sampler.set_epoch(epoch)
        for inputs, targets, time_ns in loader:
            want = expected[step]
            assert torch.equal(inputs, want[0]) and torch.equal(targets, want[1])
            assert torch.equal(time_ns, want[2])
            if epoch not in hoarding:
                segments.add(segment_of(inputs))
            views = (step, inputs[:, -1], targets.numpy(), time_ns)  # views, no copies
            recent.append(views)
            if step % 7 == 0 or epoch in hoarding:
                kept.append(views)
            for i, last_input, target, t in (*recent, *kept):
                assert torch.equal(last_input, expected[i][0][:, -1]), f"batch {i} overwritten"
                np.testing.assert_array_equal(target, expected[i][1].numpy())
                assert torch.equal(t, expected[i][2])
            del inputs, targets, time_ns, views
            step += 1
        if epoch == hoarding[0] - 1:  # reused, not one segment per batch
            assert len(segments) <= 2 * MAX_SLABS < step
    assert step == len(expected) == 5 * (len(ds) // 2)
    assert len(kept) > 2 * MAX_SLABS
    del recent, kept, loader, last_input, target, t
    gc.collect()
    assert not (mapped_segments() - before)  # the main process maps nothing it was sent
