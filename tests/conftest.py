"""Shared fixtures: one embedded Ray cluster per test session (never a stray RAY_ADDRESS)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    os.environ.pop("RAY_ADDRESS", None)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    from pipeline.cluster import describe

    yield describe(embedded=True)
    ray.shutdown()
