"""Ingest long-form video QA (Ego-QA / MAD-QA style) into one prepared directory.

Inputs, as the field stores them:

  * frame features, one ``[T, D]`` float array per video (T from a few frames to 10,000+, any
    float dtype), in one of four layouts, told apart by what is on disk:
      - a directory of ``<video_id>.npy`` files (memory-mapped: a slice reads only its rows);
      - a directory of ``<video_id>.npz`` files (the array ``features``, or the file's only
        array; a zip member cannot be sliced, so a reader loads a video whole);
      - an HDF5 file (``.h5`` / ``.hdf5``) with one dataset per video id at the root;
      - a Zarr group (v2 or v3, a directory ending ``.zarr``) with one array per video id;
  * QA tables per split (``train`` required, ``val`` / ``test`` optional), CSV or JSON (a list
    of objects), with fields ``video_id, qid, question, a0..a4, answer`` (the index 0..4 of
    the right option) and an optional ``type`` (question type; absent or empty → "all");
  * optionally (``answer_features``) precomputed answer features: one ``[5, D]`` float array
    per qid (its key / file stem), a vector per option a0..a4 in the frame features' space
    (say CLIP text beside CLIP frames), so D is the frames' width; in the same four layouts.
    A qid names a question: one in several splits uses the same array.

Only videos that at least one QA row names are packed. The prepared directory holds

    video.zarr                      Zarr v3 group
      features  [N, D] float16, chunks (chunk_frames, D)   every video's frames, concatenated
                                    in sorted video-id order: N = Σ T_i
      offsets   [n_videos + 1] int64    video i is features[offsets[i]:offsets[i + 1]]
      attrs: format, video_ids (same order), feature_dim, frames (resample count or null),
             chunk_frames, source (the features path), answer_features (its path, or null)
      qa_<split>/                   one subgroup per split given
        video_index [Nq] int32      index into video_ids
        question    [Nq, Lq] int32  token ids, 0 = padding
        answers     [Nq, 5, La] int32
        answer      [Nq] int8       index of the right option
        type        [Nq] int8       index into attrs["types"]
        answer_features [Nq, 5, D] float16   only with answer_features
        attrs: qids (in row order), types (type names; the same list in every split, the
               sorted union over splits, so a code means one type everywhere)
    qa_<split>.csv                  the validated table, normalised: columns
                                    video_id,qid,type,question,a0..a4,answer; cells stripped
    vocab.json                      the tokenizer (below); "answers" says whether options
                                    also have precomputed features (tokens are kept either way)
    skipped.json                    only with skip_bad: what was left out, and why

It is published atomically (`pipeline.ingest.weather.atomic_directory`): nothing appears at
``dest`` unless every step succeeded.

Resampling. With ``frames`` set, every video becomes exactly ``frames`` frames by nearest-frame
uniform sampling: output frame j is source frame ``floor((j + 0.5) * T / frames)``, the frame
under the centre of the j-th of ``frames`` equal slices of the video. It never interpolates
(features stay ones the encoder produced) and works for T < frames too (frames repeat). Computed
in integers, ``((2j + 1) * T) // (2 * frames)``, so no rounding decides an index.

Packing in parallel without races. Pass 1 (one Dask task per video) reads each video's shape and
checks it, streaming its values in blocks. Offsets follow from the frame counts. Pass 2 writes
``features``: videos are ragged, so a Zarr chunk (chunk_frames rows) usually holds the end of one
video and the start of the next, and two tasks writing one chunk would each read-modify-write it
and lose the other's rows. So the *global* frame axis is split into runs of whole chunks
``[c0, c1)``, one run per task (``partitions`` of them), and a task assembles its chunks (a few
at a time, WRITE_BYTES per Zarr write) from the videos overlapping them and writes exactly those
chunks. No chunk has two writers, so the result is byte-for-byte the serial one. Zarr v3 is not
fork-safe: threads only.

Text, with nothing downloaded: a word-level tokenizer trained at ingest on the train split's
questions and options (answer features, when given, are stored beside the tokens, not instead
of them). Text is lowercased and split by ``[a-z0-9]+|[^\\sa-z0-9]`` (runs of letters/digits,
and each other non-space character on its own). The vocabulary is sorted by (-count, word), so
it does not depend on row order or hashing; id 0 = ``<pad>``, 1 = ``<unk>`` (any word not in
it), then the words. Questions are padded or truncated to Lq = the longest train question (at
most ``max_words``), options to La = the longest train option (at most 8).

Bad input raises `pipeline.errors.DataError` naming the file, the field and what was expected:
a table that is unreadable, empty or lacks a required column (always); and per row: an unsafe
video id (it must match ``[A-Za-z0-9][A-Za-z0-9_.-]*`` without ``..``, checked before the id is
used anywhere), a video not in the features source, an empty qid or question, an empty option,
an answer that is not an integer 0..4, a qid repeated within the split; per video: unreadable,
not a 2-D float array, no frames, a width other than the other videos' (the most common one),
values not finite in float16 (NaN, inf, or beyond ±65504); per row, with answer_features: an
unsafe qid (the video-id rule, checked before the qid names a file), a qid with no array in the
source, an array that is unreadable, not 2-D float, not [5, D] or not finite in float16. With
``skip_bad`` the offending video or row is left out instead and listed in skipped.json (rows of
a skipped video too); nothing is dropped silently.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dask
import h5py
import numpy as np
import zarr

from pipeline.errors import ConfigError, DataError
from pipeline.ingest.weather import atomic_directory, dask_scheduler, dask_workers
from pipeline.publish import refuse_existing

FORMAT = "sluice.prepared_video/1"
SPLITS = ("train", "val", "test")
N_OPTIONS = 5
OPTIONS = tuple(f"a{k}" for k in range(N_OPTIONS))
REQUIRED_COLUMNS = ("video_id", "qid", "question", *OPTIONS, "answer")
CSV_COLUMNS = ("video_id", "qid", "type", "question", *OPTIONS, "answer")
DEFAULT_TYPE = "all"
MAX_ANSWER_WORDS = 8
PAD, UNK = "<pad>", "<unk>"
WORD_PATTERN = r"[a-z0-9]+|[^\sa-z0-9]"
SAFE_VIDEO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SAFE_VIDEO_ID_RULE = "a safe file name: [A-Za-z0-9][A-Za-z0-9_.-]*, without '..'"
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
CHECK_ROWS = 4096  # frames per read when pass 1 scans a video for NaN/inf
WRITE_BYTES = 16 << 20  # float16 bytes a pass-2 task assembles per Zarr write
LAYOUTS = "a directory of .npy or .npz files, an .h5/.hdf5 file or a .zarr group"


# ---- frame features: the four layouts ----------------------------------------------------------

@dataclass(frozen=True)
class FeatureSource:
    """Where the per-video (or per-qid) arrays live: ``layout`` is 'npy', 'npz', 'hdf5' or
    'zarr'; ``field`` is the argument it came from, for messages."""

    path: Path
    layout: str
    field: str = "features"

    def file(self, video_id: str) -> str:
        """The file (or HDF5 dataset / Zarr array) holding ``video_id`` (or a qid), for
        messages."""
        if self.layout in ("npy", "npz"):
            return os.fspath(self.path / f"{video_id}.{self.layout}")
        if self.layout == "hdf5":
            return f"{self.path}:/{video_id}"
        return os.fspath(self.path / video_id)


def open_features(features, field: str = "features") -> FeatureSource:
    """The layout of the source at ``features`` (the argument ``field``), from what is on disk;
    DataError if it is none of the four."""
    path = Path(features)
    if not path.exists():
        raise DataError(path, field, LAYOUTS, "nothing there")
    if path.is_dir():
        if path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists():
            return FeatureSource(path, "zarr", field)
        kinds = {p.suffix for p in path.iterdir() if p.suffix in (".npy", ".npz")}
        if len(kinds) == 1:
            return FeatureSource(path, kinds.pop()[1:], field)
        found = "both .npy and .npz files" if kinds else "a directory without .npy or .npz files"
        raise DataError(path, field, f"one layout: {LAYOUTS}", found)
    if path.suffix.lower() in (".h5", ".hdf5"):
        return FeatureSource(path, "hdf5", field)
    raise DataError(path, field, LAYOUTS, f"a file named {path.name}")


def list_videos(source: FeatureSource) -> set[str]:
    """The names (video ids, or qids) the source holds: file stems, HDF5 root datasets, Zarr
    root arrays."""
    try:
        if source.layout in ("npy", "npz"):
            suffix = f".{source.layout}"
            return {p.name[:-len(suffix)] for p in source.path.iterdir()
                    if p.name.endswith(suffix) and p.is_file()}
        if source.layout == "hdf5":
            with h5py.File(source.path, "r") as f:
                return {name for name, obj in f.items() if isinstance(obj, h5py.Dataset)}
        return set(zarr.open_group(os.fspath(source.path), mode="r").array_keys())
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(source.path, source.field, f"a readable {source.layout} source",
                        repr(exc)) from exc


class VideoReader:
    """One task's open handles on a source. The HDF5 file or Zarr group is opened once per task,
    and the last video's array is kept: consecutive chunks usually need the same video, and an
    .npz member can only be read whole."""

    def __init__(self, source: FeatureSource):
        self.source = source
        self.handle = None  # h5py.File or zarr.Group, opened on first use
        self.last: tuple[str | None, object] = (None, None)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        if isinstance(self.handle, h5py.File):
            self.handle.close()

    def array(self, video_id: str):
        """``video_id``'s [T, D] array: an np.memmap, np.ndarray, h5py.Dataset or zarr.Array."""
        if self.last[0] != video_id:
            self.last = (video_id, self.open(video_id))
        return self.last[1]

    def open(self, video_id: str):
        source = self.source
        if source.layout == "npy":
            return np.load(source.file(video_id), mmap_mode="r")
        if source.layout == "npz":
            with np.load(source.file(video_id)) as npz:
                names = list(npz.keys())
                if "features" not in names and len(names) != 1:
                    raise DataError(source.file(video_id), source.field,
                                    "an array named 'features' or exactly one array",
                                    f"arrays {names}")
                return npz["features" if "features" in names else names[0]]
        if self.handle is None:
            self.handle = (h5py.File(source.path, "r") if source.layout == "hdf5"
                           else zarr.open_group(os.fspath(source.path), mode="r"))
        return self.handle[video_id]


