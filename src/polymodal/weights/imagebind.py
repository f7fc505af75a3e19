"""The official ImageBind state-dict layout (``imagebind_huge.pth``): ``modality_preprocessors.*``,
``modality_trunks.*``, ``modality_heads.*``, ``modality_postprocessors.*``.

Architecture comes from the tensors (widths, depths, patch sizes, token counts, fixed scales);
the number of heads and the audio stride, which tensors cannot show, come from a config dict
holding the official constructor's arguments (``constructor_args`` or top level, e.g.
``audio_num_heads``) or, without one, from ``imagebind_huge``'s values.
"""

from __future__ import annotations

import math
import re

import torch

from ..models.imagebind import MODALITIES, ImageBindConfig, TowerConfig
from ..models.text_transformer import TextTransformerConfig
from .files import CheckpointError
from .keymap import count_indexed, drop, rename
from .layout import Layout, any_key, register_layout

STEM = {"image": "rgbt_stem", "audio": "rgbt_stem", "depth": "depth_stem", "thermal": "rgbt_stem", "imu": "imu_stem"}
RULES = [
    (r"modality_preprocessors\.vision\.rgbt_stem\.proj\.1\.weight", r"encoders.vision.stem.proj.weight"),
    (r"modality_preprocessors\.(\w+)\.(?:rgbt|depth|imu)_stem\.proj\.weight", r"encoders.\1.stem.proj.weight"),
    (r"modality_preprocessors\.(\w+)\.(?:rgbt|depth|imu)_stem\.norm_layer\.(weight|bias)", r"encoders.\1.stem.norm.\2"),
    (r"modality_preprocessors\.(\w+)\.cls_token", r"encoders.\1.cls_token"),
    (r"modality_preprocessors\.(\w+)\.(?:pos_embedding_helper\.)?pos_embed", r"encoders.\1.pos_embed"),
    (r"modality_preprocessors\.text\.token_embedding\.weight", r"encoders.text.stem.weight"),
    (r"modality_trunks\.vision\.pre_transformer_layer\.0\.(weight|bias)", r"encoders.vision.norm_pre.\1"),
    (r"modality_trunks\.(\w+)\.blocks\.(\d+)\.norm_1\.(weight|bias)", r"encoders.\1.transformer.blocks.\2.norm1.\3"),
    (r"modality_trunks\.(\w+)\.blocks\.(\d+)\.norm_2\.(weight|bias)", r"encoders.\1.transformer.blocks.\2.norm2.\3"),
    (r"modality_trunks\.(\w+)\.blocks\.(\d+)\.attn\.in_proj_(weight|bias)", r"encoders.\1.transformer.blocks.\2.attn.qkv.\3"),
    (r"modality_trunks\.(\w+)\.blocks\.(\d+)\.attn\.out_proj\.(weight|bias)", r"encoders.\1.transformer.blocks.\2.attn.out.\3"),
    (r"modality_trunks\.(\w+)\.blocks\.(\d+)\.attn\.(bias_k|bias_v)", r"encoders.\1.transformer.blocks.\2.attn.\3"),
    (r"modality_trunks\.(\w+)\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"encoders.\1.transformer.blocks.\2.mlp.\3.\4"),
    (r"modality_heads\.text\.proj\.0\.(weight|bias)", r"encoders.text.norm.\1"),
    (r"modality_heads\.text\.proj\.1\.weight", r"encoders.text.proj.weight"),
    (r"modality_heads\.(\w+)\.0\.(weight|bias)", r"encoders.\1.norm.\2"),
    (r"modality_heads\.(\w+)\.[23]\.weight", r"encoders.\1.proj.weight"),
    (r"modality_postprocessors\.(\w+)\.1\.log_logit_scale", r"postprocessors.\1.log_logit_scale"),
]
OFFICIAL = {"image": "vision"}  # our modality name → the official one, where they differ
HUGE_HEADS = {"image": 16, "text": 16, "audio": 12, "depth": 8, "thermal": 12, "imu": 8}
HUGE_DROP_PATH = {"audio": 0.1, "imu": 0.7}


def _match(keys: set[str], folder) -> bool:
    return any_key(keys, prefix=("modality_preprocessors.", "modality_trunks."))


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official tensors → our ``ImageBind`` keys (shapes are already ours)."""
    mask = sd.get("modality_preprocessors.text.mask")
    if mask is not None:  # we build the causal mask ourselves; refuse a checkpoint whose mask differs
        n = mask.shape[-1]
        causal = torch.full((n, n), float("-inf")).triu(1)
        if mask.shape != (n, n) or not torch.equal(mask.float(), causal):
            raise CheckpointError("modality_preprocessors.text.mask is not the causal mask this model applies")
    sd = rename(drop(sd, [r"modality_preprocessors\.text\.mask"]), RULES)
    # The official name of the image modality is "vision"; ours is "image", as everywhere else.
    return {re.sub(r"^(encoders|postprocessors)\.vision\.", r"\1.image.", k): v for k, v in sd.items()}


def _args(config_dict: dict | None) -> dict:
    cfg = config_dict or {}
    return cfg.get("constructor_args", cfg)


def infer_config(sd: dict[str, torch.Tensor], config_dict: dict | None = None) -> ImageBindConfig:
    """An :class:`ImageBindConfig` for official-layout tensors."""
    args = _args(config_dict)
    present = [m for m in MODALITIES if any(k.startswith(f"modality_trunks.{OFFICIAL.get(m, m)}.") for k in sd)]
    if "image" not in present:
        raise CheckpointError("an ImageBind checkpoint without a vision trunk cannot be bound to anything")
    pre, keys = "modality_preprocessors", list(sd)

    def heads(m: str, width: int) -> int:
        default = HUGE_HEADS[m] if width == getattr(ImageBindConfig(), m).width else max(1, width // 64)
        return int(args.get(f"{OFFICIAL.get(m, m)}_num_heads", default))

    def tower(m: str) -> TowerConfig | None:
        if m not in present:
            return None
        o = OFFICIAL.get(m, m)
        width = sd[f"{pre}.{o}.cls_token"].shape[-1]
        layers = count_indexed(keys, rf"modality_trunks\.{o}\.blocks\.(\d+)\.attn\.in_proj_weight")
        return TowerConfig(width, layers, heads(m, width), float(args.get(f"{o}_drop_path", HUGE_DROP_PATH.get(m, 0.0))))

    vision_w = sd[f"{pre}.vision.rgbt_stem.proj.1.weight"]
    frames, patch = vision_w.shape[2], vision_w.shape[-1]
    grid = math.isqrt(sd[f"{pre}.vision.pos_embedding_helper.pos_embed"].shape[1] - 1)
    embed_dim = sd["modality_heads.vision.2.weight"].shape[0]
    kw: dict = dict(embed_dim=embed_dim, image_size=grid * patch, image_patch=patch, video_frames=frames)
    for m in ("image", "audio", "depth", "thermal", "imu"):
        kw[m] = tower(m)
    if "text" in present:
        emb = sd[f"{pre}.text.token_embedding.weight"]
        kw["text"] = TextTransformerConfig(
            vocab_size=emb.shape[0], context_length=sd[f"{pre}.text.pos_embed"].shape[1], width=emb.shape[1],
            layers=count_indexed(keys, r"modality_trunks\.text\.blocks\.(\d+)\.attn\.in_proj_weight"),
            heads=heads("text", emb.shape[1]), mlp_hidden=sd["modality_trunks.text.blocks.0.mlp.fc1.weight"].shape[0],
            eps=1e-6, output_dim=embed_dim)
        log_scale = sd.get("modality_postprocessors.text.1.log_logit_scale")
        if log_scale is not None:
            kw["text_scale_init"] = float(log_scale)
    else:
        kw["text"] = None
    if "audio" in present:
        kw["audio_patch"] = sd[f"{pre}.audio.rgbt_stem.proj.weight"].shape[-1]
        kw["audio_stride"] = int(args.get("audio_stride", 10))
        kw["audio_mel_bins"] = int(args.get("audio_num_mel_bins", 128))
        kw["audio_frames"] = int(args.get("audio_target_len", 204))
    for m in ("depth", "thermal"):
        if m in present:
            p = sd[f"{pre}.{m}.{STEM[m]}.proj.weight"].shape[-1]
            kw[f"{m}_patch"] = p
            kw["map_size"] = math.isqrt(sd[f"{pre}.{m}.pos_embedding_helper.pos_embed"].shape[1] - 1) * p
    if "imu" in present:
        p = sd[f"{pre}.imu.imu_stem.proj.weight"].shape[1] // 6
        kw["imu_patch"], kw["imu_length"] = p, (sd[f"{pre}.imu.pos_embed"].shape[1] - 1) * p
    kw["scales"] = {m: round(math.exp(float(sd[k])), 6) for m in ("audio", "depth", "thermal", "imu")
                    if (k := f"modality_postprocessors.{m}.1.log_logit_scale") in sd}
    return ImageBindConfig(**kw)


LAYOUT = register_layout(Layout("imagebind", "imagebind", "official ImageBind", _match, priority=80, convert=convert,
                                infer_config=lambda sd, cfg, folder: infer_config(sd, cfg)))
