"""RoI-align in plain torch (He et al., Mask R-CNN): average-pooled bilinear samples of a feature
map inside each box — how a region's features are read off an image tower without torchvision.

Coordinates follow torchvision's ``roi_align(aligned=True)``: a box (x0, y0, x1, y1) in input pixels
is scaled by ``spatial_scale`` and shifted by half a cell, so that feature cell i covers [i, i + 1)
and its centre is sampled exactly. Each output bin averages ``sampling_ratio``² bilinear samples
(``F.grid_sample``; samples outside the map contribute zeros, as torchvision's do beyond one cell).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def roi_align(features: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor, output_size: tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = 2) -> torch.Tensor:
    """features [B, C, H, W], boxes [K, 4] (x0, y0, x1, y1 in input pixels), batch_index [K] (long,
    which image each box is on) → [K, C, ph, pw]."""
    if features.dim() != 4 or boxes.dim() != 2 or boxes.shape[1] != 4 or batch_index.shape != boxes.shape[:1]:
        raise ValueError(f"expected features [B, C, H, W], boxes [K, 4], batch_index [K]; got "
                         f"{tuple(features.shape)}, {tuple(boxes.shape)}, {tuple(batch_index.shape)}")
    if boxes.shape[0] == 0:
        return features.new_zeros(0, features.shape[1], *output_size)
    _, c, h, w = features.shape
    ph, pw = output_size
    s = sampling_ratio
    b = boxes.to(features.dtype) * spatial_scale - 0.5  # aligned: cell centres at integer coordinates
    x0, y0, x1, y1 = b.unbind(-1)
    # Sample positions inside each bin: (bin + (k + 0.5) / s) · bin size, k = 0..s-1.
    fx = (torch.arange(pw * s, device=b.device, dtype=b.dtype) + 0.5) / (pw * s)  # [pw·s] in (0, 1)
    fy = (torch.arange(ph * s, device=b.device, dtype=b.dtype) + 0.5) / (ph * s)
    xs = x0[:, None] + fx[None] * (x1 - x0)[:, None]  # [K, pw·s]
    ys = y0[:, None] + fy[None] * (y1 - y0)[:, None]  # [K, ph·s]
    # grid_sample (align_corners=False) puts -1 at the left edge of cell 0, i.e. coordinate -0.5.
    gx = (xs + 0.5) / w * 2 - 1
    gy = (ys + 0.5) / h * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(-1, ph * s, -1), gy[:, :, None].expand(-1, -1, pw * s)], dim=-1)
    samples = F.grid_sample(features[batch_index], grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # [K, C, ph·s, pw·s]
    return samples.view(-1, c, ph, s, pw, s).mean(dim=(3, 5))
