"""ViLBERT (Lu et al., 2019): two streams — BERT over the text, a narrower transformer over image
regions — that exchange keys and values through co-attention blocks.

    text ids ──BertEmbeddings──▶ text blocks ─┐          ┌─▶ text MLM head
                                              ├ co-attn ─┤
    regions + boxes ──RegionBoxEmbeddings──▶ image blocks ┘  └─▶ region-class head (KL targets)
    ReLU poolers on token 0 of each stream; alignment = Linear(pooled_text · pooled_image)

The schedule of text, image and co-attention blocks follows ``text_co_layers`` /
``image_co_layers`` (the reference's ``t_biattention_id`` / ``v_biattention_id``; see
:class:`~polymodal.layers.TwoStreamTransformer`). Loads the vilbert-multi-task
``BertForMultiModalPreTraining`` layout (``weights/vilbert.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import CoAttentionBlock, MaskedLMHead, TwoStreamTransformer, pooling
from ..registry import register_family, register_preset
from .bert import BertConfig, BertEmbeddings, bert_trunk, init_bert


@dataclass
class ViLBertConfig:
    text: BertConfig = field(default_factory=lambda: BertConfig(layers=12))
    visual_dim: int = 2048  # region feature width
    image_width: int = 1024
    image_layers: int = 6
    image_heads: int = 8
    image_mlp_hidden: int = 1024
    co_width: int = 1024  # bi_hidden_size: the width co-attention heads run at, and the poolers' output
    co_heads: int = 8
    text_co_layers: tuple[int, ...] = (6, 7, 8, 9, 10, 11)  # t_biattention_id
    image_co_layers: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # v_biattention_id
    region_classes: int = 1601  # the region-class head's targets (Visual Genome's 1600 + background)
    task_tokens: int = 0  # 12-in-1's task embeddings (20), one inserted after [CLS]; 0: none
    fusion: str = "mul"  # how the two pooled streams combine: "mul" (product) or "sum"

    def __post_init__(self):
        self.text_co_layers, self.image_co_layers = tuple(self.text_co_layers), tuple(self.image_co_layers)
        if self.fusion not in ("mul", "sum"):
            raise ValueError(f"fusion must be 'mul' or 'sum', got {self.fusion!r}")


class RegionBoxEmbeddings(nn.Module):
    """The region stem: LayerNorm(Linear(features) + Linear(box)), [B, R, visual_dim] and
    [B, R, 5] (x0, y0, x1, y1, area, all in [0, 1]) → [B, R, width]."""

    def __init__(self, visual_dim: int, width: int, eps: float = 1e-12):
        super().__init__()
        self.proj = nn.Linear(visual_dim, width)
        self.box = nn.Linear(5, width)
        self.norm = nn.LayerNorm(width, eps=eps)

    def forward(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(features) + self.box(boxes))


class ReLUPooler(nn.Module):
    """Token 0 → Linear → ReLU (ViLBERT's poolers, [B, N, width] → [B, out])."""

    def __init__(self, width: int, out: int):
        super().__init__()
        self.dense = nn.Linear(width, out)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.dense(pooling.pool_cls(hidden)))


