"""Hugging Face ``VisualBertFor{QuestionAnswering,VisualReasoning,MultipleChoice,RegionToPhraseAlignment}``
(uclanlp/visualbert-vqa, -nlvr2, -vcr, …): the trunk under ``visual_bert.*`` as the pretraining layout
names it, the head as ``cls.*`` (a Linear) or ``attention.*`` (Flickr30k's phrase → region scores, beside
the pretraining heads). The task comes from config.json's ``architectures``, else from the head's shape."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..models.visualbert_tasks import VisualBertTaskConfig
from . import hf_visualbert
from .keymap import rename
from .layout import Layout, register_layout

ARCHITECTURES = {"VisualBertForQuestionAnswering": "vqa", "VisualBertForVisualReasoning": "nlvr2",
                 "VisualBertForMultipleChoice": "vcr", "VisualBertForRegionToPhraseAlignment": "flickr"}
HEAD_RULES = [(r"cls\.(weight|bias)", r"cls.\1"), (r"attention\.(query|key|value)\.(weight|bias)", r"phrase.\1.\2")]


def _is_head(key: str) -> bool:
    return re.fullmatch(r"cls\.(weight|bias)|attention\.(query|key|value)\.(weight|bias)", key) is not None


def _match(keys: set[str], folder: Path | None) -> bool:
    return "visual_bert.embeddings.visual_projection.weight" in keys and ("cls.weight" in keys
                                                                          or "attention.query.weight" in keys)


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    trunk = hf_visualbert.convert({k: v for k, v in sd.items() if not _is_head(k)})
    return {**{f"trunk.{k}": v for k, v in trunk.items()},
            **rename({k: v for k, v in sd.items() if _is_head(k)}, HEAD_RULES)}


def _task(sd: dict, cfg: dict | None) -> str:
    for name in (cfg or {}).get("architectures") or []:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    if "attention.query.weight" in sd:
        return "flickr"
    rows = sd["cls.weight"].shape[0]
    return "vcr" if rows == 1 else "nlvr2" if rows == 2 else "vqa"


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> VisualBertTaskConfig:
    trunk = hf_visualbert.LAYOUT.infer_config({k: v for k, v in sd.items() if not _is_head(k)}, cfg, folder)
    task = _task(sd, cfg)
    labels = sd["cls.weight"].shape[0] if "cls.weight" in sd else 0
    names = ()
    id2label = (cfg or {}).get("id2label") or {}
    if task in ("vqa", "nlvr2") and len(id2label) == labels:
        names = tuple(str(id2label.get(str(i), id2label.get(i, ""))) for i in range(labels))
        if all(re.fullmatch(rf"LABEL_{i}", n) for i, n in enumerate(names)):
            names = ()  # transformers' placeholders, not answers
    return VisualBertTaskConfig(trunk, task=task, labels=labels if task != "vcr" else 1, label_names=names)


LAYOUT = register_layout(Layout("hf-visualbert-task", "visualbert-task", "Hugging Face VisualBERT task model",
                                _match, priority=75, convert=convert, infer_config=_infer))
