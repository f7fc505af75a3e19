"""An index folder: SQLite holds every item's metadata *and* its vector (the source of truth, one
transaction per batch), FAISS holds the same vectors for fast search, one index per modality (a
filtered query searches only its modalities' indexes).

Crash safety: a batch is either committed to SQLite or absent. The FAISS files are replaced
atomically (temp file + fsync + rename) and then a stamp naming the SQLite generation and the
vector counts they were built from. On open the stamp, the generation and the counts are checked
(read in one SQLite transaction); on any mismatch or an unreadable file the indexes are rebuilt
from SQLite, so nothing is lost and nothing duplicated. Writers take an exclusive lock on the
folder (:meth:`Store.writing`); readers never need it, and a reader notices a new generation on
its next search.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..fileio import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    modality TEXT,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT NOT NULL,
    model_id TEXT,
    error TEXT,
    vector BLOB,
    file TEXT,      -- the file an item comes from (a PDF page's PDF)
    page INTEGER,   -- a PDF page's number, 1-based; NULL otherwise
    t_start REAL,   -- a video moment's start and end (seconds); NULL otherwise
    t_end REAL,
    text_source TEXT  -- where the item's words came from (text, text-layer, ocr, subtitles, ...)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Words of every item (its name, and its text), bm25-ranked by SQLite's FTS5; rowid = items.id.
CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5(name, body, tokenize = "unicode61 remove_diacritics 2");
CREATE TRIGGER IF NOT EXISTS item_gone AFTER DELETE ON items BEGIN DELETE FROM texts WHERE rowid = old.id; END;
"""
# Columns added since the first index format, with what an older index gets for them.
ADDED_COLUMNS = {"file": "TEXT", "page": "INTEGER", "t_start": "REAL", "t_end": "REAL", "text_source": "TEXT"}
TEXT_VERSION = "1"  # bumped when what goes into ``texts`` changes: every file is read again
KINDS = ("flat", "hnsw")
# HNSW settings measured in benchmarks/search.py: recall@10 ≥ 0.997 at 1e4–1e6 clustered vectors.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64
EXACT_BELOW = 20_000  # a filter keeping fewer of an HNSW index's vectors is answered exactly


class StoreError(ValueError):
    """A problem with an index folder; the message names it."""


ITEM_COLUMNS = "id, path, modality, size, mtime, sha256, error, file, page, t_start, t_end, text_source"
PAGE = "#page="  # a PDF's (or multi-page TIFF's) page item is stored as FILE#page=N


@dataclass
class Item:
    id: int
    path: str
    modality: str | None
    size: int
    mtime: float
    sha256: str
    error: str | None
    file: str
    page: int | None
    t_start: float | None = None
    t_end: float | None = None
    text_source: str | None = None


