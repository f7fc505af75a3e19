"""Relative position biases added to attention logits (T5's buckets; LayoutLMv2 and v3).

The bias of query i and key j is a learned value per head for the bucket of ``pos[j] − pos[i]``:
exact buckets for small distances, logarithmic ones up to ``max_distance``, one bucket beyond, and
separate halves for keys before and after the query. LayoutLM adds a 1-D bias over token
positions and a 2-D one over box coordinates (x0 and the bottom edge y1), each its own table.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def relative_buckets(relative: torch.Tensor, num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """Bidirectional T5 buckets of integer offsets ``relative`` (any shape) → bucket ids in [0, num_buckets)."""
    half = num_buckets // 2
    ret = (relative > 0).long() * half
    n = relative.abs()
    max_exact = half // 2
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (half - max_exact)).long()
    large = large.clamp(max=half - 1)
    return ret + torch.where(n < max_exact, n, large)


class RelativeBias(nn.Module):
    """positions [B, N] (long) → bias [B, heads, N, N] for offsets ``pos[key] − pos[query]``.

    The table is a bias-free ``Linear(num_buckets, heads)`` (the reference's layout: ``weight``
    [heads, num_buckets]). Buckets are computed once for the 2·max_distance + 1 distinct clamped
    offsets and gathered, so the cost is one [B, N, N] index and one gather per call.
    """

    def __init__(self, heads: int, num_buckets: int, max_distance: int):
        super().__init__()
        self.table = nn.Linear(num_buckets, heads, bias=False)
        self.num_buckets, self.max_distance = num_buckets, max_distance

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        d = self.max_distance
        offsets = torch.arange(-d, d + 1, device=positions.device)
        buckets = relative_buckets(offsets, self.num_buckets, d)  # [2d + 1]
        rel = (positions.unsqueeze(-2) - positions.unsqueeze(-1)).clamp(-d, d) + d  # [B, N, N]
        table = self.table.weight[:, buckets]  # [heads, 2d + 1]
        return table[:, rel].transpose(0, 1)  # [B, heads, N, N]


class LayoutBias(nn.Module):
    """LayoutLM's attention bias: 1-D over token positions plus 2-D over x0 and y1 of the boxes.

    ``forward(positions [B, N], boxes [B, N, 4])`` → [B, heads, N, N], or None when both are off.
    """

    def __init__(self, heads: int, *, one_d: bool = True, two_d: bool = True, bins: int = 32, max_distance: int = 128,
                 bins_2d: int = 64, max_distance_2d: int = 256):
        super().__init__()
        self.rel_1d = RelativeBias(heads, bins, max_distance) if one_d else None
        self.rel_x = RelativeBias(heads, bins_2d, max_distance_2d) if two_d else None
        self.rel_y = RelativeBias(heads, bins_2d, max_distance_2d) if two_d else None

    def forward(self, positions: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor | None:
        bias = None
        if self.rel_x is not None:
            bias = self.rel_x(boxes[..., 0]) + self.rel_y(boxes[..., 3])
        if self.rel_1d is not None:
            one = self.rel_1d(positions)
            bias = one if bias is None else bias + one
        return bias
