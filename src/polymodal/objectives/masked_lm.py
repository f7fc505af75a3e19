"""Masked language modelling (BERT) and image–text matching, the objectives VisualBERT and ViLBERT
pretrain with.

* :func:`mask_tokens` — BERT's corruption: ``prob`` of the real, non-special tokens are chosen;
  80 % of them become ``[MASK]``, 10 % a random word, 10 % stay; labels are -100 elsewhere.
  Seeded by a generator, so a batch is a pure function of (seed, step).
* :class:`MaskedLMAndMatching` — cross-entropy on the chosen tokens (text positions only; regions
  are never masked in VisualBERT) plus the image–text head on pairs of which some are mismatched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective, masked_mean

IGNORE = -100


def mask_tokens(ids: torch.Tensor, attention_mask: torch.Tensor, *, mask_id: int, vocab_size: int,
                special_ids: tuple[int, ...] = (), prob: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ids [B, L] → (corrupted ids [B, L], labels [B, L]: the original id where chosen, else -100).
    Padding (``attention_mask`` 0) and ``special_ids`` are never chosen."""
    can = attention_mask.bool()
    for s in special_ids:
        can &= ids != s
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & can
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    action = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(0, vocab_size, ids.shape, generator=generator)
    corrupted = torch.where(chosen & (action < 0.8), torch.full_like(ids, mask_id), ids)
    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, labels


class MaskedLMAndMatching(Objective):
    """``mlm_weight`` · CE(masked words) + ``itm_weight`` · CE(match / mismatch).

    Batch: ``ids``, ``attention_mask`` [B, L], ``regions`` [B, R, D], ``region_mask`` [B, R],
    ``mlm_labels`` [B, L] (-100 where not masked) and ``itm_labels`` [B] (0 = the caption fits
    the image, 1 = it does not, the reference's order). The model returns ``mlm_logits`` over
    [text | regions] and ``itm_logits`` [B, 2] (VisualBERT's forward).
    """

    def __init__(self, mlm_weight: float = 1.0, itm_weight: float = 1.0):
        self.mlm_weight, self.itm_weight = mlm_weight, itm_weight

    def loss(self, model, batch):
        out = model(batch["ids"], batch["regions"], batch["attention_mask"], batch["region_mask"])
        n = batch["ids"].shape[1]
        labels = batch["mlm_labels"]
        logits = out["mlm_logits"][:, :n].float()
        chosen = labels != IGNORE
        # Means over the masked words without asking the device whether there are any (no sync).
        mlm = masked_mean(F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none"), chosen)
        itm = F.cross_entropy(out["itm_logits"].float(), batch["itm_labels"])
        mlm_acc = masked_mean((logits.argmax(-1) == labels).float(), chosen)
        return self.mlm_weight * mlm + self.itm_weight * itm, {
            "mlm": mlm.detach(), "itm": itm.detach(), "mlm_accuracy": mlm_acc,
            "itm_accuracy": (out["itm_logits"].argmax(-1) == batch["itm_labels"]).float().mean()}
