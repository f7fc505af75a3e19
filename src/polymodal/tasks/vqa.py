"""Answering a question about a picture with a trained region VQA model folder (what
``polymodal vqa`` runs): the picture's regions read by the tower the model was trained with, the
question tokenised by its tokenizer, and the answers ranked by their sigmoid scores."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from ..data.regions import RegionFeatures
from ..modalities.text import load_tokenizer
from .region_tower import MAX_REGIONS, load_region_tower, region_extractor


def grid_boxes(width: int, height: int, cells: int = 2) -> torch.Tensor:
    """The whole picture and a ``cells`` × ``cells`` grid over it: [1 + cells², 4] pixel boxes (x0, y0, x1, y1)."""
    xs = torch.linspace(0, width, cells + 1)
    ys = torch.linspace(0, height, cells + 1)
    grid = [[xs[i], ys[j], xs[i + 1], ys[j + 1]] for j in range(cells) for i in range(cells)]
    return torch.tensor([[0.0, 0.0, width, height], *grid])


def picture_regions(extractor, image: Image.Image, boxes=None, max_regions: int = MAX_REGIONS) -> RegionFeatures:
    """One picture's regions as the region models were trained on them: the whole picture first, then
    ``boxes`` [R, 4] (pixels; default: a 2 × 2 grid), padded to ``max_regions`` (the most a training
    picture had, which the model folder records)."""
    w, h = image.size
    if boxes is None:
        boxes = grid_boxes(w, h)
    else:
        boxes = torch.cat([torch.tensor([[0.0, 0.0, w, h]]), torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)])
    if len(boxes) > max_regions:
        raise ValueError(f"{len(boxes) - 1} boxes; this region model was trained with at most {max_regions - 1}")
    return RegionFeatures.collate([extractor(image, boxes)], max_regions)


class VQAPredictor:
    """A VQA model folder (``objective.kind=vqa``'s ``train.out/model``): weights, tokenizer, answers
    and the record of its region tower."""

    def __init__(self, folder: str | Path, region_tower: str | Path | None = None):
        from ..weights import load_checkpoint

        folder = Path(folder)
        self.model = load_checkpoint(folder).eval()
        if not hasattr(self.model, "head") or not hasattr(self.model, "trunk"):
            raise ValueError(f"{folder} holds a {type(self.model).__name__}, not a VQA model (family region-vqa)")
        self.tokenizer = load_tokenizer(folder)
        self.answers = load_answers(folder)
        record = load_region_tower(folder) if region_tower is None else {"tower": region_tower}
        self.max_regions = int(record.get("max_regions", MAX_REGIONS))
        self.extractor = region_extractor(str(record["tower"]))

    @torch.no_grad()
    def __call__(self, image: Image.Image, question: str, boxes: torch.Tensor | None = None,
                 k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` best answers with their scores in [0, 1]. ``boxes`` [R, 4] pixel regions (the
        whole picture is added first, as in training); default: a 2 × 2 grid."""
        regions = picture_regions(self.extractor, image, boxes, self.max_regions)
        tokens = self.tokenizer([question])  # a question longer than the context is an error
        logits = self.model(tokens.ids, regions.features, tokens.attention_mask, regions.mask,
                            regions.locations())["logits"][0]
        scores = torch.sigmoid(logits.float())
        top = scores.topk(min(k, len(self.answers)))
        return [(self.answers[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


ANSWERS_FILE = "answers.json"  # a VQA model folder's answer vocabulary, in head order


def save_answers(folder: Path, answers: list[str]) -> None:
    (Path(folder) / ANSWERS_FILE).write_text(json.dumps(answers, indent=0))


def load_answers(folder: Path) -> list[str]:
    path = Path(folder) / ANSWERS_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {ANSWERS_FILE}: not a VQA model folder (train one with objective.kind vqa)")
    answers = json.loads(path.read_text())
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"{path}: expected a JSON list of answer strings")
    return answers
