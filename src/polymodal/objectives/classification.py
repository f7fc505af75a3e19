"""Supervised classification: a model's logits [B, C] against integer labels [B]."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective


class Classification(Objective):
    """Cross-entropy (optionally label-smoothed); logs the batch accuracy.

    Batch: ``inputs`` (whatever the model takes, e.g. images [B, 3, S, S]) and ``labels`` [B] int64.
    """

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model, batch):
        logits = model(batch["inputs"]).float()
        labels = batch["labels"]
        if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
            raise ValueError(f"a classifier must output logits [B, C] for {labels.shape[0]} labels, "
                             f"got {tuple(logits.shape)}")
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return loss, {"accuracy": (logits.argmax(-1) == labels).float().mean()}
