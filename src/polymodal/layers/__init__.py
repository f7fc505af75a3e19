"""Building blocks shared by every model family: attention, blocks, embeddings, pooling."""

from .attention import Attention
from .blocks import PostNormBlock, PreNormBlock, Transformer, set_grad_checkpointing
from .co_attention import CoAttentionBlock, CrossAttentionBlock, TwoStreamTransformer
from .mlp import DropPath, Mlp, QuickGELU, make_activation
from .patch_embed import ConvStem, FrameStem, PatchEmbed, VideoPatchEmbed, resample_pos_embed
from .prediction_heads import MaskedLMHead

__all__ = [
    "Attention", "CoAttentionBlock", "ConvStem", "CrossAttentionBlock", "DropPath", "FrameStem", "MaskedLMHead", "Mlp", "PatchEmbed",
    "PostNormBlock", "PreNormBlock", "QuickGELU", "Transformer", "TwoStreamTransformer", "VideoPatchEmbed",
    "make_activation", "resample_pos_embed", "set_grad_checkpointing",
]
