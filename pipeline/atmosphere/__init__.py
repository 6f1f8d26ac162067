"""A synthetic atmosphere worth learning: a forced-dissipative spectral shallow-water core
(ducc0 spherical harmonics) and the 13-level + surface fields derived from it, written like
WeatherBench2's ERA5. See docs/atmosphere.md.
"""

from pipeline.atmosphere.columns import LEVELS
from pipeline.atmosphere.core import EPOCH, AtmosphereConfig, CoreState, run_core
from pipeline.atmosphere.writer import DEFAULT_PERIODS, VARIABLES, write_synthetic_atmosphere

__all__ = [
    "DEFAULT_PERIODS",
    "EPOCH",
    "LEVELS",
    "VARIABLES",
    "AtmosphereConfig",
    "CoreState",
    "run_core",
    "write_synthetic_atmosphere",
]
