"""BERT text tower (Devlin et al.): word + position + segment embeddings → post-LN blocks →
CLS or masked-mean pooling. Loads HF ``BertModel`` checkpoints such as all-MiniLM-L6-v2."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import PostNormBlock, Transformer


@dataclass
class BertConfig:
    vocab_size: int = 30522
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_hidden: int = 3072
    max_positions: int = 512
    type_vocab_size: int = 2
    act: str = "gelu"
    eps: float = 1e-12
    pad_token_id: int = 0
    pooling: str = "cls"  # "cls" (after the tanh pooler when present) or "mean" (masked mean)
    tanh_pooler: bool = True  # HF BertModel's pooler.dense + tanh
    output_dim: int | None = None  # Linear(width, output_dim, bias=False) after pooling
    dropout: float = 0.0


class BertEmbeddings(nn.Module):
    """ids [B, L] (+ token types) → LayerNorm(word + position + token_type) [B, L, width]."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.word = nn.Embedding(c.vocab_size, c.width, padding_idx=c.pad_token_id)
        self.position = nn.Embedding(c.max_positions, c.width)
        self.token_type = nn.Embedding(c.type_vocab_size, c.width)
        self.norm = nn.LayerNorm(c.width, eps=c.eps)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
        return self.drop(self.norm(self.word(ids) + self.position(positions) + self.token_type(types)))


class BertTextTower(nn.Module):
    """Token ids [B, L] + attention mask [B, L] → sentence embeddings [B, output_dim or width]."""

    def __init__(self, config: BertConfig):
        super().__init__()
        c = self.config = config
        if c.pooling not in ("cls", "mean"):
            raise ValueError(f"BertConfig.pooling must be 'cls' or 'mean', got {c.pooling!r}")
        self.embed = BertEmbeddings(c)
        self.transformer = Transformer([
            PostNormBlock(c.width, c.heads, c.mlp_hidden, act=c.act, eps=c.eps, drop=c.dropout)
            for _ in range(c.layers)
        ])
        self.pooler = nn.Sequential(nn.Linear(c.width, c.width), nn.Tanh()) if c.tanh_pooler else None
        self.proj = nn.Linear(c.width, c.output_dim, bias=False) if c.output_dim else None
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None, need_weights: bool = False):
        """Ids [B, L] → hidden states [B, L, width] (HF ``last_hidden_state``)."""
        if ids.dim() != 2:
            raise ValueError(f"expected token ids [B, L], got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.config.max_positions:
            raise ValueError(f"token ids have length {ids.shape[1]} > max_positions {self.config.max_positions}")
        pad = None if attention_mask is None else attention_mask == 0
        x, attentions = self.transformer(self.embed(ids, token_type_ids), need_weights=need_weights,
                                         key_padding_mask=pad)
        return (x, attentions) if need_weights else x

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden [B, L, width] → [B, width]: masked mean, or CLS (through the tanh pooler if any)."""
        if self.config.pooling == "mean":
            if attention_mask is None:
                return hidden.mean(dim=1)
            w = attention_mask.to(hidden.dtype).unsqueeze(-1)
            return (hidden * w).sum(dim=1) / w.sum(dim=1).clamp(min=1e-9)
        cls = hidden[:, 0]
        return self.pooler(cls) if self.pooler is not None else cls

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pool(self.forward_features(ids, attention_mask, token_type_ids), attention_mask)
        return self.proj(x) if self.proj is not None else x
