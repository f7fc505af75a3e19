"""VisualBERT (Li et al., 2019): one BERT over [text tokens | image regions].

    text  ids ──BertEmbeddings.sum──┐
                                    ├─ concat ─ LayerNorm ─ BERT trunk ─┬─ MLM head (every position)
    regions ──RegionEmbeddings──────┘        (shared)                   └─ tanh pooler ─ image–text head

Regions are detector features [B, R, visual_dim] (bottom-up attention's 2048-d); each gets a
projection plus a visual token-type and a visual position embedding (position 0 for every region,
as the reference does without ``image_text_alignment``). Loads Hugging Face
``VisualBertForPreTraining`` checkpoints (``weights/hf_visualbert.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import pooling
from ..layers.prediction_heads import MaskedLMHead
from ..registry import register_family, register_preset
from .bert import BertConfig, BertEmbeddings, bert_trunk, init_bert


@dataclass
class VisualBertConfig:
    bert: BertConfig = field(default_factory=lambda: BertConfig(tanh_pooler=True))
    visual_dim: int = 2048  # region feature width (bottom-up-attention Faster R-CNN: 2048)


class RegionEmbeddings(nn.Module):
    """The region stem: features [B, R, visual_dim] → projection + visual token type + visual
    position [B, R, width], before the LayerNorm it shares with the text."""

    def __init__(self, visual_dim: int, c: BertConfig):
        super().__init__()
        self.proj = nn.Linear(visual_dim, c.width)
        self.token_type = nn.Embedding(c.type_vocab_size, c.width)
        self.position = nn.Embedding(c.max_positions, c.width)

    def forward(self, features: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        b, r, _ = features.shape
        types = torch.ones(b, r, dtype=torch.long, device=features.device) if token_type_ids is None else token_type_ids
        positions = torch.zeros(b, r, dtype=torch.long, device=features.device) if position_ids is None else position_ids
        return self.proj(features) + self.token_type(types) + self.position(positions)


class VisualBert(nn.Module):
    """Text ids [B, L] + regions [B, R, visual_dim] → hidden [B, L + R, width] and the heads' outputs."""

    HEADS = ("mlm", "itm")  # the pretraining heads; a task model drops them and uses forward_features

    def __init__(self, config: VisualBertConfig):
        super().__init__()
        self.config = config
        c = config.bert
        self.stem = BertEmbeddings(c)
        self.region_stem = RegionEmbeddings(config.visual_dim, c)
        self.transformer = bert_trunk(c)
        self.pooler = pooling.tanh_pooler(c.width)
        self.mlm = MaskedLMHead(c.width, c.vocab_size, c.act, c.eps)
        self.itm = nn.Linear(c.width, 2)  # sentence–image prediction: [matches, does not match]
        init_bert(self)

    def embed(self, ids: torch.Tensor, regions: torch.Tensor, token_type_ids: torch.Tensor | None = None,
              region_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The joint input sequence [B, L + R, width], after the shared LayerNorm."""
        if ids.dim() != 2 or regions.dim() != 3 or regions.shape[0] != ids.shape[0]:
            raise ValueError(f"expected ids [B, L] and regions [B, R, {self.config.visual_dim}], got "
                             f"{tuple(ids.shape)} and {tuple(regions.shape)}")
        if regions.shape[-1] != self.config.visual_dim:
            raise ValueError(f"region features have width {regions.shape[-1]}; this model takes "
                             f"{self.config.visual_dim}")
        if ids.shape[1] > self.config.bert.max_positions:
            raise ValueError(f"token ids have length {ids.shape[1]} > max_positions {self.config.bert.max_positions}")
        text = self.stem.sum(ids, token_type_ids)
        return self.stem.normalize(torch.cat([text, self.region_stem(regions, region_type_ids)], dim=1))

    def forward_features(self, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         region_mask: torch.Tensor | None = None, boxes: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None, region_type_ids: torch.Tensor | None = None,
                         need_weights: bool = False) -> dict:
        """The trunk without the pretraining heads (HF's ``VisualBertModel``): ``hidden`` [B, L + R, width],
        ``pooled`` [B, width], ``region_hidden`` [B, R, width] (the regions' rows of ``hidden``) and, with ``need_weights``, ``attentions`` (per layer [B, H, L+R, L+R]).
        ``attention_mask`` [B, L] / ``region_mask`` [B, R]: 1 = real, 0 = padding. ``boxes`` is
        accepted for the region models' common signature and unused: VisualBERT has no box embedding."""
        b, n, r = ids.shape[0], ids.shape[1], regions.shape[1]
        ones = torch.ones(b, n + r, dtype=torch.long, device=ids.device)
        text_mask = ones[:, :n] if attention_mask is None else attention_mask
        image_mask = ones[:, n:] if region_mask is None else region_mask
        pad = torch.cat([text_mask, image_mask], dim=1) == 0
        x = self.embed(ids, regions, token_type_ids, region_type_ids)
        hidden, attentions = self.transformer(x, need_weights=need_weights, key_padding_mask=pad)
        out = {"hidden": hidden, "pooled": self.pooler(pooling.pool_cls(hidden)), "region_hidden": hidden[:, n:]}
        if need_weights:
            out["attentions"] = attentions
        return out

    def forward(self, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                region_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                region_type_ids: torch.Tensor | None = None, need_weights: bool = False,
                boxes: torch.Tensor | None = None) -> dict:
        """:meth:`forward_features` plus the heads: ``mlm_logits`` [B, L + R, vocab] and ``itm_logits`` [B, 2].
        ``boxes`` is accepted (and unused) so that both region families take the same keywords."""
        out = self.forward_features(ids, regions, attention_mask, region_mask, None, token_type_ids,
                                    region_type_ids, need_weights)
        return {**out, "mlm_logits": self.mlm(out["hidden"], self.stem.word.weight), "itm_logits": self.itm(out["pooled"])}


def _example_inputs(c: VisualBertConfig) -> dict:
    ids = torch.randint(0, c.bert.vocab_size, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    region_mask = torch.ones(2, 3, dtype=torch.long)
    region_mask[1, 2:] = 0
    return {"ids": ids, "regions": torch.randn(2, 3, c.visual_dim), "attention_mask": mask, "region_mask": region_mask}


register_family("visualbert", VisualBertConfig, VisualBert, example_inputs=_example_inputs)


@register_preset("visualbert-base")
def _visualbert_base() -> VisualBertConfig:
    """uclanlp/visualbert-vqa-coco-pre's geometry: BERT-base over 2048-d bottom-up regions."""
    return VisualBertConfig()


@register_preset("visualbert-world")
def _visualbert_world() -> VisualBertConfig:
    """all-MiniLM-L6-v2's geometry (its weights initialise the text side) over the world recipe's
    192-wide image-tower regions."""
    return VisualBertConfig(BertConfig(width=384, layers=6, heads=12, mlp_hidden=1536, tanh_pooler=True), visual_dim=192)


@register_preset("visualbert-tiny")
def _visualbert_tiny() -> VisualBertConfig:
    """The sizes of tests/fixtures/visualbert."""
    return VisualBertConfig(BertConfig(vocab_size=200, width=64, layers=2, heads=2, mlp_hidden=128, max_positions=32,
                                       pad_token_id=1), visual_dim=24)
