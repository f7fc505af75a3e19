"""The MIL-NCE S3D checkpoint (``s3d_howto100m.pth`` of antoine77340/S3D_HowTo100M): our
:class:`~polymodal.models.s3d.S3D` keeps its module names, so keys load as they are; floating
tensors are cast to float32 (a half-precision copy loads too), a DataParallel ``module.`` prefix is
dropped, and the architecture is read off the tensors."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.s3d import S3DConfig
from .layout import Layout, any_key, register_layout


def _match(keys: set[str], folder: Path | None) -> bool:
    keys = {k.removeprefix("module.") for k in keys}
    return any_key(keys, prefix="mixed_5c.") and any_key(keys, prefix="conv1.")


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in sd.items()}


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> S3DConfig:
    sd = convert(sd)
    words = sd["text_module.word_embd.weight"]
    return S3DConfig(embed_dim=sd["fc.weight"].shape[0], gating="gating.fc.weight" in sd,
                     space_to_depth=sd["conv1.conv1.weight"].shape[1] == 24, vocab_size=words.shape[0],
                     word_dim=words.shape[1], text_hidden=sd["text_module.fc1.weight"].shape[0])


LAYOUT = register_layout(Layout("s3d-howto100m", "s3d", "MIL-NCE S3D (HowTo100M)", _match, priority=70,
                                convert=convert, infer_config=_infer))
