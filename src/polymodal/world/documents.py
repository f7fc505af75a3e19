"""Documents: invoices, receipts, forms, ID cards and letters rendered with real fonts (the DejaVu
TrueType files matplotlib ships), with word boxes, line ids, FUNSD-style entities (header /
question / answer / other) and key→value links, the document class and extractive QA pairs.

Two layouts: ``inline`` (each value right after its key, read line by line) and, for forms and ID
cards half of the time, ``columns`` — keys in one column, values in another, some left blank, and
the words in the order a reader of columns gives them (every key, then every value): which value
belongs to which key is then told by the page's geometry, not by the order of the words. Half the
pages carry a rubber stamp (a red graphic, no words) that only the image shows."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..data.documents import DocEntity, DocumentExample
from .scene import SPLITS, sample_rng

DOC_CLASSES = ("invoice", "receipt", "form", "id_card", "letter")
PAGE = (320, 400)  # width, height in pixels
MARGIN = 16
FIRST = ("Anna", "Ben", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena")
LAST = ("Smith", "Novak", "Garcia", "Okafor", "Berg", "Tanaka", "Rossi", "Kowalski", "Silva", "Moreau")
COMPANIES = ("Acme Corp", "Blue River Ltd", "Northwind", "Orbit Supplies", "Kestrel & Sons", "Polar Foods")
STREETS = ("Oak Street", "Mill Lane", "Harbour Road", "Station Square", "Elm Avenue", "King Street")
ITEMS = ("Paper", "Pens", "Coffee", "Cables", "Lamp", "Chair", "Stapler", "Ink", "Tape", "Folder")


@dataclass
class Entity:
    id: int
    label: str  # header | question | answer | other
    text: str
    box: tuple[float, float, float, float]
    words: list[int] = field(default_factory=list)  # indices into Document.words


@dataclass
class Document:
    doc_class: str
    image: np.ndarray  # [H, W, 3] uint8
    words: list[str]
    boxes: np.ndarray  # [N, 4] float32, (x0, y0, x1, y1) pixels
    line_ids: np.ndarray  # [N] int64
    entities: list[Entity]
    links: list[tuple[int, int]]  # (question entity id, answer entity id)
    qa: list[dict]  # {"question", "answer", "answer_entity"}
    layout: str = "inline"  # "inline" or "columns"
    stamped: bool = False  # a red "paid"/"received" stamp drawn on the page (pixels only)


@lru_cache
def font(bold: bool = False, size: int = 11) -> ImageFont.FreeTypeFont:
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name), size)


def _person(rng) -> str:
    return f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"


def _date(rng) -> str:
    return f"{rng.integers(1, 29):02d}.{rng.integers(1, 13):02d}.{rng.integers(2019, 2027)}"


def _address(rng) -> str:
    return f"{rng.integers(1, 200)} {STREETS[rng.integers(len(STREETS))]}"


def _content(doc_class: str, rng) -> list[tuple[str, list]]:
    """The page as lines: ("header", text) | ("kv", key, value, question) | ("other", text)."""
    if doc_class == "invoice":
        items = [(ITEMS[k], int(rng.integers(1, 9)), float(rng.integers(2, 90))) for k in rng.permutation(len(ITEMS))[:3]]
        total = sum(q * p for _, q, p in items)
        return [("header", "INVOICE"), ("other", COMPANIES[rng.integers(len(COMPANIES))]),
                ("kv", "Invoice No:", f"INV-{rng.integers(1000, 9999)}", "What is the invoice number?"),
                ("kv", "Date:", _date(rng), "When was the invoice issued?"),
                ("kv", "Bill To:", _person(rng), "Who is the invoice billed to?"),
                *[("other", f"{name} x{q} {p:.2f}") for name, q, p in items],
                ("kv", "Total:", f"{total:.2f}", "What is the total?")]
    if doc_class == "receipt":
        items = [(ITEMS[k], float(rng.integers(1, 30))) for k in rng.permutation(len(ITEMS))[:4]]
        return [("header", COMPANIES[rng.integers(len(COMPANIES))].upper()), ("kv", "Date:", _date(rng), "What is the date?"),
                *[("other", f"{name} {p:.2f}") for name, p in items],
                ("kv", "Total:", f"{sum(p for _, p in items):.2f}", "How much was paid?"),
                ("kv", "Paid by:", ("Card", "Cash")[rng.integers(2)], "How was it paid?")]
    if doc_class == "form":
        return [("header", "APPLICATION FORM"), ("kv", "Name:", _person(rng), "What is the applicant's name?"),
                ("kv", "Address:", _address(rng), "What is the address?"),
                ("kv", "Phone:", f"0{rng.integers(100, 999)} {rng.integers(100000, 999999)}", "What is the phone number?"),
                ("kv", "Date of birth:", _date(rng), "When was the applicant born?"),
                ("other", "Please sign below.")]
    if doc_class == "id_card":
        return [("header", "IDENTITY CARD"), ("kv", "Name:", _person(rng), "Whose card is this?"),
                ("kv", "Born:", _date(rng), "What is the date of birth?"),
                ("kv", "ID:", f"{rng.integers(10, 99)}-{rng.integers(100000, 999999)}", "What is the ID number?"),
                ("kv", "Expires:", _date(rng), "When does the card expire?")]
    if doc_class == "letter":
        sender, reader = _person(rng), _person(rng)
        return [("other", sender), ("other", _address(rng)), ("kv", "Date:", _date(rng), "When was the letter written?"),
                ("kv", "Subject:", ("Order", "Meeting", "Payment", "Delivery")[rng.integers(4)], "What is the subject?"),
                ("other", f"Dear {reader},"), ("other", "thank you for your message of last week."),
                ("other", "We will reply in full shortly."), ("other", "Sincerely,"), ("other", sender)]
    raise ValueError(f"unknown document class {doc_class!r}; known: {DOC_CLASSES}")


def render_document(seed: int, split: str, index: int, doc_class: str | None = None) -> Document:
    """Document ``index`` of ``split``: a pure function of (seed, split, index)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
    rng = sample_rng(seed, split, index, "document")
    doc_class = doc_class or DOC_CLASSES[rng.integers(len(DOC_CLASSES))]
    page = Image.new("RGB", PAGE, (250, 250, 247))
    draw = ImageDraw.Draw(page)
    words, boxes, line_ids, entities, links, qa = [], [], [], [], [], []
    y = MARGIN + int(rng.integers(0, 12))
    indent = MARGIN + int(rng.integers(0, 20))
    content = _content(doc_class, rng)
    columns = doc_class in ("form", "id_card") and bool(rng.integers(2))
    stamped = bool(rng.integers(2))

    def put(text: str, x: float, y: float, label: str, line: int, bold: bool = False) -> tuple[Entity, float]:
        f = font(bold, 14 if label == "header" else 11)
        ids = []
        for word in text.split(" "):
            x0, y0, x1, y1 = draw.textbbox((x, y), word, font=f)
            draw.text((x, y), word, font=f, fill=(20, 20, 30))
            ids.append(len(words))
            words.append(word)
            boxes.append((math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)))  # whole pixels, outward
            line_ids.append(line)
            x = x1 + f.getlength(" ")
        b = np.array([boxes[i] for i in ids])
        entity = Entity(len(entities), label, text, (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()), ids)
        entities.append(entity)
        return entity, x

    rows = []  # columns layout: (key entity, value text, question, y, line) filled after all keys
    for line, (kind, *parts) in enumerate(content):
        if kind == "kv":
            key, value, question = parts
            k, x = put(key, indent, y, "question", line, bold=True)
            if columns:
                rows.append((k, value, question, y, line))
            else:
                v, _ = put(value, x + 6, y, "answer", line)
                links.append((k.id, v.id))
                qa.append({"question": question, "answer": value, "answer_entity": v.id})
        else:
            put(parts[0], indent, y, "header" if kind == "header" else "other", line, bold=kind == "header")
        y += 26 if kind == "header" else 20 + int(rng.integers(0, 5))
    if rows:
        column = indent + 8 + max(e.box[2] for e, *_ in rows) - indent + int(rng.integers(0, 30))
        for k, value, question, row_y, line in rows:
            if rng.random() < 0.2:
                continue  # a blank field: a key without a value
            v, _ = put(value, column, row_y, "answer", line)
            links.append((k.id, v.id))
            qa.append({"question": question, "answer": value, "answer_entity": v.id})
    if stamped:
        _stamp(draw, rng, y)
    return Document(doc_class, np.asarray(page), words, np.asarray(boxes, np.float32).reshape(-1, 4),
                    np.asarray(line_ids, np.int64), entities, links, qa, "columns" if columns else "inline", stamped)


