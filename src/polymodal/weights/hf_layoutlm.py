"""Hugging Face ``LayoutLMv2Model`` and ``LayoutLMv3Model`` layouts (also under ``layoutlmv2.`` /
``layoutlmv3.`` as the task models save them).

LayoutLMv2's fast QKV (``qkv_linear`` without bias, plus ``q_bias`` and ``v_bias``) becomes our fused
``qkv`` with a zero key bias; its detectron2 backbone keys (``visual.backbone.*``) are already ours.
The backbone's ``num_batches_tracked`` counters (SyncBN-converted checkpoints) are dropped, and stored
pixel statistics are checked against the config rather than silently replaced.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..models.bert import BertConfig
from ..models.layoutlmv2 import LayoutConfig, LayoutLMv2Config
from ..models.layoutlmv3 import LayoutLMv3Config
from ..models.resnext_fpn import ResNeXtFPNConfig
from . import hf_encoder
from .files import CheckpointError
from .keymap import count_indexed, drop, rename
from .layout import Layout, any_key, register_layout

_E = r"embeddings\."
_COMMON = [
    *hf_encoder.embedding_rules(_E),
    *[(_E + rf"{a}_position_embeddings\.weight", rf"box.{a}.weight") for a in "xyhw"],
    (r"encoder\.rel_pos_bias\.weight", "bias.rel_1d.table.weight"),
    (r"encoder\.rel_pos_x_bias\.weight", "bias.rel_x.table.weight"),
    (r"encoder\.rel_pos_y_bias\.weight", "bias.rel_y.table.weight"),
    *hf_encoder.layer_rules(r"encoder\.layer\.", "transformer.blocks."),
]
V2_RULES = [
    *_COMMON,
    (r"visual_proj\.(weight|bias)", r"visual_proj.\1"),
    (r"visual_segment_embedding", "visual_segment"),
    (r"visual_LayerNorm\.(weight|bias)", r"visual_norm.\1"),
    (r"pooler\.dense\.(weight|bias)", r"pooler.0.\1"),
]
V3_RULES = [
    *_COMMON,
    (r"patch_embed\.proj\.(weight|bias)", r"patch.proj.\1"),
    (r"norm\.(weight|bias)", r"patch_norm.\1"),
    (r"LayerNorm\.(weight|bias)", r"joint_norm.\1"),
]


def _strip(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in sd.items()}


def _fuse_fast_qkv(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``attention.self.qkv_linear.weight`` + ``q_bias`` + ``v_bias`` → ``attention.qkv.{weight,bias}``."""
    out = dict(sd)
    for key in [k for k in sd if k.endswith(".attention.self.qkv_linear.weight")]:
        base = key.removesuffix(".self.qkv_linear.weight")
        q, v = f"{base}.self.q_bias", f"{base}.self.v_bias"
        if q not in sd or v not in sd:
            raise CheckpointError(f"{key} has no {q} / {v} beside it")
        qb, vb = out.pop(q).reshape(-1), out.pop(v).reshape(-1)
        out[f"{base}.qkv.weight"] = out.pop(key)
        out[f"{base}.qkv.bias"] = torch.cat([qb, torch.zeros_like(qb), vb])
    return out


def _check_pixel_stats(sd: dict[str, torch.Tensor]) -> None:
    defaults = ResNeXtFPNConfig()
    for name, want in (("visual.pixel_mean", defaults.pixel_mean), ("visual.pixel_std", defaults.pixel_std)):
        if name in sd and not torch.allclose(sd[name].reshape(-1).float(), torch.tensor(want), atol=1e-3):
            raise CheckpointError(f"{name} is {sd[name].reshape(-1).tolist()}; polymodal's LayoutLMv2 "
                                  f"normalises with {list(want)}")


