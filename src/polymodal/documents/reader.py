"""From a file to pages of words: images (PNG, JPEG, multi-page TIFF) through Pillow, PDFs through
pypdfium2 — the words of a page's text layer when it has one, else the rendered page through OCR.

Hostile files are bounded before anything is decoded: a page's pixel count is read from the image
header or computed from the PDF page size and the rendering scale, and refused above ``max_pixels``;
at most ``max_pages`` pages are read. Every error is a :class:`DocumentReadError` naming the file
(and the page); a page with no text is an empty page, not an error.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from ..modalities.image import to_rgb
from .ocr import OCREngine, ocr_engine
from .page import Page, Word

MAX_PAGE_PIXELS = 40_000_000  # an A4 page at 600 dpi is 35 M
MAX_PAGES = 200


class DocumentReadError(ValueError):
    """A document could not be read; the message names the file and, where it applies, the page."""


def read_document(path: str | Path, *, ocr: OCREngine | None = None, dpi: float = 150, max_pages: int = MAX_PAGES,
                  max_pixels: int = MAX_PAGE_PIXELS, text_layer: bool = True) -> list[Page]:
    """The pages of an image or PDF file, each with its image and words.

    Args:
        ocr: the engine for pages without a text layer (default: Tesseract, created on first need).
        dpi: PDF rendering resolution (pixels per inch).
        text_layer: use a PDF page's own text when it has some (False: always OCR the rendering).
    """
    path = Path(path)
    if not path.is_file():
        raise DocumentReadError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(5)
    if not head:
        raise DocumentReadError(f"{path}: the file is empty")
    engine = _LazyEngine(ocr)
    if head.startswith(b"%PDF") or path.suffix.lower() == ".pdf":
        return _read_pdf(path, engine, dpi, max_pages, max_pixels, text_layer)
    return _read_image(path, engine, max_pages, max_pixels)


class _LazyEngine:
    """Creates the default engine only when a page needs OCR (a PDF with text needs none)."""

    def __init__(self, engine: OCREngine | None):
        self.engine = engine

    def __call__(self, image: Image.Image) -> tuple[list[Word], str]:
        if self.engine is None:
            self.engine = ocr_engine("tesseract")
        return self.engine(image), f"ocr:{self.engine.name}"

    def pages(self, pages: list[Page]) -> list[Page]:
        """OCR every page whose ``words`` is None, up to the engine's ``page_workers`` at a time, in order."""
        todo = [p for p in pages if p.words is None]
        if not todo:
            return pages
        if self.engine is None:
            self.engine = ocr_engine("tesseract")
        workers = min(getattr(self.engine, "page_workers", 1), len(todo))
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(self, [p.image for p in todo]))
        else:
            results = [self(p.image) for p in todo]
        for page, (words, source) in zip(todo, results):
            page.words, page.source = words, source
        return pages


def _read_image(path: Path, ocr: _LazyEngine, max_pages: int, max_pixels: int) -> list[Page]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies per page
            img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise DocumentReadError(f"{path}: page is over the {max_pixels / 1e6:g} M pixel limit ({e})") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DocumentReadError(f"{path}: not a readable image or PDF ({e})") from e
    pages = []
    with img:
        for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
            if number > max_pages:
                warnings.warn(f"{path}: read the first {max_pages} pages only", stacklevel=3)
                break
            w, h = frame.size
            if w * h > max_pixels:
                raise DocumentReadError(f"{path}: page {number} is {w}×{h} pixels, over the "
                                        f"{max_pixels / 1e6:g} M pixel limit")
            try:
                frame.load()
                page = to_rgb(frame)
            except (OSError, ValueError, SyntaxError) as e:
                raise DocumentReadError(f"{path}: cannot decode page {number} ({e})") from e
            pages.append(Page(number, page.width, page.height, None, "ocr", page))
    return ocr.pages(pages)


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


def _read_pdf(path: Path, ocr: _LazyEngine, dpi: float, max_pages: int, max_pixels: int,
              text_layer: bool) -> list[Page]:
    doc = _open_pdf(path)
    try:
        if len(doc) == 0:
            raise DocumentReadError(f"{path}: the PDF has no pages")
        if len(doc) > max_pages:
            warnings.warn(f"{path}: read the first {max_pages} of {len(doc)} pages only", stacklevel=3)
        scale = dpi / 72.0
        pages = []
        for i in range(min(len(doc), max_pages)):
            page = doc[i]
            w_pt, h_pt = page.get_size()
            w, h = round(w_pt * scale), round(h_pt * scale)
            if w * h > max_pixels:
                raise DocumentReadError(f"{path}: page {i + 1} would render at {w}×{h} pixels ({dpi:g} dpi), over "
                                        f"the {max_pixels / 1e6:g} M pixel limit; lower dpi")
            try:
                image = page.render(scale=scale).to_pil().convert("RGB")
                words = _text_layer_words(page, h_pt, image.width / w_pt, image.height / h_pt) if text_layer else []
            except Exception as e:  # pdfium errors on a damaged page
                raise DocumentReadError(f"{path}: cannot render page {i + 1} ({e})") from e
            pages.append(Page(i + 1, image.width, image.height, words or None, "text-layer", image))
    finally:
        doc.close()
    return ocr.pages(pages)  # pages without a text layer, read side by side


def _text_layer_words(page, height_pt: float, sx: float, sy: float) -> list[Word]:
    """Words of a PDF page's text layer: runs of non-space characters, boxes the union of their
    glyph boxes, converted from PDF points (origin bottom-left) to pixels of the rendering."""
    text_page = page.get_textpage()
    try:
        n = text_page.count_chars()
        text = text_page.get_text_range(0, n) if n else ""
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
        return words
    finally:
        text_page.close()
