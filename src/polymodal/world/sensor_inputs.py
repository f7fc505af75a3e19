"""World sensor readings as ImageBind encoder inputs: the fixed scalings the world recipe trains
with. Training applies them here (``train.binding_data``); a bound model saves them as its
:class:`~polymodal.modalities.processor.Processor`, so that its files are embedded alike."""

from __future__ import annotations

import torch

import dataclasses

from ..modalities.audio import fbank_clip
from ..modalities.image import CLIP_MEAN, CLIP_STD
from ..modalities.processor import IMUProcessing, MapProcessing, Processor

SENSORS = ("audio", "depth", "thermal", "imu")
# Fixed input scalings for the world's sensors (chosen once from the generator's ranges so each
# input is roughly zero-mean, unit-range): disparity of 1–20 m, 4–65 °C, accelerometer minus gravity.
DEPTH = MapProcessing(disparity=True, mean=0.25, std=0.25)
THERMAL = MapProcessing(mean=25.0, std=15.0)
IMU = IMUProcessing(gravity=9.81, gyro_scale=3.0)
VIDEO_FRAMES = 8  # → 4 clips of 2 frames, IMU of 100 samples


def world_processor(config) -> Processor:
    """An ImageBind config's official processing with the world's sensor scalings."""
    from ..models.imagebind import official_processor

    p = official_processor(config)
    replace = dataclasses.replace
    return replace(p, depth=p.depth and replace(DEPTH, size=p.depth.size),
                   thermal=p.thermal and replace(THERMAL, size=p.thermal.size),
                   imu=p.imu and replace(IMU, length=p.imu.length))


def world_sensor_input(modality: str, item: dict, audio_frames: int) -> torch.Tensor:
    """One world sample's raw sensor reading → the encoder's input tensor (unbatched)."""
    if modality == "audio":
        return fbank_clip(item["audio"], audio_frames)  # [1, 128, frames]
    if modality == "depth":
        return DEPTH(item["depth"])  # [1, S, S]
    if modality == "thermal":
        return THERMAL(item["thermal"])
    if modality == "imu":
        return IMU(item["imu"])  # [6, T]
    raise ValueError(f"unknown sensor modality {modality!r}; known: {', '.join(SENSORS)}")


def video_clips_of(frames: torch.Tensor, frames_per_clip: int = 2) -> torch.Tensor:
    """uint8 frames [T, 3, S, S] → normalised clips [T / k, 3, k, S, S] (consecutive frames)."""
    t = frames.shape[0] - frames.shape[0] % frames_per_clip
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (frames[:t].float() / 255.0 - mean) / std  # [T, 3, S, S]
    return x.view(t // frames_per_clip, frames_per_clip, *x.shape[1:]).transpose(1, 2)
