"""Vision Transformer (Dosovitskiy et al.): patches → linear embed + position + CLS → encoder → head.

A :class:`ModalityTransformer` whose stem patchifies images (or a conv stem). The same class is
CLIP's image tower (``pre_norm=True``, no patch bias, ``output_dim`` set) and a plain ImageNet
classifier (``num_classes`` set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import ConvStem, PatchEmbed, resample_pos_embed
from ..registry import register_family, register_preset
from .modality_transformer import ModalityTransformer


@dataclass
class ViTConfig:
    image_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_hidden: int = 3072
    act: str = "gelu"
    eps: float = 1e-6
    patch_bias: bool = True
    pre_norm: bool = False  # CLIP's ln_pre on [CLS; patches] + pos
    pool: str = "cls"  # "cls" or "mean" (mean over patch tokens)
    num_classes: int = 0  # > 0: Linear classification head on the pooled token
    tanh_pooler: bool = False  # HF ViTModel's Linear + tanh pooler on CLS
    output_dim: int | None = None  # CLIP: Linear(width, output_dim, bias=False) after pooling
    drop_path: float = 0.0
    dropout: float = 0.0
    stem: str = "patch"  # "patch" (linear patchify) or "conv" (ConvStem; 2 ** len(stem_channels) == patch_size)
    stem_channels: tuple[int, ...] = (32, 64, 128)

    def __post_init__(self):
        self.stem_channels = tuple(self.stem_channels)  # a list after a JSON round trip

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


def _stem(c: ViTConfig) -> nn.Module:
    if c.stem == "patch":
        return PatchEmbed(c.patch_size, c.in_chans, c.width, bias=c.patch_bias)
    if c.stem != "conv":
        raise ValueError(f"ViTConfig.stem must be 'patch' or 'conv', got {c.stem!r}")
    if 2 ** len(c.stem_channels) != c.patch_size:
        raise ValueError(f"a conv stem with {len(c.stem_channels)} stages has stride {2 ** len(c.stem_channels)}, "
                         f"not the patch size {c.patch_size}")
    return ConvStem(c.in_chans, c.width, tuple(c.stem_channels))


class VisionTransformer(ModalityTransformer):
    """[B, C, H, W] images → logits [B, num_classes] or embeddings [B, output_dim or width]: the
    :class:`ModalityTransformer` with an image stem, built from a :class:`ViTConfig`."""

    def __init__(self, config: ViTConfig):
        c = config
        super().__init__(_stem(c), c.grid**2, c.width, c.layers, c.heads, c.output_dim, mlp_hidden=c.mlp_hidden,
                         act=c.act, eps=c.eps, pre_norm=c.pre_norm, drop_path=c.drop_path, dropout=c.dropout,
                         pool=c.pool, tanh_pooler=c.tanh_pooler, num_classes=c.num_classes)
        self.config = config

    def positions(self, images: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """Position embeddings, resampled (bicubic) when H×W differs from the configured size."""
        grid = (images.shape[-2] // self.config.patch_size, images.shape[-1] // self.config.patch_size)
        if grid == (self.config.grid, self.config.grid):
            return self.pos_embed
        return resample_pos_embed(self.pos_embed[0], grid).unsqueeze(0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] → logits [B, num_classes] when a head is configured, else the
        pooled (and, with ``output_dim``, projected) embedding [B, output_dim or width]."""
        return super().forward(images)

def _example_inputs(c: ViTConfig) -> dict:
    return {"images": torch.randn(2, c.in_chans, c.image_size, c.image_size)}


register_family("vit", ViTConfig, VisionTransformer, example_inputs=_example_inputs)


def vit_config(width: int, layers: int, heads: int, patch: int, image: int = 224, **kw) -> ViTConfig:
    """A ViT with the paper's MLP ratio 4."""
    return ViTConfig(image_size=image, patch_size=patch, width=width, layers=layers, heads=heads,
                     mlp_hidden=4 * width, **kw)


for _name, _args in {"vit-b-16": (768, 12, 12, 16), "vit-b-32": (768, 12, 12, 32), "vit-l-14": (1024, 24, 16, 14),
                     "vit-l-16": (1024, 24, 16, 16), "vit-h-14": (1280, 32, 16, 14)}.items():
    register_preset(_name)(lambda a=_args: vit_config(*a, num_classes=1000))


@register_preset("vit-tiny")
def _vit_tiny() -> ViTConfig:
    return vit_config(64, 2, 2, 8, image=32, num_classes=10)
