"""The world's documents (``data.kind=world`` for the ``doc_*`` kinds): forms, invoices, receipts, ID
cards and letters rendered with their ground-truth words, boxes, entities, links, questions and class."""

from __future__ import annotations

from ...train.examples import DocumentPages
from ...train.sources import Source, register_source
from ..documents import DOC_CLASSES, world_documents
from .images import SCENES


def document_pages(kind, split: str) -> DocumentPages:
    d = kind.cfg.data
    return DocumentPages(world_documents(split, d.train_n if split == "train" else d.val_n, d.seed), list(DOC_CLASSES))


register_source(Source("world", "document_pages", document_pages, SCENES, about="rendered documents and their labels"))
