"""LayoutLMv2 (Xu et al., 2021): BERT over [words with their page boxes | visual tokens of the page].

    ids, boxes ── word + 1-D position + 2-D box + segment ── LayerNorm ──────────────┐
    page image ── ResNeXt-FPN p2 ── pool to a grid ── proj + position + grid box     ├─ concat ─ BERT trunk ─ tanh pooler
                                                      + visual segment ── LayerNorm ─┘   spatially-aware attention:
                                                                                          + 1-D and 2-D relative biases

The 1-D bias uses token positions (text 0..L-1, visual 0..P-1 again), the 2-D bias x0 and y1 of
every box (visual tokens: their grid cell); both are added to the scaled logits as they are (no
division by √d, unlike v3). The reference's fast QKV (one bias-free projection plus separate q and
v biases) is our fused ``qkv`` whose key bias is zero. Loads Hugging Face ``LayoutLMv2Model``
checkpoints (``weights/hf_layoutlm.py``), including the detectron2 backbone weights.

``visual_tokens=False`` drops the image path (text + layout only: the lecture's ablation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import pooling
from ..layers.box_embed import BoxEmbedding, check_boxes, grid_boxes
from ..layers.relative_bias import LayoutBias, attention_bias
from ..registry import register_config, register_family, register_preset
from .bert import BertConfig, BertEmbeddings, bert_trunk, init_bert
from .resnext_fpn import DocumentBackbone, ResNeXtFPNConfig, resnext_tiny_config


@register_config("layout")
@dataclass
class LayoutConfig:
    """The layout parts LayoutLMv2 and v3 share: box embeddings and relative attention biases."""

    coordinate_size: int = 128
    shape_size: int = 128
    max_2d_positions: int = 1024
    relative_1d: bool = True
    relative_2d: bool = True
    rel_pos_bins: int = 32
    max_rel_pos: int = 128
    rel_2d_pos_bins: int = 64
    max_rel_2d_pos: int = 256
    box_embeddings: bool = True  # False: text + 1-D positions only (the 2-D ablation)

    def bias(self, heads: int) -> LayoutBias:
        return LayoutBias(heads, one_d=self.relative_1d, two_d=self.relative_2d, bins=self.rel_pos_bins,
                          max_distance=self.max_rel_pos, bins_2d=self.rel_2d_pos_bins,
                          max_distance_2d=self.max_rel_2d_pos)


@dataclass
class LayoutLMv2Config:
    bert: BertConfig = field(default_factory=lambda: BertConfig(max_positions=512))
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    backbone: ResNeXtFPNConfig = field(default_factory=ResNeXtFPNConfig)
    pool_shape: tuple[int, int] = (7, 7)  # the visual tokens' grid (rows, cols)
    image_size: int = 224  # the processor resizes pages to image_size²
    visual_segment: bool = True
    visual_tokens: bool = True


@dataclass
class JointSequence:
    """What LayoutLM's trunk reads: tokens [B, N, D], 1-D positions [1, N] (each part counts from 0),
    boxes [B, N, 4] on the 0–1000 grid and the key mask [B, N] (1 = attend)."""

    tokens: torch.Tensor
    positions: torch.Tensor
    boxes: torch.Tensor
    mask: torch.Tensor
    text_len: int

    @classmethod
    def of_text(cls, tokens: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor | None) -> "JointSequence":
        n = tokens.shape[1]
        mask = torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device) if mask is None else mask
        return cls(tokens, torch.arange(n, device=tokens.device)[None], boxes, mask, n)

    def append(self, visual: torch.Tensor, visual_boxes: torch.Tensor) -> "JointSequence":
        """Visual tokens [B, P, D] after the text, with their grid boxes [P, 4] and positions 0..P-1."""
        b, p = visual.shape[:2]
        return JointSequence(torch.cat([self.tokens, visual], dim=1),
                             torch.cat([self.positions, torch.arange(p, device=visual.device)[None]], dim=1),
                             torch.cat([self.boxes, visual_boxes.expand(b, -1, -1)], dim=1),
                             torch.cat([self.mask, self.mask.new_ones(b, p)], dim=1), self.text_len)

    def encode(self, trunk: nn.Module, bias: torch.Tensor | None, need_weights: bool = False) -> dict:
        """The trunk over the sequence with ``bias`` [B|1, H, N, N] (or None) and the padding as one
        additive mask: ``hidden`` [B, N, D], ``text_hidden`` / ``visual_hidden`` (its two parts) and,
        with ``need_weights``, ``attentions``."""
        x = self.tokens
        hidden, attentions = trunk(x, need_weights=need_weights, attn_mask=attention_bias(bias, self.mask, x.dtype))
        out = {"hidden": hidden, "text_hidden": hidden[:, :self.text_len], "visual_hidden": hidden[:, self.text_len:]}
        if need_weights:
            out["attentions"] = attentions
        return out


def example_layout_inputs(vocab_size: int, pad_id: int, n: int = 8) -> dict:
    """Two rows of ``n`` words with boxes (row 1 padded after 6 words) for a LayoutLM's example inputs."""
    mask = torch.ones(2, n, dtype=torch.long)
    mask[1, 6:] = 0
    ids = torch.where(mask.bool(), torch.randint(3, vocab_size, (2, n)), pad_id)
    x0, y0 = torch.randint(0, 500, (2, n)), torch.randint(0, 500, (2, n))
    boxes = torch.stack([x0, y0, x0 + 100, y0 + 20], dim=-1) * mask.unsqueeze(-1)
    return {"ids": ids, "boxes": boxes, "attention_mask": mask}


