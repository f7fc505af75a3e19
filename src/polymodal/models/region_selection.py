"""Which detections an image keeps, and their features: the two conventions region features were made with.

* ``bottom-up`` — bottom-up-attention's feature extraction (``generate_tsv.py``, used for the VisualBERT
  and ViLBERT features): every class runs NMS over the *proposals* with its own scores; a proposal's
  confidence is the best score it keeps in any class; proposals at or above ``score_threshold`` are kept,
  at least ``min_boxes`` and at most ``max_boxes`` (the most confident), by decreasing confidence.
* ``fixed`` — the LXMERT demo's (transformers ``modeling_frcnn.py``): each proposal becomes its best
  class's regressed box; one class-blind NMS per threshold in ``nms_thresholds``, tried in order until at
  least ``min_boxes`` survive, of which the first ``max_boxes`` are kept. Where no threshold reaches the
  minimum the reference fails; here the last threshold's boxes are topped up with the most confident
  suppressed ones, so every image still gets ``min_boxes`` (fewer only when it has fewer proposals).

Boxes come back in the original image's pixels (``scales`` = original / resized size, (y, x)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..layers.boxes import box_iou, clip_boxes, decode_boxes, greedy_keep, nms


@dataclass
class Regions:
    """One image's kept detections (K of them)."""

    boxes: torch.Tensor  # [K, 4] x0, y0, x1, y1 in original pixels
    scores: torch.Tensor  # [K] the class's probability
    classes: torch.Tensor  # [K] long, 0 … classes − 1
    attributes: torch.Tensor  # [K] long (0 where the detector has no attribute head)
    attribute_scores: torch.Tensor  # [K]
    features: torch.Tensor  # [K, D] mean-pooled res5
    class_probs: torch.Tensor  # [K, classes + 1] every class's probability, background last
    kept: torch.Tensor  # [K] long: which of the image's proposals
    nms_threshold: float  # the one that was used


def _top_up(kept: torch.Tensor, confidence: torch.Tensor, n: int) -> torch.Tensor:
    """``kept`` followed by the most confident other indices, up to n in all."""
    rest = torch.sort(confidence, descending=True, stable=True).indices
    rest = rest[~torch.isin(rest, kept)]
    return torch.cat([kept, rest[:max(0, n - len(kept))]])


def _fixed(c, proposals, probs, box_deltas, size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    r = len(proposals)
    boxes = clip_boxes(decode_boxes(box_deltas, proposals, c.box_weights).view(r, -1, 4), int(size[0]), int(size[1]))
    best, classes = probs[:, :-1].max(1)
    boxes = boxes[:, 0] if boxes.shape[1] == 1 else boxes[torch.arange(r), classes]
    for threshold in c.nms_thresholds:
        kept = nms(boxes, best, threshold)[:c.max_boxes]
        if len(kept) >= c.min_boxes:
            break
    else:
        kept = _top_up(kept, best, c.min_boxes)
    return kept, boxes[kept], classes[kept], float(threshold)


def _bottom_up(c, proposals, probs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    threshold = c.nms_thresholds[0]
    suppresses = (box_iou(proposals, proposals) > threshold).numpy()
    p = probs[:, :-1].detach().float().numpy()
    confidence = np.zeros(len(proposals), dtype=np.float32)
    for k in range(p.shape[1]):
        order = np.argsort(-p[:, k], kind="stable")
        kept = order[greedy_keep(suppresses[np.ix_(order, order)])]
        confidence[kept] = np.maximum(confidence[kept], p[kept, k])
    confidence = torch.from_numpy(confidence)
    ranked = torch.sort(confidence, descending=True, stable=True).indices
    n = int((confidence >= c.score_threshold).sum())
    kept = ranked[:min(max(n, c.min_boxes), c.max_boxes)]
    return kept, proposals[kept], probs[kept, :-1].argmax(1), threshold


def select_regions(c, out: dict, sizes: torch.Tensor, scales: torch.Tensor | None = None) -> list[Regions]:
    """``out``: :meth:`FasterRCNN.run`'s dict; sizes [B, 2] (resized h, w); scales [B, 2] → one
    :class:`Regions` per image."""
    counts = [len(p) for p in out["proposals"]]
    probs = torch.softmax(out["class_logits"], -1).split(counts)
    deltas = out["box_deltas"].split(counts)
    pooled = out["pooled"].split(counts)
    if out["attribute_logits"] is not None:
        attr_scores, attrs = torch.softmax(out["attribute_logits"][:, :-1], -1).max(-1)
    else:
        attrs = torch.zeros(sum(counts), dtype=torch.long)
        attr_scores = torch.zeros(sum(counts))
    attr_scores, attrs = attr_scores.split(counts), attrs.split(counts)
    regions = []
    for i, proposals in enumerate(out["proposals"]):
        if c.selection == "fixed":
            kept, boxes, classes, threshold = _fixed(c, proposals, probs[i], deltas[i], sizes[i])
        else:
            kept, boxes, classes, threshold = _bottom_up(c, proposals, probs[i])
        if scales is not None:
            boxes = boxes * torch.stack([scales[i, 1], scales[i, 0]] * 2).to(boxes.dtype)
        regions.append(Regions(boxes=boxes, scores=probs[i][kept, classes], classes=classes, attributes=attrs[i][kept],
                               attribute_scores=attr_scores[i][kept], features=pooled[i][kept],
                               class_probs=probs[i][kept], kept=kept,
                               nms_threshold=threshold))
    return regions
