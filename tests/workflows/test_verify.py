"""Verification of published forecasts, exact on hand-built stores, and the scorecard table."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis import read_analysis
from pipeline.forecast import forecast_dataset, write_forecast
from tests.workflows.conftest import SPECS
from workflows.scoretable import ScoreTable
from workflows.verify import verify_forecast

INIT = np.datetime64("2020-01-03T00", "ns")
LEADS = (6, 12, 18, 24)


def hand_built_forecast(trained, path, c: float):
    """truth + c · lead (hours) at every point of every channel, as a WB2 forecast store."""
    valid = INIT + np.array(LEADS, dtype="timedelta64[h]")
    truth = read_analysis(trained["source"], valid, SPECS)
    values = truth.values.astype(np.float64) + c * np.array(LEADS, float)[:, None, None, None]
    ds = forecast_dataset(values.astype(np.float32), truth.channels, truth.lat, truth.lon, INIT,
                          6.0)
    write_forecast(ds, path)
    return truth


@pytest.mark.parametrize("c", [0.5, -0.25])
def test_truth_plus_c_lead_scores_rmse_and_bias_c_lead(trained, tmp_path, c):
    truth = hand_built_forecast(trained, tmp_path / "fc.zarr", c)
    rows = verify_forecast(tmp_path / "fc.zarr", trained["source"], SPECS,
                           newest=np.datetime64("2020-01-04T18", "ns"), done=set())
    assert len(rows) == len(LEADS) * len(SPECS)
    for row in rows:
        ch = [s.replace("@", "_") for s in SPECS].index(
            row["variable"] + (f"_{row['level_hpa']}" if row["level_hpa"] else ""))
        # float32 storage rounds truth + c·lead to the field's spacing, nothing else
        tol = float(np.spacing(np.abs(truth.values[:, ch]).max()))
        assert row["bias"] == pytest.approx(c * row["lead_hours"], abs=tol)
        assert row["rmse"] == pytest.approx(abs(c) * row["lead_hours"], abs=tol)
        assert row["valid_time"] == str(np.datetime64(INIT, "s")
                                        + np.timedelta64(row["lead_hours"], "h"))


def test_only_leads_the_analyses_cover_and_not_yet_scored_are_verified(trained, tmp_path):
    hand_built_forecast(trained, tmp_path / "fc.zarr", 1.0)
    newest = INIT + np.timedelta64(12, "h")
    rows = verify_forecast(tmp_path / "fc.zarr", trained["source"], SPECS, newest=newest,
                           done={("2020-01-03T00:00:00", 6)})
    assert sorted({r["lead_hours"] for r in rows}) == [12]


def test_persistence_and_climatology_are_scored_beside_the_model(trained, tmp_path):
    from pipeline.climatology import open_climatology

    hand_built_forecast(trained, tmp_path / "fc.zarr", 0.0)  # the truth itself
    rows = verify_forecast(tmp_path / "fc.zarr", trained["source"], SPECS,
                           newest=np.datetime64("2020-01-04T18", "ns"), done=set(),
                           climatology=open_climatology(trained["climatology"]))
    for r in rows:
        assert r["rmse"] == 0.0 and r["acc"] == pytest.approx(1.0)
        assert r["persistence_rmse"] > 0 and r["climatology_rmse"] > 0
        assert r["persistence_acc"] < 1.0


def row(init, lead, variable, level, rmse, bias=0.0, acc=None):
    return {"init_time": init, "lead_hours": lead, "variable": variable, "level_hpa": level,
            "valid_time": "x", "rmse": rmse, "bias": bias, "acc": acc,
            "persistence_rmse": 2 * rmse, "persistence_acc": None, "climatology_rmse": None}


def test_upsert_replaces_rows_by_key_and_round_trips_exactly(tmp_path):
    table = ScoreTable({})
    table.upsert([row("2020-01-01T00:00:00", 6, "geopotential", "500", 1.0),
                  row("2020-01-01T00:00:00", 6, "2m_temperature", "", 0.1 + 0.2)])
    table.upsert([row("2020-01-01T00:00:00", 6, "geopotential", "500.0", 3.0)])  # same key
    assert len(table.rows) == 2
    table.write(tmp_path / "s.csv")
    again = ScoreTable.read(tmp_path / "s.csv")
    assert again.to_csv() == table.to_csv()
    assert again.rows[("2020-01-01T00:00:00", 6, "2m_temperature", "")]["rmse"] == 0.1 + 0.2
    assert again.rows[("2020-01-01T00:00:00", 6, "geopotential", "500")]["rmse"] == 3.0


def test_lead_curves_follow_weatherbench2_rmse_over_inits():
    table = ScoreTable({})
    table.upsert([row("2020-01-01T00:00:00", 6, "geopotential", "500", 3.0, bias=1.0, acc=0.9),
                  row("2020-01-02T00:00:00", 6, "geopotential", "500", 4.0, bias=-3.0,
                      acc=0.7)])
    s = table.lead_curves(["geopotential_500"])["scores"]
    assert s["model"]["geopotential_500"]["6"]["rmse"] == pytest.approx(np.sqrt(12.5))
    assert s["model"]["geopotential_500"]["6"]["bias"] == pytest.approx(-1.0)
    assert s["model"]["geopotential_500"]["6"]["acc"] == pytest.approx(0.8)
    assert s["persistence"]["geopotential_500"]["6"]["rmse"] == pytest.approx(2 * np.sqrt(12.5))
    assert s["climatology"]["geopotential_500"]["6"]["rmse"] is None
