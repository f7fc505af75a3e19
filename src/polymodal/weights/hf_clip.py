"""Hugging Face ``CLIPModel`` layout (``vision_model.*``, ``text_model.*``, split q/k/v)."""

from __future__ import annotations

import torch

from ..models.clip import CLIPConfig
from ..models.text_transformer import TextTransformerConfig
from ..models.vit import ViTConfig
from .files import CheckpointError
from .hf_encoder import hf_act as _act
from .keymap import drop, fuse_qkv, rename, submodule_rules, transform
from .layout import Layout, any_key, register_layout

RULES = [
    (r"vision_model\.embeddings\.patch_embedding\.(weight|bias)", r"visual.stem.proj.\1"),
    (r"vision_model\.embeddings\.class_embedding", r"visual.cls_token"),
    (r"vision_model\.embeddings\.position_embedding\.weight", r"visual.pos_embed"),
    (r"vision_model\.pre_layrnorm\.(weight|bias)", r"visual.norm_pre.\1"),
    (r"vision_model\.post_layernorm\.(weight|bias)", r"visual.norm.\1"),
    (r"visual_projection\.weight", r"visual.proj.weight"),
    (r"text_model\.embeddings\.token_embedding\.weight", r"text.stem.weight"),
    (r"text_model\.embeddings\.position_embedding\.weight", r"text.pos_embed"),
    (r"text_model\.final_layer_norm\.(weight|bias)", r"text.norm.\1"),
    (r"text_projection\.weight", r"text.proj.weight"),
    (r"vision_model\.encoder\.layers\.(\d+)\.(.*)", r"visual.transformer.blocks.\1.\2"),
    (r"text_model\.encoder\.layers\.(\d+)\.(.*)", r"text.transformer.blocks.\1.\2"),
]
BLOCK_RULES = submodule_rules({"layer_norm1": "norm1", "layer_norm2": "norm2", "self_attn.out_proj": "attn.out"})
DROP = [r".*\.position_ids"]


def _match(keys: set[str], folder) -> bool:
    return any_key(keys, prefix="vision_model.embeddings.patch_embedding") and any_key(keys, prefix="text_model.")


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = fuse_qkv(drop(sd, DROP), r"(.*)\.self_attn\.(q|k|v)_proj\.(weight|bias)", ("q", "k", "v"),
                  "{prefix}.attn.qkv.{param}")
    sd = rename(rename(sd, RULES), BLOCK_RULES)
    return transform(sd, {
        r"visual\.cls_token": lambda t: t.reshape(1, 1, -1),
        r"(visual|text)\.pos_embed": lambda t: t.unsqueeze(0),
    })


def config_from_hf(hf: dict) -> CLIPConfig:
    """CLIPConfig from a HF ``CLIPConfig.to_dict()`` (``config.json``)."""
    v, t = hf["vision_config"], hf["text_config"]
    embed = hf.get("projection_dim", 512)
    vision = ViTConfig(
        image_size=v["image_size"], patch_size=v["patch_size"], in_chans=v.get("num_channels", 3),
        width=v["hidden_size"], layers=v["num_hidden_layers"], heads=v["num_attention_heads"],
        mlp_hidden=v["intermediate_size"], act=_act(v.get("hidden_act", "quick_gelu")),
        eps=v.get("layer_norm_eps", 1e-5), patch_bias=False, pre_norm=True, output_dim=embed,
    )
    eos = t.get("eos_token_id", 2)
    text = TextTransformerConfig(
        vocab_size=t["vocab_size"], context_length=t["max_position_embeddings"], width=t["hidden_size"],
        layers=t["num_hidden_layers"], heads=t["num_attention_heads"], mlp_hidden=t["intermediate_size"],
        act=_act(t.get("hidden_act", "quick_gelu")), eps=t.get("layer_norm_eps", 1e-5), output_dim=embed,
        # HF: legacy configs with eos_token_id == 2 pool at argmax(ids), as OpenAI does.
        eot_token_id=None if eos == 2 else eos,
    )
    return CLIPConfig(embed_dim=embed, vision=vision, text=text,
                      logit_scale_init=hf.get("logit_scale_init_value", 2.6592))


def _infer(sd, cfg: dict | None, folder):
    if not cfg or "vision_config" not in cfg:
        raise CheckpointError(f"{folder}: a HF CLIPModel checkpoint needs its config.json beside it")
    return config_from_hf(cfg)


LAYOUT = register_layout(Layout("hf-clip", "clip", "Hugging Face CLIPModel", _match, priority=60, convert=convert,
                                infer_config=_infer))
