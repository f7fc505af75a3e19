"""RoI max-pooling in plain torch (Girshick, Fast R-CNN), as Caffe and torchvision's ``RoIPool`` compute
it — the pooling the bottom-up-attention detector was trained with.

A box is scaled by ``spatial_scale`` and rounded to whole cells (half away from zero, C's ``round``); its
inclusive cell span [x0, x1] is cut into ``ph × pw`` bins with ``floor`` starts and ``ceil`` ends, each
bin clipped to the map; a bin's value is the maximum inside it, 0 when it is empty. The arithmetic runs
in the features' float type, as the reference kernel's does, so that bin edges agree exactly.
"""

from __future__ import annotations

import torch


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _bin_edges(start: torch.Tensor, end: torch.Tensor, bins: int, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell spans [start, end] (inclusive, [K]) → bin starts and ends [K, bins], clipped to [0, limit]."""
    length = (end - start + 1).clamp(min=1)
    size = length / bins  # the kernel's float bin size
    p = torch.arange(bins, dtype=size.dtype, device=size.device)
    lo = torch.floor(p[None] * size[:, None]) + start[:, None]
    hi = torch.ceil((p[None] + 1) * size[:, None]) + start[:, None]
    return lo.clamp(0, limit).long(), hi.clamp(0, limit).long()


def _range_max(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, dim: int) -> torch.Tensor:
    """Max of ``x`` along ``dim`` over each [lo_i, hi_i) (lo, hi [P]; each non-empty) → that dim of size P."""
    span = int((hi - lo).max())
    idx = lo[:, None] + torch.arange(span, device=lo.device)[None]  # [P, span]
    valid = idx < hi[:, None]
    picked = x.index_select(dim, idx.clamp(max=x.shape[dim] - 1).flatten())
    shape = list(x.shape)
    shape[dim:dim + 1] = [len(lo), span]
    picked = picked.view(shape)
    mask_shape = [1] * len(shape)
    mask_shape[dim:dim + 2] = [len(lo), span]
    return picked.masked_fill(~valid.view(mask_shape), float("-inf")).amax(dim + 1)


def roi_pool(features: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor, output_size: tuple[int, int],
             spatial_scale: float = 1.0) -> torch.Tensor:
    """features [B, C, H, W], boxes [K, 4] (x0, y0, x1, y1 in input pixels), batch_index [K] (long) →
    [K, C, ph, pw]."""
    if features.dim() != 4 or boxes.dim() != 2 or boxes.shape[1] != 4 or batch_index.shape != boxes.shape[:1]:
        raise ValueError(f"expected features [B, C, H, W], boxes [K, 4], batch_index [K]; got "
                         f"{tuple(features.shape)}, {tuple(boxes.shape)}, {tuple(batch_index.shape)}")
    _, c, h, w = features.shape
    ph, pw = output_size
    out = features.new_zeros(len(boxes), c, ph, pw)
    if len(boxes) == 0 or h == 0 or w == 0:
        return out
    cells = _round_half_away(boxes.to(features.dtype) * torch.tensor(spatial_scale, dtype=features.dtype))
    y_lo, y_hi = _bin_edges(cells[:, 1], cells[:, 3], ph, h)
    x_lo, x_hi = _bin_edges(cells[:, 0], cells[:, 2], pw, w)
    for k in range(len(boxes)):
        rows = y_hi[k] > y_lo[k]
        cols = x_hi[k] > x_lo[k]
        if not (rows.any() and cols.any()):
            continue
        top, bottom = int(y_lo[k][rows].min()), int(y_hi[k][rows].max())
        x = features[batch_index[k], :, top:bottom]  # [C, rows the box covers, W]
        col_max = _range_max(x, x_lo[k][cols], x_hi[k][cols], dim=2)  # [C, rows, pw']
        pooled = _range_max(col_max, y_lo[k][rows] - top, y_hi[k][rows] - top, dim=1)  # [C, ph', pw']
        out[k][:, rows.nonzero()[:, 0, None], cols.nonzero()[:, 0][None]] = pooled
    return out
