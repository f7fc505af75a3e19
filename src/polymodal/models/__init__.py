"""Model families composed from ``polymodal.layers``; each file registers its family and presets
(see :mod:`polymodal.registry`), and every module here is imported on first use."""

from ..registry import load_all
from .bert import BertConfig, BertTextTower
from .clip import CLIP, CLIPConfig
from .text_transformer import TextTransformer, TextTransformerConfig
from .vit import ViTConfig, VisionTransformer

__all__ = [
    "BertConfig", "BertTextTower", "CLIP", "CLIPConfig", "TextTransformer", "TextTransformerConfig",
    "ViTConfig", "VisionTransformer", "load_all",
]
load_all()
