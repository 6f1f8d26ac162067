"""Stage runner: each stage is a Ray task; outputs are published atomically with a fingerprint.

A stage writes into ``RUN/.NAME.tmp/``; when it returns, ``_stage.json`` (fingerprint and a
size+sha256 record of every output file) is written there and the directory is renamed to
``RUN/NAME/``. A stage is skipped when ``RUN/NAME/_stage.json`` carries the fingerprint the
stage would have now *and* every recorded file is still there unchanged. So: re-running skips
everything; a changed config value re-runs that stage and, through the input fingerprints, all
stages downstream; a deleted or corrupted output re-runs its stage. Long-running stages keep
resumable work (Ray Train's run storage) under ``RUN/.work/NAME-FINGERPRINT/``, which survives a
killed driver and is removed once the stage is published.

``manifest.json`` records per stage: fingerprint, status, seconds, outputs, and the Ray cluster
(GCS address) and node id it ran on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.fingerprint import (
    STAGE_RECORD,
    code_fingerprint,
    record_outputs,
    stage_fingerprint,
    verify_outputs,
)


@dataclass(frozen=True)
class Stage:
    name: str
    fn: Callable[..., None]  # fn(cfg: dict, inputs: {stage: Path}, out: Path, work: Path)
    section: Callable[[dict], Any]  # the part of the config this stage's output depends on
    code: list[str]  # modules whose source is part of the fingerprint
    inputs: list[str] = field(default_factory=list)
    num_cpus: float = 1
    num_gpus: float = 0
    main_output: str = ""


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _publish_stage(stage: Stage, cfg: dict, inputs: dict[str, str], run_dir: str,
                   fingerprint: str) -> dict:
    """Body of the Ray task: run the stage into a temp dir, record it, rename into place."""
    import ray

    run = Path(run_dir)
    tmp, final = run / f".{stage.name}.tmp", run / stage.name
    work = run / ".work" / f"{stage.name}-{fingerprint}"
    _remove(tmp)  # a half-written attempt never counts
    tmp.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    stage.fn(cfg, {k: Path(v) for k, v in inputs.items()}, tmp, work)
    record = {"stage": stage.name, "fingerprint": fingerprint, "outputs": record_outputs(tmp)}
    _atomic_write_json(tmp / STAGE_RECORD, record)
    old = run / f".{stage.name}.old"
    _remove(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    _remove(old)
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": time.perf_counter() - t0, "node_id": ray.get_runtime_context().get_node_id(),
            "outputs": sorted(record["outputs"])}


def is_current(out: Path, fingerprint: str) -> tuple[bool, str]:
    rec_path = out / STAGE_RECORD
    if not rec_path.is_file():
        return False, "no output"
    try:
        rec = json.loads(rec_path.read_text())
    except json.JSONDecodeError:
        return False, "unreadable record"
    if rec.get("fingerprint") != fingerprint:
        return False, "inputs, config or code changed"
    problem = verify_outputs(out, rec.get("outputs", {}))
    return (False, problem) if problem else (True, "up to date")


def closure(stages: dict[str, Stage], targets: list[str]) -> list[Stage]:
    """Stages needed for ``targets``, upstream first (stages are declared in dependency order)."""
    need: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in need:
            need.add(name)
            stack.extend(stages[name].inputs)
    return [s for s in stages.values() if s.name in need]


def run_stages(stages: dict[str, Stage], cfg: dict, run_dir: Path, targets: list[str],
               cluster: dict, console=None) -> dict:
    """Run (or skip) every stage needed for ``targets``; return the manifest."""
    import ray
    from rich.console import Console

    console = console or Console()
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.update({"name": cfg["name"], "cluster": cluster})
    records = manifest.setdefault("stages", {})
    fingerprints: dict[str, str] = {}

    for stage in closure(stages, targets):
        code = code_fingerprint(stage.code)
        fp = stage_fingerprint(stage.section(cfg), {i: fingerprints[i] for i in stage.inputs},
                               code)
        fingerprints[stage.name] = fp
        out = run_dir / stage.name
        current, why = is_current(out, fp)
        if current:
            prev = records.get(stage.name, {})
            records[stage.name] = {**prev, "fingerprint": fp, "status": "skipped",
                                   "seconds": 0.0}
            console.print(f"[dim]• {stage.name:<9} skipped ({why}, {fp})[/dim]")
            _atomic_write_json(manifest_path, manifest)
            continue
        console.print(f"[bold]▶ {stage.name:<9}[/bold] running ({why}; fingerprint {fp})")
        inputs = {i: str(run_dir / i) for i in stage.inputs}
        remote = ray.remote(num_cpus=stage.num_cpus, num_gpus=stage.num_gpus,
                            max_retries=0)(_publish_stage)
        t0 = time.perf_counter()
        try:
            with console.status(f"{stage.name} …", spinner="dots"):
                result = ray.get(remote.remote(stage, cfg, inputs, str(run_dir), fp))
        except ray.exceptions.RayTaskError as e:
            records[stage.name] = {"fingerprint": fp, "status": "failed",
                                   "seconds": time.perf_counter() - t0}
            _atomic_write_json(manifest_path, manifest)
            cause = e.cause if isinstance(e.cause, BaseException) else e
            if isinstance(cause, UserError):
                raise cause from None
            raise
        records[stage.name] = {"fingerprint": fp, "status": "done",
                               "seconds": round(time.perf_counter() - t0, 2),
                               "node_id": result["node_id"], "outputs": result["outputs"],
                               "main_output": str(out / stage.main_output)}
        console.print(f"[green]✔ {stage.name:<9}[/green] done in {records[stage.name]['seconds']}"
                      f" s on node {result['node_id'][:12]}")
        _atomic_write_json(manifest_path, manifest)
    return manifest


def summary_table(manifest: dict, run_dir: Path, names: list[str]):
    from rich.table import Table

    table = Table(title=f"sluice run '{manifest.get('name')}' — {run_dir}")
    for col in ("stage", "status", "seconds", "output"):
        table.add_column(col)
    for name in names:
        rec = manifest["stages"].get(name, {})
        table.add_row(name, rec.get("status", "-"), f"{rec.get('seconds', 0):.1f}",
                      rec.get("main_output", str(run_dir / name)))
    return table
