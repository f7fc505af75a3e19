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


class VideoReadError(ValueError):
    """A video file could not be decoded or holds no frames; the message names the file."""


def load_video_frames(path: str | Path, max_frames: int = 512) -> np.ndarray:
    """Decode the first video stream: uint8 [N, H, W, 3] (at most ``max_frames`` frames, evenly
    thinned when the video is longer, so memory stays bounded)."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except VideoReadError:
        raise
    except Exception as e:  # av.error.* for corrupt or non-video files
        raise VideoReadError(f"{path}: not a decodable video ({e})") from e
    if not frames:
        raise VideoReadError(f"{path}: the video has no frames")
    if len(frames) > max_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    return np.stack(frames)


def clip_frame_indices(num_frames: int, clips: int, frames_per_clip: int) -> np.ndarray:
    """[clips, frames_per_clip] frame indices: ``clips`` equal segments of the video, each sampled
    uniformly (ImageBind's constant-clips sampler + uniform temporal subsampling); short videos
    repeat frames rather than fail."""
    bounds = np.linspace(0, num_frames, clips + 1)
    out = [np.linspace(bounds[c], max(bounds[c + 1] - 1, bounds[c]), frames_per_clip) for c in range(clips)]
    return np.clip(np.round(np.stack(out)).astype(int), 0, num_frames - 1)


def video_clips(frames: np.ndarray | torch.Tensor, clips: int = 5, frames_per_clip: int = 2,
                transform: ImageTransform | None = None) -> torch.Tensor:
    """uint8 frames [N, H, W, 3] → normalised clips [clips, 3, frames_per_clip, size, size]."""
    frames = frames.numpy() if isinstance(frames, torch.Tensor) else frames
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames [N, H, W, 3], got shape {frames.shape}")
    transform = transform or ImageTransform()
    idx = clip_frame_indices(frames.shape[0], clips, frames_per_clip)
    cache: dict[int, torch.Tensor] = {}
    for i in np.unique(idx):
        cache[int(i)] = transform(Image.fromarray(frames[i]))
    return torch.stack([torch.stack([cache[int(i)] for i in row], dim=1) for row in idx])


def load_video(path: str | Path, clips: int = 5, frames_per_clip: int = 2,
               transform: ImageTransform | None = None) -> torch.Tensor:
    """Video file → [clips, 3, frames_per_clip, size, size]."""
    return video_clips(load_video_frames(path), clips, frames_per_clip, transform)


def _read(path: Path, processor) -> torch.Tensor:
    v = processor.video
    return load_video(path, v.clips, v.frames_per_clip, processor.image.transform())  # [clips, 3, T, S, S]


register_modality(Modality("video", encoder="image", sample_dims=4, read=_read, clips=True,
                           processing=("image", "video")))