def read_frames(array, idx: np.ndarray) -> np.ndarray:
    """Frames ``idx`` [n] (non-decreasing) of ``array`` [T, D] → [n, D].

    One contiguous read covering them, then a gather: HDF5 and Zarr read ranges far faster than
    point lists, and across a video's chunks the ranges do not overlap, so each source frame is
    read about once."""
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    return np.asarray(array[lo:hi])[idx - lo]


# ---- pass 1: shapes and values, one task per video ---------------------------------------------

@dataclass(frozen=True)
class VideoShape:
    frames: int  # T, before resampling
    width: int  # D


def inspect_video(source: FeatureSource, video_id: str) -> VideoShape | DataError:
    """Shape of one video after checking it: 2-D, float, at least one frame, every value finite
    in float16. Returns (does not raise) the DataError, so the caller reports problems in
    video-id order whatever order the tasks ran in."""
    file = source.file(video_id)
    try:
        with VideoReader(source) as reader:
            array = reader.array(video_id)
            if len(array.shape) != 2:
                return DataError(file, "features", "a 2-D [T, D] array", f"shape {array.shape}")
            if not np.issubdtype(array.dtype, np.floating):
                return DataError(file, "features", "a float dtype", f"{array.dtype}")
            if array.shape[0] == 0:
                return DataError(file, "features", "at least one frame",
                                 f"shape {tuple(array.shape)}")
            problem = first_nonfinite(array, file)
            return problem or VideoShape(int(array.shape[0]), int(array.shape[1]))
    except DataError as exc:
        return exc
    except (OSError, ValueError, KeyError) as exc:
        return DataError(file, "features", "a readable [T, D] array", repr(exc))


