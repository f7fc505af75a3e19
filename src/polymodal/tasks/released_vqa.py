"""Released region-model checkpoints asked about a photo, their regions found by the bottom-up-attention
detector (:mod:`polymodal.tasks.detector`):

* transformers' ``VisualBertForQuestionAnswering`` (uclanlp/visualbert-vqa): answers ranked by softmax;
* vilbert-multi-task's 12-in-1 model (``VILBertForVLTasks``): VQA (task 1) or GQA (task 15) answers
  ranked by sigmoid (it was trained with binary cross-entropy on soft scores), and referring expressions
  (RefCOCO / + / g, tasks 9–11): the region that best fits a phrase;
* both: whether a statement holds of two pictures (NLVR2; VisualBERT reads the left picture's regions as
  visual type 0 and the right's as 1 in one sequence, ViLBERT pairs the two pooled outputs), which of several
  answers fits a question (VCR; ViLBERT also ranks captions for retrieval, tasks 7–8), and ViLBERT's
  visual entailment (task 13: contradiction, neutral, entailment).

Questions are tokenised with the checkpoint folder's WordPiece files (``vocab.txt`` or ``tokenizer.json``;
both families use bert-base-uncased's). Answer names: the checkpoint's ``id2label`` (VisualBERT), or an
``answers.json`` list (or vilbert-multi-task's ``trainval_label2ans.pkl``) beside the weights. A folder may
record how its training features were made in ``detector.json`` (box choice, feature width); the
detector then chooses boxes that way."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from PIL import Image

from ..modalities.text import load_tokenizer
from ..weights.files import CheckpointError
from .detector import Detector
from .region_inputs import vilbert_regions

ANSWER_FILES = ("answers.json", "trainval_label2ans.pkl")
MAX_ANSWER_FILE = 16 << 20
VILBERT_TEXT = {1: 23, 15: 26, 9: 20, 10: 20, 11: 20}  # vilbert_tasks.yml's max_seq_length (incl. [CLS], [SEP])


def check_features(checkpoint: str | Path, visual_dim: int, detector: str | Path, feature_dim: int) -> None:
    """Refuse, naming both, a checkpoint that reads regions of another width than the detector gives."""
    if visual_dim != feature_dim:
        raise CheckpointError(f"{checkpoint} reads {visual_dim}-d region features; the detector {detector} gives "
                              f"{feature_dim}-d ones (use the detector the checkpoint was trained on: the "
                              "bottom-up-attention Faster R-CNN gives 2048-d)")


CONVENTION_FILE = "detector.json"  # {"feature_dim": 2048, "selection": "bottom-up", "min_boxes": 10, "max_boxes": 100}


def apply_convention(folder: Path, config, detector) -> object:
    """The detector config with the box choice a checkpoint folder records in ``detector.json`` (how the
    features it was trained on were made); a recorded feature width the detector does not give is refused."""
    import dataclasses

    file = folder / CONVENTION_FILE
    if not file.is_file():
        return config
    if file.stat().st_size > MAX_ANSWER_FILE:
        raise CheckpointError(f"{file} is larger than {MAX_ANSWER_FILE} bytes; not a feature convention")
    try:
        record = json.loads(file.read_text())
    except ValueError as e:
        raise CheckpointError(f"{file}: {e}") from e
    allowed = {"feature_dim", "selection", "min_boxes", "max_boxes", "score_threshold", "nms_thresholds"}
    if not isinstance(record, dict) or set(record) - allowed:
        raise CheckpointError(f"{file}: expected an object with some of {sorted(allowed)}")
    if "feature_dim" in record and record["feature_dim"] != config.feature_dim:
        raise CheckpointError(f"{file} records {record['feature_dim']}-d features; the detector {detector} gives "
                              f"{config.feature_dim}-d ones")
    changes = {k: tuple(v) if k == "nms_thresholds" else v for k, v in record.items() if k != "feature_dim"}
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{file}: {e}") from e


class _StringsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"an answer list holds only strings; the file asks for {module}.{name}")


def read_answers(folder: Path, n: int) -> list[str]:
    """The ``n`` answer names in ``folder`` (answers.json, or a pickled list of strings), else "answer i"."""
    for name in ANSWER_FILES:
        file = folder / name
        if not file.is_file():
            continue
        if file.stat().st_size > MAX_ANSWER_FILE:
            raise CheckpointError(f"{file} is larger than {MAX_ANSWER_FILE} bytes; not an answer list")
        try:
            if file.suffix == ".json":
                answers = json.loads(file.read_text())
            else:
                with open(file, "rb") as f:
                    answers = _StringsOnly(f).load()
        except (ValueError, pickle.UnpicklingError, EOFError) as e:
            raise CheckpointError(f"{file}: {e}") from e
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers) or len(answers) != n:
            raise CheckpointError(f"{file} must hold a list of {n} answer strings (the model's outputs)")
        return answers
    return [f"answer {i}" for i in range(n)]


class ReleasedModel:
    """A released VisualBERT or ViLBERT task checkpoint, a detector and the checkpoint's tokenizer."""

    def __init__(self, checkpoint: str | Path, detector: str | Path | Detector, tokenizer: str | Path | None = None):
        from ..models.vilbert_tasks import ViLBertTask
        from ..models.visualbert_tasks import VisualBertTask
        from ..weights.loading import load_checkpoint

        checkpoint = Path(checkpoint)
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        self.model = load_checkpoint(checkpoint).eval()
        if isinstance(self.model, VisualBertTask):
            self.family, visual_dim, context = "visualbert", self.model.config.trunk.visual_dim, \
                self.model.config.trunk.bert.max_positions
        elif isinstance(self.model, ViLBertTask):
            self.family, visual_dim, context = "vilbert", self.model.config.trunk.visual_dim, \
                self.model.config.trunk.text.max_positions
        else:
            raise CheckpointError(f"{checkpoint} holds a {type(self.model).__name__}, not a released VisualBERT or "
                                  "ViLBERT task checkpoint")
        self.checkpoint = checkpoint
        self.detector = detector if isinstance(detector, Detector) else Detector.load(detector)
        check_features(checkpoint, visual_dim, detector, self.detector.config.feature_dim)
        self.detector.model.config = apply_convention(folder, self.detector.config, detector)
        words = Path(tokenizer) if tokenizer is not None else folder
        if not ((words / "vocab.txt").is_file() or (words / "tokenizer.json").is_file()):
            raise CheckpointError(f"no vocab.txt or tokenizer.json in {words}: copy bert-base-uncased's vocab.txt "
                                  "there (VisualBERT's and ViLBERT's checkpoints use its WordPiece vocabulary), or "
                                  "pass --tokenizer")
        self.tokenizer = load_tokenizer(words, context_length=context)
        self.folder = folder

    def _vilbert(self, picture: Image.Image, text: str, task: int):
        regions = self.detector.detect([picture])[0]
        features, locations, mask = vilbert_regions(regions.features, regions.boxes, *picture.size)
        tokens = self.tokenizer([text])
        limit = VILBERT_TEXT.get(task, tokens.ids.shape[1])
        ids, text_mask = tokens.ids[:, :limit], tokens.attention_mask[:, :limit]
        out = self.model(ids, features, locations, text_mask, mask, task_ids=torch.tensor([task]))
        return out, regions

    @torch.no_grad()
    def answer(self, picture: Image.Image, question: str, k: int = 5, task: int = 1) -> tuple[list[tuple[str, float]], object]:
        """The ``k`` best answers with their scores, and the regions they were read from."""
        if self.family == "visualbert":
            if self.model.config.task != "vqa":
                raise CheckpointError(f"{self.checkpoint} is a VisualBERT {self.model.config.task} model, not VQA")
            regions = self.detector.detect([picture])[0]
            tokens = self.tokenizer([question])
            logits = self.model(tokens.ids, regions.features[None].float(), tokens.attention_mask)["logits"][0]
            scores, names = torch.softmax(logits.float(), -1), list(self.model.config.label_names) or \
                read_answers(self.folder, self.model.config.labels)
        else:
            if task not in (1, 2, 15):
                raise ValueError(f"task {task} does not answer questions; use 1 (VQA), 2 (GenomeQA) or 15 (GQA)")
            out, regions = self._vilbert(picture, question, task)
            head = "gqa" if task == 15 else "vqa"
            scores = torch.sigmoid(out[head][0].float())
            names = read_answers(self.folder, len(scores)) if head == "vqa" else \
                [f"answer {i}" for i in range(len(scores))]
        top = scores.topk(min(k, len(scores)))
        return [(names[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())], regions

    @torch.no_grad()
    def refer(self, picture: Image.Image, phrase: str, task: int = 11) -> tuple[torch.Tensor, float, object]:
        """The detector box [4] (pixels) that best fits ``phrase``, its probability among the boxes, and the regions."""
        if self.family == "visualbert":  # Flickr30k Entities: each phrase token scores the regions; averaged
            if self.model.config.task != "flickr":
                raise CheckpointError(f"{self.checkpoint} is a VisualBERT {self.model.config.task} model; pointing "
                                      "at regions needs its flickr model or ViLBERT's 12-in-1 (tasks 9–11)")
            regions = self.detector.detect([picture])[0]
            tokens = self.tokenizer([phrase])
            words = torch.arange(1, int(tokens.attention_mask.sum()) - 1)[None]  # between [CLS] and [SEP]
            logits = self.model(tokens.ids, regions.features[None].float(), tokens.attention_mask,
                                phrase_positions=words)["logits"][0]
            scores = torch.softmax(logits.float(), -1).mean(0)
            best = int(scores.argmax())
            return regions.boxes[best], float(scores[best]), regions
        if task not in (4, 9, 10, 11, 17, 18):
            raise ValueError(f"task {task} does not point at regions; use 9 (RefCOCO), 10 (RefCOCO+), 11 (RefCOCOg)")
        out, regions = self._vilbert(picture, phrase, task)
        scores = torch.softmax(out["region"][0, 1:, 0].float(), -1)  # region 0 is the whole picture
        best = int(scores.argmax())
        return regions.boxes[best], float(scores[best]), regions


ENTAILMENT = ("contradiction", "neutral", "entailment")  # vilbert-multi-task's LABEL_MAP order


def encode_pairs(tokenizer, firsts: list[str], seconds: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[CLS] a [SEP] b [SEP] for each pair → ids, token types (0 for a, 1 for b), mask [N, L] (longest row)."""
    encoded = [tokenizer.tokenizer.encode(a, b) for a, b in zip(firsts, seconds)]
    width = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), width), tokenizer.pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, :len(e.ids)] = torch.tensor(e.ids)
        types[row, :len(e.ids)] = torch.tensor(e.type_ids)
        mask[row, :len(e.ids)] = 1
    return ids, types, mask


def _require(model, family: str, task: str | None, checkpoint) -> None:
    if model.family != family or (task is not None and model.model.config.task != task):
        raise CheckpointError(f"{checkpoint} is a {model.family} {getattr(model.model.config, 'task', '')} model; "
                              f"this needs {family}{' ' + task if task else ''}")


@torch.no_grad()
def verify(model: ReleasedModel, left: Image.Image, right: Image.Image, statement: str) -> tuple[float, list]:
    """NLVR2: the probability that ``statement`` holds of the two pictures, and each picture's regions."""
    if model.family == "visualbert":
        _require(model, "visualbert", "nlvr2", model.checkpoint)
        a, b = model.detector.detect([left, right])
        regions = torch.cat([a.features, b.features])[None].float()
        types = torch.cat([torch.zeros(len(a.features)), torch.ones(len(b.features))]).long()[None]
        tokens = model.tokenizer([statement])
        logits = model.model(tokens.ids, regions, tokens.attention_mask, region_type_ids=types)["logits"][0]
        return float(torch.softmax(logits.float(), -1)[1]), [a, b]
    found = model.detector.detect([left, right])
    batch = [vilbert_regions(r.features, r.boxes, *p.size) for r, p in zip(found, (left, right))]
    width = max(f.shape[1] for f, _, _ in batch)
    pad = lambda t: torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.shape[1]))  # noqa: E731
    features = torch.cat([pad(f) for f, _, _ in batch])
    locations = torch.cat([pad(loc) for _, loc, _ in batch])
    mask = torch.cat([torch.nn.functional.pad(m, (0, width - m.shape[1])) for _, _, m in batch])
    tokens = model.tokenizer([statement, statement])
    out = model.model(tokens.ids[:, :40], features, locations, tokens.attention_mask[:, :40], mask,
                      task_ids=torch.tensor([12, 12]))
    return float(torch.softmax(out["pair"][0].float(), -1)[1]), found


