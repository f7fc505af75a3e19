"""A second engine for the lines the first one could not read: Tesseract loses lines with dot leaders
(a table of contents, an index) and some tables, where RapidOCR's line recogniser reads them
(benchmarks/ocr_real.py: libtasn1's function index, 7 of 87 words by Tesseract, 80 by RapidOCR).

The weak lines — mean word confidence under ``weak`` — are cut out of the page together (one crop
around all of them), read by the second engine, and each weak line takes the second reading's
words whose centres fall inside it when those are surer by ``margin`` points. Lines read well are
never touched, so a clean page costs nothing more.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .page import Word

WEAK_LINE = 50.0  # mean word confidence (0–100) under which a Tesseract line is read again
MARGIN = 20.0  # how much surer the second reading of a line must be to replace it


def reread_weak_lines(image: Image.Image, words: list[Word], engine, weak: float = WEAK_LINE,
                      margin: float = MARGIN) -> tuple[list[Word], int]:
    """``words`` (one page's, boxes on ``image``, with line ids) with each weak line replaced by
    ``engine``'s reading where that is surer; and how many lines were replaced."""
    lines: dict[int, list[Word]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    weak_boxes = {}
    for line, ws in lines.items():
        if np.mean([w.confidence for w in ws]) < weak:
            box = np.asarray([w.box for w in ws], np.float64)
            x0, y0, x1, y1 = box[:, 0].min(), box[:, 1].min(), box[:, 2].max(), box[:, 3].max()
            pad = 0.5 * (y1 - y0)
            weak_boxes[line] = (x0 - 6 * pad, y0 - pad, x1 + 6 * pad, y1 + pad)  # page numbers sit right of the dots
    if not weak_boxes:
        return words, 0
    boxes = np.asarray(list(weak_boxes.values()))
    left, top = max(0, int(boxes[:, 0].min())), max(0, int(boxes[:, 1].min()))
    right, bottom = min(image.width, int(np.ceil(boxes[:, 2].max()))), min(image.height, int(np.ceil(boxes[:, 3].max())))
    if right - left < 4 or bottom - top < 4:
        return words, 0
    second = engine(image.crop((left, top, right, bottom)))
    replaced: dict[int, list[Word]] = {}
    for line, (x0, y0, x1, y1) in weak_boxes.items():
        inside = []
        for w in second:
            cx, cy = left + (w.box[0] + w.box[2]) / 2, top + (w.box[1] + w.box[3]) / 2
            if x0 <= cx <= x1 and y0 <= cy <= y1:
                inside.append(Word(w.text, (w.box[0] + left, w.box[1] + top, w.box[2] + left, w.box[3] + top),
                                   w.confidence, line, lines[line][0].block))
        first = np.mean([w.confidence for w in lines[line]])
        if inside and np.mean([w.confidence for w in inside]) >= first + margin:
            replaced[line] = sorted(inside, key=lambda w: w.box[0])
    if not replaced:
        return words, 0
    out, done = [], set()
    for w in words:  # reading order kept: a replaced line's new words where its first word was
        if w.line in replaced:
            if w.line not in done:
                out += replaced[w.line]
                done.add(w.line)
        else:
            out.append(w)
    return out, len(replaced)
