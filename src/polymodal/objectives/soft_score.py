"""VQA's objective: binary cross-entropy of answer logits [B, A] against soft scores [B, A]
(``min(#annotators / 3, 1)`` per answer), multiplied by A as the reference implementations
(bottom-up attention VQA, ViLBERT, VisualBERT) do, so that its size does not shrink with the vocabulary."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective


class SoftScoreBCE(Objective):
    """Batch: ``ids``, ``attention_mask``, ``regions``, ``region_mask`` (and ``boxes`` for two-stream
    models) for the model, ``targets`` [B, A] float. Logs the batch's VQA score of the argmax answer."""

    def loss(self, model, batch):
        logits = model(batch["ids"], batch["regions"], batch["attention_mask"], batch["region_mask"],
                       batch.get("boxes"))["logits"].float()
        targets = batch["targets"]
        if logits.shape != targets.shape:
            raise ValueError(f"answer logits {tuple(logits.shape)} do not match the targets {tuple(targets.shape)}")
        loss = F.binary_cross_entropy_with_logits(logits, targets) * targets.shape[1]
        score = targets.gather(1, logits.argmax(1, keepdim=True)).mean()
        return loss, {"vqa_score": score.detach()}
