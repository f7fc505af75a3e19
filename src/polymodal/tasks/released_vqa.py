"""Released region-model checkpoints asked about a photo, their regions found by the bottom-up-attention
detector (:mod:`polymodal.tasks.detector`):

* transformers' ``VisualBertForQuestionAnswering`` (uclanlp/visualbert-vqa): answers ranked by softmax;
* vilbert-multi-task's 12-in-1 model (``VILBertForVLTasks``): VQA (task 1) or GQA (task 15) answers
  ranked by sigmoid (it was trained with binary cross-entropy on soft scores), and referring expressions
  (RefCOCO / + / g, tasks 9–11): the region that best fits a phrase.

Questions are tokenised with the checkpoint folder's WordPiece files (``vocab.txt`` or ``tokenizer.json``;
both families use bert-base-uncased's). Answer names: the checkpoint's ``id2label`` (VisualBERT), or an
``answers.json`` list (or vilbert-multi-task's ``trainval_label2ans.pkl``) beside the weights."""

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
            answers = json.loads(file.read_text()) if file.suffix == ".json" else _StringsOnly(open(file, "rb")).load()
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
        if self.family != "vilbert":
            raise CheckpointError(f"{self.checkpoint} is a VisualBERT model; referring expressions need ViLBERT's "
                                  "12-in-1 model (tasks 9–11)")
        if task not in (4, 9, 10, 11, 17, 18):
            raise ValueError(f"task {task} does not point at regions; use 9 (RefCOCO), 10 (RefCOCO+), 11 (RefCOCOg)")
        out, regions = self._vilbert(picture, phrase, task)
        scores = torch.softmax(out["region"][0, 1:, 0].float(), -1)  # region 0 is the whole picture
        best = int(scores.argmax())
        return regions.boxes[best], float(scores[best]), regions
