"""vilbert-multi-task ``VILBertForVLTasks`` layout (its 12-in-1 ``multi_task_model.bin`` and the
single-task fine-tuned ``pytorch_model_*.bin``): the ``BertForMultiModalPreTraining`` keys of
:mod:`polymodal.weights.vilbert` plus the task heads."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..models.vilbert_tasks import ViLBertTaskConfig
from . import vilbert
from .keymap import rename
from .layout import Layout, register_layout

HEADS = {"vil_prediction.logit_fc": "vqa", "vil_prediction_gqa.logit_fc": "gqa",
         "vil_binary_prediction.logit_fc": "pair", "vil_logit": "score", "vil_tri_prediction": "entail",
         "vision_logit": "region", "linguisic_logit": "word"}
RULES = [(re.escape(old) + r"\.(.+)", new + r".\1") for old, new in HEADS.items()]


def _is_head(key: str) -> bool:
    return key.split(".")[0] in {old.split(".")[0] for old in HEADS}


def _match(keys: set[str], folder: Path | None) -> bool:
    return "vil_prediction.logit_fc.0.weight" in keys and "vision_logit.weight" in keys


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    trunk = vilbert.convert({k: v for k, v in sd.items() if not _is_head(k)})
    return {**{f"trunk.{k}": v for k, v in trunk.items()}, **rename({k: v for k, v in sd.items() if _is_head(k)}, RULES)}


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> ViLBertTaskConfig:
    trunk = vilbert.LAYOUT.infer_config({k: v for k, v in sd.items() if not _is_head(k)}, cfg, folder)
    return ViLBertTaskConfig(trunk, vqa_answers=sd["vil_prediction.logit_fc.3.weight"].shape[0],
                             gqa_answers=sd["vil_prediction_gqa.logit_fc.3.weight"].shape[0],
                             entail_classes=sd["vil_tri_prediction.weight"].shape[0])


LAYOUT = register_layout(Layout("vilbert-tasks", "vilbert-task", "ViLBERT multi-task model (vilbert-multi-task)",
                                _match, priority=75, convert=convert, infer_config=_infer))
