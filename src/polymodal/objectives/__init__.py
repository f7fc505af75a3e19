"""Training objectives; each takes model outputs and returns a scalar loss."""

from .contrastive import ClipLoss, gather_features

__all__ = ["ClipLoss", "gather_features"]
