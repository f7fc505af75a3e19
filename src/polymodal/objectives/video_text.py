"""VideoCLIP's objectives, on the plain dot product of the pooled towers (no normalisation, no temperature):

* :class:`VideoTextContrastive` — symmetric InfoNCE over a batch of (clip, text) pairs (MMPT's
  ``MMContraLoss``), gathered across ranks as CLIP's is (:class:`~polymodal.objectives.contrastive.ClipLoss`);
* :class:`VideoMultipleChoice` — multiple-choice video QA: each clip against its K answer sentences.
"""

from __future__ import annotations

import torch

from .base import Objective
from .choice import choice_loss
from .contrastive import ClipLoss


class VideoTextContrastive(Objective):
    """Batch: MMPT's ``caps``, ``cmasks`` [B, L], ``vfeats`` [B, V, D], ``vmasks`` [B, V]. Logs the
    batch's video→text top-1 accuracy."""

    def __init__(self):
        self.loss_fn = ClipLoss()

    def loss(self, model, batch):
        out = model(batch["caps"], batch["cmasks"], batch["vfeats"], batch["vmasks"])
        video, text = out["pooled_video"].float(), out["pooled_text"].float()
        loss = self.loss_fn(video, text, torch.ones((), device=video.device))
        hits = (video @ text.T).argmax(1) == torch.arange(len(video), device=video.device)
        return loss, {"video_to_text_top1": hits.float().mean()}


class VideoMultipleChoice(Objective):
    """Batch: ``vfeats`` [B, V, D], ``vmasks`` [B, V], the options as ``ids`` / ``attention_mask``
    [B·K, L] ([CLS] words [SEP], question b's K options in rows b·K … b·K + K − 1), ``positives`` [B, K]."""

    def loss(self, model, batch):
        video = model.encode_video(batch["vfeats"], batch["vmasks"]).float()  # [B, E]
        text = model.encode_text(batch["ids"], batch["attention_mask"]).float()  # [B·K, E]
        b, k = batch["positives"].shape
        scores = (video[:, None, :] * text.view(b, k, -1)).sum(-1)
        return choice_loss(scores, batch["positives"])
