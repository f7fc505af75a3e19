"""S3D-G (Xie et al., 2018) as MIL-NCE trained it on HowTo100M (Miech et al., 2020): the frozen video
encoder whose per-second 512-d ``video_embedding`` VideoCLIP consumes, and its word-embedding text
module (same 512-d space).

    video [B, 3, T, H, W] in [0, 1] ─ space-to-depth ─ conv1 (2×4×4, TF "SAME") ─ pool ─ conv_2b ─ conv_2c
      ─ gating ─ pool ─ mixed_3b, 3c ─ pool ─ mixed_4b…4f ─ pool ─ mixed_5b, 5c ─ mean over T, H, W ─ fc
    word ids [B, 16] ─ embedding ─ ReLU(fc1) ─ max over the 16 positions ─ fc2

Separable 3×3×3 convolutions are a 1×3×3 spatial conv then a 3×1×1 temporal one, each with
BatchNorm + ReLU; every inception branch ends in self-gating (``x · σ(fc(mean x))``). Module names
follow the official ``s3dg.py``, so ``s3d_howto100m.pth`` loads key for key (``weights/s3d.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_family, register_preset


@dataclass
class S3DConfig:
    embed_dim: int = 512  # the joint video–text space (the reference's num_classes)
    gating: bool = True
    space_to_depth: bool = True  # the TPU-friendly stem the HowTo100M model was trained with
    vocab_size: int = 66250  # the text module's words + padding (id 0)
    word_dim: int = 300
    text_hidden: int = 2048
    max_words: int = 16


class ConvBN(nn.Module):
    """Conv3d (no bias) + BatchNorm + ReLU; ``separable``: a 1×k×k spatial then a k×1×1 temporal one."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int], stride: int = 1,
                 padding: int | tuple[int, int, int] = 0, separable: bool = False):
        super().__init__()
        self.separable = separable and kernel[0] != 1
        if self.separable:
            p = padding if isinstance(padding, int) else padding[1]
            t = padding if isinstance(padding, int) else padding[0]
            self.conv1 = nn.Conv3d(cin, cout, (1, kernel[1], kernel[2]), (1, stride, stride), (0, p, p), bias=False)
            self.bn1 = nn.BatchNorm3d(cout)
            self.conv2 = nn.Conv3d(cout, cout, (kernel[0], 1, 1), (stride, 1, 1), (t, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(cout)
        else:
            self.conv1 = nn.Conv3d(cin, cout, kernel, stride, padding, bias=False)
            self.bn1 = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))) if self.separable else x


