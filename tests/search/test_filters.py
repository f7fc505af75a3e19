"""Filters by modality, folder, extension and date: the vector side (FAISS ID selectors, exact for
a few HNSW items) and the keyword side (SQL) keep exactly what brute force over the items keeps."""

import datetime as dt

import numpy as np
import pytest

from polymodal.search.filters import Filter, FilterError
from polymodal.search.hybrid import hybrid_search
from polymodal.search.store import Store

DAY = 86400.0
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp()


def _store(tmp_path, kind, n=600, dim=8):
    root = tmp_path / "root"
    rng = np.random.default_rng(0)
    store = Store(tmp_path / f"idx-{kind}", dim, "m", "none", kind)
    store.set_root(root)
    rows = []
    for i in range(n):
        folder = ["photos/2024", "photos/2023", "docs", ""][i % 4]
        ext = [".jpg", ".PNG", ".txt"][i % 3]
        file = str(root / folder / f"f{i}{ext}") if folder else str(root / f"f{i}{ext}")
        v = rng.standard_normal(dim).astype(np.float32)
        rows.append({"path": file, "file": file, "modality": ["image", "text"][i % 2], "size": 1,
                     "mtime": T0 + (i % 30) * DAY, "sha256": "x", "vector": v / np.linalg.norm(v),
                     "name": file.rsplit("/", 1)[1], "text": f"word{i % 5} common"})
    store.write(rows)
    return store, rows, rng


def _brute(rows, query, k, keep):
    scored = sorted(((float(r["vector"] @ query), r["path"]) for r in rows if keep(r)), reverse=True)
    return [p for _, p in scored[:k]]


CASES = {
    "folder": (dict(folder="photos"), lambda r: "/photos/" in r["file"]),
    "subfolder": (dict(folder="photos/2023"), lambda r: "/photos/2023/" in r["file"]),
    "ext": (dict(ext="png,JPG"), lambda r: r["file"].lower().endswith((".png", ".jpg"))),
    "dates": (dict(after="2024-01-05", before="2024-01-07"), lambda r: T0 + 4 * DAY <= r["mtime"] < T0 + 6 * DAY),
    "all": (dict(modality="image", folder="docs", ext="jpg", after="2024-01-02"),
            lambda r: r["modality"] == "image" and "/docs/" in r["file"] and r["file"].endswith(".jpg")
            and r["mtime"] >= T0 + DAY),
}


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_filtered_vector_search_equals_brute_force(tmp_path, kind, case):
    store, rows, rng = _store(tmp_path, kind)
    words, keep = CASES[case]
    where = Filter.parse(**words, root=store.root)
    for _ in range(5):
        q = rng.standard_normal(store.dim).astype(np.float32)
        got = [item.path for item, _ in store.search(q, 10, where=where)]
        assert got == _brute(rows, q, 10, keep)


def test_hnsw_with_a_large_selection_uses_the_graph_and_finds_the_true_neighbours(tmp_path, monkeypatch):
    import polymodal.search.store as store_module

    monkeypatch.setattr(store_module, "EXACT_BELOW", 10)  # force the graph path with its ID selector
    store, rows, rng = _store(tmp_path, "hnsw")
    where = Filter.parse(ext="jpg,png", root=store.root)
    q = rng.standard_normal(store.dim).astype(np.float32)
    got = [item.path for item, _ in store.search(q, 10, where=where)]
    assert got == _brute(rows, q, 10, CASES["ext"][1])


def test_words_are_filtered_too(tmp_path):
    store, rows, _ = _store(tmp_path, "flat")
    where = Filter.parse(folder="photos/2024", ext="jpg", root=store.root)
    answer = hybrid_search(store, None, "word3", 100, mode="words", where=where)
    expected = {r["path"] for r in rows if "/photos/2024/" in r["file"] and r["file"].endswith(".jpg")
                and r["text"].startswith("word3")}
    assert {h.item.path for h in answer.hits} == expected and expected


def test_bad_filters_name_what_is_wrong(tmp_path):
    root = tmp_path / "root"
    with pytest.raises(FilterError, match="is not a date"):
        Filter.parse(after="last tuesday", root=root)
    with pytest.raises(FilterError, match="leaves the indexed folder"):
        Filter.parse(folder="photos/../../etc", root=root)
    with pytest.raises(FilterError, match="is not inside the indexed folder"):
        Filter.parse(folder="/etc", root=root)
    with pytest.raises(FilterError, match="is not before"):
        Filter.parse(after="2024-02-01", before="2024-01-01", root=root)
    assert Filter.parse(folder=str(root / "photos"), root=root).folder == "photos"