def convert_v2(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = _strip(sd, "layoutlmv2.")
    _check_pixel_stats(sd)
    sd = drop(sd, [r".*position_ids", r"visual\.pixel_(mean|std)", r"visual\.backbone\..*\.num_batches_tracked"])
    return rename(hf_encoder.fuse_attention(_fuse_fast_qkv(sd)), V2_RULES)


def convert_v3(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = drop(_strip(sd, "layoutlmv3."), [r".*position_ids", r"visual_bbox"])
    return rename(hf_encoder.fuse_attention(sd), V3_RULES)


def _bert(sd: dict[str, torch.Tensor], hf: dict, defaults: BertConfig) -> BertConfig:
    word = sd["embeddings.word_embeddings.weight"]
    width = word.shape[1]
    table = sd.get("encoder.rel_pos_bias.weight", sd.get("encoder.rel_pos_x_bias.weight"))
    heads = table.shape[0] if table is not None else hf.get("num_attention_heads", width // 64)  # a bias row per head
    return BertConfig(
        vocab_size=word.shape[0], width=width,
        layers=count_indexed(sd, r"encoder\.layer\.(\d+)\.attention\.output\.dense\.weight"),
        heads=heads, mlp_hidden=sd["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_positions=sd["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=sd["embeddings.token_type_embeddings.weight"].shape[0],
        act=hf_encoder.hf_act(hf.get("hidden_act", "gelu")), eps=hf.get("layer_norm_eps", defaults.eps),
        pad_token_id=hf.get("pad_token_id", defaults.pad_token_id), tanh_pooler=False)


def _layout(sd: dict[str, torch.Tensor], hf: dict) -> LayoutConfig:
    return LayoutConfig(
        coordinate_size=sd["embeddings.x_position_embeddings.weight"].shape[1],
        shape_size=sd["embeddings.h_position_embeddings.weight"].shape[1],
        max_2d_positions=sd["embeddings.x_position_embeddings.weight"].shape[0],
        relative_1d="encoder.rel_pos_bias.weight" in sd, relative_2d="encoder.rel_pos_x_bias.weight" in sd,
        rel_pos_bins=hf.get("rel_pos_bins", 32), max_rel_pos=hf.get("max_rel_pos", 128),
        rel_2d_pos_bins=hf.get("rel_2d_pos_bins", 64), max_rel_2d_pos=hf.get("max_rel_2d_pos", 256))


def _backbone(sd: dict[str, torch.Tensor]) -> ResNeXtFPNConfig:
    """The ResNeXt-FPN's geometry from its tensors; without them (the fixture's stubbed backbone) the
    reference's ResNeXt-101 32×8d with as many FPN channels as ``visual_proj`` takes."""
    p = "visual.backbone."
    if f"{p}fpn_lateral2.weight" not in sd:
        proj = sd.get("visual_proj.weight")
        return ResNeXtFPNConfig() if proj is None else ResNeXtFPNConfig(fpn_channels=proj.shape[1])
    stages = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(rf"{re.escape(p)}bottom_up\.res(\d)\..*", k))})
    depths = tuple(count_indexed(sd, rf"{re.escape(p)}bottom_up\.res{s}\.(\d+)\.conv1\.weight") for s in stages)
    conv2 = sd[f"{p}bottom_up.res2.0.conv2.weight"]  # [width, width / groups, 3, 3]
    groups = conv2.shape[0] // conv2.shape[1]
    return ResNeXtFPNConfig(depths=depths, groups=groups, width_per_group=conv2.shape[0] // groups,
                            stem_channels=sd[f"{p}bottom_up.stem.conv1.weight"].shape[0],
                            res2_channels=sd[f"{p}bottom_up.res2.0.conv3.weight"].shape[0],
                            fpn_channels=sd[f"{p}fpn_lateral2.weight"].shape[0])


def _infer_v2(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> LayoutLMv2Config:
    sd, hf = _strip(sd, "layoutlmv2."), cfg or {}
    bert = _bert(sd, hf, BertConfig())
    bert.tanh_pooler = "pooler.dense.weight" in sd
    pool = tuple(hf.get("image_feature_pool_shape", [7, 7])[:2])
    return LayoutLMv2Config(bert, _layout(sd, hf), _backbone(sd), pool_shape=pool,
                            visual_segment="visual_segment_embedding" in sd, visual_tokens="visual_proj.weight" in sd)


def _infer_v3(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> LayoutLMv3Config:
    sd, hf = _strip(sd, "layoutlmv3."), cfg or {}
    bert = _bert(sd, hf, LayoutLMv3Config().bert)
    visual = "patch_embed.proj.weight" in sd
    patch = sd["patch_embed.proj.weight"].shape[-1] if visual else hf.get("patch_size", 16)
    grid = round((sd["pos_embed"].shape[1] - 1) ** 0.5) if visual else hf.get("input_size", 224) // patch
    return LayoutLMv3Config(bert, _layout(sd, hf), image_size=grid * patch, patch_size=patch, visual_tokens=visual)


def _is_v2(keys: set[str], folder: Path | None) -> bool:
    return any_key(keys, suffix="visual_segment_embedding") or any_key(keys, contains=".attention.self.qkv_linear.") \
        or any_key(keys, prefix=("visual_proj.", "layoutlmv2.visual_proj."))


def _is_v3(keys: set[str], folder: Path | None) -> bool:
    return any_key(keys, contains="embeddings.x_position_embeddings.") and any_key(keys, contains="rel_pos_x_bias.")


# Both contain HF-BERT-style layers (priority 10) and LayoutLM v1's box tables (70): tried before them.
V2 = register_layout(Layout("hf-layoutlmv2", "layoutlmv2", "Hugging Face LayoutLMv2", _is_v2, priority=72,
                            convert=convert_v2, infer_config=_infer_v2))
V3 = register_layout(Layout("hf-layoutlmv3", "layoutlmv3", "Hugging Face LayoutLMv3", _is_v3, priority=71,
                            convert=convert_v3, infer_config=_infer_v3))
