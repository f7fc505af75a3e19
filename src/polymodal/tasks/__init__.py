"""Tasks: take a model (+ its tokenizer and processor) and data, return results."""

from .embedder import Embedder
from .zero_shot import ZeroShotClassifier

__all__ = ["Embedder", "ZeroShotClassifier"]
