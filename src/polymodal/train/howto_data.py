"""VideoCLIP's training data: videos as per-second features, the sentences said over them (narration
segments, rows of a user's table), and (clip, text) positive pairs made two ways.

* **naive** — the clip is exactly the seconds the segment's timestamps cover; the text is the segment.
* **overlapped** (VideoCLIP) — a centre is drawn inside the segment's time span; the clip is a
  span of 3–6 s around it and the text every sentence whose span holds the centre, so a late or
  early sentence still overlaps the clip that shows it (the paper's independent expansion of the
  video and text spans around a shared centre).

Batches are a pure function of (seed, step): a resumed run sees the pairs an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..arrays import read_features
from ..models.videoclip import mmpt_caps, pad_clips

CLIP_SECONDS = (3.0, 6.0)  # overlapped: clip length range


@dataclass
class HowToFeatures:
    """Per-second features of videos and their narration segments (rows of ``segments``); optionally
    multiple-choice ``questions`` about them (each with ``video``, ``start``, ``end``, ``options``,
    ``answer``), the rows that could not be used (``skipped``), and the (image tower folder, frames
    per second) that made the features, when an image tower did (a model trained on them can then
    embed videos itself)."""
    features: list[torch.Tensor]  # per video [S_v, D] float32
    segments: list[dict]  # {"video", "start", "end", "text", "true_start", "true_end", "visible"}
    questions: list | None = None
    skipped: list[str] = field(default_factory=list)
    frame_tower: tuple[str, float] | None = None

    def by_video(self, v: int) -> list[dict]:
        return [s for s in self.segments if s["video"] == v]


MAX_FEATURE_BYTES = 2**30  # one video's feature file


def _load_features(path: Path) -> torch.Tensor:
    """A per-second feature file [S, D] (float), its header checked before the array is read."""
    return torch.from_numpy(read_features(path, MAX_FEATURE_BYTES))


def timed_text_features(table: str | Path, features: str | Path) -> tuple[HowToFeatures, list[str]]:
    """A user's ``video, start, end, text`` table (CSV / TSV / JSONL) and a folder of per-second features
    (``NAME.npy`` for video ``…/NAME.ext``, from ``polymodal video features``) → (the data, problems:
    one line per skipped row — unreadable, no feature file, a span past the video's end, a feature
    width unlike the others). The segments' times are taken as true: the data says nothing else."""
    from ..data.video_text import read_timed_texts

    rows, problems = read_timed_texts(table)
    folder = Path(features)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder of per-second features")
    index: dict[str, int] = {}
    feats: list[torch.Tensor] = []
    bad: dict[str, str] = {}
    segments = []
    for n, row in enumerate(rows):
        name = Path(row.video).stem
        if name not in index and name not in bad:
            try:
                f = _load_features(folder / f"{name}.npy")
                if feats and f.shape[1] != feats[0].shape[1]:
                    raise ValueError(f"{folder / name}.npy: {f.shape[1]}-d features, the others are {feats[0].shape[1]}-d")
                index[name] = len(feats)
                feats.append(f)
            except (OSError, ValueError) as e:
                bad[name] = str(e) if isinstance(e, ValueError) else f"{folder / name}.npy: {e.strerror or e}"
        if name in bad:
            problems.append(f"{table}: row of {row.video} ({row.start}–{row.end} s): {bad[name]}")
            continue
        v = index[name]
        if row.start >= len(feats[v]):
            problems.append(f"{table}: row of {row.video} starts at {row.start} s, after its {len(feats[v])} s of features")
            continue
        segments.append({"video": v, "start": row.start, "end": row.end, "text": row.text, "true_start": row.start,
                         "true_end": row.end, "visible": True})
    return HowToFeatures(feats, segments), problems


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


def howto_batch(data: HowToFeatures, rows: torch.Tensor, step: int, seed: int, how: str, tokenizer, max_len: int,
                rank: int = 0, world_size: int = 1) -> dict:
    """This rank's slice of global batch ``step``, whose training segments are ``rows`` [B]:
    ``vfeats``, ``vmasks``, and the texts as MMPT's ``caps`` / ``cmasks`` ([CLS] [SEP] words [SEP])."""
    b = len(rows) // world_size
    idx = rows[rank * b:(rank + 1) * b]
    rng = np.random.default_rng([seed, step, rank])
    clips, texts = zip(*(pair(data, int(r), how, rng, max_len) for r in idx))
    vfeats, vmasks = pad_clips(list(clips), max_len)
    caps, cmasks = mmpt_caps(tokenizer, list(texts))
    return {"caps": caps, "cmasks": cmasks, "vfeats": vfeats, "vmasks": vmasks}


@torch.no_grad()
def video_embeddings(model, features: list[torch.Tensor], max_len: int, batch: int = 256) -> torch.Tensor:
    """Each video's embedding [N, D]: its features cut into clips of ``max_len`` seconds, each through
    the video tower, the clips' embeddings averaged."""
    clips, owner = [], []
    for v, f in enumerate(features):
        for a in range(0, len(f), max_len):
            clips.append(f[a:a + max_len])
            owner.append(v)
    parts = [model.encode_video(*pad_clips(clips[i:i + batch], max_len)).float() for i in range(0, len(clips), batch)]
    emb = torch.cat(parts)
    owner_t = torch.tensor(owner)
    out = torch.zeros(len(features), emb.shape[1]).index_add_(0, owner_t, emb)
    return out / torch.bincount(owner_t, minlength=len(features)).clamp(min=1)[:, None]
