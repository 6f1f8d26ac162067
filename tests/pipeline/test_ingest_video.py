"""Video-QA ingest: four feature layouts, chunk-aligned parallel packing, resampling, the
tokenizer, and every bad input at the door."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from pipeline.errors import DataError
from pipeline.ingest import video as video_ingest
from pipeline.ingest.video import (
    block_pieces,
    build_vocab,
    chunk_runs,
    encode,
    frame_indices,
    open_prepared_video,
    prepare_video,
    tokenize,
)

D = 8
# Lengths straddle 64-frame chunks: 3 and 64 share chunks with neighbours, 3000 spans many.
LENGTHS = {"v01": 3, "v02": 700, "v03": 3000, "v04": 129, "v05": 64, "clip.b-7": 257}
UNREFERENCED = "v99"  # in the features source, named by no QA row: not packed
LAYOUTS = ("npy", "npz", "hdf5", "zarr")


def make_videos(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded [T, D] features in assorted float dtypes (the field stores all of these)."""
    rng = np.random.default_rng(seed)
    dtypes = [np.float32, np.float64, np.float16]
    videos = {vid: rng.standard_normal((t, D)).astype(dtypes[k % 3])
              for k, (vid, t) in enumerate(LENGTHS.items())}
    videos[UNREFERENCED] = rng.standard_normal((10, D)).astype(np.float32)
    return videos


def write_features(videos: dict[str, np.ndarray], root: Path, layout: str) -> Path:
    """``videos`` written in ``layout`` under ``root``; returns the source path."""
    root.mkdir(parents=True, exist_ok=True)
    if layout == "hdf5":
        path = root / "features.h5"
        with h5py.File(path, "w") as f:
            for vid, x in videos.items():
                f.create_dataset(vid, data=x)
        return path
    if layout == "zarr":
        path = root / "features.zarr"
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        for vid, x in videos.items():
            group.create_array(vid, data=x, chunks=(max(1, min(len(x), 100)), D))
        return path
    path = root / layout
    path.mkdir(exist_ok=True)
    for k, (vid, x) in enumerate(videos.items()):
        if layout == "npy":
            np.save(path / f"{vid}.npy", x)
        elif k % 2:  # both npz conventions: the key 'features', and a file's only array
            np.savez(path / f"{vid}.npz", features=x, fps=np.array(30))
        else:
            np.savez_compressed(path / f"{vid}.npz", x)
    return path


