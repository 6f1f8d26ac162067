"""The synthetic atmosphere as a Zarr store laid out like WeatherBench2's ERA5.

Variables: ``geopotential``, ``temperature``, ``u_component_of_wind``, ``v_component_of_wind``,
``specific_humidity`` [time, level, latitude, longitude] and ``2m_temperature``,
``10m_u_component_of_wind``, ``10m_v_component_of_wind``, ``mean_sea_level_pressure``
[time, latitude, longitude], float32. Coordinates: ``time`` datetime64[ns] (6-hourly),
``level`` int64 hPa ascending, ``latitude`` descending (90 → -90), ``longitude`` 0..360.

Grids: ``"5.625"`` = 32 × 64 without poles (WB2's 64×32: φ = ±87.1875°, ...), ``"2.8125"`` =
64 × 128 without poles, ``"1.5"`` = 121 × 240 with poles, ``"0.25"`` = 721 × 1440 with poles, or
``(nlat, nlon)``: with poles when nlat is odd. A grid coarser than the core's (fewer rows and
columns) is the conservative average of the fields computed on the native Gauss–Legendre grid;
any other grid gets the core's spectral state synthesised on it (CC/F1 rings) and the columns
computed there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.atmosphere.columns import LEVELS, column_fields
from pipeline.atmosphere.core import AtmosphereConfig, run_core
from pipeline.atmosphere.sht import SphericalGrid
from pipeline.ingest import atomic_directory
from pipeline.names import CF_ATTRIBUTES
from pipeline.regrid import gaussian_latitude_edges, regrid_conservative_array

ATMOSPHERIC = ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind",
               "specific_humidity")
SURFACE = ("2m_temperature", "10m_u_component_of_wind", "10m_v_component_of_wind",
           "mean_sea_level_pressure")
VARIABLES = ATMOSPHERIC + SURFACE
# Fixed splits; each evaluation period is a whole seasonal cycle.
DEFAULT_PERIODS = {
    "train": ("2001-01-01", "2002-12-31T18"),
    "val": ("2003-01-01", "2003-12-31T18"),
    "test": ("2004-01-01", "2004-12-31T18"),
}
NAMED_GRIDS = {"5.625": (32, 64), "2.8125": (64, 128), "1.5": (121, 240), "0.25": (721, 1440)}


def output_grid(grid) -> tuple[np.ndarray, np.ndarray, bool]:
    """(latitude [H] descending, longitude [W], has_poles) for a grid name or (nlat, nlon)."""
    nlat, nlon = NAMED_GRIDS[grid] if isinstance(grid, str) else (int(grid[0]), int(grid[1]))
    poles = nlat % 2 == 1
    if poles:
        lat = np.linspace(90.0, -90.0, nlat)
    else:
        lat = 90.0 - (np.arange(nlat) + 0.5) * (180.0 / nlat)
    return lat, np.arange(nlon) * (360.0 / nlon), poles


class FieldMaker:
    """Turns core states into output fields on one output grid (float32, selected levels)."""

    def __init__(self, config: AtmosphereConfig, grid, levels, variables):
        self.config = config
        self.lat, self.lon, poles = output_grid(grid)
        self.coarse = self.lat.size < config.nlat and self.lon.size <= config.nlon
        self.native = config.grid()
        self.eval_grid = self.native if self.coarse else SphericalGrid(
            lmax=config.lmax, nlat=self.lat.size, nlon=self.lon.size,
            geometry="CC" if poles else "F1", nthreads=config.nthreads)
        self.level_index = [LEVELS.index(int(p)) for p in levels]
        self.variables = list(variables)
        self._src_edges = gaussian_latitude_edges(config.nlat)

    def __call__(self, state) -> dict[str, np.ndarray]:
        fields = column_fields(state, self.config, self.eval_grid)
        out = {}
        for name in self.variables:
            x = fields[name]
            if x.ndim == 3:
                x = x[self.level_index]
            if self.coarse:
                x = regrid_conservative_array(x, self.native.latitude, self.native.longitude,
                                              self.lat, self.lon, src_lat_edges=self._src_edges)
            out[name] = x.astype(np.float32)
        return out


def _dataset(times, blocks: dict[str, list], maker: FieldMaker, levels, attrs) -> xr.Dataset:
    dims4, dims3 = ("time", "level", "latitude", "longitude"), ("time", "latitude", "longitude")
    data_vars = {}
    for name, arrays in blocks.items():
        units, long_name, standard_name = CF_ATTRIBUTES[name]
        data_vars[name] = ((dims4 if name in ATMOSPHERIC else dims3), np.stack(arrays),
                           {"units": units, "long_name": long_name,
                            "standard_name": standard_name})
    coords = {
        "time": ("time", np.asarray(times, dtype="datetime64[ns]")),
        "level": ("level", np.asarray(levels, dtype=np.int64),
                  {"units": "millibars", "long_name": "pressure_level"}),
        "latitude": ("latitude", maker.lat, {"units": "degrees_north", "long_name": "latitude"}),
        "longitude": ("longitude", maker.lon,
                      {"units": "degrees_east", "long_name": "longitude"}),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def write_synthetic_atmosphere(path, *, start, end, grid="5.625", levels=LEVELS,
                               variables=VARIABLES, seed=0, zarr_format=3, overwrite=False,
                               config: AtmosphereConfig | None = None, block=64) -> Path:
    """Run the core once over [start, end] (6-hourly) and write the WB2-layout store at ``path``.

    Streams ``block`` time steps at a time (memory stays bounded). Written into a temporary
    sibling that replaces ``path`` only when complete. Raises FileExistsError if ``path``
    exists and ``overwrite`` is False, ValueError for an unknown level or variable.
    """
    config = AtmosphereConfig(seed=seed) if config is None else config
    levels = sorted(int(p) for p in levels)
    unknown = [p for p in levels if p not in LEVELS] + [v for v in variables if v not in VARIABLES]
    if unknown:
        raise ValueError(f"unknown levels/variables {unknown}; allowed levels {LEVELS}, "
                         f"variables {VARIABLES}")
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format}")
    maker = FieldMaker(config, grid, levels, variables)
    attrs = {"title": "Synthetic atmosphere (sluice): forced shallow-water core, T"
                      f"{config.lmax}, WB2/ERA5 layout",
             "source": "pipeline.atmosphere", "seed": int(config.seed),
             "core_config": repr(config)}
    path = Path(os.fspath(path))
    with atomic_directory(path, overwrite=overwrite) as tmp:
        first = True
        times, blocks = [], {name: [] for name in variables}

        def flush():
            nonlocal first, times, blocks
            ds = _dataset(times, blocks, maker, levels, attrs)
            if first:
                encoding = {name: {"chunks": (1,) + ds[name].shape[1:]} for name in variables}
                encoding["time"] = {"units": "hours since 2001-01-01", "dtype": "int64",
                                    "calendar": "proleptic_gregorian"}
                ds.to_zarr(tmp, mode="w", zarr_format=zarr_format, consolidated=zarr_format == 2,
                           encoding=encoding)
            else:
                ds.to_zarr(tmp, append_dim="time", zarr_format=zarr_format,
                           consolidated=zarr_format == 2)
            first = False
            times, blocks = [], {name: [] for name in variables}

        for time, state in run_core(config, start, end):
            times.append(time)
            for name, x in maker(state).items():
                blocks[name].append(x)
            if len(times) == block:
                flush()
        if times:
            flush()
    return path
