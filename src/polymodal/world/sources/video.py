"""The world's how-to videos as timed video text (``videoclip``) and, with their multiple-choice
questions, as video questions (``video_mc``): each second's frames through the run's frozen image
tower (``data.frame_tower``), narration shifted in time at ``data.shift_rate``; features cached in
``data.feature_cache`` between runs."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ...fileio import atomic_write
from ...train.config import ConfigError
from ...train.howto_data import HowToFeatures
from ...train.sources import Source, register_source
from ...train.videoclip import frame_embedder
from ..howto import FPS, howto_video
from ..video_qa import howto_questions
from .images import SCENES


@torch.no_grad()
def world_howto_features(split: str, n: int, seed: int, embed_frames, shift_rate: float = 0.25,
                         size: int = 64, cache: Path | None = None) -> HowToFeatures:
    """``n`` how-to videos of ``split``: each second's frames (4 fps) through ``embed_frames``
    (uint8 [F, 3, size, size] → [F, D]), averaged per second. With ``cache`` (a ``.safetensors``
    file named for the frame tower and the videos), the features are read from it when it exists and
    written to it otherwise: they do not depend on ``shift_rate``, so every run of an experiment
    renders and embeds the videos once."""
    cached = _read_cache(cache, n) if cache is not None else None
    features, segments = [], []
    for v in range(n):
        video = howto_video(seed, split, v, shift_rate, size, frames=cached is None)
        if cached is None:
            frames = torch.from_numpy(np.ascontiguousarray(video.frames.transpose(0, 3, 1, 2)))
            emb = embed_frames(frames).float()  # [F, D]
            seconds = math.ceil(len(emb) / FPS)
            pad = seconds * FPS - len(emb)
            if pad:
                emb = torch.cat([emb, emb[-1:].expand(pad, -1)])
            features.append(emb.view(seconds, FPS, -1).mean(dim=1))
        segments += [{"video": v, "start": g.start, "end": g.end, "text": g.text, "true_start": g.true_start,
                      "true_end": g.true_end, "visible": g.visible} for g in video.narration]
    if cached is not None:
        features = cached
    elif cache is not None:
        _write_cache(cache, features)
    return HowToFeatures(features, segments)


def _read_cache(path: Path, n: int) -> list[torch.Tensor] | None:
    if not path.is_file():
        return None
    data = load_file(str(path))
    lengths = data["lengths"].tolist()
    if len(lengths) != n:
        raise ValueError(f"{path}: holds features of {len(lengths)} videos, expected {n}")
    return list(torch.split(data["features"], lengths))


def _write_cache(path: Path, features: list[torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": torch.cat(features).contiguous(), "lengths": torch.tensor([len(f) for f in features])}
    atomic_write(path, lambda tmp: save_file(tensors, tmp))


def feature_cache_file(folder: str | Path, frame_tower: str | Path, split: str, n: int, seed: int, size: int) -> Path:
    """Where the features of these videos through this frame tower are cached in ``folder``: the
    name carries a digest of the tower's weights file (its path, size and mtime), so retraining the
    tower starts a new cache."""
    weights = Path(frame_tower).resolve() / "model.safetensors"
    stat = weights.stat()
    digest = hashlib.sha1(f"{weights}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return Path(folder) / f"howto-{digest}-{split}-{n}-s{seed}-{size}px.safetensors"


def timed_video_text(kind, split: str) -> HowToFeatures:
    """``data.train_n`` / ``val_n`` how-to videos with their multiple-choice questions; the features
    say which frame tower made them (``frame_tower``), so the trained model can search videos with
    that tower alone."""
    d = kind.cfg.data
    if not d.frame_tower:
        raise ConfigError(f"objective.kind {kind.name} on the world needs data.frame_tower: a saved CLIP or ImageBind "
                          "folder (e.g. runs/pipeline/clip/model) whose image tower embeds the frames")
    n = d.train_n if split == "train" else d.val_n
    embed = getattr(kind, "frame_embed", None)
    if embed is None:
        embed = kind.frame_embed = frame_embedder(d.frame_tower)
    cache = feature_cache_file(d.feature_cache, d.frame_tower, split, n, d.seed, d.image_size) if d.feature_cache else None
    data = world_howto_features(split, n, d.seed, embed, d.shift_rate, d.image_size, cache)
    data.frame_tower = (d.frame_tower, FPS)
    data.questions = howto_questions(d.seed, split, n)
    return data


VIDEOS = SCENES + ("image_size", "frame_tower", "feature_cache", "shift_rate")
register_source(Source("world", "timed_video_text", timed_video_text, VIDEOS,
                       about="rendered how-to videos with shifted narration (their questions evaluated)"))
register_source(Source("world", "video_questions", timed_video_text, VIDEOS,
                       about="rendered how-to videos with multiple-choice questions"))
