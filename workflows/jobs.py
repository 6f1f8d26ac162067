"""Ray Jobs: submit a Sluice command to a cluster, and list, follow and stop jobs.

    sluice submit [--address http://HOST:8265] [--wait] [--env K=V ...] [--pip|--uv REQ ...]
                  [--working-dir DIR] [--entrypoint-num-cpus N] [--entrypoint-num-gpus N]
                  [--submission-id ID] -- sluice run CONFIG ...
    sluice jobs list | status ID | logs ID | stop ID   [--address ...]

Through Ray's Jobs SDK (`ray.job_submission.JobSubmissionClient`, the dashboard's HTTP API).
The address defaults to ``RAY_ADDRESS``. The runtime environment uploads the working directory
(the repository: code and configs) without what never belongs in a job package — the virtual
environment, run directories, stores, caches, `.git` — sets ``OMP_NUM_THREADS=1`` and the
``--env`` variables, and installs ``--pip`` (or, faster, ``--uv``: Ray's ``uv`` runtime-env
field) requirements for clusters with network access; ours bake Sluice into the image.

Inside the job Ray sets ``RAY_ADDRESS``, so `pipeline.cluster.connect` attaches to the job's
cluster instead of starting a nested one, and the run directory should be shared storage (or
an fsspec URL such as ``s3://bucket/runs/NAME``: `pipeline.runstore`) when the cluster has more
than one node.

Token authentication (Ray ≥ 2.52; on by default for local clusters since 2.59 and for all in
2.61): Ray's SDK sends the token only when the client's own ``RAY_AUTH_MODE`` is ``token``, so a
user of a fresh head gets "Missing authentication token" from `ray job submit` until they set
it. `auth_token` looks where Ray keeps tokens — ``RAY_AUTH_TOKEN``, the file named by
``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token`` (where ``ray start`` and ``ray get-auth-token``
put it) — and sends it as the bearer header whenever there is one, so no command line carries a
token. A 401/403 answer becomes a UserError saying where the token goes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pipeline.errors import UserError

# Never uploaded: large, local or secret (gitignore-style patterns, Ray's runtime_env syntax).
EXCLUDES = [".venv/", "venv/", "runs/", "*.zarr", "*.zarr/", ".git/", "__pycache__/",
            "*.pyc", ".pytest_cache/", ".ruff_cache/", "*.egg-info/", "*.pt", "*.nc",
            ".graph_cache/", "node_modules/"]
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
AGENT_WAIT_S = 120


def resolve_address(address: str | None) -> str:
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise UserError("--address: no Ray cluster named; pass --address http://HEAD:8265 (the "
                        "dashboard's Jobs API) or set RAY_ADDRESS")
    return address


def auth_token() -> str | None:
    """The Ray auth token from Ray's sources, in Ray's order of precedence; None if none."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(named) if named else Path.home() / ".ray" / "auth_token"
    if named and not path.is_file():
        raise UserError(f"RAY_AUTH_TOKEN_PATH {named}: no token file there")
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def client(address: str | None):
    """A JobSubmissionClient for ``address`` (or RAY_ADDRESS) carrying the auth token if there
    is one; UserError if unreachable or the token is missing or wrong."""
    from ray.job_submission import JobSubmissionClient

    address = resolve_address(address)
    token = auth_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return JobSubmissionClient(address, headers=headers)
    except ConnectionError as exc:
        raise UserError(f"--address {address}: no Ray Jobs API there ({exc})") from None
    except Exception as exc:  # ray.exceptions.AuthenticationError and other refusals
        raise auth_error(address, exc) from None


def auth_error(address: str, exc: Exception) -> UserError:
    text = str(exc)
    if any(s in text for s in ("401", "403", "Unauthorized", "Forbidden", "uthentication")):
        return UserError(f"{address}: the cluster refused the request ({text.splitlines()[0]}); "
                         "it uses token authentication: put its token in ~/.ray/auth_token "
                         "(`ray get-auth-token` on the head) or RAY_AUTH_TOKEN, and set "
                         "RAY_AUTH_MODE=token")
    return UserError(f"{address}: {text}")


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--env {pair!r}: expected KEY=VALUE")
        env[key] = value
    return env


def runtime_env(working_dir: Path, env: dict[str, str], pip: list[str],
                uv: list[str] = ()) -> dict:
    if not (working_dir / "pyproject.toml").is_file():
        raise UserError(f"--working-dir {working_dir}: not the Sluice repository (no "
                        "pyproject.toml); the job needs its code and configs")
    if pip and uv:  # Ray refuses a runtime env with both
        raise UserError("--pip and --uv: give the job's requirements to one installer")
    out = {"working_dir": str(working_dir), "excludes": list(EXCLUDES),
           "env_vars": {"OMP_NUM_THREADS": "1", **env}}
    if pip:
        out["pip"] = list(pip)
    if uv:
        out["uv"] = list(uv)
    return out


def submit(entrypoint: list[str], *, address=None, working_dir: Path = Path("."),
           env: dict[str, str] | None = None, pip: list[str] | None = None,
           uv: list[str] | None = None, num_cpus: float | None = None,
           num_gpus: float | None = None, submission_id: str | None = None) -> tuple[object, str]:
    """Submit ``entrypoint`` (argv); returns (client, submission id)."""
    import shlex

    if not entrypoint:
        raise UserError("submit: nothing to run; give the command after '--', e.g. "
                        "`sluice submit -- sluice run configs/smoke.yaml`")
    jobs = client(address)
    renv = runtime_env(Path(working_dir).resolve(), env or {}, pip or [], uv or [])
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            job_id = jobs.submit_job(
                entrypoint=shlex.join(entrypoint), submission_id=submission_id,
                runtime_env=renv, entrypoint_num_cpus=num_cpus, entrypoint_num_gpus=num_gpus,
                metadata={"submitted_by": "sluice submit"})
            return jobs, job_id
        except Exception as exc:
            # A head that has just started answers 500 "No available agent to submit job,
            # please try again later" until its job agent is up: wait for it, briefly.
            if "try again later" in str(exc) and time.monotonic() < deadline:
                time.sleep(2)
                continue
            raise auth_error(resolve_address(address), exc) from None


def wait(jobs, job_id: str, *, poll_s: float = 1.0, timeout_s: float | None = None,
         out=sys.stdout) -> str:
    """Follow the job's logs until it ends (or ``timeout_s``); its last status."""
    start, shown = time.monotonic(), 0
    while True:
        status = str(jobs.get_job_status(job_id).value)
        logs = jobs.get_job_logs(job_id)
        out.write(logs[shown:])
        out.flush()
        shown = len(logs)
        if status in TERMINAL:
            return status
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            return status
        time.sleep(poll_s)


def exit_code(jobs, job_id: str) -> int:
    """The driver's exit code when Ray reports it (so `sluice nightly`'s 75 reaches a
    scheduler through `sluice submit --wait`), else 0 for SUCCEEDED and 1 otherwise."""
    info = jobs.get_job_info(job_id)
    code = getattr(info, "driver_exit_code", None)
    if code is not None:
        return int(code)
    return 0 if str(info.status.value) == "SUCCEEDED" else 1
