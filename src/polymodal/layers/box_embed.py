"""LayoutLM's 2-D position embedding: a box on the 0–1000 page grid → learned x / y / height /
width embeddings, concatenated (LayoutLMv2 and v3; v1 summed them instead).

Boxes are (x0, y0, x1, y1) integers in [0, 1000]. The corners share the x and y tables; the order
of the concatenation is the reference's: x(x0), y(y0), x(x1), y(y1), h, w.
"""

from __future__ import annotations

import torch
from torch import nn


class BoxEmbedding(nn.Module):
    """boxes [B, N, 4] (long, 0–1000 grid) → [B, N, 4 · coordinate_size + 2 · shape_size].

    Args:
        coordinate_size: width of each corner coordinate's embedding.
        shape_size: width of the height and width embeddings.
        max_position: rows of every table (1024: coordinates 0–1000 and sizes up to 1023).
        clip_shape: clamp height and width to [0, max_position − 1] (v3) instead of requiring
            well-formed boxes (v2 looks them up as they are).
    """

    def __init__(self, coordinate_size: int, shape_size: int, max_position: int = 1024, clip_shape: bool = False):
        super().__init__()
        self.x = nn.Embedding(max_position, coordinate_size)
        self.y = nn.Embedding(max_position, coordinate_size)
        self.h = nn.Embedding(max_position, shape_size)
        self.w = nn.Embedding(max_position, shape_size)
        self.max_position, self.clip_shape = max_position, clip_shape

    @property
    def width(self) -> int:
        return 4 * self.x.embedding_dim + 2 * self.h.embedding_dim

    def forward(self, boxes: torch.Tensor) -> torch.Tensor:
        x0, y0, x1, y1 = boxes.unbind(-1)
        h, w = y1 - y0, x1 - x0
        if self.clip_shape:
            h, w = h.clamp(0, self.max_position - 1), w.clamp(0, self.max_position - 1)
        return torch.cat([self.x(x0), self.y(y0), self.x(x1), self.y(y1), self.h(h), self.w(w)], dim=-1)


def check_boxes(boxes: torch.Tensor, length: int, max_position: int = 1024, name: str = "bbox") -> None:
    """Refuse boxes that are not [B, ``length``, 4] or leave the 0–1000 grid (the tables would
    index out of range; HF raises a bare IndexError there). Only eager CPU tensors are read."""
    if boxes.dim() != 3 or boxes.shape[1] != length or boxes.shape[2] != 4:
        raise ValueError(f"{name} must be [B, {length}, 4] (x0, y0, x1, y1), got {tuple(boxes.shape)}")
    if boxes.dtype.is_floating_point:
        raise ValueError(f"{name} must be integers on the 0–1000 grid, got {boxes.dtype}")
    if boxes.device.type == "cpu" and not torch.compiler.is_compiling() and boxes.numel():
        lo, hi = int(boxes.min()), int(boxes.max())
        if lo < 0 or hi >= max_position:
            raise ValueError(f"{name} has coordinates in [{lo}, {hi}]; boxes must lie on the 0–1000 grid "
                             "(normalise pixel boxes with polymodal.documents.normalize_boxes)")


def grid_boxes(rows: int, cols: int, scale: int = 1000, device=None) -> torch.Tensor:
    """The boxes of a rows × cols grid over the page, row-major: [rows · cols, 4] long, cell (i, j)
    spanning x ∈ [⌊j·scale/cols⌋, ⌊(j+1)·scale/cols⌋], y likewise (the visual tokens' boxes)."""
    xs = torch.div(torch.arange(cols + 1, device=device) * scale, cols, rounding_mode="floor")
    ys = torch.div(torch.arange(rows + 1, device=device) * scale, rows, rounding_mode="floor")
    x0, y0 = xs[:-1].repeat(rows), ys[:-1].repeat_interleave(cols)
    x1, y1 = xs[1:].repeat(rows), ys[1:].repeat_interleave(cols)
    return torch.stack([x0, y0, x1, y1], dim=-1)
