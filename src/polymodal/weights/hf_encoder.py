"""The Hugging Face BERT-style encoder layer, written once for every layout that uses it:
HF BERT (and sentence-transformers), HF ViT, and next VisualBERT, LayoutLM, the ViLBERT text
stream and VideoCLIP's towers.

A layer ``encoder.layer.N`` holds self-attention (separate query/key/value, an output dense and,
post-LN, its LayerNorm), an intermediate dense and an output dense (+ LayerNorm); ViT names its
pre-LN norms ``layernorm_before``/``layernorm_after`` and its attention ``attention.attention``.
"""

from __future__ import annotations

import torch

from .keymap import Rule, fuse_qkv


def embedding_rules(src: str, dst: str = "stem.") -> list[Rule]:
    """Rename rules for a BERT embeddings module (word, position, token type, LayerNorm) at regex
    prefix ``src`` (e.g. ``r"(?:bert\.)?embeddings\."``) onto our :class:`BertEmbeddings` at ``dst``."""
    return [
        (src + r"word_embeddings\.weight", f"{dst}word.weight"),
        (src + r"position_embeddings\.weight", f"{dst}position.weight"),
        (src + r"token_type_embeddings\.weight", f"{dst}token_type.weight"),
        (src + r"LayerNorm\.(weight|bias)", rf"{dst}norm.\1"),
    ]


def layer_rules(src: str, dst: str, *, vit: bool = False) -> list[Rule]:
    """Rename rules for one encoder's layers, after :func:`fuse_attention`.

    ``src`` is a regex matching up to and including ``layer.`` with the layer index as its only
    group (e.g. ``r"(?:bert\\.)?encoder\\.layer\\."``); ``dst`` the block prefix we use (e.g.
    ``"transformer.blocks."``).
    """
    n = rf"{src}(\d+)\."
    rules = [
        (n + r"attention\.qkv\.(weight|bias)", rf"{dst}\1.attn.qkv.\2"),
        (n + r"attention\.output\.dense\.(weight|bias)", rf"{dst}\1.attn.out.\2"),
        (n + r"intermediate\.dense\.(weight|bias)", rf"{dst}\1.mlp.fc1.\2"),
        (n + r"output\.dense\.(weight|bias)", rf"{dst}\1.mlp.fc2.\2"),
    ]
    if vit:
        rules += [(n + r"layernorm_before\.(weight|bias)", rf"{dst}\1.norm1.\2"),
                  (n + r"layernorm_after\.(weight|bias)", rf"{dst}\1.norm2.\2")]
    else:
        rules += [(n + r"attention\.output\.LayerNorm\.(weight|bias)", rf"{dst}\1.norm1.\2"),
                  (n + r"output\.LayerNorm\.(weight|bias)", rf"{dst}\1.norm2.\2")]
    return rules


def fuse_attention(sd: dict[str, torch.Tensor], *, vit: bool = False) -> dict[str, torch.Tensor]:
    """Concatenate every layer's query/key/value into one ``attention.qkv`` (our fused projection)."""
    inner = "attention" if vit else "self"
    return fuse_qkv(sd, rf"(.*)\.attention\.{inner}\.(query|key|value)\.(weight|bias)", ("query", "key", "value"),
                    "{prefix}.attention.qkv.{param}")


def hf_act(name: str) -> str:
    """Our activation name for a HF ``hidden_act``."""
    table = {"quick_gelu": "quick_gelu", "gelu": "gelu", "gelu_new": "gelu_tanh",
             "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
    if name not in table:
        raise ValueError(f"unsupported hidden_act {name!r} in the HF config")
    return table[name]
