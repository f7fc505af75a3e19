"""Transformer blocks (pre-LN for ViT/CLIP, post-LN for BERT) and the block stack."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import Attention
from .mlp import DropPath, Mlp


def _residual(x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """``x + branch``; without autograd, accumulated into ``branch`` (always a fresh tensor here)
    to save an activation-sized allocation per residual."""
    return x + branch if torch.is_grad_enabled() else branch.add_(x)


class PreNormBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))`` (ViT, CLIP, ImageBind). [B, N, D] → [B, N, D]."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_hidden: int,
        *,
        act: str = "gelu",
        eps: float = 1e-6,
        drop_path: float = 0.0,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        add_bias_kv: bool = False,
        fused_qkv: bool = True,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, add_bias_kv=add_bias_kv, fused_qkv=fused_qkv, attn_drop=attn_drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_hidden, act, drop)
        self.drop_path = DropPath(drop_path)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, need_weights: bool = False, **mask_kwargs):
        y, weights = self.attn(self.norm1(x), need_weights=need_weights, **mask_kwargs)
        x = _residual(x, self.drop_path(self.drop(y)))
        x = _residual(x, self.drop_path(self.mlp(self.norm2(x))))
        return x, weights


class PostNormBlock(nn.Module):
    """``norm1(x + attn(x))`` then ``norm2(x + mlp(x))`` (BERT). [B, N, D] → [B, N, D]."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_hidden: int,
        *,
        act: str = "gelu",
        eps: float = 1e-12,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        fused_qkv: bool = True,
    ):
        super().__init__()
        self.attn = Attention(dim, num_heads, fused_qkv=fused_qkv, attn_drop=attn_drop)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_hidden, act, drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, need_weights: bool = False, **mask_kwargs):
        y, weights = self.attn(x, need_weights=need_weights, **mask_kwargs)
        x = self.norm1(_residual(x, self.drop(y)))
        x = self.norm2(_residual(x, self.mlp(x)))
        return x, weights


class Transformer(nn.Module):
    """A stack of blocks with an optional gradient-checkpointing switch.

    ``forward(x [B, N, D], **mask_kwargs)`` returns ``(x [B, N, D], attentions)`` where
    ``attentions`` is a list of per-layer [B, H, N, M] weights when ``need_weights=True``, else None.
    Mask arguments (``attn_mask``, ``key_padding_mask``, ``is_causal``) go to every block.
    """

    def __init__(self, blocks: list[nn.Module], inference_chunk_tokens: int | None = 2048):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.grad_checkpointing = False
        # Without autograd, run large batches through the stack in slices of about this many
        # tokens: each slice's activations stay small enough for the allocator to reuse and the
        # caches to hold, which is up to 1.5x faster on CPU (benchmarks/encode.py); outputs are
        # the same because rows never interact. None disables it.
        self.inference_chunk_tokens = inference_chunk_tokens

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in backward instead of storing them (less memory, ~30 % more time)."""
        self.grad_checkpointing = enable

    def forward(self, x: torch.Tensor, need_weights: bool = False, **mask_kwargs):
        rows = self._chunk_rows(x, need_weights)
        if rows < x.shape[0]:
            b = x.shape[0]
            parts = [self._forward(x[i:i + rows], False, **_slice_masks(mask_kwargs, i, rows, b))[0]
                     for i in range(0, b, rows)]
            return torch.cat(parts), None
        return self._forward(x, need_weights, **mask_kwargs)

    def _chunk_rows(self, x: torch.Tensor, need_weights: bool) -> int:
        if self.inference_chunk_tokens is None or need_weights or torch.is_grad_enabled():
            return x.shape[0]
        return max(1, self.inference_chunk_tokens // x.shape[1])

    def _forward(self, x: torch.Tensor, need_weights: bool, **mask_kwargs):
        attentions = [] if need_weights else None
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled() and not need_weights:
                x, _ = checkpoint(block, x, use_reentrant=False, **mask_kwargs)
            else:
                x, weights = block(x, need_weights=need_weights, **mask_kwargs)
                if need_weights:
                    attentions.append(weights)
        return x, attentions


def _slice_masks(mask_kwargs: dict, start: int, rows: int, batch: int) -> dict:
    """Rows [start, start + rows) of the per-sample masks: ``key_padding_mask`` [B, M] and a 4-D
    ``attn_mask`` [B, H|1, N, M]; shared masks ([N, M], [1, 1, N, M]) pass unchanged."""
    out = dict(mask_kwargs)
    pad = out.get("key_padding_mask")
    if pad is not None:
        out["key_padding_mask"] = pad[start:start + rows]
    mask = out.get("attn_mask")
    if mask is not None and mask.dim() == 4 and mask.shape[0] == batch:
        out["attn_mask"] = mask[start:start + rows]
    return out


def set_grad_checkpointing(model: nn.Module, enable: bool = True) -> None:
    """Switch gradient checkpointing on (or off) for every block stack inside ``model``."""
    for m in model.modules():
        if isinstance(m, Transformer):
            m.set_grad_checkpointing(enable)
