"""Layouts of families polymodal cannot build yet, registered so that a checkpoint of one is named
for what it is ("a ViLBERT checkpoint; not supported yet") instead of being mistaken for the
BERT or CLIP whose keys it shares. When a family lands, its entry moves into its own layout file."""

from __future__ import annotations

from .layout import Layout, any_key, register_layout


def _unsupported(name: str, family: str, description: str, match, priority: int = 70) -> Layout:
    return register_layout(Layout(name, family, description, match, priority, supported=False))


# All of these contain HF-BERT-style layers (priority 10), so they are tried before it.
_unsupported("hf-layoutlm", "layoutlm", "Hugging Face LayoutLM (v1)",
             lambda keys, folder: any_key(keys, contains="embeddings.x_position_embeddings."))
_unsupported("open-clip-timm", "clip", "open_clip CLIP with a timm image tower",
             lambda keys, folder: any_key(keys, prefix="visual.trunk."))
