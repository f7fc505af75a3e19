"""Hugging Face ``BertModel`` layout (also sentence-transformers folders such as all-MiniLM-L6-v2)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..models.bert import BertConfig
from . import hf_encoder
from .keymap import count_indexed, drop, rename
from .layout import Layout, any_key, register_layout

_P = r"(?:bert\.)?"
RULES = [
    *hf_encoder.embedding_rules(_P + r"embeddings\."),
    (_P + r"pooler\.dense\.(weight|bias)", r"pooler.0.\1"),
    *hf_encoder.layer_rules(_P + r"encoder\.layer\.", "transformer.blocks."),
]


def _match(keys: set[str], folder: Path | None) -> bool:
    return any_key(keys, suffix="embeddings.word_embeddings.weight") and any_key(keys, contains=".attention.self.query.")


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return rename(hf_encoder.fuse_attention(drop(sd, [r".*position_ids"])), RULES)


def sentence_pooling(folder: Path) -> str | None:
    """'mean' or 'cls' from a sentence-transformers ``1_Pooling/config.json``, if the folder has one."""
    cfg = folder / "1_Pooling" / "config.json"
    if not cfg.is_file():
        return None
    pooling = json.loads(cfg.read_text())
    if pooling.get("pooling_mode_mean_tokens"):
        return "mean"
    if pooling.get("pooling_mode_cls_token"):
        return "cls"
    raise ValueError(f"{cfg}: only mean or CLS sentence pooling is supported")


def config_from_hf(hf: dict | None, sd: dict[str, torch.Tensor], pooling: str | None = None,
                   prefix: str | None = None) -> BertConfig:
    """BertConfig from a HF ``BertConfig`` dict, or inferred from the tensors (64-wide heads), for
    the BERT whose keys start with ``prefix`` (default: ``bert.`` if present, else none)."""
    p = prefix if prefix is not None else ("bert." if any(k.startswith("bert.") for k in sd) else "")
    hf = hf or {}
    word = sd[f"{p}embeddings.word_embeddings.weight"]
    width = word.shape[1]
    return BertConfig(
        vocab_size=word.shape[0], width=width,
        layers=count_indexed(sd, rf"{p}encoder\.layer\.(\d+)\.attention\.output\.dense\.weight"),
        heads=hf.get("num_attention_heads", width // 64),
        mlp_hidden=sd[f"{p}encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_positions=sd[f"{p}embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=sd[f"{p}embeddings.token_type_embeddings.weight"].shape[0],
        act=hf_encoder.hf_act(hf.get("hidden_act", "gelu")), eps=hf.get("layer_norm_eps", 1e-12),
        pad_token_id=hf.get("pad_token_id", 0) or 0, pooling=pooling or "cls",
        tanh_pooler=f"{p}pooler.dense.weight" in sd,
    )


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> BertConfig:
    return config_from_hf(cfg, sd, sentence_pooling(folder) if folder is not None else None)


# The least specific layout: VisualBERT, LayoutLM, ViLBERT and VideoCLIP all contain BERT layers.
LAYOUT = register_layout(Layout("hf-bert", "bert", "Hugging Face BertModel", _match, priority=10,
                                convert=convert, infer_config=_infer))
