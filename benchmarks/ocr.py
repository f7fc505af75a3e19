"""OCR engines side by side on the world's rendered documents: word accuracy against the ground
truth, box IoU of the words read right, and pages per second.

    python benchmarks/ocr.py [--pages 40] [--threads 2]

Word recall: the share of ground-truth words read exactly (as a multiset per page); precision: the
share of words read that are on the page. Box IoU: median and 10th percentile over words read
exactly, each against the nearest ground-truth box of the same text (the truth is the glyphs'
tight box). Tesseract runs one process per page (pytesseract), one page at a time; its OpenMP
threads per page are ``TesseractOCR(threads=…)``: 1 (the default), 2, and 0 (Tesseract's own
default: one per core it sees, ``nproc`` or not). RapidOCR (``pip install 'polymodal[rapidocr]'``)
runs in this process, one ONNX Runtime thread per model unless said otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import numpy as np
from PIL import Image


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def score(engine, docs) -> dict:
    hits = truth = read = 0
    ious, seconds = [], 0.0
    for doc in docs:
        image = Image.fromarray(doc.image)
        t = time.perf_counter()
        words = engine(image)
        seconds += time.perf_counter() - t
        left = Counter(doc.words)
        boxes: dict[str, list] = {}
        for w, b in zip(doc.words, doc.boxes):
            boxes.setdefault(w, []).append(b)
        for w in words:
            if left[w.text] > 0:
                hits += 1
                left[w.text] -= 1
                ious.append(max(iou(w.box, b) for b in boxes[w.text]))
        truth += len(doc.words)
        read += len(words)
    return {"recall": hits / truth, "precision": hits / max(read, 1), "iou_median": statistics.median(ious),
            "iou_p10": float(np.percentile(ious, 10)), "pages_per_s": len(docs) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=40)
    args = parser.parse_args()
    from polymodal.world.documents import render_document
    from polymodal.documents import RapidOCR, TesseractOCR

    docs = [render_document(0, "test", i) for i in range(args.pages)]
    engines = {"tesseract default (clean-up auto, psm auto: text ≈ 8 px, upscaled ×2)": TesseractOCR(),
               "tesseract psm 3, clean-up auto": TesseractOCR(psm=3),
               "tesseract psm 6, clean-up auto": TesseractOCR(psm=6),
               "tesseract psm 11, clean-up auto": TesseractOCR(psm=11),
               "tesseract psm 3, page as rendered (320×400; clean-up off)": TesseractOCR(psm=3, clean="off", upscale="off"),
               "tesseract default, 2 OpenMP threads per page": TesseractOCR(threads=2),
               "tesseract default, OpenMP threads unset": TesseractOCR(threads=0),
               "rapidocr, upscaled ×3 (its default)": RapidOCR(),
               "rapidocr, upscaled ×3, 2 threads per model": RapidOCR(threads=2),
               "rapidocr, upscaled ×2": RapidOCR(min_height=800),
               "rapidocr, page as rendered (320×400)": RapidOCR(min_height=0)}
    print(f"# {args.pages} world test pages (320×400 px, 11–14 px fonts), {len(docs[0].words)}+ words each")
    print("| engine | word recall | word precision | box IoU median | box IoU p10 | pages/s |")
    print("|---|---|---|---|---|---|")
    for name, engine in engines.items():
        s = score(engine, docs)
        print(f"| {name} | {s['recall']:.3f} | {s['precision']:.3f} | {s['iou_median']:.2f} | {s['iou_p10']:.2f} "
              f"| {s['pages_per_s']:.2f} |")


if __name__ == "__main__":
    main()
