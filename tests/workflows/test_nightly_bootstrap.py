"""From nothing prepared, `sluice nightly` trains its model and writes its analysis store as
fingerprinted stages on Ray, then forecasts, verifies and reports; a second run skips them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.workflows.test_nightly import published
from workflows.config import load_nightly_config
from workflows.nightly import run_nightly

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ddp
def test_nightly_from_nothing_prepared_then_again(ray_cluster, tmp_path):
    # configs/nightly_model.yaml at a test's size: 13 days of data, 4 training steps
    model = yaml.safe_load((REPO / "configs" / "nightly_model.yaml").read_text())
    model["data"]["synthetic"]["end"] = "2020-01-13T18:00"
    model["data"]["periods"] = {"train": ["2020-01-01", "2020-01-08T18"],
                                "val": ["2020-01-09", "2020-01-10T18"],
                                "test": ["2020-01-11", "2020-01-13T18"]}
    model["train"].update(max_steps=4, checkpoint_every=4, warmup_steps=1, loader_workers=0)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    cfg = load_nightly_config(REPO / "configs" / "nightly.yaml", [
        f"root={tmp_path / 'root'}", f"model.train_config={tmp_path / 'model.yaml'}",
        "cycle.first=2020-01-12", "forecast.lead_hours=24"])
    root = tmp_path / "root"

    record = run_nightly(cfg)
    assert record["status"] == "ok" and record["init_time"].startswith("2020-01-13T00")
    assert [Path(p).name for p in record["forecasts"]["published_now"]] == [
        "20200112T00.zarr", "20200113T00.zarr"]
    assert (root / "bootstrap" / "train" / "checkpoint" / "meta.json").is_file()
    assert (root / "analysis.zarr" / "zarr.json").is_file()
    # init 01-12: all four leads verified by 01-13T18; init 01-13: 6, 12 and 18 h
    assert record["verification"]["pairs"] == 4 + 3
    report = (root / "reports" / "20200113T00" / "report.md").read_text()
    assert "scores_by_lead.png" in report and (root / "reports" / "20200113T00" /
                                               "maps.png").is_file()
    first = published(root)

    again = run_nightly(cfg)
    assert again["forecasts"]["published_now"] == []
    assert again["verification"]["new_rows"] == 0
    assert published(root) == first
    manifest = yaml.safe_load((root / "bootstrap" / "manifest.json").read_text())
    assert {s: r["status"] for s, r in manifest["stages"].items()} == {
        "ingest": "skipped", "graph": "skipped", "train": "skipped"}
