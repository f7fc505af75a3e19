"""Named presets and the one way to build a model: :func:`polymodal.create`."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from torch import nn

from .models.bert import BertConfig, BertTextTower
from .models.clip import CLIP, CLIPConfig
from .models.imagebind import ImageBind, ImageBindConfig, TowerConfig, with_clip_towers
from .models.text_transformer import TextTransformerConfig
from .models.vit import ViTConfig, VisionTransformer

Config = ViTConfig | CLIPConfig | BertConfig | ImageBindConfig

FAMILIES: dict[type, tuple[str, Callable[[Config], nn.Module]]] = {
    ViTConfig: ("vit", VisionTransformer),
    CLIPConfig: ("clip", CLIP.from_config),
    BertConfig: ("bert", BertTextTower),
    ImageBindConfig: ("imagebind", ImageBind.from_config),
}
CONFIG_BY_FAMILY = {family: cls for cls, (family, _) in FAMILIES.items()}


def _vit(width, layers, heads, patch, image=224, **kw) -> ViTConfig:
    return ViTConfig(image_size=image, patch_size=patch, width=width, layers=layers, heads=heads,
                     mlp_hidden=4 * width, **kw)


def _openai_clip(embed, v_width, v_layers, patch, t_width, t_heads, image=224) -> CLIPConfig:
    # OpenAI's released CLIP weights were trained with QuickGELU and eps 1e-5.
    vision = _vit(v_width, v_layers, v_width // 64, patch, image, act="quick_gelu", eps=1e-5,
                  patch_bias=False, pre_norm=True, output_dim=embed)
    text = TextTransformerConfig(width=t_width, heads=t_heads, layers=12, mlp_hidden=4 * t_width,
                                 act="quick_gelu", output_dim=embed)
    return CLIPConfig(embed_dim=embed, vision=vision, text=text)


def _clip_tiny() -> CLIPConfig:
    vision = ViTConfig(image_size=32, patch_size=8, width=64, layers=2, heads=2, mlp_hidden=256, eps=1e-5,
                       patch_bias=False, pre_norm=True, output_dim=32)
    text = TextTransformerConfig(vocab_size=1000, context_length=16, width=64, layers=2, heads=2,
                                 mlp_hidden=256, output_dim=32)
    return CLIPConfig(embed_dim=32, vision=vision, text=text)


def _minilm(**kw) -> BertConfig:
    return BertConfig(width=384, layers=6, heads=12, mlp_hidden=1536, pooling="mean", **kw)


def _imagebind_tiny() -> ImageBindConfig:
    """The sizes of ../shared/fixtures/imagebind (official geometry, tiny towers, vocabulary 128)."""
    return ImageBindConfig(
        embed_dim=16, vision=TowerConfig(24, 2, 2),
        text=TextTransformerConfig(vocab_size=128, context_length=77, width=32, layers=2, heads=2, mlp_hidden=128,
                                   eps=1e-6, output_dim=16),
        audio=TowerConfig(16, 2, 2, 0.1), depth=TowerConfig(16, 1, 2), thermal=TowerConfig(16, 1, 2),
        imu=TowerConfig(16, 2, 2, 0.7))


def _imagebind_world() -> ImageBindConfig:
    """ImageBind on the world at 64 px: the clip-world-minilm towers (image, frozen MiniLM text)
    plus small audio (1 s), depth, thermal and IMU (8-frame clip, 100 samples) encoders."""
    sensors = ImageBindConfig(
        audio=TowerConfig(128, 3, 4), depth=TowerConfig(128, 3, 4), thermal=TowerConfig(128, 3, 4),
        imu=TowerConfig(128, 3, 4, drop_path=0.1), audio_frames=98, map_size=64, depth_patch=8, thermal_patch=8,
        imu_length=100, imu_patch=10, imu_head_dropout=0.0,
        # One temperature, 0.05, for every sensor: with 128-sample batches the official 0.2 (depth,
        # IMU) leaves the InfoNCE too soft to learn in a few hundred steps.
        scales={"audio": 20.0, "depth": 20.0, "thermal": 20.0, "imu": 20.0})
    return with_clip_towers(sensors, PRESETS["clip-world-minilm"]())


PRESETS: dict[str, Callable[[], Config]] = {
    "vit-b-16": lambda: _vit(768, 12, 12, 16, num_classes=1000),
    "vit-b-32": lambda: _vit(768, 12, 12, 32, num_classes=1000),
    "vit-l-14": lambda: _vit(1024, 24, 16, 14, num_classes=1000),
    "vit-l-16": lambda: _vit(1024, 24, 16, 16, num_classes=1000),
    "vit-h-14": lambda: _vit(1280, 32, 16, 14, num_classes=1000),
    "vit-tiny": lambda: _vit(64, 2, 2, 8, image=32, num_classes=10),
    "clip-vit-b-32": lambda: _openai_clip(512, 768, 12, 32, 512, 8),
    "clip-vit-b-16": lambda: _openai_clip(512, 768, 12, 16, 512, 8),
    "clip-vit-l-14": lambda: _openai_clip(768, 1024, 24, 14, 768, 12),
    "clip-vit-l-14-336": lambda: _openai_clip(768, 1024, 24, 14, 768, 12, image=336),
    "clip-tiny": _clip_tiny,
    "bert-base": lambda: BertConfig(),
    "minilm-l6": _minilm,
    "bert-tiny": lambda: BertConfig(vocab_size=1000, width=64, layers=2, heads=2, mlp_hidden=256, max_positions=64),
    # The world recipe (configs/clip-world-tiny.yaml): 64 px, conv stem to 8 × 8 tokens, small towers.
    "clip-world-tiny": lambda: CLIPConfig(
        embed_dim=128,
        vision=ViTConfig(image_size=64, patch_size=8, width=192, layers=4, heads=3, mlp_hidden=768, eps=1e-5,
                         pre_norm=True, patch_bias=False, output_dim=128, stem="conv", stem_channels=(32, 64, 128)),
        text=TextTransformerConfig(vocab_size=1024, context_length=64, width=192, layers=4, heads=3,
                                   mlp_hidden=768, output_dim=128),
    ),
    # The world recipe's image tower (conv stem: see docs/world-recipe.md) with the packaged
    # all-MiniLM-L6-v2 as text tower.
    "clip-world-minilm": lambda: CLIPConfig(
        embed_dim=128,
        vision=ViTConfig(image_size=64, patch_size=8, width=192, layers=4, heads=3, mlp_hidden=768, eps=1e-5,
                         pre_norm=True, patch_bias=False, output_dim=128, stem="conv", stem_channels=(32, 64, 128)),
        text=_minilm(tanh_pooler=True, output_dim=128),
        text_type="bert",
    ),
    # CLIP with the packaged all-MiniLM-L6-v2 text tower and a tiny ViT, for the demo and tests.
    "clip-minilm-tiny": lambda: CLIPConfig(
        embed_dim=64,
        vision=ViTConfig(image_size=64, patch_size=16, width=128, layers=2, heads=2, mlp_hidden=512,
                         pre_norm=True, patch_bias=False, output_dim=64),
        text=_minilm(tanh_pooler=True, output_dim=64),
        text_type="bert",
        logit_scale_init=math.log(1 / 0.07),
    ),
    "imagebind-huge": ImageBindConfig,
    "imagebind-tiny": _imagebind_tiny,
    "imagebind-world": _imagebind_world,
}


def preset(name: str) -> Config:
    """The config of a named preset (a fresh copy)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None


