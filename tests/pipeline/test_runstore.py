"""Run storage on a real S3 endpoint (moto's server): publish, currency, fetch, re-fetch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import runstore
from pipeline.errors import DataError
from pipeline.fingerprint import STAGE_RECORD, record_outputs
from tests.s3server import make_bucket, s3_server


@pytest.fixture(scope="module")
def s3_env():
    with s3_server() as env:
        make_bucket(env, "runs")
        yield env


@pytest.fixture
def s3(s3_env, monkeypatch, tmp_path):
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("SLUICE_CACHE", str(tmp_path / "node-a"))
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    return fs


def make_stage(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def publish(local: Path, url: str, fp: str) -> dict:
    record = {"stage": "s", "fingerprint": fp, "outputs": record_outputs(local)}
    runstore.publish_stage(local, url, record)
    return record


def test_run_url_tells_object_stores_from_directories(tmp_path):
    assert runstore.run_url("s3://b/runs/x/") == "s3://b/runs/x"
    assert runstore.run_url("memory://r") == "memory://r"
    assert runstore.run_url(str(tmp_path)) is None
    assert runstore.run_url(f"file://{tmp_path}") is None
    assert runstore.run_url(tmp_path) is None


def test_published_stage_is_current_until_an_object_goes_or_changes(s3, tmp_path):
    url = "s3://runs/r1/ingest"
    local = make_stage(tmp_path / "out", {"a.bin": b"abc", "store.zarr/zarr.json": b"{}"})
    publish(local, url, "fp1")
    assert s3.cat_file(f"runs/r1/ingest/{STAGE_RECORD}")  # the record is there ...
    assert runstore.stage_status(url, "fp1") == (True, "up to date")
    assert runstore.stage_status(url, "fp2") == (False, "inputs, config or code changed")
    s3.pipe_file("runs/r1/ingest/a.bin", b"abcd")
    assert runstore.stage_status(url, "fp1") == (False, "changed a.bin")
    s3.pipe_file("runs/r1/ingest/a.bin", b"abc")
    assert runstore.stage_status(url, "fp1") == (True, "up to date")
    s3.rm_file("runs/r1/ingest/store.zarr/zarr.json")
    assert runstore.stage_status(url, "fp1") == (False, "missing store.zarr/zarr.json")
    assert runstore.stage_status("s3://runs/r1/nothing", "fp1") == (False, "no output")


def test_republishing_removes_stale_objects_and_a_failed_upload_leaves_no_record(s3, tmp_path):
    url = "s3://runs/r2/graph"
    publish(make_stage(tmp_path / "v1", {"old.bin": b"1", "keep.bin": b"2"}), url, "fp1")
    publish(make_stage(tmp_path / "v2", {"keep.bin": b"3"}), url, "fp2")
    s3.invalidate_cache()
    assert sorted(s3.find("runs/r2/graph")) == ["runs/r2/graph/_stage.json",
                                                "runs/r2/graph/keep.bin"]
    # An upload that fails half-way (a file vanished) leaves the stage without its record.
    v3 = make_stage(tmp_path / "v3", {"a.bin": b"a", "b.bin": b"b"})
    record = {"stage": "s", "fingerprint": "fp3", "outputs": record_outputs(v3)}
    (v3 / "b.bin").unlink()
    with pytest.raises(FileNotFoundError):
        runstore.publish_stage(v3, url, record)
    s3.invalidate_cache()  # this client listed the prefix before the publish
    assert not s3.exists(f"runs/r2/graph/{STAGE_RECORD}")
    assert runstore.stage_status(url, "fp2") == (False, "no output")


def test_localize_fetches_checks_and_reuses_a_copy(s3, tmp_path, monkeypatch):
    url = "s3://runs/r3/ingest"
    publish(make_stage(tmp_path / "out", {"p.zarr/c/0": b"\x00" * 100, "m.json": b"[]"}),
            url, "fpA")
    copy = runstore.localize(url, "fpA")
    assert copy.parent == tmp_path / "node-a" / "runs"
    assert (copy / "p.zarr/c/0").read_bytes() == b"\x00" * 100
    assert json.loads((copy / runstore.ORIGIN).read_text()) == {"stage_url": url,
                                                               "fingerprint": "fpA"}
    s3.rm_file("runs/r3/ingest/m.json")
    assert runstore.localize(url, "fpA") == copy  # whole copies are not fetched again
    with pytest.raises(DataError, match="fingerprint"):
        runstore.localize(url, "fpB")  # the run expects another version of the stage


def test_an_object_changed_after_publish_is_refused_by_its_sha256(s3, tmp_path):
    url = "s3://runs/r4/train"
    publish(make_stage(tmp_path / "out", {"w.pt": b"weights!"}), url, "fp")
    s3.pipe_file("runs/r4/train/w.pt", b"WEIGHTS!")  # same size: only the sha256 tells
    assert runstore.stage_status(url, "fp")[0]
    with pytest.raises(DataError, match=r"w\.pt: field 'sha256'.*changed after the stage"):
        runstore.localize(url, "fp")
    assert not list((tmp_path / "node-a" / "runs").glob("*/w.pt"))  # no half copy left


def test_another_node_relocalizes_inputs_from_their_origins(s3, tmp_path, monkeypatch):
    url = "s3://runs/r5/ingest"
    publish(make_stage(tmp_path / "out", {"prepared.zarr/zarr.json": b"{}"}), url, "fp")
    here = runstore.localize(url, "fp")
    inputs = {"prepared": str(here / "prepared.zarr"), "other": str(tmp_path / "shared.zarr")}
    origins = runstore.origins(inputs)
    assert origins == {"prepared": {"stage_url": url, "fingerprint": "fp",
                                    "path": "prepared.zarr"}}
    monkeypatch.setenv("SLUICE_CACHE", str(tmp_path / "node-b"))  # a worker elsewhere
    there = runstore.relocalize(inputs, origins)
    assert there["other"] == inputs["other"]
    assert Path(there["prepared"]).is_relative_to(tmp_path / "node-b")
    assert (Path(there["prepared"]) / "zarr.json").read_bytes() == b"{}"


def test_train_storage_uses_pyarrow_where_it_can_and_fsspec_elsewhere(tmp_path, s3):
    import pyarrow.fs as pafs

    assert runstore.train_storage(tmp_path / "w") == (str((tmp_path / "w").resolve()), None)
    assert runstore.train_storage("s3://runs/r6/.work/t") == ("s3://runs/r6/.work/t", None)
    path, fs = runstore.train_storage("memory://bucket/w")
    assert path == "/bucket/w" and isinstance(fs, pafs.PyFileSystem)
    with fs.open_output_stream(f"{path}/x") as f:
        f.write(b"ok")
    assert fs.get_file_info(f"{path}/x").size == 2


def test_removing_ray_trains_storage_leaves_no_directory_objects_and_keeps_siblings(s3):
    import pyarrow.fs as pafs

    pa, _ = pafs.FileSystem.from_uri("s3://runs/r7")  # Ray Train writes through pyarrow
    pa.create_dir("runs/r7/.work/train-fp/checkpoint_1")
    with pa.open_output_stream("runs/r7/.work/train-fp/checkpoint_1/model.pt") as f:
        f.write(b"w")
    pa.create_dir("runs/r7/.work/train-fp/checkpoint_2")  # an empty "directory" key
    s3.pipe_file("runs/r7/.work/train-fp.other", b"kept")
    runstore.remove_prefix("s3://runs/r7/.work/train-fp")
    s3.invalidate_cache()
    left = [p for p in s3.find("runs/r7", withdirs=True) if "train-fp" in p]
    assert left == ["runs/r7/.work/train-fp.other"]
