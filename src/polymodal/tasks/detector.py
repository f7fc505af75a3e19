"""Pictures → labelled regions with their pooled features, through the bottom-up-attention detector
(:mod:`polymodal.models.frcnn`), and the files that VisualBERT, ViLBERT and MMF code read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..data.region_writers import FORMATS, tsv_row, write_mmf, write_npz
from ..fileio import atomic_write
from ..modalities.image import ImageReadError, load_image
from ..models.frcnn import FasterRCNN, FasterRCNNConfig
from ..models.frcnn_input import prepare_images
from ..models.region_selection import Regions, select_regions
from .draw_boxes import draw_boxes


class Detector:
    """A loaded detector: ``detect(pictures)`` → one :class:`Regions` per picture (boxes in its pixels)."""

    def __init__(self, model: FasterRCNN, batch_size: int = 2):
        if not isinstance(model, FasterRCNN):
            raise ValueError(f"a detector must be a Faster R-CNN (frcnn family), got {type(model).__name__}")
        self.model = model.eval()
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 2, **selection) -> "Detector":
        """The detector at ``path`` (any frcnn layout); ``selection`` overrides its box choice
        (``selection``, ``min_boxes``, ``max_boxes``, ``score_threshold``, ``nms_thresholds``)."""
        from ..weights.files import CheckpointError
        from ..weights.loading import load_checkpoint

        model = load_checkpoint(path)
        if not isinstance(model, FasterRCNN):
            raise CheckpointError(f"{path} holds a {type(model).__name__}, not a detector (frcnn family)")
        overrides = {k: v for k, v in selection.items() if v is not None}
        if overrides:
            model.config = dataclasses.replace(model.config, **overrides)
        return cls(model, batch_size)

    @property
    def config(self) -> FasterRCNNConfig:
        return self.model.config

    def detect(self, pictures: list[Image.Image]) -> list[Regions]:
        out = []
        for start in range(0, len(pictures), self.batch_size):
            tensors = []
            for picture in pictures[start:start + self.batch_size]:
                x = torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32))
                tensors.append(x.flip(-1) if self.config.channel_order == "BGR" else x)
            images, sizes, scales = prepare_images(tensors, self.config)
            with torch.inference_mode():
                out.extend(select_regions(self.config, self.model.run(images, sizes), sizes, scales))
        return out

    def label(self, r: Regions, k: int) -> str:
        """"attribute class" of region k, by name where the folder named them, e.g. "red car"."""
        c = self.config
        name = c.class_names[int(r.classes[k])] if c.class_names else f"class {int(r.classes[k])}"
        if not c.num_attributes:
            return name
        attribute = c.attribute_names[int(r.attributes[k])] if c.attribute_names else f"attr {int(r.attributes[k])}"
        return f"{attribute} {name}"


def detect_files(detector: Detector, images: list[Path], out: Path, fmt: str = "npz", draw: bool = True,
                 on_done: Callable[[int], None] | None = None) -> tuple[list[tuple[Path, Regions]], list[str]]:
    """Detect in every image file and write ``out/NAME.detected.png`` (with ``draw``) and its regions in ``fmt``
    (``npz``: NAME.npz; ``mmf``: NAME.npy + NAME_info.npy; ``tsv``: one row per image in regions.tsv).
    A file that cannot be read or written is reported ("file: reason") and the others go on."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown region format {fmt!r}; use one of {', '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    done, failed, rows, stems = [], [], [], {}
    for start in range(0, len(images), detector.batch_size):
        ready = []
        for path in images[start:start + detector.batch_size]:
            if path.stem in stems:
                failed.append(f"{path}: another image ({stems[path.stem]}) already writes {path.stem}.*")
                continue
            try:
                ready.append((path, load_image(path)))
                stems[path.stem] = path
            except ImageReadError as e:
                failed.append(str(e))
        found = detector.detect([p for _, p in ready]) if ready else []
        for (path, picture), r in zip(ready, found):
            try:
                boxes, features = r.boxes.numpy(), r.features.float().numpy()
                w, h = picture.size
                if draw:
                    draw_boxes(picture, boxes, [detector.label(r, k) for k in range(len(boxes))],
                               out / f"{path.stem}.detected.png")
                if fmt == "npz":
                    write_npz(out / f"{path.stem}.npz", w, h, boxes, features, classes=r.classes.numpy(),
                              scores=r.scores.numpy(), attributes=r.attributes.numpy(),
                              attribute_scores=r.attribute_scores.numpy(), class_probs=r.class_probs.numpy())
                elif fmt == "mmf":
                    write_mmf(out, path.stem, w, h, boxes, features, r.classes.numpy(), r.class_probs.numpy())
                else:
                    rows.append(tsv_row(path.stem, w, h, boxes, features))
                done.append((path, r))
            except (OSError, ValueError) as e:
                failed.append(f"{path}: {e}")
        if on_done is not None:
            on_done(len(images[start:start + detector.batch_size]))
    if rows:
        atomic_write(out / "regions.tsv", lambda tmp: Path(tmp).write_text("".join(rows)))
    return done, failed
