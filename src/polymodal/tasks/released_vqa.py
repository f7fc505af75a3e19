"""A released VQA checkpoint (transformers' ``VisualBertForQuestionAnswering``, e.g. uclanlp/visualbert-vqa)
asked about a photo: the bottom-up-attention detector finds the regions and their features, the question
is tokenised with the folder's WordPiece files, and the answers are ranked by their softmax probability
(the checkpoint was fine-tuned against soft answer distributions)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..modalities.text import load_tokenizer
from ..weights.files import CheckpointError
from .detector import Detector


def check_features(checkpoint: str | Path, visual_dim: int, detector: str | Path, feature_dim: int) -> None:
    """Refuse, naming both, a checkpoint that reads regions of another width than the detector gives."""
    if visual_dim != feature_dim:
        raise CheckpointError(f"{checkpoint} reads {visual_dim}-d region features; the detector {detector} gives "
                              f"{feature_dim}-d ones (use the detector the checkpoint was trained on: the "
                              "bottom-up-attention Faster R-CNN gives 2048-d)")


class ReleasedVQA:
    def __init__(self, checkpoint: str | Path, detector: str | Path | Detector, tokenizer: str | Path | None = None):
        from ..models.visualbert_tasks import VisualBertTask
        from ..weights.loading import load_checkpoint

        checkpoint = Path(checkpoint)
        self.model = load_checkpoint(checkpoint).eval()
        if not isinstance(self.model, VisualBertTask) or self.model.config.task != "vqa":
            raise CheckpointError(f"{checkpoint} holds a {type(self.model).__name__}"
                                  f"{' for ' + self.model.config.task if isinstance(self.model, VisualBertTask) else ''}"
                                  ", not a VQA checkpoint (VisualBertForQuestionAnswering)")
        self.detector = detector if isinstance(detector, Detector) else Detector.load(detector)
        check_features(checkpoint, self.model.config.trunk.visual_dim, detector, self.detector.config.feature_dim)
        words = Path(tokenizer) if tokenizer is not None else checkpoint if checkpoint.is_dir() else checkpoint.parent
        if not ((words / "vocab.txt").is_file() or (words / "tokenizer.json").is_file()):
            raise CheckpointError(f"no vocab.txt or tokenizer.json in {words}: copy bert-base-uncased's vocab.txt "
                                  "there (VisualBERT's checkpoints use its WordPiece vocabulary), or pass --tokenizer")
        self.tokenizer = load_tokenizer(words, context_length=self.model.config.trunk.bert.max_positions)
        names = self.model.config.label_names
        self.answers = list(names) if names else [f"answer {i}" for i in range(self.model.config.labels)]

    @torch.no_grad()
    def __call__(self, picture: Image.Image, question: str, k: int = 5) -> tuple[list[tuple[str, float]], object]:
        """The ``k`` most probable answers with their probabilities, and the regions they were read from."""
        regions = self.detector.detect([picture])[0]
        tokens = self.tokenizer([question])
        logits = self.model(tokens.ids, regions.features[None].float(), tokens.attention_mask)["logits"][0]
        probs = torch.softmax(logits.float(), -1)
        top = probs.topk(min(k, len(self.answers)))
        return [(self.answers[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist())], regions
