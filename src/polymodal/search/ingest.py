"""Index a folder: new and changed files are embedded in batches, deleted ones dropped, unreadable
ones recorded with their error — each batch committed on its own, so a killed run resumes.

A PDF becomes one item per page, stored as ``FILE#page=N`` and embedded with the image tower. With
a VideoCLIP model, a video becomes one item per clip, ``FILE#t=START,END`` (seconds); with an image
tower, a video of 10 s or more becomes one item per 5 s moment, ``FILE#t=START,END`` too.

Every item's words (:mod:`polymodal.search.texts`) are written with its vector, in the same SQLite
transaction. A video's sidecar subtitles (``NAME.srt``, ``NAME.vtt``) belong to the video: they are
not items of their own, and a change to them re-reads the video.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..modalities.image import frame_count, image_pages
from ..modalities.pdf import MAX_PAGES as PDF_MAX_PAGES
from ..modalities.pdf import page_count, pdf_pages
from ..modalities.video import VIDEO_EXTENSIONS, video_moments
from ..tasks.embedder import Embedder
from ..tasks.video_search import CLIP
from ..weights.files import sha256_of
from .detect import detect
from .relevance import Calibration
from .store import PAGE, Store
from .texts import (SUBTITLE_SUFFIXES, ItemText, TextReader, capped, cues_between, subtitle_owner, text_file,
                    video_cues)


MOMENT_SECONDS = 5.0  # a video at least twice this long is indexed as moments of this length (image towers)


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
                 on_wait: Callable[[str], None] | None = None, ocr: str | TextReader = "auto") -> IngestReport:
    """Bring ``store`` up to date with ``folder``; ``progress(done, total)`` after each batch.
    ``ocr`` (``auto``, ``off``, ``on``): which pictures and scanned pages are read with OCR for
    keyword search (:class:`~polymodal.search.texts.TextReader`).

    Holds the index's writer lock for the whole run (``on_wait`` hears who holds it when it is
    busy). Whatever one file does — vanish, refuse to open, claim a billion pixels — is recorded
    against that file and the run carries on.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    reader = ocr if isinstance(ocr, TextReader) else TextReader(ocr)
    with store.writing(on_wait):
        store.set_root(folder)
        return _index(folder, embedder, store, batch, progress, reader)


def sidecars_of(files: list[Path]) -> dict[Path, list[Path]]:
    """video → its sidecar subtitle files (``NAME.srt``, ``NAME.vtt``, ``NAME.LANG.srt`` beside
    ``NAME.mp4``), for the videos among ``files``, from the walk's own list (no directory read again)."""
    by_owner: dict[tuple[Path, str], list[Path]] = {}
    for p in files:
        if p.suffix.lower() in SUBTITLE_SUFFIXES:
            by_owner.setdefault(subtitle_owner(p), []).append(p)
            by_owner.setdefault((p.parent, p.stem), []).append(p)  # a.b.srt may belong to a video named a.b
    out = {}
    for p in files:
        if p.suffix.lower() in VIDEO_EXTENSIONS and (found := by_owner.get((p.parent, p.stem))):
            out[p] = sorted(set(found))
    return out


def signature(path: Path, sidecars: list[Path]) -> tuple[int, float]:
    """(size, mtime) of a file together with its sidecars: either changing means reading it again."""
    st = path.lstat()
    size, mtime = st.st_size, st.st_mtime
    for s in sidecars:
        try:
            sst = s.lstat()
        except OSError:
            continue
        size, mtime = size + sst.st_size, max(mtime, sst.st_mtime)
    return size, mtime


def _index(folder: Path, embedder: Embedder, store: Store, batch: int, progress, reader: TextReader) -> IngestReport:
    files = walk(folder, skip=store.folder.resolve())
    sidecars = sidecars_of(files)
    taken = {s for group in sidecars.values() for s in group}
    files = [p for p in files if p not in taken]
    known = store.known()
    reread = not store.texts_current()  # an index from before words were kept: read every file again
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
        size, mtime = signature(path, sidecars.get(path, []))
        if old is not None and old[0] == size and old[1] == mtime and not reread:
            report.unchanged += 1
            continue
        try:
            digest = combined_digest(path, sidecars.get(path, []))
        except FileNotFoundError:
            continue
        except OSError as e:  # unreadable: recorded, and retried when its size or mtime changes
            error = f"{path}: {e.strerror or e}"
            store.write([{"path": str(path), "size": size, "mtime": mtime, "sha256": "",
                          "model_id": embedder.model_id, "error": error}],
                        deleted=[i for i in (old[3] if old else []) if i != str(path)])
            report.failed.append((str(path), error))
            continue
        if old is not None and old[2] == digest and not reread:  # touched, not changed
            store.touch(str(path), mtime)
            report.unchanged += 1
            continue
        todo.append((path, (size, mtime), digest))
        if old is not None:
            report.updated += 1
        else:
            report.added += 1
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        stale = [item for path, _, _ in chunk if str(path) in known for item in known[str(path)][3]]
        _ingest_batch(chunk, embedder, store, report, stale, _Words(folder, reader, report), sidecars)
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    if reread:
        store.mark_texts_current()
    if reader.unavailable:
        report.partial.append(("", reader.unavailable))
    if not store.saved_is_current():  # an unchanged folder rewrites nothing
        store.save_faiss()
    if "text" in embedder.modalities and Calibration.load(store) is None:
        Calibration.build(store, lambda texts: embedder.embed_texts(texts).numpy()).save(store.folder)
    return report


