"""From a file to pages of words: images (PNG, JPEG, multi-page TIFF) through Pillow, PDFs through
pypdfium2 — the words of a page's text layer when it has one, else the rendered page through OCR.

Hostile files are bounded before anything is decoded: a page's pixel count is read from the image
header or computed from the PDF page size and the rendering scale, and refused above ``max_pixels``,
the document's in total above ``max_total_pixels``; at most ``max_pages`` pages are read, and they are
streamed (decode → read → hand on) so that memory holds a few pages, not the document. Every error is a :class:`DocumentReadError` naming the file
(and the page); a page with no text is an empty page, not an error.
"""

from __future__ import annotations

import re
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageSequence, UnidentifiedImageError

from ..modalities.image import to_rgb
from .ocr import OCREngine, OCRError, ocr_engine
from .page import Page, Word

MAX_PAGE_PIXELS = 40_000_000  # an A4 page at 600 dpi is 35 M
MAX_PAGES = 200
# A document read page by page may hold 200 A4 pages at 300 dpi (8.7 M each); one whose page images are
# all kept at once (LayoutLM reads them) at most what fits in ≈ 1 GiB of RGB.
MAX_DOCUMENT_PIXELS = 2_000_000_000
MAX_KEPT_PIXELS = 350_000_000


class DocumentReadError(ValueError):
    """A document could not be read; the message names the file and, where it applies, the page."""


def iter_document(path: str | Path, *, ocr: OCREngine | None = None, dpi: float = 150, max_pages: int = MAX_PAGES,
                  max_pixels: int = MAX_PAGE_PIXELS, text_layer: bool = True,
                  max_total_pixels: int = MAX_DOCUMENT_PIXELS, only: int | None = None) -> Iterator[Page]:
    """The pages of an image or PDF file, each with its image and words, one at a time: a page is
    decoded, read (its text layer, or OCR with a look-ahead of the engine's ``page_workers`` pages)
    and handed on before the pages after that window are decoded, so memory holds a few pages,
    never the document. Pages past ``max_total_pixels`` in all are refused, naming the page.

    Args:
        ocr: the engine for pages without a text layer (default: Tesseract, created on first need).
        dpi: PDF rendering resolution (pixels per inch).
        text_layer: use a PDF page's own text when it has some (False: always OCR the rendering).
        only: read this page alone (1-based), e.g. the page a search found; past the last page is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DocumentReadError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(5)
    if not head:
        raise DocumentReadError(f"{path}: the file is empty")
    engine = _LazyEngine(ocr)
    budget = _PixelBudget(path, max_pixels, max_total_pixels)
    if head.startswith(b"%PDF") or path.suffix.lower() == ".pdf":
        decoded = _pdf_pages(path, dpi, max_pages, budget, text_layer, only)
    else:
        decoded = _image_pages(path, max_pages, budget, only)
    try:
        yield from engine.stream(decoded)
    except OCRError as e:  # the engine's message knows the page's pixels, not the file
        raise e if str(path) in str(e) else OCRError(f"{path}: {e}") from None


def read_document(path: str | Path, *, ocr: OCREngine | None = None, dpi: float = 150, max_pages: int = MAX_PAGES,
                  max_pixels: int = MAX_PAGE_PIXELS, text_layer: bool = True, keep_images: bool = True) -> list[Page]:
    """Every page of :func:`iter_document`. With ``keep_images`` the pages keep their images, and
    the document may hold at most :data:`MAX_KEPT_PIXELS` in all (≈ 1 GiB of RGB); without, each
    image is dropped once its words are read and the document may be as long as the page limits allow."""
    pages = []
    for page in iter_document(path, ocr=ocr, dpi=dpi, max_pages=max_pages, max_pixels=max_pixels,
                              text_layer=text_layer,
                              max_total_pixels=MAX_KEPT_PIXELS if keep_images else MAX_DOCUMENT_PIXELS):
        if not keep_images:
            page.image = None
        pages.append(page)
    return pages


class _PixelBudget:
    """A document's pixels, checked per page and in total before each page is decoded."""

    def __init__(self, path: Path, per_page: int, total: int):
        self.path, self.per_page, self.total, self.used = path, per_page, total, 0

    def take(self, number: int, w: int, h: int, dpi: float | None = None) -> None:
        """Count page ``number`` of ``w`` × ``h`` pixels (a PDF's at ``dpi``), or refuse it by name."""
        size = f"would render at {w}×{h} pixels ({dpi:g} dpi)" if dpi else f"is {w}×{h} pixels"
        if w * h > self.per_page:
            raise DocumentReadError(f"{self.path}: page {number} {size}, over the {self.per_page / 1e6:g} M pixel "
                                    f"limit" + ("; lower dpi" if dpi else ""))
        self.used += w * h
        if self.used > self.total:
            raise DocumentReadError(f"{self.path}: page {number} takes the document past {self.total / 1e6:g} M "
                                    "pixels in all; " + ("lower dpi or " if dpi else "") + "read fewer pages")


