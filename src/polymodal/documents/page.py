"""A document page as the models see it: the page image and its words, each with a box, an OCR
confidence and its line and block, in reading order.

Boxes are pixels on ``Page.image`` (x0, y0, x1, y1); :func:`normalize_boxes` maps them to the
0–1000 grid LayoutLM embeds, independent of the page's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

GRID = 1000  # LayoutLM's box coordinates run 0..GRID


@dataclass
class Word:
    text: str
    box: tuple[float, float, float, float]  # pixels on the page image: x0, y0, x1, y1
    confidence: float = 100.0  # 0–100; text taken from a PDF's text layer is 100
    line: int = 0  # lines and blocks are numbered from 0 per page, in reading order
    block: int = 0

    def to_json(self) -> dict:
        return {"text": self.text, "box": [round(float(v), 1) for v in self.box],
                "confidence": round(float(self.confidence), 1), "line": self.line, "block": self.block}


@dataclass
class Page:
    number: int  # 1-based
    width: int  # of ``image``, pixels
    height: int
    words: list[Word] = field(default_factory=list)
    source: str = "ocr"  # "ocr:<engine>" or "text-layer" (a PDF's own text)
    image: Image.Image | None = None
    ocr: dict | None = None  # how OCR read the page: clean-up steps, page segmentation, passes tried


    @property
    def texts(self) -> list[str]:
        return [w.text for w in self.words]

    def pixel_boxes(self) -> np.ndarray:
        """[N, 4] float32 pixel boxes."""
        return np.asarray([w.box for w in self.words], np.float32).reshape(-1, 4)

    def grid_boxes(self) -> np.ndarray:
        """[N, 4] int64 boxes on the 0–1000 grid."""
        return normalize_boxes(self.pixel_boxes(), self.width, self.height)

    def to_json(self) -> dict:
        out = {"page": self.number, "width": self.width, "height": self.height, "source": self.source}
        return {**out, **({"ocr": self.ocr} if self.ocr else {}), "words": [w.to_json() for w in self.words]}


def normalize_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel boxes [N, 4] on a width × height page → int64 [N, 4] on the 0–1000 grid (clipped to the
    page, x1 ≥ x0 and y1 ≥ y0)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if width <= 0 or height <= 0:
        raise ValueError(f"page size must be positive, got {width}×{height}")
    scale = np.array([GRID / width, GRID / height, GRID / width, GRID / height])
    grid = np.clip(np.round(boxes * scale), 0, GRID).astype(np.int64)
    grid[:, 2] = np.maximum(grid[:, 2], grid[:, 0])
    grid[:, 3] = np.maximum(grid[:, 3], grid[:, 1])
    return grid
