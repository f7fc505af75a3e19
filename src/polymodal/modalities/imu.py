"""IMU: 6 channels (accelerometer x/y/z, gyroscope x/y/z) over time, from .npy or .csv, and
ImageBind's stem: non-overlapping windows of ``p`` samples per channel → Linear(6·p → D) → LayerNorm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .registry import Modality, register_modality

IMU_CHANNELS = 6
IMU_EXTENSIONS = (".npy", ".csv")


class IMUReadError(ValueError):
    """An IMU file could not be read or has the wrong shape; the message names the file."""


def load_imu(path: str | Path, length: int | None = None) -> torch.Tensor:
    """Read [6, T] float32 from .npy ([6, T] or [T, 6]) or .csv (T rows of 6 numbers; a header row
    is skipped). With ``length``, T must be at least that and the first ``length`` samples are kept."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMU_EXTENSIONS:
        raise IMUReadError(f"{path}: expected IMU data ({', '.join(IMU_EXTENSIONS)}), got {suffix!r}")
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            text = path.read_text().strip().splitlines()
            if text and any(c.isalpha() for c in text[0].replace("e", "").replace("E", "")):
                text = text[1:]  # header
            arr = np.array([[float(v) for v in line.replace(";", ",").split(",")] for line in text if line.strip()])
    except Exception as e:
        raise IMUReadError(f"{path}: not readable IMU data ({e})") from e
    if arr.ndim == 2 and arr.shape[1] == IMU_CHANNELS and arr.shape[0] != IMU_CHANNELS:
        arr = arr.T
    if arr.ndim != 2 or arr.shape[0] != IMU_CHANNELS:
        raise IMUReadError(f"{path}: expected IMU data [6, T] (accelerometer + gyroscope), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise IMUReadError(f"{path}: IMU data must be finite numbers (found NaN, infinity or {arr.dtype})")
    if length is not None:
        if arr.shape[1] < length:
            raise IMUReadError(f"{path}: {arr.shape[1]} IMU samples, the model needs {length}")
        arr = arr[:, :length]
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


class IMUStem(nn.Module):
    """[B, 6, T] → [B, T/p, D]; token j holds samples [j·p, (j+1)·p) of every channel, flattened
    channel-major (feature index = channel·p + t), as ImageBind's ``unfold`` patchifier does."""

    def __init__(self, dim: int, patch: int = 8, channels: int = IMU_CHANNELS, eps: float = 1e-5):
        super().__init__()
        self.patch, self.channels = patch, channels
        self.proj = nn.Linear(channels * patch, dim, bias=False)
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.channels or x.shape[2] % self.patch:
            raise ValueError(f"expected IMU [B, {self.channels}, T] with T a multiple of {self.patch}, "
                             f"got {tuple(x.shape)}")
        b = x.shape[0]
        x = x.unfold(-1, self.patch, self.patch).permute(0, 2, 1, 3).reshape(b, -1, self.channels * self.patch)
        return self.norm(self.proj(x))


def _stem(c, width: int) -> tuple[nn.Module, int]:
    if c.imu_length % c.imu_patch:
        raise ValueError(f"imu_length {c.imu_length} is not a multiple of imu_patch {c.imu_patch}")
    return IMUStem(width, c.imu_patch), c.imu_length // c.imu_patch


register_modality(Modality("imu", encoder="imu", sample_dims=2, stem=_stem,
                           read=lambda path, processor: processor.imu(load_imu(path, processor.imu.length))))
