"""`sluice forecast`: a checkpoint rolled out from an analysis into a WB2-layout forecast Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from pipeline.errors import AnalysisPending, UserError
from pipeline.forecast import (
    Forecaster,
    forecast_dataset,
    make_forecast,
    parse_lead,
    write_forecast,
)
from workflows.cli import main

INIT = "2020-01-04T06"


def tree_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_parse_lead_counts_model_steps_and_rejects_other_leads():
    assert parse_lead("240h", 6) == 40
    assert parse_lead("10d", 6) == 40
    assert parse_lead("12", 6) == 2
    for bad in ("7h", "0h", "-6h", "ten days"):
        with pytest.raises(UserError, match="--lead"):
            parse_lead(bad, 6)


def test_forecast_equals_the_trained_task_rolled_out_from_the_prepared_store(trained):
    """The forecast rebuilt from the checkpoint alone (meta.json + the graph of its spec) steps
    exactly like the training task built from the prepared store, from the same states."""
    from pipeline import checkpoint as ck
    from pipeline.ingest import open_prepared
    from pipeline.tasks.weather import WeatherGlobalTask

    forecaster = Forecaster.from_checkpoint(trained["checkpoint"], trained["root"] / "cache")
    ds = make_forecast(forecaster, trained["source"], INIT, 3)

    task = WeatherGlobalTask(trained["cfg"], trained["inputs"])
    model = task.build_model()
    model.load_state_dict(ck.load_state(trained["checkpoint"])["model"])
    model.eval()
    store = open_prepared(trained["inputs"]["prepared"])
    i = int(np.flatnonzero(store.times == np.datetime64(INIT, "ns"))[0])
    prev, x = (torch.from_numpy(store.data[j][None]) for j in (i - 1, i))
    t0 = int(np.datetime64(INIT, "ns").astype(np.int64))
    expected = []
    with torch.no_grad():
        for k in range(3):
            x_next = task.forecast(model, x, torch.tensor([t0 + k * 6 * 3600 * 10**9]), prev)
            expected.append(x_next[0].numpy())
            prev, x = x, x_next
    expected = np.stack(expected)[:, :, ::-1]  # [K, C, H, W], latitude ascending
    z500 = ds["geopotential"].sel(level=500).values[0]
    np.testing.assert_array_equal(z500, expected[:, 0])
    np.testing.assert_array_equal(ds["temperature"].sel(level=850).values[0], expected[:, 1])
    np.testing.assert_array_equal(ds["2m_temperature"].values[0], expected[:, 2])
    # the forecast moved away from the initial state (a trained model, not persistence)
    assert not np.allclose(z500[0], store.data[i][0, ::-1])


def test_forecast_store_has_the_weatherbench2_layout(trained, tmp_path):
    out = tmp_path / "fc.zarr"
    assert main(["forecast", "--init-time", INIT, "--checkpoint", str(trained["checkpoint"]),
                 "--lead", "18h", "--analysis", str(trained["source"]), "--out", str(out),
                 "--graph-cache", str(tmp_path / "cache")]) == 0
    ds = xr.open_zarr(out, consolidated=False)
    assert set(ds.data_vars) == {"geopotential", "temperature", "2m_temperature"}
    assert ds["geopotential"].dims == ("time", "prediction_timedelta", "level", "latitude",
                                       "longitude")
    assert ds["2m_temperature"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    assert ds["time"].values.tolist() == [np.datetime64(INIT, "ns").astype(int)]
    assert (ds["prediction_timedelta"].values / np.timedelta64(1, "h")).tolist() == [6, 12, 18]
    assert ds["level"].values.tolist() == [500, 850]
    assert np.all(np.diff(ds["latitude"].values) > 0)  # ascending, as WB2's stores
    assert ds["geopotential"].attrs["units"] == "m**2 s**-2"
    assert ds["2m_temperature"].attrs["standard_name"] == "air_temperature"
    assert ds["time"].attrs["standard_name"] == "forecast_reference_time"
    # temperature exists only at 850 here: the 500 hPa slot of the shared level axis is NaN
    assert np.isnan(ds["temperature"].sel(level=500).values).all()
    assert np.isfinite(ds["temperature"].sel(level=850).values).all()
    raw = xr.open_zarr(out, consolidated=False, decode_times=False)
    assert raw["time"].attrs["units"] == "hours since 1970-01-01"
    assert raw["prediction_timedelta"].attrs["units"] == "hours"


def test_same_inputs_write_the_same_bytes(trained, tmp_path):
    args = ["forecast", "--init-time", INIT, "--checkpoint", str(trained["checkpoint"]),
            "--lead", "12h", "--analysis", str(trained["source"]),
            "--graph-cache", str(tmp_path / "cache")]
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b)]) == 0
    assert tree_bytes(a) == tree_bytes(b)
    assert main([*args, "--out", str(a)]) == 2  # exists: not replaced without --overwrite
    assert main([*args, "--out", str(a), "--overwrite"]) == 0
    assert tree_bytes(a) == tree_bytes(b)


def test_an_analysis_not_there_yet_exits_75_and_writes_nothing(trained, tmp_path, capsys):
    out = tmp_path / "late.zarr"
    code = main(["forecast", "--init-time", "2020-01-05T00", "--checkpoint",
                 str(trained["checkpoint"]), "--lead", "6h", "--analysis",
                 str(trained["source"]), "--out", str(out),
                 "--graph-cache", str(tmp_path / "cache")])
    assert code == 75
    err = capsys.readouterr().err
    assert "2020-01-05T00" in err and "2020-01-04T18" in err
    assert not out.exists() and not list(tmp_path.glob(".late.zarr*"))
    with pytest.raises(AnalysisPending):
        make_forecast(Forecaster.from_checkpoint(trained["checkpoint"], tmp_path / "cache"),
                      trained["source"], "2020-01-05T00", 1)


def test_an_analysis_on_another_grid_exits_2_naming_both(trained, tmp_path, capsys):
    from pipeline.synthetic import write_synthetic_era5

    other = write_synthetic_era5(tmp_path / "coarse.zarr", start="2020-01-04",
                                 end="2020-01-04T18", n_lat=6, n_lon=12, levels=(500, 850))
    out = tmp_path / "fc.zarr"
    code = main(["forecast", "--init-time", INIT, "--checkpoint", str(trained["checkpoint"]),
                 "--lead", "6h", "--analysis", str(other), "--out", str(out),
                 "--graph-cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert "coarse.zarr" in err and "latitude" in err and "meta.json" in err
    assert "8 latitudes" in err and "6 latitudes" in err
    assert not out.exists()


def test_an_analysis_missing_a_channel_exits_2(trained, tmp_path, capsys):
    from pipeline.synthetic import write_synthetic_era5

    other = write_synthetic_era5(tmp_path / "no850.zarr", start="2020-01-04",
                                 end="2020-01-04T18", n_lat=8, n_lon=16, levels=(500,))
    code = main(["forecast", "--init-time", INIT, "--checkpoint", str(trained["checkpoint"]),
                 "--lead", "6h", "--analysis", str(other), "--out", str(tmp_path / "x.zarr"),
                 "--graph-cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "no850.zarr" in err and "850" in err


def test_a_checkpoint_with_other_normalisation_is_refused(trained, tmp_path):
    import json
    import shutil

    from pipeline.errors import DataError

    bad = tmp_path / "ckpt"
    shutil.copytree(trained["checkpoint"], bad)
    meta = json.loads((bad / "meta.json").read_text())
    meta["normalisation"]["std"][1] = 0.0
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"normalisation\.std"):
        Forecaster.from_checkpoint(bad, tmp_path / "cache")


def test_forecast_dataset_puts_each_channel_in_its_variable_and_level():
    """Hand-built: channel c holds the value 10 c + lead index, so every slot is checkable."""
    channels = ["geopotential_500", "geopotential_850", "2m_temperature"]
    k, h, w = 2, 3, 4
    values = np.zeros((k, 3, h, w), np.float32)
    for c in range(3):
        for j in range(k):
            values[j, c] = 10 * c + j
    values[:, :, 0] += 100  # the first row is the northernmost (latitude descending in)
    lat = np.array([60.0, 0.0, -60.0])
    ds = forecast_dataset(values, channels, lat, np.arange(4) * 90.0,
                          np.datetime64("2020-01-01T00"), 6.0)
    assert ds["latitude"].values.tolist() == [-60.0, 0.0, 60.0]
    z = ds["geopotential"].values[0]  # [K, L, H, W]
    assert z[1, 1, 0, 0] == 10 + 1 and z[0, 0, 1, 2] == 0
    assert z[0, 0, 2, 0] == 100  # 60°N, now the last row
    assert ds["2m_temperature"].values[0, 1, 1, 3] == 21


def test_an_analysis_in_other_units_is_refused_naming_the_channel(trained, tmp_path, capsys):
    """Geopotential height (m) where the model was trained on geopotential (m² s⁻²)."""
    src = xr.open_zarr(trained["source"], consolidated=False).load()
    src["geopotential"] = src["geopotential"] / 9.80665
    src.to_zarr(tmp_path / "height.zarr", zarr_format=3, consolidated=False)
    code = main(["forecast", "--init-time", INIT, "--checkpoint", str(trained["checkpoint"]),
                 "--lead", "6h", "--analysis", str(tmp_path / "height.zarr"),
                 "--out", str(tmp_path / "x.zarr"), "--graph-cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "geopotential_500" in err and "other units" in err
    assert not (tmp_path / "x.zarr").exists()


def test_a_forecast_on_an_object_store_is_marked_complete_last(trained, tmp_path):
    """memory:// stands in for S3/GCS (no rename): readers require the completion marker."""
    import fsspec

    from pipeline.errors import DataError
    from workflows.verify import open_forecast

    forecaster = Forecaster.from_checkpoint(trained["checkpoint"], tmp_path / "cache")
    ds = make_forecast(forecaster, trained["source"], INIT, 2)
    url = "memory://forecasts/20200104T06.zarr"
    write_forecast(ds, url)
    assert open_forecast(url)["geopotential"].shape[:2] == (1, 2)
    fs = fsspec.filesystem("memory")
    fs.rm("/forecasts/20200104T06.zarr.sluice_complete")
    with pytest.raises(DataError, match="completion marker"):
        open_forecast(url)
    fs.rm("/forecasts", recursive=True)
