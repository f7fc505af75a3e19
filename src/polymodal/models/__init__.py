"""Model families composed from ``polymodal.layers``."""

from .bert import BertConfig, BertTextTower
from .clip import CLIP, CLIPConfig
from .text_transformer import TextTransformer, TextTransformerConfig
from .vit import ViTConfig, VisionTransformer

__all__ = [
    "BertConfig", "BertTextTower", "CLIP", "CLIPConfig", "TextTransformer", "TextTransformerConfig",
    "ViTConfig", "VisionTransformer",
]
