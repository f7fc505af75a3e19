"""Hugging Face ``ViTModel`` / ``ViTForImageClassification`` layout."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.vit import ViTConfig
from . import hf_encoder
from .keymap import count_indexed, drop, rename
from .layout import Layout, any_key, register_layout

_P = r"(?:vit\.)?"
RULES = [
    (_P + r"embeddings\.cls_token", r"cls_token"),
    (_P + r"embeddings\.position_embeddings", r"pos_embed"),
    (_P + r"embeddings\.patch_embeddings\.projection\.(weight|bias)", r"stem.proj.\1"),
    (_P + r"layernorm\.(weight|bias)", r"norm.\1"),
    (_P + r"pooler\.dense\.(weight|bias)", r"pooler.0.\1"),
    (r"classifier\.(weight|bias)", r"head.\1"),
    *hf_encoder.layer_rules(_P + r"encoder\.layer\.", "transformer.blocks.", vit=True),
]


def _match(keys: set[str], folder: Path | None) -> bool:
    return (any_key(keys, suffix="embeddings.patch_embeddings.projection.weight")
            and any_key(keys, contains=".attention.attention.query."))


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return rename(hf_encoder.fuse_attention(drop(sd, [r".*position_ids"]), vit=True), RULES)


def config_from_hf(hf: dict | None, sd: dict[str, torch.Tensor]) -> ViTConfig:
    """ViTConfig from a HF ``ViTConfig`` dict, or (``hf=None``) inferred from the tensors with
    64-wide heads."""
    p = "vit." if any(k.startswith("vit.") for k in sd) else ""
    conv = sd[f"{p}embeddings.patch_embeddings.projection.weight"]
    width, in_chans, patch, _ = conv.shape
    grid = round((sd[f"{p}embeddings.position_embeddings"].shape[1] - 1) ** 0.5)
    hf = hf or {}
    num_classes = sd["classifier.weight"].shape[0] if "classifier.weight" in sd else 0
    return ViTConfig(
        image_size=hf.get("image_size", grid * patch), patch_size=patch, in_chans=in_chans, width=width,
        layers=count_indexed(sd, rf"{p}encoder\.layer\.(\d+)\.layernorm_before\.weight"),
        heads=hf.get("num_attention_heads", width // 64),
        mlp_hidden=sd[f"{p}encoder.layer.0.intermediate.dense.weight"].shape[0],
        act=hf_encoder.hf_act(hf.get("hidden_act", "gelu")), eps=hf.get("layer_norm_eps", 1e-12),
        num_classes=num_classes, tanh_pooler=f"{p}pooler.dense.weight" in sd,
    )


LAYOUT = register_layout(Layout("hf-vit", "vit", "Hugging Face ViTModel", _match, priority=50, convert=convert,
                                infer_config=lambda sd, cfg, folder: config_from_hf(cfg, sd)))
