"""Hugging Face ``ViTModel`` / ``ViTForImageClassification`` layout."""

from __future__ import annotations

import torch

from ..models.vit import ViTConfig
from .hf_clip import _act
from .keymap import count_indexed, drop, fuse_qkv, rename

RULES = [
    (r"(?:vit\.)?embeddings\.cls_token", r"cls_token"),
    (r"(?:vit\.)?embeddings\.position_embeddings", r"pos_embed"),
    (r"(?:vit\.)?embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"(?:vit\.)?layernorm\.(weight|bias)", r"norm.\1"),
    (r"(?:vit\.)?pooler\.dense\.(weight|bias)", r"pooler.0.\1"),
    (r"classifier\.(weight|bias)", r"head.\1"),
    (r"(?:vit\.)?encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)", r"transformer.blocks.\1.norm1.\2"),
    (r"(?:vit\.)?encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)", r"transformer.blocks.\1.norm2.\2"),
    (r"(?:vit\.)?encoder\.layer\.(\d+)\.attention\.qkv\.(weight|bias)", r"transformer.blocks.\1.attn.qkv.\2"),
    (r"(?:vit\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"transformer.blocks.\1.attn.out.\2"),
    (r"(?:vit\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"transformer.blocks.\1.mlp.fc1.\2"),
    (r"(?:vit\.)?encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"transformer.blocks.\1.mlp.fc2.\2"),
]


def is_hf_vit(keys) -> bool:
    return any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in keys) and any(
        ".attention.attention.query." in k for k in keys)


def to_polymodal(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = fuse_qkv(drop(sd, [r".*position_ids"]), r"(.*)\.attention\.attention\.(query|key|value)\.(weight|bias)",
                  ("query", "key", "value"), "{prefix}.attention.qkv.{param}")
    return rename(sd, RULES)


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
        act=_act(hf.get("hidden_act", "gelu")), eps=hf.get("layer_norm_eps", 1e-12),
        num_classes=num_classes, tanh_pooler=f"{p}pooler.dense.weight" in sd,
    )
