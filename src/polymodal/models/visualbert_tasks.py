"""VisualBERT's published task models (Li et al., 2019; transformers' ``VisualBertFor*``), one class with the
head the task needs on top of the :class:`~polymodal.models.visualbert.VisualBert` trunk:

* ``vqa`` (VQA v2, ``VisualBertForQuestionAnswering``): the hidden state of the last question token (the one
  before [SEP], at ``sum(attention_mask) − 2``) → Linear → [B, answers] (3,129 for VQA v2);
* ``nlvr2`` (``VisualBertForVisualReasoning``): the tanh-pooled [CLS] → Linear → [B, 2];
* ``vcr`` (``VisualBertForMultipleChoice``): each choice's pooled [CLS] → Linear → one score, [B, choices];
* ``flickr`` (Flickr30k Entities, ``VisualBertForRegionToPhraseAlignment``): the hidden states at the phrase
  positions attend (one head of width ``width / heads``, no softmax) over the regions' → [B, phrases, R]
  region scores; masked regions get the float's lowest value added, as the reference does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..registry import register_family, register_preset
from .visualbert import VisualBert, VisualBertConfig

TASKS = ("vqa", "nlvr2", "vcr", "flickr")


@dataclass
class VisualBertTaskConfig:
    trunk: VisualBertConfig = field(default_factory=VisualBertConfig)
    task: str = "vqa"
    labels: int = 3129  # vqa / nlvr2 outputs (vcr scores each choice once; flickr scores regions)
    label_names: tuple[str, ...] = ()  # the checkpoint's id2label, e.g. VQA's answers

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown VisualBERT task {self.task!r}; known: {', '.join(TASKS)}")
        if self.label_names and len(self.label_names) != self.labels:
            raise ValueError(f"{len(self.label_names)} label names for {self.labels} labels")


class PhraseToRegion(nn.Module):
    """phrases [B, P, w] · regions [B, R, w] → scores [B, P, R] (scaled dot product of one narrow head)."""

    def __init__(self, width: int, head_width: int):
        super().__init__()
        self.query = nn.Linear(width, head_width)
        self.key = nn.Linear(width, head_width)
        self.value = nn.Linear(width, head_width)  # in the checkpoints; the scores never use it

    def forward(self, phrases: torch.Tensor, regions: torch.Tensor, region_mask: torch.Tensor) -> torch.Tensor:
        q, k = self.query(phrases), self.key(regions)
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        return scores + (1.0 - region_mask.to(scores.dtype))[:, None, :] * torch.finfo(scores.dtype).min


class VisualBertTask(nn.Module):
    def __init__(self, config: VisualBertTaskConfig):
        super().__init__()
        self.config = config
        self.trunk = VisualBert(config.trunk)
        width = config.trunk.bert.width
        if config.task == "flickr":  # its checkpoints keep the pretraining heads beside the phrase attention
            self.phrase = PhraseToRegion(width, width // config.trunk.bert.heads)
        else:
            for name in VisualBert.HEADS:
                delattr(self.trunk, name)
            self.cls = nn.Linear(width, 1 if config.task == "vcr" else config.labels)

    def forward(self, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                region_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                region_type_ids: torch.Tensor | None = None, phrase_positions: torch.Tensor | None = None) -> dict:
        """ids [B, L], regions [B, R, D] (vcr: ids [B, C, L], regions [B, C, R, D] or [B, R, D] shared by
        the choices), masks 1 = real; flickr: ``phrase_positions`` [B, P] (token index, −1 = none) →
        ``logits``: vqa / nlvr2 [B, labels], vcr [B, C], flickr [B, P, R]."""
        task = self.config.task
        if task == "vcr":
            return self._choices(ids, regions, attention_mask, region_mask, token_type_ids, region_type_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(ids)
        if region_mask is None:
            region_mask = torch.ones(regions.shape[:2], dtype=torch.long, device=regions.device)
        out = self.trunk.forward_features(ids, regions, attention_mask, region_mask, None, token_type_ids,
                                          region_type_ids)
        if task == "nlvr2":
            return {"logits": self.cls(out["pooled"])}
        if task == "vqa":
            last = (attention_mask.sum(1) - 2).clamp(min=0)  # the token before [SEP]
            return {"logits": self.cls(out["hidden"][torch.arange(len(ids), device=ids.device), last])}
        if phrase_positions is None:
            raise ValueError("the flickr task needs phrase_positions [B, P] (token indices; −1 = none)")
        hidden = out["hidden"]
        positions = phrase_positions.clamp(min=0)
        phrases = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
        return {"logits": self.phrase(phrases, out["region_hidden"], region_mask)}

    def _choices(self, ids, regions, attention_mask, region_mask, token_type_ids, region_type_ids) -> dict:
        if ids.dim() != 3:
            raise ValueError(f"vcr takes ids [B, choices, L], got {tuple(ids.shape)}")
        b, c, n = ids.shape
        if regions.dim() == 3:  # one picture's regions for every choice
            regions = regions[:, None].expand(-1, c, -1, -1)
            region_mask = None if region_mask is None else region_mask[:, None].expand(-1, c, -1)
            region_type_ids = None if region_type_ids is None else region_type_ids[:, None].expand(-1, c, -1)
        flat = lambda t: None if t is None else t.reshape(b * c, *t.shape[2:])  # noqa: E731
        out = self.trunk.forward_features(flat(ids), flat(regions), flat(attention_mask), flat(region_mask), None,
                                          flat(token_type_ids), flat(region_type_ids))
        return {"logits": self.cls(out["pooled"]).view(b, c)}


def _example_inputs(c: VisualBertTaskConfig) -> dict:
    ids = torch.randint(0, c.trunk.bert.vocab_size, (2, 6))
    regions = torch.randn(2, 3, c.trunk.visual_dim)
    if c.task == "vcr":
        return {"ids": torch.randint(0, c.trunk.bert.vocab_size, (2, 4, 6)), "regions": regions}
    if c.task == "flickr":
        return {"ids": ids, "regions": regions, "phrase_positions": torch.tensor([[1, 2], [3, -1]])}
    return {"ids": ids, "regions": regions}


register_family("visualbert-task", VisualBertTaskConfig, VisualBertTask, example_inputs=_example_inputs)


@register_preset("visualbert-vqa")
def _visualbert_vqa() -> VisualBertTaskConfig:
    """uclanlp/visualbert-vqa's geometry: BERT-base over 2048-d bottom-up regions, 3,129 answers."""
    return VisualBertTaskConfig()


@register_preset("visualbert-tiny-vcr")
def _visualbert_tiny_vcr() -> VisualBertTaskConfig:
    from .visualbert import _visualbert_tiny

    return VisualBertTaskConfig(_visualbert_tiny(), task="vcr", labels=1)
