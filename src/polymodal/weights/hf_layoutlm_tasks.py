"""Hugging Face LayoutLM task models → our :class:`DocumentTaskModel` (the trunk under
``layoutlmv2.`` / ``layoutlmv3.``, the head beside it):

| Hugging Face | head keys | ours |
|---|---|---|
| ``LayoutLMv2ForTokenClassification`` | ``classifier`` Linear | ``entities``, no link scorer |
| ``LayoutLMv3ForTokenClassification`` | ``classifier`` Linear (< 10 labels) or dense–tanh–out_proj | ``entities``, no link scorer |
| ``LayoutLMv2ForQuestionAnswering`` | ``qa_outputs`` Linear | ``qa`` |
| ``LayoutLMv3ForQuestionAnswering`` | ``qa_outputs`` dense–tanh–out_proj | ``qa`` |
| ``LayoutLMv2ForSequenceClassification`` | ``classifier`` Linear on [CLS] + mean visual token before and after the trunk | ``classify``, ``pool="cls+visual_in+visual"`` |
| ``LayoutLMv3ForSequenceClassification`` | ``classifier`` dense–tanh–out_proj on [CLS] | ``classify``, ``pool="cls"`` |

The task comes from ``config.json``'s ``architectures`` where the folder has one, else from the
head's keys and shapes (v2's sequence classifier is 3× the trunk's width wide).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..models.document_tasks import DocumentTaskConfig
from .files import CheckpointError
from .hf_layoutlm import _infer_v2, _infer_v3, convert_v2, convert_v3
from .keymap import rename
from .layout import Layout, register_layout

HEADS = ("classifier.", "qa_outputs.")
TASK_OF = {"ForTokenClassification": "entities", "ForQuestionAnswering": "qa", "ForSequenceClassification": "classify"}


def _split(sd: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    head = {k: v for k, v in sd.items() if k.startswith(HEADS)}
    return {k: v for k, v in sd.items() if k not in head}, head


def _architecture(cfg: dict | None, folder: Path | None) -> str | None:
    """The task suffix (``ForTokenClassification``, …) that the config (or the folder's config.json) names."""
    named = (cfg or {}).get("architectures")
    if named is None and folder is not None and (folder / "config.json").is_file():
        try:
            named = json.loads((folder / "config.json").read_text()).get("architectures")
        except (ValueError, AttributeError):
            named = None
    for arch in named or []:
        for suffix in TASK_OF:
            if str(arch).endswith(suffix):
                return suffix
    return None


def _v2_sequence_classifier(head: dict[str, torch.Tensor], width: int) -> bool:
    weight = head.get("classifier.weight")
    return weight is not None and weight.dim() == 2 and weight.shape[1] == 3 * width


def _task(head: dict[str, torch.Tensor], version: str, width: int, arch: str | None) -> tuple[str, str]:
    """(our task, "linear" | "tanh") of a head; errors name what does not fit."""
    tanh = any(k.endswith("out_proj.weight") for k in head)
    kind = "tanh" if tanh else "linear"
    if any(k.startswith("qa_outputs.") for k in head):
        return "qa", kind
    if arch == "ForQuestionAnswering":
        raise CheckpointError(f"a LayoutLM{version}ForQuestionAnswering checkpoint without qa_outputs.* keys")
    if version == "v2" and _v2_sequence_classifier(head, width):
        return "classify", "linear"
    if version == "v2" and head["classifier.weight"].shape[1] != width:
        raise CheckpointError(f"classifier.weight is {list(head['classifier.weight'].shape)}: neither LayoutLMv2's "
                              f"token classifier (width {width}) nor its sequence classifier (width {3 * width})")
    if arch == "ForSequenceClassification":
        raise CheckpointError(f"a LayoutLM{version}ForSequenceClassification checkpoint whose head lacks "
                              "classifier.dense / classifier.out_proj")
    if tanh and arch is None:
        raise CheckpointError("a LayoutLMv3 classifier with a dense–tanh head is a token classifier (≥ 10 labels) "
                              "or a sequence classifier: put the folder's config.json (its `architectures`) beside it")
    return "entities", kind


def _head_rules(ours: str, source: str) -> list:
    return [(rf"{source}\.((?:dense|out_proj)\.)?(weight|bias)", rf"{ours}.\1\2")]


def _converter(convert_trunk, rules: list):
    def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        trunk, head = _split(sd)
        trunk = convert_trunk(trunk)
        # LayoutLMv2's sequence classifier keeps its name (ours is ``classifier`` too), told by its width.
        keep = _v2_sequence_classifier(head, trunk["stem.word.weight"].shape[1]) if "stem.word.weight" in trunk else False
        return {**{f"trunk.{k}": v for k, v in trunk.items()}, **(head if keep else rename(head, rules))}
    return convert


def _inferrer(infer_trunk, version: str, classify: bool = False):
    def infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> DocumentTaskConfig:
        trunk_sd, head = _split(sd)
        trunk = infer_trunk(trunk_sd, cfg, folder)
        if classify:
            task, kind = "classify", "tanh"
        else:
            task, kind = _task(head, version, trunk.bert.width, _architecture(cfg, folder))
        out = next(v for k, v in head.items() if k.endswith(("out_proj.weight", "classifier.weight", "qa_outputs.weight")))
        pool = "cls" if classify else "cls+visual_in+visual" if task == "classify" else "cls+visual"
        return DocumentTaskConfig(trunk, task, num_labels=out.shape[0], link_dim=0, head=kind, pool=pool)
    return infer


def _matcher(prefix: str, sequence_classifier: bool = False):
    def match(keys: set[str], folder: Path | None) -> bool:
        if f"{prefix}embeddings.word_embeddings.weight" not in keys or not any(k.startswith(HEADS) for k in keys):
            return False
        return not sequence_classifier or ("classifier.out_proj.weight" in keys
                                           and _architecture(None, folder) == "ForSequenceClassification")
    return match


# Above the trunk layouts (72, 71), which would match the same keys and then refuse the head.
for _version, _convert, _infer in (("v2", convert_v2, _infer_v2), ("v3", convert_v3, _infer_v3)):
    register_layout(Layout(f"hf-layoutlm{_version}-task", "document-task",
                           f"Hugging Face LayoutLM{_version} token classification / question answering",
                           _matcher(f"layoutlm{_version}."), priority=74,
                           convert=_converter(_convert, _head_rules("tagger", "classifier") + _head_rules("span", "qa_outputs")),
                           infer_config=_inferrer(_infer, _version)))
# Its classifier's keys are a ≥ 10-label token classifier's too: only a config.json naming it tells.
register_layout(Layout("hf-layoutlmv3-sequence-classification", "document-task",
                       "Hugging Face LayoutLMv3ForSequenceClassification", _matcher("layoutlmv3.", True), priority=75,
                       convert=_converter(convert_v3, _head_rules("classifier", "classifier")),
                       infer_config=_inferrer(_infer_v3, "v3", classify=True)))
