"""CLIP's causal text transformer: tokens + learned positions → pre-LN causal blocks → final
LayerNorm → the end-of-text token → projection."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import PreNormBlock, Transformer
from ..layers.pooling import pool_at
from ..registry import register_family


@dataclass
class TextTransformerConfig:
    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_hidden: int = 2048
    act: str = "gelu"
    eps: float = 1e-5
    output_dim: int | None = 512
    # Pooling: the first position holding ``eot_token_id``, or (None) the position of the largest
    # id, which is OpenAI's rule because EOT is the last vocabulary entry.
    eot_token_id: int | None = None
    dropout: float = 0.0


class TextTransformer(nn.Module):
    """Token ids [B, L] (L ≤ context_length) → text embeddings [B, output_dim or width]."""

    def __init__(self, config: TextTransformerConfig):
        super().__init__()
        c = self.config = config
        self.stem = nn.Embedding(c.vocab_size, c.width)
        self.pos_embed = nn.Parameter(torch.zeros(1, c.context_length, c.width))
        self.transformer = Transformer([
            PreNormBlock(c.width, c.heads, c.mlp_hidden, act=c.act, eps=c.eps, drop=c.dropout)
            for _ in range(c.layers)
        ])
        self.norm = nn.LayerNorm(c.width, eps=c.eps)
        self.proj = nn.Linear(c.width, c.output_dim, bias=False) if c.output_dim else None
        nn.init.normal_(self.stem.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.01)

    def forward_features(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         need_weights: bool = False, *, padded_outputs: bool = True):
        """Ids [B, L] → tokens [B, L, width] after the final norm.

        ``attention_mask`` [B, L] (1 = token, 0 = padding) is optional: with the causal mask,
        padding after EOT can never reach EOT, so pooled outputs do not depend on it. With
        ``padded_outputs=False`` the caller does not need the outputs at padded positions (pooling
        at EOT does not), and padding that is all at the end runs the causal kernel alone — the
        same outputs at every real token, faster than an explicit mask. (Checking where the padding
        is reads the mask's values: free on the CPU, a wait for the device elsewhere, so off the CPU
        the explicit mask is used — SDPA's memory-efficient kernel takes it; and so it is in a traced
        graph (torch.compile, export), which must hold for every mask.)
        """
        if ids.dim() != 2:
            raise ValueError(f"expected token ids [B, L], got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.config.context_length:
            raise ValueError(
                f"token ids have length {ids.shape[1]} > context_length {self.config.context_length}; "
                "tokenize with truncate=True to cut them explicitly"
            )
        x = self.stem(ids) + self.pos_embed[:, : ids.shape[1]]
        if attention_mask is None or (not padded_outputs and not need_weights and _can_read(attention_mask)
                                      and bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all())):
            # No padding, or padding only at the end whose outputs nobody reads: causally, no real
            # token can see it, so the causal kernel alone gives every real position its output.
            masks = {"is_causal": True}
        else:  # causal ∧ not-padding, built once for all layers: bool [B, 1, L, L]
            n = ids.shape[1]
            causal = torch.ones(n, n, dtype=torch.bool, device=ids.device).tril()
            masks = {"attn_mask": causal & attention_mask.bool()[:, None, None, :]}
        x, attentions = self.transformer(x, need_weights=need_weights, **masks)
        x = self.norm(x)
        return (x, attentions) if need_weights else x

    def eot_positions(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, L] ids → [B] index of the end-of-text token in each row."""
        if self.config.eot_token_id is None:
            return ids.argmax(dim=-1)
        is_eot = ids == self.config.eot_token_id
        if not bool(is_eot.any(dim=-1).all()):
            rows = (~is_eot.any(dim=-1)).nonzero().flatten().tolist()
            raise ValueError(f"rows {rows} have no end-of-text token (id {self.config.eot_token_id})")
        return is_eot.int().argmax(dim=-1)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.forward_features(ids, attention_mask, padded_outputs=False)
        x = pool_at(x, self.eot_positions(ids))
        return self.proj(x) if self.proj is not None else x


def _example_inputs(c: TextTransformerConfig) -> dict:
    n = min(8, c.context_length)
    ids = torch.randint(1, c.vocab_size - 1, (2, n))
    ids[:, -1] = c.vocab_size - 1 if c.eot_token_id is None else c.eot_token_id
    return {"ids": ids}


register_family("clip-text", TextTransformerConfig, TextTransformer, example_inputs=_example_inputs)


def _can_read(t: torch.Tensor) -> bool:
    """Whether branching on ``t``'s values is free: an eager CPU tensor (not one being traced)."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling() and not torch.compiler.is_exporting()
