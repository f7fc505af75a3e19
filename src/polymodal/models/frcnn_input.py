"""Pictures → the detector's input batch, as the bottom-up-attention demos prepare it: the short side
resized to ``min_size`` (the long side capped at ``max_size``; bilinear, no antialiasing), the pixel mean
subtracted and divided by the std, padded at the right and bottom with zeros to the batch's largest."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resized_size(h: int, w: int, min_size: int, max_size: int) -> tuple[int, int]:
    """The (h, w) a picture is resized to: short side ``min_size``, long side at most ``max_size``."""
    scale = min_size / min(h, w)
    new_h, new_w = (min_size, scale * w) if h < w else (scale * h, min_size)
    if max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def prepare_images(pictures: list[torch.Tensor], c) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """pictures: each [H, W, 3], 0–255, channels already in ``c.channel_order`` → images [B, 3, H', W']
    (normalised, padded), sizes [B, 2] (long: h, w after resizing), scales [B, 2] (original / resized, y x)."""
    if not pictures:
        raise ValueError("no pictures to prepare")
    mean = torch.tensor(c.pixel_mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(c.pixel_std, dtype=torch.float32).view(3, 1, 1)
    resized, raw = [], []
    for picture in pictures:
        if picture.dim() != 3 or picture.shape[-1] != 3:
            raise ValueError(f"a picture is [H, W, 3], got {tuple(picture.shape)}")
        h, w = picture.shape[:2]
        size = resized_size(h, w, c.min_size, c.max_size)
        x = F.interpolate(picture.float().permute(2, 0, 1)[None], size, mode="bilinear", align_corners=False)[0]
        resized.append((x - mean) / std)
        raw.append((h, w))
    sizes = torch.tensor([x.shape[-2:] for x in resized])
    height, width = (int(v) for v in sizes.max(0).values)
    images = torch.stack([F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2])) for x in resized])
    return images, sizes, torch.tensor(raw, dtype=torch.float32) / sizes
