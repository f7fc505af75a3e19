"""A CLIP back into the ecosystem's own layouts: a Hugging Face ``CLIPModel`` folder that
``transformers`` loads, and open_clip's (OpenAI's) state-dict layout with its model config.

These are the inverses of the readers in :mod:`polymodal.weights.hf_clip` and
:mod:`polymodal.weights.openai_clip`: reading what they write gives back the same tensors. Only the
architecture those formats can express is exported (patch stem without bias, class-token pooling,
pre-LN, a causal CLIP text tower); anything else is an :class:`~polymodal.export.onnx.ExportError`
that says what.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ..models.clip import CLIP
from ..models.text_transformer import TextTransformerConfig
from ..fileio import atomic_write
from ..modalities.text import copy_tokenizer
from ..weights import hf_clip, openai_clip
from ..weights.keymap import invert_rules
from .onnx import ExportError


# ours → theirs: the import tables of weights/hf_clip.py and weights/openai_clip.py, inverted (one
# table per layout). Block rules apply after the block prefix is renamed; first match wins.
SAME = [(r"logit_scale", "logit_scale"), (r"(.*)\.mlp\.(fc1|fc2)\.(weight|bias)", r"\1.mlp.\2.\3")]
HF_RULES = invert_rules(hf_clip.RULES) + SAME[:1]
HF_BLOCK = invert_rules(hf_clip.BLOCK_RULES) + SAME[1:]
OPENAI_RULES = invert_rules(openai_clip.RULES) + SAME[:1]
OPENAI_BLOCK = invert_rules(openai_clip.BLOCK_RULES)


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, repl, key)
    raise ExportError(f"{key}: no place for it in the target layout")


def check_exportable(model: nn.Module) -> None:
    """Raise :class:`ExportError` unless ``model`` is a CLIP the HF / OpenAI layouts can express."""
    if not isinstance(model, CLIP):
        raise ExportError(f"a {type(model).__name__} is not a CLIP; these layouts hold CLIP models only")
    v, t = model.config.vision, model.config.text
    problems = []
    if v.stem != "patch" or v.patch_bias:
        problems.append(f"image stem {v.stem!r}{' with bias' if v.patch_bias else ''} (they have a bias-free patch conv)")
    if v.pool != "cls" or not v.pre_norm:
        problems.append("image pooling/pre-norm (they pool the class token after a pre-LN)")
    if not isinstance(t, TextTransformerConfig):
        problems.append(f"a {type(t).__name__} text tower (they hold CLIP's causal text transformer)")
    if {v.act, getattr(t, "act", v.act)} - {"gelu", "quick_gelu"} or v.act != getattr(t, "act", v.act):
        problems.append("activations other than one shared gelu / quick_gelu")
    extra = [k for k in model.state_dict() if k.endswith("proj.bias") or "bias_k" in k or "bias_v" in k]
    if extra:
        problems.append(f"parameters they have no place for: {extra[:3]}")
    if problems:
        raise ExportError("this CLIP cannot be written in the HF / open_clip layout: " + "; ".join(problems))


def hf_state_dict(model: CLIP) -> dict[str, torch.Tensor]:
    """Our CLIP state dict in HF ``CLIPModel`` keys and shapes (q/k/v split)."""
    check_exportable(model)
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().float().contiguous().cpu()
        name = _rename(key, HF_RULES)
        if ".attn.qkv." in name:  # HF splits the fused projection
            prefix, param = name.rsplit(".attn.qkv.", 1)
            for part, tensor in zip("qkv", value.chunk(3, dim=0)):
                out[f"{prefix}.self_attn.{part}_proj.{param}"] = tensor.contiguous()
            continue
        if ".layers." in name:
            name = _rename(name, HF_BLOCK)
        if name == "vision_model.embeddings.class_embedding":
            value = value.reshape(-1)
        elif name.endswith("position_embedding.weight"):
            value = value.reshape(value.shape[-2], value.shape[-1])
        out[name] = value
    return out


def hf_config(model: CLIP) -> dict:
    c = model.config
    v, t = c.vision, c.text
    text = {"vocab_size": t.vocab_size, "hidden_size": t.width, "intermediate_size": t.mlp_hidden,
            "num_hidden_layers": t.layers, "num_attention_heads": t.heads, "max_position_embeddings": t.context_length,
            "hidden_act": t.act, "layer_norm_eps": t.eps, "projection_dim": c.embed_dim,
            # HF pools at the first eos_token_id; the legacy value 2 means argmax(ids), as OpenAI does
            "eos_token_id": 2 if t.eot_token_id is None else t.eot_token_id,
            "bos_token_id": max(t.vocab_size - 2, 0), "pad_token_id": 1, "model_type": "clip_text_model"}
    vision = {"hidden_size": v.width, "intermediate_size": v.mlp_hidden, "num_hidden_layers": v.layers,
              "num_attention_heads": v.heads, "image_size": v.image_size, "patch_size": v.patch_size,
              "num_channels": v.in_chans, "hidden_act": v.act, "layer_norm_eps": v.eps, "projection_dim": c.embed_dim,
              "model_type": "clip_vision_model"}
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": c.embed_dim,
            "logit_scale_init_value": c.logit_scale_init, "text_config": text, "vision_config": vision,
            "torch_dtype": "float32"}


def save_hf_clip(model: CLIP, folder: str | Path, source: str | Path | None = None, processor=None) -> Path:
    """Write ``model`` as a HF ``CLIPModel`` folder: ``config.json``, ``model.safetensors``, the
    image processor (``preprocessor_config.json``) and the tokenizer files found in ``source``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = hf_state_dict(model)
    atomic_write(folder / "model.safetensors", lambda p: save_file(tensors, p, metadata={"format": "pt"}))
    (folder / "config.json").write_text(json.dumps(hf_config(model), indent=1))
    image = getattr(processor, "image", None)
    if image is not None:
        size = model.config.vision.image_size
        (folder / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": image.resize_size or size},
            "do_center_crop": True, "crop_size": {"height": size, "width": size}, "do_rescale": True,
            "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(image.mean),
            "image_std": list(image.std), "resample": 3, "do_convert_rgb": True}, indent=1))
    copy_tokenizer(Path(source) if source else None, folder)
    return folder


