"""The words of an indexed item, for keyword search beside the vectors.

- a text file: its contents;
- a PDF page: its text layer, or (``ocr`` on or auto) the OCR of its rendering when it has none
  or one not worth trusting (:func:`~polymodal.documents.reader.implausible_text_layer`);
- a picture: its OCR, with ``ocr`` on, or with auto when a cheap look (:func:`likely_text`) finds
  rows of glyph-sized marks;
- a video: its subtitles, from sidecar ``NAME.srt`` / ``NAME.vtt`` / ``NAME.LANG.srt`` files and from
  the subtitle streams inside the container (both read with PyAV), the cues of a clip for a clip.

Every item also has its name: its path below the indexed folder. Each item keeps at most
:data:`MAX_ITEM_CHARS` characters of words; a file that holds more says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..modalities.text import read_utf8_prefix

MAX_ITEM_CHARS = 100_000  # words kept per item: a 400-page text dump must not fill the keyword index
MAX_SUBTITLE_BYTES = 8 * 2**20  # a feature film's subtitles are ~100 KB
MAX_CUES = 50_000
OCR_MODES = ("auto", "off", "on")
SUBTITLE_SUFFIXES = (".srt", ".vtt")
OCR_MIN_CONFIDENCE = 50  # OCR words below this (0–100) are noise on a photo, not words


class SubtitleError(ValueError):
    """A subtitle file or stream that cannot be read within the limits; the message names it."""


@dataclass
class ItemText:
    text: str
    source: str  # "text", "text-layer", "ocr", "subtitles", or "" when the item has no words
    note: str | None = None  # what a user should hear: words cut at the cap, OCR unavailable, ...


@dataclass
class Cue:
    start: float  # seconds
    end: float
    text: str


def capped(text: str, source: str, where: str) -> ItemText:
    """``text`` cut at :data:`MAX_ITEM_CHARS`, saying so."""
    if len(text) <= MAX_ITEM_CHARS:
        return ItemText(text, source)
    return ItemText(text[:MAX_ITEM_CHARS], source,
                    f"{where}: kept the first {MAX_ITEM_CHARS:,} of {len(text):,} characters of its words")


def text_file(path: Path) -> ItemText:
    """A text file's words (the first :data:`MAX_ITEM_CHARS` characters)."""
    text = read_utf8_prefix(path, 4 * MAX_ITEM_CHARS + 4)
    return capped(text, "text", str(path))


# ------------------------------------------------------------------------------------------- PDFs
def pdf_text_layers(path: Path, max_pages: int) -> list[tuple[str, str | None]]:
    """(text, why it is refused or None) of each of the first ``max_pages`` pages' text layers, read
    without rendering. A page with no text layer gives ("", None)."""
    import pypdfium2 as pdfium

    from ..documents.reader import implausible_text_layer

    out = []
    doc = pdfium.PdfDocument(str(path))
    try:
        for i in range(min(len(doc), max_pages)):
            page = doc[i]
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_bounded()[: 4 * MAX_ITEM_CHARS]
            finally:
                textpage.close()
                page.close()
            words = text.split()
            out.append((text, implausible_text_layer(words) if words else None))
    finally:
        doc.close()
    return out


