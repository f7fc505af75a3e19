"""LayoutLMv3 (Huang et al., 2022): words with boxes and linear patches of the page, one RoBERTa-style trunk.

    ids, boxes ── word + RoBERTa position + token type + 2-D box ── LayerNorm ─┐
    page image ── Conv patches ── [CLS] + pos_embed ── LayerNorm (eps 1e-6) ───┴─ concat ─ LayerNorm ─ trunk

No CNN: the image enters as ViT patches. The attention adds 1-D relative biases (text positions
0..L-1, visual 0..P again) and 2-D ones (x0 and y1 of each box; patches get their grid cell, the
image [CLS] (1, 1, 999, 999)), divided by √d like the logits. Without an image the joint LayerNorm
is skipped, as the reference does. Loads Hugging Face ``LayoutLMv3Model`` (``weights/hf_layoutlm.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers.box_embed import BoxEmbedding, check_boxes, grid_boxes
from ..layers.patch_embed import PatchEmbed
from ..registry import register_family, register_preset
from .bert import BertConfig, BertEmbeddings, bert_trunk, init_bert
from .layoutlmv2 import JointSequence, LayoutConfig, example_layout_inputs


@dataclass
class LayoutLMv3Config:
    bert: BertConfig = field(default_factory=lambda: BertConfig(vocab_size=50265, max_positions=514, type_vocab_size=1,
                                                                eps=1e-5, pad_token_id=1))
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    image_size: int = 224
    patch_size: int = 16
    visual_tokens: bool = True


def roberta_positions(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """RoBERTa's position ids [B, L]: real tokens count from pad_id + 1, padding stays at pad_id."""
    real = (ids != pad_id).long()
    return torch.cumsum(real, dim=1) * real + pad_id


