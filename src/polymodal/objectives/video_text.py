"""VideoCLIP's objective: symmetric InfoNCE over a batch of (clip, text) pairs scored by the plain
dot product of the pooled towers (MMPT's ``MMContraLoss``: no normalisation, no temperature),
gathered across ranks as CLIP's is (:class:`~polymodal.objectives.contrastive.ClipLoss`)."""

from __future__ import annotations

import torch

from .base import Objective
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
        return loss, {"video_to_text_top1": hits.float().mean().item()}
