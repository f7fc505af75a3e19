"""BERT text tower (Devlin et al.): word + position + segment embeddings → post-LN blocks →
CLS or masked-mean pooling. Loads HF ``BertModel`` checkpoints such as all-MiniLM-L6-v2."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import PostNormBlock, Transformer
from ..layers.pooling import pool_cls, pool_mean, tanh_pooler
from ..registry import register_family, register_preset


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
    """The stem: ids [B, L] (+ token types, positions) → LayerNorm(word + position + token_type) [B, L, width]."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.word = nn.Embedding(c.vocab_size, c.width, padding_idx=c.pad_token_id)
        self.position = nn.Embedding(c.max_positions, c.width)
        self.token_type = nn.Embedding(c.type_vocab_size, c.width)
        self.norm = nn.LayerNorm(c.width, eps=c.eps)
        self.drop = nn.Dropout(c.dropout)

    def sum(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
            position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """word + position + token_type [B, L, width], before the LayerNorm (VisualBERT normalises
        it together with its region embeddings). Positions default to 0..L-1, token types to 0."""
        positions = torch.arange(ids.shape[1], device=ids.device) if position_ids is None else position_ids
        types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
        return self.word(ids) + self.position(positions) + self.token_type(types)

    def normalize(self, embeddings: torch.Tensor) -> torch.Tensor:
        """LayerNorm then dropout, [B, L, width] → [B, L, width]."""
        return self.drop(self.norm(embeddings))

    def forward(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.normalize(self.sum(ids, token_type_ids, position_ids))


def bert_trunk(c: BertConfig) -> Transformer:
    """The trunk: ``c.layers`` post-LN blocks; embeddings [B, L, width] (+ key padding mask) → hidden states."""
    return Transformer([PostNormBlock(c.width, c.heads, c.mlp_hidden, act=c.act, eps=c.eps, drop=c.dropout)
                        for _ in range(c.layers)])


def init_bert(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: Linear and Embedding weights ~ N(0, std²), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


class BertTextTower(nn.Module):
    """Token ids [B, L] + attention mask [B, L] → sentence embeddings [B, output_dim or width].

    stem (:class:`BertEmbeddings`) → trunk (:func:`bert_trunk`) → head (CLS through the tanh
    pooler, or masked mean; then an optional projection).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        c = self.config = config
        if c.pooling not in ("cls", "mean"):
            raise ValueError(f"BertConfig.pooling must be 'cls' or 'mean', got {c.pooling!r}")
        self.stem = BertEmbeddings(c)
        self.transformer = bert_trunk(c)
        self.pooler = tanh_pooler(c.width) if c.tanh_pooler else None
        self.proj = nn.Linear(c.width, c.output_dim, bias=False) if c.output_dim else None
        init_bert(self)

    def forward_features(self, ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None, need_weights: bool = False, *,
                         inputs_embeds: torch.Tensor | None = None):
        """Ids [B, L] — or ``inputs_embeds`` [B, L, width], already through a stem — → hidden
        states [B, L, width] (HF ``last_hidden_state``). ``attention_mask`` [B, L]: 1 = token, 0 = padding."""
        if inputs_embeds is None:
            if ids is None or ids.dim() != 2:
                raise ValueError(f"expected token ids [B, L], got {None if ids is None else tuple(ids.shape)}")
            if ids.shape[1] > self.config.max_positions:
                raise ValueError(f"token ids have length {ids.shape[1]} > max_positions {self.config.max_positions}")
            inputs_embeds = self.stem(ids, token_type_ids)
        pad = None if attention_mask is None else attention_mask == 0
        x, attentions = self.transformer(inputs_embeds, need_weights=need_weights, key_padding_mask=pad)
        return (x, attentions) if need_weights else x

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden [B, L, width] → [B, width]: masked mean, or CLS (through the tanh pooler if any)."""
        if self.config.pooling == "mean":
            return pool_mean(hidden, attention_mask)
        cls = pool_cls(hidden)
        return self.pooler(cls) if self.pooler is not None else cls

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.pool(self.forward_features(ids, attention_mask, token_type_ids), attention_mask)
        return self.proj(x) if self.proj is not None else x

def _example_inputs(c: BertConfig) -> dict:
    n = min(8, c.max_positions)
    mask = torch.ones(2, n, dtype=torch.long)
    mask[1, n // 2:] = 0
    return {"ids": torch.randint(0, c.vocab_size, (2, n)) * mask, "attention_mask": mask}


register_family("bert", BertConfig, BertTextTower, example_inputs=_example_inputs)


def minilm_config(**kw) -> BertConfig:
    """all-MiniLM-L6-v2's geometry (mean pooling)."""
    return BertConfig(width=384, layers=6, heads=12, mlp_hidden=1536, pooling="mean", **kw)


register_preset("bert-base")(BertConfig)
register_preset("minilm-l6")(minilm_config)


@register_preset("bert-tiny")
def _bert_tiny() -> BertConfig:
    return BertConfig(vocab_size=1000, width=64, layers=2, heads=2, mlp_hidden=256, max_positions=64)
