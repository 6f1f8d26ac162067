"""Publishing a store on an object store, which has no rename: a completion marker written last.

A local prepared store is published by rename(2) (`pipeline.ingest.atomic_directory`): a reader
sees the old directory or the new one, never a mix. S3 and GCS (and fsspec's ``memory://``) have
no rename of a prefix (a "rename" is a copy of every object, then deletes), so there the sign
that a store is whole is one more object, written after every other one. Single-object PUTs are
atomic and read-after-write consistent (S3 since 2020, GCS), so a reader that finds the marker
finds every object written before it.

    publish (`publish_objects`), dest = <url>, marker = <url>.sluice_complete
      1. FileExistsError if the marker or any object under <url>/ exists, unless overwrite
      2. overwrite: delete the marker FIRST (readers refuse <url> from then on), then every
         object under <url>/
      3. the caller writes the store (zarr v3 through `zarr.storage.FsspecStore`)
      4. the marker, LAST: {"format", "store", "zarr_json_sha256", "published_utc"}
      on an exception in 3 or 4: delete what is under <url>/ (best effort); no marker.
    read (`require_complete`): DataError unless the marker exists and its zarr_json_sha256 is
      the sha256 of <url>/zarr.json, the group metadata that holds the manifest (a sha256 of
      every array): the marker pins the contents it completed.

The marker is a sibling of the store, not an object inside it: zarr 3 warns about any object in
a group that is not part of the hierarchy ("Object at ... is not recognized as a component of a
Zarr hierarchy") at every listing, xarray.open_zarr included (the manifest is a group attribute
for the same reason). A copy of <url>/ alone is therefore unmarked, and refused: it fails safe.

Not handled: two writers publishing to one <url> at once (nothing locks a prefix), and readers
during an overwrite, which get a DataError (no marker) rather than the old store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from fsspec.core import split_protocol, url_to_fs

from pipeline.errors import DataError

MARKER_SUFFIX = ".sluice_complete"
MARKER_FORMAT = "sluice.publish_complete/1"
LOCAL_PROTOCOLS = (None, "file", "local")


def object_store_url(dest) -> str | None:
    """``dest`` as an fsspec URL (no trailing '/') when it names a store that is not a local
    directory (s3://, gs://, memory://, ...); None for a path or a file:// URL."""
    if not isinstance(dest, str) or split_protocol(dest)[0] in LOCAL_PROTOCOLS:
        return None
    return dest.rstrip("/")


def local_path(dest) -> Path:
    """A path, or a file:// URL, as a Path."""
    if isinstance(dest, str) and split_protocol(dest)[0] in LOCAL_PROTOCOLS:
        return Path(split_protocol(dest)[1])
    return Path(os.fspath(dest))


def zarr_json_sha256(fs, root: str) -> str | None:
    """sha256 of the store's root zarr.json (group attributes, manifest included); None if
    there is none."""
    try:
        return hashlib.sha256(fs.cat_file(f"{root}/zarr.json")).hexdigest()
    except FileNotFoundError:
        return None


def refuse_existing(dest, overwrite: bool) -> None:
    """FileExistsError if ``dest`` (a path or URL) holds anything and ``overwrite`` is False."""
    if overwrite:
        return
    url = object_store_url(dest)
    if url is None:
        if local_path(dest).exists():
            raise FileExistsError(f"{dest} exists (pass overwrite=True to replace it)")
        return
    fs, root = url_to_fs(url)
    fs.invalidate_cache(root)  # a listing cached before other writers' objects appeared
    if fs.exists(root + MARKER_SUFFIX):
        raise FileExistsError(f"{url} is a published store (pass overwrite=True to replace it)")
    if fs.exists(root):
        # Never delete objects this call did not write unless asked: they may be someone's data.
        raise FileExistsError(f"{url} holds objects but no completion marker (an unfinished "
                              "publish?); pass overwrite=True to replace it")


def delete_prefix(fs, root: str) -> None:
    """Delete every object under ``root``/ (listed first, so siblings such as ``root``.x and
    the marker are untouched)."""
    fs.invalidate_cache(root)
    paths = fs.find(root)
    if paths:
        fs.rm(paths)


@contextmanager
def publish_objects(url: str, *, overwrite: bool = False) -> Iterator[str]:
    """Yield ``url`` for the caller to write a Zarr store into; mark it complete (the marker
    object, written last) only if the block returns. See the module docstring for the order."""
    refuse_existing(url, overwrite)
    fs, root = url_to_fs(url)
    marker = root + MARKER_SUFFIX
    if fs.exists(marker):
        fs.rm_file(marker)  # first: a reader must never find a marker over a half-replaced store
    delete_prefix(fs, root)
    try:
        yield url
        record = {"format": MARKER_FORMAT, "store": url,
                  "zarr_json_sha256": zarr_json_sha256(fs, root),
                  "published_utc": datetime.now(UTC).isoformat(timespec="seconds")}
        fs.pipe_file(marker, json.dumps(record, indent=1).encode())
    except BaseException:
        with suppress(Exception):  # best effort: the absent marker already protects readers
            delete_prefix(fs, root)
        raise


def require_complete(url: str) -> dict:
    """The completion marker of the store at ``url`` (an object-store URL); DataError if there
    is none, or if it names other contents than the store now holds."""
    fs, root = url_to_fs(url)
    expected = "a store whose publish finished (marker written last)"
    try:
        record = json.loads(fs.cat_file(root + MARKER_SUFFIX))
    except FileNotFoundError:
        raise DataError(url, "completion marker", expected,
                        f"no marker ({url}{MARKER_SUFFIX})") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise DataError(url, "completion marker", expected,
                        f"an unreadable marker: {exc}") from None
    digest = zarr_json_sha256(fs, root)
    named = record.get("zarr_json_sha256") if isinstance(record, dict) else None
    if named != digest:
        raise DataError(url, "completion marker",
                        f"a marker naming the store's zarr.json (sha256 {digest})",
                        f"{named!r}: the store changed after it was published")
    return record
