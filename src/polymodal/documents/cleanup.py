"""Page clean-up before OCR: what a phone photo of a page needs and a clean render does not.

Each step first measures the page and changes it only where the measurement says so (a clean render
passes through untouched): flatten uneven lighting (background estimated by a grey closing, then
divided out), deskew by projection profile up to ±15°, upscale when the text is small; and, off by
default because they did not pay on benchmarks/ocr_real.py, crop dark featureless borders, stretch
weak contrast and an adaptive binarisation.

Every step is a geometric map of the pixels (or none), composed into :attr:`Cleaned.to_source`, so
boxes read on the cleaned page map back onto the given one (:meth:`Cleaned.boxes_to_source`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

STEPS = ("crop", "flatten", "contrast", "deskew", "upscale", "binarise")
# benchmarks/ocr_real.py chose these: on photographed pages, contrast stretching lost 0.02 recall and
# 0.03 precision after flattening, cropping dark borders cost 0.035 precision for 0.005 recall, and the
# adaptive binarisation lost on every set; they stay available by name.
DEFAULT_STEPS = ("flatten", "deskew", "upscale")

MAX_SKEW = 15.0  # degrees searched either way
MIN_SKEW = 0.3  # below this a rotation costs more (resampling) than Tesseract loses to the skew
TEXT_HEIGHT = 16.0  # median glyph height (px) small text is upscaled to; Tesseract reads worse below ~10
MIN_TEXT_HEIGHT = 10.0
# Upscaling is bounded as for any hostile page: at most ×4, 16 M pixels, and Tesseract's 32,767 px side.
MAX_UPSCALE, MAX_UPSCALED_PIXELS, MAX_UPSCALED_SIDE = 4, 16_000_000, 32_767


@dataclass
class Cleaned:
    """A page as OCR reads it: ``image`` [H, W] uint8 grey, the ``steps`` taken (with their
    measurement, e.g. ``"deskew -3.2°"``) and ``to_source``, the 3 × 3 map of its pixels onto the
    given page's."""

    image: np.ndarray
    steps: list[str] = field(default_factory=list)
    to_source: np.ndarray = field(default_factory=lambda: np.eye(3))

    def then(self, image: np.ndarray, step: str, forward: np.ndarray | None = None) -> "Cleaned":
        """This page after one more step; ``forward`` (3 × 3) maps its pixels to the new image's."""
        to_source = self.to_source if forward is None else self.to_source @ np.linalg.inv(forward)
        return Cleaned(image, [*self.steps, step], to_source)

    def boxes_to_source(self, boxes: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """Boxes [N, 4] (x0, y0, x1, y1) on :attr:`image` → the boxes around their corners on the given
        page [N, 4], clipped to its ``size`` (width, height) when given."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], 1)  # [N, 4, 2]
        mapped = corners @ self.to_source[:2, :2].T + self.to_source[:2, 2]
        out = np.concatenate([mapped.min(1), mapped.max(1)], 1)
        if size is not None:
            out = np.clip(out, 0, [size[0], size[1], size[0], size[1]])
        return out


def clean(image: Image.Image | np.ndarray, steps=DEFAULT_STEPS, force: bool = False) -> Cleaned:
    """``image`` (PIL, or [H, W] / [H, W, 3] uint8 RGB) through ``steps`` (names from :data:`STEPS`, run
    in that order). Each step applies only where its measurement says the page needs it, unless
    ``force`` (benchmarks/ocr_real.py measures each step forced on)."""
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown clean-up step(s) {', '.join(unknown)}; known: {', '.join(STEPS)}")
    page = Cleaned(grey(image))
    for name in STEPS:
        if name in steps:
            page = _STEP[name](page, force)
    return page


def grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """[H, W] uint8 luminance of a PIL image or an RGB / grey array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"))
    image = np.asarray(image)
    return image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)