def _stamp(draw: ImageDraw.ImageDraw, rng, below: float) -> None:
    """A red rubber stamp — ring, inner ring and two bars, no letters — in the free space under the
    text (red is bright in its own channel: the words' dark-ink test never sees it)."""
    r = int(rng.integers(26, 36))
    cx = int(rng.integers(MARGIN + r, PAGE[0] - MARGIN - r))
    cy = int(rng.integers(min(int(below) + r + 4, PAGE[1] - MARGIN - r), PAGE[1] - MARGIN - r + 1))
    red = (205, 40, 45)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=red, width=4)
    draw.ellipse((cx - r + 8, cy - r + 8, cx + r - 8, cy + r - 8), outline=red, width=2)
    draw.rectangle((cx - r + 6, cy - 7, cx + r - 6, cy - 3), fill=red)
    draw.rectangle((cx - r + 6, cy + 3, cx + r - 6, cy + 7), fill=red)


def funsd(doc: Document) -> dict:
    """The document's annotation in FUNSD's JSON layout ({"form": [entity, …]})."""
    linked: dict[int, list] = {}
    for q, a in doc.links:
        linked.setdefault(q, []).append([q, a])
        linked.setdefault(a, []).append([q, a])
    return {"form": [{"id": e.id, "text": e.text, "label": e.label, "box": [int(round(v)) for v in e.box],
                      "words": [{"text": doc.words[i], "box": doc.boxes[i].round().astype(int).tolist()} for i in e.words],
                      "linking": linked.get(e.id, [])} for e in doc.entities],
            "doc_class": doc.doc_class}


def from_world(doc, name: str = "") -> DocumentExample:
    """A :class:`~polymodal.world.documents.Document` as an example (ground-truth words)."""
    entities = [DocEntity(e.id, e.label, list(e.words)) for e in doc.entities]
    by_id = {e.id: e for e in entities}
    qa = [{"question": p["question"], "answers": [p["answer"]],
           "span": (by_id[p["answer_entity"]].words[0], by_id[p["answer_entity"]].words[-1])} for p in doc.qa]
    h, w = doc.image.shape[:2]
    return DocumentExample(list(doc.words), doc.boxes.astype(np.float32), w, h, doc.image, entities,
                           list(doc.links), doc.doc_class, qa, name, doc.line_ids.tolist(),
                           {"layout": doc.layout, "stamped": doc.stamped})


def world_documents(split: str, n: int, seed: int = 0) -> list[DocumentExample]:
    """``n`` world documents of ``split`` (all five classes, ground-truth words and labels)."""
    return [from_world(render_document(seed, split, i), f"{split}-{i}") for i in range(n)]
