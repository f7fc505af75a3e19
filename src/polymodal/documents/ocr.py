"""OCR engines behind one interface: a page image → :class:`~polymodal.documents.page.Word` list.

The engines are real ones, not ours: Tesseract (Debian's ``tesseract-ocr``, installed by
``scripts/bootstrap.sh``) through ``pytesseract``, and RapidOCR (PaddleOCR's PP-OCRv4 detector and
recogniser as ONNX models shipped in its wheel; ``pip install 'polymodal[rapidocr]'``). Engines
register by name and are chosen with ``--ocr NAME``; benchmarks/ocr.py measures them side by side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import threading
from dataclasses import dataclass
from typing import Callable

from PIL import Image

from .page import Word


class OCRError(RuntimeError):
    """The OCR engine is missing, misconfigured or failed; the message says which and how to fix it."""


ENGINES: dict[str, Callable[..., "OCREngine"]] = {}


def register_engine(name: str):
    def wrap(cls):
        ENGINES[name] = cls
        return cls
    return wrap


class OCREngine:
    name = "engine"
    page_workers = 1  # pages of one document this engine may read at the same time (threads)

    def __call__(self, image: Image.Image) -> list[Word]:
        """An RGB page image → its words in reading order, pixel boxes on ``image``."""
        raise NotImplementedError


def ocr_engine(name: str = "tesseract", **options) -> OCREngine:
    """The engine registered as ``name`` (options: e.g. ``lang``, ``psm``)."""
    if name not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    cls = ENGINES[name]
    if dataclasses.is_dataclass(cls):
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"OCR engine {name!r} has no option {', '.join(map(repr, unknown))}")
    return cls(**options)


# Upscaling small pages helps OCR, but a hostile page — a 20,000 × 5 px strip passes any pixel cap —
# must not be blown up to gigapixels: the factor is at most MAX_UPSCALE, the result at most
# MAX_UPSCALED_PIXELS (a 4,000 × 4,000 page) and no side longer than Tesseract takes (32,767 px).
MAX_UPSCALE, MAX_UPSCALED_PIXELS, MAX_UPSCALED_SIDE = 4, 16_000_000, 32_767


def upscale_factor(width: int, height: int, min_height: int) -> int:
    """The integer factor that brings a ``width`` × ``height`` page to ``min_height`` rows, within
    MAX_UPSCALE, MAX_UPSCALED_PIXELS and MAX_UPSCALED_SIDE (1: leave it as it is)."""
    if height >= min_height:
        return 1
    want = -(-min_height // max(height, 1))
    room = int((MAX_UPSCALED_PIXELS / max(width * height, 1)) ** 0.5)
    return max(1, min(want, MAX_UPSCALE, room, MAX_UPSCALED_SIDE // max(width, height, 1)))


@register_engine("tesseract")
@dataclass
class TesseractOCR(OCREngine):
    """Tesseract's word level (``image_to_data`` level 5).

    Args:
        lang: traineddata name(s), ``"eng"`` or ``"eng+deu"`` (``tesseract --list-langs``).
        psm: page-segmentation mode (3 = automatic, 4 = one column, 6 = one block, 11 = sparse text).
        min_height: pages shorter than this many pixels are upscaled by an integer factor first
            (Tesseract reads text of ~20–30 px best; boxes are mapped back to the given image), at most
            ×4 and to 16 M pixels (:func:`upscale_factor`).
        min_confidence: words below this confidence (0–100) are dropped.
        timeout: seconds per page before Tesseract is killed (a hostile page cannot hang a job).
        threads: OpenMP threads of the Tesseract process (``OMP_THREAD_LIMIT``). 0 leaves Tesseract's
            default, which ran 3× slower per page than 1 or 2 on the 2-core machine of
            docs/benchmarks.md (benchmarks/ocr.py).
    """

    lang: str = "eng"
    psm: int = 3
    min_height: int = 800
    min_confidence: float = 0.0
    timeout: float = 60.0
    threads: int = 1
    name = "tesseract"
    # Each page is its own Tesseract process: a document's pages run one per core, side by side.
    page_workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    def __post_init__(self):
        if shutil.which("tesseract") is None:
            raise OCRError("tesseract is not installed: apt-get install tesseract-ocr "
                           "(bash scripts/bootstrap.sh setup does it)")
        if not 0 <= self.psm <= 13:
            raise ValueError(f"Tesseract page-segmentation mode must be 0–13, got {self.psm}")

    def __call__(self, image: Image.Image) -> list[Word]:
        import pytesseract

        factor = upscale_factor(image.width, image.height, self.min_height)
        big = image.resize((image.width * factor, image.height * factor), Image.BICUBIC) if factor > 1 else image
        try:
            with _tesseract_env(**({"OMP_THREAD_LIMIT": str(self.threads)} if self.threads else {})):
                data = pytesseract.image_to_data(big, lang=self.lang, config=f"--psm {self.psm}",
                                                 output_type=pytesseract.Output.DICT, timeout=self.timeout)
        except pytesseract.TesseractError as e:
            if "Failed loading language" in str(e) or "Error opening data file" in str(e):
                raise OCRError(f"tesseract has no language {self.lang!r} (tesseract --list-langs; "
                               f"apt-get install tesseract-ocr-<lang>)") from e
            raise OCRError(f"tesseract failed: {e}") from e
        except RuntimeError as e:  # pytesseract's timeout (TesseractError is a RuntimeError too)
            if "timeout" in str(e).lower():
                raise OCRError(f"tesseract took longer than {self.timeout:g} s on a {image.width}×{image.height} page") from e
            raise
        words, lines, blocks = [], {}, {}
        for i, text in enumerate(data["text"]):
            conf = float(data["conf"][i])
            if data["level"][i] != 5 or not text.strip() or conf < self.min_confidence:
                continue
            block = blocks.setdefault(data["block_num"][i], len(blocks))
            line = lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), len(lines))
            x, y, w, h = (data[k][i] / factor for k in ("left", "top", "width", "height"))
            words.append(Word(text.strip(), (x, y, x + w, y + h), conf, line, block))
        return words


_ENV = threading.Condition()
_env_users: dict = {"key": None, "count": 0, "saved": None}


@contextlib.contextmanager
def _tesseract_env(**extra: str):
    """Run pytesseract's subprocess with ``extra`` environment variables, leaving this process's
    environment alone (pytesseract hands its module-level ``environ`` to ``subprocess.Popen``; an
    OMP_THREAD_LIMIT set in our own environment could also cap torch's OpenMP threads). Calls with
    the same ``extra`` run side by side; one with other values waits until they are done."""
    import pytesseract.pytesseract as impl

    key = tuple(sorted(extra.items()))
    with _ENV:
        while _env_users["count"] and _env_users["key"] != key:
            _ENV.wait()
        if _env_users["count"] == 0:
            _env_users.update(key=key, saved=impl.environ)
            impl.environ = {**os.environ, **extra}
        _env_users["count"] += 1
    try:
        yield
    finally:
        with _ENV:
            _env_users["count"] -= 1
            if _env_users["count"] == 0:
                impl.environ = _env_users["saved"]
                _ENV.notify_all()


@register_engine("rapidocr")
@dataclass
class RapidOCR(OCREngine):
    """RapidOCR (``rapidocr_onnxruntime``): text lines detected, each recognised with a box per
    character; words are the runs between recognised spaces.

    Args:
        min_height: pages shorter than this many pixels are upscaled by an integer factor first. Its
            recogniser drops the spaces between words set in small type (at the world's 11–14 px fonts,
            ×1 and ×2 read "Address:27OakStreet"; ×3 reads the spaces; benchmarks/ocr.py); at most ×4
            and to 16 M pixels (:func:`upscale_factor`).
        min_confidence: words below this confidence (0–100, the mean of their characters') are dropped.
        threads: ONNX Runtime threads per model.
    """

    min_height: int = 1200
    min_confidence: float = 0.0
    threads: int = 1
    name = "rapidocr"

    def __post_init__(self):
        try:
            from rapidocr_onnxruntime import RapidOCR as Engine
        except ImportError as e:
            raise OCRError("RapidOCR is not installed: pip install 'polymodal[rapidocr]' "
                           "(rapidocr_onnxruntime; its wheel carries the ONNX models)") from e
        self._engine = Engine(intra_op_num_threads=self.threads, inter_op_num_threads=1)

    def __call__(self, image: Image.Image) -> list[Word]:
        import numpy as np

        factor = upscale_factor(image.width, image.height, self.min_height)
        big = image.convert("RGB")
        if factor > 1:
            big = big.resize((image.width * factor, image.height * factor), Image.BICUBIC)
        result, _ = self._engine(np.ascontiguousarray(np.asarray(big)[:, :, ::-1]), return_word_box=True)
        words = []
        for line, (_, _, _, char_boxes, chars, char_scores) in enumerate(result or []):
            run: list[int] = []
            for i in range(len(chars) + 1):
                if i < len(chars) and chars[i].strip():
                    run.append(i)
                    continue
                if run:
                    pts = np.asarray([char_boxes[j] for j in run], np.float64).reshape(-1, 2) / factor
                    conf = 100.0 * float(np.mean([char_scores[j] for j in run]))
                    if conf >= self.min_confidence:
                        words.append(Word("".join(chars[j] for j in run), (*pts.min(0), *pts.max(0)), conf, line, 0))
                run = []
        return words
