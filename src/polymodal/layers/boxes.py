"""Box arithmetic of two-stage detectors in plain torch: IoU, greedy non-maximum suppression (plain and
per class), clipping, and the R-CNN box coding.

Boxes are ``(x0, y0, x1, y1)`` in pixels, areas are ``(x1 − x0)·(y1 − y0)`` (no +1), as torchvision and
detectron2 count them. NMS follows torchvision's kernel exactly: boxes are visited by score, highest
first, ties in input order; a box is dropped when its IoU with a kept box is *greater* than the
threshold; a box of zero area (IoU 0/0) suppresses nothing and is never suppressed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

SCALE_CLAMP = math.log(1000.0 / 16)  # no box grows more than a 16 px anchor into a 1000 px image


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """boxes [N, 4] → areas [N]."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [N, 4], b [M, 4] → IoU [N, M] (NaN where both boxes have zero area and do not overlap)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def _greedy(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, groups: torch.Tensor | None,
            rows_per_chunk: int = 1024) -> torch.Tensor:
    order = torch.sort(scores, descending=True, stable=True).indices
    boxes = boxes[order]
    n = len(order)
    # Which later box each box would suppress, row block by row block: n² booleans, never n² floats.
    suppresses = np.zeros((n, n), dtype=bool)
    for start in range(0, n, rows_per_chunk):
        block = box_iou(boxes[start:start + rows_per_chunk], boxes) > iou_threshold
        if groups is not None:
            g = groups[order]
            block &= g[start:start + rows_per_chunk, None] == g[None, :]
        suppresses[start:start + rows_per_chunk] = block.numpy()
    return order[torch.as_tensor(greedy_keep(suppresses), dtype=torch.long)]


def greedy_keep(suppresses: np.ndarray) -> list[int]:
    """suppresses [N, N] bool (row i: the boxes box i would suppress), rows in visiting order → the
    positions greedy NMS keeps."""
    removed = np.zeros(len(suppresses), dtype=bool)
    kept = []
    for i in range(len(suppresses)):
        if not removed[i]:
            kept.append(i)
            removed |= suppresses[i]
    return kept


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """boxes [N, 4], scores [N] → indices [K] of the kept boxes, by decreasing score."""
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"nms takes boxes [N, 4] and scores [N], got {tuple(boxes.shape)} and {tuple(scores.shape)}")
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long)
    return _greedy(boxes.detach().float().cpu(), scores.detach().float().cpu(), iou_threshold, None).to(boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each group (class, pyramid level) separately: boxes [N, 4], scores [N], groups [N]
    (int) → indices [K] of the kept boxes, by decreasing score across all groups."""
    if groups.shape != scores.shape:
        raise ValueError(f"batched_nms takes one group per box, got {tuple(groups.shape)} for {tuple(scores.shape)}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"batched_nms takes boxes [N, 4] and scores [N], got {tuple(boxes.shape)} and "
                         f"{tuple(scores.shape)}")
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long)
    return _greedy(boxes.detach().float().cpu(), scores.detach().float().cpu(), iou_threshold,
                   groups.detach().cpu()).to(boxes.device)


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """boxes [..., 4] clamped into the image [0, width] × [0, height] (a new tensor)."""
    if not torch.isfinite(boxes).all():
        raise ValueError("boxes hold NaN or infinite coordinates")
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def nonempty(boxes: torch.Tensor, min_side: float = 0.0) -> torch.Tensor:
    """boxes [N, 4] → [N] bool: both sides longer than ``min_side``."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_side) & ((boxes[:, 3] - boxes[:, 1]) > min_side)


def decode_boxes(deltas: torch.Tensor, boxes: torch.Tensor, weights: tuple[float, float, float, float],
                 scale_clamp: float = SCALE_CLAMP) -> torch.Tensor:
    """The R-CNN box coding, inverted: deltas [N, 4k] (dx, dy, dw, dh per class, divided by
    ``weights``) applied to boxes [N, 4] → boxes [N, 4k]. Centres move by (dx·w, dy·h); sides scale by
    exp(dw), exp(dh), clamped at ``scale_clamp``."""
    boxes = boxes.to(deltas.dtype)
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    cx = boxes[:, 0, None] + 0.5 * w
    cy = boxes[:, 1, None] + 0.5 * h
    wx, wy, ww, wh = weights
    dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
    dw = (deltas[:, 2::4] / ww).clamp(max=scale_clamp)
    dh = (deltas[:, 3::4] / wh).clamp(max=scale_clamp)
    px, py = dx * w + cx, dy * h + cy
    pw, ph = torch.exp(dw) * w, torch.exp(dh) * h
    out = torch.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], dim=-1)  # [N, k, 4]
    return out.reshape(deltas.shape)
