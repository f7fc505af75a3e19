"""The encoder every non-text tower runs — ViT, ImageBind's vision/audio/depth/thermal/IMU
encoders — as stem → trunk → head:

    stem [B, N, D] → [CLS; tokens] + pos → (LayerNorm) → pre-LN blocks → LayerNorm
        → pool (CLS or mean) → (tanh pooler) → (dropout) → classifier or projection
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import PreNormBlock, Transformer
from ..layers.init import init_weights
from ..layers import pooling


class ModalityTransformer(nn.Module):
    """Input accepted by ``stem`` → embeddings [B, output_dim or width] (not normalised), or logits
    [B, num_classes] when a classifier is configured.

    Args:
        stem: module mapping the modality's input to tokens [B, num_tokens, width].
        num_tokens: tokens the stem makes (fixes the position-embedding length, 1 + num_tokens).
        output_dim: Linear(width, output_dim, bias=False) after pooling (CLIP / ImageBind); None: none.
        mlp_hidden: MLP width of the blocks (default 4 × width).
        pre_norm: LayerNorm on the sequence before the blocks (CLIP's ln_pre, ImageBind's vision trunk).
        add_bias_kv: one learned extra key/value per block (ImageBind's audio/depth/thermal/IMU).
        drop_path: stochastic depth, increasing linearly from 0 to this value over the blocks.
        dropout: dropout after the position embedding and inside the blocks.
        head_dropout: dropout between the pooled token and the projection (ImageBind's IMU head).
        pool: "cls" (token 0) or "mean" (the mean of the stem's tokens).
        tanh_pooler: HF ViTModel's Linear + tanh on the pooled token.
        num_classes: > 0: a Linear classifier on the pooled token instead of the projection.
    """

    def __init__(self, stem: nn.Module, num_tokens: int, width: int, layers: int, heads: int,
                 output_dim: int | None = None, *, mlp_hidden: int | None = None, act: str = "gelu",
                 eps: float = 1e-6, pre_norm: bool = False, add_bias_kv: bool = False, drop_path: float = 0.0,
                 dropout: float = 0.0, head_dropout: float = 0.0, pool: str = "cls", tanh_pooler: bool = False,
                 num_classes: int = 0):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        self.pool_mode = pool
        self.stem = stem
        self.num_tokens = num_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_tokens, width))
        self.norm_pre = nn.LayerNorm(width, eps=eps) if pre_norm else nn.Identity()
        self.pos_drop = nn.Dropout(dropout)
        rates = [drop_path * i / max(layers - 1, 1) for i in range(layers)]  # as torch.linspace(0, dp, layers)
        self.transformer = Transformer([
            PreNormBlock(width, heads, mlp_hidden or 4 * width, act=act, eps=eps, drop_path=rate, drop=dropout,
                         add_bias_kv=add_bias_kv)
            for rate in rates
        ])
        self.norm = nn.LayerNorm(width, eps=eps)
        self.pooler = pooling.tanh_pooler(width) if tanh_pooler else None
        self.head_drop = nn.Dropout(head_dropout)
        self.head = nn.Linear(width, num_classes) if num_classes else None
        self.proj = nn.Linear(width, output_dim, bias=False) if output_dim else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        init_weights(self)

    def positions(self, x: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """The position embedding [1, 1 + num_tokens, width] for input ``x`` whose stem made
        ``num_tokens`` tokens. Here the count must be the configured one; ViT resamples its grid."""
        if num_tokens != self.num_tokens:
            raise ValueError(f"input of shape {tuple(x.shape)} makes {num_tokens} tokens; this encoder "
                             f"was built for {self.num_tokens} (check the input size against the config)")
        return self.pos_embed

    def forward_features(self, x: torch.Tensor, need_weights: bool = False):
        """Input → tokens [B, 1 + N, width] after the final norm. With ``need_weights`` returns
        ``(tokens, [per-layer attention [B, heads, 1 + N, 1 + N]])``."""
        tokens = self.stem(x)
        pos = self.positions(x, tokens.shape[1])
        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        tokens = self.norm_pre(self.pos_drop(torch.cat([cls, tokens], dim=1) + pos.to(tokens.dtype)))
        tokens, attentions = self.transformer(tokens, need_weights=need_weights)
        tokens = self.norm(tokens)
        return (tokens, attentions) if need_weights else tokens

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [B, 1 + N, width] → [B, width] (CLS token, or the mean of the stem's tokens)."""
        return pooling.pool_cls(tokens) if self.pool_mode == "cls" else pooling.pool_mean(tokens[:, 1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.forward_features(x))
        if self.pooler is not None:
            x = self.pooler(x)
        x = self.head_drop(x)
        if self.head is not None:
            return self.head(x)
        return self.proj(x) if self.proj is not None else x
