"""Scoring heads on a region model, for the lecture's region tasks other than VQA.

    per pair   (multimodal consistency, VCR choices):  pooled [B, w]          ─ MLP ─▶ logits [B]
    per region (referring expressions):                region_hidden [B, R, w] ─ MLP ─▶ logits [B, R]

The MLP is :class:`~polymodal.models.region_vqa.AnswerHead` with one output. Per-region logits of
padded regions are the dtype's lowest finite value, so a softmax over regions never picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..registry import build, register_family, register_preset
from .region_vqa import AnswerHead, region_task_inputs, pooled_width
from .vilbert import ViLBertConfig
from .visualbert import VisualBertConfig


@dataclass
class RegionScorerConfig:
    trunk: VisualBertConfig | ViLBertConfig = field(default_factory=VisualBertConfig)
    per_region: bool = False  # True: a logit per region (referring expressions); False: one per (text, image)


def region_width(trunk: VisualBertConfig | ViLBertConfig) -> int:
    return trunk.image_width if isinstance(trunk, ViLBertConfig) else trunk.bert.width


class RegionScorer(nn.Module):
    """Text ids [B, L] + regions [B, R, visual_dim] (+ boxes [B, R, 5] for ViLBERT) → ``logits``
    [B] (per pair) or [B, R] (per region)."""

    def __init__(self, config: RegionScorerConfig):
        super().__init__()
        self.config = config
        self.trunk = build(config.trunk)
        for name in self.trunk.HEADS:  # pretraining heads: unused here
            delattr(self.trunk, name)
        width = region_width(config.trunk) if config.per_region else pooled_width(config.trunk)
        self.head = AnswerHead(width, 1)

    def forward(self, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                region_mask: torch.Tensor | None = None, boxes: torch.Tensor | None = None) -> dict:
        out = self.trunk.forward_features(ids, regions, attention_mask, region_mask, boxes)
        if not self.config.per_region:
            return {"logits": self.head(out["pooled"])[:, 0]}
        logits = self.head(out["region_hidden"])[..., 0]
        if region_mask is not None:
            logits = logits.masked_fill(region_mask == 0, torch.finfo(logits.dtype).min)
        return {"logits": logits}


register_family("region-scorer", RegionScorerConfig, RegionScorer, example_inputs=region_task_inputs)


@register_preset("visualbert-refexp-tiny")
def _visualbert_refexp_tiny() -> RegionScorerConfig:
    from ..registry import preset

    return RegionScorerConfig(preset("visualbert-tiny"), per_region=True)


@register_preset("vilbert-match-tiny")
def _vilbert_match_tiny() -> RegionScorerConfig:
    from ..registry import preset

    return RegionScorerConfig(preset("vilbert-tiny"), per_region=False)
