"""VQA fine-tuning: a region model (VisualBERT; from a pretraining run or from its
text weights) with an answer head, soft-score BCE, and evaluation by VQA accuracy next to the
baselines that tell whether the image was used."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from torch import nn

from ..data.vqa import answer_vocabulary, soft_targets
from ..eval.metrics import normalize_answer, vqa_score
from ..models.region_vqa import RegionVQA, RegionVQAConfig
from ..objectives import Objective, SoftScoreBCE
from ..registry import build
from ..tasks.vqa import load_answers, save_answers
from .config import ConfigError
from .kinds import register_kind
from .region_data import RegionQuestions, question_rows, vqa_batch
from .region_kinds import RegionKind, keep_inputs, start_trunk

def build_vqa_model(trunk: nn.Module, answers: list[str], init_from: str | None = None) -> RegionVQA:
    """A :class:`RegionVQA` around ``trunk``'s architecture, its trunk weights from ``init_from`` (a
    pretraining run's ``model`` folder) or else ``trunk``'s own (see :func:`start_trunk`)."""
    model = build(RegionVQAConfig(trunk.config, len(answers)))
    start_trunk(model.trunk, trunk, init_from)
    return model


def answers_of(data: RegionQuestions, min_count: int = 1) -> list[str]:
    return answer_vocabulary(data.answers, min_count)


@register_kind("vqa")
class VQAKind(RegionKind):
    """Questions about pictures answered from their regions: an answer head, soft-score BCE."""

    examples = "region_questions"
    reads = RegionKind.reads + ("min_answer_count",)

    def load_data(self) -> None:
        self.load_tokenizer()
        self.data = self.load_examples("train")
        self.answers = answers_of(self.data, self.cfg.data.min_answer_count)
        if not self.answers:
            raise ConfigError(f"no training answer is given data.min_answer_count={self.cfg.data.min_answer_count} times")
        self.targets = soft_targets(self.data.answers, self.answers)

    def build_model(self) -> nn.Module:
        return build_vqa_model(self.trunk(self.data.regions.shape[-1]), self.answers, self.cfg.model.init_from)

    def objective(self, model: nn.Module) -> Objective:
        return SoftScoreBCE()

    def batch(self, step: int) -> dict:
        t = self.cfg.train
        b = vqa_batch(self.data, self.targets, step, t.batch_size, t.seed, self.rank, self.world_size)
        return keep_inputs(b, self.cfg.objective.inputs)

    def evaluate(self, model: nn.Module) -> dict:
        val = self.load_examples("val")
        if val is None:
            return {}
        return evaluate_vqa(model, val, self.answers, self.cfg.objective.inputs, getattr(self, "data", None))

    def save(self, folder: Path) -> None:
        super().save(folder)
        save_answers(folder, self.answers)

    def evaluate_saved(self, model: nn.Module, folder: Path, tokenizer) -> dict:
        self.tokenizer, self.answers = tokenizer, load_answers(folder)
        return self.evaluate(model)


@torch.no_grad()
def predict(model: RegionVQA, data: RegionQuestions, answers: list[str], batch: int = 256,
            inputs: str = "both") -> list[str]:
    """The top answer for every question of ``data`` (seeing only the ``inputs`` side when asked:
    :func:`~polymodal.train.region_kinds.keep_inputs`)."""
    model.eval()
    out = []
    for start in range(0, len(data), batch):
        b = keep_inputs(question_rows(data, torch.arange(start, min(start + batch, len(data)))), inputs)
        logits = model(b["ids"], b["regions"], b["attention_mask"], b["region_mask"], b["boxes"])["logits"]
        out += [answers[i] for i in logits.argmax(-1).tolist()]
    return out


def score(predicted: list[str], data: RegionQuestions) -> dict:
    """VQA accuracy overall, per question type and per answer type (where the data gives them)."""
    per = [vqa_score(p, a) for p, a in zip(predicted, data.answers)]
    out = {"accuracy": sum(per) / max(len(per), 1)}
    for prefix, labels in (("accuracy_", data.kinds), ("accuracy_answer_type_", data.answer_types)):
        for label in sorted(set(labels)):
            rows = [s for s, k in zip(per, labels) if k == label]
            out[f"{prefix}{label}"] = sum(rows) / len(rows)
    return out


def top_answer(answers: list[str]) -> str:
    """The answer most of a question's annotators gave (normalised; ties: the first given)."""
    return Counter(normalize_answer(a) for a in answers).most_common(1)[0][0]


def prior_baselines(train: RegionQuestions, val: RegionQuestions) -> dict:
    """Answers without looking: the most common training answer for every question (chance), and
    the most common training answer of the question's type (the language prior a blind model learns)."""
    tops = [top_answer(a) for a in train.answers]
    overall = Counter(tops).most_common(1)[0][0]
    by_kind = {k: Counter(t for t, kk in zip(tops, train.kinds) if kk == k).most_common(1)[0][0]
               for k in set(train.kinds)}
    majority = score([overall] * len(val), val)["accuracy"]
    typed = score([by_kind.get(k, overall) for k in val.kinds], val)["accuracy"]
    return {"majority_answer_accuracy": majority, "answer_prior_by_type_accuracy": typed}


@torch.no_grad()
def evaluate_vqa(model: RegionVQA, val: RegionQuestions, answers: list[str], inputs: str = "both",
                 train: RegionQuestions | None = None) -> dict:
    """On the validation questions: VQA accuracy overall and per type, the same model with every
    region masked out, and (given the training questions) the answer priors."""
    result = {f"val_{k}": v for k, v in score(predict(model, val, answers, inputs=inputs), val).items()}
    if inputs != "text":
        result["val_accuracy_without_regions"] = score(predict(model, val, answers, inputs="text"), val)["accuracy"]
    if train is not None:
        result.update({f"val_{k}": v for k, v in prior_baselines(train, val).items()})
    result["val_questions"] = len(val)
    return result
