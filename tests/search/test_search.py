"""Indexing a folder of mixed files and searching it: content detection, incremental and
crash-safe updates, failures recorded, queries by text, file and arithmetic."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from polymodal.search.detect import UnsupportedFile, detect
from polymodal.tasks import Embedder
from polymodal.search.ingest import index_folder
from polymodal.search.query import query_vector
from polymodal.search.store import StoreError, Store


@pytest.fixture(scope="module")
def embedder(model_dir):
    return Embedder.from_checkpoint(model_dir)


def _index(folder, embedder, out, batch=8):
    store = Store(out, embedder.dim, embedder.model_id, str(embedder.model_dir))
    return store, index_folder(folder, embedder, store, batch)


def test_detect_by_content(tmp_path, world_files):
    files = world_files(tmp_path / "f", 1)
    kinds = {p.name: detect(p) for p in files.iterdir()}
    assert kinds == {"scene00000.png": "image", "scene00000.wav": "audio", "scene00000_depth.npy": "depth",
                     "scene00000_thermal.npy": "thermal", "scene00000_imu.npy": "imu", "scene00000.txt": "text"}
    (tmp_path / "photo.txt").write_bytes((files / "scene00000.png").read_bytes())  # a PNG with a wrong name
    assert detect(tmp_path / "photo.txt") == "image"
    np.save(tmp_path / "map.npy", np.zeros((4, 4)))
    with pytest.raises(UnsupportedFile, match="map.npy: a 2-D map must be named"):
        detect(tmp_path / "map.npy")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UnsupportedFile, match="empty.png: the file is empty"):
        detect(tmp_path / "empty.png")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    with pytest.raises(UnsupportedFile, match="blob.bin: not an image"):
        detect(tmp_path / "blob.bin")


def test_index_search_and_failures(tmp_path, embedder, world_files):
    folder = world_files(tmp_path / "f", 4)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert report.added == 25 and len(report.failed) == 1 and "broken.png" in report.failed[0][0]
    assert store.counts() == {"indexed": {m: 4 for m in ("image", "audio", "depth", "thermal", "imu", "text")},
                              "failed": 1}
    assert store.failures()[0][0].endswith("broken.png")
    # An image query finds that very image first, with cosine ≈ 1.
    q = query_vector(embedder, files=[folder / "scene00002.png"])
    hits = store.search(q, k=5)
    assert hits[0][0].path.endswith("scene00002.png") and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    only_audio = store.search(q, k=3, modalities={"audio"})
    assert len(only_audio) == 3 and all(i.modality == "audio" for i, _ in only_audio)
    # The FAISS file on disk agrees with SQLite and is read back without rebuilding.
    again = Store(tmp_path / "idx")
    assert again.ntotal() == 24
    # Arithmetic: the query is the normalised sum of the normalised parts.
    a, b = query_vector(embedder, "a red circle"), query_vector(embedder, files=[folder / "scene00001.wav"])
    both = query_vector(embedder, "a red circle", plus=[str(folder / "scene00001.wav")])
    np.testing.assert_allclose(both, (a + b) / np.linalg.norm(a + b), atol=1e-5)
    with pytest.raises(ValueError, match="needs text, a file"):
        query_vector(embedder)


def test_incremental_updates(tmp_path, embedder, world_files):
    folder = world_files(tmp_path / "f", 3)
    _index(folder, embedder, tmp_path / "idx")
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 18, 0)
    os.utime(folder / "scene00000.txt", (1, 1))  # touched, same bytes: not re-embedded
    (folder / "scene00001.txt").write_text("a small blue square in a kitchen")
    (folder / "scene00002.wav").unlink()
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 16, 1)
    assert store.ntotal() == 17
    paths = {i.path for i, _ in store.search(query_vector(embedder, "anything"), k=100)}
    assert str(folder / "scene00002.wav") not in paths and len(paths) == 17
    hit = store.search(query_vector(embedder, "a small blue square in a kitchen"), k=1, modalities={"text"})
    assert hit[0][0].path.endswith("scene00001.txt") and hit[0][1] == pytest.approx(1.0, abs=1e-4)


def test_another_model_is_refused(tmp_path, embedder):
    Store(tmp_path / "idx", embedder.dim, "somebody-else", "x")
    with pytest.raises(StoreError, match="built with another model"):
        Store(tmp_path / "idx", embedder.dim, embedder.model_id, "y")
    with pytest.raises(StoreError, match="is not an index"):
        Store(tmp_path / "nothing")


def _vectors(index_dir):
    with sqlite3.connect(index_dir / "meta.sqlite") as db:
        rows = db.execute("SELECT path, vector FROM items WHERE vector IS NOT NULL").fetchall()
    return {p: np.frombuffer(v, np.float32) for p, v in rows}


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_equals_a_clean_run(tmp_path, model_dir, embedder, world_files):
    folder = world_files(tmp_path / "f", 12)
    cmd = [sys.executable, "-m", "polymodal.cli", "index", str(folder), "--model", str(model_dir),
           "--out", str(tmp_path / "killed"), "--batch", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_file, deadline = tmp_path / "killed" / "meta.sqlite", time.time() + 120
    count = 0
    while time.time() < deadline and proc.poll() is None:  # wait until some batches are committed
        if db_file.exists():
            try:
                with sqlite3.connect(db_file) as db:
                    count = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0
            if count >= 10:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the indexer finished before it could be killed; make the folder larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 10 <= count < 72
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _index(folder, embedder, tmp_path / "clean")
    killed, clean = _vectors(tmp_path / "killed"), _vectors(tmp_path / "clean")
    assert sorted(killed) == sorted(clean) and len(clean) == 72
    for path, v in clean.items():
        np.testing.assert_allclose(killed[path], v, atol=1e-5, err_msg=path)
    assert Store(tmp_path / "killed").ntotal() == 72


def test_approximate_index_finds_the_same_items(tmp_path, embedder, world_files):
    folder = world_files(tmp_path / "f", 4)
    exact, _ = _index(folder, embedder, tmp_path / "exact")
    approx = Store(tmp_path / "hnsw", embedder.dim, embedder.model_id, str(embedder.model_dir), kind="hnsw")
    index_folder(folder, embedder, approx)
    assert Store(tmp_path / "hnsw").meta()["kind"] == "hnsw"
    for name in ("scene00001.png", "scene00003.wav", "scene00002_depth.npy"):  # an item finds itself first
        q = query_vector(embedder, files=[folder / name])
        (top, score), = approx.search(q, 1)
        assert top.path.endswith(name) and score == pytest.approx(1.0, abs=1e-4)
    q = query_vector(embedder, "a green cross in a forest")  # HNSW's graph is built in parallel: compare sets
    overlap = {i.path for i, _ in approx.search(q, 5)} & {i.path for i, _ in exact.search(q, 5)}
    assert len(overlap) >= 4
    with pytest.raises(StoreError, match="unknown index kind 'ivf'"):
        Store(tmp_path / "x", embedder.dim, embedder.model_id, "m", kind="ivf")


def test_video_and_mp3_files_are_indexed(tmp_path, embedder):
    import av
    import soundfile as sf

    folder = tmp_path / "media"
    folder.mkdir()
    with av.open(str(folder / "clip.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 48, 48, "yuv420p"
        for i in range(8):
            frame = np.full((48, 48, 3), 30 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    sf.write(folder / "tone.mp3", 0.3 * np.sin(np.arange(16000) / 5.0), 16000, format="MP3")
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert report.failed == [] and store.counts()["indexed"] == {"video": 1, "audio": 1}
    hit = store.search(query_vector(embedder, files=[folder / "clip.mp4"]), k=1)
    assert hit[0][0].modality == "video" and hit[0][1] == pytest.approx(1.0, abs=1e-4)


def _pdf(path, pages):
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for i in range(pages):
        doc.new_page(200 + 40 * i, 300)
    doc.save(str(path))
    doc.close()


def test_pdf_pages_are_items_and_follow_their_file(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    _pdf(folder / "report.pdf", 3)
    store, report = _index(folder, embedder, tmp_path / "idx")
    paths = store.known()[str(folder / "report.pdf")][3]
    assert paths == [f"{folder / 'report.pdf'}#page={i}" for i in (1, 2, 3)] and report.added == 1
    assert store.counts()["indexed"] == {"pdf": 3}
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert report.unchanged == 1 and report.added == report.updated == 0
    _pdf(folder / "report.pdf", 2)  # fewer pages now: the third page item goes
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert report.updated == 1 and store.known()[str(folder / "report.pdf")][3] == paths[:2] and store.ntotal() == 2
    (folder / "report.pdf").unlink()
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert report.removed == 2 and store.known() == {}
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    store, report = _index(folder, embedder, tmp_path / "idx")
    assert len(report.failed) == 1 and "broken.pdf: not a readable PDF" in report.failed[0][1]
