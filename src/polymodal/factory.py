"""One way to make a model: ``polymodal.create(preset name or config, weights=path|None)`` — the
family's module built from the registry (:mod:`polymodal.registry`), then filled from a checkpoint
in any supported layout (:mod:`polymodal.weights`). It sits above both, so neither imports the other
to do this."""

from __future__ import annotations

from torch import nn

from .registry import build, preset
from .weights import load_weights_into


def create(name_or_config, weights: str | None = None, *, strict: bool = True) -> nn.Module:
    """Build a model from a preset name or a config, optionally loading ``weights``.

    ``weights`` is a checkpoint file or folder in any supported layout (see
    :func:`polymodal.weights.load_checkpoint`); its tensors must fit the preset exactly unless
    ``strict=False`` (then the missing/unexpected keys are listed in a warning).
    """
    config = preset(name_or_config) if isinstance(name_or_config, str) else name_or_config
    model = build(config)
    if weights is not None:
        load_weights_into(model, weights, strict=strict)
        model.eval()
    return model
