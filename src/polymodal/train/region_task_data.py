"""World data for the region tasks beyond VQA: texts about scenes, each scene read as regions.

* consistency — a statement and the scene it is shown with (the true one, or a minimal edit of it
  that makes the statement false): ``labels`` [Q];
* referring expressions — every expression of a scene, the referred object's box and, per region,
  whether it overlaps that box by IoU ≥ 0.5 (``positives`` [Q, R]);
* VCR — per item 4 "question [SEP] answer" texts and 4 "question answer [SEP] rationale" texts.

Regions per scene: the whole image first, then the object boxes — the true ones, or what a
detector would give (``data.boxes=detector``: jittered, some missed, sometimes a false one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ..data.regions import RegionFeatures
from ..world.labels import consistency, referring_expressions, vcr
from ..world.render import render
from ..world.scene import sample_rng, sample_scene
from ..eval.metrics import box_iou
from ..modalities.text import TextTokenizer
from ..tasks.region_extractor import RegionExtractor
from .region_data import scene_regions

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

    def __len__(self) -> int:
        return len(self.texts)


def _scene_texts(batch: RegionFeatures, scene_of: list[int], texts: list[str], tokenizer: TextTokenizer) -> SceneTexts:
    tokens = tokenizer(texts)  # a text longer than the context is an error, not a silent cut
    return SceneTexts(batch.features, batch.mask, batch.locations(), batch.boxes, torch.tensor(scene_of),
                      tokens.ids, tokens.attention_mask, texts)


def _detector(seed: int, split: str, indices: list[int], boxes: str) -> list[np.random.Generator] | None:
    if boxes not in ("truth", "detector"):
        raise ValueError(f"boxes must be 'truth' or 'detector', got {boxes!r}")
    return [sample_rng(seed, split, i, "detector") for i in indices] if boxes == "detector" else None


def world_consistency(split: str, n: int, seed: int, size: int, extractor: RegionExtractor,
                      tokenizer: TextTokenizer, boxes: str = "truth") -> tuple[SceneTexts, torch.Tensor, list[str]]:
    """One statement per scene index, shown with the (maybe edited) scene: (texts, labels [n]
    (1 = the statement fits), the edit kinds (colour, count, relation))."""
    items = [consistency(sample_scene(seed, split, i)) for i in range(n)]
    batch = scene_regions([it["scene"] for it in items], size, extractor, _detector(seed, split, list(range(n)), boxes))
    data = _scene_texts(batch, list(range(n)), [it["statement"] for it in items], tokenizer)
    return data, torch.tensor([it["label"] for it in items]), [it["kind"] for it in items]


def world_refexps(split: str, n: int, seed: int, size: int, extractor: RegionExtractor, tokenizer: TextTokenizer,
                  boxes: str = "truth") -> tuple[SceneTexts, torch.Tensor, torch.Tensor]:
    """Every referring expression of ``n`` scenes: (texts, the referred object's box [Q, 4] (pixels),
    positives [Q, R]: the regions whose IoU with that box is ≥ 0.5)."""
    scenes = [sample_scene(seed, split, i) for i in range(n)]
    batch = scene_regions(scenes, size, extractor, _detector(seed, split, list(range(n)), boxes))
    scene_of, texts, targets = [], [], []
    for i, scene in enumerate(scenes):
        true_boxes = render(scene, size).boxes
        for e in referring_expressions(scene):
            scene_of.append(i)
            texts.append(e["phrase"])
            targets.append(true_boxes[e["object"]])
    data = _scene_texts(batch, scene_of, texts, tokenizer)
    target = torch.from_numpy(np.stack(targets)).float()
    positives = refexp_hits(data.boxes[data.scene_of], data.region_mask[data.scene_of], target)
    return data, target, positives


def refexp_hits(boxes: torch.Tensor, region_mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Regions boxes [Q, R, 4] (mask [Q, R]) against target boxes [Q, 4] → [Q, R] bool: IoU ≥ 0.5."""
    iou = torch.stack([box_iou(b, t[None])[:, 0] for b, t in zip(boxes, target)])
    return (iou >= IOU) & region_mask.bool()


@dataclass
class VCRItems:
    texts: SceneTexts  # 8 rows per item: its 4 Q→A texts, then its 4 QA→R texts
    answer: torch.Tensor  # [N] the right answer's index
    rationale: torch.Tensor  # [N] the right rationale's index

    def __len__(self) -> int:
        return len(self.answer)


def world_vcr(split: str, n: int, seed: int, size: int, extractor: RegionExtractor, tokenizer: TextTokenizer,
              boxes: str = "truth") -> VCRItems:
    """``n`` VCR items (scene i, or the next scene i + k·n that has one, as ``VCRDataset``)."""
    scenes, items, indices = [], [], []
    for i in range(n):
        k, scene = 0, sample_scene(seed, split, i)
        while (item := vcr(scene)) is None:
            k += 1
            scene = sample_scene(seed, split, i + k * n)
        scenes.append(scene)
        items.append(item)
        indices.append(i + k * n)
    batch = scene_regions(scenes, size, extractor, _detector(seed, split, indices, boxes))
    texts, scene_of = [], []
    for i, it in enumerate(items):
        q, right = it["question"], it["answers"][it["answer"]]
        texts += [f"{q} [SEP] {a}" for a in it["answers"]] + [f"{q} {right} [SEP] {r}" for r in it["rationales"]]
        scene_of += [i] * 8
    return VCRItems(_scene_texts(batch, scene_of, texts, tokenizer), torch.tensor([it["answer"] for it in items]),
                    torch.tensor([it["rationale"] for it in items]))
