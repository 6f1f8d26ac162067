"""`sluice ingest` on a synthetic atmosphere store, regridded conservatively (CI-sized)."""

import numpy as np
import xarray as xr

from pipeline.config import Config
from pipeline.ingest import open_prepared
from pipeline.regrid import regrid_conservative_array
from pipeline.runner import run_stages
from pipeline.stages import pipeline_stages


def test_ingest_stage_regrids_a_synthetic_atmosphere(ray_cluster, tmp_path):
    cfg = Config.model_validate({
        "data": {
            "synthetic": {"kind": "atmosphere", "spinup_days": 1, "n_lat": 33, "n_lon": 64,
                          "start": "2001-01-01", "end": "2001-01-02T18"},
            "variables": ["geopotential@500", "temperature@850", "2m_temperature"],
            "regrid": {"n_lat": 17, "n_lon": 32},
            "periods": {"train": ["2001-01-01", "2001-01-01T18"],
                        "val": ["2001-01-02", "2001-01-02T06"],
                        "test": ["2001-01-02T12", "2001-01-02T18"]},
        },
    }).model_dump(mode="json")
    manifest = run_stages(pipeline_stages(cfg), cfg, tmp_path, ["ingest"], ray_cluster)
    assert manifest["stages"]["ingest"]["status"] == "done"

    raw = xr.open_zarr(tmp_path / "ingest" / "raw.zarr")
    assert raw.sizes["latitude"] == 33 and raw.attrs["source"] == "pipeline.atmosphere"
    prepared = open_prepared(tmp_path / "ingest" / "prepared.zarr")
    np.testing.assert_array_equal(prepared.lat, np.linspace(90, -90, 17))
    np.testing.assert_array_equal(prepared.lon, np.arange(32) * 11.25)
    assert prepared.channels == ("geopotential_500", "temperature_850", "2m_temperature")
    z500 = raw["geopotential"].sel(level=500).values  # [T, 33, 64]
    expect = regrid_conservative_array(z500, raw.latitude.values, raw.longitude.values,
                                       prepared.lat, prepared.lon)
    np.testing.assert_allclose(prepared.data[:, 0], expect, rtol=1e-6)
