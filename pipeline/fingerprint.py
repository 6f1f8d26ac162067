"""Fingerprints: what makes a stage's output what it is.

stage fingerprint = sha256( canonical JSON of the stage's config section
                            + the fingerprints of the stages it reads
                            + the code fingerprint of the modules it runs )
code fingerprint  = sha256 over (relative path, bytes) of every ``.py`` file of those modules.

Outputs are recorded file by file (relative path, size, sha256), so a deleted, truncated or
overwritten output no longer matches its record and the stage runs again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _module_files(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(name)
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: every module under it
        return sorted(p for p in origin.parent.rglob("*.py") if "__pycache__" not in p.parts)
    return [origin]


def code_fingerprint(modules: list[str]) -> str:
    """Hash of the source of ``modules`` (module or package names), independent of install path."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        files = _module_files(name)
        root = files[0].parent if len(files) > 1 or files[0].name == "__init__.py" else None
        for f in files:
            rel = f.relative_to(root) if root else Path(f.name)
            h.update(f"{name}:{rel.as_posix()}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def stage_fingerprint(section: Any, input_fingerprints: dict[str, str], code: str) -> str:
    payload = canonical_json({"config": section, "inputs": input_fingerprints, "code": code})
    return _sha256(payload.encode())[:16]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def record_outputs(root: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {size, sha256}} for every file under ``root`` (the stage's directory)."""
    return {
        p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != STAGE_RECORD
    }


def verify_outputs(root: Path, recorded: dict[str, dict[str, Any]]) -> str | None:
    """None when every recorded file is present and unchanged, else the first problem found."""
    for rel, rec in recorded.items():
        p = root / rel
        if not p.is_file():
            return f"missing {rel}"
        if p.stat().st_size != rec["size"] or file_sha256(p) != rec["sha256"]:
            return f"changed {rel}"
    return None


STAGE_RECORD = "_stage.json"
