"""World sensor readings as ImageBind encoder inputs: the fixed scalings the world recipe trains
with, shared by training (``train.binding_data``) and by indexing files (``search``)."""

from __future__ import annotations

import torch

from ...modalities.audio import fbank_clip
from ...modalities.image import CLIP_MEAN, CLIP_STD
from ...modalities.maps import depth_to_disparity

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
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (frames[:t].float() / 255.0 - mean) / std  # [T, 3, S, S]
    return x.view(t // frames_per_clip, frames_per_clip, *x.shape[1:]).transpose(1, 2)
