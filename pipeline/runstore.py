"""A run's storage on an object store (``s3://``, ``gs://``, any fsspec URL): stages publish
there, and read their inputs from node-local copies.

A local run directory (or a shared filesystem mounted at one path on every node) is handled by
`pipeline.runner` with renames. An object store has no rename and a Ray task may land on any
node, so for a run root given as a URL the same layout is kept with these rules:

    ROOT/manifest.json                 one PUT per update
    ROOT/NAME/<outputs>, ROOT/NAME/_stage.json
        publish (`publish_stage`): delete _stage.json FIRST (the stage stops counting), delete
        the other objects under ROOT/NAME/, upload every output, write _stage.json LAST: the
        record is the completion marker (single-object PUTs are atomic; see pipeline.publish).
        current (`stage_status`): the record names this fingerprint and every recorded object
        is listed with its recorded size. Contents (sha256) are checked when a reader fetches.
    ROOT/.work/NAME-FINGERPRINT/       Ray Train's run storage (checkpoints), on the URL itself,
        so a killed driver resumes from there; removed once the stage is published.

Inputs are fetched (`localize`) into a node-local cache, ``$SLUICE_CACHE`` or
``~/.cache/sluice``, under ``runs/<sha256(stage URL, fingerprint)>/``: every file is checked
against the record's sha256, and ``_origin.json`` (written last, under a file lock) marks the
copy whole and says where it came from. Ray Train workers on other nodes than the stage task
localize the same inputs again from those origins (`origins`, `relocalize`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path

from fsspec.core import url_to_fs

from pipeline.errors import DataError
from pipeline.fingerprint import STAGE_RECORD, file_sha256
from pipeline.publish import delete_prefix, object_store_url

ORIGIN = "_origin.json"


def run_url(root) -> str | None:
    """The run root as an object-store URL, or None for a local directory (path or file://)."""
    return object_store_url(str(root)) if isinstance(root, str | os.PathLike) else None


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def cache_root() -> Path:
    return Path(os.environ.get("SLUICE_CACHE") or Path.home() / ".cache" / "sluice")


def scratch_dir(prefix: str) -> Path:
    """A fresh node-local directory for one stage attempt (the caller removes it)."""
    base = cache_root() / "scratch"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def read_json(url: str) -> dict | None:
    fs, path = url_to_fs(url)
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DataError(url, "contents", "JSON", f"unreadable: {exc}") from None


def write_json(url: str, obj) -> None:
    fs, path = url_to_fs(url)
    fs.pipe_file(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def _listing(fs, root: str) -> dict[str, int]:
    """{relative path: size} of every object under ``root``/."""
    fs.invalidate_cache(root)
    found = fs.find(root, detail=True)
    return {name[len(root) + 1:]: int(info["size"]) for name, info in found.items()
            if info.get("type", "file") == "file"}


def stage_status(stage_url: str, fingerprint: str) -> tuple[bool, str]:
    """(current?, why) for the stage published at ``stage_url``."""
    try:
        rec = read_json(join(stage_url, STAGE_RECORD))
    except DataError:
        return False, "unreadable record"
    if rec is None:
        return False, "no output"
    if rec.get("fingerprint") != fingerprint:
        return False, "inputs, config or code changed"
    fs, root = url_to_fs(stage_url)
    sizes = _listing(fs, root)
    for rel, meta in rec.get("outputs", {}).items():
        if rel not in sizes:
            return False, f"missing {rel}"
        if sizes[rel] != meta["size"]:
            return False, f"changed {rel}"
    return True, "up to date"


def publish_stage(local: Path, stage_url: str, record: dict) -> None:
    """Upload the stage directory ``local`` to ``stage_url``; the record goes last."""
    fs, root = url_to_fs(stage_url)
    marker = join(root, STAGE_RECORD)
    fs.invalidate_cache(root)  # a Ray worker process keeps its client, and its listings
    if fs.exists(marker):
        fs.rm_file(marker)  # first: nobody may take a half-replaced stage for a current one
    delete_prefix(fs, root)
    for rel in sorted(record["outputs"]):
        fs.put_file(str(local / rel), join(root, rel))
    fs.pipe_file(marker, json.dumps(record, indent=1, sort_keys=True).encode())


def remove_prefix(url: str) -> None:
    """Delete everything under ``url``/, the empty "directory" objects pyarrow's S3 client
    makes (keys ending in '/') included; siblings such as ``url``.x are kept."""
    fs, root = url_to_fs(url)
    fs.invalidate_cache(root)
    with suppress(FileNotFoundError):
        fs.rm(root, recursive=True)


def localize(stage_url: str, fingerprint: str) -> Path:
    """A node-local, checked copy of the stage published at ``stage_url`` with ``fingerprint``.

    Idempotent and safe between processes of one node (two DDP workers): the first one takes the
    lock and downloads, the others find ``_origin.json`` and return."""
    key = hashlib.sha256(f"{stage_url}\0{fingerprint}".encode()).hexdigest()[:24]
    dest = cache_root() / "runs" / key
    if (dest / ORIGIN).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / ORIGIN).is_file():
            return dest
        rec = read_json(join(stage_url, STAGE_RECORD))
        if rec is None or rec.get("fingerprint") != fingerprint:
            found = "no record" if rec is None else f"fingerprint {rec.get('fingerprint')}"
            raise DataError(join(stage_url, STAGE_RECORD), "fingerprint",
                            f"{fingerprint} (the stage this run published)",
                            f"{found}: the stage was re-published or deleted meanwhile")
        fs, root = url_to_fs(stage_url)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=dest.parent))
        try:
            for rel, meta in sorted(rec["outputs"].items()):
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(join(root, rel), str(target))
                if file_sha256(target) != meta["sha256"]:
                    raise DataError(join(stage_url, rel), "sha256",
                                    f"{meta['sha256']} (its stage record)",
                                    f"{file_sha256(target)}: the object changed after the stage "
                                    f"was published; delete {join(stage_url, STAGE_RECORD)} to "
                                    "rebuild the stage")
            (tmp / ORIGIN).write_text(json.dumps({"stage_url": stage_url,
                                                  "fingerprint": fingerprint}))
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def origins(inputs: dict[str, str]) -> dict[str, dict]:
    """For the inputs that are localized copies: {key: {stage_url, fingerprint, path}} (path
    relative to the copy), so a process on another node can localize them again."""
    found = {}
    for key, value in inputs.items():
        p = Path(value)
        for parent in (p, *p.parents):
            if (parent / ORIGIN).is_file():
                found[key] = {**json.loads((parent / ORIGIN).read_text()),
                              "path": p.relative_to(parent).as_posix()}
                break
    return found


def relocalize(inputs: dict[str, str], origins: dict[str, dict]) -> dict[str, str]:
    """``inputs`` with every key named in ``origins`` pointing at this node's copy."""
    out = dict(inputs)
    for key, o in origins.items():
        out[key] = str(localize(o["stage_url"], o["fingerprint"]) / o["path"])
    return out


def train_storage(location) -> tuple[str, object | None]:
    """Ray Train's (storage_path, storage_filesystem) for a directory or URL: pyarrow's own
    filesystem where it knows the scheme (s3, gs, hdfs), else fsspec's wrapped for pyarrow."""
    url = run_url(location)
    if url is None:
        return str(Path(location).resolve()), None
    import pyarrow.fs as pafs

    try:
        pafs.FileSystem.from_uri(url)
        return url, None
    except ValueError:  # pyarrow.lib.ArrowInvalid: a scheme pyarrow has no filesystem for
        fs, path = url_to_fs(url)
        return path, pafs.PyFileSystem(pafs.FSSpecHandler(fs))