# ----------------------------------------------------------------------------------------- images
def likely_text(image: Image.Image, max_side: int = 1200) -> bool:
    """Whether a picture seems to hold printed text: at least 12 glyph-sized ink marks, each with a
    neighbour of about its height on its line within 1.5 heights (what rows of letters look like, and
    shapes, faces and landscapes seldom do). Costs a few ms; decides whether OCR runs."""
    import cv2

    from ..documents.cleanup import grey

    page = grey(image)
    scale = max_side / max(page.shape)
    if scale < 1:
        page = cv2.resize(page, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if min(page.shape) < 16:
        return False
    marks = []
    for polarity in (cv2.THRESH_BINARY_INV, cv2.THRESH_BINARY):  # dark text on light, and light on dark
        _, ink = cv2.threshold(page, 0, 255, polarity + cv2.THRESH_OTSU)
        n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        x, y, w, h = (stats[1:, c].astype(np.float32) for c in (0, 1, 2, 3))
        glyph = (h >= 6) & (h <= 0.1 * page.shape[0]) & (w <= 3 * h) & (w >= 1)
        if glyph.sum() > 20_000:  # noise, not letters
            continue
        marks.append(_in_line(x[glyph], y[glyph], w[glyph], h[glyph]))
    return max(marks, default=0) >= 12


def _in_line(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray) -> int:
    """How many marks have a neighbour to their right of similar height on the same line."""
    if len(x) < 2:
        return 0
    order = np.lexsort((x, np.round((y + h / 2) / np.maximum(np.median(h), 1))))
    x, y, w, h = x[order], y[order], w[order], h[order]
    cy = y + h / 2
    gap = x[1:] - (x[:-1] + w[:-1])
    near = ((np.abs(cy[1:] - cy[:-1]) < 0.5 * h[:-1]) & (gap > -0.2 * h[:-1]) & (gap < 1.5 * h[:-1])
            & (h[1:] > 0.5 * h[:-1]) & (h[1:] < 2 * h[:-1]))
    return int(near.sum())


def ocr_words(engine, image: Image.Image, where: str) -> ItemText:
    """The confident OCR words of ``image``, in reading order."""
    words, _ = engine.read(image)
    return capped(" ".join(w.text for w in words if w.confidence >= OCR_MIN_CONFIDENCE), "ocr", where)


# ---------------------------------------------------------------------------------------- videos
def subtitle_owner(subtitles: Path) -> tuple[Path, str]:
    """(folder, stem) of the video a subtitle file would belong to: ``a.srt`` and ``a.en.srt`` → a.*"""
    stem = subtitles.stem
    return subtitles.parent, stem.rsplit(".", 1)[0] if "." in stem else stem


def read_cues(path: Path, embedded: bool = False) -> list[Cue]:
    """The cues of a subtitle file (``embedded``: of every subtitle stream of a video container), by
    PyAV. A file over :data:`MAX_SUBTITLE_BYTES`, over :data:`MAX_CUES` cues or not in UTF-8 raises
    :class:`SubtitleError` naming it."""
    import av

    if not embedded and path.stat().st_size > MAX_SUBTITLE_BYTES:
        raise SubtitleError(f"{path}: subtitles of {path.stat().st_size:,} bytes are over the "
                            f"{MAX_SUBTITLE_BYTES // 2**20} MiB limit")
    if not embedded:
        try:
            read_utf8_prefix(path, MAX_SUBTITLE_BYTES)
        except UnicodeDecodeError as e:
            raise SubtitleError(f"{path}: subtitles are not UTF-8 (byte {e.start}); convert them, "
                                "e.g. iconv -f cp1252 -t utf-8") from None
    cues: list[Cue] = []
    chars = 0
    try:
        with av.open(str(path)) as container:
            streams = container.streams.subtitles
            if not streams:
                return []
            for packet in container.demux(*streams):
                if packet.pts is None or packet.time_base is None:
                    continue
                start = float(packet.pts * packet.time_base)
                end = start + float((packet.duration or 0) * packet.time_base)
                for sub in packet.decode():
                    text = (getattr(sub, "dialogue", b"") or b"").decode("utf-8", "replace").strip()
                    if text:
                        cues.append(Cue(start, end, " ".join(text.split())))
                        chars += len(text)
                if len(cues) > MAX_CUES or chars > 4 * MAX_ITEM_CHARS:
                    raise SubtitleError(f"{path}: more than {MAX_CUES:,} cues or {4 * MAX_ITEM_CHARS:,} characters "
                                        "of subtitles")
    except SubtitleError:
        raise
    except Exception as e:  # av.error.* on a damaged file
        raise SubtitleError(f"{path}: unreadable subtitles ({e})") from e
    return cues


def video_cues(video: Path, sidecars: list[Path] = ()) -> tuple[list[Cue], list[str]]:
    """All cues of a video (its embedded streams, then its ``sidecars`` files), and the problems met
    reading them."""
    cues, problems = [], []
    for source, embedded in [(video, True)] + [(p, False) for p in sidecars]:
        try:
            cues += read_cues(source, embedded)
        except SubtitleError as e:
            problems.append(str(e))
    return cues, problems


def cues_between(cues: list[Cue], start: float | None = None, end: float | None = None) -> str:
    """The words of the cues that overlap [start, end) (all of them when no range is given)."""
    return " ".join(c.text for c in cues
                    if start is None or end is None or (c.end > start and c.start < end) or c.start == start)


class TextReader:
    """Reads items' words for one indexing run: ``ocr`` is ``auto``, ``off`` or ``on``; the OCR engine
    (Tesseract, confident words only) is made on first need, and a machine without it indexes
    without OCR, saying so once."""

    def __init__(self, ocr: str = "auto", engine=None):
        if ocr not in OCR_MODES:
            raise ValueError(f"--ocr must be one of {', '.join(OCR_MODES)}, not {ocr!r}")
        self.ocr = ocr
        self._engine = engine
        self.unavailable: str | None = None

    def engine(self):
        if self._engine is None and self.unavailable is None:
            from ..documents.ocr import OCRError, TesseractOCR

            try:
                self._engine = TesseractOCR(psm=3)
            except OCRError as e:
                self.unavailable = f"OCR is off: {e}"
        return self._engine

    def picture(self, image: Image.Image, where: str, scan: bool = False) -> ItemText:
        """A picture's words: OCR when ``ocr`` is on, or auto and it is a ``scan`` (a PDF page without
        text) or :func:`likely_text` says so."""
        if self.ocr == "off" or (self.ocr == "auto" and not scan and not likely_text(image)):
            return ItemText("", "")
        engine = self.engine()
        if engine is None:
            return ItemText("", "", None)
        return ocr_words(engine, image, where)

    def pdf(self, path: Path, max_pages: int) -> list[ItemText]:
        """Each page's words: its text layer, else its OCR at 150 dpi (A4's short side, 1,240 px)."""
        from ..modalities.pdf import pdf_page

        out = []
        for number, (text, refused) in enumerate(pdf_text_layers(path, max_pages), 1):
            if text.strip() and refused is None:
                out.append(capped(text, "text-layer", f"{path} page {number}"))
                continue
            if self.ocr == "off":
                out.append(ItemText("", "", f"{path} page {number}: {refused}; OCR is off" if refused else None))
                continue
            out.append(self.picture(pdf_page(path, number, short_side=1240), f"{path} page {number}", scan=True))
        return out
