"""ViLBERT's pretraining: masked multimodal learning plus multimodal alignment prediction.

* words: BERT's masking (15 %, 80/10/10) and cross-entropy, as :class:`MaskedLMAndMatching`;
* regions: 15 % of the regions are masked (their features zeroed 90 % of the time, left as they
  are otherwise) and the model predicts each masked region's class *distribution*, the detector's
  softmax, by KL(target ‖ predicted) — not the features themselves, which are too noisy to regress;
* alignment: does the caption describe the image ([aligned, not aligned], half of the pairs not).

:func:`mask_regions` makes the region side of such a batch; the loss needs a ViLBERT-style model
(``forward(ids, regions, boxes, attention_mask, region_mask)`` → ``mlm_logits``, ``region_logits``,
``align_logits``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective, masked_mean
from .masked_lm import IGNORE


def mask_regions(features: torch.Tensor, region_mask: torch.Tensor, *, prob: float = 0.15, zero: float = 0.9,
                 skip_first: bool = True, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """features [B, R, D], region_mask [B, R] (1 = real) → (features with the chosen regions zeroed
    ``zero`` of the time, chosen [B, R] bool). ``skip_first`` never picks region 0 (the whole
    image, which has no object class)."""
    can = region_mask.bool().clone()
    if skip_first:
        can[:, 0] = False
    chosen = (torch.rand(region_mask.shape, generator=generator) < prob) & can
    zeroed = chosen & (torch.rand(region_mask.shape, generator=generator) < zero)
    return features.masked_fill(zeroed[..., None], 0.0), chosen


class MaskedMultimodal(Objective):
    """``mlm`` CE + ``region_weight`` · KL + ``align_weight`` · alignment CE.

    Batch: ``ids``, ``attention_mask`` [B, L], ``regions`` [B, R, D], ``boxes`` [B, R, 5],
    ``region_mask`` [B, R], ``mlm_labels`` [B, L] (-100 where not masked), ``region_targets`` [B, R, C]
    (class distributions), ``masked_regions`` [B, R] bool and ``align_labels`` [B] (0 = aligned).
    The region KL is averaged over the masked regions (the reference averages over them too)."""

    def __init__(self, region_weight: float = 1.0, align_weight: float = 1.0):
        self.region_weight, self.align_weight = region_weight, align_weight

    def loss(self, model, batch):
        out = model(batch["ids"], batch["regions"], batch["boxes"], batch["attention_mask"], batch["region_mask"])
        labels = batch["mlm_labels"]
        logits = out["mlm_logits"].float()
        chosen = labels != IGNORE
        # Means over masked words / regions without asking the device whether there are any (no sync).
        mlm = masked_mean(F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none"), chosen)
        masked = batch["masked_regions"]
        log_p = F.log_softmax(out["region_logits"].float(), dim=-1)
        targets = batch["region_targets"]
        kl = F.kl_div(log_p, targets, reduction="none").sum(-1)  # [B, R]
        region = masked_mean(kl, masked)
        region_acc = masked_mean((log_p.argmax(-1) == targets.argmax(-1)).float(), masked)
        align = F.cross_entropy(out["align_logits"].float(), batch["align_labels"])
        loss = mlm + self.region_weight * region + self.align_weight * align
        return loss, {"mlm": mlm.detach(), "region_kl": region.detach(), "align": align.detach(),
                      "mlm_accuracy": masked_mean((logits.argmax(-1) == labels).float(), chosen),
                      "region_accuracy": region_acc.detach(),
                      "align_accuracy": (out["align_logits"].argmax(-1) == batch["align_labels"]).float().mean()}
