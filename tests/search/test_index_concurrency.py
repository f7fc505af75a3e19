"""Issue 12's concurrency and trust findings: two writers, a corrupt or stale FAISS file, fsync, a
running server that must see a re-index, filtered search that touches only its modality, and
model paths that come from someone else's index."""

import os
import select
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import _serve

from polymodal.search.ingest import index_folder
from polymodal.search.query import embedder_for
from polymodal.search.store import Store
from polymodal.tasks import Embedder
from polymodal import fileio


@pytest.fixture(scope="module")
def embedder(model_dir):
    return Embedder.from_checkpoint(model_dir)


def _store(out, embedder):
    return Store(out, embedder.dim, embedder.model_id, str(embedder.model_dir))


def _rows(n, dim, start=0, modality="image"):
    rng = np.random.default_rng(start)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [{"path": f"/f/{modality}{start + i}", "modality": modality, "size": 1, "mtime": 0.0, "sha256": "x",
             "vector": v} for i, v in enumerate(vecs)]


def test_a_stamp_names_the_generation_its_vectors_came_from(tmp_path, embedder):
    first = _store(tmp_path / "idx", embedder)
    first.write(_rows(5, embedder.dim))
    first.ntotal()  # built at this generation
    second = Store(tmp_path / "idx")
    second.write(_rows(3, embedder.dim, start=5))  # another writer commits before the first saves
    first.save_faiss()
    assert Store(tmp_path / "idx").ntotal() == 8  # the stale save is not trusted


def test_corrupt_or_short_faiss_files_are_rebuilt(tmp_path, embedder):
    store = _store(tmp_path / "idx", embedder)
    store.write(_rows(6, embedder.dim) + _rows(4, embedder.dim, start=6, modality="audio"))
    store.save_faiss()
    files = sorted(tmp_path.glob("idx/*.faiss"))
    assert files
    for f in files:
        f.write_bytes(b"garbage" + f.read_bytes()[:40])
    again = Store(tmp_path / "idx")
    assert again.ntotal() == 10 and len(again.search(_rows(1, embedder.dim)[0]["vector"], 10)) == 10


def test_atomic_writes_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd))
    fileio.atomic_write(tmp_path / "out.json", lambda p: open(p, "w").write("{}"))
    assert (tmp_path / "out.json").read_text() == "{}"
    assert str(tmp_path) in synced and any(s.startswith(str(tmp_path / ".out.json.")) for s in synced)


def test_a_second_writer_waits_and_says_who_holds_the_index(tmp_path, model_dir, world_files, embedder):
    folder = world_files(tmp_path / "files", 1)
    store = _store(tmp_path / "idx", embedder)
    with store.writing():
        proc = subprocess.Popen([sys.executable, "-m", "polymodal.cli", "index", str(folder), "--model", str(model_dir),
                                 "--out", str(tmp_path / "idx")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        said = ""
        deadline = time.time() + 120
        while "waiting" not in said and time.time() < deadline and proc.poll() is None:
            if select.select([proc.stderr], [], [], 1)[0]:
                said += os.read(proc.stderr.fileno(), 4096).decode()
        time.sleep(1)
        assert proc.poll() is None  # still waiting for us
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert f"is being written by pid {os.getpid()}" in " ".join(said.split())
    assert Store(tmp_path / "idx").counts()["indexed"]


@pytest.mark.slow
def test_the_running_server_sees_a_re_index(tmp_path, model_dir, world_files, embedder):
    folder = world_files(tmp_path / "files", 2)
    index_folder(folder, embedder, _store(tmp_path / "idx", embedder))
    proc, client, _ = _serve(tmp_path / "idx")
    try:
        before = client.get("/api/search", params={"q": "zebra", "k": 50}).json()["results"]
        (folder / "zebra.txt").write_text("a zebra crossing")
        index_folder(folder, embedder, _store(tmp_path / "idx", embedder))
        after = client.get("/api/search", params={"q": "zebra", "k": 50}).json()["results"]
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
    assert "zebra.txt" not in {r["name"] for r in before}
    assert "zebra.txt" in {r["name"] for r in after} and len(after) == len(before) + 1


def test_a_filtered_search_touches_only_its_modality(tmp_path, embedder, monkeypatch):
    store = _store(tmp_path / "idx", embedder)
    store.write(_rows(500, embedder.dim) + _rows(5, embedder.dim, start=500, modality="audio"))
    looked_up = []
    item = store.item
    monkeypatch.setattr(store, "item", lambda i: looked_up.append(i) or item(i))
    hits = store.search(_rows(1, embedder.dim, start=999)[0]["vector"], 3, {"audio"})
    assert [h.modality for h, _ in hits] == ["audio"] * 3
    assert len(looked_up) == 3  # not a scan through the 500 images nearer the query


def test_an_index_can_not_choose_the_model_that_gets_loaded(tmp_path, embedder, monkeypatch):
    import shutil

    import torch

    store = _store(tmp_path / "idx", embedder)
    other = tmp_path / "other"
    shutil.copytree(embedder.model_dir, other)
    (other / "model.safetensors").write_bytes(b"not the model the index was built with")
    with store.db:
        store.db.execute("UPDATE meta SET value = ? WHERE key = 'model_path'", (str(other),))
    loaded = []
    monkeypatch.setattr(Embedder, "from_checkpoint", classmethod(lambda cls, p, *a: loaded.append(p)))
    with pytest.raises(ValueError, match=f"was built with model {embedder.model_id}"):
        embedder_for(Store(tmp_path / "idx"))
    assert loaded == []  # refused from the file's hash, before anything was loaded
    monkeypatch.undo()
    script = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(script, str(tmp_path / "model.pt"))
    with store.db:
        store.db.execute("UPDATE meta SET value = ? WHERE key = 'model_id'", (_hash(tmp_path / "model.pt"),))
    with pytest.raises(ValueError, match="TorchScript archive"):
        embedder_for(Store(tmp_path / "idx"), tmp_path / "model.pt")


def _hash(path):
    from polymodal.weights.files import sha256_of

    return sha256_of(path)[:16]
