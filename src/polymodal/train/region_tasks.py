"""The lecture's region tasks besides VQA, as objective kinds: a region model (VisualBERT or ViLBERT,
from a pretraining run with ``model.init_from`` or from its text weights) with a scoring head
(:mod:`polymodal.models.region_scorer`), trained on the examples a source gives (the world's) and
evaluated next to chance and ceiling.

=============  ====================================  ==========================  ==================================
kind           input → output                        objective                   metrics
=============  ====================================  ==========================  ==================================
consistency    statement + regions → fits?           BCE                         accuracy, AUROC (chance: majority)
refexp         expression + regions → which region   softmax over regions        accuracy at IoU ≥ 0.5, with true and
                                                                                 detector regions (ceiling: a region
                                                                                 that overlaps at all)
vcr            question (+ answer) + one option      softmax over 4 options      Q→A, QA→R, Q→AR (chance ¼, ¼, 1/16)
=============  ====================================  ==========================  ==================================

``objective.inputs=text`` / ``image`` train the same model with the other side removed: the
single-modality baselines.
"""

from __future__ import annotations

import torch
from torch import nn

from ..eval.metrics import auroc
from ..models.region_scorer import RegionScorer, RegionScorerConfig
from ..objectives import BinaryMatch, MultipleChoice, Objective
from ..registry import build
from .config import ConfigError
from .data import batch_indices
from .kinds import register_kind
from .region_data import question_rows
from .region_kinds import RegionKind, keep_inputs, start_trunk
from .region_task_data import SceneTexts


@torch.no_grad()
def score_rows(model: nn.Module, data: SceneTexts, rows: torch.Tensor, inputs: str = "both",
               batch: int = 256) -> torch.Tensor:
    """The model's logits for texts ``rows`` [Q] of ``data``: [Q] (per pair) or [Q, R] (per region)."""
    model.eval()
    out = []
    for start in range(0, len(rows), batch):
        b = keep_inputs(question_rows(data, rows[start:start + batch]), inputs)
        out.append(model(b["ids"], b["regions"], b["attention_mask"], b["region_mask"], b["boxes"])["logits"].float())
    return torch.cat(out)


class ScorerKind(RegionKind):
    """A region task whose model is a :class:`RegionScorer`; subclasses set ``per_region``."""

    per_region = False

    def scorer(self, visual_dim: int) -> RegionScorer:
        trunk = self.trunk(visual_dim)
        model = build(RegionScorerConfig(trunk.config, self.per_region))
        start_trunk(model.trunk, trunk, self.cfg.model.init_from)
        return model

    def indices(self, step: int, n: int) -> torch.Tensor:
        idx, _ = batch_indices(step, self.cfg.train.batch_size, n, self.cfg.train.seed)
        return self.rank_slice(idx)


@register_kind("consistency")
class ConsistencyKind(ScorerKind):
    """Does the statement fit the picture? (The world's: one statement per scene, half of them shown
    with a minimally edited scene that makes them false, ``polymodal.world.labels.consistency``.)"""

    examples = "region_statements"

    def load_data(self) -> None:
        self.load_tokenizer()
        train = self.load_examples("train")
        self.data, self.labels = train.texts, train.labels

    def build_model(self) -> nn.Module:
        return self.scorer(self.data.regions.shape[-1])

    def objective(self, model: nn.Module) -> Objective:
        return BinaryMatch()

    def batch(self, step: int) -> dict:
        idx = self.indices(step, len(self.data))
        return keep_inputs({**question_rows(self.data, idx), "labels": self.labels[idx]}, self.cfg.objective.inputs)

    def evaluate(self, model: nn.Module) -> dict:
        statements = self.load_examples("val")
        if statements is None:
            return {}
        val, labels, kinds = statements.texts, statements.labels, statements.kinds
        logits = score_rows(model, val, torch.arange(len(val)), self.cfg.objective.inputs)
        right = (logits > 0).long() == labels
        result = {"val_accuracy": right.float().mean().item(), "val_auroc": auroc(logits, labels),
                  "val_majority_baseline": max(labels.float().mean().item(), 1 - labels.float().mean().item())}
        for kind in sorted(set(kinds)):
            rows = torch.tensor([k == kind for k in kinds])
            result[f"val_accuracy_{kind}"] = right[rows].float().mean().item()
            result[f"val_n_{kind}"] = int(rows.sum())
        result["val_n"] = len(val)
        return result


