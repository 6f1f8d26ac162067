"""Ingest: sources as the field stores them → prepared Zarr stores the tasks read.

`pipeline.ingest.weather`: ERA5-style Zarr / NetCDF → the prepared weather store (re-exported
here, its long-standing import path). `pipeline.ingest.video`: per-video frame features and a
QA table → the prepared video-QA store.
"""

from pipeline.ingest.weather import (
    PreparedWeather,
    array_sha256,
    atomic_directory,
    channel_pick,
    channel_variable_level,
    check_times,
    combine_expver,
    dask_scheduler,
    dask_workers,
    normalise_grid,
    open_prepared,
    open_source,
    parse_channel,
    prepare_weather,
    publish_destination,
    read_manifest,
    select_channel,
    write_manifest,
)

__all__ = ["PreparedWeather", "array_sha256", "atomic_directory", "channel_pick",
           "channel_variable_level", "check_times", "combine_expver", "dask_scheduler",
           "dask_workers", "normalise_grid", "open_prepared", "open_source", "parse_channel",
           "prepare_weather", "publish_destination", "read_manifest", "select_channel",
           "write_manifest"]
