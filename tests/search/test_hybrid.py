"""Words beside meaning: every item's text in FTS5 (text files, PDF text layers, OCR of pictures,
subtitles), hybrid ranking by reciprocal rank fusion, calibrated relevance and "no good match"."""

import sqlite3

import numpy as np
import pytest
from PIL import Image

from polymodal.search.hybrid import hybrid_search
from polymodal.search.ingest import index_folder
from polymodal.search.query import query_vector
from polymodal.search.relevance import Calibration
from polymodal.search.store import Store
from polymodal.search.texts import MAX_ITEM_CHARS, TextReader, likely_text
from polymodal.search.words import QueryError, fts_query, word_search
from polymodal.tasks import Embedder
from text_files import text_pdf, text_picture


@pytest.fixture(scope="module")
def embedder(model_dir):
    return Embedder.from_checkpoint(model_dir)


@pytest.fixture(scope="module")
def index(tmp_path_factory, model_dir, embedder, world_files):
    root = tmp_path_factory.mktemp("hybrid")
    folder = world_files(root / "files", 6)
    (folder / "notes").mkdir()
    (folder / "notes" / "shopping.txt").write_text("buy oat milk, lentils and invoice paper\n")
    (folder / "notes" / "long.txt").write_text("zebra " * (MAX_ITEM_CHARS // 3))
    text_picture(["INVOICE 4471", "Total due: 312.50 EUR"]).save(folder / "scan.png")
    text_pdf(folder / "manual.pdf", [["Chapter one: installing the pump"], ["Chapter two: the quarterly report"]])
    store = Store(root / "idx", embedder.dim, embedder.model_id, str(model_dir))
    report = index_folder(folder, embedder, store, 8)
    return store, folder, report


def test_plain_queries_become_or_of_content_words_and_syntax_passes_through():
    assert fts_query("the total on the March invoice?") == '"total" OR "march" OR "invoice"'
    assert fts_query('"invoice 4471"') == '"invoice 4471"'
    assert fts_query("inv*") == "inv*"
    assert fts_query("near and or") is not None and "NEAR" not in fts_query("near and or")
    assert fts_query("  ?! ") is None


def test_every_item_has_its_words(index):
    store, folder, report = index
    rows = dict(store.db.execute("SELECT items.path, texts.body FROM texts JOIN items ON items.id = texts.rowid"))
    sources = dict(store.db.execute("SELECT path, text_source FROM items"))
    assert "oat milk" in rows[str(folder / "notes" / "shopping.txt")]
    assert sources[str(folder / "notes" / "shopping.txt")] == "text"
    assert "4471" in rows[str(folder / "scan.png")] and sources[str(folder / "scan.png")] == "ocr"
    assert "pump" in rows[str(folder / "manual.pdf") + "#page=1"] and "pump" not in rows[str(folder / "manual.pdf") + "#page=2"]
    assert sources[str(folder / "manual.pdf") + "#page=2"] == "text-layer"
    long = rows[str(folder / "notes" / "long.txt")]
    assert len(long) == MAX_ITEM_CHARS  # capped, and the run says so
    assert any("long.txt" in p and "kept the first" in note for p, note in report.partial)
    # the world's rendered scenes hold no text: the cheap check kept OCR off them
    assert all(sources[p] is None for p in sources if p.endswith(".png") and "scan" not in p)


def test_words_find_what_a_scan_says_and_phrases_and_prefixes_work(index):
    store, folder, _ = index
    top = word_search(store.db, "invoice 4471", 5)
    assert store.item(top[0].item_id).path == str(folder / "scan.png")
    assert {"invoice", "4471"} <= set(top[0].matched)
    phrase = word_search(store.db, '"quarterly report"', 5)
    assert [store.item(h.item_id).path for h in phrase] == [str(folder / "manual.pdf") + "#page=2"]
    assert word_search(store.db, '"report quarterly"', 5) == []  # a phrase keeps its order
    assert [store.item(h.item_id).path for h in word_search(store.db, "lentil*", 5)] == [str(folder / "notes" / "shopping.txt")]
    # names are words too
    assert store.item(word_search(store.db, "shopping", 5)[0].item_id).path.endswith("shopping.txt")


@pytest.mark.parametrize("query", ['"unbalanced', "AND", "a NEAR(", "(((x"])
def test_malformed_fts_syntax_is_a_query_error_not_sql(index, query):
    store, _, _ = index
    with pytest.raises(QueryError, match="cannot parse the keyword query"):
        word_search(store.db, query, 5)
    assert store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0] > 0


def test_an_sql_looking_query_is_only_words(index):
    store, _, _ = index
    before = store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    assert word_search(store.db, "x'; DROP TABLE items; --", 5) == []  # plain words, none of them indexed
    with pytest.raises(QueryError):
        word_search(store.db, "x'); DROP TABLE items; --", 5)
    assert store.db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == before


def test_hybrid_fuses_both_rankings_and_says_why(index, embedder):
    store, folder, _ = index
    calibration = Calibration.current(store, lambda t: embedder.embed_texts(t).numpy())
    q = "invoice 4471"
    answer = hybrid_search(store, query_vector(embedder, q), q, k=60, calibration=calibration)
    by_path = {h.item.path: h for h in answer.hits}
    top = by_path[str(folder / "scan.png")]  # first by words; the random test model's meaning ranks it anywhere
    assert answer.hits.index(top) < 2 and top.ranks["words"] == 1
    assert "words: invoice, 4471" in top.why() and top.relevance == 1.0
    notes = by_path[str(folder / "notes" / "shopping.txt")]  # holds one of the two words
    assert notes.matched == ["invoice"] and notes.words_relevance == 0.5
    meaning = hybrid_search(store, query_vector(embedder, q), q, k=5, mode="meaning", calibration=calibration)
    assert all("words" not in h.ranks for h in meaning.hits)
    words = hybrid_search(store, query_vector(embedder, q), q, k=5, mode="words", calibration=calibration)
    assert [h.item.id for h in words.hits][0] == top.item.id and all(h.similarity is not None for h in words.hits)
    # fused scores are reciprocal ranks, each weighted by that ranking's evidence for the hit
    weights = {"meaning": (top.meaning_relevance or 1.0) ** 20, "words": top.words_relevance}
    assert top.score == pytest.approx(sum(weights[k] / (60 + r) for k, r in top.ranks.items()))
    assert top.words_relevance == 1.0 and notes.words_relevance == 0.5


def test_relevance_is_calibrated_and_min_relevance_answers_no_good_match(index, embedder):
    store, _, _ = index
    calibration = Calibration.current(store, lambda t: embedder.embed_texts(t).numpy())
    assert set(calibration.nulls) >= {"image", "audio", "text"}
    q = "a recipe for lentil soup"  # a background query: its best hit is typical of unrelated queries
    answer = hybrid_search(store, query_vector(embedder, q), None, k=3, mode="meaning", calibration=calibration)
    assert all(0.0 <= h.relevance <= 1.0 for h in answer.hits)
    none = hybrid_search(store, query_vector(embedder, q), None, k=3, mode="meaning", calibration=calibration,
                         min_relevance=1.01)
    assert none.no_match and none.hits == [] and none.best_relevance is not None
    # the saved calibration is reused until the index changes
    assert Calibration.load(store) is not None and Calibration.load(store).generation == store.generation()


def test_likely_text_tells_pages_from_scenes(world_files, tmp_path):
    assert likely_text(text_picture(["The quick brown fox", "jumps over the lazy dog"]))
    folder = world_files(tmp_path, 3)
    assert not any(likely_text(Image.open(p)) for p in sorted(folder.glob("*.png")))
    assert not likely_text(Image.new("RGB", (400, 300), "white"))


def test_ocr_off_reads_no_pictures(tmp_path, model_dir, embedder):
    folder = tmp_path / "f"
    folder.mkdir()
    text_picture(["INVOICE 4471"]).save(folder / "scan.png")
    store = Store(tmp_path / "idx", embedder.dim, embedder.model_id, str(model_dir))
    index_folder(folder, embedder, store, ocr="off")
    assert word_search(store.db, "4471", 5) == []
    assert [store.item(h.item_id).path for h in word_search(store.db, "scan", 5)] == [str(folder / "scan.png")]
    with pytest.raises(ValueError, match="--ocr must be one of"):
        TextReader("sometimes")


@pytest.mark.slow
def test_a_reindex_killed_mid_write_leaves_words_and_vectors_in_step(tmp_path, model_dir, embedder):
    """Texts rewritten, re-indexed, the indexer SIGKILLed between batches: every item's words and
    vector are both old or both new, and a rerun makes them all new."""
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "f"
    folder.mkdir()
    old = {f"note{i:02d}.txt": f"first draft number {i} about apples" for i in range(40)}
    new = {name: f"second version {i} about pears" for i, name in enumerate(old)}
    for name, text in old.items():
        (folder / name).write_text(text)
    cmd = [sys.executable, "-m", "polymodal.cli", "index", str(folder), "--model", str(model_dir),
           "--out", str(tmp_path / "idx"), "--batch", "2"]
    subprocess.run(cmd, check=True, capture_output=True)
    for name, text in new.items():
        (folder / name).write_text(text)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done, deadline = 0, time.time() + 120
    while time.time() < deadline and proc.poll() is None and done < 6:
        try:
            with sqlite3.connect(tmp_path / "idx" / "meta.sqlite") as db:
                done = db.execute("SELECT COUNT(*) FROM texts WHERE texts MATCH 'pears'").fetchone()[0]
        except sqlite3.OperationalError:
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the indexer finished before it could be killed; make the folder larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    expected = {name: (embedder.embed_texts([old[name]])[0].numpy(), embedder.embed_texts([new[name]])[0].numpy())
                for name in old}

    def states():
        with sqlite3.connect(tmp_path / "idx" / "meta.sqlite") as db:
            rows = db.execute("SELECT items.path, texts.body, items.vector FROM items JOIN texts ON texts.rowid = items.id")
            out = {}
            for path, body, vector in rows:
                name = path.rsplit("/", 1)[1]
                v = np.frombuffer(vector, np.float32)
                version = 0 if body.startswith("first") else 1
                assert body == (old, new)[version][name], path
                np.testing.assert_allclose(v, expected[name][version], atol=1e-5, err_msg=path)
                out[name] = version
            return out

    killed = states()
    assert len(killed) == 40 and 0 < sum(killed.values()) < 40  # some rewritten, some not: killed mid-run
    subprocess.run(cmd, check=True, capture_output=True)
    assert set(states().values()) == {1}


def test_huge_ocr_output_is_capped_per_item_and_weak_words_dropped():
    from polymodal.documents.page import Word

    class Flood:  # an engine reading a page of fine print: 60,000 words
        def read(self, image):
            words = [Word("smudge", (0, 0, 1, 1), 12.0)] + [Word(f"w{i}", (0, 0, 1, 1), 95.0) for i in range(60_000)]
            return words, {}

    got = TextReader("on", engine=Flood()).picture(Image.new("RGB", (64, 64), "white"), "page.png")
    assert len(got.text) == MAX_ITEM_CHARS and got.source == "ocr" and "kept the first" in got.note
    assert "smudge" not in got.text and got.text.startswith("w0 w1 ")
