"""One nightly run at a time per workflow root: an exclusive ``flock`` on ROOT/.nightly.lock.

flock locks belong to the open file, so the kernel drops the lock when its holder dies in any
way (SIGKILL included): there is no stale lock to clean up after a crash. A second run finds it
held and exits 75 (EX_TEMPFAIL): a scheduler retries later, by which time the first has
published the date. One lock for the whole root, not one per date: catching up writes several
dates and one scorecard, so two runs could collide on any of them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import EX_TEMPFAIL

LOCK_NAME = ".nightly.lock"


class WorkflowBusy(Exception):
    """Another run holds the workflow's lock: retry later (exit 75)."""

    exit_code = EX_TEMPFAIL


@contextmanager
def exclusive_lock(root: Path) -> Iterator[Path]:
    """Hold ROOT/.nightly.lock for the block; WorkflowBusy at once if another process has it."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise WorkflowBusy(f"{path}: another nightly run (pid {holder}) holds the lock; "
                               "retry when it has finished") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the message above only
        yield path
    finally:
        os.close(fd)  # releases the lock
