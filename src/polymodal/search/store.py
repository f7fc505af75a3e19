"""An index folder: SQLite holds every item's metadata *and* its vector (the source of truth, one
transaction per batch), FAISS holds the same vectors for fast search.

Crash safety: a batch is either committed to SQLite or absent. ``vectors.faiss`` is replaced
atomically (temp file + rename) together with a stamp of the SQLite generation it was built from;
when the stamp does not match (a run was killed before writing it) the FAISS index is rebuilt
from SQLite on open, so nothing is lost and nothing duplicated.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..weights.loading import atomic_write

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
    vector BLOB
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
KINDS = ("flat", "hnsw")
# HNSW settings measured in benchmarks/search.py: recall@10 ≥ 0.997 at 1e4–1e6 clustered vectors.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64


class IndexError_(ValueError):
    """A problem with an index folder; the message names it."""


@dataclass
class Item:
    id: int
    path: str
    modality: str | None
    size: int
    mtime: float
    sha256: str
    error: str | None


class Store:
    """Open (or create) the index folder ``folder`` for vectors of width ``dim`` made by ``model_id``."""

    def __init__(self, folder: str | Path, dim: int | None = None, model_id: str | None = None,
                 model_path: str | None = None, kind: str = "flat", check_same_thread: bool = True):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise IndexError_(f"{self.folder} exists and is not an index folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.folder / "meta.sqlite", check_same_thread=check_same_thread)
        self.db.executescript(SCHEMA)
        meta = self.meta()
        if dim is None:
            if "dim" not in meta:
                raise IndexError_(f"{self.folder} is not an index (no meta.sqlite with a dimension); "
                                  "build one with `polymodal index`")
        else:
            if kind not in KINDS:
                raise IndexError_(f"unknown index kind {kind!r}; choose from {KINDS}")
            if "model_id" in meta and meta["model_id"] != model_id:
                raise IndexError_(f"{self.folder} was built with another model ({meta['model_id']} ≠ {model_id}); "
                                  "use a new index folder or the same model")
            with self.db:
                for k, v in {"dim": dim, "model_id": model_id, "model_path": model_path, "kind": kind}.items():
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(v)))
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        meta = self.meta()
        self.dim, self.kind = int(meta["dim"]), meta["kind"]
        self._faiss = None

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    # ------------------------------------------------------------------ items
    def known(self) -> dict[str, tuple[int, float, str]]:
        """path → (size, mtime, sha256) of every recorded file (indexed or failed)."""
        return {p: (s, m, h) for p, s, m, h in self.db.execute("SELECT path, size, mtime, sha256 FROM items")}

    def write(self, rows: list[dict], deleted: list[str] = ()) -> None:
        """Delete ``deleted`` paths, then upsert ``rows`` (path, modality, size, mtime, sha256, model_id,
        error, vector [E] or None), in one transaction."""
        with self.db:
            for p in deleted:
                self.db.execute("DELETE FROM items WHERE path = ?", (p,))
            for r in rows:
                vec = None if r.get("vector") is None else np.asarray(r["vector"], np.float32).tobytes()
                self.db.execute(
                    "INSERT INTO items (path, modality, size, mtime, sha256, model_id, error, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET modality=excluded.modality, "
                    "size=excluded.size, mtime=excluded.mtime, sha256=excluded.sha256, model_id=excluded.model_id, "
                    "error=excluded.error, vector=excluded.vector",
                    (r["path"], r.get("modality"), r["size"], r["mtime"], r["sha256"], r.get("model_id"),
                     r.get("error"), vec))
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self._faiss = None

    def touch(self, path: str, mtime: float) -> None:
        with self.db:
            self.db.execute("UPDATE items SET mtime = ? WHERE path = ?", (mtime, path))

    def item(self, item_id: int) -> Item | None:
        row = self.db.execute("SELECT id, path, modality, size, mtime, sha256, error FROM items WHERE id = ?",
                              (item_id,)).fetchone()
        return Item(*row) if row else None

    def vector(self, item_id: int) -> np.ndarray | None:
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
    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids [N] int64, vectors [N, E] float32) of every indexed item, in id order."""
        rows = self.db.execute("SELECT id, vector FROM items WHERE vector IS NOT NULL ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.dim)
        return ids, vecs

    def _build(self):
        import faiss

        ids, vecs = self.vectors()
        if self.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            base.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            base = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIDMap2(base)
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vecs), ids)
        return index

    def save_faiss(self) -> None:
        """Write ``vectors.faiss`` and its stamp atomically (the stamp last)."""
        import faiss

        index = self.faiss()
        atomic_write(self.folder / "vectors.faiss", lambda p: faiss.write_index(index, p))
        stamp = {"generation": int(self.meta()["generation"]), "count": int(index.ntotal)}
        atomic_write(self.folder / "vectors.json", lambda p: Path(p).write_text(json.dumps(stamp)))

    def faiss(self):
        """The FAISS index, read from disk when its stamp matches SQLite, else rebuilt from SQLite."""
        if self._faiss is None:
            import faiss

            stamp_file, index_file = self.folder / "vectors.json", self.folder / "vectors.faiss"
            stamp = json.loads(stamp_file.read_text()) if stamp_file.is_file() else {}
            if stamp.get("generation") == int(self.meta()["generation"]) and index_file.is_file():
                self._faiss = faiss.read_index(str(index_file))
            else:
                self._faiss = self._build()
        return self._faiss

    def search(self, query: np.ndarray, k: int = 10, modalities: set[str] | None = None) -> list[tuple[Item, float]]:
        """Nearest items to ``query`` [E] by inner product (cosine for normalised vectors)."""
        index = self.faiss()
        query = np.asarray(query, np.float32).reshape(1, -1)
        want = min(k, index.ntotal)
        while want > 0:  # with a filter, widen the candidate list until k items pass it (or none are left)
            scores, ids = index.search(query, want)
            out = []
            for i, s in zip(ids[0].tolist(), scores[0].tolist()):
                item = self.item(i) if i >= 0 else None
                if item is not None and (not modalities or item.modality in modalities):
                    out.append((item, s))
                    if len(out) == k:
                        return out
            if want == index.ntotal:
                return out
            want = min(4 * want, index.ntotal)
        return []

    def close(self) -> None:
        self.db.close()
