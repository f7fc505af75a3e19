"""PDF pages as images (pypdfium2), for embedding each page with the image tower."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .registry import Modality, register_modality


MAX_PAGES = 200  # pages indexed per file
MAX_RENDER_SIDE = 2048  # px: a page's long side is never rendered larger (a 14400 × 10 pt page …)


class PdfReadError(ValueError):
    """A PDF could not be opened or rendered; the message names the file."""


def _open(source: str | Path | bytes, name: str | Path | None = None):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(source if isinstance(source, bytes) else str(source))
    except Exception as e:  # pdfium.PdfiumError and friends
        raise PdfReadError(f"{name or source}: not a readable PDF ({e})") from e


def _render(doc, i: int, short_side: int, max_side: int) -> Image.Image:
    """Page ``i`` with its shorter side ``short_side`` px, unless that makes the long side exceed
    ``max_side``; the scale is chosen from the page size before anything is rendered."""
    page = doc[i]
    w, h = page.get_size()
    scale = min(short_side / max(min(w, h), 1.0), max_side / max(w, h, 1.0))
    return page.render(scale=max(scale, 1e-3)).to_pil().convert("RGB")


def page_count(path: str | Path) -> int:
    doc = _open(path)
    try:
        return len(doc)
    finally:
        doc.close()


def pdf_pages(path: str | Path, short_side: int = 224, max_pages: int = MAX_PAGES,
              max_side: int = MAX_RENDER_SIDE) -> list[Image.Image]:
    """Render up to ``max_pages`` pages to RGB images whose shorter side is ``short_side`` (long side
    at most ``max_side``)."""
    doc = _open(path)
    try:
        pages = [_render(doc, i, short_side, max_side) for i in range(min(len(doc), max_pages))]
        if not pages:
            raise PdfReadError(f"{path}: the PDF has no pages")
        return pages
    except PdfReadError:
        raise
    except Exception as e:
        raise PdfReadError(f"{path}: cannot render page ({e})") from e
    finally:
        doc.close()


def pdf_page(source: str | Path | bytes, number: int, short_side: int = 512, max_side: int = MAX_RENDER_SIDE,
             name: str | Path | None = None) -> Image.Image:
    """Page ``number`` (1-based) alone, rendered as :func:`pdf_pages` renders it; ``source`` is a
    path or the file's bytes (then ``name`` names it in errors)."""
    name = name or source
    doc = _open(source, name)
    try:
        if not 1 <= number <= len(doc):
            raise PdfReadError(f"{name}: no page {number} (the PDF has {len(doc)})")
        return _render(doc, number - 1, short_side, max_side)
    finally:
        doc.close()


def _read(path: Path, processor):
    """A PDF as a query: its first page, rendered and transformed as an image [3, size, size]
    (the indexer embeds every page, see ``search.ingest``)."""
    image = processor.image
    return image.transform()(pdf_page(path, 1, image.size))


register_modality(Modality("pdf", encoder="image", sample_dims=3, read=_read, processing=("image",)))