def first_nonfinite(array, file: str, field: str = "features",
                    unit: str = "frame") -> DataError | None:
    """A DataError naming the first row (a ``unit``) that is not finite once stored as float16,
    else None. Streams CHECK_ROWS rows at a time, so a long video is never held whole."""
    for start in range(0, array.shape[0], CHECK_ROWS):
        block = np.asarray(array[start:start + CHECK_ROWS])  # [b, D]
        with np.errstate(over="ignore"):
            bad = ~np.isfinite(block.astype(np.float16))
        if bad.any():
            t, d = (int(i) for i in np.argwhere(bad)[0])
            value = float(block[t, d])
            what = (f"{value}" if not np.isfinite(value)
                    else f"{value:g} (beyond float16's ±{FLOAT16_MAX:g})")
            return DataError(file, field,
                             f"finite values within float16 range (|x| <= {FLOAT16_MAX:g})",
                             f"{what} at {unit} {start + t}, column {d}")
    return None


def inspect_videos(source: FeatureSource, video_ids: list[str]) -> list[VideoShape | DataError]:
    """`inspect_video` for each id, in parallel (Dask threads)."""
    tasks = [dask.delayed(inspect_video)(source, video_id) for video_id in video_ids]
    with dask_scheduler("threads"):
        return list(dask.compute(*tasks))


def common_width(shapes: list[VideoShape]) -> int:
    """The feature width most videos have (ties: the one met first in video-id order)."""
    # most_common keeps first-encountered order among equal counts.
    return Counter(shape.width for shape in shapes).most_common(1)[0][0]


# ---- resampling and packing (pass 2) -----------------------------------------------------------

