"""Two streams that exchange keys and values (ViLBERT's co-attention, Lu et al. 2019).

* :class:`CrossAttentionBlock` — queries from one stream, keys/values from the other, then that
  stream's own feed-forward; post-LN as in BERT. The streams may have different widths, and the
  heads run at a third (``inner_dim``, ViLBERT's ``bi_hidden_size``).
* :class:`CoAttentionBlock` — a pair of them computed from the same inputs: each stream attends
  to the other as it was before this block.
* :class:`TwoStreamTransformer` — each stream's own self-attention blocks interleaved with the
  co-attention blocks on ViLBERT's schedule.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention
from .mlp import Mlp


class CrossAttentionBlock(nn.Module):
    """``x = norm1(x + attn(q=x, kv=context))`` then ``x = norm2(x + mlp(x))``.

    x [B, N, dim], context [B, M, context_dim] → [B, N, dim].
    """

    def __init__(self, dim: int, context_dim: int, num_heads: int, mlp_hidden: int, *, inner_dim: int | None = None,
                 act: str = "gelu", eps: float = 1e-12, drop: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        self.attn = Attention(dim, num_heads, fused_qkv=False, kv_dim=context_dim, inner_dim=inner_dim,
                              attn_drop=attn_drop)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_hidden, act, drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_padding: torch.Tensor | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``context_padding`` bool [B, M], True = a padded context token no query may attend to.
        Returns (x [B, N, dim], attention probabilities [B, H, N, M] or None)."""
        y, weights = self.attn(x, context, key_padding_mask=context_padding, need_weights=need_weights)
        x = self.norm1(x + self.drop(y))
        return self.norm2(x + self.mlp(x)), weights


class CoAttentionBlock(nn.Module):
    """Stream a [B, Na, dim_a] and stream b [B, Nb, dim_b], each attending to the other's input."""

    def __init__(self, dim_a: int, dim_b: int, num_heads: int, inner_dim: int, mlp_hidden_a: int, mlp_hidden_b: int,
                 *, act: str = "gelu", eps: float = 1e-12, drop: float = 0.0):
        super().__init__()
        self.a_from_b = CrossAttentionBlock(dim_a, dim_b, num_heads, mlp_hidden_a, inner_dim=inner_dim, act=act,
                                            eps=eps, drop=drop)
        self.b_from_a = CrossAttentionBlock(dim_b, dim_a, num_heads, mlp_hidden_b, inner_dim=inner_dim, act=act,
                                            eps=eps, drop=drop)

    def forward(self, a: torch.Tensor, b: torch.Tensor, a_padding: torch.Tensor | None = None,
                b_padding: torch.Tensor | None = None, need_weights: bool = False):
        """Returns (a', b', (weights a→b [B, H, Na, Nb], weights b→a [B, H, Nb, Na]) or None)."""
        new_a, w_ab = self.a_from_b(a, b, b_padding, need_weights)
        new_b, w_ba = self.b_from_a(b, a, a_padding, need_weights)
        return new_a, new_b, ((w_ab, w_ba) if need_weights else None)


class TwoStreamTransformer(nn.Module):
    """Self-attention blocks of streams a and b, and co-attention blocks between them.

    Schedule (ViLBERT's ``t_biattention_id`` / ``v_biattention_id``): for co-attention block k,
    first run stream a's blocks up to index ``a_before[k]`` and stream b's up to ``b_before[k]``
    (each continuing from where it stopped), then co-attention block k; at the end, the rest of
    each stream's blocks.
    """

    def __init__(self, a_blocks: list[nn.Module], b_blocks: list[nn.Module], co_blocks: list[CoAttentionBlock],
                 a_before: list[int], b_before: list[int]):
        super().__init__()
        if not (len(co_blocks) == len(a_before) == len(b_before)):
            raise ValueError(f"{len(co_blocks)} co-attention blocks need as many schedule entries, got "
                             f"{len(a_before)} and {len(b_before)}")
        for name, ids, n in (("a_before", a_before, len(a_blocks)), ("b_before", b_before, len(b_blocks))):
            if list(ids) != sorted(ids) or any(not 0 <= i <= n for i in ids):
                raise ValueError(f"{name} {list(ids)} must be non-decreasing block indices in [0, {n}]")
        self.a_blocks = nn.ModuleList(a_blocks)
        self.b_blocks = nn.ModuleList(b_blocks)
        self.co_blocks = nn.ModuleList(co_blocks)
        self.a_before, self.b_before = list(a_before), list(b_before)

    def forward(self, a: torch.Tensor, b: torch.Tensor, a_padding: torch.Tensor | None = None,
                b_padding: torch.Tensor | None = None, need_weights: bool = False):
        """a [B, Na, dim_a], b [B, Nb, dim_b], paddings bool [B, N·] (True = padding) → (a, b, weights).

        ``weights`` (with ``need_weights``): {"a": [per a-block [B, H, Na, Na]], "b": [...],
        "co": [per co-block (a→b, b→a)]}; else None.
        """
        weights = {"a": [], "b": [], "co": []} if need_weights else None
        ia = ib = 0

        def run(stream: str, x: torch.Tensor, blocks, start: int, end: int, padding) -> torch.Tensor:
            for block in blocks[start:end]:
                x, w = block(x, need_weights=need_weights, key_padding_mask=padding)
                if need_weights:
                    weights[stream].append(w)
            return x

        for co, end_a, end_b in zip(self.co_blocks, self.a_before, self.b_before):
            a = run("a", a, self.a_blocks, ia, end_a, a_padding)
            b = run("b", b, self.b_blocks, ib, end_b, b_padding)
            ia, ib = end_a, end_b
            a, b, w = co(a, b, a_padding, b_padding, need_weights)
            if need_weights:
                weights["co"].append(w)
        b = run("b", b, self.b_blocks, ib, len(self.b_blocks), b_padding)
        a = run("a", a, self.a_blocks, ia, len(self.a_blocks), a_padding)
        return a, b, weights