@register_kind("refexp")
class RefExpKind(ScorerKind):
    """Which region does the expression refer to? Trained on the source's training references;
    evaluated on each of its validation sets (the world's: on the true and on the detector's regions)."""

    examples = "region_references"
    per_region = True

    def load_data(self) -> None:
        if self.cfg.objective.inputs == "text":
            raise ConfigError("objective.kind refexp picks a region: objective.inputs text leaves none to pick")
        self.load_tokenizer()
        train = self.load_examples("train")
        self.data, self.positives = train.texts, train.positives
        self.rows = torch.nonzero(self.positives.any(dim=1))[:, 0]  # a missed object cannot be learnt

    def build_model(self) -> nn.Module:
        return self.scorer(self.data.regions.shape[-1])

    def objective(self, model: nn.Module) -> Objective:
        return MultipleChoice()

    def batch(self, step: int) -> dict:
        idx = self.rows[self.indices(step, len(self.rows))]
        b = keep_inputs(question_rows(self.data, idx), self.cfg.objective.inputs)
        return {**b, "positives": self.positives[idx]}

    def evaluate(self, model: nn.Module) -> dict:
        sets = self.load_examples("val")
        result = {}
        if sets is None:
            return result
        for name, refs in (sets.items() if isinstance(sets, dict) else [("", sets)]):
            val, positives, suffix = refs.texts, refs.positives, f"_{name}" if name else ""
            logits = score_rows(model, val, torch.arange(len(val)), self.cfg.objective.inputs)
            hit = positives.gather(1, logits.argmax(1, keepdim=True))[:, 0]
            regions = val.region_mask[val.scene_of].sum(1).clamp(min=1)
            result.update({f"val_accuracy{suffix}": hit.float().mean().item(),
                           f"val_chance{suffix}": (positives.sum(1) / regions).mean().item(),
                           f"val_ceiling{suffix}": positives.any(1).float().mean().item()})
            result["val_expressions"] = len(val)
        return result


@register_kind("vcr")
class VCRKind(ScorerKind):
    """Visual commonsense reasoning (the world's edition: Q→A (which colour) and QA→R (which rationale —
    where the object is — supports it)), four options each, scored one (text, regions) pair at a time
    by a shared head. A batch of ``train.batch_size`` items poses each item one of the two, in turn."""

    examples = "region_choices"

    def load_data(self) -> None:
        self.load_tokenizer()
        self.items = self.load_examples("train")

    def build_model(self) -> nn.Module:
        return self.scorer(self.items.texts.regions.shape[-1])

    def objective(self, model: nn.Module) -> Objective:
        return MultipleChoice()

    def batch(self, step: int) -> dict:
        idx = self.indices(step, len(self.items))
        rationale = (idx + step) % 2  # 0: Q→A, 1: QA→R
        rows = idx[:, None] * 8 + rationale[:, None] * 4 + torch.arange(4)  # [B, 4]
        right = torch.where(rationale == 1, self.items.rationale[idx], self.items.answer[idx])
        b = keep_inputs(question_rows(self.items.texts, rows.flatten()), self.cfg.objective.inputs)
        return {**b, "positives": torch.nn.functional.one_hot(right, 4).bool()}

    def evaluate(self, model: nn.Module) -> dict:
        val = self.load_examples("val")
        if val is None:
            return {}
        logits = score_rows(model, val.texts, torch.arange(len(val.texts)), self.cfg.objective.inputs).view(-1, 8)
        qa = logits[:, :4].argmax(1) == val.answer
        qar = logits[:, 4:].argmax(1) == val.rationale
        return {"val_q_a_accuracy": qa.float().mean().item(), "val_qa_r_accuracy": qar.float().mean().item(),
                "val_q_ar_accuracy": (qa & qar).float().mean().item(), "val_items": len(val)}
