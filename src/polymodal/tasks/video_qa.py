"""Multiple-choice video QA with a VideoCLIP model: each (clip, answer) pair scored by the retrieval
model's dot product, the best-scoring answer chosen — zero-shot from a retrieval model, or after
fine-tuning on questions (``objective.kind video_mc``)."""

from __future__ import annotations

from typing import Sequence

import torch

from ..models.videoclip import pad_clips, text_ids


def question_batch(clips: list[torch.Tensor], options: Sequence[Sequence[str]], tokenizer, max_len: int) -> dict:
    """Clips [V_i, D] and each clip's K options → the model inputs of
    :class:`~polymodal.objectives.VideoMultipleChoice`: ``vfeats``, ``vmasks``, ``ids`` / ``attention_mask`` [B·K, L]."""
    k = {len(o) for o in options}
    if len(k) != 1:
        raise ValueError(f"every question needs the same number of options, got {sorted(k)}")
    vfeats, vmasks = pad_clips(clips, max_len)
    ids, mask = text_ids(tokenizer, [t for o in options for t in o])
    return {"vfeats": vfeats, "vmasks": vmasks, "ids": ids, "attention_mask": mask}


@torch.no_grad()
def choice_scores(model, clips: list[torch.Tensor], options: Sequence[Sequence[str]], tokenizer,
                  batch: int = 64) -> torch.Tensor:
    """Scores [B, K] of each clip [V_i, D] against its K options."""
    model.eval()
    out = []
    for i in range(0, len(clips), batch):
        b = question_batch(clips[i:i + batch], options[i:i + batch], tokenizer, model.config.max_video_len)
        video = model.encode_video(b["vfeats"], b["vmasks"]).float()
        text = model.encode_text(b["ids"], b["attention_mask"]).float().view(len(video), -1, video.shape[1])
        out.append((video[:, None, :] * text).sum(-1))
    return torch.cat(out)
