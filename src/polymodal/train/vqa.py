"""VQA fine-tuning on the world: a region model (VisualBERT; from a pretraining run or from its
text weights) with an answer head, soft-score BCE, and evaluation by VQA accuracy next to the
baselines that tell whether the image was used."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from ..data.vqa import answer_vocabulary
from ..eval.metrics import vqa_score
from ..models.region_vqa import RegionVQA, RegionVQAConfig
from ..registry import build
from ..tasks.region_extractor import RegionExtractor
from .config import ConfigError, RunConfig
from .region_data import RegionQuestions, question_rows, world_region_questions

ANSWERS_FILE = "answers.json"


def build_vqa_model(trunk: nn.Module, answers: list[str], init_from: str | None = None) -> RegionVQA:
    """A :class:`RegionVQA` around ``trunk``'s architecture; its trunk weights are ``init_from``'s
    (a saved region model of the same architecture: a pretraining run's ``model`` folder) or else
    ``trunk``'s own."""
    model = build(RegionVQAConfig(trunk.config, len(answers)))
    source = trunk
    if init_from:
        from ..weights import load_checkpoint

        source = load_checkpoint(init_from)
        if source.config != trunk.config:
            raise ConfigError(f"model.init_from {init_from} holds a {type(source).__name__} of another shape than "
                              f"model.preset gives (e.g. vocabulary or region width differ)")
    own = model.trunk.state_dict()
    state = {k: v for k, v in source.state_dict().items() if k in own}  # the pretraining heads stay behind
    model.trunk.load_state_dict(state)  # strict: every trunk weight must come from the source
    return model


def answers_of(data: RegionQuestions) -> list[str]:
    return answer_vocabulary(data.answers)


@torch.no_grad()
def predict(model: RegionVQA, data: RegionQuestions, answers: list[str], batch: int = 256,
            without_regions: bool = False) -> list[str]:
    """The top answer for every question of ``data`` (all its regions masked out when asked)."""
    model.eval()
    out = []
    for start in range(0, len(data), batch):
        b = question_rows(data, torch.arange(start, min(start + batch, len(data))))
        region_mask = torch.zeros_like(b["region_mask"]) if without_regions else b["region_mask"]
        logits = model(b["ids"], b["regions"], b["attention_mask"], region_mask, b["boxes"])["logits"]
        out += [answers[i] for i in logits.argmax(-1).tolist()]
    return out


def score(predicted: list[str], data: RegionQuestions) -> dict:
    """VQA accuracy overall and per question type."""
    per = [vqa_score(p, a) for p, a in zip(predicted, data.answers)]
    out = {"accuracy": sum(per) / max(len(per), 1)}
    for kind in sorted(set(data.kinds)):
        rows = [s for s, k in zip(per, data.kinds) if k == kind]
        out[f"accuracy_{kind}"] = sum(rows) / len(rows)
    return out


def prior_baselines(train: RegionQuestions, val: RegionQuestions) -> dict:
    """Answers without looking: the most common training answer for every question (chance), and
    the most common training answer of the question's type (the language prior a blind model learns)."""
    overall = Counter(a[0] for a in train.answers).most_common(1)[0][0]
    by_kind = {k: Counter(a[0] for a, kk in zip(train.answers, train.kinds) if kk == k).most_common(1)[0][0]
               for k in set(train.kinds)}
    majority = score([overall] * len(val), val)["accuracy"]
    typed = score([by_kind.get(k, overall) for k in val.kinds], val)["accuracy"]
    return {"majority_answer_accuracy": majority, "answer_prior_by_type_accuracy": typed}


@torch.no_grad()
def evaluate_vqa(model: RegionVQA, cfg: RunConfig, extractor: RegionExtractor, tokenizer, answers: list[str],
                 train: RegionQuestions | None = None) -> dict:
    """On ``val_n`` world val scenes (4 questions each): VQA accuracy overall and per type, the same
    model with every region masked out, and (given the training questions) the answer priors."""
    d = cfg.data
    val = world_region_questions("val", d.val_n, d.seed, d.image_size, extractor, tokenizer)
    result = {f"val_{k}": v for k, v in score(predict(model, val, answers), val).items()}
    result["val_accuracy_without_regions"] = score(predict(model, val, answers, without_regions=True), val)["accuracy"]
    if train is not None:
        result.update({f"val_{k}": v for k, v in prior_baselines(train, val).items()})
    result["val_questions"] = len(val)
    return result


def save_answers(folder: Path, answers: list[str]) -> None:
    (Path(folder) / ANSWERS_FILE).write_text(json.dumps(answers, indent=0))


def load_answers(folder: Path) -> list[str]:
    path = Path(folder) / ANSWERS_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {ANSWERS_FILE}: not a VQA model folder (train one with objective.kind vqa)")
    answers = json.loads(path.read_text())
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"{path}: expected a JSON list of answer strings")
    return answers
