"""`sluice nightly`: catch-up, verification, idempotence, the lock, and recovery from kills."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.workflows.conftest import SPECS
from workflows.cli import main
from workflows.faults import FAULT_ENV, POINTS

REPO = Path(__file__).resolve().parents[2]
NIGHT1, NIGHT3 = "2020-01-05T00", "2020-01-07T00"
LEAD_HOURS = (6, 12, 18, 24)


def write_feed(path: Path, end: str) -> Path:
    """The analysis store up to ``end``: the trained checkpoint's synthetic source, later."""
    from pipeline.synthetic import extend_synthetic_era5, write_synthetic_era5

    if path.exists():
        return extend_synthetic_era5(path, end)
    return write_synthetic_era5(path, start="2020-01-01", end=end, n_lat=8, n_lon=16,
                                levels=(500, 850))


def write_config(folder: Path, trained, feed: Path, **extra) -> Path:
    cfg = {"root": str(folder / "root"),
           "model": {"checkpoint": str(trained["checkpoint"])},
           "analysis": {"store": str(feed), "climatology": str(trained["climatology"])},
           "forecast": {"lead_hours": 24},
           "report": {"map_lead_hours": 12}, **extra}
    path = folder / "nightly.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def published(root: Path) -> dict[str, bytes]:
    """Every byte a reader can see: forecasts, scorecard, reports (not records or caches)."""
    out = {}
    for top in ("forecasts", "reports"):
        for p in sorted((root / top).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = p.read_bytes()
    if (root / "scorecard.csv").exists():
        out["scorecard.csv"] = (root / "scorecard.csv").read_bytes()
    return out


def visible_forecasts(root: Path) -> list[Path]:
    return sorted(p for p in (root / "forecasts").glob("*.zarr") if not p.name.startswith("."))


@pytest.fixture(scope="module")
def night1(trained, tmp_path_factory):
    """A workflow root after night 1 (init 2020-01-05T00) and a feed that has since reached
    night 3 (2020-01-07T00): the starting point of every catch-up test."""
    folder = tmp_path_factory.mktemp("night1")
    feed = write_feed(folder / "feed.zarr", NIGHT1)
    cfg = write_config(folder, trained, feed)
    assert main(["nightly", "--config", str(cfg)]) == 0
    write_feed(feed, NIGHT3)
    return {"folder": folder, "feed": feed}


def fresh_root(night1, trained, folder: Path) -> Path:
    """A copy of the night-1 root in ``folder`` with its own config (same feed)."""
    shutil.copytree(night1["folder"] / "root", folder / "root")
    return write_config(folder, trained, night1["feed"])


@pytest.fixture(scope="module")
def reference(night1, trained, tmp_path_factory):
    """Night 3 run without interruption (in a subprocess, timed): what every recovery must
    publish."""
    folder = tmp_path_factory.mktemp("reference")
    cfg = fresh_root(night1, trained, folder)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workflows.cli", "nightly", "--config", str(cfg)],
                   cwd=REPO, check=True, capture_output=True, env=clean_env())
    return {"bytes": published(folder / "root"), "seconds": time.perf_counter() - t0}


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (FAULT_ENV, "RAY_ADDRESS")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_first_night_forecasts_and_has_nothing_to_verify(night1):
    root = night1["folder"] / "root"
    assert [p.name for p in visible_forecasts(root)] == ["20200105T00.zarr"]
    assert (root / "scorecard.csv").read_text().count("\n") == 1  # the header only
    report = (root / "reports" / "20200105T00" / "report.md").read_text()
    assert "No forecast has been verified at +12 h yet" in report
    assert "10m_u_component_of_wind" in report  # asked for, not a channel: said so
    records = list((root / "records" / "20200105T00").glob("*.json"))
    assert len(records) == 1


def test_a_skipped_night_is_caught_up_and_verified_up_to_the_newest_analysis(reference,
                                                                           night1):
    import csv
    import io

    files = reference["bytes"]
    assert sorted(k for k in files if k.endswith("zarr.json") and k.count("/") == 2) == [
        f"forecasts/{d}.zarr/zarr.json" for d in ("20200105T00", "20200106T00", "20200107T00")]
    rows = list(csv.DictReader(io.StringIO(files["scorecard.csv"].decode())))
    newest = np.datetime64(NIGHT3)
    expected = {(init, h) for init in ("2020-01-05T00:00:00", "2020-01-06T00:00:00",
                                       "2020-01-07T00:00:00") for h in LEAD_HOURS
                if np.datetime64(init) + np.timedelta64(h, "h") <= newest}
    assert {(r["init_time"], int(r["lead_hours"])) for r in rows} == expected
    assert len(rows) == len(expected) * len(SPECS)  # one per (init, lead, variable, level)
    assert all(float(r["rmse"]) > 0 and r["acc"] and r["persistence_rmse"] for r in rows)


