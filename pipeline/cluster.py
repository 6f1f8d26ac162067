"""Attach to a Ray cluster, or start an embedded local one."""

from __future__ import annotations

import logging
import os


def connect(address: str | None = None, num_cpus: int | None = None) -> dict:
    """``--address``/``RAY_ADDRESS`` → attach (inside a Ray job it is set); else embedded local.

    The embedded cluster's dashboard listens on 127.0.0.1 only. (Ray resolves a loopback node
    address to the machine's reachable IP on purpose, so its core services cannot be confined to
    loopback from here; Ray ≥ 2.52 guards them with token authentication.) The dashboard runs
    because Ray Train V2's placement-group cleaner polls the state API it serves.
    """
    import ray

    if ray.is_initialized():
        return describe()
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=True,
                 dashboard_host="127.0.0.1", logging_level=logging.WARNING)
    return describe(embedded=not address)


def describe(embedded: bool | None = None) -> dict:
    import ray

    ctx = ray.get_runtime_context()
    return {"gcs_address": ctx.gcs_address, "ray_version": ray.__version__,
            "embedded": embedded, "driver_node_id": ctx.get_node_id()}
