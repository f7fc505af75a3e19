"""CLIP (Radford et al.): an image tower and a text tower projected into one space, compared
by cosine similarity scaled by a learned temperature.

Following TorchMultimodal, ``CLIP`` takes already-built towers; ``CLIP.from_config`` builds
them from a ``CLIPConfig``. The text tower is either CLIP's causal transformer or a BERT
tower (e.g. the packaged all-MiniLM-L6-v2), chosen by ``text_type``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .bert import BertConfig, BertTextTower
from .text_transformer import TextTransformer, TextTransformerConfig
from .vit import ViTConfig, VisionTransformer


@dataclass
class CLIPConfig:
    embed_dim: int = 512
    vision: ViTConfig = field(default_factory=ViTConfig)
    text: TextTransformerConfig | BertConfig = field(default_factory=TextTransformerConfig)
    text_type: str = "causal"  # "causal" (CLIP's own) or "bert"
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = 100.0

    def __post_init__(self):
        # Accept plain dicts (from config.json) for the towers.
        if isinstance(self.vision, dict):
            self.vision = ViTConfig(**self.vision)
        if isinstance(self.text, dict):
            cls = BertConfig if self.text_type == "bert" else TextTransformerConfig
            self.text = cls(**self.text)
        if self.text_type not in ("causal", "bert"):
            raise ValueError(f"CLIPConfig.text_type must be 'causal' or 'bert', got {self.text_type!r}")


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
        vision = VisionTransformer(config.vision)
        text = BertTextTower(config.text) if config.text_type == "bert" else TextTransformer(config.text)
        return cls(vision, text, logit_scale_init=config.logit_scale_init,
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
