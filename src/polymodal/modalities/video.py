"""Video: file (PyAV) → clips of a few frames each → the image tower's multi-frame path.

ImageBind treats a video as ``clips`` short clips of ``frames_per_clip`` frames spread over the
whole video, embeds each clip with the 3-D patch stem (``layers.VideoPatchEmbed``) and averages
the clip embeddings. :func:`video_clips` builds that input, [S, 3, T, H, W], from decoded frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .image import ImageTransform
from .registry import Modality, register_modality

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi")
# Checked from the container's metadata before decoding: a 96 KB file can hold 3,000 frames.
MAX_SECONDS = 3 * 3600
MAX_FRAMES = 200_000
MAX_PIXELS = 4096 * 4096  # per frame


class VideoReadError(ValueError):
    """A video file could not be decoded or holds no frames; the message names the file."""


def _open_video(path: Path, max_seconds: float = MAX_SECONDS):
    """(container, first video stream), after checking frame size and duration (``max_seconds``) from
    metadata. (Metadata can lie or be absent: a reader that decodes the whole stream checks the
    frames' own times too.)"""
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.* for corrupt or non-video files
        raise VideoReadError(f"{path}: not a decodable video ({e})") from e
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{path}: the file has no video stream")
    stream = container.streams.video[0]
    w, h = stream.codec_context.width, stream.codec_context.height
    seconds = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
               else (container.duration or 0) / 1e6)
    problem = (f"frames of {w}×{h} pixels are over the {MAX_PIXELS / 1e6:g} M pixel limit" if w * h > MAX_PIXELS
               else f"{seconds:.0f} s is longer than the {max_seconds:g} s limit" if seconds > max_seconds else None)
    if problem:
        container.close()
        raise VideoReadError(f"{path}: {problem}")
    return container, stream


def count_frames(path: str | Path) -> int:
    """Frames in the first video stream: the container's own count when it has one, else its
    packets, counted without decoding any. Refused past :data:`MAX_FRAMES`. (A count that lies
    costs nothing: decoding stops at the last real frame, and memory holds only sampled ones.)"""
    path = Path(path)
    container, stream = _open_video(path)
    n = 0
    try:
        with container:
            if stream.frames > 0:
                n = stream.frames
            else:
                for packet in container.demux(stream):
                    n += packet.size > 0
                    if n > MAX_FRAMES:
                        break
    except Exception as e:
        raise VideoReadError(f"{path}: not a decodable video ({e})") from e
    if n > MAX_FRAMES:
        raise VideoReadError(f"{path}: more than {MAX_FRAMES} frames")
    if n == 0:
        raise VideoReadError(f"{path}: the video has no frames")
    return n


def load_video_frames(path: str | Path, indices: list[int] | np.ndarray | None = None,
                      max_frames: int = 512, short_side: int | None = None) -> np.ndarray:
    """Decode the frames ``indices`` of the first video stream: uint8 [len(indices), H, W, 3].

    Only the wanted frames are converted and kept, so memory is bounded by them, not by the video;
    ``short_side`` scales each kept frame down (never up) to that shorter side as it is converted.
    Without ``indices``, ``max_frames`` frames spread evenly over the video. An index past the last
    decodable frame (a container whose packet count overstates it) takes the last frame.
    """
    path = Path(path)
    if indices is None:
        n = count_frames(path)
        indices = np.linspace(0, n - 1, min(n, max_frames)).round().astype(int)
    wanted = {int(i) for i in indices}
    frames: dict[int, np.ndarray] = {}
    last = None  # the last frame decoded, for indices past the end
    container, stream = _open_video(path)
    try:
        with container:
            for i, last in enumerate(container.decode(stream)):
                if i in wanted:
                    frames[i] = _rgb(last, short_side)
                if i >= max(wanted):
                    break
    except Exception as e:
        raise VideoReadError(f"{path}: not a decodable video ({e})") from e
    if last is None:
        raise VideoReadError(f"{path}: the video has no frames")
    tail = None if len(frames) == len(wanted) else _rgb(last, short_side)
    return np.stack([frames.get(int(i), tail) for i in indices])