class LayoutLMv2(nn.Module):
    """ids [B, L] + boxes [B, L, 4] (0–1000) + page image [B, 3, H, W] → hidden [B, L + P, width]."""

    def __init__(self, config: LayoutLMv2Config):
        super().__init__()
        self.config = c = config
        b, lay = c.bert, c.layout
        if lay.box_embeddings and lay.coordinate_size * 4 + lay.shape_size * 2 != b.width:
            raise ValueError(f"4·coordinate_size + 2·shape_size must equal the width {b.width}, got "
                             f"4·{lay.coordinate_size} + 2·{lay.shape_size}")
        self.stem = BertEmbeddings(b)
        self.box = BoxEmbedding(lay.coordinate_size, lay.shape_size, lay.max_2d_positions) if lay.box_embeddings else None
        if c.visual_tokens:
            self.visual = DocumentBackbone(c.backbone, c.pool_shape)
            self.visual_proj = nn.Linear(c.backbone.fpn_channels, b.width)
            self.visual_segment = nn.Parameter(torch.zeros(b.width)) if c.visual_segment else None
            self.visual_norm = nn.LayerNorm(b.width, eps=b.eps)
            self.register_buffer("visual_boxes", grid_boxes(*c.pool_shape), persistent=False)
        if self.num_visual_tokens > b.max_positions:
            raise ValueError(f"pool_shape {c.pool_shape} gives {self.num_visual_tokens} visual tokens, more than "
                             f"max_positions {b.max_positions} (they take positions 0..P-1)")
        self.bias = lay.bias(b.heads)
        self.transformer = bert_trunk(b)
        # No row slicing at inference: the attention bias [B, H, N, N] is built for the whole batch
        # anyway, and whole-batch GEMMs ran faster here (benchmarks/layoutlm.py).
        self.transformer.inference_chunk_tokens = None
        self.pooler = pooling.tanh_pooler(b.width)
        init_bert(self)  # the backbone (convolutions only) keeps its own init

    @property
    def num_visual_tokens(self) -> int:
        return self.config.pool_shape[0] * self.config.pool_shape[1] if self.config.visual_tokens else 0

    def text_embeddings(self, ids: torch.Tensor, boxes: torch.Tensor,
                        token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """word + position (0..L-1) + box + token type, LayerNormed: [B, L, width]."""
        x = self.stem.sum(ids, token_type_ids)
        return self.stem.normalize(x + self.box(boxes) if self.box is not None else x)

    def visual_embeddings(self, image: torch.Tensor | None = None, *, feature_map: torch.Tensor | None = None) -> torch.Tensor:
        """The visual tokens [B, P, width] from pixels [B, 3, H, W] (BGR, 0–255), or from a
        precomputed p2 ``feature_map`` [B, C, h, w] (what the backbone would give)."""
        pooled = self.visual(image) if feature_map is None else self.visual.pool_map(feature_map)
        positions = torch.arange(pooled.shape[1], device=pooled.device)
        x = self.visual_proj(pooled) + self.stem.position(positions)
        if self.box is not None:
            x = x + self.box(self.visual_boxes)
        if self.visual_segment is not None:
            x = x + self.visual_segment
        return self.visual_norm(x)

    def forward(self, ids: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None, *,
                feature_map: torch.Tensor | None = None, need_weights: bool = False) -> dict:
        """``hidden`` [B, L + P, width] (text rows first), ``pooled`` [B, width] = tanh(dense(h[:, 0])),
        ``text_hidden`` [B, L, width], ``visual_hidden`` [B, P, width], the visual tokens as they entered
        the trunk ``visual_input`` [B, P, width] (with an image) and, with ``need_weights``,
        ``attentions`` (per layer [B, H, L + P, L + P]). ``attention_mask`` [B, L]: 1 = word, 0 = padding;
        visual tokens are always attended to."""
        c = self.config
        if ids.dim() != 2:
            raise ValueError(f"expected token ids [B, L], got {tuple(ids.shape)}")
        n = ids.shape[1]
        if n > c.bert.max_positions:
            raise ValueError(f"{n} tokens > max_positions {c.bert.max_positions}; split the page into windows "
                             "(polymodal.documents.windows)")
        check_boxes(boxes, n, c.layout.max_2d_positions)
        seq = JointSequence.of_text(self.text_embeddings(ids, boxes, token_type_ids), boxes, attention_mask)
        visual = None
        if c.visual_tokens:
            if image is None and feature_map is None:
                raise ValueError("LayoutLMv2 needs the page image (or its p2 feature_map); "
                                 "build it with visual_tokens=False for a text-and-layout model")
            visual = self.visual_embeddings(image, feature_map=feature_map)
            seq = seq.append(visual, self.visual_boxes)
        out = seq.encode(self.transformer, self.bias(seq.positions, seq.boxes, dtype=seq.tokens.dtype), need_weights)
        out["pooled"] = self.pooler(pooling.pool_cls(out["hidden"]))
        if visual is not None:
            out["visual_input"] = visual
        return out


def _example_inputs(c: LayoutLMv2Config) -> dict:
    out = example_layout_inputs(c.bert.vocab_size, c.bert.pad_token_id)
    if c.visual_tokens:
        out["image"] = torch.rand(2, 3, c.image_size, c.image_size) * 255
    return out


register_family("layoutlmv2", LayoutLMv2Config, LayoutLMv2, example_inputs=_example_inputs)


@register_preset("layoutlmv2-base")
def _layoutlmv2_base() -> LayoutLMv2Config:
    """microsoft/layoutlmv2-base-uncased: BERT-base, ResNeXt-101 32×8d FPN, 7×7 visual tokens."""
    return LayoutLMv2Config()


@register_preset("layoutlmv2-small")
def _layoutlmv2_small() -> LayoutLMv2Config:
    """Trains on 2 CPU cores: 4 layers of width 128, the tiny ResNeXt-FPN, 4×4 visual tokens, 128² pages."""
    return LayoutLMv2Config(BertConfig(vocab_size=30522, width=128, layers=4, heads=4, mlp_hidden=512, max_positions=512),
                            LayoutConfig(coordinate_size=16, shape_size=32), resnext_tiny_config(), pool_shape=(4, 4),
                            image_size=128)


@register_preset("layoutlmv2-tiny")
def _layoutlmv2_tiny() -> LayoutLMv2Config:
    """The sizes of tests/fixtures/layoutlmv2 (with the tiny backbone, whose FPN gives 32 channels)."""
    return LayoutLMv2Config(BertConfig(vocab_size=200, width=64, layers=2, heads=2, mlp_hidden=128, max_positions=40),
                            LayoutConfig(coordinate_size=12, shape_size=8), resnext_tiny_config(), pool_shape=(4, 4),
                            image_size=64)
