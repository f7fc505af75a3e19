"""Our own layout: ``model.safetensors`` + ``config.json`` written by :func:`polymodal.save`.

Version 1 files named each tower's stem by its kind (``patch_embed``, ``token_embed``,
``embed``) and ImageBind's image encoder ``vision``; version 2 calls every stem ``stem`` and the
image modality ``image``, as everywhere else. Reading renames the old keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .files import CheckpointError
from .layout import Layout, any_key, register_layout

FORMAT = "polymodal"
_V1_STEM = re.compile(r"(^|\.)(patch_embed|token_embed|embed)\.")
_V1_VISION = re.compile(r"^(encoders|postprocessors)\.vision\.")


def _match(keys: set[str], folder: Path | None) -> bool:
    if any_key(keys, suffix=("transformer.blocks.0.attn.qkv.weight", "transformer.blocks.0.attn.q.weight")):
        return True
    config = folder / "config.json" if folder is not None else None
    if config is None or not config.is_file() or config.stat().st_size > 1 << 20:
        return False
    try:
        return json.loads(config.read_text()).get("format") == FORMAT
    except (ValueError, AttributeError):
        return False


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {_V1_VISION.sub(r"\1.image.", _V1_STEM.sub(r"\1stem.", k)): v for k, v in sd.items()}


def _infer(sd, cfg: dict | None, folder: Path | None):
    from ..registry import config_from_dict

    if cfg is None or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{folder}: weights in our layout need the config.json written by polymodal.save")
    return config_from_dict(cfg)


# Our keys never occur in the official layouts, so it is tried first.
LAYOUT = register_layout(Layout("polymodal", None, "polymodal", _match, priority=100, convert=convert,
                                infer_config=_infer))
