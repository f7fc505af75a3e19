"""OCR engines behind one interface: a page image → :class:`~polymodal.documents.page.Word` list.

The engine is a real one, not ours: Tesseract (Debian's ``tesseract-ocr``, installed by
``scripts/bootstrap.sh``) through ``pytesseract``. Engines register by name so that another (e.g.
RapidOCR) is a new class here, chosen with ``--ocr NAME``.
"""

from __future__ import annotations

import contextlib
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

    def __call__(self, image: Image.Image) -> list[Word]:
        """An RGB page image → its words in reading order, pixel boxes on ``image``."""
        raise NotImplementedError


def ocr_engine(name: str = "tesseract", **options) -> OCREngine:
    """The engine registered as ``name`` (options: e.g. ``lang``, ``psm``)."""
    if name not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    return ENGINES[name](**options)


@register_engine("tesseract")
@dataclass
class TesseractOCR(OCREngine):
    """Tesseract's word level (``image_to_data`` level 5).

    Args:
        lang: traineddata name(s), ``"eng"`` or ``"eng+deu"`` (``tesseract --list-langs``).
        psm: page-segmentation mode (3 = automatic, 4 = one column, 6 = one block, 11 = sparse text).
        min_height: pages shorter than this many pixels are upscaled by an integer factor first
            (Tesseract reads text of ~20–30 px best; boxes are mapped back to the given image).
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

    def __post_init__(self):
        if shutil.which("tesseract") is None:
            raise OCRError("tesseract is not installed: apt-get install tesseract-ocr "
                           "(bash scripts/bootstrap.sh setup does it)")
        if not 0 <= self.psm <= 13:
            raise ValueError(f"Tesseract page-segmentation mode must be 0–13, got {self.psm}")

    def __call__(self, image: Image.Image) -> list[Word]:
        import pytesseract

        factor = max(1, -(-self.min_height // max(image.height, 1))) if image.height < self.min_height else 1
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


_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _tesseract_env(**extra: str):
    """Run pytesseract's subprocess with ``extra`` environment variables, leaving this process's
    environment alone (pytesseract hands its module-level ``environ`` to ``subprocess.Popen``; an
    OMP_THREAD_LIMIT set in our own environment could also cap torch's OpenMP threads)."""
    import pytesseract.pytesseract as impl

    with _ENV_LOCK:
        saved = impl.environ
        impl.environ = {**os.environ, **extra}
        try:
            yield
        finally:
            impl.environ = saved
