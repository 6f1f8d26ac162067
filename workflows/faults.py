"""Deterministic fault injection: die at a named point of the nightly workflow.

``SLUICE_FAULT=POINT`` (or ``POINT@N``: at the N-th time the run passes it, 1-based) makes the
process SIGKILL itself there, as a node loss or an OOM kill would: no exception handler, no
``finally``, no atexit runs. The tests set it at every stage and publish boundary and then check
that a re-run publishes exactly what an uninterrupted run does. Unset, a point costs one dict
lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAULT_ENV = "SLUICE_FAULT"
# Every point the nightly workflow passes, in order (per init time where marked *).
POINTS = (
    "locked",  # the lock is held, nothing written yet
    "bootstrapped",  # checkpoint and analysis store ready
    "forecast_written",  # * the forecast store is written under its temporary name
    "forecast_published",  # * ... and renamed into place
    "scorecard_written",  # the upserted scorecard is written under its temporary name
    "scorecard_published",
    "plots_written",
    "report_published",
)
_passed: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """SIGKILL this process if ``SLUICE_FAULT`` names this point (and occurrence)."""
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}; points: {POINTS}")
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    _passed[name] += 1
    if point == name and _passed[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
