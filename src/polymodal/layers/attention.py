"""Multi-head attention on ``F.scaled_dot_product_attention``.

One implementation serves every trunk: self-attention with a fused QKV projection (ViT,
CLIP, BERT), split Q/K/V projections for co-attention (queries from one stream, keys and
values from another), optional learned ``bias_k``/``bias_v`` appended as one extra key/value
(ImageBind), causal and key-padding masks. Attention weights are computed by an explicit
softmax only when ``need_weights=True``; the default path is the fused SDPA kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention.

    Args:
        dim: model width D.
        num_heads: H; ``dim`` must be divisible by it.
        fused_qkv: one ``qkv`` Linear(D, 3D) (fast self-attention) or separate ``q``/``k``/``v``
            Linears (needed when keys/values come from another stream).
        bias: whether the projections have biases.
        add_bias_kv: learn ``bias_k``/``bias_v`` [1, 1, D], appended as one extra key/value at the
            end of the sequence (``nn.MultiheadAttention(add_bias_kv=True)`` semantics).
        kv_dim: width of the key/value stream when it differs from ``dim`` (split only).
        inner_dim: width the heads split (default ``dim``); the output projection maps it back to
            ``dim`` (ViLBERT's co-attention runs at ``bi_hidden_size`` between streams of other widths).
        attn_drop: dropout on attention probabilities (training only).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        fused_qkv: bool = True,
        bias: bool = True,
        add_bias_kv: bool = False,
        kv_dim: int | None = None,
        inner_dim: int | None = None,
        attn_drop: float = 0.0,
    ):
        super().__init__()
        kv_dim = dim if kv_dim is None else kv_dim
        inner = dim if inner_dim is None else inner_dim
        if inner % num_heads:
            raise ValueError(f"width {inner} is not divisible by num_heads={num_heads}")
        if fused_qkv and kv_dim != dim:
            raise ValueError("fused_qkv needs kv_dim == dim; use fused_qkv=False for cross-attention")
        self.dim, self.inner_dim, self.num_heads, self.head_dim = dim, inner, num_heads, inner // num_heads
        self.fused_qkv = fused_qkv
        self.attn_drop = attn_drop
        if fused_qkv:
            self.qkv = nn.Linear(dim, 3 * inner, bias=bias)
        else:
            self.q = nn.Linear(dim, inner, bias=bias)
            self.k = nn.Linear(kv_dim, inner, bias=bias)
            self.v = nn.Linear(kv_dim, inner, bias=bias)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.zeros(1, 1, inner))
            self.bias_v = nn.Parameter(torch.zeros(1, 1, inner))
        else:
            self.bias_k = self.bias_v = None
        self.out = nn.Linear(inner, dim, bias=bias)

    def _project(self, x: torch.Tensor, context: torch.Tensor | None):
        if self.fused_qkv:
            if context is not None:
                raise ValueError("cross-attention (context=...) needs fused_qkv=False")
            return self.qkv(x).chunk(3, dim=-1)
        context = x if context is None else context
        return self.q(x), self.k(context), self.v(context)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x`` [B, N, D] to ``context`` [B, M, Dkv] (``x`` itself when None).

        Args:
            attn_mask: bool [N, M] / [B, 1|H, N, M] (True = may attend) or an additive float mask
                of the same shapes.
            key_padding_mask: bool [B, M], True marks a padded key that must be ignored.
            is_causal: mask keys after the query position (self-attention only).
            need_weights: also return the attention probabilities [B, H, N, M'] (M' = M + 1 with
                ``bias_kv``), averaged over nothing; costs an explicit softmax.

        Returns:
            (output [B, N, D], weights or None)
        """
        q, k, v = self._project(x, context)
        b = x.shape[0]
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(b, 1, -1)], dim=1)
            v = torch.cat([v, self.bias_v.expand(b, 1, -1)], dim=1)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        n, m = q.shape[2], k.shape[2]
        mask = self._build_mask(attn_mask, key_padding_mask, is_causal, n, m, q.dtype, q.device,
                                explicit_causal=need_weights)
        dropout = self.attn_drop if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask if mask.dtype != torch.bool else scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            out = F.dropout(weights, dropout, self.training) @ v
        else:
            weights = None
            causal_only = is_causal and mask is None  # square, unmasked: SDPA's causal kernel
            out_dtype = q.dtype
            if out_dtype == torch.bfloat16 and q.device.type == "cpu" and torch.is_grad_enabled():
                # torch 2.13's CPU flash-attention backward is ~9x slower in bf16 than in fp32
                # (benchmarks/train_step.py): train the attention core in fp32, the GEMMs in bf16.
                q, k, v = q.float(), k.float(), v.float()
                mask = mask.float() if mask is not None and mask.dtype != torch.bool else mask
                with torch.autocast("cpu", enabled=False):
                    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                                         is_causal=causal_only).to(out_dtype)
            elif _dense_bias_inference(q, mask, dropout):
                out = _dense_bias_attention(q, k, v, mask)
            else:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                                     is_causal=causal_only)
        out = out.transpose(1, 2).reshape(b, n, self.inner_dim)
        return self.out(out), weights

    def _build_mask(self, attn_mask, key_padding_mask, is_causal, n, m, dtype, device, explicit_causal=False):
        """Combine masks into one broadcastable [B|1, 1, N, M] mask (bool or additive), or None.

        ``m`` counts the appended bias key; every query may attend to it, so each mask gets a
        "keep" column for it.
        """
        n_bias = 1 if self.bias_k is not None else 0
        m_real = m - n_bias
        mask = None
        if attn_mask is not None:
            mask = attn_mask if attn_mask.dim() == 4 else attn_mask.view(1, 1, *attn_mask.shape[-2:])
            mask = _append_keep_columns(mask, m - mask.shape[-1])
        if key_padding_mask is not None:
            keep = (~key_padding_mask.to(torch.bool)).view(key_padding_mask.shape[0], 1, 1, -1)
            keep = _append_keep_columns(keep, m - keep.shape[-1])
            mask = keep if mask is None else _and_masks(mask, keep)
        if is_causal and (explicit_causal or mask is not None or n != m):
            # SDPA's own is_causal aligns top-left and cannot be combined with another mask.
            causal = torch.ones(n, m_real, dtype=torch.bool, device=device).tril(diagonal=m_real - n)
            causal = _append_keep_columns(causal.view(1, 1, n, m_real), n_bias)
            mask = causal if mask is None else _and_masks(mask, causal)
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(dtype)
        return mask