class _LazyEngine:
    """Creates the default engine only when a page needs OCR (a PDF with text needs none)."""

    def __init__(self, engine: OCREngine | None):
        self.engine = engine

    def __call__(self, image: Image.Image) -> tuple[list[Word], str, dict]:
        if self.engine is None:
            self.engine = ocr_engine("tesseract")
        words, report = self.engine.read(image)
        return words, f"ocr:{self.engine.name}", report

    def stream(self, pages: Iterator[Page]) -> Iterator[Page]:
        """``pages`` in order, each whose ``words`` is None read by OCR first; up to the engine's
        ``page_workers`` pages are read side by side (the look-ahead), no more are decoded meanwhile."""
        pending: deque = deque()
        pool = None
        try:
            for page in pages:
                if page.words is not None and not pending:
                    yield page
                    continue
                if page.words is None:
                    if self.engine is None:
                        self.engine = ocr_engine("tesseract")
                    workers = getattr(self.engine, "page_workers", 1)
                    if workers > 1 and pool is None:
                        pool = ThreadPoolExecutor(workers)
                    pending.append((page, pool.submit(self, page.image) if pool is not None else None))
                else:
                    pending.append((page, None))
                limit = getattr(self.engine, "page_workers", 1) if self.engine is not None else 1
                while len(pending) >= limit:
                    yield self._done(*pending.popleft())
            while pending:
                yield self._done(*pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _done(self, page: Page, future) -> Page:
        if page.words is None:
            page.words, page.source, report = future.result() if future is not None else self(page.image)
            page.ocr = {**(page.ocr or {}), **report} or None
        return page


def _image_pages(path: Path, max_pages: int, budget: _PixelBudget, only: int | None = None) -> Iterator[Page]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies per page
            img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise DocumentReadError(f"{path}: page is over the {budget.per_page / 1e6:g} M pixel limit ({e})") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DocumentReadError(f"{path}: not a readable image or PDF ({e})") from e
    with img:
        for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
            if number > max_pages:
                warnings.warn(f"{path}: read the first {max_pages} pages only", stacklevel=3)
                break
            if only is not None and number != only:
                continue
            budget.take(number, *frame.size)
            try:
                frame.load()
                page = to_rgb(frame)
            except (OSError, ValueError, SyntaxError) as e:
                raise DocumentReadError(f"{path}: cannot decode page {number} ({e})") from e
            yield Page(number, page.width, page.height, None, "ocr", page)
        if only is not None and number < only:
            raise DocumentReadError(f"{path}: no page {only} (the file has {number})")


def page_count(path: str | Path) -> int:
    """How many pages a PDF or (multi-page) image file holds, from its structure, nothing rendered."""
    path = Path(path)
    with open(path, "rb") as f:
        pdf = f.read(5).startswith(b"%PDF")
    if pdf or path.suffix.lower() == ".pdf":
        doc = _open_pdf(path)
        try:
            return len(doc)
        except Exception as e:  # noqa: BLE001 — pdfium on a damaged page tree
            raise DocumentReadError(f"{path}: not a readable PDF: its page tree is damaged ({e})") from e
        finally:
            doc.close()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return getattr(img, "n_frames", 1)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise DocumentReadError(f"{path}: not a readable image or PDF ({e})") from e


def read_page_image(path: str | Path, max_pixels: int = MAX_PAGE_PIXELS) -> Image.Image:
    """The first page of an image or PDF file as RGB, without OCR (a labelled page's own image)."""
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        doc = _open_pdf(path)
        try:
            return doc[0].render(scale=150 / 72).to_pil().convert("RGB")
        finally:
            doc.close()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > max_pixels:
                    raise DocumentReadError(f"{path}: page 1 is {img.width}×{img.height} pixels, over the "
                                            f"{max_pixels / 1e6:g} M pixel limit")
                img.load()
                return to_rgb(img)
    except DocumentReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DocumentReadError(f"{path}: not a readable image ({e})") from e


def _open_pdf(path: Path):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        # pdfium's last-error code is process-wide and can be stale, so encryption is read off the
        # file itself: an encrypted PDF names its /Encrypt dictionary in the trailer.
        if _has_marker(path, b"/Encrypt"):
            raise DocumentReadError(f"{path}: the PDF is encrypted (password-protected); decrypt it first") from e
        raise DocumentReadError(f"{path}: not a readable PDF: it has no pages or is damaged") from e


def _has_marker(path: Path, marker: bytes, chunk: int = 1 << 20) -> bool:
    """Whether ``marker`` occurs in the file (read in chunks; constant memory)."""
    tail = b""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            if marker in tail + block:
                return True
            tail = block[-len(marker):]
    return False


def _pdf_pages(path: Path, dpi: float, max_pages: int, budget: _PixelBudget, text_layer: bool,
               only: int | None = None) -> Iterator[Page]:
    doc = _open_pdf(path)
    try:
        try:
            count = len(doc)
        except Exception as e:  # noqa: BLE001 — pdfium on a damaged page tree
            raise DocumentReadError(f"{path}: not a readable PDF: its page tree is damaged ({e})") from e
        if count == 0:
            raise DocumentReadError(f"{path}: the PDF has no pages")
        if count > max_pages:
            warnings.warn(f"{path}: read the first {max_pages} of {count} pages only", stacklevel=3)
        scale = dpi / 72.0
        if only is not None and not 1 <= only <= count:
            raise DocumentReadError(f"{path}: no page {only} (the PDF has {count})")
        for i in range(min(count, max_pages)) if only is None else [only - 1]:
            try:
                page = doc[i]
                w_pt, h_pt = page.get_size()
            except Exception as e:  # noqa: BLE001 — pdfium errors on a damaged page
                raise DocumentReadError(f"{path}: cannot read page {i + 1} ({e})") from e
            budget.take(i + 1, round(w_pt * scale), round(h_pt * scale), dpi)
            try:
                image = page.render(scale=scale).to_pil().convert("RGB")
                words, unmapped = _text_layer_words(page, h_pt, image.width / w_pt, image.height / h_pt) if text_layer else ([], 0)
            except Exception as e:  # pdfium errors on a damaged page
                raise DocumentReadError(f"{path}: cannot render page {i + 1} ({e})") from e
            refused = implausible_text_layer([w.text for w in words], unmapped) if words else None
            yield Page(i + 1, image.width, image.height, None if refused or not words else words, "text-layer", image,
                       {"text_layer_refused": refused} if refused else None)
    finally:
        doc.close()


def implausible_text_layer(texts: list[str], unmapped: int = 0) -> str | None:
    """Why a page's text layer should not be trusted, or None. Layers written letter by letter (each
    glyph its own word), with no word-like tokens (a font whose codes map to the wrong letters) or
    with glyphs that map to no Unicode character at all are read from the rendering instead."""
    n = len(texts)
    letters = sum(len(t) for t in texts)
    if unmapped > max(3, 0.1 * (letters + unmapped)):
        return f"{unmapped} of {letters + unmapped} glyphs have no Unicode mapping"
    if n < 20:
        return None  # too few words to judge
    single = sum(len(t) == 1 and t.isalnum() for t in texts)
    if single > 0.5 * n:
        return f"{single} of {n} words are one letter long (a layer spelled letter by letter)"
    latin = [t for t in texts if len(t) > 1 and t.isascii() and any(c.isalpha() for c in t)]
    if len(latin) >= 0.5 * n:  # the vowel test only means something in the Latin script
        wordlike = sum(bool(_WORDLIKE.search(t)) for t in latin)
        if wordlike < 0.2 * len(latin):
            return f"only {wordlike} of {len(latin)} words look like words (a consonant beside a vowel)"
    return None


_WORDLIKE = re.compile(r"[b-df-hj-np-tv-z][aeiouy]|[aeiouy][b-df-hj-np-tv-z]", re.IGNORECASE)


def _text_layer_words(page, height_pt: float, sx: float, sy: float) -> tuple[list[Word], int]:
    """Words of a PDF page's text layer: runs of non-space characters, boxes the union of their
    glyph boxes, converted from PDF points (origin bottom-left) to pixels of the rendering; and how
    many glyphs have no Unicode mapping (pdfium gives them a stand-in character)."""
    import pypdfium2.raw as pdfium_c

    text_page = page.get_textpage()
    try:
        n = text_page.count_chars()
        text = text_page.get_text_range(0, n) if n else ""
        unmapped = sum(bool(pdfium_c.FPDFText_HasUnicodeMapError(text_page.raw, i)) for i in range(n))
        words, chars, boxes, line = [], [], [], 0

        def flush():
            if chars:
                x0 = min(b[0] for b in boxes) * sx
                x1 = max(b[2] for b in boxes) * sx
                y0 = (height_pt - max(b[3] for b in boxes)) * sy
                y1 = (height_pt - min(b[1] for b in boxes)) * sy
                words.append(Word("".join(chars), (x0, y0, x1, y1), 100.0, line, 0))
                chars.clear()
                boxes.clear()

        for i, ch in enumerate(text[:n]):
            if ch in "\r\n":
                flush()
                if ch == "\n":
                    line += 1
            elif ch.isspace():
                flush()
            else:
                chars.append(ch)
                boxes.append(text_page.get_charbox(i, loose=False))
        flush()
        return words, unmapped
    finally:
        text_page.close()
