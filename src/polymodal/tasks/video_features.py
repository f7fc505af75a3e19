"""From a video file to one feature vector per second (what VideoCLIP's video tower reads), as MMPT's
extractor does: frames resampled to a fixed rate, the short side resized and centre-cropped, one
second at a time through a backbone.

* ``s3d``: 30 frames per second at 224 px through S3D-G, its ``video_embedding`` L2-normalised
  (MMPT's ``--type s3d`` defaults), 512-d.
* ``clip`` (any polymodal image tower): ``fps`` frames per second through the tower, their
  embeddings averaged per second.

The video is decoded as a stream: memory holds the current second's frames, never the video. A
last, partial second is filled by repeating its last frame; a video shorter than one second gives
one row. Files: ``OUT/<name>.npy`` (seconds × dim, float32), written atomically; existing ones are
skipped, so a stopped run resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..modalities.image import MAX_RESIZED_PIXELS
from ..modalities.video import MAX_SECONDS, VideoReadError, _open_video


# Seconds between two consecutive frames beyond which a file's timestamps are not believed: a still
# screen recording still keys a frame every few seconds, a broken timescale claims minutes.
MAX_FRAME_GAP = 60


def _crop_geometry(path: Path, w: int, h: int, size: int) -> tuple[int, int, int, int]:
    """(resized width, height, crop left, top) for frames of w × h: short side to ``size``, centre crop."""
    from ..modalities.video import MAX_PIXELS

    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        raise VideoReadError(f"{path}: frames of {w}×{h} pixels (the limit is {MAX_PIXELS / 1e6:g} M)")
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    if new_w * new_h > MAX_RESIZED_PIXELS:  # a tall strip grows along its long side when its short side is resized
        raise VideoReadError(f"{path}: frames of {w}×{h} pixels would be {new_w}×{new_h} at {size} px: too thin "
                             f"(more than {MAX_RESIZED_PIXELS / 1e6:g} M pixels)")
    return new_w, new_h, (new_w - size) // 2, (new_h - size) // 2


def video_seconds(path: str | Path, fps: int, size: int, max_seconds: float = MAX_SECONDS) -> Iterator[np.ndarray]:
    """uint8 [fps, size, size, 3] per second of the video at ``path``: the frame shown at each
    instant k / fps (the last one decoded at or before it), short side resized to ``size``, centre
    cropped. Refuses what :func:`~polymodal.modalities.video._open_video` refuses (frame size, a
    duration over ``max_seconds`` in the metadata) with :class:`VideoReadError`, and stops with one
    when the frames themselves run past ``max_seconds`` (a stream with no or false duration)."""
    path = Path(path)
    container, stream = _open_video(path, max_seconds)
    geometry = None  # from the first decoded frame: a raw stream's header may not know its size
    second: list[np.ndarray] = []
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= 60 or not 16 <= size <= 1024:
        raise ValueError(f"frames are sampled at 1–60 fps and 16–1024 px, got {fps!r} fps, {size!r} px")
    step = Fraction(1, fps)
    next_t, shown, start, last_t = Fraction(0), None, None, Fraction(0)
    try:
        with container:
            for frame in container.decode(stream):
                t = Fraction(frame.pts * stream.time_base) if frame.pts is not None else None
                if t is not None:
                    start = t if start is None else start
                    t -= start  # the first frame is time 0 (containers may start later)
                else:
                    t = next_t
                if t > max_seconds:
                    raise VideoReadError(f"{path}: the frames run past the {max_seconds:g} s limit "
                                         "(the file's metadata did not say so)")
                if t - last_t > MAX_FRAME_GAP:  # a bogus timescale: 3 frames claiming 2,049 s
                    raise VideoReadError(f"{path}: the frame times jump from {float(last_t):.1f} s to {float(t):.1f} s "
                                         f"with no frame between (over {MAX_FRAME_GAP} s): its timestamps are not "
                                         "to be trusted")
                last_t = t
                # every instant before this frame's time shows the previous frame
                while shown is not None and next_t < t:
                    second.append(shown)
                    next_t += step
                    if len(second) == fps:
                        yield np.stack(second)
                        second = []
                if geometry is None:
                    geometry = _crop_geometry(path, frame.width, frame.height, size)
                new_w, new_h, left, top = geometry
                rgb = frame.reformat(width=new_w, height=new_h, format="rgb24").to_ndarray()
                shown = rgb[top:top + size, left:left + size].copy()  # a view would keep the whole frame alive
                if next_t == t:
                    second.append(shown)
                    next_t += step
                    if len(second) == fps:
                        yield np.stack(second)
                        second = []
    except VideoReadError:
        raise
    except Exception as e:  # av.error.* mid-stream
        raise VideoReadError(f"{path}: not a decodable video ({e})") from e
    if shown is None:
        raise VideoReadError(f"{path}: the video has no frames")
    if second or next_t == 0:
        second += [shown] * (fps - len(second))
        yield np.stack(second)


BACKBONE_FILE = "backbone.json"  # beside the .npy files: which backbone made them


@dataclass
class Backbone:
    """``embed(seconds uint8 [S, fps, size, size, 3]) → [S, dim]`` at ``fps`` frames per second;
    ``weights``: the file or folder it was loaded from."""
    name: str
    fps: int
    size: int
    dim: int
    embed: Callable[[np.ndarray], torch.Tensor]
    weights: str = ""


def s3d_backbone(model, fps: int = 30, size: int = 224, bf16: bool = False) -> Backbone:
    """S3D-G: each second [fps, size, size, 3] → its L2-normalised ``video_embedding``. The model runs
    channels-last (NDHWC: oneDNN's fast 3-D convolutions, 1.6× fp32 on 2 cores; benchmarks/s3d.py),
    in bf16 weights when ``bf16`` (≈ 3× fp32 on CPUs with AVX512-BF16/AMX); embeddings come back fp32."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = model.eval().to(dtype=dtype, memory_format=torch.channels_last_3d)

    @torch.no_grad()
    def embed(seconds: np.ndarray) -> torch.Tensor:
        video = torch.from_numpy(seconds).permute(0, 4, 1, 2, 3).to(dtype) / 255.0  # [S, 3, T, H, W]
        video = video.contiguous(memory_format=torch.channels_last_3d)
        return F.normalize(model(video)["video_embedding"].float(), dim=-1)

    return Backbone("s3d", fps, size, model.config.embed_dim, embed)


def image_tower_backbone(embedder, fps: int = 2) -> Backbone:
    """A polymodal model's image tower (``Embedder``): each frame embedded, the embeddings of a second averaged."""
    transform = embedder.transform
    size = transform.size

    @torch.no_grad()
    def embed(seconds: np.ndarray) -> torch.Tensor:
        from PIL import Image

        s, t = seconds.shape[:2]
        pixels = torch.stack([transform(Image.fromarray(f)) for f in seconds.reshape(s * t, *seconds.shape[2:])])
        return embedder.embed("image", pixels).view(s, t, -1).mean(dim=1)

    return Backbone("clip", fps, size, embedder.dim, embed, str(Path(embedder.model_dir).resolve()) if embedder.model_dir else "")


def video_features(path: str | Path, backbone: Backbone, batch: int = 8, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """[seconds, dim] float32 features of one video, ``batch`` seconds per backbone call; videos
    longer than ``max_seconds`` are refused (:func:`video_seconds`)."""
    rows, pending = [], []
    for second in video_seconds(path, backbone.fps, backbone.size, max_seconds):
        pending.append(second)
        if len(pending) == batch:
            rows.append(backbone.embed(np.stack(pending)))
            pending = []
    if pending:
        rows.append(backbone.embed(np.stack(pending)))
    return torch.cat(rows).float().numpy()


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def extract_folder(videos: list[Path], out: Path, backbone: Backbone, report: Callable[[str], None] = print,
                   batch: int = 8, max_seconds: float = MAX_SECONDS) -> dict[str, int]:
    """Features of every video into ``out/<name>.npy``: existing files are skipped, a bad video is
    reported and the rest carry on. Returns counts {"done", "skipped", "failed"}."""
    from ..fileio import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    spec = {"backbone": backbone.name, "weights": backbone.weights, "fps": backbone.fps, "size": backbone.size,
            "dim": backbone.dim}
    record = out / BACKBONE_FILE
    if record.is_file() and json.loads(record.read_text()) != spec:
        raise ValueError(f"{out} holds features of another backbone ({record.read_text().strip()}); "
                         "write these to another folder")
    record.write_text(json.dumps(spec) + "\n")
    counts = {"done": 0, "skipped": 0, "failed": 0}
    names = [Path(v).stem for v in videos]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"several videos would write the same feature file: {clashes[:5]}")
    for video, name in zip(videos, names):
        target = out / f"{name}.npy"
        if target.is_file():
            counts["skipped"] += 1
            continue
        try:
            feats = video_features(video, backbone, batch, max_seconds)
        except VideoReadError as e:
            report(f"skipped {video}: {e}")
            counts["failed"] += 1
            continue
        atomic_write(target, lambda tmp, a=feats: _save_npy(tmp, a))
        counts["done"] += 1
        report(f"{video}: {feats.shape[0]} s × {feats.shape[1]}")
    return counts
