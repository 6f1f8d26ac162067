"""Variable and dimension names: everything is renamed to WeatherBench2's on read.

Channel specs (``var`` / ``var@level``) always use WB2 long names (``temperature@850``,
``2m_temperature``). Sources may use either the WB2 names or ERA5's short (GRIB/CDS) names, and
new-style CDS NetCDF names its dims ``valid_time`` / ``pressure_level``; a user's
``data.name_map`` ({source name: WB2 name}) covers anything else and wins over the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import DataError

if TYPE_CHECKING:  # config validation imports this module; keep it free of xarray
    import xarray as xr

# ERA5 short name → WeatherBench2 long name. A bare `z` is the pressure-level geopotential here
# (its surface field is `geopotential_at_surface` in WB2; map it with name_map when needed).
ERA5_TO_WB2 = {
    "z": "geopotential",
    "t": "temperature",
    "u": "u_component_of_wind",
    "v": "v_component_of_wind",
    "w": "vertical_velocity",
    "q": "specific_humidity",
    "r": "relative_humidity",
    "t2m": "2m_temperature",
    "d2m": "2m_dewpoint_temperature",
    "u10": "10m_u_component_of_wind",
    "v10": "10m_v_component_of_wind",
    "u100": "100m_u_component_of_wind",
    "v100": "100m_v_component_of_wind",
    "msl": "mean_sea_level_pressure",
    "sp": "surface_pressure",
    "sst": "sea_surface_temperature",
    "tp": "total_precipitation",
    "tcwv": "total_column_water_vapour",
    "lsm": "land_sea_mask",
}
WB2_NAMES = frozenset(ERA5_TO_WB2.values())

# WB2 name → (units, long_name, CF standard_name), units spelt as ERA5 and WB2 store them. The
# synthetic stores write these; a forecast store takes a variable's attributes from its
# analysis source and falls back to this table.
CF_ATTRIBUTES = {
    "geopotential": ("m**2 s**-2", "Geopotential", "geopotential"),
    "temperature": ("K", "Temperature", "air_temperature"),
    "u_component_of_wind": ("m s**-1", "U component of wind", "eastward_wind"),
    "v_component_of_wind": ("m s**-1", "V component of wind", "northward_wind"),
    "vertical_velocity": ("Pa s**-1", "Vertical velocity", "lagrangian_tendency_of_air_pressure"),
    "specific_humidity": ("kg kg**-1", "Specific humidity", "specific_humidity"),
    "relative_humidity": ("%", "Relative humidity", "relative_humidity"),
    "2m_temperature": ("K", "2 metre temperature", "air_temperature"),
    "2m_dewpoint_temperature": ("K", "2 metre dewpoint temperature", "dew_point_temperature"),
    "10m_u_component_of_wind": ("m s**-1", "10 metre U wind component", "eastward_wind"),
    "10m_v_component_of_wind": ("m s**-1", "10 metre V wind component", "northward_wind"),
    "100m_u_component_of_wind": ("m s**-1", "100 metre U wind component", "eastward_wind"),
    "100m_v_component_of_wind": ("m s**-1", "100 metre V wind component", "northward_wind"),
    "mean_sea_level_pressure": ("Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level"),
    "surface_pressure": ("Pa", "Surface pressure", "surface_air_pressure"),
    "sea_surface_temperature": ("K", "Sea surface temperature", "sea_surface_temperature"),
    "total_column_water_vapour": ("kg m**-2", "Total column vertically-integrated water vapour",
                                  "atmosphere_mass_content_of_water_vapor"),
}

# Dimension/coordinate aliases seen in real stores → the names used inside Sluice.
DIM_ALIASES = {
    "lat": "latitude",
    "lon": "longitude",
    "valid_time": "time",  # CDS NetCDF since 2024
    "pressure_level": "level",  # CDS NetCDF since 2024
    "isobaricInhPa": "level",  # cfgrib
}


def wb2_name(name: str, name_map: dict[str, str] | None = None) -> str:
    """The WB2 long name of a source variable name (unchanged when it is not known)."""
    if name_map and name in name_map:
        return name_map[name]
    return ERA5_TO_WB2.get(name, name)


def normalise_names(ds: xr.Dataset, name_map: dict[str, str] | None = None,
                    source: object = "") -> xr.Dataset:
    """Rename dims/coords to (time, level, latitude, longitude) and variables to WB2 names.

    DataError if two source names land on one name (e.g. both `t2m` and `2m_temperature`, or
    both `time` and `valid_time`): which one the user meant is not ours to guess.
    """
    renames: dict[str, str] = {}
    for old in ds.variables:
        old = str(old)
        if name_map and old in name_map:
            renames[old] = name_map[old]
        elif old in DIM_ALIASES:
            renames[old] = DIM_ALIASES[old]
        elif old in ds.data_vars and old in ERA5_TO_WB2:
            renames[old] = ERA5_TO_WB2[old]
    for old in ds.dims:  # a dim without a coordinate variable
        if str(old) in DIM_ALIASES and str(old) not in renames:
            renames[str(old)] = DIM_ALIASES[str(old)]
    renames = {k: v for k, v in renames.items() if k != v}
    targets: dict[str, str] = {}
    for old in map(str, ds.variables):
        new = renames.get(old, old)
        if new in targets:
            raise DataError(source, new, "one source variable per name",
                            f"both '{targets[new]}' and '{old}'")
        targets[new] = old
    return ds.rename(renames)


def channel_specs(pressure_variables=(), levels=(), surface_variables=()) -> list[str]:
    """The compact selection as specs: each pressure variable at every level, then surface.

    (['geopotential', 'temperature'], [500, 850], ['2m_temperature']) →
    ['geopotential@500', 'geopotential@850', 'temperature@500', 'temperature@850',
     '2m_temperature']; 5 pressure variables × 13 levels + 4 surface = OneForecast's 69.
    """
    return [f"{v}@{level:g}" for v in pressure_variables for level in levels] + list(
        surface_variables)