def test_rerunning_a_night_changes_no_published_byte(reference, night1, trained, tmp_path):
    cfg = fresh_root(night1, trained, tmp_path)
    assert main(["nightly", "--config", str(cfg)]) == 0
    first = published(tmp_path / "root")
    assert first == reference["bytes"]
    mtimes = {p: p.stat().st_mtime_ns for p in visible_forecasts(tmp_path / "root")}
    assert main(["nightly", "--config", str(cfg), "--date", NIGHT3]) == 0
    assert published(tmp_path / "root") == first
    # forecasts already published are skipped, not rewritten
    assert {p: p.stat().st_mtime_ns for p in visible_forecasts(tmp_path / "root")} == mtimes


def test_a_second_run_finds_the_lock_and_exits_75(night1, trained, tmp_path, capsys):
    cfg = fresh_root(night1, trained, tmp_path)
    before = published(tmp_path / "root")
    fd = os.open(tmp_path / "root" / ".nightly.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert main(["nightly", "--config", str(cfg)]) == 75
    finally:
        os.close(fd)
    assert "holds the lock" in capsys.readouterr().err
    assert published(tmp_path / "root") == before


def test_an_analysis_not_there_yet_exits_75_distinct_from_bad_input(night1, trained, tmp_path,
                                                                      capsys):
    cfg = fresh_root(night1, trained, tmp_path)
    before = published(tmp_path / "root")
    assert main(["nightly", "--config", str(cfg), "--date", "2020-01-08"]) == 75
    err = capsys.readouterr().err
    assert "2020-01-08T00" in err and "has not arrived" in err
    assert main(["nightly", "--config", str(cfg), "--date", "2020-01-07T03"]) == 2  # off-cycle
    assert main(["nightly", "--config", str(cfg), "forecast.lead_hours=25"]) == 2
    assert main(["nightly", "--config", str(cfg), "forecast.regional=true"]) == 2
    assert published(tmp_path / "root") == before


@pytest.mark.parametrize("point", [*POINTS, "forecast_written@2", "forecast_published@2"])
def test_killed_at_a_boundary_a_rerun_publishes_what_an_uninterrupted_run_does(
        point, reference, night1, trained, tmp_path):
    cfg = fresh_root(night1, trained, tmp_path)
    root = tmp_path / "root"
    done = subprocess.run([sys.executable, "-m", "workflows.cli", "nightly", "--config",
                           str(cfg)], cwd=REPO, capture_output=True,
                          env=clean_env(**{FAULT_ENV: point}))
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    for store in visible_forecasts(root):  # whatever a reader sees is whole
        name = str(store.relative_to(root))
        assert {k: v for k, v in published(root).items() if k.startswith(name + "/")} == {
            k: v for k, v in reference["bytes"].items() if k.startswith(name + "/")}
    assert main(["nightly", "--config", str(cfg)]) == 0
    assert published(root) == reference["bytes"]
    assert not [p for p in root.rglob(".*") if ".tmp" in p.name]


def test_a_random_sigkill_of_the_process_group_is_recovered(reference, night1, trained,
                                                            tmp_path):
    rng = np.random.default_rng(20261130)
    cfg = fresh_root(night1, trained, tmp_path)
    root = tmp_path / "root"
    delay = float(rng.uniform(0.2, 0.9)) * reference["seconds"]
    proc = subprocess.Popen([sys.executable, "-m", "workflows.cli", "nightly", "--config",
                             str(cfg)], cwd=REPO, env=clean_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)  # its own process group, nothing else
    proc.wait()
    for store in visible_forecasts(root):
        name = str(store.relative_to(root))
        assert {k: v for k, v in published(root).items() if k.startswith(name + "/")} == {
            k: v for k, v in reference["bytes"].items() if k.startswith(name + "/")}
    assert main(["nightly", "--config", str(cfg)]) == 0
    assert published(root) == reference["bytes"]
