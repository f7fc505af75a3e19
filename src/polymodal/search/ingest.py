"""Index a folder: new and changed files are embedded in batches, deleted ones dropped, unreadable
ones recorded with their error — each batch committed on its own, so a killed run resumes.

A PDF becomes one item per page, stored as ``FILE#page=N`` and embedded with the image tower. With
a VideoCLIP model, a video becomes one item per clip, ``FILE#t=START,END`` (seconds).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..modalities.pdf import MAX_PAGES as PDF_MAX_PAGES
from ..modalities.image import frame_count, image_pages
from ..modalities.pdf import page_count, pdf_pages
from ..tasks.embedder import Embedder
from ..tasks.video_search import CLIP
from ..weights.files import sha256_of
from .detect import detect
from .store import PAGE, Store


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    partial: list[tuple[str, str]] = field(default_factory=list)  # indexed in part (a PDF's first pages), and why

    def as_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged, "removed": self.removed,
                "failed": len(self.failed)}


def walk(folder: Path, skip: Path | None = None) -> list[Path]:
    """Every regular file below ``folder``, sorted; hidden entries, links and ``skip`` left out. Entry
    types come from the directory listing itself (``scandir``), so the walk costs no ``stat``."""
    out: list[Path] = []
    todo = [folder]
    while todo:
        current = todo.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:  # a folder removed or made unreadable while we walk
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if skip is None or Path(entry.path) != skip:
                    todo.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                out.append(Path(entry.path))
    return sorted(out)


def index_folder(folder: str | Path, embedder: Embedder, store: Store, batch: int = 32,
                 progress: Callable[[int, int], None] | None = None,
                 on_wait: Callable[[str], None] | None = None) -> IngestReport:
    """Bring ``store`` up to date with ``folder``; ``progress(done, total)`` after each batch.

    Holds the index's writer lock for the whole run (``on_wait`` hears who holds it when it is
    busy). Whatever one file does — vanish, refuse to open, claim a billion pixels — is recorded
    against that file and the run carries on.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    with store.writing(on_wait):
        store.set_root(folder)
        return _index(folder, embedder, store, batch, progress)


def _index(folder: Path, embedder: Embedder, store: Store, batch: int, progress) -> IngestReport:
    files = walk(folder, skip=store.folder.resolve())
    known = store.known()
    report = IngestReport()
    present = {str(p) for p in files}
    removed = [item for file, (*_, items) in known.items() if file not in present for item in items]
    if removed:
        store.write([], deleted=removed)
        report.removed = len(removed)
    todo: list[tuple[Path, os.stat_result, str]] = []
    for path in files:
        old = known.get(str(path))
        try:
            st = path.lstat()
        except OSError:  # deleted while we walked: it is simply not there
            continue
        if not stat.S_ISREG(st.st_mode):  # swapped for a link or a folder since the walk
            continue
        if old is not None and old[0] == st.st_size and old[1] == st.st_mtime:
            report.unchanged += 1
            continue
        try:
            digest = sha256_of(path)
        except FileNotFoundError:
            continue
        except OSError as e:  # unreadable: recorded, and retried when its size or mtime changes
            error = f"{path}: {e.strerror or e}"
            store.write([{"path": str(path), "size": st.st_size, "mtime": st.st_mtime, "sha256": "",
                          "model_id": embedder.model_id, "error": error}],
                        deleted=[i for i in (old[3] if old else []) if i != str(path)])
            report.failed.append((str(path), error))
            continue
        if old is not None and old[2] == digest:  # touched, not changed
            store.touch(str(path), st.st_mtime)
            report.unchanged += 1
            continue
        todo.append((path, st, digest))
        if old is not None:
            report.updated += 1
        else:
            report.added += 1
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        stale = [item for path, _, _ in chunk if str(path) in known for item in known[str(path)][3]]
        _ingest_batch(chunk, embedder, store, report, stale)
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    if not store.saved_is_current():  # an unchanged folder rewrites nothing
        store.save_faiss()
    return report


def _ingest_batch(chunk, embedder: Embedder, store: Store, report: IngestReport, stale: list[str]) -> None:
    rows, groups = [], {}
    for path, st, digest in chunk:
        row = {"path": str(path), "file": str(path), "size": st.st_size, "mtime": st.st_mtime, "sha256": digest,
               "model_id": embedder.model_id}
        try:
            row["modality"] = detect(path)
            if row["modality"] == "pdf":
                if "image" not in embedder.modalities:
                    raise ValueError(f"{path}: this model has no image encoder to embed PDF pages with")
                total = page_count(path)
                if total > PDF_MAX_PAGES:
                    report.partial.append((str(path), f"{path}: indexed the first {PDF_MAX_PAGES} of {total} pages"))
                for i, page in enumerate(pdf_pages(path, embedder.processor.image.size)):
                    page_row = {**row, "path": f"{path}{PAGE}{i + 1}", "page": i + 1}
                    groups.setdefault("pdf", []).append((page_row, embedder.transform(page)))
                    rows.append(page_row)
                continue
            if row["modality"] == "image" and (frames := frame_count(path)) > 1:  # a scanned TIFF: a page an item
                if frames > PDF_MAX_PAGES:
                    report.partial.append((str(path), f"{path}: indexed the first {PDF_MAX_PAGES} of {frames} pages"))
                for i, page in enumerate(image_pages(path, PDF_MAX_PAGES)):
                    page_row = {**row, "path": f"{path}{PAGE}{i + 1}", "page": i + 1}
                    groups.setdefault("image", []).append((page_row, embedder.transform(page)))
                    rows.append(page_row)
                continue
            if row["modality"] == "video" and embedder.video_clips is not None:  # one item per clip
                for start, end, vector in embedder.video_clips(path):
                    rows.append({**row, "path": f"{path}{CLIP}{start:g},{end:g}", "vector": vector.numpy()})
                continue
            groups.setdefault(row["modality"], []).append((row, embedder.load(path, row["modality"])))
        except Exception as e:  # any decoder's failure on this file (bombs included) is this file's error
            row["error"] = _message(path, e)
            report.failed.append((str(path), row["error"]))
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
                    row["error"] = _message(row["path"], e)
                    vectors.append(None)
        for (row, _), v in zip(items, vectors):
            if v is not None and not bool(v.isfinite().all()):
                row["error"], v = f"{row['path']}: the embedding is not finite (NaN or infinity in the input?)", None
            row["vector"] = None if v is None else v.numpy()
            if v is None:
                report.failed.append((row["path"], row["error"]))
    store.write(rows, deleted=stale)


def _message(path, e: Exception) -> str:
    """An error line that names the file once, whatever the exception says."""
    text = str(e) or type(e).__name__
    return text if str(path) in text else f"{path}: {text}"
