"""Evaluation metrics."""

from .metrics import accuracy, retrieval_metrics

__all__ = ["accuracy", "retrieval_metrics"]
