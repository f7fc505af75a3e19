"""Vision Transformer (Dosovitskiy et al.): patches → linear embed + position + CLS → encoder → head.

The same class is CLIP's image tower (``pre_norm=True``, no patch bias, ``output_dim`` set)
and a plain ImageNet classifier (``num_classes`` set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import ConvStem, PatchEmbed, PreNormBlock, Transformer, resample_pos_embed
from ..layers.init import init_weights


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


class VisionTransformer(nn.Module):
    """[B, C, H, W] images → logits [B, num_classes] or embeddings [B, output_dim or width]."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        c = self.config = config
        if c.pool not in ("cls", "mean"):
            raise ValueError(f"ViTConfig.pool must be 'cls' or 'mean', got {c.pool!r}")
        self.patch_embed = _stem(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + c.grid**2, c.width))
        self.norm_pre = nn.LayerNorm(c.width, eps=c.eps) if c.pre_norm else nn.Identity()
        self.pos_drop = nn.Dropout(c.dropout)
        dpr = [c.drop_path * i / max(c.layers - 1, 1) for i in range(c.layers)]  # linear stochastic-depth decay
        self.transformer = Transformer([
            PreNormBlock(c.width, c.heads, c.mlp_hidden, act=c.act, eps=c.eps, drop_path=dpr[i], drop=c.dropout)
            for i in range(c.layers)
        ])
        self.norm = nn.LayerNorm(c.width, eps=c.eps)
        self.pooler = nn.Sequential(nn.Linear(c.width, c.width), nn.Tanh()) if c.tanh_pooler else None
        self.head = nn.Linear(c.width, c.num_classes) if c.num_classes else None
        self.proj = nn.Linear(c.width, c.output_dim, bias=False) if c.output_dim else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        init_weights(self)

    def forward_features(self, images: torch.Tensor, need_weights: bool = False):
        """Images [B, C, H, W] → tokens [B, 1 + N, width] after the final norm.

        Position embeddings are resampled (bicubic) when H×W differs from the configured size.
        With ``need_weights`` returns ``(tokens, [per-layer attention [B, heads, 1+N, 1+N]])``.
        """
        x = self.patch_embed(images)
        grid = (images.shape[-2] // self.config.patch_size, images.shape[-1] // self.config.patch_size)
        pos = self.pos_embed
        if grid != (self.config.grid, self.config.grid):
            pos = resample_pos_embed(pos[0], grid).unsqueeze(0)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1) + pos.to(x.dtype)
        x = self.norm_pre(self.pos_drop(x))
        x, attentions = self.transformer(x, need_weights=need_weights)
        x = self.norm(x)
        return (x, attentions) if need_weights else x

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [B, 1 + N, width] → [B, width] (CLS token, or the mean of the patch tokens)."""
        return tokens[:, 0] if self.config.pool == "cls" else tokens[:, 1:].mean(dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] → logits [B, num_classes] when a head is configured, else the
        pooled (and, with ``output_dim``, projected) embedding [B, output_dim or width]."""
        x = self.pool(self.forward_features(images))
        if self.pooler is not None:
            x = self.pooler(x)
        if self.head is not None:
            return self.head(x)
        return self.proj(x) if self.proj is not None else x
