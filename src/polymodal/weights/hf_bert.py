"""Hugging Face ``BertModel`` layout (also sentence-transformers folders such as all-MiniLM-L6-v2)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..models.bert import BertConfig
from .hf_clip import _act
from .keymap import count_indexed, drop, fuse_qkv, rename

_L = r"(?:bert\.)?encoder\.layer\.(\d+)\."
RULES = [
    (r"(?:bert\.)?embeddings\.word_embeddings\.weight", r"embed.word.weight"),
    (r"(?:bert\.)?embeddings\.position_embeddings\.weight", r"embed.position.weight"),
    (r"(?:bert\.)?embeddings\.token_type_embeddings\.weight", r"embed.token_type.weight"),
    (r"(?:bert\.)?embeddings\.LayerNorm\.(weight|bias)", r"embed.norm.\1"),
    (r"(?:bert\.)?pooler\.dense\.(weight|bias)", r"pooler.0.\1"),
    (_L + r"attention\.qkv\.(weight|bias)", r"transformer.blocks.\1.attn.qkv.\2"),
    (_L + r"attention\.output\.dense\.(weight|bias)", r"transformer.blocks.\1.attn.out.\2"),
    (_L + r"attention\.output\.LayerNorm\.(weight|bias)", r"transformer.blocks.\1.norm1.\2"),
    (_L + r"intermediate\.dense\.(weight|bias)", r"transformer.blocks.\1.mlp.fc1.\2"),
    (_L + r"output\.dense\.(weight|bias)", r"transformer.blocks.\1.mlp.fc2.\2"),
    (_L + r"output\.LayerNorm\.(weight|bias)", r"transformer.blocks.\1.norm2.\2"),
]


def is_hf_bert(keys) -> bool:
    return any(k.endswith("embeddings.word_embeddings.weight") for k in keys) and any(
        ".attention.self.query." in k for k in keys)


def to_polymodal(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = fuse_qkv(drop(sd, [r".*position_ids"]), r"(.*)\.attention\.self\.(query|key|value)\.(weight|bias)",
                  ("query", "key", "value"), "{prefix}.attention.qkv.{param}")
    return rename(sd, RULES)


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


def config_from_hf(hf: dict | None, sd: dict[str, torch.Tensor], pooling: str | None = None) -> BertConfig:
    """BertConfig from a HF ``BertConfig`` dict, or inferred from the tensors (64-wide heads)."""
    p = "bert." if any(k.startswith("bert.") for k in sd) else ""
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
        act=_act(hf.get("hidden_act", "gelu")), eps=hf.get("layer_norm_eps", 1e-12),
        pad_token_id=hf.get("pad_token_id", 0) or 0, pooling=pooling or "cls",
        tanh_pooler=f"{p}pooler.dense.weight" in sd,
    )
