"""The deployment files parse and agree with the code they deploy (so they cannot rot)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from pipeline.errors import EX_TEMPFAIL, UserError

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
IMAGE = "ghcr.io/sluice-ml/sluice:latest"


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec["containers"]


def ray_pod_specs(cluster_spec: dict) -> list[dict]:
    return [cluster_spec["headGroupSpec"]["template"]["spec"],
            *(g["template"]["spec"] for g in cluster_spec["workerGroupSpecs"])]


def check_data_volume(pod: dict) -> None:
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims.get("sluice-data") == "sluice-data"
    for c in containers(pod):
        assert {"name": "sluice-data", "mountPath": "/data"} in c["volumeMounts"], c["name"]


def check_token_auth(container: dict) -> None:
    env = {e["name"]: e for e in container["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "sluice-ray-auth", "key": "auth_token"}


def check_ray_cluster_spec(spec: dict) -> None:
    for pod in ray_pod_specs(spec):
        assert pod["securityContext"]["runAsNonRoot"] is True
        check_data_volume(pod)
        for c in containers(pod):
            assert c["image"] == IMAGE
            assert "command" not in c  # KubeRay starts Ray itself
            check_token_auth(c)
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        gpus = int(group["rayStartParams"]["num-gpus"])
        (worker,) = containers(group["template"]["spec"])
        assert worker["resources"]["limits"]["nvidia.com/gpu"] == gpus >= 1
        assert worker["resources"]["requests"] == worker["resources"]["limits"]


def test_dockerfile_builds_sluice_on_cuda_pytorch_as_a_non_root_user():
    text = (INFRA / "docker" / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    base = next(ln for ln in lines if ln.startswith("FROM "))
    assert base.startswith("FROM pytorch/pytorch:") and "cuda" in base
    # torch in the base must satisfy the package's range, or pip would replace it
    version = re.search(r"pytorch:(\d+)\.(\d+)", base).groups()
    pyproject = (REPO / "pyproject.toml").read_text()
    low, high = re.search(r'"torch>=(\d+\.\d+),<(\d+\.\d+)"', pyproject).groups()
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(low) <= tuple(map(int, version)) < as_tuple(high)
    packages = re.search(r"include = \[(.*?)\]", pyproject).group(1)
    for package in re.findall(r'"(\w+)\*"', packages):
        assert f"COPY --chown=sluice:sluice {package} ./{package}" in lines, package
    user = [i for i, ln in enumerate(lines) if ln.startswith("USER ")]
    install = max(i for i, ln in enumerate(lines) if "pip install" in ln)
    assert user and lines[user[-1]] == "USER sluice" and user[-1] > install
    # object-store run roots (s3://, gs://) work in the image: the extras exist and are installed
    extras = re.search(r'install --no-cache-dir "\.\[([\w,]+)\]"', lines[install]).group(1)
    for extra in extras.split(","):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), extra
    assert {"s3", "gcs"} <= set(extras.split(","))
    assert lines[-2:] == ['ENTRYPOINT ["sluice"]', 'CMD ["--help"]']
    assert 'sluice = "workflows.cli:main"' in pyproject  # the entrypoint exists


def test_raycluster_head_and_autoscaling_gpu_workers_share_data_and_auth():
    cluster, pvc = docs(INFRA / "k8s" / "raycluster.yaml")
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["spec"]["enableInTreeAutoscaling"] is True
    check_ray_cluster_spec(cluster["spec"])
    assert cluster["spec"]["workerGroupSpecs"][0]["minReplicas"] == 0  # scale to zero
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "sluice-data"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_rayjob_trains_a_config_that_validates_onto_the_shared_volume():
    from pipeline.config import load_config

    (job,) = docs(INFRA / "k8s" / "rayjob-train.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    check_ray_cluster_spec(job["spec"]["rayClusterSpec"])
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["sluice", "run"]
    run_dir = argv[argv.index("--run-dir") + 1]
    assert run_dir.startswith("/data/")
    overrides = [a for a in argv[3:] if "=" in a]
    cfg = load_config(REPO / argv[2], overrides)  # the config and overrides are valid
    gpus = sum(g["replicas"] * int(g["rayStartParams"]["num-gpus"])
               for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"])
    assert cfg.train.num_workers == gpus  # one Ray Train worker per GPU
    assert job["spec"]["shutdownAfterJobFinishes"] is True


def test_nightly_cronjob_runs_once_at_a_time_and_retries_exit_75_only():
    from workflows.cli import parser

    (cron,) = docs(INFRA / "k8s" / "nightly-cronjob.yaml")
    spec = cron["spec"]
    fields = spec["schedule"].split()
    assert len(fields) == 5 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields)
    assert spec["concurrencyPolicy"] == "Forbid" and spec["timeZone"] == "Etc/UTC"
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] >= 1
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = containers(pod)
    rules = {r["action"]: r["onExitCodes"] for r in job["podFailurePolicy"]["rules"]}
    assert rules["Ignore"] == {"containerName": container["name"], "operator": "In",
                               "values": [EX_TEMPFAIL]}
    assert rules["FailJob"]["values"] == [UserError.exit_code]
    args = parser().parse_args(container["args"])  # the image's entrypoint is `sluice`
    assert args.command == "nightly" and str(args.config).startswith("/data/")
    check_data_volume(pod)
    check_token_auth(container)
    assert container["image"] == IMAGE


def test_cluster_launcher_runs_the_image_with_gpu_workers_and_shared_data():
    cfg = yaml.safe_load((INFRA / "cluster-launcher" / "aws.yaml").read_text())
    assert cfg["docker"]["image"] == IMAGE
    assert "--volume /data:/data" in cfg["docker"]["run_options"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    gpu = [t for t in types.values() if t["resources"].get("GPU")]
    assert gpu and all(t["max_workers"] <= cfg["max_workers"] for t in gpu)
    assert any("/data" in c and "mount" in c for c in cfg["initialization_commands"])
    assert any("ray start --head" in c for c in cfg["head_start_ray_commands"])


@pytest.mark.parametrize("path", sorted(p.relative_to(INFRA) for p in INFRA.rglob("*.yaml")))
def test_every_manifest_is_yaml_with_a_kind_or_a_cluster_name(path):
    for d in docs(INFRA / path):
        assert "kind" in d or "cluster_name" in d
