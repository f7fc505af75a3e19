"""Region features for users with only pictures: RoI-align over an image tower's patch grid.

    image ──transform──▶ tower.forward_features ──▶ patch tokens [D, g, g] ──RoI-align(box)──▶ mean ──▶ [D]

Boxes are in the original image's pixels (a detector's, the world's regions, or a box file); they
follow the image through the tower's resize and centre crop. A box that falls outside the crop
keeps what little of it remains (the samples outside are zeros), so check the crop for wide images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.regions import MAX_REGIONS, Regions
from ..layers.roi_align import roi_align
from ..modalities.image import ImageReadError, ImageTransform, load_image, to_rgb


class RegionExtractor:
    """``extractor(image, boxes [R, 4]) → Regions`` with features [R, width] from ``tower``'s final
    patch tokens (a ViT-style :class:`~polymodal.models.modality_transformer.ModalityTransformer`
    whose stem makes a square grid)."""

    def __init__(self, tower, transform: ImageTransform, output_size: tuple[int, int] = (2, 2),
                 sampling_ratio: int = 2):
        self.tower, self.transform = tower.eval(), transform
        self.output_size, self.sampling_ratio = output_size, sampling_ratio
        grid = tower.num_tokens ** 0.5
        if grid != int(grid):
            raise ValueError(f"the tower makes {tower.num_tokens} tokens, not a square grid")
        self.grid = int(grid)

    def crop_boxes(self, boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Boxes [R, 4] in the original image → the same boxes in the transformed [size, size] image."""
        size = self.transform.size
        resize = self.transform.resize_size or size
        scale = resize / min(width, height)
        new_w, new_h = int(resize * width / min(width, height)), int(resize * height / min(width, height))
        if min(width, height) == resize:
            scale, new_w, new_h = 1.0, width, height
        left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
        return boxes * scale - torch.tensor([left, top, left, top], dtype=boxes.dtype)

    def __call__(self, image: Image.Image, boxes: torch.Tensor) -> Regions:
        return self.many([image], [boxes])[0]

    def each(self, images: list[Image.Image], boxes: list[torch.Tensor]) -> list[Regions | str]:
        """:meth:`many`, where one picture that cannot be read (a thin strip, bad boxes) costs only itself:
        its place holds the reason instead."""
        try:
            return self.many(images, boxes)
        except (ValueError, RuntimeError):
            out = []
            for image, b in zip(images, boxes):
                try:
                    out.append(self.many([image], [b])[0])
                except (ValueError, RuntimeError) as e:
                    out.append(str(e))
            return out

    @torch.no_grad()
    def many(self, images: list[Image.Image], boxes: list[torch.Tensor]) -> list[Regions]:
        """Each picture's regions [R_i, width] for its boxes [R_i, 4] (pixels), through the tower in one
        batch."""
        for b in boxes:
            if b.dim() != 2 or b.shape[1] != 4 or len(b) == 0:
                raise ValueError(f"expected boxes [R ≥ 1, 4] (x0, y0, x1, y1 pixels), got {tuple(b.shape)}")
            if len(b) > MAX_REGIONS:  # checked before RoI-align allocates per box
                raise ValueError(f"{len(b)} boxes: more than the {MAX_REGIONS} regions a picture may have")
            if not bool(torch.isfinite(b).all()):
                raise ValueError("boxes hold NaN or infinite values")
        images = [to_rgb(im) if im.mode != "RGB" else im for im in images]
        pixels = torch.stack([self.transform(im) for im in images])
        tokens = self.tower.forward_features(pixels)[:, 1:]  # [B, g·g, D], CLS dropped
        fmap = tokens.transpose(1, 2).reshape(len(images), -1, self.grid, self.grid)
        cropped = torch.cat([self.crop_boxes(b.float(), *im.size) for b, im in zip(boxes, images)])
        which = torch.cat([torch.full((len(b),), i, dtype=torch.long) for i, b in enumerate(boxes)])
        pooled = roi_align(fmap, cropped, which, self.output_size, spatial_scale=self.grid / self.transform.size,
                           sampling_ratio=self.sampling_ratio).mean(dim=(2, 3))
        parts = pooled.split([len(b) for b in boxes])
        return [Regions(b.float(), f, *im.size) for b, f, im in zip(boxes, parts, images)]


def read_box_table(path: Path) -> dict:
    """A JSON object mapping image file names to lists of [x0, y0, x1, y1] pixel boxes."""
    table = json.loads(Path(path).read_text())
    if not isinstance(table, dict):
        raise ValueError("expected an object mapping image file names to lists of boxes")
    return table


def write_region_files(extractor: RegionExtractor, images: list[Path], table: dict, out: Path,
                       source: str = "the box table", batch: int = 16) -> tuple[int, list[str]]:
    """``out/NAME.npz`` (boxes, features, image_w, image_h: what
    :func:`polymodal.data.regions.read_npz` reads) for each image with its boxes in ``table``, ``batch``
    pictures through the tower at a time: (how many were written, "file: reason" for each that was not)."""
    out.mkdir(parents=True, exist_ok=True)
    failed, written = [], 0
    for start in range(0, len(images), batch):
        ready = []
        for path in images[start:start + batch]:
            try:
                if path.name not in table:
                    raise ValueError(f"no boxes for {path.name} in {source}")
                box = torch.tensor(table[path.name], dtype=torch.float32)
                box = box.reshape(-1, 4) if box.numel() else box
                if box.dim() != 2 or box.shape[1] != 4 or len(box) == 0:
                    raise ValueError(f"expected boxes [R ≥ 1, 4] (x0, y0, x1, y1 pixels), got {tuple(box.shape)}")
                ready.append((path, load_image(path), box))
            except (ImageReadError, OSError, ValueError, TypeError, RuntimeError) as e:
                failed.append(f"{path}: {e}")
        if not ready:
            continue
        for (path, _, _), r in zip(ready, extractor.each([im for _, im, _ in ready], [b for _, _, b in ready])):
            if isinstance(r, str):
                failed.append(f"{path}: {r}")
                continue
            try:
                np.savez(out / f"{path.stem}.npz", boxes=r.boxes.numpy(), features=r.features.numpy(),
                         image_w=r.image_w, image_h=r.image_h)
                written += 1
            except OSError as e:
                failed.append(f"{path}: {e}")
    return written, failed
