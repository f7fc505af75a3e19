"""Answers from an indexed folder's documents: hybrid search picks the pages (PDF pages and pictures)
most likely to hold the answer, a LayoutLM QA model reads each of them, and the surest span wins —
with its file, page, score and box. Without a QA model, the best pages are the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .hybrid import Hit, Searcher

PAGE_MODALITIES = {"pdf", "image"}
DEFAULT_PAGES = 5


@dataclass
class PageAnswer:
    hit: Hit  # the page as search found it
    answer: str = ""
    score: float = 0.0  # the QA model's p(start)·p(end)
    box: list[float] | None = None  # pixels of the page as read at ``dpi``
    width: int = 0  # of that page image
    height: int = 0
    error: str | None = None  # why this page could not be read

    def to_json(self) -> dict:
        out = {"id": self.hit.item.id, "file": self.hit.item.file, "page": self.hit.item.page or 1,
               "answer": self.answer, "score": round(self.score, 4), "box": self.box,
               "width": self.width, "height": self.height, "retrieval": self.hit.to_json()}
        return {**out, "error": self.error} if self.error else out


@dataclass
class Asked:
    question: str
    pages: list[PageAnswer] = field(default_factory=list)  # best answer first (by retrieval without a model)
    qa: bool = True  # a QA model read the pages
    note: str | None = None

    @property
    def best(self) -> PageAnswer | None:
        read = [p for p in self.pages if p.error is None and p.answer]
        return read[0] if self.qa and read else None

    def to_json(self) -> dict:
        best = self.best
        return {"question": self.question, "answer": None if best is None else best.to_json(),
                "note": self.note, "pages": [p.to_json() for p in self.pages]}


def ask_index(searcher: Searcher, question: str, qa=None, pages: int = DEFAULT_PAGES, ocr=None,
              dpi: float = 150) -> Asked:
    """Ask ``question`` of the index's pages. ``qa``: a :class:`~polymodal.tasks.documents.DocumentModel`
    with a QA head, or None (then the best pages are returned, and the answer says why). ``ocr``: the
    engine for pages without a text layer (default Tesseract)."""
    if not question.strip():
        raise ValueError("the question is empty")
    if qa is not None:
        qa.require("qa")
    embedder = searcher.embedder
    vector = embedder.embed_texts([question])[0].numpy() if "text" in embedder.modalities else None
    found = searcher.search(vector, question, k=pages, mode="hybrid", modalities=PAGE_MODALITIES)
    asked = Asked(question, [PageAnswer(h) for h in found.hits], qa=qa is not None)
    if qa is None:
        asked.note = "no QA model given (--qa MODEL): these are the pages most likely to hold the answer"
        return asked
    for page in asked.pages:
        _read(page, qa, question, ocr, dpi)
    asked.pages.sort(key=lambda p: (p.error is not None, -p.score))
    if not asked.pages:
        asked.note = "the index holds no PDF pages or pictures"
    return asked


def _read(page: PageAnswer, qa, question: str, ocr, dpi: float) -> None:
    """The QA model's best span on ``page``'s file and page, read afresh (text layer, else OCR)."""
    from ..documents import DocumentReadError, OCRError, iter_document
    from ..tasks.documents import DocumentPage

    item = page.hit.item
    try:
        (doc_page,) = list(iter_document(Path(item.file), ocr=ocr, dpi=dpi, only=item.page or 1))
        got = qa.ask(DocumentPage.of(doc_page), question)
    except (DocumentReadError, OCRError, ValueError, OSError, RuntimeError) as e:
        page.error = str(e) if item.file in str(e) else f"{item.file}: {e}"
        return
    page.answer, page.score, page.box = got["answer"], float(got["score"]), got["box"]
    page.width, page.height = doc_page.width, doc_page.height
    if page.box is not None:
        page.box = [float(np.round(v, 1)) for v in page.box]