def frame_indices(n_source: int, frames: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Source frames [hi - lo] for output frames lo..hi-1 of ``frames`` uniform samples of a
    video of ``n_source`` frames: floor((j + 0.5) * n_source / frames), in exact integers."""
    j = np.arange(lo, frames if hi is None else hi, dtype=np.int64)
    return ((2 * j + 1) * n_source) // (2 * frames)


@dataclass(frozen=True)
class PackPlan:
    """Where every video's frames go in ``features``."""

    video_ids: tuple[str, ...]
    source_frames: np.ndarray  # [n_videos] int64, T_i in the source
    offsets: np.ndarray  # [n_videos + 1] int64, in output frames
    frames: int | None  # resample count, or None to keep every frame
    chunk_frames: int

    @property
    def n_chunks(self) -> int:
        return -(-int(self.offsets[-1]) // self.chunk_frames)


def video_offsets(source_frames: np.ndarray, frames: int | None) -> np.ndarray:
    """[n + 1] int64 start of each video in the packed frame axis (T_i → ``frames`` if set)."""
    lengths = source_frames if frames is None else np.full_like(source_frames, frames)
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def chunk_runs(n_chunks: int, partitions: int) -> list[tuple[int, int]]:
    """``partitions`` contiguous runs [c0, c1) of whole chunks covering 0..n_chunks, as even as
    integers allow (sizes differ by at most one); empty runs are dropped."""
    bounds = [k * n_chunks // partitions for k in range(partitions + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def block_pieces(offsets: np.ndarray, start: int, stop: int) -> list[tuple[int, int, int]]:
    """(video i, lo, hi) for each video overlapping packed rows [start, stop): its output frames
    lo..hi-1 land there. ``offsets`` [n + 1] non-decreasing."""
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, stop, side="left"))
    return [(i, max(start, int(offsets[i])) - int(offsets[i]),
             min(stop, int(offsets[i + 1])) - int(offsets[i]))
            for i in range(first, last) if offsets[i + 1] > offsets[i]]


def write_chunks(source: FeatureSource, plan: PackPlan, features: zarr.Array, c0: int,
                 c1: int) -> int:
    """Assemble and write chunks c0..c1-1 of ``features``, a few at a time (memory: about
    WRITE_BYTES plus the source ranges they need). Returns the rows written."""
    total, width = int(plan.offsets[-1]), features.shape[1]
    # Zarr's cost per write call dwarfs a small chunk's: write several whole chunks per call.
    step = max(1, WRITE_BYTES // (plan.chunk_frames * width * 2))
    written = 0
    with VideoReader(source) as reader:
        for first in range(c0, c1, step):
            start = first * plan.chunk_frames
            stop = min(min(first + step, c1) * plan.chunk_frames, total)
            block = np.empty((stop - start, width), np.float16)  # [rows, D]
            for i, lo, hi in block_pieces(plan.offsets, start, stop):
                idx = (np.arange(lo, hi) if plan.frames is None
                       else frame_indices(int(plan.source_frames[i]), plan.frames, lo, hi))
                row = int(plan.offsets[i]) + lo - start
                block[row:row + hi - lo] = read_frames(reader.array(plan.video_ids[i]), idx)
            features[start:stop] = block
            written += stop - start
    return written


def pack_features(source: FeatureSource, plan: PackPlan, features: zarr.Array,
                  partitions: int) -> None:
    """Pass 2: one Dask task per run of whole chunks, so no two tasks write one chunk."""
    tasks = [dask.delayed(write_chunks)(source, plan, features, c0, c1)
             for c0, c1 in chunk_runs(plan.n_chunks, partitions)]
    with dask_scheduler("threads"):  # threads: Zarr v3's event loop does not survive a fork
        dask.compute(*tasks)


# ---- text --------------------------------------------------------------------------------------

def tokenize(text: str) -> list[str]:
    """Lowercased words: runs of [a-z0-9], and each other non-space character alone."""
    return re.findall(WORD_PATTERN, text.lower())


def build_vocab(texts) -> list[str]:
    """[<pad>, <unk>, words by (-count, word)] over the tokens of ``texts``."""
    counts = Counter(word for text in texts for word in tokenize(text))
    return [PAD, UNK, *sorted(counts, key=lambda word: (-counts[word], word))]


def encode(words: list[str], vocab_index: dict[str, int], length: int) -> np.ndarray:
    """[length] int32 ids of ``words``, truncated, then padded with 0; unknown words → 1."""
    ids = np.zeros(length, np.int32)
    kept = words[:length]
    ids[:len(kept)] = [vocab_index.get(word, 1) for word in kept]
    return ids


# ---- QA tables ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class QARow:
    row: int  # 1-based data row in the table file
    video_id: str
    qid: str
    type: str
    question: str
    options: tuple[str, ...]  # [5]
    answer: int


@dataclass
class Skipped:
    """What ``skip_bad`` leaves out (for skipped.json). Without it the first problem is raised."""

    enabled: bool
    videos: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    def video(self, video_id: str, file: str, error: DataError) -> None:
        if not self.enabled:
            raise error
        self.videos.append({"video_id": video_id, "file": file, "reason": str(error)})

    def row(self, split: str, row: int, qid: str, error: DataError) -> None:
        if not self.enabled:
            raise error
        self.rows.append({"split": split, "row": row, "qid": qid, "reason": str(error)})

    def report(self) -> dict:
        order = {split: k for k, split in enumerate(SPLITS)}
        return {"videos": sorted(self.videos, key=lambda v: v["video_id"]),
                "rows": sorted(self.rows, key=lambda r: (order[r["split"]], r["row"]))}


def read_table(path: Path) -> list[dict]:
    """The records of a QA table (CSV with a header, or a JSON list of objects); DataError if it
    is unreadable, empty or lacks a required column."""
    if not path.is_file():
        raise DataError(path, "table", "a CSV or JSON QA table", "nothing there")
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's BOM
                reader = csv.DictReader(f)
                records = list(reader)
                columns = list(reader.fieldnames or [])
        elif path.suffix.lower() == ".json":
            records = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise DataError(path, "table", "a JSON list of objects (one per question)",
                                type(records).__name__)
            columns = list(dict.fromkeys(key for record in records for key in record))
        else:
            raise DataError(path, "table", "a .csv or .json QA table", f"suffix {path.suffix!r}")
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise DataError(path, "table", "a readable CSV or JSON QA table", repr(exc)) from exc
    if not records:
        raise DataError(path, "rows", "at least one QA row", "none")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if any(name in OPTIONS for name in missing):
        raise DataError(path, missing[0], f"{N_OPTIONS} answer-option columns a0..a4",
                        f"columns {columns}")
    if missing:
        raise DataError(path, missing[0], f"the columns {', '.join(REQUIRED_COLUMNS)}",
                        f"columns {columns}")
    return records


def text_cell(table: Path, row: int, record: dict, column: str) -> str:
    """A cell as stripped text ('' when absent); JSON integers are taken as their digits."""
    value = record.get(column)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(table, column, "text", f"row {row}: {type(value).__name__} {value!r}")
    return value.strip()


def answer_index(table: Path, row: int, value) -> int:
    """The answer cell as an option index 0..4 (an integer, or a string of one)."""
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif text is not None and re.fullmatch(r"[+-]?\d+", text):
        index = int(text)
    else:
        raise DataError(table, "answer", "an integer option index 0..4", f"row {row}: {value!r}")
    if not 0 <= index < N_OPTIONS:
        raise DataError(table, "answer", "an integer option index 0..4", f"row {row}: {index}")
    return index


def is_safe_video_id(video_id: str) -> bool:
    """True if ``video_id`` can name a file: no separators, no leading dot, no '..'."""
    return SAFE_VIDEO_ID.fullmatch(video_id) is not None and ".." not in video_id


def parse_row(table: Path, row: int, record: dict, known: set[str], source: Path) -> QARow:
    """One record, checked (DataError naming the table, field and row)."""
    video_id = text_cell(table, row, record, "video_id")
    if not is_safe_video_id(video_id):  # before the id goes anywhere near a path
        raise DataError(table, "video_id", SAFE_VIDEO_ID_RULE, f"row {row}: {video_id!r}")
    if video_id not in known:
        raise DataError(table, "video_id", f"a video in the features source {source}",
                        f"row {row}: {video_id!r}")
    qid = text_cell(table, row, record, "qid")
    question = text_cell(table, row, record, "question")
    for column, value in (("qid", qid), ("question", question)):
        if not value:
            raise DataError(table, column, f"a non-empty {column}", f"row {row}: empty")
    options = tuple(text_cell(table, row, record, column) for column in OPTIONS)
    for column, option in zip(OPTIONS, options, strict=True):
        if not option:
            raise DataError(table, column, f"{N_OPTIONS} non-empty answer options a0..a4",
                            f"row {row}: {column} empty")
    answer = answer_index(table, row, record.get("answer"))
    kind = text_cell(table, row, record, "type") or DEFAULT_TYPE
    return QARow(row, video_id, qid, kind, question, options, answer)


def read_split(split: str, table: Path, known: set[str], source: Path,
               skipped: Skipped) -> list[QARow]:
    """The table's valid rows, in file order; a repeated qid is the later row's error."""
    rows: list[QARow] = []
    first_row: dict[str, int] = {}
    for n, record in enumerate(read_table(table), start=1):
        try:
            qa_row = parse_row(table, n, record, known, source)
            if qa_row.qid in first_row:
                raise DataError(table, "qid", "qids unique within the split",
                                f"row {n}: {qa_row.qid!r} (also row {first_row[qa_row.qid]})")
        except DataError as error:
            qid = record.get("qid")
            skipped.row(split, n, "" if qid is None else str(qid).strip(), error)
            continue
        first_row[qa_row.qid] = n
        rows.append(qa_row)
    return rows


def encode_split(rows: list[QARow], video_index: dict[str, int], type_codes: dict[str, int],
                 vocab_index: dict[str, int], lq: int, la: int) -> dict[str, np.ndarray]:
    """The qa_<split> arrays for ``rows``."""
    answers = np.zeros((len(rows), N_OPTIONS, la), np.int32)  # [Nq, 5, La]
    for q, row in enumerate(rows):
        for k, option in enumerate(row.options):
            answers[q, k] = encode(tokenize(option), vocab_index, la)
    return {
        "video_index": np.array([video_index[r.video_id] for r in rows], np.int32),
        "question": np.stack([encode(tokenize(r.question), vocab_index, lq) for r in rows])
        if rows else np.zeros((0, lq), np.int32),  # [Nq, Lq]
        "answers": answers,
        "answer": np.array([r.answer for r in rows], np.int8),
        "type": np.array([type_codes[r.type] for r in rows], np.int8),
    }


def write_table_csv(path: Path, rows: list[QARow]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow([r.video_id, r.qid, r.type, r.question, *r.options, r.answer])


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# ---- the ingest --------------------------------------------------------------------------------

def check_arguments(qa: dict, frames, chunk_frames, partitions, max_words) -> None:
    if "train" not in qa or not set(qa) <= set(SPLITS):
        raise ConfigError(f"qa: expected splits 'train' (required), 'val', 'test'; got {list(qa)}")
    for name, value in (("frames", frames), ("chunk_frames", chunk_frames),
                        ("partitions", partitions), ("max_words", max_words)):
        if value is None and name in ("frames", "partitions"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}: expected a positive integer, got {value!r}")


def checked_videos(source: FeatureSource, video_ids: list[str],
                   skipped: Skipped) -> dict[str, VideoShape]:
    """Pass 1, then the width check; bad videos raised or (skip_bad) left out and reported."""
    good: dict[str, VideoShape] = {}
    for video_id, result in zip(video_ids, inspect_videos(source, video_ids), strict=True):
        if isinstance(result, DataError):
            skipped.video(video_id, source.file(video_id), result)
        else:
            good[video_id] = result
    if not good:
        return good
    width = common_width(list(good.values()))
    for video_id, shape in list(good.items()):
        if shape.width != width:
            file = source.file(video_id)
            skipped.video(video_id, file, DataError(
                file, "feature_dim", f"width {width} (as the other videos)", f"{shape.width}"))
            del good[video_id]
    return good


def drop_skipped_videos(tables: dict[str, list[QARow]], good: dict, skipped: Skipped) -> None:
    """Leave out (and report) the rows whose video was skipped."""
    reasons = {v["video_id"]: v["reason"] for v in skipped.videos}
    for split, rows in tables.items():
        for row in rows:
            if row.video_id not in good:
                skipped.rows.append({"split": split, "row": row.row, "qid": row.qid,
                                     "reason": f"video {row.video_id!r} skipped: "
                                               f"{reasons[row.video_id]}"})
        tables[split] = [row for row in rows if row.video_id in good]


def read_answer_features(reader: VideoReader, qid: str, width: int) -> np.ndarray | DataError:
    """``qid``'s [5, width] answer vectors as float16 after checking them (2-D, float, that
    shape, finite in float16); the DataError is returned, as by `inspect_video`."""
    file, field_name = reader.source.file(qid), reader.source.field
    try:
        array = reader.array(qid)
        if len(array.shape) != 2 or not np.issubdtype(array.dtype, np.floating):
            return DataError(file, field_name, "a 2-D float array",
                             f"shape {tuple(array.shape)}, dtype {array.dtype}")
        if tuple(array.shape) != (N_OPTIONS, width):
            return DataError(file, field_name, f"shape ({N_OPTIONS}, {width}): one vector per "
                             f"option a0..a4, as wide as the frame features",
                             f"shape {tuple(array.shape)}")
        values = np.asarray(array[...])
        return (first_nonfinite(values, file, field_name, "option")
                or values.astype(np.float16))
    except DataError as exc:
        return exc
    except (OSError, ValueError, KeyError) as exc:
        return DataError(file, field_name, f"a readable [{N_OPTIONS}, D] array", repr(exc))


def checked_answer_features(source: FeatureSource, tables: dict[str, list[QARow]],
                            qa: dict, width: int, skipped: Skipped) -> dict[str, np.ndarray]:
    """qid → [5, D] float16 answer vectors for every kept row; rows whose qid is unsafe, absent
    from ``source`` or whose array is bad are raised or (skip_bad) left out and reported. A qid
    names a question, so one in several splits is read once and shared."""
    known = list_videos(source)
    vectors: dict[str, np.ndarray | DataError] = {}
    # One reader, no Dask tasks: each array is a few KB, so a task would cost more than its read.
    with VideoReader(source) as reader:
        for split, rows in tables.items():
            table, kept = Path(qa[split]), []
            for row in rows:
                if not is_safe_video_id(row.qid):  # before the qid goes anywhere near a path
                    result = DataError(table, "qid", SAFE_VIDEO_ID_RULE,
                                       f"row {row.row}: {row.qid!r}")
                elif row.qid not in known:
                    result = DataError(table, "qid", "an array in the answer features source "
                                       f"{source.path}", f"row {row.row}: {row.qid!r}")
                else:
                    if row.qid not in vectors:
                        vectors[row.qid] = read_answer_features(reader, row.qid, width)
                    result = vectors[row.qid]
                if isinstance(result, DataError):
                    skipped.row(split, row.row, row.qid, result)
                else:
                    kept.append(row)
            tables[split] = kept
    return {qid: v for qid, v in vectors.items() if not isinstance(v, DataError)}


def prepare_video(features, qa: dict[str, str | Path], dest, *, frames: int | None = None,
                  chunk_frames: int = 1024, partitions: int | None = None,
                  skip_bad: bool = False, max_words: int = 32, overwrite: bool = False,
                  answer_features=None) -> dict:
    """Check, pack and tokenize a video-QA dataset into the prepared directory ``dest``.

    features: the frame-feature source (.npy / .npz directory, .h5 file or .zarr group).
    qa: {split: table path} with 'train' and optionally 'val', 'test' (CSV or JSON).
    frames: resample every video to this many frames (nearest-frame uniform sampling,
    floor((j + 0.5) * T / frames)); None keeps every frame. chunk_frames: rows per Zarr chunk of
    ``features``. partitions: Dask tasks writing ``features`` (default min(chunks, 4 × CPUs)).
    skip_bad: leave out bad videos and rows, listed in skipped.json, instead of raising.
    max_words: cap on the question length Lq in tokens.
    answer_features: optional source (same four layouts) of one [5, D] array per qid, the
    options' vectors in the frame features' space; stored as qa_<split>/answer_features.

    Returns a summary {dest, videos, frames_total, feature_dim, questions {split: n}, skipped
    {videos, rows}, seconds}. Nothing is left at ``dest`` on failure; FileExistsError if it
    exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    check_arguments(qa, frames, chunk_frames, partitions, max_words)
    dest = Path(dest)
    refuse_existing(dest, overwrite)  # before any reading: atomic_directory checks again
    source = open_features(features)
    known = list_videos(source)
    answer_path = None if answer_features is None else os.fspath(answer_features)
    answer_source = None if answer_path is None else open_features(answer_path, "answer_features")
    skipped = Skipped(skip_bad)
    tables = {split: read_split(split, Path(qa[split]), known, source.path, skipped)
              for split in SPLITS if split in qa}
    good = checked_videos(source, sorted({r.video_id for rows in tables.values() for r in rows}),
                          skipped)
    drop_skipped_videos(tables, good, skipped)
    width = common_width(list(good.values())) if good else 0  # every good video has it
    vectors = (None if answer_source is None
               else checked_answer_features(answer_source, tables, qa, width, skipped))
    if not tables["train"]:
        raise DataError(qa["train"], "rows", "at least one usable train QA row",
                        f"none ({len(skipped.rows)} skipped)")

    video_ids = sorted(good)
    source_frames = np.array([good[v].frames for v in video_ids], np.int64)
    plan = PackPlan(tuple(video_ids), source_frames, video_offsets(source_frames, frames),
                    frames, chunk_frames)
    train = tables["train"]
    vocab = build_vocab(text for r in train for text in (r.question, *r.options))
    lq = min(max_words, max(len(tokenize(r.question)) for r in train))
    la = min(MAX_ANSWER_WORDS, max(len(tokenize(o)) for r in train for o in r.options))
    types = sorted({r.type for rows in tables.values() for r in rows})
    if len(types) > 128:
        raise DataError(qa["train"], "type", "at most 128 question types (int8 codes)",
                        f"{len(types)}")
    vocab_index = {word: i for i, word in enumerate(vocab)}
    video_index = {video_id: i for i, video_id in enumerate(video_ids)}
    type_codes = {name: i for i, name in enumerate(types)}

    with atomic_directory(dest, overwrite=overwrite) as tmp:
        root = zarr.open_group(os.fspath(tmp / "video.zarr"), mode="w", zarr_format=3,
                               attributes={"format": FORMAT, "video_ids": video_ids,
                                           "feature_dim": width, "frames": frames,
                                           "chunk_frames": chunk_frames,
                                           "source": os.fspath(features),
                                           "answer_features": answer_path})
        packed = root.create_array("features", shape=(int(plan.offsets[-1]), width),
                                   chunks=(chunk_frames, width), dtype="float16", fill_value=0.0,
                                   dimension_names=("frame", "feature"))
        root.create_array("offsets", data=plan.offsets)
        pack_features(source, plan, packed,
                      min(plan.n_chunks, partitions or 4 * dask_workers()))
        for split, rows in tables.items():
            group = root.create_group(f"qa_{split}", attributes={
                "qids": [r.qid for r in rows], "types": types})
            arrays = encode_split(rows, video_index, type_codes, vocab_index, lq, la)
            if vectors is not None:  # [Nq, 5, D]; the reshape keeps an empty split's shape
                stacked = np.array([vectors[r.qid] for r in rows], np.float16)
                arrays["answer_features"] = stacked.reshape(len(rows), N_OPTIONS, width)
            for name, values in arrays.items():
                group.create_array(name, data=values)
            write_table_csv(tmp / f"qa_{split}.csv", rows)
        write_json(tmp / "vocab.json", {
            "tokenizer": "word-level, trained at ingest on the train split's questions and "
                         "options (pipeline.ingest.video)",
            "lowercase": True, "pattern": WORD_PATTERN, "pad": 0, "unk": 1,
            "question_length": lq, "answer_length": la, "words": vocab,
            "answers": "word tokens only" if answer_path is None
            else f"precomputed answer features [{N_OPTIONS}, {width}] per question from "
                 f"{answer_path}, plus word tokens"})
        if skip_bad:
            write_json(tmp / "skipped.json", skipped.report())
    return {"dest": os.fspath(dest), "videos": len(video_ids),
            "frames_total": int(plan.offsets[-1]), "feature_dim": width,
            "questions": {split: len(rows) for split, rows in tables.items()},
            "skipped": {"videos": len(skipped.videos), "rows": len(skipped.rows)},
            "seconds": round(time.perf_counter() - started, 3)}


# ---- reading it back ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedVideo:
    """A prepared directory opened with plain zarr (no dask): cheap in every DataLoader worker."""

    features: zarr.Array  # [N, D] float16
    offsets: np.ndarray  # [n_videos + 1] int64
    video_ids: list[str]
    feature_dim: int
    # split → video_index, question, answers, answer, type (+ answer_features [Nq, 5, D] float16)
    qa: dict[str, dict[str, np.ndarray]]
    types: dict[str, list[str]]  # split → type names (index = the int8 code)
    vocab: list[str]  # index = token id
    qids: dict[str, list[str]]  # split → qid of each row
    frames: int | None  # the resample count, or None
    answer_features: bool = False  # qa[split]["answer_features"] is there

    def video(self, i: int) -> np.ndarray:
        """Video i's frames, [T_i, D] float32."""
        return np.asarray(self.features[int(self.offsets[i]):int(self.offsets[i + 1])],
                          dtype=np.float32)


def open_prepared_video(path) -> PreparedVideo:
    """Open a directory written by `prepare_video`; DataError if it is not one."""
    path = Path(path)
    store, vocab_file = path / "video.zarr", path / "vocab.json"
    if not (store / "zarr.json").is_file() or not vocab_file.is_file():
        raise DataError(path, "video.zarr", "a prepared video directory (video.zarr, vocab.json) "
                        "written by prepare_video", "no such directory" if not path.is_dir()
                        else f"entries {sorted(p.name for p in path.iterdir())[:8]}")
    root = zarr.open_group(os.fspath(store), mode="r")
    attrs = dict(root.attrs)
    if attrs.get("format") != FORMAT or "features" not in root or "offsets" not in root:
        raise DataError(store, "format", f"a group of format {FORMAT!r} with features and "
                        "offsets", f"format {attrs.get('format')!r}, members "
                        f"{sorted(root.keys())}")
    splits = [split for split in SPLITS if f"qa_{split}" in root]
    groups = {split: root[f"qa_{split}"] for split in splits}
    return PreparedVideo(
        features=root["features"],
        offsets=np.asarray(root["offsets"][:], np.int64),
        video_ids=list(attrs["video_ids"]),
        feature_dim=int(attrs["feature_dim"]),
        qa={split: {name: np.asarray(array[...]) for name, array in sorted(group.arrays())}
            for split, group in groups.items()},
        types={split: list(group.attrs["types"]) for split, group in groups.items()},
        vocab=list(json.loads(vocab_file.read_text(encoding="utf-8"))["words"]),
        qids={split: list(group.attrs["qids"]) for split, group in groups.items()},
        frames=attrs.get("frames"),
        # .get: stores written before answer features have no such attr
        answer_features=attrs.get("answer_features") is not None,
    )
