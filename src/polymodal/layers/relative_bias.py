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
    """positions [B|1, N] (long) → bias [B|1, heads, N, N] for offsets ``pos[key] − pos[query]``.

    The table is a bias-free ``Linear(num_buckets, heads)`` (the reference's layout: ``weight``
    [heads, num_buckets]). Buckets are computed once for the 2·max_distance + 1 distinct clamped
    offsets and gathered, so the cost is one [B, N, N] index and one gather per call. Positions
    shared by the batch are passed once ([1, N]) and their bias broadcasts.
    """

    def __init__(self, heads: int, num_buckets: int, max_distance: int):
        super().__init__()
        self.table = nn.Linear(num_buckets, heads, bias=False)
        self.num_buckets, self.max_distance = num_buckets, max_distance

    def forward(self, positions: torch.Tensor, scale: float = 1.0, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``scale`` multiplies the bias and ``dtype`` is its type; both are applied to the small
        [heads, 2·max_distance + 1] table before the gather, not to the [B, heads, N, N] result."""
        return self.offset_table(scale, dtype)[:, self.offsets(positions)].transpose(0, 1)  # [B, heads, N, N]

    def offsets(self, positions: torch.Tensor) -> torch.Tensor:
        """positions [B|1, N] → clamped offsets ``pos[key] − pos[query] + max_distance`` [B|1, N, N] in [0, 2d]."""
        d = self.max_distance
        return (positions.unsqueeze(-2) - positions.unsqueeze(-1)).clamp_(-d, d).add_(d)

    def offset_table(self, scale: float = 1.0, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The bias of each clamped offset: [heads, 2·max_distance + 1], times ``scale``, in ``dtype``."""
        d = self.max_distance
        buckets = relative_buckets(torch.arange(-d, d + 1, device=self.table.weight.device), self.num_buckets, d)
        table = self.table.weight[:, buckets]
        if scale != 1.0:
            table = table * scale
        return table if dtype is None else table.to(dtype)


class LayoutBias(nn.Module):
    """LayoutLM's attention bias: 1-D over token positions plus 2-D over x0 and y1 of the boxes.

    ``forward(positions [B|1, N], boxes [B, N, 4], scale, dtype)`` → [B, heads, N, N] (times
    ``scale``, in ``dtype``), or None when both are off.
    """

    def __init__(self, heads: int, *, one_d: bool = True, two_d: bool = True, bins: int = 32, max_distance: int = 128,
                 bins_2d: int = 64, max_distance_2d: int = 256):
        super().__init__()
        self.rel_1d = RelativeBias(heads, bins, max_distance) if one_d else None
        self.rel_x = RelativeBias(heads, bins_2d, max_distance_2d) if two_d else None
        self.rel_y = RelativeBias(heads, bins_2d, max_distance_2d) if two_d else None

    def forward(self, positions: torch.Tensor, boxes: torch.Tensor, scale: float = 1.0,
                dtype: torch.dtype | None = None) -> torch.Tensor | None:
        parts = []
        if self.rel_x is not None:
            parts.append(self._two_d(boxes, scale, dtype))
        if self.rel_1d is not None:
            parts.append(self.rel_1d(positions, scale, dtype))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0].contiguous()
        if torch.is_grad_enabled():
            return (parts[0] + parts[1]).contiguous()
        # Inference: one pass writes the sum into a contiguous [B, heads, N, N] buffer (the gather
        # comes out heads-major), which the attention then reads per row without copies.
        out = torch.empty(torch.broadcast_shapes(parts[0].shape, parts[1].shape), dtype=parts[0].dtype,
                          device=parts[0].device)
        return torch.add(parts[0], parts[1], out=out)

    def _two_d(self, boxes: torch.Tensor, scale: float, dtype: torch.dtype | None) -> torch.Tensor:
        """The x0 and y1 biases [B, heads, N, N] in one gather (int32 offsets) from the
        [heads, (2d+1)²] table of every (x offset, y offset) pair's summed bias (the sum rounds as
        x + y would per element). A heads-last row gather (``F.embedding``) is faster alone but
        leaves the layout the attention reads to one more pass: no faster in all."""
        tx, ty = self.rel_x.offset_table(scale, dtype), self.rel_y.offset_table(scale, dtype)
        joint = (tx[:, :, None] + ty[:, None, :]).flatten(1)  # [heads, (2dx+1)·(2dy+1)]
        # int32 offsets halve the index traffic; an exported graph gathers with int64 (what ONNX's GatherND takes).
        kind = torch.long if torch.compiler.is_exporting() else torch.int32
        index = self.rel_x.offsets(boxes[..., 0].to(kind)).mul_(ty.shape[1]).add_(self.rel_y.offsets(boxes[..., 3].to(kind)))
        return joint[:, index].transpose(0, 1)


def attention_bias(bias: torch.Tensor | None, keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """One additive attention mask for every layer: ``bias`` [B, H, N, N] (or None) plus −inf on
    padded keys (``keep`` [B, N], 1 = attend) → [B, H|1, N, N] in ``dtype``. Built once per forward
    (the trunk would otherwise merge the padding into the bias again in each layer)."""
    pad = torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(keep == 0, float("-inf"))
    pad = pad[:, None, None, :]
    if bias is None:
        return pad
    bias = bias.to(dtype)
    # Nothing padded: skip a pass over [B, H, N, N] (on CPU only: elsewhere the check would wait for the
    # device; not while exporting, where a branch on the data cannot be traced).
    if keep.device.type == "cpu" and not torch.compiler.is_exporting() and bool(keep.all()):
        return bias
    return bias.add_(pad) if not torch.is_grad_enabled() and bias.shape[0] == pad.shape[0] else bias + pad