class LayoutLMv3(nn.Module):
    """ids [B, L] + boxes [B, L, 4] (0–1000) + page pixels [B, 3, S, S] (normalised) → hidden [B, L + 1 + P, width]."""

    def __init__(self, config: LayoutLMv3Config):
        super().__init__()
        self.config = c = config
        b, lay = c.bert, c.layout
        if lay.box_embeddings and lay.coordinate_size * 4 + lay.shape_size * 2 != b.width:
            raise ValueError(f"4·coordinate_size + 2·shape_size must equal the width {b.width}, got "
                             f"4·{lay.coordinate_size} + 2·{lay.shape_size}")
        if c.image_size % c.patch_size:
            raise ValueError(f"image_size {c.image_size} is not a multiple of patch_size {c.patch_size}")
        self.stem = BertEmbeddings(b)
        self.box = (BoxEmbedding(lay.coordinate_size, lay.shape_size, lay.max_2d_positions, clip_shape=True)
                    if lay.box_embeddings else None)
        if c.visual_tokens:
            grid = c.image_size // c.patch_size
            self.patch = PatchEmbed(c.patch_size, 3, b.width)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, b.width))
            self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, b.width))
            self.patch_norm = nn.LayerNorm(b.width, eps=1e-6)
            self.joint_norm = nn.LayerNorm(b.width, eps=b.eps)
            cls_box = torch.tensor([[1, 1, 999, 999]])
            self.register_buffer("visual_boxes", torch.cat([cls_box, grid_boxes(grid, grid)]), persistent=False)
        self.bias = lay.bias(b.heads)
        self.transformer = bert_trunk(b)
        # No row slicing at inference: the attention bias [B, H, N, N] is built for the whole batch
        # anyway, and whole-batch GEMMs ran faster here (benchmarks/layoutlm.py).
        self.transformer.inference_chunk_tokens = None
        init_bert(self)
        if c.visual_tokens:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def text_embeddings(self, ids: torch.Tensor, boxes: torch.Tensor,
                        token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """word + token type + RoBERTa position + box, LayerNormed: [B, L, width]."""
        x = self.stem.sum(ids, token_type_ids, roberta_positions(ids, self.config.bert.pad_token_id))
        return self.stem.normalize(x + self.box(boxes) if self.box is not None else x)

    def visual_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, S, S] (normalised) → [B, 1 + (S/p)², width]: [CLS] then patches, row-major."""
        s = self.config.image_size
        if pixels.dim() != 4 or tuple(pixels.shape[1:]) != (3, s, s):
            raise ValueError(f"expected page pixels [B, 3, {s}, {s}], got {tuple(pixels.shape)}")
        x = self.patch(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.patch_norm(x)

    def forward(self, ids: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None, *,
                need_weights: bool = False) -> dict:
        """``hidden`` [B, L (+ 1 + P), width] (text rows first), ``text_hidden`` [B, L, width],
        ``visual_hidden`` [B, 1 + P, width] (empty without an image), ``pooled`` [B, width] (the
        text [CLS] row) and, with ``need_weights``, ``attentions``. ``image`` may be None: text and
        layout only. ``attention_mask`` [B, L]: 1 = word, 0 = padding."""
        c = self.config
        if ids.dim() != 2:
            raise ValueError(f"expected token ids [B, L], got {tuple(ids.shape)}")
        n = ids.shape[1]
        if n + 2 > c.bert.max_positions:
            raise ValueError(f"{n} tokens > {c.bert.max_positions - 2} (max_positions less RoBERTa's offset); "
                             "split the page into windows (polymodal.documents.windows)")
        check_boxes(boxes, n, c.layout.max_2d_positions)
        seq = JointSequence.of_text(self.text_embeddings(ids, boxes, token_type_ids), boxes, attention_mask)
        if image is not None:
            if not c.visual_tokens:
                raise ValueError("this LayoutLMv3 was built with visual_tokens=False; call it without an image")
            seq = seq.append(self.visual_embeddings(image), self.visual_boxes)
            seq.tokens = self.stem.drop(self.joint_norm(seq.tokens))  # text tokens are LayerNormed twice
        # The reference adds the 2-D bias only together with the 1-D one.
        scale = 1 / math.sqrt(c.bert.width // c.bert.heads)  # v3 divides the biases by √d like the logits
        bias = self.bias(seq.positions, seq.boxes, scale, seq.tokens.dtype) if c.layout.relative_1d else None
        out = seq.encode(self.transformer, bias, need_weights)
        return {**out, "pooled": out["hidden"][:, 0]}


def _example_inputs(c: LayoutLMv3Config) -> dict:
    out = example_layout_inputs(c.bert.vocab_size, c.bert.pad_token_id)
    if c.visual_tokens:
        out["image"] = torch.randn(2, 3, c.image_size, c.image_size)
    return out


register_family("layoutlmv3", LayoutLMv3Config, LayoutLMv3, example_inputs=_example_inputs)


@register_preset("layoutlmv3-base")
def _layoutlmv3_base() -> LayoutLMv3Config:
    """microsoft/layoutlmv3-base: RoBERTa-base geometry, 224² pages in 16² patches."""
    return LayoutLMv3Config()


@register_preset("layoutlmv3-small")
def _layoutlmv3_small() -> LayoutLMv3Config:
    """Trains on 2 CPU cores: 4 layers of width 128, 128² pages in 16² patches (64 visual tokens)."""
    return LayoutLMv3Config(BertConfig(vocab_size=30522, width=128, layers=4, heads=4, mlp_hidden=512, max_positions=514,
                                       type_vocab_size=1, eps=1e-5, pad_token_id=1),
                            LayoutConfig(coordinate_size=16, shape_size=32), image_size=128, patch_size=16)


@register_preset("layoutlmv3-tiny")
def _layoutlmv3_tiny() -> LayoutLMv3Config:
    """The sizes of tests/fixtures/layoutlmv3."""
    return LayoutLMv3Config(BertConfig(vocab_size=200, width=64, layers=2, heads=2, mlp_hidden=128, max_positions=40,
                                       type_vocab_size=1, eps=1e-5, pad_token_id=1),
                            LayoutConfig(coordinate_size=12, shape_size=8), image_size=32, patch_size=8)
