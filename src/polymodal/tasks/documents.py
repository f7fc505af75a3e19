"""Using a trained document model (a LayoutLM task model folder): key–value extraction, questions,
classes — on words and boxes from any source (ground truth, OCR, a PDF's text layer).

A model folder holds ``model.safetensors`` + ``config.json`` (the :class:`DocumentTaskModel`), the
:class:`~polymodal.documents.processor.DocumentProcessor` (tokenizer and image handling) and
``labels.json`` (the BIO tags or the class names). A Hugging Face LayoutLM task model's folder
(weights/hf_layoutlm_tasks.py) works too: its ``tokenizer.json`` and its config's ``id2label`` stand in
for the last two, and the windows are framed as its processor frames them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from ..data.documents import BIO, DocEntity
from ..documents.page import normalize_boxes
from ..documents.processor import LABELS_FILE, PROCESSOR_FILE, TOKENIZER_FILE, DocumentProcessor
from ..documents.windows import best_token_per_word, merge_word_logits
from ..models.document_tasks import DocumentTaskModel

WINDOW_BATCH = 8  # token windows of one page per forward
MAX_ANSWER_TOKENS = 30


def save_labels(folder: str | Path, task: str, labels: list[str]) -> None:
    (Path(folder) / LABELS_FILE).write_text(json.dumps({"task": task, "labels": list(labels)}, indent=1))


def _labels(folder: Path) -> list[str]:
    """The label names of ``folder``'s head: our ``labels.json``, else a Hugging Face config's ``id2label``."""
    if (folder / LABELS_FILE).is_file():
        return json.loads((folder / LABELS_FILE).read_text())["labels"]
    config = folder / "config.json"
    hf = json.loads(config.read_text()) if config.is_file() else {}
    id2label = hf.get("id2label") if isinstance(hf, dict) else None
    if not isinstance(id2label, dict):
        raise FileNotFoundError(f"{folder} has no {LABELS_FILE} and no config.json with id2label: "
                                "not a document task model folder")
    try:
        return [str(id2label[str(i)]) for i in range(len(id2label))]
    except KeyError as e:
        raise ValueError(f"{config}: id2label lacks label {e} (its keys must be 0..{len(id2label) - 1})") from None


@dataclass
class DocumentPage:
    """What the model reads of a page: words, their pixel boxes and the page size, and the image."""

    words: list[str]
    boxes: np.ndarray  # [N, 4] pixels
    width: int
    height: int
    image: object = None  # PIL image or [H, W, 3] uint8; None for text-and-layout models

    @classmethod
    def of(cls, page) -> "DocumentPage":
        """From a :class:`~polymodal.documents.Page` or a :class:`~polymodal.data.documents.DocumentExample`."""
        words = page.texts if hasattr(page, "texts") else page.words
        boxes = page.pixel_boxes() if hasattr(page, "pixel_boxes") else page.boxes
        return cls(list(words), np.asarray(boxes, np.float32).reshape(-1, 4), page.width, page.height, page.image)


class DocumentModel:
    """A task model and its processing, ready for pages (``from_folder`` or built by a run)."""

    def __init__(self, model: DocumentTaskModel, processor: DocumentProcessor, labels: list[str], runtime=None):
        self.model, self.processor, self.labels = model.eval(), processor, list(labels)
        self.task = model.config.task
        self.runtime = runtime  # an exported copy (ONNX Runtime / OpenVINO) that runs instead of the torch model

    @classmethod
    def from_folder(cls, folder: str | Path, dtype: torch.dtype = torch.float32,
                    cpu_path: str | None = None, backend: str = "torch") -> "DocumentModel":
        """The model saved in ``folder``, for inference on the CPU: ``dtype=torch.bfloat16`` runs
        weights and activations in bf16; ``cpu_path`` picks how its linears run (``auto``: the
        faster of PyTorch's GEMM and oneDNN with prepacked weights on this machine, measured once;
        see :mod:`polymodal.layers.cpu_path`). ``backend`` ``onnxruntime`` / ``openvino`` runs an export
        of it instead (made and verified on first use, cached by the weights hash; OpenVINO runs bf16
        with ``dtype``)."""
        from ..export.runtime import check_backend
        from ..layers.cpu_path import set_linear_path
        from ..weights import load_checkpoint
        from ..weights.files import find_weights_file, sha256_of

        precision = "bf16" if dtype == torch.bfloat16 else "f32"
        check_backend(backend, precision)

        folder = Path(folder)
        labels = _labels(folder)
        model = load_checkpoint(folder)
        if not isinstance(model, DocumentTaskModel):
            raise TypeError(f"{folder} holds a {type(model).__name__}, not a document task model")
        if model.config.task in ("entities", "classify") and len(labels) != model.config.num_labels:
            raise ValueError(f"{folder}: {len(labels)} labels for a head of {model.config.num_labels}")
        runtime = None
        if backend != "torch":
            from ..export.documents import exported_document

            runtime = exported_document(model, sha256_of(find_weights_file(folder))[:16], backend, precision)
        else:
            model = model.to(dtype)
            set_linear_path(model, cpu_path)
        if (folder / PROCESSOR_FILE).is_file():
            processor = DocumentProcessor.load(folder)
        elif (folder / TOKENIZER_FILE).is_file():  # a Hugging Face folder: the processing its family expects
            processor = DocumentProcessor.for_model(model, Tokenizer.from_file(str(folder / TOKENIZER_FILE)))
        else:
            raise FileNotFoundError(f"{folder} has neither {PROCESSOR_FILE} nor {TOKENIZER_FILE}")
        vocab = model.config.trunk.bert.vocab_size
        if processor.tokenizer.get_vocab_size() > vocab:  # its ids past the embedding would crash mid-document
            raise ValueError(f"{folder}: the tokenizer has {processor.tokenizer.get_vocab_size()} tokens, the model's "
                             f"vocabulary {vocab}: they do not belong together")
        return cls(model, processor, labels, runtime)

    def _run(self, page: DocumentPage, question: str | None = None):
        grid = normalize_boxes(page.boxes, page.width, page.height)
        windows, batch = self.processor.encode(page.words, grid, page.image if self._needs_image else None, question)
        image, types = batch.get("image"), batch.get("token_type_ids")
        dtype = next(self.model.parameters()).dtype
        outs = []
        with torch.inference_mode():  # a few windows per forward: memory stays bounded on pages of any length
            for s in range(0, len(windows), WINDOW_BATCH):
                part = slice(s, s + WINDOW_BATCH)
                if self.runtime is not None:
                    outs.append(self.runtime.run(batch["ids"][part], batch["boxes"][part],
                                                 None if image is None else image[part], batch["attention_mask"][part],
                                                 None if types is None else types[part]))
                    continue
                outs.append(self.model(batch["ids"][part], batch["boxes"][part],
                                       None if image is None else image[part].to(dtype), batch["attention_mask"][part],
                                       None if types is None else types[part]))
        return windows, batch, {k: torch.cat([o[k] for o in outs]).float() for k in outs[0]}

    @property
    def _needs_image(self) -> bool:
        return self.model.config.trunk.visual_tokens

    def require(self, task: str) -> None:
        if self.task != task:
            raise ValueError(f"this is a {self.task!r} model; {task!r} needs a model trained with objective.kind "
                             f"doc_{task}")

    # ------------------------------------------------------------------------------------- entities

    def extract(self, page: DocumentPage) -> dict:
        """``entities``: [{id, label, words, text, box, confidence}] (header / question / answer);
        ``links``: [{question, answer, score}] by entity id (each question to its best answer, when
        the link's probability is over 0.5); ``tags``: the BIO tag of every word."""
        self.require("entities")
        n = len(page.words)
        if n == 0:
            return {"entities": [], "links": [], "tags": []}
        windows, batch, out = self._run(page)
        probs = merge_word_logits(windows, out["tag_logits"], n).softmax(-1)
        conf, tags = probs.max(-1)
        entities = decode_bio([self.labels[t] for t in tags.tolist()])
        where = best_token_per_word(windows, n)
        result = []
        for k, e in enumerate(entities):
            b = page.boxes[e.words]
            result.append({"id": k, "label": e.label, "words": e.words, "text": " ".join(page.words[i] for i in e.words),
                           "box": [round(float(v), 1) for v in (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())],
                           "confidence": round(float(conf[e.words].mean()), 4)})
        questions = [e for e in result if e["label"] == "question"]
        answers = [e for e in result if e["label"] == "answer"]
        links = []
        if questions and answers and "link_keys" in out:  # (a model without a link scorer: no links)
            def state(e, name):
                wi, t = where[e["words"][0]]
                return out[name][wi, t]

            keys = torch.stack([state(e, "link_keys") for e in questions])
            values = torch.stack([state(e, "link_values") for e in answers])
            p = DocumentTaskModel.link_logits(keys, values).sigmoid()
            for qi, q in enumerate(questions):
                score, ai = p[qi].max(0)
                if score > 0.5:
                    links.append({"question": q["id"], "answer": answers[int(ai)]["id"], "score": round(float(score), 4)})
        return {"entities": result, "links": links, "tags": [self.labels[t] for t in tags.tolist()]}

    # ------------------------------------------------------------------------------------------- qa

    def ask(self, page: DocumentPage, question: str) -> dict:
        """The best answer span: ``answer`` (its words' text), ``score`` (p(start)·p(end) in its
        window), ``words`` (first, last) and ``box`` (pixels); an empty answer when the page has no words."""
        self.require("qa")
        if not question.strip():
            raise ValueError("the question is empty")
        if not page.words:
            return {"answer": "", "score": 0.0, "words": None, "box": None}
        windows, batch, out = self._run(page, question)
        best = (-1.0, 0, 0)
        for wi, w in enumerate(windows):
            word_ids = batch["word_ids"][wi]
            body = word_ids >= 0
            ps = out["start_logits"][wi].masked_fill(~body, float("-inf")).softmax(-1)
            pe = out["end_logits"][wi].masked_fill(~body, float("-inf")).softmax(-1)
            joint = ps[:, None] * pe[None, :]
            length = torch.arange(len(ps))[None, :] - torch.arange(len(ps))[:, None]
            joint = joint.masked_fill((length < 0) | (length >= MAX_ANSWER_TOKENS), 0)
            score, flat = joint.flatten().max(0)
            if float(score) > best[0]:
                s, e = divmod(int(flat), len(ps))
                best = (float(score), int(word_ids[s]), int(word_ids[e]))
        score, first, last = best
        b = page.boxes[first:last + 1]
        return {"answer": " ".join(page.words[first:last + 1]), "score": round(score, 4), "words": [first, last],
                "box": [round(float(v), 1) for v in (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())]}

    # ------------------------------------------------------------------------------------- classify

    def classify(self, page: DocumentPage) -> dict:
        """``class``, ``score`` and every class's probability (logits averaged over windows)."""
        self.require("classify")
        _, _, out = self._run(page)
        p = out["logits"].mean(0).softmax(-1)
        k = int(p.argmax())
        return {"class": self.labels[k], "score": round(float(p[k]), 4),
                "scores": {c: round(float(v), 4) for c, v in zip(self.labels, p.tolist())}}


def decode_bio(tags: list[str]) -> list[DocEntity]:
    """Word tags (``B-QUESTION``, ``I-QUESTION``, ``O``, …) → entities, in order: B starts one, I of
    the same label continues it, an I without its B starts one (lenient, as seqeval's default)."""
    entities: list[DocEntity] = []
    current = None
    for i, tag in enumerate(tags):
        if tag == "O" or "-" not in tag:
            current = None
            continue
        prefix, label = tag.split("-", 1)
        label = label.lower()
        if prefix == "B" or current is None or current.label != label:
            current = DocEntity(len(entities), label, [i])
            entities.append(current)
        else:
            current.words.append(i)
    return entities


__all__ = ["BIO", "DocumentModel", "DocumentPage", "decode_bio", "save_labels"]
