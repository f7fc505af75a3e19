"""Tasks: take a model (+ its tokenizer and preprocessing) and data, return results."""

from .encoder import Encoder
from .zero_shot import ZeroShotClassifier

__all__ = ["Encoder", "ZeroShotClassifier"]