def combined_digest(path: Path, sidecars: list[Path]) -> str:
    """The file's SHA-256, or with sidecars the SHA-256 of its and theirs."""
    digest = sha256_of(path)
    if not sidecars:
        return digest
    return hashlib.sha256("\n".join([digest] + [sha256_of(s) for s in sidecars]).encode()).hexdigest()


class _Words:
    """Fills a row's ``name``, ``text`` and ``text_source``; what goes wrong reading words is reported
    against the item, which is indexed all the same (its vector loses nothing to its words)."""

    def __init__(self, root: Path, reader: TextReader, report: IngestReport):
        self.root, self.reader, self.report = root, reader, report

    def name(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else path.name

    def fill(self, row: dict, read: Callable[[], ItemText]) -> None:
        row["name"] = self.name(Path(row["file"]))
        try:
            words = read()
        except Exception as e:  # noqa: BLE001 — any reader's failure is this item's note, not its loss
            words = ItemText("", "", _message(row["path"], e))
        row["text"], row["text_source"] = words.text, (words.source or None) if words.text.strip() else None
        if words.note:
            self.report.partial.append((row["path"], f"indexed without all its words: {words.note}"))

    def picture(self, path: Path) -> ItemText:
        from ..documents.reader import read_page_image

        if self.reader.ocr == "off":
            return ItemText("", "")
        return self.reader.picture(read_page_image(path), str(path))


def _ingest_batch(chunk, embedder: Embedder, store: Store, report: IngestReport, stale: list[str],
                  words: _Words, sidecars: dict[Path, list[Path]]) -> None:
    rows, groups = [], {}
    for path, (size, mtime), digest in chunk:
        row = {"path": str(path), "file": str(path), "size": size, "mtime": mtime, "sha256": digest,
               "model_id": embedder.model_id}
        try:
            row["modality"] = detect(path)
            if row["modality"] == "pdf":
                if "image" not in embedder.modalities:
                    raise ValueError(f"{path}: this model has no image encoder to embed PDF pages with")
                total = page_count(path)
                if total > PDF_MAX_PAGES:
                    report.partial.append((str(path), f"{path}: indexed the first {PDF_MAX_PAGES} of {total} pages"))
                try:
                    texts = words.reader.pdf(path, PDF_MAX_PAGES)
                except Exception as e:  # noqa: BLE001 — the pages are still embedded, without words
                    texts, note = [], _message(path, e)
                    report.partial.append((str(path), f"indexed without its words: {note}"))
                for i, page in enumerate(pdf_pages(path, embedder.processor.image.size)):
                    page_row = {**row, "path": f"{path}{PAGE}{i + 1}", "page": i + 1}
                    words.fill(page_row, lambda i=i: texts[i] if i < len(texts) else ItemText("", ""))
                    groups.setdefault("pdf", []).append((page_row, embedder.transform(page)))
                    rows.append(page_row)
                continue
            if row["modality"] == "image" and (frames := frame_count(path)) > 1:  # a scanned TIFF: a page an item
                if frames > PDF_MAX_PAGES:
                    report.partial.append((str(path), f"{path}: indexed the first {PDF_MAX_PAGES} of {frames} pages"))
                for i, page in enumerate(image_pages(path, PDF_MAX_PAGES)):
                    page_row = {**row, "path": f"{path}{PAGE}{i + 1}", "page": i + 1}
                    words.fill(page_row, lambda page=page, i=i: words.reader.picture(page, f"{path} page {i + 1}"))
                    groups.setdefault("image", []).append((page_row, embedder.transform(page)))
                    rows.append(page_row)
                continue
            if row["modality"] == "video":
                cues, problems = video_cues(path, sidecars.get(path, []))
                for problem in problems:
                    report.partial.append((str(path), f"indexed without these subtitles: {problem}"))
            if row["modality"] == "video" and embedder.video_clips is not None:  # one item per clip
                for start, end, vector in embedder.video_clips(path):
                    clip = {**row, "path": f"{path}{CLIP}{start:g},{end:g}", "vector": vector.numpy(),
                            "t_start": float(start), "t_end": float(end)}
                    words.fill(clip, lambda a=start, b=end: capped(cues_between(cues, a, b), "subtitles", str(path)))
                    rows.append(clip)
                continue
            if row["modality"] == "video" and (moments := _moments(embedder, path)):  # one item per moment
                for start, end, clip in moments:
                    moment = {**row, "path": f"{path}{CLIP}{round(start, 2):g},{round(end, 2):g}", "t_start": start, "t_end": end}
                    words.fill(moment, lambda a=start, b=end: capped(cues_between(cues, a, b), "subtitles", str(path)))
                    groups.setdefault("video", []).append((moment, clip))
                    rows.append(moment)
                continue
            groups.setdefault(row["modality"], []).append((row, embedder.load(path, row["modality"])))
            reading = {"text": lambda: text_file(path), "image": lambda: words.picture(path),
                       "video": lambda: capped(cues_between(cues), "subtitles", str(path))}.get(row["modality"])
            words.fill(row, reading or (lambda: ItemText("", "")))
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


def _moments(embedder: Embedder, path: Path):
    """A long video's moments for an image-tower model (:func:`~polymodal.modalities.video.video_moments`)."""
    if "video" not in embedder.modalities:
        return []
    p = embedder.processor
    return video_moments(path, p.image.transform(), p.video.frames_per_clip, MOMENT_SECONDS)


def _message(path, e: Exception) -> str:
    """An error line that names the file once, whatever the exception says."""
    text = str(e) or type(e).__name__
    return text if str(path) in text else f"{path}: {text}"