def background(grey_page: np.ndarray) -> np.ndarray:
    """The page's lighting without its ink: [H, W] float32, a grey closing (ink is darker than the
    paper around it) at a quarter of the resolution, smoothed and brought back to full size."""
    h, w = grey_page.shape
    small = cv2.resize(grey_page, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    k = 2 * max(4, max(small.shape) // 60) + 1  # wider than a glyph's strokes at this scale
    closed = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    closed = cv2.GaussianBlur(closed, (0, 0), k / 2)
    return cv2.resize(closed, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def unevenness(light: np.ndarray) -> float:
    """How much the lighting varies over the page: (p95 − p5) / p95 of :func:`background`, 0 for even."""
    lo, hi = np.percentile(light[::4, ::4], [5, 95])
    return float((hi - lo) / max(hi, 1.0))


def skew_angle(grey_page: np.ndarray, max_angle: float = MAX_SKEW) -> float:
    """The angle (degrees) of the page's text lines, positive when they fall to the right: the
    projection-profile angle in ±``max_angle`` that makes the ink's row profile sharpest (searched
    every 0.5°, then every 0.05° around the best). 0 for a page with too little ink to tell."""
    h, w = grey_page.shape
    s = min(1.0, 1200 / max(h, w))
    small = cv2.resize(grey_page, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) if s < 1 else grey_page
    _, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ys, xs = np.nonzero(ink)
    if len(xs) < 200 or len(xs) > 0.5 * ink.size:  # blank, or not dark ink on light paper
        return 0.0
    step = max(1, len(xs) // 200_000)
    xs, ys = xs[::step].astype(np.float32), ys[::step].astype(np.float32)

    def sharpness(deg: float) -> float:
        t = np.deg2rad(deg)
        rows = np.round(ys * np.cos(t) - xs * np.sin(t)).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        return float(np.dot(counts, counts))

    coarse = np.arange(-max_angle, max_angle + 1e-9, 0.5)
    best = float(coarse[np.argmax([sharpness(a) for a in coarse])])
    fine = np.arange(best - 0.5, best + 0.5 + 1e-9, 0.05)
    return float(fine[np.argmax([sharpness(a) for a in fine])])


def text_height(grey_page: np.ndarray) -> float:
    """Median height (px) of the glyph-like connected components of the page's ink (0 if none)."""
    _, ink = cv2.threshold(grey_page, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    w, h, area = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_AREA]
    glyph = (h >= 3) & (h <= grey_page.shape[0] * 0.1) & (w <= 4 * h) & (area >= 6)
    return float(np.median(h[glyph])) if glyph.sum() >= 10 else 0.0


def bounded_factor(width: int, height: int, factor: float) -> int:
    """``factor`` rounded up to an integer and bounded for a ``width`` × ``height`` page: at most
    ×:data:`MAX_UPSCALE`, :data:`MAX_UPSCALED_PIXELS` and :data:`MAX_UPSCALED_SIDE` (a 20,000 × 5 px
    strip passes any pixel cap and must not be blown up to gigapixels). 1: leave it as it is."""
    if factor <= 1:
        return 1
    room = int((MAX_UPSCALED_PIXELS / max(width * height, 1)) ** 0.5)
    return max(1, min(int(np.ceil(factor - 1e-9)), MAX_UPSCALE, room, MAX_UPSCALED_SIDE // max(width, height, 1)))


def _crop(page: Cleaned, force: bool) -> Cleaned:
    """Cut dark, featureless strips off the edges (a scanner's black border, the table around a
    photographed page): rows and columns from the edge inwards whose mean is under half the paper's
    and whose spread is small. A shadow over text has ink in it and is left to :func:`_flatten`."""
    img = page.image
    h, w = img.shape
    paper = float(np.percentile(img[::4, ::4], 90))
    dark = lambda strips: (strips.mean(1) < paper / 2) & (strips.std(1) < 12)  # noqa: E731
    rows, cols = dark(img.astype(np.float32)), dark(img.T.astype(np.float32))

    def run(flags: np.ndarray) -> int:  # how many leading flags are set
        return int(np.argmin(flags)) if not flags.all() else len(flags)

    y0, y1 = run(rows), h - run(rows[::-1])
    x0, x1 = run(cols), w - run(cols[::-1])
    if y1 - y0 < h // 4 or x1 - x0 < w // 4 or (x0, y0, x1, y1) == (0, 0, w, h):
        return page  # nothing to cut, or nothing page-like would be left
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    return page.then(np.ascontiguousarray(img[y0:y1, x0:x1]), f"crop {x1 - x0}×{y1 - y0}+{x0}+{y0}", shift)


def _flatten(page: Cleaned, force: bool) -> Cleaned:
    """Divide out uneven lighting when the background varies by more than 12 %."""
    light = background(page.image)
    uneven = unevenness(light)
    if not force and uneven < 0.12:
        return page
    flat = cv2.divide(page.image.astype(np.float32), np.maximum(light, 1.0), scale=255.0)
    return page.then(np.clip(flat, 0, 255).astype(np.uint8), f"flatten {uneven:.2f}")


def _contrast(page: Cleaned, force: bool) -> Cleaned:
    """Stretch weak ink: the 0.5th percentile to black and the paper (the median) to white, when
    they are less than 110 grey levels apart."""
    ink, paper = np.percentile(page.image[::2, ::2], [0.5, 50])
    if paper - ink < 1 or (not force and paper - ink >= 110):
        return page
    lut = np.clip((np.arange(256) - ink) * 255.0 / (paper - ink), 0, 255).astype(np.uint8)
    return page.then(cv2.LUT(page.image, lut), f"contrast {paper - ink:.0f}")


def _deskew(page: Cleaned, force: bool) -> Cleaned:
    """Rotate the text lines level (on a canvas large enough for the corners, white around)."""
    angle = skew_angle(page.image)
    if abs(angle) < (1e-6 if force else MIN_SKEW):
        return page
    h, w = page.image.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    paper = int(np.percentile(page.image[::4, ::4], 90))
    level = cv2.warpAffine(page.image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=paper)
    return page.then(level, f"deskew {angle:+.2f}°", np.vstack([m, [0, 0, 1]]))


def _upscale(page: Cleaned, force: bool) -> Cleaned:
    """Enlarge by an integer factor when the median glyph is under :data:`MIN_TEXT_HEIGHT` px."""
    height = text_height(page.image)
    if height <= 0 or (not force and height >= MIN_TEXT_HEIGHT):
        return page
    h, w = page.image.shape
    f = bounded_factor(w, h, TEXT_HEIGHT / height)
    if f == 1:
        return page
    big = cv2.resize(page.image, (w * f, h * f), interpolation=cv2.INTER_CUBIC)
    return page.then(big, f"upscale ×{f} (text {height:.0f} px)", np.diag([f, f, 1.0]))


def _binarise(page: Cleaned, force: bool) -> Cleaned:
    """Adaptive (local Gaussian-weighted mean) threshold over a window a few text lines tall."""
    height = text_height(page.image) or 12.0
    block = 2 * int(max(7, 2 * height)) + 1
    binary = cv2.adaptiveThreshold(page.image, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 15)
    return page.then(binary, f"binarise {block}px")


_STEP = {"crop": _crop, "flatten": _flatten, "contrast": _contrast, "deskew": _deskew, "upscale": _upscale,
         "binarise": _binarise}
