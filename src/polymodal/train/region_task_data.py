"""Texts about pictures read as regions, for the region tasks beyond VQA:

* :class:`Statements` (consistency) — a statement and the picture it is shown with, ``labels`` [Q]
  (1: it fits);
* :class:`References` (referring expressions) — each expression's target box and, per region,
  whether it overlaps that box by IoU ≥ 0.5 (``positives`` [Q, R]);
* :class:`VCRItems` — per item 4 "question [SEP] answer" texts and 4 "question answer [SEP]
  rationale" texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.regions import RegionFeatures
from ..eval.metrics import box_iou
from ..modalities.text import TextTokenizer

IOU = 0.5  # a region "is" the referred object at this overlap (the refexp metric's threshold)


@dataclass
class SceneTexts:
    """Texts about scenes: regions per scene, and per text its scene and tokens (what
    :func:`~polymodal.train.region_data.question_rows` batches)."""
    regions: torch.Tensor  # [N, R, D] float32 (padded), one row per scene
    region_mask: torch.Tensor  # [N, R] int64
    locations: torch.Tensor  # [N, R, 5] (x0, y0, x1, y1, area) in [0, 1]
    boxes: torch.Tensor  # [N, R, 4] pixels
    scene_of: torch.Tensor  # [Q] int64
    ids: torch.Tensor  # [Q, L] int64
    mask: torch.Tensor  # [Q, L] int64
    texts: list[str]
    image_size: torch.Tensor | None = None  # [N, 2] (w, h) pixels

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: list[int]) -> "SceneTexts":
        """The texts ``rows`` (their pictures' regions all kept)."""
        index = torch.tensor(rows, dtype=torch.long)
        return SceneTexts(self.regions, self.region_mask, self.locations, self.boxes, self.scene_of[index],
                          self.ids[index], self.mask[index], [self.texts[i] for i in rows], self.image_size)


def scene_texts(batch: RegionFeatures, scene_of: list[int], texts: list[str], tokenizer: TextTokenizer) -> SceneTexts:
    """Texts [Q] about the pictures of ``batch`` (``scene_of``: each text's picture), tokenised."""
    tokens = tokenizer(texts)  # a text longer than the context is an error, not a silent cut
    return SceneTexts(batch.features, batch.mask, batch.locations(), batch.boxes, torch.tensor(scene_of),
                      tokens.ids, tokens.attention_mask, texts, batch.image_size)


def refexp_hits(boxes: torch.Tensor, region_mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Regions boxes [Q, R, 4] (mask [Q, R]) against target boxes [Q, 4] → [Q, R] bool: IoU ≥ 0.5."""
    iou = torch.stack([box_iou(b, t[None])[:, 0] for b, t in zip(boxes, target)])
    return (iou >= IOU) & region_mask.bool()


@dataclass
class Statements:
    texts: SceneTexts
    labels: torch.Tensor  # [Q] 1: the statement fits its picture
    kinds: list[str]  # each statement's kind (accuracy is broken down by it), e.g. the world's edit

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class References:
    texts: SceneTexts
    target: torch.Tensor  # [Q, 4] the referred object's box (pixels)
    positives: torch.Tensor  # [Q, R] bool: the regions whose IoU with the target is ≥ 0.5 (refexp_hits)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class VCRItems:
    texts: SceneTexts  # 8 rows per item: its 4 Q→A texts, then its 4 QA→R texts
    answer: torch.Tensor  # [N] the right answer's index
    rationale: torch.Tensor  # [N] the right rationale's index

    def __len__(self) -> int:
        return len(self.answer)
