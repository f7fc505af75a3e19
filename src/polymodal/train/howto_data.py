"""VideoCLIP's training data on the world: how-to videos as per-second features from a frozen image
tower, their narration segments, and (clip, text) positive pairs made two ways.

* **naive** — the clip is exactly the seconds the segment's timestamps cover; the text is the segment.
* **overlapped** (VideoCLIP) — a centre is drawn inside the segment's time span; the clip is a
  span of 3–6 s around it and the text every sentence whose span holds the centre, so a late or
  early sentence still overlaps the clip that shows it (the paper's independent expansion of the
  video and text spans around a shared centre).

Batches are a pure function of (seed, step): a resumed run sees the pairs an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..data.world.howto import FPS, howto_video
from ..models.videoclip import mmpt_caps, pad_clips
from .data import batch_indices

CLIP_SECONDS = (3.0, 6.0)  # overlapped: clip length range


@dataclass
class HowToFeatures:
    """Per-second features of videos and their narration segments (rows of ``segments``)."""
    features: list[torch.Tensor]  # per video [S_v, D] float32
    segments: list[dict]  # {"video", "start", "end", "text", "true_start", "true_end", "visible"}

    def by_video(self, v: int) -> list[dict]:
        return [s for s in self.segments if s["video"] == v]


@torch.no_grad()
def world_howto_features(split: str, n: int, seed: int, embed_frames, shift_rate: float = 0.25,
                         size: int = 64) -> HowToFeatures:
    """``n`` how-to videos of ``split``: each second's frames (4 fps) through ``embed_frames``
    (uint8 [F, 3, size, size] → [F, D]), averaged per second."""
    features, segments = [], []
    for v in range(n):
        video = howto_video(seed, split, v, shift_rate, size)
        frames = torch.from_numpy(np.ascontiguousarray(video.frames.transpose(0, 3, 1, 2)))
        emb = embed_frames(frames).float()  # [F, D]
        seconds = math.ceil(len(emb) / FPS)
        pad = seconds * FPS - len(emb)
        if pad:
            emb = torch.cat([emb, emb[-1:].expand(pad, -1)])
        features.append(emb.view(seconds, FPS, -1).mean(dim=1))
        segments += [{"video": v, "start": g.start, "end": g.end, "text": g.text, "true_start": g.true_start,
                      "true_end": g.true_end, "visible": g.visible} for g in video.narration]
    return HowToFeatures(features, segments)


def clip_seconds(features: torch.Tensor, start: float, end: float, max_len: int) -> torch.Tensor:
    """The seconds [floor(start), ceil(end)) of features [S, D] (at least one, at most ``max_len``)."""
    a = min(max(int(math.floor(start)), 0), len(features) - 1)
    b = min(max(int(math.ceil(end)), a + 1), len(features), a + max_len)
    return features[a:b]


def pair(data: HowToFeatures, row: int, how: str, rng: np.random.Generator, max_len: int) -> tuple[torch.Tensor, str]:
    """(clip features [V, D], text) of training segment ``row``, ``how`` = "naive" or "overlapped"."""
    seg = data.segments[row]
    feats = data.features[seg["video"]]
    if how == "naive":
        return clip_seconds(feats, seg["start"], seg["end"], max_len), seg["text"]
    if how != "overlapped":
        raise ValueError(f"pairs must be 'naive' or 'overlapped', got {how!r}")
    centre = rng.uniform(seg["start"], max(seg["end"], seg["start"] + 1e-3))
    length = rng.uniform(*CLIP_SECONDS)
    clip = clip_seconds(feats, centre - length / 2, centre + length / 2, max_len)
    texts = [s["text"] for s in data.by_video(seg["video"]) if s["start"] <= centre <= s["end"]] or [seg["text"]]
    return clip, " ".join(texts)


def howto_batch(data: HowToFeatures, rows: torch.Tensor, step: int, batch_size: int, seed: int, how: str,
                tokenizer, max_len: int, rank: int = 0, world: int = 1) -> dict:
    """This rank's slice of global batch ``step`` over the training segments ``rows``: ``vfeats``,
    ``vmasks``, and the texts as MMPT's ``caps`` / ``cmasks`` ([CLS] [SEP] words [SEP])."""
    idx, _ = batch_indices(step, batch_size, len(rows), seed)
    b = batch_size // world
    idx = rows[idx[rank * b:(rank + 1) * b]]
    rng = np.random.default_rng([seed, step, rank])
    clips, texts = zip(*(pair(data, int(r), how, rng, max_len) for r in idx))
    vfeats, vmasks = pad_clips(list(clips), max_len)
    caps, cmasks = mmpt_caps(tokenizer, list(texts))
    return {"caps": caps, "cmasks": cmasks, "vfeats": vfeats, "vmasks": vmasks}
