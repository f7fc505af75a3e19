"""Documents: reading files into pages of words and boxes (OCR or a PDF's text layer), and fitting
them to LayoutLM's inputs (0–1000 boxes, overlapping token windows merged back per word)."""

from .ocr import OCREngine, OCRError, RapidOCR, TesseractOCR, ocr_engine, register_engine
from .page import GRID, Page, Word, normalize_boxes
from .reader import DocumentReadError, iter_document, read_document

__all__ = ["GRID", "DocumentReadError", "OCREngine", "OCRError", "Page", "RapidOCR", "TesseractOCR", "Word", "normalize_boxes",
           "iter_document", "ocr_engine", "read_document", "register_engine"]
