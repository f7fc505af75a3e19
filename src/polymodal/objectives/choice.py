"""Objectives of the region tasks that score rather than classify.

* :class:`MultipleChoice` — one right option among K (VCR's four answers, a referring expression's
  regions): logits [B, K] → −log of the softmax mass on the options marked right (several regions
  may overlap the referred object enough to count; one-hot for VCR, where it is plain cross-entropy).
* :class:`BinaryMatch` — does the text fit the image (multimodal consistency): BCE on one logit.

The batch holds the model's inputs (``ids``, ``attention_mask``, ``regions``, ``region_mask``,
``boxes``) and the targets; the model returns ``logits``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective


def _logits(model, batch) -> torch.Tensor:
    return model(batch["ids"], batch["regions"], batch["attention_mask"], batch["region_mask"],
                 batch.get("boxes"))["logits"].float()


class MultipleChoice(Objective):
    """Batch target: ``positives`` [B, K] bool (≥ 1 true per row). The model's logits are viewed as
    [B, K] (K options scored as K rows of the batch, or K regions of one row); −inf logits are options
    that do not exist (padded regions). Logs the accuracy of the top option."""

    def loss(self, model, batch):
        return choice_loss(_logits(model, batch), batch["positives"])


def choice_loss(logits: torch.Tensor, positives: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Logits with as many elements as ``positives`` [B, K] (bool) → (−log softmax mass on the right
    options, averaged over rows; {"accuracy": the top option's}). −inf logits are absent options."""
    if logits.numel() != positives.numel():
        raise ValueError(f"{tuple(logits.shape)} logits do not match {tuple(positives.shape)} options")
    logits = logits.view(positives.shape)
    # Checked where it costs nothing; on an accelerator it would wait for the device every step, and a
    # row without a right option gives an infinite loss there, which the engine reports with its step.
    if positives.device.type == "cpu" and not bool(positives.any(dim=1).all()):
        raise ValueError("every row needs at least one right option")
    right = logits.masked_fill(~positives, float("-inf")).logsumexp(dim=1)
    loss = (logits.logsumexp(dim=1) - right).mean()
    hit = positives.gather(1, logits.argmax(1, keepdim=True)).float().mean()
    return loss, {"accuracy": hit.detach()}


class BinaryMatch(Objective):
    """Batch target: ``labels`` [B] (1 = the text fits the image, 0 = it does not)."""

    def loss(self, model, batch):
        logits = _logits(model, batch)
        labels = batch["labels"].float()
        if logits.shape != labels.shape:
            raise ValueError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        return loss, {"accuracy": ((logits > 0).float() == labels).float().mean()}