@torch.no_grad()
def choose(model: ReleasedModel, picture: Image.Image, question: str, choices: list[str],
           task: int = 5) -> tuple[list[float], object]:
    """VCR-style: the probability of each choice answering ``question`` about the picture (``question`` empty:
    rank ``choices`` as captions, ViLBERT's retrieval tasks 7 / 8)."""
    if len(choices) < 2:
        raise ValueError("give at least two choices to choose from")
    regions = model.detector.detect([picture])[0]
    if question:
        ids, types, mask = encode_pairs(model.tokenizer, [question] * len(choices), choices)
    else:
        batch = model.tokenizer(choices)
        ids, mask = batch.ids, batch.attention_mask
        types = torch.zeros_like(ids)
    if model.family == "visualbert":
        _require(model, "visualbert", "vcr", model.checkpoint)
        logits = model.model(ids[None], regions.features[None].float(), mask[None], token_type_ids=types[None])["logits"][0]
    else:
        if task not in (5, 6, 7, 8):
            raise ValueError(f"task {task} does not score choices; use 5 / 6 (VCR) or 7 / 8 (retrieval)")
        features, locations, rmask = vilbert_regions(regions.features, regions.boxes, *picture.size)
        n = len(choices)
        out = model.model(ids, features.expand(n, -1, -1), locations.expand(n, -1, -1), mask, rmask.expand(n, -1),
                          types, task_ids=torch.full((n,), task))
        logits = out["score"][:, 0]
    return torch.softmax(logits.float(), -1).tolist(), regions


@torch.no_grad()
def entail(model: ReleasedModel, picture: Image.Image, hypothesis: str) -> tuple[dict[str, float], object]:
    """SNLI-VE (ViLBERT task 13): the probability of each of contradiction, neutral, entailment."""
    _require(model, "vilbert", None, model.checkpoint)
    out, regions = model._vilbert(picture, hypothesis, 13)
    probs = torch.softmax(out["entail"][0].float(), -1)
    return {name: float(p) for name, p in zip(ENTAILMENT, probs)}, regions
