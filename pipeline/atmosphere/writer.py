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

import contextlib
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


def selected_levels(fields: dict[str, np.ndarray], variables, level_index):
    """(name, field) for each of ``variables``, a 3-D field [level, lat, lon] cut to the
    ``level_index`` levels."""
    for name in variables:
        x = fields[name]
        yield name, (x[level_index] if x.ndim == 3 else x)


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
        return self.from_fields(column_fields(state, self.config, self.eval_grid))

    def from_fields(self, fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The output fields from the core's column fields on ``eval_grid``."""
        out = {}
        for name, x in selected_levels(fields, self.variables, self.level_index):
            if self.coarse:
                x = regrid_conservative_array(x, self.native.latitude, self.native.longitude,
                                              self.lat, self.lon, src_lat_edges=self._src_edges)
            out[name] = x.astype(np.float32)
        return out


class NativeCrop:
    """The native Gauss–Legendre fields inside a box: a regional truth at the core's resolution.

    Rows are the native latitudes in [lat_min, lat_max], columns the native longitudes from
    lon_min eastward to lon_max (lon_min > lon_max crosses the date line; columns stay in
    0..360 order, as every store here). Same variables, levels and times as the global output
    it is written beside, from the same core states: the global fields are its conservative
    coarsening (FieldMaker with a coarse grid), so the two are consistent by construction.
    """

    def __init__(self, maker: FieldMaker, box):
        if not maker.coarse:
            raise ValueError("a native regional crop needs a global output grid coarser than "
                             f"the core's {maker.config.nlat} x {maker.config.nlon}")
        from graphs.regions import box_indices

        lat, lon = np.asarray(maker.native.latitude), np.asarray(maker.native.longitude)
        self.rows, self.cols = box_indices(lat, lon, box)
        if self.rows.size < 2 or self.cols.size < 2:
            raise ValueError(f"box {list(box)} holds {self.rows.size} x {self.cols.size} native "
                             "grid points; at least 2 x 2 are needed")
        self.maker = maker
        self.lat, self.lon = lat[self.rows], lon[self.cols]
        self.variables, self.level_index = maker.variables, maker.level_index

    def from_fields(self, fields: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: x[..., self.rows[:, None], self.cols].astype(np.float32)
                for name, x in selected_levels(fields, self.variables, self.level_index)}


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
                               config: AtmosphereConfig | None = None, block=64,
                               native_crop=None) -> Path:
    """Run the core once over [start, end] (6-hourly) and write the WB2-layout store at ``path``.

    Streams ``block`` time steps at a time (memory stays bounded). Written into a temporary
    sibling that replaces ``path`` only when complete. Raises FileExistsError if ``path``
    exists and ``overwrite`` is False, ValueError for an unknown level or variable.

    native_crop: ``(path, (lat_min, lat_max, lon_min, lon_max))`` also writes, from the same
    core states, the native-resolution fields inside the box (`NativeCrop`) as a second store
    of the same layout at that path (the regional truth whose coarsening is ``path``'s data).
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
    crop = None if native_crop is None else NativeCrop(maker, native_crop[1])
    attrs = {"title": "Synthetic atmosphere (sluice): forced shallow-water core, T"
                      f"{config.lmax}, WB2/ERA5 layout",
             "source": "pipeline.atmosphere", "seed": int(config.seed),
             "core_config": repr(config)}
    outputs = [(Path(os.fspath(path)), maker, attrs)]
    if crop is not None:
        outputs.append((Path(os.fspath(native_crop[0])), crop,
                        {**attrs, "title": attrs["title"] + ", native grid inside "
                         f"{[float(v) for v in native_crop[1]]}"}))
    with contextlib.ExitStack() as stack:
        writers = [_BlockWriter(stack.enter_context(atomic_directory(p, overwrite=overwrite)),
                                m, levels, a, variables, zarr_format)
                   for p, m, a in outputs]
        for time, state in run_core(config, start, end):
            fields = column_fields(state, config, maker.eval_grid)
            for w in writers:
                w.add(time, w.maker.from_fields(fields))
                if len(w.times) == block:
                    w.flush()
        for w in writers:
            if w.times:
                w.flush()
    return Path(os.fspath(path))


class _BlockWriter:
    """Appends blocks of time steps to one WB2-layout store (the first block creates it)."""

    def __init__(self, tmp, maker, levels, attrs, variables, zarr_format):
        self.tmp, self.maker, self.levels, self.attrs = tmp, maker, levels, attrs
        self.variables, self.zarr_format = variables, zarr_format
        self.first, self.times, self.blocks = True, [], {name: [] for name in variables}

    def add(self, time, fields: dict[str, np.ndarray]) -> None:
        self.times.append(time)
        for name, x in fields.items():
            self.blocks[name].append(x)

    def flush(self) -> None:
        ds = _dataset(self.times, self.blocks, self.maker, self.levels, self.attrs)
        fmt = self.zarr_format
        if self.first:
            encoding = {name: {"chunks": (1,) + ds[name].shape[1:]} for name in self.variables}
            encoding["time"] = {"units": "hours since 2001-01-01", "dtype": "int64",
                                "calendar": "proleptic_gregorian"}
            ds.to_zarr(self.tmp, mode="w", zarr_format=fmt, consolidated=fmt == 2,
                       encoding=encoding)
        else:
            ds.to_zarr(self.tmp, append_dim="time", zarr_format=fmt, consolidated=fmt == 2)
        self.first, self.times = False, []
        self.blocks = {name: [] for name in self.variables}