class SelfGating(nn.Module):
    """[B, C, T, H, W] → the same, each channel scaled by sigmoid(fc(its mean over T, H, W))."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))[:, :, None, None, None] * x


def max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """TensorFlow's "SAME" max-pool as the reference replicates it: zero padding of max(k − s, 0) per
    axis (the smaller half first), then ``ceil_mode``. Zeros, not −inf: the inputs follow a ReLU."""
    pad = []
    for k, s in zip(reversed(kernel), reversed(stride)):  # F.pad takes the last axis first
        total = max(k - s, 0)
        pad += [total // 2, total - total // 2]
    return F.max_pool3d(F.pad(x, pad), kernel, stride, ceil_mode=True)


class InceptionBlock(nn.Module):
    """Four branches — 1×1×1; 1×1×1 → sep 3×3×3; 1×1×1 → sep 3×3×3; 3×3×3 max-pool → 1×1×1 — each
    gated, concatenated along channels."""

    def __init__(self, cin: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3: int, gating: bool = True):
        super().__init__()
        self.conv_b0 = ConvBN(cin, b0, (1, 1, 1))
        self.conv_b1_a = ConvBN(cin, b1a, (1, 1, 1))
        self.conv_b1_b = ConvBN(b1a, b1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = ConvBN(cin, b2a, (1, 1, 1))
        self.conv_b2_b = ConvBN(b2a, b2b, (3, 3, 3), padding=1, separable=True)
        self.conv_b3_b = ConvBN(cin, b3, (1, 1, 1))
        self.gating = gating
        self.output_dim = b0 + b1b + b2b + b3
        if gating:
            self.gating_b0, self.gating_b1 = SelfGating(b0), SelfGating(b1b)
            self.gating_b2, self.gating_b3 = SelfGating(b2b), SelfGating(b3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.conv_b0(x)
        b1 = self.conv_b1_b(self.conv_b1_a(x))
        b2 = self.conv_b2_b(self.conv_b2_a(x))
        b3 = self.conv_b3_b(F.max_pool3d(x, 3, stride=1, padding=1))
        if self.gating:
            b0, b1, b2, b3 = self.gating_b0(b0), self.gating_b1(b1), self.gating_b2(b2), self.gating_b3(b3)
        return torch.cat((b0, b1, b2, b3), dim=1)


class WordEmbeddingText(nn.Module):
    """Word ids [B, W] (0 = padding) → [B, embed_dim]: embedding → ReLU(fc1) → max over the W
    positions (padding included, as the reference does) → fc2."""

    def __init__(self, c: S3DConfig):
        super().__init__()
        self.word_embd = nn.Embedding(c.vocab_size, c.word_dim)
        self.fc1 = nn.Linear(c.word_dim, c.text_hidden)
        self.fc2 = nn.Linear(c.text_hidden, c.embed_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(self.word_embd(ids))).max(dim=1).values)


# (b0, b1a, b1b, b2a, b2b, b3) of each inception block, and the pools before 3b, 4b and 5b
_BLOCKS = {"mixed_3b": (64, 96, 128, 16, 32, 32), "mixed_3c": (128, 128, 192, 32, 96, 64),
           "mixed_4b": (192, 96, 208, 16, 48, 64), "mixed_4c": (160, 112, 224, 24, 64, 64),
           "mixed_4d": (128, 128, 256, 24, 64, 64), "mixed_4e": (112, 144, 288, 32, 64, 64),
           "mixed_4f": (256, 160, 320, 32, 128, 128), "mixed_5b": (256, 160, 320, 32, 128, 128),
           "mixed_5c": (384, 192, 384, 48, 128, 128)}
_POOL_BEFORE = {"mixed_3b": ((1, 3, 3), (1, 2, 2)), "mixed_4b": ((3, 3, 3), (2, 2, 2)),
                "mixed_5b": ((2, 2, 2), (2, 2, 2))}


class S3D(nn.Module):
    """Video [B, 3, T, H, W] (RGB in [0, 1]; T, H, W even with space-to-depth) → ``video_embedding``
    [B, embed_dim] and ``mixed_5c`` [B, 1024]; :meth:`encode_text` for word ids [B, W]."""

    def __init__(self, config: S3DConfig):
        super().__init__()
        self.config = c = config
        if c.space_to_depth:
            self.conv1 = ConvBN(24, 64, (2, 4, 4), padding=(1, 2, 2))
        else:
            self.conv1 = ConvBN(3, 64, (3, 7, 7), stride=2, padding=(1, 3, 3))
        self.conv_2b = ConvBN(64, 64, (1, 1, 1))
        self.conv_2c = ConvBN(64, 192, (3, 3, 3), padding=1, separable=True)
        if c.gating:
            self.gating = SelfGating(192)
        width = 192
        for name, sizes in _BLOCKS.items():
            block = InceptionBlock(width, *sizes, gating=c.gating)
            self.add_module(name, block)
            width = block.output_dim
        self.fc = nn.Linear(width, c.embed_dim)
        self.text_module = WordEmbeddingText(c)

    @staticmethod
    def space_to_depth(x: torch.Tensor) -> torch.Tensor:
        """[B, C, T, H, W] → [B, 8C, T/2, H/2, W/2], each 2×2×2 cube's values as channels (the
        reference's order: the cube offsets outermost)."""
        b, c, t, h, w = x.shape
        if t % 2 or h % 2 or w % 2:
            raise ValueError(f"S3D with space-to-depth needs even frames, height and width; got {t}×{h}×{w}")
        x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
        return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)

    def forward_features(self, video: torch.Tensor, intermediates: bool = False) -> dict:
        """``mixed_5c`` [B, 1024, T', H', W'] before pooling; with ``intermediates`` also
        ``after_conv1`` and ``after_gating_2c``."""
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"expected video [B, 3, T, H, W], got {tuple(video.shape)}")
        out = {}
        x = self.space_to_depth(video) if self.config.space_to_depth else video
        x = self.conv1(x)
        if self.config.space_to_depth:
            x = x[:, :, 1:, 1:, 1:]  # TF "SAME" for the even 2×4×4 kernel
        if intermediates:
            out["after_conv1"] = x
        x = self.conv_2c(self.conv_2b(max_pool_same(x, (1, 3, 3), (1, 2, 2))))
        if self.config.gating:
            x = self.gating(x)
        if intermediates:
            out["after_gating_2c"] = x
        for name in _BLOCKS:
            if name in _POOL_BEFORE:
                x = max_pool_same(x, *_POOL_BEFORE[name])
            x = getattr(self, name)(x)
        out["mixed_5c"] = x
        return out

    def forward(self, video: torch.Tensor, text_ids: torch.Tensor | None = None) -> dict:
        """``video_embedding`` [B, embed_dim] and pooled ``mixed_5c`` [B, 1024]; with ``text_ids`` [N, W]
        also their ``text_embedding`` [N, embed_dim] (the reference's ``text_module``)."""
        pooled = self.forward_features(video)["mixed_5c"].mean(dim=(2, 3, 4))
        out = {"video_embedding": self.fc(pooled), "mixed_5c": pooled}
        if text_ids is not None:
            out["text_embedding"] = self.encode_text(text_ids)
        return out

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Word ids [B, W] (:class:`S3DWords`) → ``text_embedding`` [B, embed_dim]."""
        return self.text_module(ids)


class S3DWords:
    """The text module's tokenizer: lower-case, ``[\\w']+`` words, those in the dictionary (``dict.npy``,
    id = index + 1) kept in order, the rest dropped, zero-padded or cut to ``max_words``."""

    def __init__(self, words: list[str], max_words: int = 16):
        self.index = {w: i + 1 for i, w in enumerate(words)}
        self.max_words = max_words

    @classmethod
    def from_file(cls, path: str | Path, max_words: int = 16) -> "S3DWords":
        words = np.load(path, allow_pickle=False)  # an array of strings: never unpickle a user's file
        if words.ndim != 1 or words.dtype.kind != "U":
            raise ValueError(f"{path}: expected a 1-D array of words, got {words.dtype} {words.shape}")
        return cls(words.tolist(), max_words)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        rows = torch.zeros(len(texts), self.max_words, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.index[w] for w in re.findall(r"[\w']+", text.lower()) if w in self.index][:self.max_words]
            rows[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return rows


def _example_inputs(c: S3DConfig) -> dict:
    # two clips: BatchNorm trains on 1×1×1 maps at the end
    return {"video": torch.rand(2, 3, 8, 32, 32), "text_ids": torch.randint(0, c.vocab_size, (2, c.max_words))}


register_family("s3d", S3DConfig, S3D, example_inputs=_example_inputs)


@register_preset("s3d-howto100m")
def _s3d_howto100m() -> S3DConfig:
    """The MIL-NCE HowTo100M model (``s3d_howto100m.pth``): 512-d space, 66,250 words."""
    return S3DConfig()


@register_preset("s3d-tiny-text")
def _s3d_tiny_text() -> S3DConfig:
    """The S3D of tests/fixtures/s3d: the full video network, a 16-word text module."""
    return S3DConfig(vocab_size=17)
