"""The document tasks through the one training loop: key–value extraction (``doc_entities``),
extractive QA (``doc_qa``) and classification (``doc_classify``) with a LayoutLMv2/v3 trunk, on the
document pages a source gives (the world's, FUNSD, DocVQA, class folders); scored on validation
pages with ground-truth words and, with ``data.ocr: tesseract``, also on the words Tesseract reads
from the same pages.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.documents import BIO, DocumentExample, page_image
from ..documents.page import normalize_boxes
from ..documents.processor import DocumentProcessor, default_tokenizer
from ..eval.documents import anls, confusion_matrix, f1, plot_confusion
from ..models.document_tasks import DocumentTaskConfig
from ..objectives import Objective
from ..objectives.documents import DocumentClassification, EntityTagging, SpanExtraction
from ..registry import build, preset
from ..tasks.documents import DocumentModel, DocumentPage, save_labels
from .config import ConfigError, RunConfig
from .data import batch_indices
from .kinds import TrainKind, register_kind


def trunk_config(cfg: RunConfig, vocab_size: int):
    """The preset's LayoutLM config with the run's ablations (``model.layout_2d``, ``model.visual_tokens``)."""
    c = preset(cfg.model.preset)
    if type(c).__name__ not in ("LayoutLMv2Config", "LayoutLMv3Config"):
        raise ConfigError(f"model.preset {cfg.model.preset!r} is not a LayoutLMv2/v3 preset; "
                          f"objective.kind {cfg.objective.kind} trains one")
    c.bert.vocab_size = vocab_size
    if not cfg.model.layout_2d:
        c.layout.box_embeddings = c.layout.relative_2d = False
    c.visual_tokens = cfg.model.visual_tokens
    return c


def start_from(model: nn.Module, folder: str) -> None:
    """Fill ``model``'s trunk from a saved document model (e.g. a ``doc_pretrain`` run's ``model``)
    of the same trunk architecture; its heads stay behind."""
    from ..weights import load_checkpoint

    source = load_checkpoint(folder)
    if not hasattr(source, "trunk") or source.config.trunk != model.config.trunk:
        raise ConfigError(f"model.init_from {folder} is not a document model with this run's trunk "
                          "(model.preset, its ablations and the tokenizer's vocabulary must match)")
    model.trunk.load_state_dict(source.trunk.state_dict())


def _pad(rows: list[torch.Tensor], value) -> torch.Tensor:
    n = max(r.shape[0] for r in rows)
    out = torch.full((len(rows), n, *rows[0].shape[1:]), value, dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, :r.shape[0]] = r
    return out


class DocumentKind(TrainKind):
    """What the three document kinds share: the pages, the tokenizer and processor, the model."""

    task = "?"
    examples = "document_pages"
    reads = ("tokenizer", "ocr", "ocr_n", "box_jitter")

    def load_data(self) -> None:
        d = self.cfg.data
        tok = default_tokenizer()
        if d.tokenizer:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(Path(d.tokenizer) / "tokenizer.json"))
        self.trunk = trunk_config(self.cfg, tok.get_vocab_size())
        self.processor = DocumentProcessor.for_model(self.trunk, tok)
        self.train = self.load_examples("train")
        self.know(self.train)
        self.rows = [row for i, ex in enumerate(self.train) for row in self.encode(ex, i)]
        if not self.rows:
            raise ConfigError(f"objective.kind {self.cfg.objective.kind}: the training pages gave no examples")
        self.pages = torch.stack([self.processor.page_uint8(page_image(ex)) for ex in self.train]) \
            if self.trunk.visual_tokens else None

    def know(self, train: list[DocumentExample]) -> None:
        """Learn what the training pages fix before they are encoded (the classifier's classes)."""

    def build_model(self) -> nn.Module:
        model = build(DocumentTaskConfig(self.trunk, self.task, len(self.labels)))
        if self.cfg.model.init_from:
            start_from(model, self.cfg.model.init_from)
        return model

    def encode(self, example: DocumentExample, index: int) -> list[dict]:
        raise NotImplementedError

    def batch_rows(self, step: int) -> tuple[dict, list[dict]]:
        """The model inputs of global batch ``step`` (this rank's rows) and the rows themselves."""
        t = self.cfg.train
        idx, _ = batch_indices(step, t.batch_size, len(self.rows), t.seed)
        rows = [self.rows[i] for i in self.rank_slice(idx).tolist()]
        out = self.collate(rows, self.pages)
        if self.cfg.data.box_jitter:
            g = torch.Generator().manual_seed(t.seed * 7919 + step)
            out["boxes"] = jitter_boxes(out["boxes"], _pad([r["words"] for r in rows], -1), self.cfg.data.box_jitter, g)
        return out, rows

    def collate(self, rows: list[dict], pages: torch.Tensor | None) -> dict:
        """Rows → padded ``ids`` / ``attention_mask`` (/ ``token_type_ids``) [B, L], ``boxes`` [B, L, 4] and, from ``pages``
        (uint8 [N, 3, S, S], indexed by each row's ``page``), ``image`` [B, 3, S, S]."""
        out = {"ids": _pad([r["ids"] for r in rows], self.processor.specials.pad),
               "boxes": _pad([r["boxes"] for r in rows], 0),
               "attention_mask": _pad([torch.ones_like(r["ids"]) for r in rows], 0)}
        if "types" in rows[0]:
            out["token_type_ids"] = _pad([r["types"] for r in rows], 0)
        if pages is not None:
            out["image"] = self.processor.pixels(pages[[r["page"] for r in rows]])
        return out

    def save(self, folder: Path) -> None:
        self.processor.save(folder)
        save_labels(folder, self.task, self.labels)

    def document_model(self, model: nn.Module) -> DocumentModel:
        return DocumentModel(model, self.processor, self.labels)

    @cached_property
    def val(self) -> list[DocumentExample]:
        return self.load_examples("val")

    def ocr_pages(self) -> list[tuple[DocumentExample, DocumentPage]]:
        """The first ``data.ocr_n`` validation pages as Tesseract reads them (words, boxes)."""
        from ..documents.ocr import ocr_engine

        engine = ocr_engine("tesseract")
        out = []
        for ex in self.val[:self.cfg.data.ocr_n]:
            image = page_image(ex)
            words = engine(image)
            boxes = np.asarray([w.box for w in words], np.float32).reshape(-1, 4)
            out.append((ex, DocumentPage([w.text for w in words], boxes, ex.width, ex.height, image)))
        return out


def _row(window, batch, k: int, page: int) -> dict:
    n = len(window.ids)
    row = {"ids": batch["ids"][k, :n], "boxes": batch["boxes"][k, :n], "words": batch["word_ids"][k, :n], "page": page}
    if "token_type_ids" in batch:
        row["types"] = batch["token_type_ids"][k, :n]
    return row


def jitter_boxes(boxes: torch.Tensor, words: torch.Tensor, amount: int, g: torch.Generator) -> torch.Tensor:
    """Move every word's box edges by independent uniform offsets in [−amount, amount] grid units —
    the same for all of a word's tokens ([B, L] word ids, −1 for specials, which stay put) — clamped
    to the page with x1 ≥ x0, y1 ≥ y0. Boxes from another OCR engine or annotator differ by a few
    pixels; a model trained on exact boxes links keys to values by exact coordinates."""
    b = words.shape[0]
    noise = torch.randint(-amount, amount + 1, (b, int(words.max().clamp(min=0)) + 1, 4), generator=g)  # per (row, word)
    per_token = noise[torch.arange(b)[:, None], words.clamp(min=0)]
    moved = (boxes + torch.where(words[..., None] >= 0, per_token, 0)).clamp(0, 1000)
    moved[..., 2] = torch.maximum(moved[..., 2], moved[..., 0])
    moved[..., 3] = torch.maximum(moved[..., 3], moved[..., 1])
    return moved


# -------------------------------------------------------------------------------------- entities

@register_kind("doc_entities")
class EntityKind(DocumentKind):
    """BIO tags of header / question / answer entities and key→value links (FUNSD)."""

    task = "entities"
    labels = list(BIO)

    def encode(self, ex: DocumentExample, index: int) -> list[dict]:
        grid = normalize_boxes(ex.boxes, ex.width, ex.height)
        windows, batch = self.processor.encode(ex.words, grid, None)
        bio = ex.bio_labels()
        role_of = {e.id: {"question": 1, "answer": 2}.get(e.label, 0) for e in ex.entities}
        rows = []
        for k, w in enumerate(windows):
            row = _row(w, batch, k, index)
            row["tags"] = torch.tensor([bio[wid] if first else -100 for wid, first in zip(w.word_ids, w.first)])
            first_token = {wid: t for t, (wid, first) in enumerate(zip(w.word_ids, w.first)) if first}
            present = [e for e in ex.entities if e.words[0] in first_token]
            slot = {e.id: i for i, e in enumerate(present)}
            row["entity_tokens"] = torch.tensor([first_token[e.words[0]] for e in present], dtype=torch.long)
            row["entity_role"] = torch.tensor([role_of[e.id] for e in present], dtype=torch.long)
            links = torch.zeros(len(present), len(present))
            for q, a in ex.links:
                if q in slot and a in slot:
                    links[slot[q], slot[a]] = 1
            row["links"] = links
            rows.append(row)
        return rows

    def objective(self, model: nn.Module) -> Objective:
        return EntityTagging()

    def batch(self, step: int) -> dict:
        out, rows = self.batch_rows(step)
        out["tags"] = _pad([r["tags"] for r in rows], -100)
        e = max(max(len(r["entity_tokens"]) for r in rows), 1)
        out["entity_tokens"] = torch.full((len(rows), e), -1, dtype=torch.long)
        out["entity_role"] = torch.zeros(len(rows), e, dtype=torch.long)
        out["links"] = torch.zeros(len(rows), e, e)
        for i, r in enumerate(rows):
            m = len(r["entity_tokens"])
            out["entity_tokens"][i, :m] = r["entity_tokens"]
            out["entity_role"][i, :m] = r["entity_role"]
            out["links"][i, :m, :m] = r["links"]
        return out

    def evaluate(self, model: nn.Module) -> dict:
        doc = self.document_model(model)
        gold = [(ex, DocumentPage.of(ex)) for ex in self.val]
        result = {f"val_{k}": v for k, v in score_entities(doc, gold).items()}
        if self.cfg.data.ocr == "tesseract":
            result.update({f"val_ocr_{k}": v for k, v in score_entities(doc, self.ocr_pages()).items()})
        result["val_pages"] = len(self.val)
        return result


def _keyed(items) -> set:
    """Items (hashable) → a set that keeps duplicates apart: (item, occurrence)."""
    seen: Counter = Counter()
    out = set()
    for item in items:
        out.add((item, seen[item]))
        seen[item] += 1
    return out


def score_entities(doc: DocumentModel, pages: list[tuple[DocumentExample, DocumentPage]]) -> dict:
    """Entity and link F1 over pages, matching by label and text (so pages read by OCR are scored
    against the ground truth the same way): an entity is (label, its words' text), a link (question
    text, answer text)."""
    pred_e, gold_e, pred_l, gold_l = set(), set(), set(), set()
    for n, (ex, page) in enumerate(pages):
        out = doc.extract(page)
        text_of = {e["id"]: e["text"].lower() for e in out["entities"]}
        pred_e |= {(n, k) for k in _keyed((e["label"], e["text"].lower()) for e in out["entities"])}
        pred_l |= {(n, k) for k in _keyed((text_of[link["question"]], text_of[link["answer"]]) for link in out["links"])}
        gold_text = {e.id: " ".join(ex.words[i] for i in e.words).lower() for e in ex.entities}
        gold_e |= {(n, k) for k in _keyed((e.label, gold_text[e.id]) for e in ex.entities if e.label != "other")}
        gold_l |= {(n, k) for k in _keyed((gold_text[q], gold_text[a]) for q, a in ex.links)}
    ents, links = f1(pred_e, gold_e), f1(pred_l, gold_l)
    return {"entity_f1": ents["f1"], "entity_precision": ents["precision"], "entity_recall": ents["recall"],
            "link_f1": links["f1"]}


# -------------------------------------------------------------------------------------------- qa

@register_kind("doc_qa")
class QAKind(DocumentKind):
    """Extractive QA: the answer's first and last token; scored by ANLS and exact match."""

    task = "qa"
    labels = ["span"]

    def encode(self, ex: DocumentExample, index: int) -> list[dict]:
        grid = normalize_boxes(ex.boxes, ex.width, ex.height)
        rows = []
        for pair in ex.qa:
            if pair.get("span") is None:
                continue
            first, last = pair["span"]
            windows, batch = self.processor.encode(ex.words, grid, None, pair["question"])
            for k, w in enumerate(windows):
                starts = [t for t, (wid, f) in enumerate(zip(w.word_ids, w.first)) if wid == first and f]
                ends = [t for t, wid in enumerate(w.word_ids) if wid == last]
                row = _row(w, batch, k, index)
                row["start"], row["end"] = (starts[0], ends[-1]) if starts and ends else (0, 0)
                rows.append(row)
        return rows

    def objective(self, model: nn.Module) -> Objective:
        return SpanExtraction()

    def batch(self, step: int) -> dict:
        out, rows = self.batch_rows(step)
        out["start"] = torch.tensor([r["start"] for r in rows])
        out["end"] = torch.tensor([r["end"] for r in rows])
        return out

    def evaluate(self, model: nn.Module) -> dict:
        doc = self.document_model(model)
        result = {f"val_{k}": v for k, v in score_qa(doc, [(ex, DocumentPage.of(ex)) for ex in self.val]).items()}
        if self.cfg.data.ocr == "tesseract":
            result.update({f"val_ocr_{k}": v for k, v in score_qa(doc, self.ocr_pages()).items()})
        return result


def score_qa(doc: DocumentModel, pages: list[tuple[DocumentExample, DocumentPage]]) -> dict:
    scores, exact = [], []
    for ex, page in pages:
        for pair in ex.qa:
            answer = doc.ask(page, pair["question"])["answer"]
            scores.append(anls(answer, pair["answers"]))
            exact.append(float(answer.lower() in [a.lower() for a in pair["answers"]]))
    n = max(len(scores), 1)
    return {"anls": sum(scores) / n, "exact_match": sum(exact) / n, "questions": len(scores)}


# ------------------------------------------------------------------------------------- classify

@register_kind("doc_classify")
class ClassifyKind(DocumentKind):
    """The document's class (invoice, receipt, form, ID card, letter); accuracy and a confusion matrix."""

    task = "classify"

    def know(self, train) -> None:
        """The classes: stamped or not, else those the source names, else the training pages' own."""
        self.stamp = self.cfg.objective.label == "stamp"
        if self.stamp:
            self.labels = ["plain", "stamped"]
        else:
            self.labels = getattr(train, "classes", None) or sorted({ex.doc_class for ex in train if ex.doc_class})

    def label_of(self, ex: DocumentExample) -> str:
        if self.stamp:
            if "stamped" not in ex.attributes:
                raise ConfigError(f"objective.label stamp: document {ex.name} says nothing about stamps (world pages do)")
            return self.labels[int(ex.attributes["stamped"])]
        if ex.doc_class not in self.labels:
            raise ConfigError(f"document {ex.name} has class {ex.doc_class!r}, not one of {self.labels}")
        return ex.doc_class

    def encode(self, ex: DocumentExample, index: int) -> list[dict]:
        grid = normalize_boxes(ex.boxes, ex.width, ex.height)
        windows, batch = self.processor.encode(ex.words, grid, None)
        return [{**_row(windows[0], batch, 0, index), "label": self.labels.index(self.label_of(ex))}]

    def objective(self, model: nn.Module) -> Objective:
        return DocumentClassification(self.cfg.objective.label_smoothing)

    def batch(self, step: int) -> dict:
        out, rows = self.batch_rows(step)
        out["labels"] = torch.tensor([r["label"] for r in rows])
        return out

    def evaluate(self, model: nn.Module) -> dict:
        doc = self.document_model(model)
        predicted = [self.labels.index(doc.classify(DocumentPage.of(ex))["class"]) for ex in self.val]
        gold = [self.labels.index(self.label_of(ex)) for ex in self.val]
        matrix = confusion_matrix(predicted, gold, len(self.labels))
        if self.out is not None and self.rank == 0:
            plot_confusion(matrix, self.labels, self.out / "confusion.png", "validation")
        majority = Counter(self.label_of(ex) for ex in self.train).most_common(1)[0][0]
        return {"val_accuracy": sum(p == g for p, g in zip(predicted, gold)) / len(gold),
                "val_majority_class_accuracy": sum(self.label_of(ex) == majority for ex in self.val) / len(self.val),
                "val_confusion": matrix}
