"""OpenAI / open_clip CLIP state-dict layout (``visual.conv1``, ``transformer.resblocks``,
``in_proj_weight``, ``visual.proj`` used as ``x @ P``).

The architecture is inferred from the tensors as OpenAI's ``build_model`` does, except the
number of heads, which the tensors cannot show: it comes from an open_clip model config
(``embed_dim``/``vision_cfg``/``text_cfg``, possibly under ``model_cfg``) when one is given,
else from OpenAI's rule of 64-wide heads.
"""

from __future__ import annotations

import torch

from ..models.clip import CLIPConfig
from ..models.text_transformer import TextTransformerConfig
from ..models.vit import ViTConfig
from .files import CheckpointError
from .keymap import count_indexed, drop, rename, submodule_rules, transform
from .layout import Layout, register_layout

RULES = [
    (r"visual\.conv1\.weight", r"visual.stem.proj.weight"),
    (r"visual\.class_embedding", r"visual.cls_token"),
    (r"visual\.positional_embedding", r"visual.pos_embed"),
    (r"visual\.ln_pre\.(weight|bias)", r"visual.norm_pre.\1"),
    (r"visual\.ln_post\.(weight|bias)", r"visual.norm.\1"),
    (r"visual\.proj", r"visual.proj.weight"),
    (r"token_embedding\.weight", r"text.stem.weight"),
    (r"positional_embedding", r"text.pos_embed"),
    (r"ln_final\.(weight|bias)", r"text.norm.\1"),
    (r"text_projection", r"text.proj.weight"),
    (r"visual\.transformer\.resblocks\.(\d+)\.(.*)", r"visual.transformer.blocks.\1.\2"),
    (r"transformer\.resblocks\.(\d+)\.(.*)", r"text.transformer.blocks.\1.\2"),
]
BLOCK_RULES = [
    (r"(.*)\.attn\.in_proj_(weight|bias)", r"\1.attn.qkv.\2"),  # a packed Parameter, not a submodule
    *submodule_rules({"ln_1": "norm1", "ln_2": "norm2", "attn.out_proj": "attn.out", "mlp.c_fc": "mlp.fc1",
                      "mlp.c_proj": "mlp.fc2"}),
]
# Metadata tensors in OpenAI's TorchScript archives and open_clip's non-weight buffers.
DROP = [r"input_resolution", r"context_length", r"vocab_size", r"(visual\.)?attn_mask"]


def _match(keys: set[str], folder) -> bool:
    return "visual.class_embedding" in keys or ("token_embedding.weight" in keys and "text_projection" in keys)


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI-layout tensors → our CLIP keys and shapes."""
    if any(k.startswith("visual.layer1.") for k in sd):
        raise CheckpointError("this is an OpenAI CLIP with a ModifiedResNet image tower (visual.layer1.*); "
                              "only ViT image towers are supported")
    sd = rename(rename(drop(sd, DROP), RULES), BLOCK_RULES)
    return transform(sd, {
        r"visual\.cls_token": lambda t: t.reshape(1, 1, -1),
        r"(visual|text)\.pos_embed": lambda t: t.unsqueeze(0) if t.dim() == 2 else t,
        r"(visual|text)\.proj\.weight": lambda t: t.T.contiguous(),
    })


def infer_config(sd: dict[str, torch.Tensor], model_cfg: dict | None = None,
                 quick_gelu: bool | None = None) -> CLIPConfig:
    """CLIPConfig from OpenAI-layout tensors (+ an optional open_clip model config for the heads/act).

    ``quick_gelu`` defaults to the open_clip config's value, else True (OpenAI's weights).
    """
    cfg = (model_cfg or {}).get("model_cfg", model_cfg or {})
    vcfg, tcfg = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if quick_gelu is None:
        quick_gelu = cfg.get("quick_gelu", True if not cfg else False)
    act = "quick_gelu" if quick_gelu else "gelu"
    keys = list(sd)
    v_width, _, patch, _ = sd["visual.conv1.weight"].shape
    v_layers = count_indexed(keys, r"visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_weight")
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    embed_dim = sd["text_projection"].shape[1]
    t_width = sd["token_embedding.weight"].shape[1]
    if "head_width" in vcfg:
        v_heads = v_width // vcfg["head_width"]
    else:
        v_heads = vcfg.get("heads", v_width // 64)
    vision = ViTConfig(
        image_size=patch * grid, patch_size=patch, width=v_width, layers=v_layers, heads=v_heads,
        mlp_hidden=sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0], act=act, eps=1e-5,
        patch_bias="visual.conv1.bias" in sd, pre_norm=True, output_dim=embed_dim,
    )
    text = TextTransformerConfig(
        vocab_size=sd["token_embedding.weight"].shape[0], context_length=sd["positional_embedding"].shape[0],
        width=t_width, layers=count_indexed(keys, r"transformer\.resblocks\.(\d+)\.attn\.in_proj_weight"),
        heads=tcfg.get("heads", t_width // 64), mlp_hidden=sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        act=act, eps=1e-5, output_dim=embed_dim,
    )
    return CLIPConfig(embed_dim=embed_dim, vision=vision, text=text)


def _infer(sd, cfg: dict | None, folder) -> CLIPConfig:
    return infer_config(sd, cfg if cfg and ("model_cfg" in cfg or "embed_dim" in cfg) else None)


LAYOUT = register_layout(Layout("openai-clip", "clip", "OpenAI / open_clip CLIP", _match, priority=30,
                                convert=convert, infer_config=_infer))
