"""Ingest's Dask inside Ray: threads sized to the task's CPUs, or Ray's own Dask scheduler."""

import numpy as np

from pipeline.ingest import dask_workers, open_prepared, prepare_weather
from pipeline.synthetic import write_synthetic_era5


def test_dask_threads_follow_the_ray_task_cpus(ray_cluster):
    import ray

    @ray.remote(num_cpus=1)
    def inside():
        return dask_workers()

    assert ray.get(inside.remote()) == 1
    assert dask_workers() >= 1  # the driver is not a task: the machine's CPU count


def test_ray_dask_scheduler_gives_the_threaded_result(ray_cluster, tmp_path):
    import ray

    src = write_synthetic_era5(tmp_path / "src.zarr", start="2020-01-01", end="2020-01-03T18",
                               n_lat=8, n_lon=16)
    kw = {"variables": ["geopotential@500", "2m_temperature"],
          "train_period": ("2020-01-01", "2020-01-02T18")}

    @ray.remote(num_cpus=1)
    def ingest(dest, kind):
        prepare_weather(src, dest, dask_scheduler_kind=kind, **kw)

    ray.get([ingest.remote(tmp_path / "threads.zarr", "threads")])
    ray.get([ingest.remote(tmp_path / "ray.zarr", "ray")])
    a, b = open_prepared(tmp_path / "threads.zarr"), open_prepared(tmp_path / "ray.zarr")
    np.testing.assert_array_equal(a.data[:], b.data[:])
    for stat in ("mean", "std", "diff_std"):
        np.testing.assert_array_equal(getattr(a, stat), getattr(b, stat))
