"""CLIP (Radford et al.): an image tower and a text tower projected into one space, compared
by cosine similarity scaled by a learned temperature.

Following TorchMultimodal, ``CLIP`` takes already-built towers; ``CLIP.from_config`` builds
them from a ``CLIPConfig``. The text tower is whatever family its config belongs to: CLIP's causal
transformer or a BERT tower (e.g. the packaged all-MiniLM-L6-v2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import build, register_family, register_preset
from .bert import BertConfig, minilm_config
from .text_transformer import TextTransformerConfig
from .vit import ViTConfig, vit_config


@dataclass
class CLIPConfig:
    embed_dim: int = 512
    vision: ViTConfig = field(default_factory=ViTConfig)
    text: TextTransformerConfig | BertConfig = field(default_factory=TextTransformerConfig)
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = 100.0

    LEGACY_KEYS = ("text_type",)  # written by version 1 configs; the text config's own type says it now


class CLIP(nn.Module):
    """Two towers + a learnable logit scale (stored as its log, exp clamped at ``logit_scale_max``)."""

    def __init__(self, visual: nn.Module, text: nn.Module, *, logit_scale_init: float = math.log(1 / 0.07),
                 logit_scale_max: float = 100.0, config: CLIPConfig | None = None):
        super().__init__()
        self.config = config
        self.visual = visual
        self.text = text
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.logit_scale_max = logit_scale_max

    @classmethod
    def from_config(cls, config: CLIPConfig) -> "CLIP":
        return cls(build(config.vision), build(config.text), logit_scale_init=config.logit_scale_init,
                   logit_scale_max=config.logit_scale_max, config=config)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Images [B, 3, H, W] (preprocessed) → [B, embed_dim]."""
        x = self.visual(images)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    normalize: bool = False) -> torch.Tensor:
        """Token ids [B, L] (+ attention mask [B, L], needed by a BERT tower) → [B, embed_dim]."""
        x = self.text(ids, attention_mask)
        return F.normalize(x, dim=-1) if normalize else x

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("image", "text")

    def embed(self, modality: str, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One modality's batch → [B, embed_dim], not normalised (the interface every embedding
        family shares with :class:`polymodal.tasks.Embedder`)."""
        if modality == "image":
            return self.encode_image(x)
        if modality == "text":
            return self.encode_text(x, attention_mask)
        raise KeyError(f"a CLIP embeds 'image' and 'text', not {modality!r}")

    def scale(self) -> torch.Tensor:
        """exp(logit_scale) clamped at ``logit_scale_max`` (0-d tensor)."""
        return self.logit_scale.exp().clamp(max=self.logit_scale_max)

    def forward(self, images: torch.Tensor, ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Images [B, 3, H, W] and ids [B', L] → normalised features [B, E], [B', E] and the scale,
        the inputs of :class:`polymodal.objectives.ClipLoss`."""
        return {
            "image_features": self.encode_image(images, normalize=True),
            "text_features": self.encode_text(ids, attention_mask, normalize=True),
            "logit_scale": self.scale(),
        }

    @torch.no_grad()
    def logits(self, images: torch.Tensor, ids: torch.Tensor,
               attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits_per_image [B, B'], logits_per_text [B', B])."""
        out = self(images, ids, attention_mask)
        per_image = out["logit_scale"] * out["image_features"] @ out["text_features"].T
        return per_image, per_image.T


def _example_inputs(c: CLIPConfig) -> dict:
    from ..registry import example_inputs

    text = example_inputs(c.text)
    return {"images": example_inputs(c.vision)["images"], "ids": text["ids"],
            "attention_mask": text.get("attention_mask")}


def _embed_examples(c: CLIPConfig) -> dict:
    ex = _example_inputs(c)
    context = getattr(c.text, "context_length", None) or c.text.max_positions
    return {"image": ((ex["images"],), None), "text": ((ex["ids"], torch.ones_like(ex["ids"])), context)}


def _processor(c: CLIPConfig):
    from ..modalities.processor import ImageProcessing, Processor

    return Processor(image=ImageProcessing(c.vision.image_size))


register_family("clip", CLIPConfig, CLIP.from_config, example_inputs=_example_inputs, processor=_processor,
                embed_examples=_embed_examples)


def openai_clip_config(embed: int, v_width: int, v_layers: int, patch: int, t_width: int, t_heads: int,
                       image: int = 224) -> CLIPConfig:
    """OpenAI's released CLIP geometry (QuickGELU, LayerNorm eps 1e-5)."""
    vision = vit_config(v_width, v_layers, v_width // 64, patch, image, act="quick_gelu", eps=1e-5,
                        patch_bias=False, pre_norm=True, output_dim=embed)
    text = TextTransformerConfig(width=t_width, heads=t_heads, layers=12, mlp_hidden=4 * t_width,
                                 act="quick_gelu", output_dim=embed)
    return CLIPConfig(embed_dim=embed, vision=vision, text=text)


for _name, _args in {"clip-vit-b-32": (512, 768, 12, 32, 512, 8), "clip-vit-b-16": (512, 768, 12, 16, 512, 8),
                     "clip-vit-l-14": (768, 1024, 24, 14, 768, 12),
                     "clip-vit-l-14-336": (768, 1024, 24, 14, 768, 12, 336)}.items():
    register_preset(_name)(lambda a=_args: openai_clip_config(*a))


@register_preset("clip-tiny")
def _clip_tiny() -> CLIPConfig:
    """The sizes of tests/fixtures/clip_openai."""
    vision = ViTConfig(image_size=32, patch_size=8, width=64, layers=2, heads=2, mlp_hidden=256, eps=1e-5,
                       patch_bias=False, pre_norm=True, output_dim=32)
    text = TextTransformerConfig(vocab_size=1000, context_length=16, width=64, layers=2, heads=2,
                                 mlp_hidden=256, output_dim=32)
    return CLIPConfig(embed_dim=32, vision=vision, text=text)


def _world_vision() -> ViTConfig:
    """The world recipe's 64 px image tower: a conv stem to 8 × 8 tokens (see docs/world-recipe.md)."""
    return ViTConfig(image_size=64, patch_size=8, width=192, layers=4, heads=3, mlp_hidden=768, eps=1e-5,
                     pre_norm=True, patch_bias=False, output_dim=128, stem="conv", stem_channels=(32, 64, 128))


@register_preset("clip-world-tiny")
def _clip_world_tiny() -> CLIPConfig:
    """The from-scratch world recipe (configs/clip-world-tiny.yaml): small causal text tower."""
    text = TextTransformerConfig(vocab_size=1024, context_length=64, width=192, layers=4, heads=3,
                                 mlp_hidden=768, output_dim=128)
    return CLIPConfig(embed_dim=128, vision=_world_vision(), text=text)


@register_preset("clip-world-minilm")
def _clip_world_minilm() -> CLIPConfig:
    """The world recipe: its image tower against the packaged all-MiniLM-L6-v2 as text tower."""
    return CLIPConfig(embed_dim=128, vision=_world_vision(), text=minilm_config(tanh_pooler=True, output_dim=128))


@register_preset("clip-minilm-tiny")
def _clip_minilm_tiny() -> CLIPConfig:
    """A tiny ViT with the packaged all-MiniLM-L6-v2 text tower, for the demo and tests."""
    vision = ViTConfig(image_size=64, patch_size=16, width=128, layers=2, heads=2, mlp_hidden=512,
                       pre_norm=True, patch_bias=False, output_dim=64)
    return CLIPConfig(embed_dim=64, vision=vision, text=minilm_config(tanh_pooler=True, output_dim=64),
                      logit_scale_init=math.log(1 / 0.07))
