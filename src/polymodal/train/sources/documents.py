"""A user's documents for the ``doc_*`` kinds: ``funsd`` (a FUNSD folder: ``annotations/`` +
``images/``), ``docvqa`` (a DocVQA-style JSON of questions over page images, OCR'd once) and
``folders`` (one sub-folder per class, RVL-CDIP style, OCR'd once). ``data.path`` trains,
``data.val_path`` (default: ``data.path``) validates; OCR results are cached in the run folder."""

from __future__ import annotations

from ...data.documents import class_folders, docvqa_examples, ocr_example, read_funsd_folder
from ..config import ConfigError
from ..examples import DocumentPages
from . import Source, register_source


def _path(kind, split: str) -> str:
    d = kind.cfg.data
    path = d.path if split == "train" else (d.val_path or d.path)
    if not path:
        raise ConfigError(f"data.kind {d.kind} needs data.path (and data.val_path for validation)")
    return path


def _cache(kind):
    return kind.out / "ocr-cache" if kind.out is not None else None


def funsd(kind, split: str) -> DocumentPages:
    return DocumentPages(read_funsd_folder(_path(kind, split)))


def docvqa(kind, split: str) -> DocumentPages:
    return DocumentPages(docvqa_examples(_path(kind, split), _cache(kind)))


def folders(kind, split: str) -> DocumentPages:
    """Every page of every class folder; the classes (the folder names, sorted) are the head's."""
    pages = class_folders(_path(kind, split))
    classes = sorted({c for _, c in class_folders(kind.cfg.data.path)}) if kind.cfg.data.path else None
    return DocumentPages([ocr_example(f, _cache(kind), doc_class=c) for f, c in pages], classes)


for name, load, about in (("funsd", funsd, "a FUNSD folder (annotations/ + images/)"),
                          ("docvqa", docvqa, "a DocVQA-style JSON of questions over page images"),
                          ("folders", folders, "page images or PDFs in one sub-folder per class")):
    register_source(Source(name, "document_pages", load, ("path", "val_path"), about=about))
