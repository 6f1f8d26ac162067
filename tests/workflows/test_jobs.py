"""`sluice submit`'s runtime environment and token lookup, without a cluster (the real head is
in test_jobs_real_head.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import UserError
from workflows import jobs

REPO = Path(__file__).resolve().parents[2]


def test_runtime_env_uploads_the_repo_without_local_state_and_ray_accepts_it():
    from ray.runtime_env import RuntimeEnv

    renv = jobs.runtime_env(REPO, {"AWS_ENDPOINT_URL": "http://minio:9000"}, [], ["s3fs>=2024"])
    assert renv["working_dir"] == str(REPO)
    assert {".venv/", "runs/", "*.zarr", ".git/"} <= set(renv["excludes"])
    assert renv["env_vars"] == {"OMP_NUM_THREADS": "1", "AWS_ENDPOINT_URL": "http://minio:9000"}
    assert renv["uv"] == ["s3fs>=2024"] and "pip" not in renv
    RuntimeEnv(**renv)  # Ray's own validation of every field
    assert jobs.runtime_env(REPO, {}, ["gcsfs"])["pip"] == ["gcsfs"]


def test_runtime_env_refuses_pip_with_uv_and_a_directory_that_is_not_sluice(tmp_path):
    with pytest.raises(UserError, match="--pip and --uv"):
        jobs.runtime_env(REPO, {}, ["a"], ["b"])
    with pytest.raises(UserError, match=f"--working-dir {tmp_path}: not the Sluice repository"):
        jobs.runtime_env(tmp_path, {}, [])


def test_parse_env_wants_key_value():
    assert jobs.parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    for bad in ("A", "=1"):
        with pytest.raises(UserError, match=f"--env '{bad}': expected KEY=VALUE"):
            jobs.parse_env([bad])


def test_auth_token_follows_rays_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(k, raising=False)
    assert jobs.auth_token() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert jobs.auth_token() == "home-token"
    named = tmp_path / "t"
    named.write_text("path-token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(named))
    assert jobs.auth_token() == "path-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "env-token")
    assert jobs.auth_token() == "env-token"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(UserError, match="RAY_AUTH_TOKEN_PATH .*missing: no token file"):
        jobs.auth_token()


def test_submit_and_jobs_need_an_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UserError, match="--address: no Ray cluster named"):
        jobs.resolve_address(None)
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    assert jobs.resolve_address(None) == "http://head:8265"
