"""Image patch embedding and position-embedding resampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_images(x: torch.Tensor, in_chans: int, stride: int, what: str) -> None:
    """Raise a ValueError naming the shape unless ``x`` is [B, in_chans, H, W] with H, W multiples of
    ``stride`` (``what`` names the stride in the message)."""
    if x.dim() != 4 or x.shape[1] != in_chans:
        raise ValueError(f"expected images [B, {in_chans}, H, W], got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % stride or w % stride:
        raise ValueError(f"image size {h}x{w} is not a multiple of {what} {stride}")


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution: [B, C, H, W] → [B, (H/p)·(W/p), D]."""

    def __init__(self, patch_size: int, in_chans: int, dim: int, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.proj.in_channels, self.patch_size, "the patch size")
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvStem(nn.Module):
    """A convolutional stem in place of the patchify convolution (the ViT paper's hybrid; Xiao et al.
    2021, "Early convolutions help transformers see better"): per entry of ``channels`` a 3×3
    convolution, BatchNorm, ReLU and 2×2 max-pooling, then a 1×1 convolution to ``dim``.

    [B, C, H, W] → [B, (H/p)·(W/p), D] with p = 2 ** len(channels), the same tokens as a patch
    size p. Shapes learned this way are translation-equivariant below the token grid, which a
    linear patch embedding trained on a small dataset is not (it learns colours and layout fast,
    shapes hardly at all — measured on the world in docs/benchmarks.md). Under DDP on CPU the
    BatchNorm statistics are per process (``SyncBatchNorm`` needs CUDA).
    """

    def __init__(self, in_chans: int, dim: int, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers, prev = [], in_chans
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            prev = ch
        layers.append(nn.Conv2d(prev, dim, 1))
        self.net = nn.Sequential(*layers)
        self.in_chans, self.patch_size = in_chans, 2 ** len(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_chans, self.patch_size, "the stem's stride")
        return self.net(x).flatten(2).transpose(1, 2)


class FrameStem(nn.Module):
    """A 2-D image stem applied to every frame of a clip, tokens averaged over time: clips
    [B, C, T, H, W] or single images [B, C, H, W] → [B, N, D]. An image gives exactly the 2-D
    stem's tokens (what a repeated-frame image gives too), so a CLIP tower keeps its embeddings."""

    def __init__(self, stem: nn.Module):
        super().__init__()
        self.stem = stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return self.stem(x)
        if x.dim() != 5:
            raise ValueError(f"expected clips [B, C, T, H, W] or images [B, C, H, W], got {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        tokens = self.stem(x.transpose(1, 2).reshape(b * t, c, h, w))
        return tokens.view(b, t, *tokens.shape[1:]).mean(dim=1)


class VideoPatchEmbed(nn.Module):
    """ImageBind's vision stem: tubelets of ``frames × p × p`` by a strided 3-D convolution.

    Takes clips [B, C, T, H, W] with T == ``frames`` or single images [B, C, H, W], which are
    repeated ``frames`` times along time first (ImageBind's ``PadIm2Video(pad_type="repeat")``).
    Returns [B, (H/p)·(W/p), D].
    """

    def __init__(self, patch_size: int, frames: int, in_chans: int, dim: int, bias: bool = False):
        super().__init__()
        self.patch_size, self.frames = patch_size, frames
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=(frames, patch_size, patch_size),
                              stride=(frames, patch_size, patch_size), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.proj.in_channels
        if x.dim() == 4 and x.shape[1] == c:
            x = x.unsqueeze(2).expand(-1, -1, self.frames, -1, -1)
        if x.dim() != 5 or x.shape[1] != c or x.shape[2] != self.frames:
            raise ValueError(f"expected images [B, {c}, H, W] or clips [B, {c}, {self.frames}, H, W], "
                             f"got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"frame size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)

    @torch.no_grad()
    def inflate_from(self, conv2d_weight: torch.Tensor) -> None:
        """Initialise from a 2-D patch weight [D, C, p, p] so that a repeated image gives exactly the
        2-D embedding (the weight is split evenly over time, as ImageBind inflated CLIP's)."""
        self.proj.weight.copy_(conv2d_weight.unsqueeze(2).expand_as(self.proj.weight) / self.frames)


def resample_pos_embed(pos: torch.Tensor, grid: tuple[int, int], num_prefix: int = 1) -> torch.Tensor:
    """Bicubically resample a learned grid position embedding to a new patch grid.

    Args:
        pos: [num_prefix + g·g, D] (a square grid after ``num_prefix`` class/register tokens).
        grid: the target (rows, cols).

    Returns:
        [num_prefix + rows·cols, D]
    """
    prefix, patches = pos[:num_prefix], pos[num_prefix:]
    old = int(math.isqrt(patches.shape[0]))
    if old * old != patches.shape[0]:
        raise ValueError(f"position embedding of {patches.shape[0]} patches is not a square grid")
    if (old, old) == tuple(grid):
        return pos
    dim = patches.shape[-1]
    patches = patches.reshape(1, old, old, dim).permute(0, 3, 1, 2).float()
    # Antialias only when shrinking: upsampling then matches HF ViT's interpolate_pos_encoding exactly.
    shrink = grid[0] < old or grid[1] < old
    patches = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False, antialias=shrink)
    patches = patches.permute(0, 2, 3, 1).reshape(-1, dim).to(pos.dtype)
    return torch.cat([prefix, patches], dim=0)
