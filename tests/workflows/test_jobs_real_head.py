"""Ray Jobs against a real Ray head started here (127.0.0.1, free ports, its own temp dir).

Marked ``realhead`` and run by `make test` in a pytest process of its own: this process
attaches to the head with ``ray.init``, which must not meet another test's cluster. The head is
stopped by its own process group (the ``ray start --block`` process leads a session that every
head process joins), never by ``ray stop``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.s3server import free_port, make_bucket, s3_server

pytestmark = pytest.mark.realhead
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# `sluice` as this checkout's code: here, and inside the job (whose working dir is the uploaded
# checkout and whose `python` is this environment's, first on the head's PATH).
SLUICE = [sys.executable, "-m", "workflows.cli"]
IN_JOB = ["python", "-m", "workflows.cli"]


def session_pids(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    return [int(p) for p, s in (line.split() for line in out.splitlines()) if int(s) == sid]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    from ray.job_submission import JobSubmissionClient

    tmp = tmp_path_factory.mktemp("head")
    gcs, dashboard = free_port(), free_port()
    # Every port Ray would otherwise take by default (52365, 10001, ...) is a free one, so the
    # head meets no other cluster on this machine (an embedded one holds those defaults).
    ports = {flag: free_port() for flag in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
        "runtime-env-agent-port", "ray-client-server-port", "node-manager-port",
        "object-manager-port")}
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    # The job's `python` is this environment's. HOME is the test's, holding the cluster's token
    # where `ray get-auth-token --generate` puts one (~/.ray/auth_token); the head enforces it
    # (RAY_AUTH_MODE=token). Clients of this machine find it there: `sluice submit` does on its
    # own, Ray's CLI only with RAY_AUTH_MODE=token in its environment too.
    token_file = tmp / ".ray" / "auth_token"
    token_file.parent.mkdir()
    token_file.write_text(secrets.token_hex(32))
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1",
               HOME=str(tmp), MPLCONFIGDIR=str(tmp / "mpl"))
    log = open(tmp / "head.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={gcs}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         "--num-cpus=2", f"--temp-dir={tmp / 'ray'}", "--include-dashboard=true",
         "--disable-usage-stats", *(f"--{flag}={port}" for flag, port in ports.items())],
        start_new_session=True, env={**env, "RAY_AUTH_MODE": "token"}, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 300
        headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        while True:  # up when a trivial job runs (the job agent starts after the API)
            try:
                jobs = JobSubmissionClient(url, headers=headers)
                probe = jobs.submit_job(entrypoint="python -c pass")
                while str(jobs.get_job_status(probe).value) not in ("SUCCEEDED", "FAILED"):
                    time.sleep(0.5)
                break
            except Exception as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the head did not come up ({exc!r}): "
                                       f"{(tmp / 'head.log').read_text()[-3000:]}") from None
                time.sleep(1)
        yield {"url": url, "port": gcs, "tmp": tmp, "env": env, "token_file": token_file}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the head's own session, nothing else
        deadline = time.monotonic() + 10
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if session_pids(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
        deadline = time.monotonic() + 20  # SIGKILLed processes are reaped by init
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not session_pids(proc.pid)


def tiny_run(run_dir: Path | str, workers: int = 0) -> list[str]:
    """A whole pipeline (parity: train → evaluate) small enough for a test (0 workers: Ray
    Train's local mode)."""
    return ["run", "configs/parity.yaml", f"train.num_workers={workers}", "train.max_steps=4",
            "train.checkpoint_every=4", "train.batch_size=8", "train.parity.n_train=32",
            "train.parity.n_val=16", "--run-dir", str(run_dir)]


def head_cluster(head: dict) -> tuple[str, set[str]]:
    """(GCS address as Ray reports it, ids of the live nodes) of the test's head, asked by a
    driver of its own (this process keeps no Ray state)."""
    probe = (f"import json, ray; ray.init(address='127.0.0.1:{head['port']}', "
             "logging_level='ERROR'); print(json.dumps([ray.get_runtime_context().gcs_address, "
             "[n['NodeID'] for n in ray.nodes() if n['Alive']]]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**head["env"], "RAY_AUTH_MODE": "token"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    gcs, nodes = json.loads(done.stdout.strip().splitlines()[-1])
    return gcs, set(nodes)


def check_ran_on(run_dir: Path | dict, head: dict) -> None:
    manifest = (json.loads((run_dir / "manifest.json").read_text())
                if isinstance(run_dir, Path) else run_dir)
    gcs, nodes = head_cluster(head)
    assert manifest["cluster"]["gcs_address"] == gcs
    assert gcs.endswith(f":{head['port']}")
    assert manifest["cluster"]["embedded"] is False  # attached, not a nested cluster
    for stage in ("train", "evaluate"):
        assert manifest["stages"][stage]["status"] == "done"
        assert manifest["stages"][stage]["node_id"] in nodes


def test_rays_own_cli_submits_a_pipeline_that_runs_on_the_head(head):
    run_dir = head["tmp"] / "via_ray_cli"
    done = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", head["url"], "--working-dir",
         str(REPO), "--runtime-env-json", json.dumps({"excludes": [".venv/", "runs/", ".git/"]}),
         "--", *IN_JOB, *tiny_run(run_dir)],
        cwd=REPO, env={**head["env"], "RAY_AUTH_MODE": "token"}, capture_output=True,
        text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout.lower()
    check_ran_on(run_dir, head)


def test_sluice_submit_waits_follows_logs_and_lists_the_job(head):
    run_dir = head["tmp"] / "via_sluice"
    done = subprocess.run(
        [*SLUICE, "submit", "--address", head["url"], "--wait",
         "--submission-id", "sluice-test-1", "--env", "SLUICE_TEST=1", "--",
         *IN_JOB, *tiny_run(run_dir)],
        cwd=REPO, env=head["env"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == "sluice-test-1"
    assert "checkpoint:" in done.stdout  # the pipeline's own summary, followed from the logs
    check_ran_on(run_dir, head)
    listed = subprocess.run([*SLUICE, "jobs", "list", "--address", head["url"]],
                            cwd=REPO, env=head["env"], capture_output=True, text=True)
    row = next(r for r in listed.stdout.splitlines() if r.startswith("sluice-test-1"))
    assert row.split("\t")[1] == "SUCCEEDED"
    assert shlex.split(row.split("\t")[2])[:4] == [*IN_JOB, "run"]


def test_a_failing_job_returns_its_exit_code(head):
    done = subprocess.run(
        [*SLUICE, "submit", "--address", head["url"], "--wait", "--",
         *IN_JOB, "run", "configs/does_not_exist.yaml"],
        cwd=REPO, env=head["env"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "config file not found" in done.stdout


def test_without_the_token_the_head_refuses_and_says_where_it_goes(head):
    env = {**head["env"], "HOME": str(head["tmp"] / "elsewhere")}
    done = subprocess.run([*SLUICE, "jobs", "list", "--address", head["url"]], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "~/.ray/auth_token" in done.stderr


@pytest.fixture(scope="module")
def s3():
    """An S3 endpoint (moto's server) the job reaches through the env vars it is given."""
    with s3_server() as env:
        make_bucket(env, "runs")
        yield env


def test_a_job_keeps_its_run_on_s3_and_a_rerun_resumes_from_it(head, s3, monkeypatch):
    """No shared filesystem: the run root is s3://; Ray Train's storage is there too (one
    worker, not local mode); a re-run redoes only the stage whose output went missing."""
    import fsspec

    for k, v in s3.items():
        monkeypatch.setenv(k, v)
    cache = head["tmp"] / "node-cache"
    submit = [*SLUICE, "submit", "--address", head["url"], "--wait",
              *(f"--env={k}={v}" for k, v in {**s3, "SLUICE_CACHE": str(cache)}.items()),
              "--", *IN_JOB, *tiny_run("s3://runs/job", workers=1)]
    done = subprocess.run(submit, cwd=REPO, env=head["env"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "scores:     s3://runs/job/evaluate/scores.json" in done.stdout
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    manifest = json.loads(fs.cat_file("runs/job/manifest.json"))
    check_ran_on(manifest, head)
    objects = set(fs.find("runs/job"))
    assert {"runs/job/train/checkpoint/meta.json", "runs/job/train/_stage.json",
            "runs/job/evaluate/scores.json", "runs/job/evaluate/_stage.json"} <= objects
    # Ray Train's storage (.work/train-FINGERPRINT/) is removed once the stage is published.
    assert not [o for o in objects if "/.work/train-" in o]
    train_fp = manifest["stages"]["train"]["fingerprint"]
    assert json.loads(fs.cat_file("runs/job/train/_stage.json"))["fingerprint"] == train_fp
    assert not (REPO / "runs" / "job").exists()  # nothing went to a local run dir

    fs.rm_file("runs/job/evaluate/scores.json")
    again = subprocess.run(submit, cwd=REPO, env=head["env"], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    fs.invalidate_cache()
    stages = json.loads(fs.cat_file("runs/job/manifest.json"))["stages"]
    assert stages["train"]["status"] == "skipped" and stages["train"]["fingerprint"] == train_fp
    assert stages["evaluate"]["status"] == "done"  # fetched the checkpoint from s3, re-scored
    assert fs.exists("runs/job/evaluate/scores.json")
