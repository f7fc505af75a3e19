"""Documents with labels, in the field's formats: FUNSD (entities, word boxes, key→value links),
DocVQA (questions with answers) and folders of classes (RVL-CDIP style) — and the world's
documents in the same shape, so one training and scoring path serves both.

A :class:`DocumentExample` is one page: its words and pixel boxes in reading order, the page image,
and whichever labels the source has (entities + links, QA pairs with answer word spans, the class).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ENTITY_LABELS = ("header", "question", "answer")  # FUNSD's; its "other" words are tagged O
BIO = ("O", *(f"{p}-{label.upper()}" for label in ENTITY_LABELS for p in ("B", "I")))


class DocumentFormatError(ValueError):
    """An annotation file is not in the expected format; the message names the file and the field."""


@dataclass
class DocEntity:
    id: int
    label: str  # header | question | answer | other
    words: list[int]  # indices into DocumentExample.words, in order


@dataclass
class DocumentExample:
    words: list[str]
    boxes: np.ndarray  # [N, 4] float32 pixels (x0, y0, x1, y1) on ``image``
    width: int
    height: int
    image: np.ndarray | None = None  # [H, W, 3] uint8
    entities: list[DocEntity] = field(default_factory=list)
    links: list[tuple[int, int]] = field(default_factory=list)  # (question entity id, answer entity id)
    doc_class: str | None = None
    qa: list[dict] = field(default_factory=list)  # {"question", "answers": [str], "span": (first, last) word or None}
    name: str = ""
    lines: list[int] | None = None  # each word's line id (reading order), where the source has them
    attributes: dict = field(default_factory=dict)  # e.g. the world's {"layout", "stamped"}

    def bio_labels(self) -> list[int]:
        """One BIO tag id (into :data:`BIO`) per word: B on an entity's first word, I on the rest,
        O for "other" and words in no entity."""
        tags = [0] * len(self.words)
        for e in self.entities:
            if e.label in ENTITY_LABELS:
                for k, w in enumerate(e.words):
                    tags[w] = BIO.index(f"{'B' if k == 0 else 'I'}-{e.label.upper()}")
        return tags


# ----------------------------------------------------------------------------------------------- FUNSD

def read_funsd(annotation: str | Path, image: str | Path | None = None) -> DocumentExample:
    """A FUNSD annotation (``{"form": [{"id", "label", "words": [{"text", "box"}], "linking"}]}``)
    with its page image (default: ``../images/NAME.png`` beside ``annotations/``, as FUNSD ships)."""
    annotation = Path(annotation)
    try:
        data = json.loads(annotation.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DocumentFormatError(f"{annotation}: not a readable JSON file ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("form"), list):
        raise DocumentFormatError(f"{annotation}: expected FUNSD's {{\"form\": [entity, …]}}")
    words, boxes, entities, links = [], [], [], set()
    for n, item in enumerate(data["form"]):
        where = f"{annotation}: form[{n}]"
        try:
            label, eid = str(item["label"]).lower(), int(item["id"])
            entity = DocEntity(eid, label, [])
            for word in item.get("words", []):
                text, box = str(word["text"]), [float(v) for v in word["box"]]
                if len(box) != 4:
                    raise ValueError(f"box {word['box']} is not [x0, y0, x1, y1]")
                if not text.strip():
                    continue
                entity.words.append(len(words))
                words.append(text)
                boxes.append(box)
            links.update((int(a), int(b)) for a, b in item.get("linking", []))
        except (KeyError, TypeError, ValueError) as e:
            raise DocumentFormatError(f"{where}: {e!r}") from e
        if entity.words:
            entities.append(entity)
    by_id = {e.id: e for e in entities}
    links = [(a, b) for a, b in sorted(links) if a in by_id and b in by_id
             and by_id[a].label == "question" and by_id[b].label == "answer"]
    image_path = Path(image) if image is not None else _funsd_image(annotation)
    page = _read_page(image_path) if image_path is not None else None
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if page is not None:
        h, w = page.shape[:2]
    else:  # no image: the page is as large as its words reach
        w, h = (int(boxes[:, 2].max()) + 1, int(boxes[:, 3].max()) + 1) if len(boxes) else (1000, 1000)
    return DocumentExample(words, boxes, w, h, page, entities, links, data.get("doc_class"), [], annotation.stem)


def _funsd_image(annotation: Path) -> Path | None:
    for folder in (annotation.parent.parent / "images", annotation.parent):
        for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            if (folder / f"{annotation.stem}{suffix}").is_file():
                return folder / f"{annotation.stem}{suffix}"
    return None


def _read_page(path: Path) -> np.ndarray:
    from ..documents.reader import read_page_image

    return np.asarray(read_page_image(path))


def funsd_json(example: DocumentExample, entities: list[DocEntity] | None = None,
               links: list[tuple[int, int]] | None = None) -> dict:
    """FUNSD's JSON for ``example`` — its own labels, or predicted ``entities`` and ``links``."""
    entities = example.entities if entities is None else entities
    links = example.links if links is None else links
    linked: dict[int, list] = {}
    for q, a in links:
        linked.setdefault(q, []).append([q, a])
        linked.setdefault(a, []).append([q, a])
    form = []
    for e in entities:
        b = example.boxes[e.words]
        form.append({"id": e.id, "text": " ".join(example.words[i] for i in e.words), "label": e.label,
                     "box": [int(round(float(v))) for v in (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())],
                     "words": [{"text": example.words[i], "box": [int(round(float(v))) for v in example.boxes[i]]}
                               for i in e.words],
                     "linking": linked.get(e.id, [])})
    return {"form": form}


