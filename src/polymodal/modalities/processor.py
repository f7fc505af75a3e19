"""How files of each modality become a model's inputs — saved beside the model as
``processor_config.json``, so that a model folder needs nothing from elsewhere to embed files.

One small config per modality, each holding the numbers its normaliser needs:

* image — size, mean/std (CLIP's by default), resize side;
* audio — sample rate, mel bins, frames per clip, clips per file (ImageBind's fbank);
* depth / thermal — map size, optional depth → disparity, mean/std;
* imu — samples, gravity removed from the vertical accelerometer, gyroscope scale;
* video — clips per file and frames per clip.

A family provides its official processing (``register_family(..., processor=...)``); a recipe
that trains with other scalings (the world's sensors) saves its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..registry import dataclass_from_dict, dataclass_to_dict, register_config
from .image import CLIP_MEAN, CLIP_STD, ImageTransform
from .maps import depth_to_disparity, resize_map

FILE = "processor_config.json"
HF_FILE = "preprocessor_config.json"  # a Hugging Face image processor's: image_mean / image_std / size


@register_config("image-processing")
@dataclass
class ImageProcessing:
    size: int = 224
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    resize_size: int | None = None  # shorter side before the centre crop (default: size)

    def transform(self) -> ImageTransform:
        return ImageTransform(self.size, tuple(self.mean), tuple(self.std), self.resize_size)


@register_config("audio-processing")
@dataclass
class AudioProcessing:
    sample_rate: int = 16_000
    mel_bins: int = 128
    frames: int = 204  # fbank frames per clip (10 ms apart)
    clips: int = 3  # clips per file, equally spaced, their embeddings averaged

    @property
    def clip_seconds(self) -> float:
        """The span of ``frames`` fbank frames (25 ms windows every 10 ms)."""
        return ((self.frames - 1) * self.sample_rate // 100 + self.sample_rate // 40) / self.sample_rate


@register_config("map-processing")
@dataclass
class MapProcessing:
    """Depth or thermal: resize to ``size``, optionally metres → disparity, then (x − mean) / std."""

    size: int = 224
    disparity: bool = False
    mean: float = 0.0
    std: float = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A raw map [H, W] (or [1, S, S] already resized) → the encoder's input [1, size, size]."""
        if x.dim() == 2:
            x = resize_map(x, self.size)
        if self.disparity:
            x = depth_to_disparity(x)
        return (x - self.mean) / self.std


@register_config("imu-processing")
@dataclass
class IMUProcessing:
    """[6, T] accelerometer (m/s²) + gyroscope (rad/s): ``gravity`` is removed from the vertical
    accelerometer (channel 2) and the gyroscope multiplied by ``gyro_scale``."""

    length: int = 2000
    gravity: float = 0.0
    gyro_scale: float = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[2] -= self.gravity
        x[3:] *= self.gyro_scale
        return x


@register_config("video-processing")
@dataclass
class VideoProcessing:
    clips: int = 4  # clips per file, equally spaced, their embeddings averaged
    frames_per_clip: int = 2


@register_config("processor")
@dataclass
class Processor:
    """Per-modality processing of one model; a modality the model lacks is None."""

    image: ImageProcessing | None = field(default_factory=ImageProcessing)
    audio: AudioProcessing | None = None
    depth: MapProcessing | None = None
    thermal: MapProcessing | None = None
    imu: IMUProcessing | None = None
    video: VideoProcessing | None = None

    def save(self, folder: str | Path) -> Path:
        from ..fileio import atomic_write

        target = Path(folder) / FILE
        text = json.dumps({"version": 1, **dataclass_to_dict(self)}, indent=1)
        atomic_write(target, lambda p: Path(p).write_text(text))
        return target

    @classmethod
    def load(cls, folder: str | Path) -> "Processor | None":
        """The processor saved in ``folder``; None when there is none."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        d.pop("version", None)
        return dataclass_from_dict(cls, d, str(path))


def hf_image_processing(folder: str | Path, default: ImageProcessing) -> ImageProcessing:
    """``default`` with the mean/std of a Hugging Face ``preprocessor_config.json`` in ``folder``, if any."""
    path = Path(folder) / HF_FILE
    if not path.is_file():
        return default
    cfg = json.loads(path.read_text())
    return ImageProcessing(default.size, tuple(cfg.get("image_mean", default.mean)),
                           tuple(cfg.get("image_std", default.std)), default.resize_size)


def processor_for(model, folder: str | Path | None = None) -> Processor:
    """The processing of ``model``: saved in ``folder``, else its family's official processing
    (image statistics from a HF ``preprocessor_config.json`` when there is one)."""
    from ..registry import family

    saved = Processor.load(folder) if folder is not None else None
    if saved is not None:
        return saved
    fam = family(model.config)
    if fam.processor is None:
        raise ValueError(f"family {fam.name!r} declares no processor; it cannot embed files")
    processor = fam.processor(model.config)
    if folder is not None and processor.image is not None:
        processor.image = hf_image_processing(folder, processor.image)
    return processor