class ViLBert(nn.Module):
    """Text ids [B, L] + regions [B, R, visual_dim] with boxes [B, R, 5] → both streams and heads."""

    HEADS = ("mlm", "region_head", "align")  # the pretraining heads; a task model drops them
    # A BERT's keys as ours (None: left out; BERT's tanh pooler has no counterpart in the ReLU poolers).
    BERT_KEYS = {"transformer.blocks.": "transformer.a_blocks.", "pooler.": None}

    def __init__(self, config: ViLBertConfig):
        super().__init__()
        self.config = c = config
        t = c.text
        image = BertConfig(width=c.image_width, layers=c.image_layers, heads=c.image_heads,
                           mlp_hidden=c.image_mlp_hidden, act=t.act, eps=t.eps, dropout=t.dropout)
        self.stem = BertEmbeddings(t)
        self.region_stem = RegionBoxEmbeddings(c.visual_dim, c.image_width, t.eps)
        co = [CoAttentionBlock(t.width, c.image_width, c.co_heads, c.co_width, t.mlp_hidden, c.image_mlp_hidden,
                               act=t.act, eps=t.eps, drop=t.dropout) for _ in c.text_co_layers]
        self.transformer = TwoStreamTransformer(list(bert_trunk(t).blocks), list(bert_trunk(image).blocks), co,
                                                list(c.text_co_layers), list(c.image_co_layers))
        if c.task_tokens:
            self.task_embedding = nn.Embedding(c.task_tokens, t.width)
        self.text_pooler = ReLUPooler(t.width, c.co_width)
        self.image_pooler = ReLUPooler(c.image_width, c.co_width)
        self.mlm = MaskedLMHead(t.width, t.vocab_size, t.act, t.eps)
        self.region_head = MaskedLMHead(c.image_width, c.region_classes, t.act, t.eps, tied=False)
        self.align = nn.Linear(c.co_width, 2)  # [aligned, not aligned]
        init_bert(self)

    def forward_features(self, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         region_mask: torch.Tensor | None = None, boxes: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None, need_weights: bool = False,
                         task_ids: torch.Tensor | None = None) -> dict:
        """Both streams without the pretraining heads: ``text`` [B, L, width], ``image`` [B, R, image_width],
        ``pooled_text`` / ``pooled_image`` [B, co_width] and ``pooled`` [B, co_width], their product (the
        reference's "mul" fusion, what its task heads read; "sum" adds them); ``region_hidden`` is ``image``
        under the name every region model gives its per-region outputs. ``boxes`` [B, R, 5] (x0, y0, x1, y1,
        area in [0, 1]) are required; ``attention_mask`` [B, L] / ``region_mask`` [B, R]: 1 = real, 0 =
        padding. With task tokens, ``task_ids`` [B] or [B, 1] picks the embedding put after [CLS]: ``text``
        is then [B, L + 1, width]."""
        c = self.config
        if boxes is None or regions.dim() != 3 or regions.shape[-1] != c.visual_dim \
                or boxes.shape != (*regions.shape[:2], 5):
            raise ValueError(f"expected regions [B, R, {c.visual_dim}] and boxes [B, R, 5], got "
                             f"{tuple(regions.shape)} and {None if boxes is None else tuple(boxes.shape)}")
        if c.task_tokens:
            if task_ids is None:
                raise ValueError("this ViLBERT was trained with task tokens: pass task_ids [B] (e.g. 1 for VQA)")
            if int(task_ids.min()) < 0 or int(task_ids.max()) >= c.task_tokens:
                raise ValueError(f"task ids must lie in 0..{c.task_tokens - 1}, got {task_ids.flatten().tolist()}")
            words = self.stem.sum(ids, token_type_ids)  # positions count the words only, as the reference's do
            task = self.task_embedding(task_ids.reshape(-1, 1))
            embedded = self.stem.normalize(torch.cat([words[:, :1], task, words[:, 1:]], dim=1))
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask.new_ones(len(ids), 1), attention_mask], dim=1)
        else:
            embedded = self.stem(ids, token_type_ids)
        text_pad = None if attention_mask is None else attention_mask == 0
        image_pad = None if region_mask is None else region_mask == 0
        text, image, weights = self.transformer(embedded, self.region_stem(regions, boxes),
                                                text_pad, image_pad, need_weights=need_weights)
        pooled_text, pooled_image = self.text_pooler(text), self.image_pooler(image)
        pooled = pooled_text * pooled_image if c.fusion == "mul" else pooled_text + pooled_image
        out = {"text": text, "image": image, "region_hidden": image, "pooled_text": pooled_text,
               "pooled_image": pooled_image, "pooled": pooled}
        if need_weights:
            out["attentions"] = weights
        return out

    def forward(self, ids: torch.Tensor, regions: torch.Tensor, boxes: torch.Tensor,
                attention_mask: torch.Tensor | None = None, region_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, need_weights: bool = False,
                task_ids: torch.Tensor | None = None) -> dict:
        """:meth:`forward_features` plus the heads: ``mlm_logits`` [B, L, vocab], ``region_logits``
        [B, R, region_classes], ``align_logits`` [B, 2]; with ``need_weights`` also ``attentions``
        ({"a": text blocks, "b": image blocks, "co": (text→image, image→text) per co-block})."""
        out = self.forward_features(ids, regions, attention_mask, region_mask, boxes, token_type_ids, need_weights,
                                    task_ids)
        return {**out, "mlm_logits": self.mlm(out["text"], self.stem.word.weight),
                "region_logits": self.region_head(out["image"]), "align_logits": self.align(out["pooled"])}


def _example_inputs(c: ViLBertConfig) -> dict:
    ids = torch.randint(0, c.text.vocab_size, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    boxes = torch.rand(2, 4, 5)
    return {"ids": ids, "regions": torch.randn(2, 4, c.visual_dim), "boxes": boxes, "attention_mask": mask,
            "region_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}


register_family("vilbert", ViLBertConfig, ViLBert, example_inputs=_example_inputs)


@register_preset("vilbert-base")
def _vilbert_base() -> ViLBertConfig:
    """vilbert-multi-task's bert_base_6layer_6conect: BERT-base text, 6 image layers of 1024,
    co-attention after text layers 6–11 and image layers 0–5."""
    return ViLBertConfig()


@register_preset("vilbert-world")
def _vilbert_world() -> ViLBertConfig:
    """visualbert-world's text side (all-MiniLM-L6-v2's geometry) plus a 2-layer, 192-wide region
    stream over the world recipe's 192-wide regions, co-attention after text layers 4–5; region
    classes: the world's 8 colours × 6 shapes + background. Without its pretraining heads it has
    15.8 M parameters besides the word embeddings, visualbert-world 11.6 M (the co-attention blocks
    carry their own text-side MLPs)."""
    return ViLBertConfig(BertConfig(width=384, layers=6, heads=12, mlp_hidden=1536), visual_dim=192, image_width=192,
                         image_layers=2, image_heads=4, image_mlp_hidden=768, co_width=192, co_heads=4,
                         text_co_layers=(4, 5), image_co_layers=(0, 1), region_classes=49)


@register_preset("vilbert-tiny")
def _vilbert_tiny() -> ViLBertConfig:
    """The sizes of tests/fixtures/vilbert."""
    return ViLBertConfig(BertConfig(vocab_size=200, width=64, layers=2, heads=2, mlp_hidden=128, max_positions=32),
                         visual_dim=24, image_width=48, image_layers=2, image_heads=2, image_mlp_hidden=96,
                         co_width=48, co_heads=2, text_co_layers=(0, 1), image_co_layers=(0, 1), region_classes=10)