def openai_state_dict(model: CLIP) -> dict[str, torch.Tensor]:
    """Our CLIP state dict in OpenAI / open_clip keys and shapes (``x @ P`` projections)."""
    check_exportable(model)
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().float().contiguous().cpu()
        name = _rename(key, OPENAI_RULES)
        if ".resblocks." in name:
            name = _rename(name, OPENAI_BLOCK)
        if name == "visual.class_embedding":
            value = value.reshape(-1)
        elif name in ("visual.positional_embedding", "positional_embedding"):
            value = value.reshape(value.shape[-2], value.shape[-1])
        elif name in ("visual.proj", "text_projection"):
            value = value.T.contiguous()
        out[name] = value
    return out


def open_clip_config(model: CLIP, processor=None) -> dict:
    c = model.config
    v, t = c.vision, c.text
    cfg = {"embed_dim": c.embed_dim, "quick_gelu": v.act == "quick_gelu",
           "vision_cfg": {"image_size": v.image_size, "patch_size": v.patch_size, "width": v.width, "layers": v.layers,
                          "head_width": v.width // v.heads, "mlp_ratio": v.mlp_hidden / v.width},
           "text_cfg": {"context_length": t.context_length, "vocab_size": t.vocab_size, "width": t.width,
                        "heads": t.heads, "layers": t.layers, "mlp_ratio": t.mlp_hidden / t.width}}
    out = {"model_cfg": cfg}
    image = getattr(processor, "image", None)
    if image is not None:
        out["preprocess_cfg"] = {"mean": list(image.mean), "std": list(image.std), "size": v.image_size}
    return out


def save_open_clip(model: CLIP, folder: str | Path, source: str | Path | None = None, processor=None) -> Path:
    """Write ``model`` as open_clip does on the Hub: ``open_clip_model.safetensors`` (OpenAI keys),
    ``open_clip_config.json`` (``model_cfg`` + ``preprocess_cfg``) and the tokenizer files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = openai_state_dict(model)
    atomic_write(folder / "open_clip_model.safetensors", lambda p: save_file(tensors, p))
    (folder / "open_clip_config.json").write_text(json.dumps(open_clip_config(model, processor), indent=1))
    copy_tokenizer(Path(source) if source else None, folder)
    return folder
