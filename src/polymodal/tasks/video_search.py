"""Video files → clip embeddings with a VideoCLIP model, for search (``polymodal index``, ``polymodal
video search``) and localisation from raw video.

A VideoCLIP reads per-second features, so a video takes two models: the frame backbone that made the
features it was trained on, and VideoCLIP's video tower. A model folder trained by polymodal names
its backbone in ``frame_tower.json`` (the image tower and its frame rate); an MMPT checkpoint reads
S3D features, whose weights the caller passes. A video is cut into overlapping clips of
``length`` seconds every ``stride`` seconds; each clip is one search item, ``FILE#t=START,END``
(a Media Fragments URI: the time to seek to).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import host_io
from ..models.videoclip import pad_clips
from .video_features import Backbone, video_features

FRAME_TOWER = "frame_tower.json"
MAX_FPS = 60  # frames per second any backbone samples (S3D: 30)
CLIP = "#t="  # a clip item is stored as FILE#t=START,END (seconds)


def video_index_dir(folder: str | Path, model: str | Path) -> Path:
    """Where ``video search`` keeps the index of ``folder``'s clips under ``model`` when not told: a
    cache folder named after both (``$XDG_CACHE_HOME/polymodal/video-index/…``, default ``~/.cache``),
    so that searching a folder never writes into it."""
    import hashlib
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(f"{Path(folder).resolve()}\n{Path(model).resolve()}".encode()).hexdigest()[:16]
    return cache / "polymodal" / "video-index" / f"{Path(folder).resolve().name}-{key}"


def write_frame_tower(folder: str | Path, tower: str | Path, fps: int) -> None:
    """Record beside a VideoCLIP model which image tower, at which frame rate, made its features."""
    (Path(folder) / FRAME_TOWER).write_text(json.dumps({"tower": str(Path(tower).resolve()), "fps": fps}) + "\n")


def frame_tower_record(model_dir: str | Path) -> tuple[Path, int]:
    """The (image tower folder, frames per second) that ``model_dir``'s ``frame_tower.json`` names."""
    record = Path(model_dir) / FRAME_TOWER
    if not record.is_file():
        raise ValueError(f"{model_dir} does not say which frame backbone made its features (no {FRAME_TOWER}); "
                         "pass the S3D weights of an MMPT model")
    try:
        spec = json.loads(record.read_text())
        tower, fps = Path(spec["tower"]), spec["fps"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{record}: expected {{\"tower\": PATH, \"fps\": N}} ({e})") from None
    return tower, checked_fps(fps, f"{record}: fps")


def checked_fps(fps, where: str) -> int:
    """``fps`` as frames per second a video is sampled at: an integer in 1..:data:`MAX_FPS`."""
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        raise ValueError(f"{where} must be a whole number of frames per second in 1..{MAX_FPS}, got {fps!r}")
    return fps


def clip_windows(seconds: int, length: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) seconds of clips of ``length`` every ``stride`` covering a video of ``seconds``
    (the last clip ends at the video's end; a short video is one clip)."""
    if length < 1 or stride < 1:
        raise ValueError(f"clip length and stride must be ≥ 1 s, got {length}, {stride}")
    starts = list(range(0, max(seconds - length, 0) + 1, stride))
    if starts[-1] + length < seconds:
        starts.append(seconds - length)
    return [(a, min(a + length, seconds)) for a in starts]


@torch.no_grad()
def clip_embeddings(model, features: torch.Tensor, length: int = 4, stride: int = 2,
                    batch: int = 256) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """Per-second features [S, D] → (clip windows, their L2-normalised embeddings [N, width])."""
    if features.dim() != 2 or features.shape[1] != model.config.input_dim or len(features) == 0:
        raise ValueError(f"expected per-second features [S, {model.config.input_dim}], got {tuple(features.shape)}")
    length = min(length, model.config.max_video_len)
    windows = clip_windows(len(features), length, min(stride, length))
    clips = [features[a:b] for a, b in windows]
    dtype = next(model.parameters()).dtype  # a bf16 model reads bf16 features
    out = []
    for i in range(0, len(clips), batch):
        vfeats, vmasks = pad_clips(clips[i:i + batch], length)
        out.append(model.encode_video(vfeats.to(dtype), vmasks).float())
    return windows, F.normalize(torch.cat(out), dim=-1)


class VideoClipper:
    """``clipper(path)`` → [(start s, end s, embedding [width])] for every clip of the video file."""

    def __init__(self, model, backbone: Backbone, length: int = 4, stride: int = 2):
        # host_io: the model runs on its device, the clips are cut and returned on the CPU
        self.model, self.backbone, self.length, self.stride = host_io(model.eval()), backbone, length, stride

    def features(self, path: str | Path) -> torch.Tensor:
        """[seconds, D] per-second features of the video (decoded as a stream)."""
        return torch.from_numpy(np.ascontiguousarray(video_features(path, self.backbone)))

    def __call__(self, path: str | Path) -> list[tuple[float, float, torch.Tensor]]:
        windows, emb = clip_embeddings(self.model, self.features(path), self.length, self.stride)
        return [(float(a), float(b), e) for (a, b), e in zip(windows, emb)]
