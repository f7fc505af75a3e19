"""Visual question answering over image regions: a region model's pooled output → an answer
classifier, as VisualBERT and ViLBERT fine-tune for VQA.

    question ids + regions ─ VisualBERT or ViLBERT trunk ─ pooled ─ Linear(w, 2w) ─ GELU ─ LayerNorm ─ Linear(2w, A)

The head is ViLBERT's ``SimpleClassifier`` (VisualBERT's reference uses a single linear layer; the
two-layer head is the common choice of both codebases' VQA fine-tuning and costs little). The answer
strings live beside the weights (``answers.json``), index i naming logit i.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..registry import build, register_family, register_preset
from .vilbert import ViLBertConfig
from .visualbert import VisualBertConfig


@dataclass
class RegionVQAConfig:
    trunk: VisualBertConfig | ViLBertConfig = field(default_factory=VisualBertConfig)
    answers: int = 3129  # VQA v2's usual vocabulary: answers given ≥ 9 times in train


def pooled_width(trunk: VisualBertConfig | ViLBertConfig) -> int:
    return trunk.co_width if isinstance(trunk, ViLBertConfig) else trunk.bert.width


class AnswerHead(nn.Module):
    """[B, width] → answer logits [B, answers]."""

    def __init__(self, width: int, answers: int, eps: float = 1e-12):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.LayerNorm(2 * width, eps=eps),
                                 nn.Linear(2 * width, answers))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)


class RegionVQA(nn.Module):
    """Question ids [B, L] + regions [B, R, visual_dim] (+ boxes [B, R, 5] for ViLBERT) → ``logits`` [B, A]."""

    def __init__(self, config: RegionVQAConfig):
        super().__init__()
        self.config = config
        self.trunk = build(config.trunk)
        for name in self.trunk.HEADS:  # pretraining heads: unused here (and DDP insists every parameter is used)
            delattr(self.trunk, name)
        self.head = AnswerHead(pooled_width(config.trunk), config.answers)

    def forward(self, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                region_mask: torch.Tensor | None = None, boxes: torch.Tensor | None = None) -> dict:
        pooled = self.trunk.forward_features(ids, regions, attention_mask, region_mask, boxes)["pooled"]
        return {"logits": self.head(pooled)}


def region_task_inputs(c: RegionVQAConfig) -> dict:
    from ..registry import example_inputs

    x = example_inputs(c.trunk)
    x.pop("token_type_ids", None)
    return {"ids": x["ids"], "regions": x["regions"], "attention_mask": x["attention_mask"],
            "region_mask": x["region_mask"], "boxes": x.get("boxes")}


register_family("region-vqa", RegionVQAConfig, RegionVQA, example_inputs=region_task_inputs)


@register_preset("visualbert-vqa-tiny")
def _visualbert_vqa_tiny() -> RegionVQAConfig:
    from ..registry import preset

    return RegionVQAConfig(preset("visualbert-tiny"), answers=10)


@register_preset("vilbert-vqa-tiny")
def _vilbert_vqa_tiny() -> RegionVQAConfig:
    from ..registry import preset

    return RegionVQAConfig(preset("vilbert-tiny"), answers=10)