def qa_rows(video_ids, n_per_video: int, prefix: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    words = ["person", "kitchen", "cup", "door", "red", "open", "table", "walks", "holds", "dog"]
    rows = []
    for vid in video_ids:
        for k in range(n_per_video):
            question = f"What does the {rng.choice(words)} {rng.choice(words)} do after {k}?"
            rows.append({"video_id": vid, "qid": f"{prefix}{vid}-{k}", "question": question,
                         **{f"a{j}": " ".join(rng.choices(words, k=rng.randint(1, 10)))
                            for j in range(5)},
                         "answer": rng.randint(0, 4), "type": rng.choice(["causal", "temporal"])})
    return rows


def write_table(path: Path, rows: list[dict], columns=None) -> Path:
    """CSV or JSON by suffix; ``columns`` (CSV) to drop or reorder columns."""
    if path.suffix == ".json":
        path.write_text(json.dumps(rows))
        return path
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def standard_tables(root: Path) -> dict[str, Path]:
    """train (CSV, every referenced video), val (JSON, no type field), test (CSV)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = list(LENGTHS)
    val = [{k: v for k, v in row.items() if k != "type"} for row in qa_rows(ids[:3], 1, "val", 2)]
    return {"train": write_table(root / "train.csv", qa_rows(ids, 3, "tr", 1)),
            "val": write_table(root / "val.json", val),
            "test": write_table(root / "test.csv", qa_rows(ids[3:], 2, "te", 3))}


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(videos, {layout: source path}, qa tables) shared by the tests that only read them."""
    root = tmp_path_factory.mktemp("video_src")
    videos = make_videos()
    sources = {layout: write_features(videos, root, layout) for layout in LAYOUTS}
    return videos, sources, standard_tables(root / "qa")


@pytest.fixture(scope="module")
def prepared(dataset, tmp_path_factory):
    videos, sources, tables = dataset
    dest = tmp_path_factory.mktemp("video_out") / "prepared"
    summary = prepare_video(sources["npy"], tables, dest, chunk_frames=64)
    return dest, summary, open_prepared_video(dest)


def small_case(tmp_path: Path, videos: dict[str, np.ndarray], rows: list[dict],
               layout: str = "npy", suffix: str = ".csv") -> tuple[Path, dict]:
    source = write_features(videos, tmp_path / "src", layout)
    return source, {"train": write_table(tmp_path / f"train{suffix}", rows)}


def good_rows() -> list[dict]:
    return qa_rows(["v01", "v02", "v04"], 2, "q", 5)


# ---- round trip and layouts ----------------------------------------------------------------

def test_round_trip_features_are_the_float16_of_the_input(dataset, prepared):
    videos, _, _ = dataset
    _, summary, store = prepared
    assert store.video_ids == sorted(LENGTHS)  # UNREFERENCED is not packed
    assert store.feature_dim == D and store.frames is None
    assert store.features.dtype == np.float16 and store.features.chunks == (64, D)
    assert np.array_equal(np.diff(store.offsets), [LENGTHS[v] for v in store.video_ids])
    for i, vid in enumerate(store.video_ids):
        expected = videos[vid].astype(np.float16).astype(np.float32)
        got = store.video(i)
        assert got.dtype == np.float32 and np.array_equal(got, expected), vid
    assert summary["videos"] == len(LENGTHS)
    assert summary["frames_total"] == sum(LENGTHS.values()) == store.features.shape[0]
    assert summary["questions"] == {"train": 18, "val": 3, "test": 6}
    assert summary["skipped"] == {"videos": 0, "rows": 0}


def test_round_trip_qa_arrays_decode_to_the_table(dataset, prepared):
    _, _, tables = dataset
    dest, _, store = prepared
    assert sorted(store.qa) == ["test", "train", "val"]
    assert not (dest / "skipped.json").exists()  # only written under skip_bad
    rows = list(csv.DictReader(open(tables["train"], newline="")))
    qa = store.qa["train"]
    n, lq = qa["question"].shape
    assert n == len(rows) and qa["answers"].shape[:2] == (n, 5)
    assert qa["video_index"].dtype == np.int32 and qa["answer"].dtype == np.int8
    assert qa["type"].dtype == np.int8 and qa["question"].dtype == np.int32
    assert lq == max(len(tokenize(r["question"])) for r in rows)
    assert qa["answers"].shape[2] == 8  # options run to 10 words: capped at 8
    for q, row in enumerate(rows):
        assert store.video_ids[qa["video_index"][q]] == row["video_id"]
        assert store.qids["train"][q] == row["qid"]
        assert int(qa["answer"][q]) == int(row["answer"])
        assert store.types["train"][qa["type"][q]] == row["type"]
        words = [store.vocab[t] for t in qa["question"][q] if t]
        assert words == tokenize(row["question"])  # train words are all in the vocab
        a2 = [store.vocab[t] for t in qa["answers"][q, 2] if t]
        assert a2 == tokenize(row["a2"])[:8]
    # One type list for every split, so a code means one type everywhere; val has no types.
    assert store.types["val"] == store.types["train"] == ["all", "causal", "temporal"]
    assert set(store.qa["val"]["type"].tolist()) == {0}
    normalised = list(csv.reader(open(dest / "qa_val.csv", newline="")))
    assert normalised[0] == ["video_id", "qid", "type", "question", "a0", "a1", "a2", "a3",
                             "a4", "answer"]
    assert normalised[1][2] == "all" and len(normalised) == 4


@pytest.mark.parametrize("layout", ["npz", "hdf5", "zarr"])
def test_every_layout_prepares_the_same_store(dataset, prepared, layout, tmp_path):
    _, sources, tables = dataset
    reference_dir, _, _ = prepared
    prepare_video(sources[layout], tables, tmp_path / "out", chunk_frames=64)
    ours, reference = tree_bytes(tmp_path / "out"), tree_bytes(reference_dir)
    assert ours.keys() == reference.keys()
    # The root zarr.json differs only in attrs.source (the features path).
    differing = [name for name in ours if ours[name] != reference[name]]
    assert differing == ["video.zarr/zarr.json"]
    attrs = zarr.open_group(str(tmp_path / "out" / "video.zarr"), mode="r").attrs
    assert attrs["source"] == str(sources[layout])


# ---- parallel packing ----------------------------------------------------------------------

def test_chunk_runs_tile_the_chunks_without_sharing_one():
    for n_chunks, partitions in [(10, 4), (7, 7), (100, 3), (1, 1), (5, 9)]:
        runs = chunk_runs(n_chunks, partitions)
        assert runs[0][0] == 0 and runs[-1][1] == n_chunks
        assert all(a < b for a, b in runs)
        assert all(b == c for (_, b), (c, _) in zip(runs, runs[1:], strict=False))
        assert len(runs) == min(n_chunks, partitions)
        sizes = [b - a for a, b in runs]
        assert max(sizes) - min(sizes) <= 1


def test_block_pieces_cover_the_rows_of_each_overlapping_video():
    offsets = np.array([0, 3, 70, 70, 200])  # video 2 is empty
    assert block_pieces(offsets, 0, 64) == [(0, 0, 3), (1, 0, 61)]
    assert block_pieces(offsets, 64, 128) == [(1, 61, 67), (3, 0, 58)]
    assert block_pieces(offsets, 192, 200) == [(3, 122, 130)]


def test_parallel_ingest_is_byte_identical_to_serial(dataset, tmp_path, monkeypatch):
    _, sources, tables = dataset
    runs = []
    write_chunks = video_ingest.write_chunks

    def recording(source, plan, features, c0, c1):
        runs.append((c0, c1))
        return write_chunks(source, plan, features, c0, c1)

    monkeypatch.setattr(video_ingest, "write_chunks", recording)
    # Three chunks per Zarr write, so a task's run is written in several uneven calls.
    monkeypatch.setattr(video_ingest, "WRITE_BYTES", 3 * 64 * D * 2)
    prepare_video(sources["npy"], tables, tmp_path / "serial", chunk_frames=64, partitions=1)
    assert len(runs) == 1
    runs.clear()
    prepare_video(sources["npy"], tables, tmp_path / "parallel", chunk_frames=64, partitions=7)
    n_chunks = -(-sum(LENGTHS.values()) // 64)
    assert sorted(runs) == chunk_runs(n_chunks, 7) and len(runs) == 7
    serial, parallel = tree_bytes(tmp_path / "serial"), tree_bytes(tmp_path / "parallel")
    assert serial.keys() == parallel.keys()
    assert sum(name.startswith("video.zarr/features/c/") for name in serial) > 50
    assert {"qa_train.csv", "qa_val.csv", "qa_test.csv", "vocab.json"} <= serial.keys()
    assert [name for name in serial if serial[name] != parallel[name]] == []


# ---- resampling ----------------------------------------------------------------------------

def test_frame_indices_by_hand():
    # floor((j + 0.5) * T / frames)
    assert frame_indices(5, 3).tolist() == [0, 2, 4]  # 0.83, 2.5, 4.17
    assert frame_indices(2, 5).tolist() == [0, 0, 1, 1, 1]  # 0.2, 0.6, 1.0, 1.4, 1.8
    assert frame_indices(4, 4).tolist() == [0, 1, 2, 3]
    assert frame_indices(10, 4).tolist() == [1, 3, 6, 8]  # 1.25, 3.75, 6.25, 8.75
    assert frame_indices(10, 4, 1, 3).tolist() == [3, 6]
    assert frame_indices(1, 3).tolist() == [0, 0, 0]
    for t, frames in [(10_007, 4096), (3, 1000), (12_345, 7)]:
        j = np.arange(frames)
        assert np.array_equal(frame_indices(t, frames), np.floor((j + 0.5) * t / frames))
        assert frame_indices(t, frames).max() < t


def test_resampling_picks_the_documented_frames(tmp_path):
    # Each frame's features hold its own index, so the output spells out the frames picked.
    lengths = {"a": 5, "b": 2, "c": 10}
    videos = {vid: np.repeat(np.arange(t, dtype=np.float32)[:, None], D, axis=1)
              for vid, t in lengths.items()}
    source, tables = small_case(tmp_path, videos, qa_rows(list(lengths), 1, "q", 0))
    summary = prepare_video(source, tables, tmp_path / "out", frames=4, chunk_frames=3,
                            partitions=3)
    store = open_prepared_video(tmp_path / "out")
    assert summary["frames_total"] == 12 and store.frames == 4
    assert store.offsets.tolist() == [0, 4, 8, 12]
    picked = {vid: store.video(i)[:, 0].astype(int).tolist()
              for i, vid in enumerate(store.video_ids)}
    assert picked == {"a": [0, 1, 3, 4], "b": [0, 0, 1, 1], "c": [1, 3, 6, 8]}


# ---- tokenizer -----------------------------------------------------------------------------

def test_tokenize_and_encode():
    assert tokenize("Why did the MAN open 2 doors?") == ["why", "did", "the", "man", "open", "2",
                                                          "doors", "?"]
    assert tokenize("c'est l'été, 3.5kg") == ["c", "'", "est", "l", "'", "é", "t", "é", ",", "3",
                                              ".", "5kg"]
    vocab = build_vocab(["b a b", "c a b"])
    assert vocab == ["<pad>", "<unk>", "b", "a", "c"]  # (-count, word)
    index = {w: i for i, w in enumerate(vocab)}
    assert encode(["a", "zzz", "c"], index, 5).tolist() == [3, 1, 4, 0, 0]
    assert encode(["a", "b", "c"], index, 2).tolist() == [3, 2]
    assert encode([], index, 2).dtype == np.int32


def test_vocab_does_not_depend_on_row_order(tmp_path):
    videos = {vid: make_videos()[vid] for vid in ("v01", "v02", "v04")}
    rows = good_rows()
    source, tables = small_case(tmp_path, videos, rows)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    prepare_video(source, tables, tmp_path / "a")
    prepare_video(source, {"train": write_table(tmp_path / "t2.csv", shuffled)}, tmp_path / "b")
    vocab_a = (tmp_path / "a" / "vocab.json").read_bytes()
    assert vocab_a == (tmp_path / "b" / "vocab.json").read_bytes()
    assert json.loads(vocab_a)["words"][:2] == ["<pad>", "<unk>"]


def test_max_words_truncates_questions(tmp_path):
    videos = {vid: make_videos()[vid] for vid in ("v01", "v02", "v04")}
    source, tables = small_case(tmp_path, videos, good_rows())
    prepare_video(source, tables, tmp_path / "out", max_words=4)
    store = open_prepared_video(tmp_path / "out")
    assert store.qa["train"]["question"].shape[1] == 4
    assert json.loads((tmp_path / "out" / "vocab.json").read_text())["question_length"] == 4


# ---- bad input -----------------------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    """(videos, rows) of three good videos and six rows, for tests to break one thing."""
    return {vid: make_videos()[vid] for vid in ("v01", "v02", "v04")}, good_rows()


def expect_data_error(tmp_path, videos, rows, *parts, suffix=".csv", skip_bad=False,
                      layout="npy", **options) -> DataError:
    source, tables = small_case(tmp_path, videos, rows, layout, suffix)
    with pytest.raises(DataError) as info:
        prepare_video(source, tables, tmp_path / "out", skip_bad=skip_bad, **options)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    return info.value


def test_row_naming_a_missing_video(tmp_path, small):
    videos, rows = small
    rows[3]["video_id"] = "v42"
    err = expect_data_error(tmp_path, videos, rows, "train.csv", "row 4", "'v42'",
                            "features source")
    assert err.field == "video_id"


@pytest.mark.parametrize("answer", ["7", "-1", "b", "1.5", ""])
def test_answer_outside_0_to_4_or_not_an_integer(tmp_path, small, answer):
    videos, rows = small
    rows[1]["answer"] = answer
    err = expect_data_error(tmp_path, videos, rows, "train.csv", "row 2", "integer option index")
    assert err.field == "answer"


@pytest.mark.parametrize("answer", [True, 2.0, 5])
def test_json_answer_must_be_an_integer_index(tmp_path, small, answer):
    videos, rows = small
    rows[0]["answer"] = answer
    err = expect_data_error(tmp_path, videos, rows, "train.json", "row 1", suffix=".json")
    assert err.field == "answer"


def test_an_empty_option_is_a_row_error(tmp_path, small):
    videos, rows = small
    rows[2]["a3"] = "  "
    err = expect_data_error(tmp_path, videos, rows, "row 3", "a3 empty",
                            "non-empty answer options")
    assert err.field == "a3"
    summary = prepare_video(*small_case(tmp_path / "skip", videos, rows), tmp_path / "skip_out",
                            skip_bad=True)
    assert summary["skipped"] == {"videos": 0, "rows": 1}


@pytest.mark.parametrize("skip_bad", [False, True])
def test_an_option_column_missing_fails_the_table_even_with_skip_bad(tmp_path, small, skip_bad):
    videos, rows = small
    columns = [c for c in rows[0] if c != "a4"]
    source = write_features(videos, tmp_path / "src", "npy")
    table = write_table(tmp_path / "train.csv", rows, columns)
    with pytest.raises(DataError, match="a0..a4") as info:
        prepare_video(source, {"train": table}, tmp_path / "out", skip_bad=skip_bad)
    assert info.value.field == "a4" and "train.csv" in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("column", ["question", "video_id", "answer", "qid"])
@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_required_column_missing_is_always_an_error(tmp_path, small, column, suffix):
    videos, rows = small
    rows = [{k: v for k, v in row.items() if k != column} for row in rows]
    err = expect_data_error(tmp_path, videos, rows, f"train{suffix}", column, suffix=suffix,
                            skip_bad=True)
    assert err.field == column


def test_empty_features_name_the_video_file(tmp_path, small):
    videos, rows = small
    videos["v02"] = np.zeros((0, D), np.float32)
    err = expect_data_error(tmp_path, videos, rows, "v02.npy", "at least one frame")
    assert err.path.endswith("v02.npy")


@pytest.mark.parametrize("value,shown", [(np.nan, "nan"), (np.inf, "inf"),
                                         (1e6, "beyond float16")])
@pytest.mark.parametrize("layout", ["npy", "hdf5"])
def test_non_finite_features_name_the_video_file(tmp_path, small, value, shown, layout):
    videos, rows = small
    videos["v04"] = videos["v04"].astype(np.float64)
    videos["v04"][100, 5] = value
    err = expect_data_error(tmp_path, videos, rows, "v04", shown, "frame 100, column 5",
                            layout=layout)
    assert err.field == "features"


def test_a_different_feature_width_names_file_and_widths(tmp_path, small):
    videos, rows = small
    videos["v04"] = videos["v04"][:, :5]
    err = expect_data_error(tmp_path, videos, rows, "v04.npy", "width 8", "found 5")
    assert err.field == "feature_dim" and err.found == "5"


@pytest.mark.parametrize("video_id", ["../../etc/passwd", "../secret", ".hidden", "a/b", "a..b",
                                      "v0\n1", "", "-rf", "v 1"])
def test_unsafe_video_ids_are_refused_before_any_path_use(tmp_path, small, video_id):
    videos, rows = small
    np.save(tmp_path / "secret.npy", np.ones((4, D), np.float32))  # beside the source dir
    rows[4]["video_id"] = video_id
    err = expect_data_error(tmp_path, videos, rows, "train.json", "row 5", "safe file name",
                            suffix=".json")
    assert err.field == "video_id"


def test_duplicate_qid_within_a_split(tmp_path, small):
    videos, rows = small
    rows[4]["qid"] = rows[1]["qid"]
    err = expect_data_error(tmp_path, videos, rows, "row 5", "also row 2", "unique")
    assert err.field == "qid"


def test_the_same_qid_in_two_splits_is_fine(tmp_path, small):
    videos, rows = small
    source, tables = small_case(tmp_path, videos, rows)
    tables["val"] = write_table(tmp_path / "val.csv", rows[:2])
    assert prepare_video(source, tables, tmp_path / "out")["questions"] == {"train": 6, "val": 2}


def test_integer_features_are_refused(tmp_path, small):
    videos, rows = small
    videos["v01"] = np.ones((3, D), np.int64)
    err = expect_data_error(tmp_path, videos, rows, "v01.npy", "a float dtype")
    assert err.field == "features" and err.found == "int64"


def test_not_a_features_source(tmp_path, small):
    _, rows = small
    (tmp_path / "empty").mkdir()
    table = write_table(tmp_path / "train.csv", rows)
    for bad in (tmp_path / "empty", tmp_path / "nothing", table):
        with pytest.raises(DataError, match="features"):
            prepare_video(bad, {"train": table}, tmp_path / "out")


# ---- skip_bad ------------------------------------------------------------------------------

def test_skip_bad_reports_every_left_out_video_and_row(tmp_path, small):
    videos, rows = small
    videos["v02"] = videos["v02"].copy()
    videos["v02"][10, 0] = np.nan
    rows[0]["video_id"] = "../../etc/passwd"
    rows[4]["answer"] = "9"
    source, tables = small_case(tmp_path, videos, rows)
    summary = prepare_video(source, tables, tmp_path / "out", skip_bad=True)
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [v["video_id"] for v in report["videos"]] == ["v02"]
    assert report["videos"][0]["file"].endswith("v02.npy")
    assert "frame 10" in report["videos"][0]["reason"]
    skipped_rows = {r["row"]: r for r in report["rows"]}
    # rows 1 (unsafe id), 5 (answer) and both rows of v02 (rows 3, 4)
    assert sorted(skipped_rows) == [1, 3, 4, 5]
    assert "safe file name" in skipped_rows[1]["reason"]
    assert "answer" in skipped_rows[5]["reason"]
    assert skipped_rows[3]["reason"].startswith("video 'v02' skipped: ")
    assert all(r["split"] == "train" for r in report["rows"])
    assert skipped_rows[3]["qid"] == rows[2]["qid"]
    assert summary["skipped"] == {"videos": 1, "rows": 4}
    store = open_prepared_video(tmp_path / "out")
    assert store.video_ids == ["v01", "v04"]
    assert store.qids["train"] == [rows[1]["qid"], rows[5]["qid"]]
    kept = list(csv.DictReader(open(tmp_path / "out" / "qa_train.csv", newline="")))
    assert [r["qid"] for r in kept] == store.qids["train"]


def test_skip_bad_with_nothing_wrong_writes_an_empty_report(tmp_path, small):
    prepare_video(*small_case(tmp_path, *small), tmp_path / "out", skip_bad=True)
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert report == {"videos": [], "rows": []}


def test_skip_bad_with_no_train_row_left_is_an_error(tmp_path, small):
    videos, rows = small
    for row in rows:
        row["answer"] = "x"
    err = expect_data_error(tmp_path, videos, rows, "at least one usable train QA row",
                            skip_bad=True)
    assert err.field == "rows"


# ---- atomic publish ------------------------------------------------------------------------

def test_a_failure_while_writing_leaves_nothing(tmp_path, small, monkeypatch):
    source, tables = small_case(tmp_path, *small)

    def broken(path, rows):
        raise OSError("disk full")

    monkeypatch.setattr(video_ingest, "write_table_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        prepare_video(source, tables, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "train.csv"]


def test_existing_output_is_kept_unless_overwrite(tmp_path, small, monkeypatch):
    videos, rows = small
    source, tables = small_case(tmp_path, videos, rows)
    prepare_video(source, tables, tmp_path / "out")
    before = tree_bytes(tmp_path / "out")
    with pytest.raises(FileExistsError):
        prepare_video(source, tables, tmp_path / "out")
    monkeypatch.setattr(video_ingest, "write_json", lambda path, value: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        prepare_video(source, tables, tmp_path / "out", overwrite=True)
    assert tree_bytes(tmp_path / "out") == before
    monkeypatch.undo()
    prepare_video(source, tables, tmp_path / "out", overwrite=True, frames=2)
    assert open_prepared_video(tmp_path / "out").frames == 2


def test_open_prepared_video_refuses_other_directories(tmp_path, dataset):
    _, sources, _ = dataset
    for path in (tmp_path, tmp_path / "missing", sources["zarr"].parent):
        with pytest.raises(DataError, match="prepare_video"):
            open_prepared_video(path)


# ---- precomputed answer features -----------------------------------------------------------

def answer_vectors(rows: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded [5, D] answer features per qid, float64 so that storing them rounds."""
    rng = np.random.default_rng(seed)
    return {row["qid"]: rng.standard_normal((5, D)) for row in rows}


def table_records(path: Path) -> list[dict]:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("layout", ["npy", "hdf5"])
def test_answer_features_round_trip_in_every_split(dataset, prepared, tmp_path, layout):
    _, sources, tables = dataset
    reference = prepared[2]
    records = {split: table_records(path) for split, path in tables.items()}
    random.Random(3).shuffle(records["train"])  # stored order must follow the table's
    tables = {**tables, "train": write_table(tmp_path / "train.csv", records["train"])}
    answers = answer_vectors([row for rows in records.values() for row in rows])
    answer_source = write_features(answers, tmp_path / "answers", layout)
    prepare_video(sources["npy"], tables, tmp_path / "out", chunk_frames=64,
                  answer_features=answer_source)
    store = open_prepared_video(tmp_path / "out")
    assert store.answer_features is True
    for split, rows in records.items():
        qa = store.qa[split]
        assert store.qids[split] == [row["qid"] for row in rows]
        stored = qa["answer_features"]
        assert stored.dtype == np.float16 and stored.shape == (len(rows), 5, D)
        expected = np.stack([answers[row["qid"]].astype(np.float16) for row in rows])
        assert np.array_equal(stored, expected), split
        # The options' word tokens are still there, row for row.
        index = {qid: i for i, qid in enumerate(reference.qids[split])}
        picked = [index[row["qid"]] for row in rows]
        assert np.array_equal(qa["answers"], reference.qa[split]["answers"][picked]), split
    attrs = zarr.open_group(str(tmp_path / "out" / "video.zarr"), mode="r").attrs
    assert attrs["answer_features"] == str(answer_source)
    vocab = json.loads((tmp_path / "out" / "vocab.json").read_text())
    assert vocab["answers"] == (f"precomputed answer features [5, {D}] per question from "
                                f"{answer_source}, plus word tokens")
    assert vocab["words"] == reference.vocab


def test_a_store_without_answer_features_opens_without_them(prepared, tmp_path):
    dest, _, store = prepared
    assert store.answer_features is False
    assert [split for split, qa in store.qa.items() if "answer_features" in qa] == []
    assert json.loads((dest / "vocab.json").read_text())["answers"] == "word tokens only"
    # A store written before answer features existed has no such attr at all.
    shutil.copytree(dest, tmp_path / "old")
    meta = tmp_path / "old" / "video.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    assert doc["attributes"].pop("answer_features") is None
    meta.write_text(json.dumps(doc))
    old = open_prepared_video(tmp_path / "old")
    assert old.answer_features is False and old.qids == store.qids
    assert sorted(old.qa["train"]) == ["answer", "answers", "question", "type", "video_index"]


def test_answer_features_missing_for_a_qid(tmp_path, small):
    videos, rows = small
    answers = answer_vectors(rows)
    del answers[rows[3]["qid"]]
    source = write_features(answers, tmp_path / "answers", "npy")
    err = expect_data_error(tmp_path, videos, rows, "train.csv", "row 4", repr(rows[3]["qid"]),
                            f"answer features source {source}", answer_features=source)
    assert err.field == "qid"


@pytest.mark.parametrize("qid", ["../x", "../../x", ".hidden", "a/b", "a..b", "q 1"])
def test_unsafe_qids_are_refused_before_any_path_use(tmp_path, small, qid):
    videos, rows = small
    source = write_features(answer_vectors(rows), tmp_path / "answers", "npy")
    for decoy in (tmp_path / "answers" / "x.npy", tmp_path / "x.npy"):  # where '..' would lead
        np.save(decoy, np.ones((5, D)))
    rows[4]["qid"] = qid
    err = expect_data_error(tmp_path, videos, rows, "train.csv", "row 5", repr(qid),
                            "safe file name", answer_features=source)
    assert err.field == "qid"
    # Without answer features a qid names no file, so the same table is fine.
    prepare_video(tmp_path / "src" / "npy", {"train": tmp_path / "train.csv"}, tmp_path / "ok")
    assert open_prepared_video(tmp_path / "ok").qids["train"][4] == qid


@pytest.mark.parametrize("bad", [np.ones((5, D, 1)), np.ones(5 * D), np.ones((5, D), np.int64)],
                         ids=["3-D", "1-D", "int64"])
def test_answer_features_not_a_2d_float_array(tmp_path, small, bad):
    videos, rows = small
    qid = rows[1]["qid"]
    answers = answer_vectors(rows)
    answers[qid] = bad
    source = write_features(answers, tmp_path / "answers", "npy")
    err = expect_data_error(tmp_path, videos, rows, f"{qid}.npy", "'answer_features'",
                            "a 2-D float array", f"dtype {bad.dtype}", answer_features=source)
    assert err.field == "answer_features" and err.path == str(source / f"{qid}.npy")


@pytest.mark.parametrize("shape", [(4, D), (5, D - 1), (D, 5)])
def test_answer_features_must_be_5_by_the_frame_width(tmp_path, small, shape):
    videos, rows = small
    qid = rows[2]["qid"]
    answers = answer_vectors(rows)
    answers[qid] = np.ones(shape, np.float32)
    source = write_features(answers, tmp_path / "answers", "npy")
    err = expect_data_error(tmp_path, videos, rows, f"{qid}.npy", f"shape (5, {D})",
                            answer_features=source)
    assert err.field == "answer_features" and err.found == f"shape {shape}"


@pytest.mark.parametrize("value,shown", [(np.nan, "nan"), (np.inf, "inf"),
                                         (-1e6, "beyond float16")])
@pytest.mark.parametrize("layout", ["npy", "hdf5"])
def test_non_finite_answer_features_name_the_file(tmp_path, small, value, shown, layout):
    videos, rows = small
    qid = rows[5]["qid"]
    answers = answer_vectors(rows)
    answers[qid][2, 5] = value
    source = write_features(answers, tmp_path / "answers", layout)
    err = expect_data_error(tmp_path, videos, rows, str(source), qid, shown,
                            "option 2, column 5", answer_features=source)
    assert err.field == "answer_features"


def test_answer_features_source_must_be_a_layout(tmp_path, small):
    err = expect_data_error(tmp_path, *small, "missing.h5", "nothing there",
                            answer_features=tmp_path / "missing.h5")
    assert err.field == "answer_features"


def test_skip_bad_leaves_out_rows_with_bad_answer_features(tmp_path, small):
    videos, rows = small
    answers = answer_vectors(rows)
    del answers[rows[0]["qid"]]
    answers[rows[2]["qid"]] = answers[rows[2]["qid"]][:, :5]
    answers[rows[3]["qid"]][1, 1] = np.inf
    rows[5]["qid"] = "../x"
    source, tables = small_case(tmp_path, videos, rows)
    # A qid names a question: in val it is the train row's array, good or bad.
    tables["val"] = write_table(tmp_path / "val.csv", [rows[2], rows[4]])
    tables["test"] = write_table(tmp_path / "test.csv", [rows[0]])  # nothing left
    answer_source = write_features(answers, tmp_path / "answers", "npy")
    summary = prepare_video(source, tables, tmp_path / "out", skip_bad=True,
                            answer_features=answer_source)
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    reasons = {(r["split"], r["row"]): r["reason"] for r in report["rows"]}
    assert sorted(reasons) == [("test", 1), ("train", 1), ("train", 3), ("train", 4),
                               ("train", 6), ("val", 1)]
    assert "train.csv" in reasons[("train", 1)] and "test.csv" in reasons[("test", 1)]
    assert all("answer features source" in reasons[key] for key in [("train", 1), ("test", 1)])
    assert f"expected shape (5, {D})" in reasons[("train", 3)]
    assert "found shape (5, 5)" in reasons[("train", 3)]
    assert reasons[("val", 1)] == reasons[("train", 3)]  # one array, one reason
    assert "inf at option 1, column 1" in reasons[("train", 4)]
    assert "safe file name" in reasons[("train", 6)]
    assert report["videos"] == [] and summary["skipped"] == {"videos": 0, "rows": 6}
    store = open_prepared_video(tmp_path / "out")
    assert store.qids == {"train": [rows[1]["qid"], rows[4]["qid"]], "val": [rows[4]["qid"]],
                          "test": []}
    expected = np.stack([answers[qid].astype(np.float16) for qid in store.qids["train"]])
    assert np.array_equal(store.qa["train"]["answer_features"], expected)
    assert np.array_equal(store.qa["val"]["answer_features"], expected[1:])
    assert store.qa["test"]["answer_features"].shape == (0, 5, D)
