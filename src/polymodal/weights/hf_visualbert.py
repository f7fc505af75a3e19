"""Hugging Face ``VisualBertForPreTraining`` / ``VisualBertModel`` layout (``visual_bert.*``, ``cls.*``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.visualbert import VisualBertConfig
from . import hf_encoder
from .files import CheckpointError
from .hf_bert import config_from_hf
from .keymap import drop, rename
from .layout import Layout, any_key, register_layout

_E = r"(?:visual_bert\.)?embeddings\."
RULES = [
    *hf_encoder.embedding_rules(_E),
    (_E + r"visual_projection\.(weight|bias)", r"region_stem.proj.\1"),
    (_E + r"visual_token_type_embeddings\.weight", r"region_stem.token_type.weight"),
    (_E + r"visual_position_embeddings\.weight", r"region_stem.position.weight"),
    (r"(?:visual_bert\.)?pooler\.dense\.(weight|bias)", r"pooler.0.\1"),
    (r"cls\.predictions\.transform\.dense\.(weight|bias)", r"mlm.dense.\1"),
    (r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", r"mlm.norm.\1"),
    (r"cls\.predictions\.bias", r"mlm.bias"),
    (r"cls\.seq_relationship\.(weight|bias)", r"itm.\1"),
    *hf_encoder.layer_rules(r"(?:visual_bert\.)?encoder\.layer\.", "transformer.blocks."),
]
# Tied to the word embeddings / to cls.predictions.bias: stored twice by HF, kept once by us.
TIED = {"cls.predictions.decoder.weight": "embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}


def _match(keys: set[str], folder: Path | None) -> bool:
    return any_key(keys, contains="embeddings.visual_projection.")


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    prefix = "visual_bert." if any(k.startswith("visual_bert.") for k in sd) else ""
    for key, twin in TIED.items():
        twin = twin if twin.startswith("cls.") else prefix + twin
        if key in sd and twin in sd and not torch.equal(sd[key], sd[twin]):
            raise CheckpointError(f"{key} differs from {twin}; polymodal's VisualBERT ties them")
    sd = drop(sd, [r".*position_ids", *(k.replace(".", r"\.") for k in TIED)])
    return rename(hf_encoder.fuse_attention(sd), RULES)


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> VisualBertConfig:
    """From a HF ``VisualBertConfig`` dict when given, else from the tensors (64-wide heads)."""
    p = "visual_bert." if any(k.startswith("visual_bert.") for k in sd) else ""
    bert = config_from_hf({"pad_token_id": 1, **(cfg or {})}, sd, prefix=p)
    return VisualBertConfig(bert, visual_dim=sd[f"{p}embeddings.visual_projection.weight"].shape[1])


LAYOUT = register_layout(Layout("hf-visualbert", "visualbert", "Hugging Face VisualBERT", _match, priority=70,
                                convert=convert, infer_config=_infer))
