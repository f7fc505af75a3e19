"""One encoder for every non-text ImageBind modality: a stem makes tokens, a class token and
learned positions are added, pre-LN blocks (optionally with learned ``bias_k``/``bias_v``) run,
and the head takes the normed class token through a projection.

    stem [B, N, D] → [CLS; tokens] + pos → (LayerNorm) → blocks → LayerNorm → token 0 → (Dropout) → Linear
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import PreNormBlock, Transformer
from ..layers.init import init_weights


class ModalityTransformer(nn.Module):
    """Input accepted by ``stem`` → embeddings [B, output_dim] (not normalised).

    Args:
        stem: module mapping the modality's input to tokens [B, num_tokens, width].
        num_tokens: tokens the stem makes (fixes the position-embedding length, 1 + num_tokens).
        pre_norm: LayerNorm on the sequence before the blocks (ImageBind's vision trunk).
        add_bias_kv: one learned extra key/value per block (ImageBind's audio/depth/thermal/IMU).
        drop_path: stochastic depth, increasing linearly from 0 to this value over the blocks.
        head_dropout: dropout between the pooled token and the projection (ImageBind's IMU head).
    """

    def __init__(self, stem: nn.Module, num_tokens: int, width: int, layers: int, heads: int, output_dim: int, *,
                 pre_norm: bool = False, add_bias_kv: bool = False, drop_path: float = 0.0, eps: float = 1e-6,
                 head_dropout: float = 0.0, act: str = "gelu"):
        super().__init__()
        self.stem = stem
        self.num_tokens = num_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_tokens, width))
        self.norm_pre = nn.LayerNorm(width, eps=eps) if pre_norm else nn.Identity()
        rates = [drop_path * i / max(layers - 1, 1) for i in range(layers)]  # as torch.linspace(0, dp, layers)
        self.transformer = Transformer([
            PreNormBlock(width, heads, 4 * width, act=act, eps=eps, drop_path=rate, add_bias_kv=add_bias_kv)
            for rate in rates
        ])
        self.norm = nn.LayerNorm(width, eps=eps)
        self.head_drop = nn.Dropout(head_dropout)
        self.proj = nn.Linear(width, output_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input → tokens [B, 1 + num_tokens, width] after the final norm."""
        tokens = self.stem(x)
        if tokens.shape[1] != self.num_tokens:
            raise ValueError(f"input of shape {tuple(x.shape)} makes {tokens.shape[1]} tokens; this encoder "
                             f"was built for {self.num_tokens} (check the input size against the config)")
        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        tokens = self.norm_pre(torch.cat([cls, tokens], dim=1) + self.pos_embed.to(tokens.dtype))
        tokens, _ = self.transformer(tokens)
        return self.norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.head_drop(self.forward_features(x)[:, 0]))
