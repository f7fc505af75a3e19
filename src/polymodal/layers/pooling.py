"""Heads' first step, written once: which token(s) stand for the sequence.

* CLS — token 0 (ViT, ImageBind, BERT's pooler input);
* EOT — the token at a given position per row (CLIP's text tower);
* mean — over real tokens only (sentence-transformers, VideoCLIP), given a mask.
"""

from __future__ import annotations

import torch
from torch import nn


def pool_cls(tokens: torch.Tensor) -> torch.Tensor:
    """[B, N, D] → [B, D]: the first token."""
    return tokens[:, 0]


def pool_at(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """[B, N, D] and positions [B] (long) → [B, D]: row b's token at ``positions[b]``."""
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), positions]


def pool_mean(tokens: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """[B, N, D] and weights [B, N] (1 = real token, 0 = padding; None: all real) → [B, D]."""
    if weights is None:
        return tokens.mean(dim=1)
    w = weights.to(tokens.dtype).unsqueeze(-1)
    return (tokens * w).sum(dim=1) / w.sum(dim=1).clamp(min=1e-9)


def tanh_pooler(width: int) -> nn.Sequential:
    """BERT's / HF ViT's pooler: Linear(width, width) then tanh (keys ``pooler.0.*``)."""
    return nn.Sequential(nn.Linear(width, width), nn.Tanh())
