"""Single-channel maps — depth (as disparity) and thermal — from 16-bit PNG or .npy, and the
patch stem ImageBind uses for both: Conv2d(1 → D, kernel = stride = p, no bias) → LayerNorm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..arrays import read_npy
from .image import MAX_PIXELS, MAX_RESIZED_PIXELS, check_pixels
from .registry import Modality, register_modality

MAP_EXTENSIONS = (".png", ".npy", ".tif", ".tiff")


class MapReadError(ValueError):
    """A depth/thermal file could not be read or is not a single-channel 2-D map; names the file."""


def load_map(path: str | Path) -> torch.Tensor:
    """A single-channel map as float32 [H, W]: .npy ([H, W] or [1, H, W]) or a greyscale image
    (16-bit PNG values are kept as they are, 0–65535; 8-bit as 0–255). Invalid readings (NaN, ±inf:
    a disparity map's "no match") are missing and take the mean of the valid ones; a map with none
    valid is an error."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MAP_EXTENSIONS:
        raise MapReadError(f"{path}: expected a depth/thermal map ({', '.join(MAP_EXTENSIONS)}), got {suffix!r}")
    try:
        if suffix == ".npy":
            arr = read_npy(path, MAX_PIXELS * 8)  # the header's size checked before the array is read
        else:
            with Image.open(path) as img:
                check_pixels(img, path)
                if img.mode not in ("I;16", "I;16B", "I;16L", "I", "F", "L"):
                    raise MapReadError(f"{path}: a map must be single-channel (16-bit or 8-bit grey), "
                                       f"got image mode {img.mode}")
                arr = np.asarray(img)
    except MapReadError:
        raise
    except Exception as e:
        raise MapReadError(f"{path}: not a readable map ({e})") from e
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number) or min(arr.shape) == 0:
        raise MapReadError(f"{path}: expected a single-channel map [H, W], got shape {arr.shape} ({arr.dtype})")
    arr = arr.astype(np.float32)
    valid = np.isfinite(arr)
    if not valid.any():
        raise MapReadError(f"{path}: every value of the map is NaN or infinite")
    if not valid.all():  # invalid readings (a disparity map's inf, a sensor's NaN) are missing, not the map
        arr = np.where(valid, arr, np.float32(arr[valid].mean()))
    return torch.from_numpy(arr)


def depth_to_disparity(depth: torch.Tensor, min_depth: float = 0.1) -> torch.Tensor:
    """Metres [..., H, W] → disparity 1/depth (ImageBind's depth input is disparity); depths
    below ``min_depth`` (including 0 = no reading) are clamped."""
    return 1.0 / depth.clamp(min=min_depth)


def resize_map(x: torch.Tensor, size: int) -> torch.Tensor:
    """[H, W] → [1, size, size]: shortest side to ``size`` (bilinear), centre crop."""
    h, w = x.shape
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if nh * nw > MAX_RESIZED_PIXELS:
        raise MapReadError(f"a {w}×{h} map would be {nw}×{nh} at {size} px: too thin")
    x = F.interpolate(x[None, None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[:, top:top + size, left:left + size]


class MapStem(nn.Module):
    """[B, 1, H, W] → [B, (H/p)·(W/p), D]: non-overlapping patches + LayerNorm."""

    def __init__(self, dim: int, patch: int = 16, eps: float = 1e-5):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch, bias=False)
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected single-channel maps [B, 1, H, W], got {tuple(x.shape)}")
        if x.shape[-1] % self.patch or x.shape[-2] % self.patch:
            raise ValueError(f"map size {x.shape[-2]}x{x.shape[-1]} is not a multiple of the patch size {self.patch}")
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


def _stem(kind: str):
    def build(c, width: int) -> tuple[nn.Module, int]:
        patch = getattr(c, f"{kind}_patch")
        return MapStem(width, patch), (c.map_size // patch) ** 2

    return build


register_modality(Modality("depth", encoder="depth", sample_dims=3, stem=_stem("depth"),
                           read=lambda path, processor: processor.depth(load_map(path))))
register_modality(Modality("thermal", encoder="thermal", sample_dims=3, stem=_stem("thermal"),
                           read=lambda path, processor: processor.thermal(load_map(path))))
