"""Index a folder: new and changed files are embedded in batches, deleted ones dropped, unreadable
ones recorded with their error — each batch committed on its own, so a killed run resumes.

A PDF becomes one item per page, stored as ``FILE#page=N`` and embedded with the image tower.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..modalities.pdf import pdf_pages
from .detect import UnsupportedFile, detect
from ..tasks.embedder import Embedder
from ..weights.files import sha256_of
from .store import Store


PAGE = "#page="


def file_of(item_path: str) -> str:
    """The file an item comes from (a PDF page item ``FILE#page=N`` → ``FILE``)."""
    return item_path.split(PAGE, 1)[0]


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged, "removed": self.removed,
                "failed": len(self.failed)}


def walk(folder: Path, skip: Path | None = None) -> list[Path]:
    """Every regular file below ``folder`` (sorted; hidden files and ``skip`` left out)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or Path(root, d) != skip))
        out += [Path(root, f) for f in sorted(files) if not f.startswith(".")]
    return [p for p in out if p.is_file() and not p.is_symlink()]


def index_folder(folder: str | Path, embedder: Embedder, store: Store, batch: int = 32,
                 progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Bring ``store`` up to date with ``folder``; ``progress(done, total)`` after each batch."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    files = walk(folder, skip=store.folder.resolve())
    known = store.known()
    by_file: dict[str, list[str]] = {}
    for item_path in known:
        by_file.setdefault(file_of(item_path), []).append(item_path)
    report = IngestReport()
    present = {str(p) for p in files}
    removed = [p for p in known if file_of(p) not in present and Path(file_of(p)).is_relative_to(folder)]
    if removed:
        store.write([], deleted=removed)
        report.removed = len(removed)
    todo: list[tuple[Path, os.stat_result, str]] = []
    for path in files:
        st = path.stat()
        items = by_file.get(str(path), [])
        old = known[items[0]] if items else None
        if old is not None and old[0] == st.st_size and old[1] == st.st_mtime:
            report.unchanged += 1
            continue
        digest = sha256_of(path)
        if old is not None and old[2] == digest:  # touched, not changed
            for item_path in items:
                store.touch(item_path, st.st_mtime)
            report.unchanged += 1
            continue
        todo.append((path, st, digest))
        if old is not None:
            report.updated += 1
        else:
            report.added += 1
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        stale = [item for path, _, _ in chunk for item in by_file.get(str(path), [])]  # e.g. a PDF's old pages
        _ingest_batch(chunk, embedder, store, report, stale)
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    store.save_faiss()
    return report


def _ingest_batch(chunk, embedder: Embedder, store: Store, report: IngestReport, stale: list[str]) -> None:
    rows, groups = [], {}
    for path, st, digest in chunk:
        row = {"path": str(path), "size": st.st_size, "mtime": st.st_mtime, "sha256": digest,
               "model_id": embedder.model_id}
        try:
            row["modality"] = detect(path)
            if row["modality"] == "pdf":
                for i, page in enumerate(pdf_pages(path, embedder.processor.image.size)):
                    page_row = {**row, "path": f"{path}{PAGE}{i + 1}"}
                    groups.setdefault("pdf", []).append((page_row, embedder.transform(page)))
                    rows.append(page_row)
                continue
            groups.setdefault(row["modality"], []).append((row, embedder.load(path, row["modality"])))
        except (UnsupportedFile, ValueError, OSError, RuntimeError) as e:
            row["error"] = str(e)
            report.failed.append((str(path), str(e)))
        rows.append(row)
    for modality, items in groups.items():
        try:
            vectors = list(embedder.embed(modality, [x for _, x in items]))
        except (ValueError, RuntimeError):  # one odd input: embed one by one to find and record it
            vectors = []
            for row, x in items:
                try:
                    vectors.append(embedder.embed(modality, [x])[0])
                except (ValueError, RuntimeError) as e:
                    row["error"] = f"{row['path']}: {e}"
                    report.failed.append((row["path"], str(e)))
                    vectors.append(None)
        for (row, _), v in zip(items, vectors):
            row["vector"] = None if v is None else v.numpy()
    store.write(rows, deleted=stale)
