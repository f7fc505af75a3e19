"""Hugging Face ``LayoutLMv2ForTokenClassification`` and ``LayoutLMv3ForTokenClassification`` (a
FUNSD-style BIO tagger: the trunk under ``layoutlmv2.`` / ``layoutlmv3.`` and one ``classifier``
Linear over each token's state) → our ``entities`` task model without a link scorer.

LayoutLMv3 with 10 or more labels swaps the Linear for a dense–tanh–projection head
(``classifier.dense`` / ``classifier.out_proj``); that head is not mapped, and such a checkpoint
loads as the plain LayoutLMv3 layout, whose strict load names the ``classifier.*`` keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..models.document_tasks import DocumentTaskConfig
from .files import CheckpointError
from .hf_layoutlm import _infer_v2, _infer_v3, convert_v2, convert_v3
from .layout import Layout, register_layout

HEAD = ("classifier.weight", "classifier.bias")


def _check_tagger(sd: dict[str, torch.Tensor], prefix: str) -> None:
    """``classifier`` must be one Linear over the trunk's width (v2's sequence classifier reads three
    concatenated states, so its weight is 3× as wide)."""
    head, word = sd["classifier.weight"], sd[f"{prefix}embeddings.word_embeddings.weight"]
    if head.dim() != 2 or head.shape[1] != word.shape[1]:
        raise CheckpointError(f"classifier.weight is {list(head.shape)}: not a token classifier over the trunk's "
                              f"width {word.shape[1]} (only LayoutLM*ForTokenClassification heads are mapped)")


def _converter(convert_trunk):
    def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        trunk = convert_trunk({k: v for k, v in sd.items() if k not in HEAD})
        return {**{f"trunk.{k}": v for k, v in trunk.items()},
                **{f"tagger.{k.split('.')[1]}": sd[k] for k in HEAD if k in sd}}
    return convert


def _inferrer(prefix: str, infer_trunk):
    def infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> DocumentTaskConfig:
        _check_tagger(sd, prefix)
        trunk = infer_trunk({k: v for k, v in sd.items() if k not in HEAD}, cfg, folder)
        return DocumentTaskConfig(trunk, "entities", num_labels=sd["classifier.weight"].shape[0], link_dim=0)
    return infer


def _matcher(prefix: str):
    def match(keys: set[str], folder: Path | None) -> bool:
        if "classifier.weight" not in keys or f"{prefix}embeddings.word_embeddings.weight" not in keys:
            return False
        config = folder / "config.json" if folder is not None else None
        if config is not None and config.is_file():  # the architecture, where the folder names it
            try:
                named = json.loads(config.read_text()).get("architectures") or []
            except (ValueError, AttributeError):
                return True  # the config's own reader names what is wrong with it
            return not named or any(str(a).endswith("ForTokenClassification") for a in named)
        return True
    return match


# Above the trunk layouts (72, 71), which would match the same keys and then refuse the head.
for _version, _prefix, _convert, _infer in (("v2", "layoutlmv2.", convert_v2, _infer_v2),
                                           ("v3", "layoutlmv3.", convert_v3, _infer_v3)):
    register_layout(Layout(f"hf-layoutlm{_version}-token-classification", "document-task",
                           f"Hugging Face LayoutLM{_version}ForTokenClassification", _matcher(_prefix), priority=74,
                           convert=_converter(_convert), infer_config=_inferrer(_prefix, _infer)))