class Store:
    """Open (or create) the index folder ``folder`` for vectors of width ``dim`` made by ``model_id``."""

    def __init__(self, folder: str | Path, dim: int | None = None, model_id: str | None = None,
                 model_path: str | None = None, kind: str = "flat", check_same_thread: bool = True):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise StoreError(f"{self.folder} exists and is not an index folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.folder / "meta.sqlite", check_same_thread=check_same_thread, timeout=60)
        self.db.executescript(SCHEMA)
        self._migrate()
        meta = self.meta()
        if dim is None:
            if "dim" not in meta:
                raise StoreError(f"{self.folder} is not an index (no meta.sqlite with a dimension); "
                                  "build one with `polymodal index`")
        else:
            if kind not in KINDS:
                raise StoreError(f"unknown index kind {kind!r}; choose from {KINDS}")
            if "model_id" in meta and meta["model_id"] != model_id:
                raise StoreError(f"{self.folder} was built with another model ({meta['model_id']} ≠ {model_id}); "
                                  "use a new index folder or the same model")
            with self.db:
                for k, v in {"dim": dim, "model_id": model_id, "model_path": model_path, "kind": kind}.items():
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(v)))
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
                # FTS5's own ranking: bm25 with a match in the name worth 3 in the body (ORDER BY rank)
                self.db.execute("INSERT INTO texts (texts, rank) VALUES ('rank', 'bm25(3.0, 1.0)')")
        meta = self.meta()
        self.dim, self.kind = int(meta["dim"]), meta["kind"]
        self._faiss: dict[str, object] | None = None
        self._faiss_generation = -1
        self._attrs, self._attrs_generation = None, -1

    def _migrate(self) -> None:
        """Indexes made before items had ``file``/``page`` (or moment and text) columns get them: file
        and page from the item paths; their words come with the next ``polymodal index``."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(items)")}
        missing = {c: t for c, t in ADDED_COLUMNS.items() if c not in columns}
        if not missing:
            return
        with self.db:
            for column, kind in missing.items():
                self.db.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")
            if "file" not in missing:
                return
            for item_id, path, modality in self.db.execute("SELECT id, path, modality FROM items").fetchall():
                file, page = path, None
                if modality in ("pdf", "image") and PAGE in path:
                    file, number = path.rsplit(PAGE, 1)
                    page = int(number) if number.isdigit() else None
                self.db.execute("UPDATE items SET file = ?, page = ? WHERE id = ?", (file, page, item_id))

    def texts_current(self) -> bool:
        """Whether every item's words were read by this version's text extraction."""
        return self.meta().get("text_version") == TEXT_VERSION

    def mark_texts_current(self) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('text_version', ?)", (TEXT_VERSION,))

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    @property
    def root(self) -> Path | None:
        """The folder this index holds (recorded by the first ``polymodal index``)."""
        root = self.meta().get("root")
        return Path(root) if root else None

    def set_root(self, folder: Path) -> None:
        """Record the indexed folder; an index holds one folder, so another one is refused."""
        folder = Path(folder).resolve()
        if self.root is not None and self.root != folder:
            raise StoreError(f"{self.folder} holds the folder {self.root}, not {folder}; use another index folder")
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", (str(folder),))

    @contextmanager
    def writing(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the folder's exclusive writer lock (``flock`` on ``lock``, released by the kernel if the
        process dies). When another process holds it, ``on_wait`` is told who, and we wait."""
        with open(self.folder / "lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                if on_wait is not None:
                    on_wait(f"{self.folder} is being written by {f.read().strip() or 'another process'}; waiting")
                fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            f.flush()
            try:
                yield
            finally:
                f.truncate(0)
                fcntl.flock(f, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ items
    def known(self) -> dict[str, tuple[int, float, str, list[str]]]:
        """file → (size, mtime, sha256, its item paths) of every recorded file (indexed or failed)."""
        out: dict[str, tuple[int, float, str, list[str]]] = {}
        for path, file, size, mtime, digest in self.db.execute(
                "SELECT path, file, size, mtime, sha256 FROM items ORDER BY id"):
            out.setdefault(file, (size, mtime, digest, []))[3].append(path)
        return out

    def write(self, rows: list[dict], deleted: list[str] = ()) -> None:
        """Delete ``deleted`` item paths, then upsert ``rows`` (path, file, page, modality, size, mtime,
        sha256, model_id, error, vector [E] or None, and optionally t_start, t_end, name, text,
        text_source), vectors and words in one transaction: both indexes change together or not at all."""
        with self.db:
            for p in deleted:
                self.db.execute("DELETE FROM items WHERE path = ?", (p,))
            for r in rows:
                vec = None if r.get("vector") is None else np.asarray(r["vector"], np.float32).tobytes()
                (item_id,) = self.db.execute(
                    "INSERT INTO items (path, modality, size, mtime, sha256, model_id, error, vector, file, page, "
                    "t_start, t_end, text_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(path) DO UPDATE SET "
                    "modality=excluded.modality, size=excluded.size, mtime=excluded.mtime, sha256=excluded.sha256, "
                    "model_id=excluded.model_id, error=excluded.error, vector=excluded.vector, file=excluded.file, "
                    "page=excluded.page, t_start=excluded.t_start, t_end=excluded.t_end, "
                    "text_source=excluded.text_source RETURNING id",
                    (r["path"], r.get("modality"), r["size"], r["mtime"], r["sha256"], r.get("model_id"),
                     r.get("error"), vec, r.get("file", r["path"]), r.get("page"), r.get("t_start"), r.get("t_end"),
                     r.get("text_source"))).fetchone()
                self.db.execute("DELETE FROM texts WHERE rowid = ?", (item_id,))
                if r.get("error") is None and (r.get("name") or r.get("text")):
                    self.db.execute("INSERT INTO texts (rowid, name, body) VALUES (?, ?, ?)",
                                    (item_id, r.get("name") or "", r.get("text") or ""))
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self._faiss = None

    def touch(self, file: str, mtime: float) -> None:
        """A file whose content did not change got a new mtime: record it on all its items."""
        with self.db:
            self.db.execute("UPDATE items SET mtime = ? WHERE file = ?", (mtime, file))

    def item(self, item_id: int) -> Item | None:
        if not 0 < item_id < 2**63:
            return None
        row = self.db.execute(f"SELECT {ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()
        return Item(*row) if row else None

    def vector(self, item_id: int) -> np.ndarray | None:
        if not 0 < item_id < 2**63:
            return None
        row = self.db.execute("SELECT vector FROM items WHERE id = ?", (item_id,)).fetchone()
        return None if row is None or row[0] is None else np.frombuffer(row[0], np.float32)

    def counts(self) -> dict:
        rows = self.db.execute("SELECT modality, error IS NOT NULL, COUNT(*) FROM items GROUP BY 1, 2").fetchall()
        out: dict = {"indexed": {}, "failed": 0}
        for modality, failed, n in rows:
            if failed:
                out["failed"] += n
            else:
                out["indexed"][modality] = n
        return out

    def failures(self) -> list[tuple[str, str]]:
        return list(self.db.execute("SELECT path, error FROM items WHERE error IS NOT NULL ORDER BY path"))

    # ------------------------------------------------------------------ vectors
    def vectors(self, modality: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids [N] int64, vectors [N, E] float32) of every indexed item (of ``modality``), in id order."""
        where = "vector IS NOT NULL" + (" AND modality = ?" if modality else "")
        rows = self.db.execute(f"SELECT id, vector FROM items WHERE {where} ORDER BY id",
                               (modality,) if modality else ()).fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.dim)
        return ids, vecs

    def _snapshot(self, with_vectors: bool):
        """(generation, {modality: count} or {modality: (ids, vectors)}), read in one transaction so
        that a writer committing meanwhile cannot make them disagree."""
        self.db.execute("BEGIN")
        try:
            generation = self.generation()
            counts = dict(self.db.execute(
                "SELECT modality, COUNT(*) FROM items WHERE vector IS NOT NULL GROUP BY modality"))
            if not with_vectors:
                return generation, counts
            return generation, {m: self.vectors(m) for m in counts}
        finally:
            self.db.execute("COMMIT")

    def _new_index(self):
        import faiss

        if self.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            base.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            base = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(base)

    def _build(self) -> tuple[int, dict]:
        generation, data = self._snapshot(with_vectors=True)
        indexes = {}
        for modality, (ids, vecs) in data.items():
            indexes[modality] = self._new_index()
            indexes[modality].add_with_ids(np.ascontiguousarray(vecs), ids)
        return generation, indexes

    def _current_stamp(self) -> tuple[int, dict] | None:
        """(generation, counts) when the stamp on disk names the current ones, else None."""
        try:
            stamp = json.loads((self.folder / "vectors.json").read_text())
        except (OSError, ValueError):
            return None
        generation, counts = self._snapshot(with_vectors=False)
        current = isinstance(stamp, dict) and stamp.get("generation") == generation and stamp.get("counts") == counts
        return (generation, counts) if current else None

    def saved_is_current(self) -> bool:
        """Whether the stamp on disk names the current generation and counts (files not opened)."""
        return self._current_stamp() is not None

    def _read_saved(self) -> tuple[int, dict] | None:
        """The saved indexes when their stamp names the current generation and every file holds the
        counted vectors; None otherwise (missing, stale, truncated or corrupt files)."""
        import faiss

        stamp = self._current_stamp()
        if stamp is None:
            return None
        generation, counts = stamp
        try:
            indexes = {m: faiss.read_index(str(self.folder / f"vectors.{m}.faiss")) for m in counts}
        except (RuntimeError, OSError):  # faiss raises RuntimeError for unreadable files
            return None
        if any(indexes[m].ntotal != n or indexes[m].d != self.dim for m, n in counts.items()):
            return None
        return generation, indexes

    def save_faiss(self) -> None:
        """Write one ``vectors.<modality>.faiss`` per modality, then the stamp naming the generation
        they were built from (atomically, stamp last)."""
        import faiss

        indexes = self.faiss()
        for modality, index in indexes.items():
            atomic_write(self.folder / f"vectors.{modality}.faiss", lambda p, i=index: faiss.write_index(i, p))
        stamp = {"generation": self._faiss_generation, "counts": {m: int(i.ntotal) for m, i in indexes.items()}}
        atomic_write(self.folder / "vectors.json", lambda p: Path(p).write_text(json.dumps(stamp)))

    def faiss(self) -> dict:
        """{modality: FAISS index}, read from disk when its stamp matches SQLite, else rebuilt from
        SQLite; reloaded when another process has committed a new generation since."""
        if self._faiss is None or self.generation() != self._faiss_generation:
            self._faiss_generation, self._faiss = self._read_saved() or self._build()
        return self._faiss

    def ntotal(self) -> int:
        """Vectors in the FAISS indexes (all modalities)."""
        return sum(int(index.ntotal) for index in self.faiss().values())

    def attributes(self):
        """Folder, extension and mtime per item id (:class:`~polymodal.search.filters.Attributes`), read
        once per generation."""
        from .filters import Attributes

        generation = self.generation()
        if self._attrs_generation != generation:
            self._attrs, self._attrs_generation = Attributes.read(self.db, self.root), generation
        return self._attrs

    def search(self, query: np.ndarray, k: int = 10, modalities: set[str] | None = None,
               where=None) -> list[tuple[Item, float]]:
        """(item, score) of :meth:`search_ids`."""
        out = []
        for item_id, score in self.search_ids(query, k, modalities, where):
            item = self.item(item_id)
            if item is not None:
                out.append((item, score))
        return out

    def search_ids(self, query: np.ndarray, k: int = 10, modalities: set[str] | None = None,
                   where=None) -> list[tuple[int, float]]:
        """Nearest items to ``query`` [E] by inner product (cosine for normalised vectors), searching
        only the indexes of ``modalities`` (or ``where.modalities``) when given; ``where`` (a
        :class:`~polymodal.search.filters.Filter`) also keeps only items of a folder, extension or date
        range, as a FAISS ID selector over the same scan."""
        import faiss

        indexes = self.faiss()
        query = np.asarray(query, np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise StoreError(f"a query of width {query.shape[1]} for an index of width {self.dim}")
        if where is not None and where.modalities:
            modalities = set(where.modalities) & set(modalities) if modalities else set(where.modalities)
        keep = params = None
        if where is not None and where.narrows_files:
            keep = self.attributes().mask(where)
            bitmap = np.packbits(keep, bitorder="little")  # referenced below while FAISS reads it
            selector = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bitmap))
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, 4 * k))
                      if self.kind == "hnsw" else faiss.SearchParameters(sel=selector))
        hits: list[tuple[float, int]] = []
        for modality, index in indexes.items():
            if (modalities and modality not in modalities) or index.ntotal == 0:
                continue
            if keep is not None and self.kind == "hnsw":
                exact = self._exact_among(index, query, k, keep)
                if exact is not None:
                    hits += exact
                    continue
            scores, ids = index.search(query, min(k, index.ntotal), params=params)
            hits += [(s, i) for s, i in zip(scores[0].tolist(), ids[0].tolist()) if i >= 0]
        hits.sort(key=lambda h: -h[0])
        return [(item_id, score) for score, item_id in hits[:k]]

    def _exact_among(self, index, query: np.ndarray, k: int, keep: np.ndarray) -> list[tuple[float, int]] | None:
        """When a filter keeps few of an HNSW index's vectors (≤ :data:`EXACT_BELOW`), the graph walk
        would find too few of them: exact (score, id) over just those. None: use the graph."""
        import faiss

        ids = faiss.vector_to_array(index.id_map)
        positions = np.flatnonzero(keep[np.minimum(ids, len(keep) - 1)] & (ids < len(keep)))
        if len(positions) > EXACT_BELOW:
            return None
        if len(positions) == 0:
            return []
        storage = faiss.downcast_index(faiss.downcast_index(index.index).storage)
        vectors = faiss.rev_swig_ptr(storage.get_xb(), index.ntotal * self.dim).reshape(index.ntotal, self.dim)
        scores = vectors[positions] @ query[0]
        top = np.argsort(-scores)[:k]
        return [(float(scores[t]), int(ids[positions[t]])) for t in top]

    def close(self) -> None:
        self.db.close()
