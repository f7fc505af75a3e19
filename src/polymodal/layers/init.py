"""Weight initialisation shared by the transformer encoders (timm's ViT scheme)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """In one pass over ``module``: every ``nn.Linear`` weight ~ truncated N(0, std²) with zero
    bias, and learned attention ``bias_k``/``bias_v`` ~ N(0, std²)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif getattr(m, "bias_k", None) is not None:
            nn.init.normal_(m.bias_k, std=std)
            nn.init.normal_(m.bias_v, std=std)
