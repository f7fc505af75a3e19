"""ViLBERT's multi-task model (Lu et al., 2020, "12-in-1"; vilbert-multi-task ``VILBertForVLTasks``): the
:class:`~polymodal.models.vilbert.ViLBert` trunk (with its task tokens and pretraining heads) under every
task head the reference trains, each read by the task types of its ``vilbert_tasks.yml``:

    pooled (text ⊙ image) ─┬─ vqa: SimpleClassifier → 3,129 answers      (VL-classifier: VQA, GenomeQA)
                           ├─ gqa: SimpleClassifier → 1,533 answers      (VL-classifier-GQA)
                           ├─ pair: two pictures' pooled, concatenated → 2   (VL-binary-classifier: NLVR2)
                           ├─ score: Linear → 1 per (text, picture)      (VL-logit: retrieval, VCR, dialog)
                           └─ entail: Linear → 3                         (VL-tri-classifier: SNLI-VE, GuessWhat)
    image stream ─ region: Linear → 1 per region, −10000 on padding      (V-logit: RefCOCO(+/g), grounding)
    text stream ─ word: Linear → 1 per token

``SimpleClassifier`` is Linear → GELU → LayerNorm → Linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..registry import register_family, register_preset
from .vilbert import ViLBert, ViLBertConfig

# vilbert_tasks.yml of vilbert-multi-task: task id → (name, the output its type reads)
TASKS = {
    1: ("VQA", "vqa"), 2: ("GenomeQA", "vqa"), 3: ("VisualDialog", "score"), 4: ("Visual7w", "region"),
    5: ("VCR_Q-A", "score"), 6: ("VCR_QA-R", "score"), 7: ("RetrievalCOCO", "score"),
    8: ("RetrievalFlickr30k", "score"), 9: ("refcoco", "region"), 10: ("refcoco+", "region"),
    11: ("refcocog", "region"), 12: ("NLVR2", "pair"), 13: ("VisualEntailment", "entail"),
    14: ("GuessWhat", "entail"), 15: ("GQA", "gqa"), 16: ("Foil", "entail"), 17: ("GuessWhatPointing", "region"),
    18: ("FlickrGrounding", "region"),
}


@dataclass
class ViLBertTaskConfig:
    trunk: ViLBertConfig = field(default_factory=lambda: ViLBertConfig(task_tokens=20))
    vqa_answers: int = 3129
    gqa_answers: int = 1533
    entail_classes: int = 3


def simple_classifier(width: int, hidden: int, out: int, eps: float = 1e-12) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=eps), nn.Linear(hidden, out))


class ViLBertTask(nn.Module):
    def __init__(self, config: ViLBertTaskConfig):
        super().__init__()
        self.config = c = config
        self.trunk = ViLBert(c.trunk)
        w = c.trunk.co_width
        self.vqa = simple_classifier(w, 2 * w, c.vqa_answers)
        self.gqa = simple_classifier(w, 2 * w, c.gqa_answers)
        self.pair = simple_classifier(2 * w, 2 * w, 2)
        self.score = nn.Linear(w, 1)
        self.entail = nn.Linear(w, c.entail_classes)
        self.region = nn.Linear(c.trunk.image_width, 1)
        self.word = nn.Linear(c.trunk.text.width, 1)

    def forward(self, ids: torch.Tensor, regions: torch.Tensor, boxes: torch.Tensor,
                attention_mask: torch.Tensor | None = None, region_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, task_ids: torch.Tensor | None = None) -> dict:
        """ids [B, L], regions [B, R, D], boxes [B, R, 5] (normalised x0 y0 x1 y1 area), masks 1 = real,
        task_ids [B] → every head: ``vqa`` [B, 3129], ``gqa`` [B, 1533], ``score`` [B, 1], ``entail``
        [B, 3], ``pair`` [B, 2] (rows 2i and 2i+1 are one statement's two pictures
        and both carry that pair's logits; absent for odd B),
        ``region`` [B, R, 1], ``word`` [B, L(+1), 1], and the pretraining heads' ``mlm_logits``,
        ``region_logits``, ``align_logits``."""
        out = self.trunk(ids, regions, boxes, attention_mask, region_mask, token_type_ids, task_ids=task_ids)
        pooled = out["pooled"]
        if region_mask is None:
            region_mask = torch.ones(regions.shape[:2], dtype=torch.long, device=regions.device)
        heads = {"vqa": self.vqa(pooled), "gqa": self.gqa(pooled), "score": self.score(pooled),
                 "entail": self.entail(pooled),
                 "region": self.region(out["image"]) + ((1.0 - region_mask.to(pooled.dtype)) * -10000.0)[..., None],
                 "word": self.word(out["text"])}
        if len(pooled) % 2 == 0:
            heads["pair"] = self.pair(pooled.reshape(-1, 2 * pooled.shape[-1])).repeat_interleave(2, dim=0)
        return {**out, **heads}


def _example_inputs(c: ViLBertTaskConfig) -> dict:
    from .vilbert import _example_inputs as trunk_inputs

    inputs = trunk_inputs(c.trunk)
    if c.trunk.task_tokens:
        inputs["task_ids"] = torch.tensor([1, 12]) % c.trunk.task_tokens
    return inputs


register_family("vilbert-task", ViLBertTaskConfig, ViLBertTask, example_inputs=_example_inputs)


@register_preset("vilbert-12in1")
def _vilbert_12in1() -> ViLBertTaskConfig:
    """vilbert-multi-task's multi_task_model.bin: bert_base_6layer_6conect with 20 task tokens."""
    return ViLBertTaskConfig()


@register_preset("vilbert-tiny-tasks")
def _vilbert_tiny_tasks() -> ViLBertTaskConfig:
    """The sizes of tests/fixtures/vilbert_tasks."""
    from dataclasses import replace

    from .vilbert import _vilbert_tiny

    return ViLBertTaskConfig(replace(_vilbert_tiny(), task_tokens=20))