def _rgb(frame, short_side: int | None) -> np.ndarray:
    scale = 1.0 if short_side is None else min(1.0, short_side / min(frame.width, frame.height))
    if scale < 1:
        return frame.to_ndarray(format="rgb24", width=max(1, round(frame.width * scale)),
                                height=max(1, round(frame.height * scale)))
    return frame.to_ndarray(format="rgb24")


def video_seconds(path: str | Path) -> float:
    """The first video stream's duration in seconds, from the container's metadata (0 when unknown)."""
    container, stream = _open_video(Path(path))
    with container:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return (container.duration or 0) / 1e6


def video_moments(path: str | Path, transform: ImageTransform, frames_per_clip: int = 2, seconds: float = 5.0,
                  max_moments: int = 120) -> list[tuple[float, float, torch.Tensor]]:
    """A long video as consecutive moments, each one clip for the image tower's multi-frame path:
    [(start s, end s, clip [1, 3, frames_per_clip, size, size])]. Moments last ``seconds``, longer
    when the video would need more than ``max_moments`` of them; a video shorter than two moments
    gives []: it is one item as a whole. Frames are decoded once and kept small."""
    duration = video_seconds(path)
    if duration < 2 * seconds:
        return []
    count = min(max_moments, int(np.ceil(duration / seconds)))
    n = count_frames(path)
    idx = clip_frame_indices(n, count, frames_per_clip)  # [count, frames_per_clip]
    frames = load_video_frames(path, idx.reshape(-1), short_side=2 * transform.size)
    clips = video_clips(frames, count, frames_per_clip, transform, np.arange(len(frames)).reshape(idx.shape))
    bounds = np.linspace(0, duration, count + 1)
    return [(float(bounds[c]), float(bounds[c + 1]), clips[c:c + 1]) for c in range(count)]


def clip_frame_indices(num_frames: int, clips: int, frames_per_clip: int) -> np.ndarray:
    """[clips, frames_per_clip] frame indices: ``clips`` equal segments of the video, each sampled
    uniformly (ImageBind's constant-clips sampler + uniform temporal subsampling); short videos
    repeat frames rather than fail."""
    bounds = np.linspace(0, num_frames, clips + 1)
    out = [np.linspace(bounds[c], max(bounds[c + 1] - 1, bounds[c]), frames_per_clip) for c in range(clips)]
    return np.clip(np.round(np.stack(out)).astype(int), 0, num_frames - 1)


def video_clips(frames: np.ndarray | torch.Tensor, clips: int = 5, frames_per_clip: int = 2,
                transform: ImageTransform | None = None, indices: np.ndarray | None = None) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] → normalised clips [clips, 3, frames_per_clip, size, size]
    (``indices`` [clips, frames_per_clip] picks the frames; by default :func:`clip_frame_indices`)."""
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames [N, H, W, 3], got shape {frames.shape}")
    transform = transform or ImageTransform()
    idx = clip_frame_indices(frames.shape[0], clips, frames_per_clip) if indices is None else indices
    cache: dict[int, torch.Tensor] = {}
    for i in np.unique(idx):
        cache[int(i)] = transform(Image.fromarray(frames[i]))
    return torch.stack([torch.stack([cache[int(i)] for i in row], dim=1) for row in idx])


def load_video(path: str | Path, clips: int = 5, frames_per_clip: int = 2,
               transform: ImageTransform | None = None) -> torch.Tensor:
    """Video file → [clips, 3, frames_per_clip, size, size], decoding only the sampled frames."""
    idx = clip_frame_indices(count_frames(path), clips, frames_per_clip)
    frames = load_video_frames(path, idx.reshape(-1))  # [clips · frames_per_clip, H, W, 3]
    n = len(frames)
    return video_clips(frames, clips, frames_per_clip, transform, np.arange(n).reshape(idx.shape))


def _read(path: Path, processor) -> torch.Tensor:
    v = processor.video
    return load_video(path, v.clips, v.frames_per_clip, processor.image.transform())  # [clips, 3, T, S, S]


register_modality(Modality("video", encoder="image", sample_dims=4, read=_read, clips=True,
                           processing=("image", "video")))
