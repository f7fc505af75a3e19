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

import numpy as np
from PIL import Image

from .cleanup import DEFAULT_STEPS, MAX_UPSCALE, STEPS, Cleaned, bounded_factor, clean, text_height
from .page import Word
from .reread import reread_weak_lines


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

    def read(self, image: Image.Image) -> tuple[list[Word], dict]:
        """The words and a report of how they were read (engines that choose per page say what)."""
        return self(image), {}


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


def upscale_factor(width: int, height: int, min_height: int) -> int:
    """The integer factor that brings a ``width`` × ``height`` page to ``min_height`` rows, within
    the bounds of :func:`~polymodal.documents.cleanup.bounded_factor` (1: leave it as it is)."""
    return 1 if height >= min_height else bounded_factor(width, height, min_height / max(height, 1))


# A first reading whose mean word confidence reaches this is kept; below it, psm 6 (one uniform block)
# and the page as given (no clean-up: the tesseract CLI's reading) are read too, and one of them
# replaces the first only with 5 % more words read at confidence ≥ 90 — the count that followed the
# words read right on benchmarks/ocr_real.py's photographed pages, where the summed confidences
# preferred readings full of junk (psm 6 reads a figure or the page's edges as words) — and a mean
# confidence at most 5 points lower. Tesseract's Sauvola binarisation lost on every page there, so it
# is not tried.
ACCEPT_CONFIDENCE = 85.0
CONFIDENT = 90.0
SWITCH_GAIN = 1.05
SWITCH_CONFIDENCE_DROP = 5.0
@dataclass
class Reading:
    """One Tesseract pass: its words (pixel boxes on the given page) and how it was made."""

    words: list[Word]
    psm: int
    steps: list[str]

    @property
    def confidence(self) -> float:
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0

    @property
    def confident_words(self) -> int:
        """Words with a letter or digit read at confidence ≥ :data:`CONFIDENT`: what the choice between
        readings compares."""
        return sum(w.confidence >= CONFIDENT and any(c.isalnum() for c in w.text) for w in self.words)

    def report(self) -> dict:
        return {"psm": self.psm, "steps": self.steps, "words": len(self.words),
                "confident_words": self.confident_words, "confidence": round(self.confidence, 1)}


