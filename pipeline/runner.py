"""Stage runner: each stage is a Ray task; outputs are published atomically with a fingerprint.

A stage writes into ``RUN/.NAME.tmp/``; when it returns, ``_stage.json`` (fingerprint and a
size+sha256 record of every output file) is written there and the directory is renamed to
``RUN/NAME/``. A stage is skipped when ``RUN/NAME/_stage.json`` carries the fingerprint the
stage would have now *and* every recorded file is still there unchanged. So: re-running skips
everything; a changed config value re-runs that stage and, through the input fingerprints, all
stages downstream; a deleted or corrupted output re-runs its stage. Long-running stages keep
resumable work (Ray Train's run storage) under ``RUN/.work/NAME-FINGERPRINT/``, which survives a
killed driver and is removed once the stage is published.

A run root on an object store (an fsspec URL) keeps the same layout without renames: see
`pipeline.runstore` (inputs fetched to the node, the stage record uploaded last).

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

from pipeline import runstore
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


MANIFEST = "manifest.json"


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
    """Body of the Ray task: run the stage into a temp dir, record it, publish it."""
    import ray

    t0 = time.perf_counter()
    if runstore.run_url(run_dir) is None:
        outputs = _run_in_place(stage, cfg, inputs, Path(run_dir), fingerprint)
    else:
        outputs = _run_and_upload(stage, cfg, inputs, run_dir, fingerprint)
    return {"seconds": time.perf_counter() - t0, "node_id": ray.get_runtime_context().get_node_id(),
            "outputs": outputs}


def _run_in_place(stage: Stage, cfg: dict, inputs: dict[str, str], run: Path,
                  fingerprint: str) -> list[str]:
    """A local (or shared) run directory: write RUN/.NAME.tmp, record, rename to RUN/NAME."""
    tmp, final = run / f".{stage.name}.tmp", run / stage.name
    work = run / ".work" / f"{stage.name}-{fingerprint}"
    _remove(tmp)  # a half-written attempt never counts
    tmp.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
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
    return sorted(record["outputs"])


def _run_and_upload(stage: Stage, cfg: dict, inputs: dict[str, str], run: str,
                    fingerprint: str) -> list[str]:
    """A run root on an object store (`pipeline.runstore`): inputs fetched to this node, the
    stage written to node-local scratch, then uploaded with its record last. Ray Train's run
    storage (``work``) stays on the store so a resumed attempt finds its checkpoints."""
    local_inputs = {k: runstore.localize(runstore.join(run, k), fp) for k, fp in inputs.items()}
    scratch = runstore.scratch_dir(f"{stage.name}-")
    try:
        out = scratch / "out"
        out.mkdir()
        work = runstore.join(run, ".work", f"{stage.name}-{fingerprint}")
        stage.fn(cfg, local_inputs, out, work)
        record = {"stage": stage.name, "fingerprint": fingerprint,
                  "outputs": record_outputs(out)}
        runstore.publish_stage(out, runstore.join(run, stage.name), record)
        runstore.remove_prefix(work)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sorted(record["outputs"])


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
    store = _RunRoot(run_dir)
    manifest = store.read_manifest()
    manifest.update({"name": cfg["name"], "cluster": cluster})
    records = manifest.setdefault("stages", {})
    fingerprints: dict[str, str] = {}

    for stage in closure(stages, targets):
        code = code_fingerprint(stage.code)
        fp = stage_fingerprint(stage.section(cfg), {i: fingerprints[i] for i in stage.inputs},
                               code)
        fingerprints[stage.name] = fp
        current, why = store.status(stage.name, fp)
        if current:
            prev = records.get(stage.name, {})
            records[stage.name] = {**prev, "fingerprint": fp, "status": "skipped",
                                   "seconds": 0.0}
            console.print(f"[dim]• {stage.name:<9} skipped ({why}, {fp})[/dim]")
            store.write_manifest(manifest)
            continue
        console.print(f"[bold]▶ {stage.name:<9}[/bold] running ({why}; fingerprint {fp})")
        inputs = store.task_inputs(stage.inputs, fingerprints)
        remote = ray.remote(num_cpus=stage.num_cpus, num_gpus=stage.num_gpus,
                            max_retries=0)(_publish_stage)
        t0 = time.perf_counter()
        try:
            with console.status(f"{stage.name} …", spinner="dots"):
                result = ray.get(remote.remote(stage, cfg, inputs, store.root, fp))
        except ray.exceptions.RayTaskError as e:
            records[stage.name] = {"fingerprint": fp, "status": "failed",
                                   "seconds": time.perf_counter() - t0}
            store.write_manifest(manifest)
            cause = e.cause if isinstance(e.cause, BaseException) else e
            if isinstance(cause, UserError):
                raise cause from None
            raise
        records[stage.name] = {"fingerprint": fp, "status": "done",
                               "seconds": round(time.perf_counter() - t0, 2),
                               "node_id": result["node_id"], "outputs": result["outputs"],
                               "main_output": store.location(stage.name, stage.main_output)}
        console.print(f"[green]✔ {stage.name:<9}[/green] done in {records[stage.name]['seconds']}"
                      f" s on node {result['node_id'][:12]}")
        store.write_manifest(manifest)
    return manifest


class _RunRoot:
    """The run root as the driver sees it: a local directory or an object-store URL."""

    def __init__(self, run_dir) -> None:
        self.url = runstore.run_url(run_dir)
        if self.url is None:
            self.path = Path(run_dir).resolve()
            self.path.mkdir(parents=True, exist_ok=True)
        self.root = self.url or str(self.path)

    def location(self, *parts: str) -> str:
        return runstore.join(self.root, *(p for p in parts if p))

    def read_manifest(self) -> dict:
        if self.url:
            return runstore.read_json(self.location(MANIFEST)) or {}
        path = self.path / MANIFEST
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_manifest(self, manifest: dict) -> None:
        if self.url:
            runstore.write_json(self.location(MANIFEST), manifest)
        else:
            _atomic_write_json(self.path / MANIFEST, manifest)

    def status(self, name: str, fingerprint: str) -> tuple[bool, str]:
        if self.url:
            return runstore.stage_status(self.location(name), fingerprint)
        return is_current(self.path / name, fingerprint)

    def task_inputs(self, names: list[str], fingerprints: dict[str, str]) -> dict[str, str]:
        """What a stage task gets for its inputs: their directories, or on an object store
        their fingerprints (the task fetches them by name and fingerprint)."""
        if self.url:
            return {i: fingerprints[i] for i in names}
        return {i: str(self.path / i) for i in names}


def summary_table(manifest: dict, run_dir, names: list[str]):
    from rich.table import Table

    table = Table(title=f"sluice run '{manifest.get('name')}' — {run_dir}")
    for col in ("stage", "status", "seconds", "output"):
        table.add_column(col)
    for name in names:
        rec = manifest["stages"].get(name, {})
        table.add_row(name, rec.get("status", "-"), f"{rec.get('seconds', 0):.1f}",
                      rec.get("main_output", runstore.join(str(run_dir), name)))
    return table
