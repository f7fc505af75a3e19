"""Image preprocessing without torchvision: any Pillow mode → RGB → resize the shortest side
(bicubic) → centre crop → normalise. Matches torchvision's Resize/CenterCrop/ToTensor/Normalize
on PIL images, as open_clip and HF use them."""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .registry import Modality, register_modality

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# Decoded size is width × height × channels whatever the file's size: a 97 KB PNG can claim 100 M
# pixels. Files above this are refused from their header, before any pixel is decoded.
MAX_PIXELS = 64_000_000
# A thin strip resized by its shorter side grows along the longer: 1 × 100,000 px at 64 px would be
# 64 × 6,400,000. The resized picture may hold at most this many pixels (a 4,000² picture).
MAX_RESIZED_PIXELS = 16_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")  # picture files by name


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file."""


def check_pixels(img: Image.Image, path: str | Path, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an opened (not yet decoded) image whose header claims more than ``max_pixels``."""
    w, h = img.size
    if w * h > max_pixels:
        raise ImageReadError(f"{path}: image of {w}×{h} pixels is over the {max_pixels / 1e6:g} M pixel limit")


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Any Pillow mode → RGB.

    * 16/32-bit greyscale (``I;16*``, ``I``, ``F``) is rescaled from its full range to 8 bits
      (Pillow's own ``convert`` clips it to 255, which whitens most 16-bit images).
    * Modes with transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent index) are
      composited over ``background`` rather than dropping alpha.
    * Everything else (``L``, ``1``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``) via Pillow.
    """
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            top = max(float(arr.max(initial=0)), 1e-12) if arr.max(initial=0) > 1 else 1.0
        grey = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB; raises :class:`ImageReadError` naming the file. Only a regular
    file is opened (a FIFO named like a picture would block the reader for good)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageReadError(f"{path} is not a regular file")
    except OSError as e:
        raise ImageReadError(f"cannot read image {path}: {e.strerror}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixels applies our limit
            img = Image.open(path)
        with img:
            check_pixels(img, path)
            img.load()
            return to_rgb(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own check at open, for twice its limit
        raise ImageReadError(f"{path}: image is over the {MAX_PIXELS / 1e6:g} M pixel limit ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from e


def frame_count(path: str | Path) -> int:
    """How many frames (pages) an image file holds — a multi-page TIFF's pages — from its header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return int(getattr(img, "n_frames", 1))
    except Image.DecompressionBombError:
        return 1  # one picture, too large: reading it says so (load_image's pixel limit)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from None


def image_pages(path: str | Path, max_pages: int):
    """The first ``max_pages`` frames of a multi-page image (a scanned TIFF) as RGB, one at a time,
    each checked against :data:`MAX_PIXELS` from its header before it is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            for number in range(min(int(getattr(img, "n_frames", 1)), max_pages)):
                img.seek(number)
                check_pixels(img, f"{path} page {number + 1}")
                img.load()
                yield to_rgb(img)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from None


@dataclass
class ImageTransform:
    """PIL image → normalised tensor [3, size, size].

    ``resize_size`` defaults to ``size`` (CLIP); ImageNet evaluation uses ``int(size / 0.875)``.
    """

    size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resize_size: int | None = None

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = to_rgb(img) if img.mode != "RGB" else img
        img = resize_shortest(img, self.resize_size or self.size)
        img = center_crop(img, self.size)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std

    def load(self, path: str | Path) -> torch.Tensor:
        """File → [3, size, size]."""
        try:
            return self(load_image(path))
        except ImageReadError as e:
            raise ImageReadError(e.args[0] if str(path) in e.args[0] else f"{path}: {e}") from None


def resize_shortest(img: Image.Image, size: int) -> Image.Image:
    """Bicubic resize so the shorter side is ``size`` (torchvision ``Resize(int)`` rounding); a picture
    whose result would hold more than :data:`MAX_RESIZED_PIXELS` (a thin strip) is refused, before any
    resizing."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short == size:
        return img
    new_long = int(size * long / short)
    if new_long * size > MAX_RESIZED_PIXELS:
        raise ImageReadError(f"a {w}×{h} picture would be {size}×{new_long} px with its shorter side at {size}: "
                             f"too thin (more than {MAX_RESIZED_PIXELS / 1e6:g} M pixels)")
    new = (size, new_long) if w <= h else (new_long, size)
    return img.resize(new, Image.BICUBIC)


def square_uint8(img: Image.Image, size: int) -> torch.Tensor:
    """A picture as training pixels: shorter side resized to ``size``, centre-cropped, uint8 [3, size, size]."""
    rgb = center_crop(resize_shortest(to_rgb(img) if img.mode != "RGB" else img, size), size)
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Centre crop to ``size``×``size`` (pads with black first if the image is smaller)."""
    w, h = img.size
    if w < size or h < size:
        canvas = Image.new("RGB", (max(w, size), max(h, size)))
        canvas.paste(img, ((max(w, size) - w) // 2, (max(h, size) - h) // 2))
        img, (w, h) = canvas, canvas.size
    left = int(round((w - size) / 2.0))
    top = int(round((h - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def _read(path: Path, processor) -> torch.Tensor:
    return processor.image.transform().load(path)  # [3, size, size]


def _stem(c, width: int):
    """ImageBind's image stem: 2-frame tubelets (an image is repeated), or a CLIP's conv stem per frame."""
    from ..layers import ConvStem, FrameStem, VideoPatchEmbed

    if c.image_stem == "conv":
        stem = FrameStem(ConvStem(3, width, tuple(c.image_stem_channels)))
    else:
        stem = VideoPatchEmbed(c.image_patch, c.video_frames, 3, width, bias=False)
    return stem, (c.image_size // c.image_patch) ** 2


register_modality(Modality("image", encoder="image", sample_dims=3, read=_read, stem=_stem))