@register_engine("tesseract")
@dataclass
class TesseractOCR(OCREngine):
    """Tesseract's word level (``image_to_data`` level 5), on a cleaned-up page, with the page
    segmentation chosen per page.

    Args:
        lang: traineddata name(s), ``"eng"`` or ``"eng+deu"`` (``tesseract --list-langs``).
        psm: page-segmentation mode (3 = automatic, 4 = one column, 6 = one block, 11 = sparse text),
            or ``"auto"``: read with 3 first; when the mean word confidence is under
            :data:`ACCEPT_CONFIDENCE`, also with 6, on the page as given (no clean-up) and, under 60,
            turned as Tesseract's orientation detection says; another reading replaces the first
            with 5 % more :attr:`Reading.confident_words` and a mean confidence at most 5 lower.
        clean: ``"auto"`` (the steps of :data:`~polymodal.documents.cleanup.DEFAULT_STEPS`, each applied
            where the page needs it), ``"off"`` (the page as given, as the ``tesseract`` CLI reads it)
            or a comma-separated list of steps (``"flatten,deskew"``). Boxes always refer to the page
            as given.
        upscale: ``"auto"`` (enlarge when the median glyph is under 10 px, at most ×4 and 16 M pixels),
            ``"off"``, or a whole factor (``"2"``).
        reread: ``"off"``, or a second engine (``"rapidocr"``) that reads again the lines Tesseract was
            unsure of (dot leaders, tables) and replaces those it reads with more confidence
            (:mod:`~polymodal.documents.reread`; off by default: benchmarks/ocr_real.py).
        min_confidence: words below this confidence (0–100) are dropped.
        timeout: seconds per Tesseract pass before it is killed (a hostile page cannot hang a job).
        threads: OpenMP threads of the Tesseract process (``OMP_THREAD_LIMIT``). 0 leaves Tesseract's
            default, which ran 3× slower per page than 1 or 2 on the 2-core machine of
            docs/benchmarks.md (benchmarks/ocr.py).
    """

    lang: str = "eng"
    psm: int | str = "auto"
    clean: str = "auto"
    upscale: str = "auto"
    reread: str = "off"
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
        if isinstance(self.psm, str) and self.psm != "auto":
            if not self.psm.isdigit():
                raise ValueError(f"Tesseract page-segmentation mode must be 'auto' or 0–13, got {self.psm!r}")
            self.psm = int(self.psm)
        if self.psm != "auto" and not 0 <= self.psm <= 13:
            raise ValueError(f"Tesseract page-segmentation mode must be 'auto' or 0–13, got {self.psm}")
        steps = {"auto": DEFAULT_STEPS, "off": ()}.get(self.clean)
        self._steps = tuple(steps if steps is not None else (s.strip() for s in self.clean.split(",") if s.strip()))
        unknown = sorted(set(self._steps) - set(STEPS))
        if unknown:
            raise ValueError(f"unknown clean-up step(s) {', '.join(unknown)}: --clean takes auto, off or a "
                             f"comma-separated list of {', '.join(STEPS)}")
        upscale = str(self.upscale)
        if upscale not in ("auto", "off") and not (upscale.isdigit() and 1 <= int(upscale) <= MAX_UPSCALE):
            raise ValueError(f"upscale must be 'auto', 'off' or a whole factor 1–{MAX_UPSCALE}, got {self.upscale!r}")
        if upscale != "auto":
            self._steps = tuple(s for s in self._steps if s != "upscale")
        self._factor = int(upscale) if upscale.isdigit() else 1
        if self.reread not in ("off", *(name for name in ENGINES if name != self.name)):
            raise ValueError(f"reread must be 'off' or another OCR engine ({', '.join(n for n in ENGINES if n != self.name)}), "
                             f"got {self.reread!r}")
        self._second = None if self.reread == "off" else ocr_engine(self.reread)

    def __call__(self, image: Image.Image) -> list[Word]:
        return self.read(image)[0]

    def read(self, image: Image.Image) -> tuple[list[Word], dict]:
        """An RGB page image → its words (boxes on ``image``) and a report of how they were read:
        the clean-up steps, the page segmentation and binarisation chosen, and the passes tried."""
        page = self._prepared(image, self._steps)
        first = self._reading(image, page, 3 if self.psm == "auto" else self.psm)
        tried, best = [first], first
        if self.psm == "auto" and first.confidence < ACCEPT_CONFIDENCE and (first.words or text_height(page.image)):
            alternatives = [(page, 6)]
            if page.steps:  # the page as given, as the tesseract CLI reads it, stays a candidate
                alternatives.append((self._prepared(image, ()), 3))
            tried += [r for r in (self._alternative(image, *a) for a in alternatives) if r is not None]
            if max(r.confidence for r in tried) < 60:
                turned = self._turned(page)
                if turned is not None and (reading := self._alternative(image, turned, 3)) is not None:
                    tried.append(reading)
            for reading in tried[1:]:
                if (reading.confident_words > SWITCH_GAIN * best.confident_words
                        and reading.confidence >= best.confidence - SWITCH_CONFIDENCE_DROP):
                    best = reading
        report = {**best.report(), "tried": [r.report() for r in tried]}
        words = best.words
        if self._second is not None:
            words, report["reread_lines"] = reread_weak_lines(image, words, self._second)
        return [w for w in words if w.confidence >= self.min_confidence], report

    def _prepared(self, image: Image.Image, steps) -> Cleaned:
        page = clean(image, steps)
        if self._factor > 1:
            f = bounded_factor(*page.image.shape[::-1], self._factor)
            h, w = page.image.shape
            page = page.then(np.asarray(Image.fromarray(page.image).resize((w * f, h * f), Image.BICUBIC)),
                             f"upscale ×{f}", np.diag([f, f, 1.0]))
        return page

    def _turned(self, page: Cleaned) -> Cleaned | None:
        """The page turned upright as Tesseract's orientation detection (OSD) says, or None when it
        finds it upright or cannot tell."""
        import pytesseract

        try:
            with _tesseract_env(**self._env()):
                osd = pytesseract.image_to_osd(Image.fromarray(page.image), output_type=pytesseract.Output.DICT,
                                               timeout=self.timeout)
        except (pytesseract.TesseractError, RuntimeError):  # too few characters to tell
            return None
        turn = int(osd.get("rotate", 0)) % 360
        if turn == 0 or float(osd.get("orientation_conf", 0)) < 1.0:
            return None
        h, w = page.image.shape
        k = turn // 90  # OSD's "rotate" is clockwise; np.rot90 turns counter-clockwise
        turned = np.ascontiguousarray(np.rot90(page.image, -k))
        # pixel (x, y) of the page lands at: 90° cw → (h − y, x); 180° → (w − x, h − y); 270° cw → (y, w − x)
        forward = {1: [[0, -1, h], [1, 0, 0]], 2: [[-1, 0, w], [0, -1, h]], 3: [[0, 1, 0], [-1, 0, w]]}[k]
        return page.then(turned, f"turn {turn}°", np.vstack([np.asarray(forward, np.float64), [0, 0, 1]]))

    def _alternative(self, image: Image.Image, page: Cleaned, psm: int) -> Reading | None:
        """Another reading of the page, or None where Tesseract refuses it; the first reading's errors
        are the ones reported."""
        try:
            return self._reading(image, page, psm)
        except OCRError:
            return None

    def _env(self) -> dict:
        return {"OMP_THREAD_LIMIT": str(self.threads)} if self.threads else {}

    def _reading(self, image: Image.Image, page: Cleaned, psm: int) -> Reading:
        """One Tesseract pass over ``page`` (cleaned from ``image``), boxes mapped back onto ``image``."""
        import pytesseract

        config = f"--psm {psm}"
        try:
            with _tesseract_env(**self._env()):
                data = pytesseract.image_to_data(Image.fromarray(page.image), lang=self.lang, config=config,
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
        keep = [i for i, text in enumerate(data["text"]) if data["level"][i] == 5 and text.strip()]
        boxes = page.boxes_to_source(
            [[data["left"][i], data["top"][i], data["left"][i] + data["width"][i], data["top"][i] + data["height"][i]]
             for i in keep], image.size)
        words, lines, blocks = [], {}, {}
        for i, box in zip(keep, boxes):
            block = blocks.setdefault(data["block_num"][i], len(blocks))
            line = lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), len(lines))
            words.append(Word(data["text"][i].strip(), tuple(float(v) for v in box), float(data["conf"][i]), line, block))
        return Reading(words, psm, page.steps)


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