def family_of(config: Config) -> str:
    try:
        return FAMILIES[type(config)][0]
    except KeyError:
        raise TypeError(f"not a model config: {type(config).__name__}") from None


def build(config: Config) -> nn.Module:
    """A randomly initialised model for ``config``."""
    family_of(config)
    return FAMILIES[type(config)][1](config)


def config_to_dict(config: Config) -> dict:
    return {"family": family_of(config), "config": dataclasses.asdict(config)}


def config_from_dict(d: dict) -> Config:
    try:
        cls = CONFIG_BY_FAMILY[d["family"]]
    except KeyError:
        raise ValueError(f"config has unknown family {d.get('family')!r}; known: {sorted(CONFIG_BY_FAMILY)}") from None
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d["config"]) - fields
    if unknown:
        raise ValueError(f"unknown {d['family']} config keys: {sorted(unknown)}")
    return cls(**d["config"])


def create(name_or_config: str | Config, weights: str | None = None, *, strict: bool = True) -> nn.Module:
    """Build a model from a preset name or a config, optionally loading ``weights``.

    ``weights`` is a checkpoint file or folder in any supported layout (see
    :func:`polymodal.weights.load_checkpoint`); its tensors must fit the preset exactly unless
    ``strict=False`` (then the missing/unexpected keys are listed in a warning).
    """
    config = preset(name_or_config) if isinstance(name_or_config, str) else name_or_config
    model = build(config)
    if weights is not None:
        from .weights import load_weights_into

        load_weights_into(model, weights, strict=strict)
        model.eval()
    return model
