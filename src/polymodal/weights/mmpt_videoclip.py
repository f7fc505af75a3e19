"""fairseq MMPT's VideoCLIP (``MMFusionSeparate``): ``video_encoder.`` (``MMBertForEncoder``: a BERT
plus ``videomlp``) and ``text_encoder.`` (a HF ``BertModel``), with a ``mmmodel.`` prefix in
fairseq's own checkpoints. The BERT poolers are stored but never used: they are dropped."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.videoclip import VideoCLIPConfig
from . import hf_encoder
from .hf_bert import config_from_hf
from .keymap import count_indexed, drop, rename
from .layout import Layout, any_key, register_layout

_V = r"video_encoder\."
RULES = [
    *hf_encoder.embedding_rules(r"text_encoder\.embeddings\.", "text.stem."),
    *hf_encoder.layer_rules(r"text_encoder\.encoder\.layer\.", "text.transformer.blocks."),
    *hf_encoder.embedding_rules(_V + r"bert\.embeddings\.", "video.stem."),
    *hf_encoder.layer_rules(_V + r"bert\.encoder\.layer\.", "video.transformer.blocks."),
    (_V + r"videomlp\.linear([12])\.(weight|bias)", r"video_mlp.linear\1.\2"),
    (_V + r"videomlp\.LayerNorm\.(weight|bias)", r"video_mlp.norm.\1"),
]


def _strip(sd: dict) -> dict:
    return {k.removeprefix("mmmodel."): v for k, v in sd.items()}


def _match(keys: set[str], folder: Path | None) -> bool:
    return any_key(keys, prefix="mmmodel.") or (any_key(keys, prefix="video_encoder.")
                                                  and any_key(keys, prefix="text_encoder."))


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = drop(_strip(sd), [r".*position_ids", r".*pooler\.dense\.(weight|bias)"])
    return rename(hf_encoder.fuse_attention(sd), RULES)


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> VideoCLIPConfig:
    """Towers from the tensors (heads from ``bert_config_args`` / ``text_config`` if given, else
    64-wide); ``max_video_len`` from the config (MMPT's default 32 otherwise); [CLS]/[SEP] ids from
    ``special_tokens`` (bert-base-uncased's 101/102 otherwise)."""
    sd = _strip(sd)
    cfg = cfg or {}
    hf = cfg.get("text_config") or cfg.get("bert_config_args") or cfg
    text = config_from_hf(hf, sd, pooling="mean", prefix="text_encoder.")
    text.tanh_pooler = False
    video = cfg.get("video_config") or {}
    special = cfg.get("special_tokens") or {}  # {"CLS": id, "SEP": id}; bert-base-uncased's otherwise
    return VideoCLIPConfig(
        text, video_layers=count_indexed(sd, r"video_encoder\.bert\.encoder\.layer\.(\d+)\.attention\.output\.dense\.weight"),
        max_video_len=video.get("max_video_len", cfg.get("max_video_len", 32)),
        input_dim=sd["video_encoder.videomlp.linear1.weight"].shape[1],
        cls_id=special.get("CLS", 101), sep_id=special.get("SEP", 102))


LAYOUT = register_layout(Layout("mmpt-videoclip", "videoclip", "fairseq MMPT VideoCLIP", _match, priority=70,
                                convert=convert, infer_config=_infer))
