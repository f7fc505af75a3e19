"""World scenes for ImageBind's binding stage: each sensor modality as its encoder's input, and
the frozen embeddings it binds to (the scene's image, its video clip, its captions, its narration).

Everything frozen is embedded once here, so a binding step runs only the encoder being trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.world import WorldDataset
from ..data.world.scene import Scene
from ..modalities.audio import fbank_clip
from ..modalities.maps import depth_to_disparity
from ..modalities.text import TextTokenizer
from ..models.imagebind import ImageBind
from .data import normalize

SENSORS = ("audio", "depth", "thermal", "imu")
# Fixed input scalings for the world's sensors (chosen once from the generator's ranges so each
# input is roughly zero-mean, unit-range): disparity of 1–20 m, 4–65 °C, accelerometer minus gravity.
DISPARITY_MEAN, DISPARITY_STD = 0.25, 0.25
THERMAL_MEAN, THERMAL_STD = 25.0, 15.0
GRAVITY = 9.81
GYRO_SCALE = 3.0
VIDEO_FRAMES = 8  # → 4 clips of 2 frames, IMU of 100 samples


def world_sensor_input(modality: str, item: dict, audio_frames: int) -> torch.Tensor:
    """One world sample's raw sensor reading → the encoder's input tensor (unbatched)."""
    if modality == "audio":
        return fbank_clip(item["audio"], audio_frames)  # [1, 128, frames]
    if modality == "depth":
        return (depth_to_disparity(item["depth"]) - DISPARITY_MEAN) / DISPARITY_STD  # [1, S, S]
    if modality == "thermal":
        return (item["thermal"] - THERMAL_MEAN) / THERMAL_STD
    if modality == "imu":
        x = item["imu"].clone()  # [6, T]
        x[2] -= GRAVITY
        x[3:] *= GYRO_SCALE
        return x
    raise ValueError(f"unknown sensor modality {modality!r}; known: {', '.join(SENSORS)}")


def video_clips_of(frames: torch.Tensor, frames_per_clip: int = 2) -> torch.Tensor:
    """uint8 frames [T, 3, S, S] → normalised clips [T / k, 3, k, S, S] (consecutive frames)."""
    t = frames.shape[0] - frames.shape[0] % frames_per_clip
    x = normalize(frames[:t])  # [T, 3, S, S]
    return x.view(t // frames_per_clip, frames_per_clip, *x.shape[1:]).transpose(1, 2)


@dataclass
class BindingData:
    """``n`` scenes: sensor inputs [n, ...] per modality and frozen, L2-normalised targets."""

    inputs: dict[str, torch.Tensor]
    image: torch.Tensor  # [n, E] image embeddings
    video: torch.Tensor  # [n, E] video-clip embeddings (the image tower's multi-frame path)
    captions: torch.Tensor  # [n, P, E] caption-paraphrase embeddings
    narration: torch.Tensor  # [n, E] embedding of the clip's narration (what the camera/objects do)
    scenes: list[Scene] = field(default_factory=list)
    caption_texts: list[list[str]] = field(default_factory=list)
    pan: torch.Tensor | None = None  # [n] camera pan direction: -1 left, 0 still, +1 right

    def __len__(self) -> int:
        return len(self.scenes)


@torch.no_grad()
def embed_texts(model: ImageBind, tokenizer: TextTokenizer, texts: list[str], batch: int = 256) -> torch.Tensor:
    """Texts → [N, E] L2-normalised text embeddings."""
    out = []
    for i in range(0, len(texts), batch):
        enc = tokenizer(texts[i:i + batch], truncate=True)
        out.append(F.normalize(model.encode("text", enc.ids, enc.attention_mask, postprocess=False), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def _embed(model: ImageBind, modality: str, x: torch.Tensor) -> torch.Tensor:
    return F.normalize(model.encode(modality, x, postprocess=False), dim=-1)


def _collate(items: list[dict]) -> list[dict]:
    return items


@torch.no_grad()
def prepare(model: ImageBind, tokenizer: TextTokenizer, split: str, n: int, seed: int = 0,
            modalities: tuple[str, ...] = SENSORS, workers: int = 0, batch: int = 64,
            progress=None) -> BindingData:
    """Render ``n`` scenes of ``split`` and embed the frozen targets with ``model``'s vision and text
    encoders. ``progress(done, total)`` is called after each batch."""
    c = model.config
    wants = {"image", "caption", "video", "imu"} | set(modalities)
    dataset = WorldDataset(split, n, seed, image_size=c.image_size, modalities=tuple(sorted(wants)),
                           frames=VIDEO_FRAMES, audio_seconds=1.0)
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=_collate)
    inputs: dict[str, list] = {m: [] for m in modalities}
    image, video, scenes, captions, narration, pan = [], [], [], [], [], []
    was_training = model.training
    model.eval()
    for items in loader:
        for m in modalities:
            inputs[m].append(torch.stack([world_sensor_input(m, it, c.audio_frames) for it in items]))
        image.append(_embed(model, "vision", normalize(torch.stack([it["image"] for it in items]))))
        clips = torch.stack([video_clips_of(it["video"], c.video_frames) for it in items])  # [b, S, 3, k, H, W]
        video.append(_embed(model, "vision", clips))
        for it in items:
            scenes.append(it["scene"])
            captions.append(it["captions"])
            narration.append(". ".join(seg["text"] for seg in it["narration"]) or "nothing moves")
            pan.append(_pan_direction(it["narration"]))
        if progress is not None:
            progress(len(scenes), n)
    model.train(was_training)
    p = len(captions[0])
    cap = embed_texts(model, tokenizer, [t for row in captions for t in row]).view(n, p, -1)
    return BindingData(
        inputs={m: torch.cat(v) for m, v in inputs.items()}, image=torch.cat(image), video=torch.cat(video),
        captions=cap, narration=embed_texts(model, tokenizer, narration), scenes=scenes, caption_texts=captions,
        pan=torch.tensor(pan))


def _pan_direction(narration: list[dict]) -> int:
    for seg in narration:
        if seg["text"].startswith("the camera pans"):
            return 1 if seg["text"].endswith("right") else -1
    return 0
