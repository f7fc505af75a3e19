"""PDF pages as images (pypdfium2), for embedding each page with the image tower."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .registry import Modality, register_modality


class PdfReadError(ValueError):
    """A PDF could not be opened or rendered; the message names the file."""


def pdf_pages(path: str | Path, short_side: int = 224, max_pages: int = 200) -> list[Image.Image]:
    """Render up to ``max_pages`` pages to RGB images whose shorter side is at least ``short_side``."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except Exception as e:  # pdfium.PdfiumError and friends
        raise PdfReadError(f"{path}: not a readable PDF ({e})") from e
    try:
        pages = []
        for i in range(min(len(doc), max_pages)):
            page = doc[i]
            w, h = page.get_size()
            scale = max(short_side / max(min(w, h), 1.0), 0.1)
            pages.append(page.render(scale=scale).to_pil().convert("RGB"))
        if not pages:
            raise PdfReadError(f"{path}: the PDF has no pages")
        return pages
    finally:
        doc.close()


def _read(path: Path, processor):
    """A PDF as a query: its first page, rendered and transformed as an image [3, size, size]
    (the indexer embeds every page, see ``search.ingest``)."""
    image = processor.image
    return image.transform()(pdf_pages(path, image.size, max_pages=1)[0])


register_modality(Modality("pdf", encoder="image", sample_dims=3, read=_read, processing=("image",)))