def read_funsd_folder(folder: str | Path) -> list[DocumentExample]:
    """Every ``annotations/*.json`` of a FUNSD-style folder (``images/`` beside it)."""
    folder = Path(folder)
    annotations = sorted((folder / "annotations").glob("*.json")) or sorted(folder.glob("*.json"))
    if not annotations:
        raise DocumentFormatError(f"{folder}: no FUNSD annotations (annotations/*.json)")
    return [read_funsd(a) for a in annotations]


# --------------------------------------------------------------------------------------------- answers

def normalize_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def find_answer_span(words: list[str], answers: list[str]) -> tuple[int, int] | None:
    """The first run of words whose text equals one of ``answers`` (case and spacing ignored), as
    (first, last) word indices; None when no answer is written on the page as words."""
    norm = [normalize_text(w) for w in words]
    for answer in answers:
        target = normalize_text(answer).split(" ")
        n = len(target)
        for i in range(len(norm) - n + 1):
            if norm[i:i + n] == target:
                return i, i + n - 1
    return None


def read_docvqa(path: str | Path) -> list[dict]:
    """DocVQA's JSON (``{"data": [{"questionId", "question", "image", "answers"}]}``) → rows with the
    image path resolved against the file's folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        rows = data["data"]
        return [{"id": r.get("questionId", i), "question": str(r["question"]), "answers": [str(a) for a in r.get("answers", [])],
                 "image": str((path.parent / r["image"]).resolve())} for i, r in enumerate(rows)]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DocumentFormatError(f"{path}: not DocVQA's {{\"data\": [{{question, image, answers}}]}} ({e!r})") from e


def docvqa_json(example: DocumentExample, name: str) -> list[dict]:
    """An example's QA pairs as DocVQA rows (image ``documents/NAME.png``)."""
    return [{"questionId": f"{name}-{k}", "question": p["question"], "answers": p["answers"],
             "image": f"documents/{name}.png"} for k, p in enumerate(example.qa)]


def page_image(example: DocumentExample) -> Image.Image:
    if example.image is None:
        return Image.new("RGB", (example.width, example.height), "white")
    return Image.fromarray(example.image)


# ------------------------------------------------------------------------------------ read by OCR

def ocr_example(path: str | Path, cache: str | Path | None = None, ocr=None, doc_class: str | None = None,
                name: str = "") -> DocumentExample:
    """A page file's first page read by OCR (or its PDF text layer) as an unlabelled example; with
    ``cache`` (a folder) the words are kept as ``SHA256.json`` there, so a second run reads no pixels
    twice. Raises :class:`~polymodal.documents.reader.DocumentReadError` naming a bad file."""
    import hashlib

    from ..documents.page import Word
    from ..documents.reader import read_document, read_page_image

    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cached = Path(cache) / f"{digest}.json" if cache is not None else None
    if cached is not None and cached.is_file():
        data = json.loads(cached.read_text())
        words = [Word(w["text"], tuple(w["box"])) for w in data["words"]]
        image = read_page_image(path)
        width, height = data["width"], data["height"]
        image = image.resize((width, height)) if image.size != (width, height) else image
    else:
        page = read_document(path, ocr=ocr, max_pages=1)[0]
        words, image, width, height = page.words, page.image, page.width, page.height
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({"width": width, "height": height,
                                          "words": [{"text": w.text, "box": list(w.box)} for w in words]}))
    boxes = np.asarray([w.box for w in words], np.float32).reshape(-1, 4)
    return DocumentExample([w.text for w in words], boxes, width, height, np.asarray(image), doc_class=doc_class,
                           name=name or path.stem)


def class_folders(root: str | Path) -> list[tuple[Path, str]]:
    """(file, class) for every page file under ``root/CLASS/`` (RVL-CDIP style), sorted."""
    from ..modalities.image import IMAGE_SUFFIXES

    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    files = [(f, c) for c in classes for f in sorted((root / c).rglob("*"))
             if f.is_file() and f.suffix.lower() in (*IMAGE_SUFFIXES, ".pdf")]
    if not files:
        raise DocumentFormatError(f"{root}: no CLASS/ folders with page files (PNG, JPEG, TIFF, PDF)")
    return files


def docvqa_examples(path: str | Path, cache: str | Path | None = None, ocr=None) -> list[DocumentExample]:
    """DocVQA questions grouped by page, each page read by OCR (cached), each answer located as a
    run of the page's words (``span`` None when the OCR'd words do not contain it)."""
    by_image: dict[str, list[dict]] = {}
    for row in read_docvqa(path):
        by_image.setdefault(row["image"], []).append(row)
    examples = []
    for image, rows in by_image.items():
        ex = ocr_example(image, cache, ocr)
        ex.qa = [{"question": r["question"], "answers": r["answers"], "span": find_answer_span(ex.words, r["answers"])}
                 for r in rows]
        examples.append(ex)
    return examples