# Heads attended per step of _dense_bias_attention: their logits (about this many bytes) stay in the
# last-level cache between the logits, the softmax and × V (8 MiB: 1.6× faster than one pass over
# all heads for LayoutLMv3-base's 8 × 12 × 709² in bf16 on a 32 MiB-L3 EPYC; 4–16 MiB are alike).
_CHUNK_BYTES = 8 << 20


def _dense_bias_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d + bias) v for q [B, H, N, d], k/v [B, H, M, d] and a full additive bias
    [B, H, N, M] (LayoutLM's relative biases): the logits with the bias in one ``baddbmm``, the
    softmax in place, a few heads at a time. On CPU this is faster than the flash kernel, which
    reads the bias block by block: 1.6× in bf16, 1.1× in fp32 (LayoutLMv3-base's attention)."""
    b, h, n, d = q.shape
    m = k.shape[2]
    q, k, v, bias = q.reshape(b * h, n, d), k.reshape(b * h, m, d), v.reshape(b * h, m, d), bias.reshape(b * h, n, m)
    step = max(1, _CHUNK_BYTES // (n * m * q.element_size()))
    out = q.new_empty(b * h, n, d)
    logits = q.new_empty(min(step, b * h), n, m)
    for s in range(0, b * h, step):
        e = min(s + step, b * h)
        part = torch.baddbmm(bias[s:e], q[s:e], k[s:e].transpose(1, 2), alpha=d ** -0.5, out=logits[:e - s])
        torch.bmm(torch.softmax(part, -1, out=part), v[s:e], out=out[s:e])
    return out.view(b, h, n, d)


def _dense_bias_inference(q: torch.Tensor, mask: torch.Tensor | None, dropout: float) -> bool:
    if torch.compiler.is_exporting():  # its chunked in-place steps are a CPU speed path, not a graph to export
        return False
    return (mask is not None and mask.dtype == q.dtype and q.dtype in (torch.bfloat16, torch.float32) and q.device.type == "cpu"
            and not torch.is_grad_enabled() and dropout == 0.0 and mask.dim() == 4
            and mask.shape[:2] == q.shape[:2] and mask.shape[2] == q.shape[2] and mask.is_contiguous())


def _append_keep_columns(mask: torch.Tensor, count: int) -> torch.Tensor:
    """Append ``count`` key columns that every query may attend to (bool True / additive 0)."""
    if count <= 0:
        return mask
    fill = torch.ones if mask.dtype == torch.bool else torch.zeros
    return torch.cat([mask, fill(*mask.shape[:-1], count, dtype=mask.dtype, device=mask.device)], dim=-1)


def _and_masks(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Combine a bool/additive mask ``a`` with a bool mask ``b``."""
    if a.dtype == torch.bool:
        return a & b
    return a.masked_fill(~b, float("-inf"))
