"""``data.kind=coco_captions``: captioned pictures in COCO's layout, for the region models'
pretraining — ``mlm_itm`` (VisualBERT) and ``masked_multimodal`` (ViLBERT).

    data.path / data.val_path            captions_train2017.json / captions_val2017.json
    data.images / data.val_images        the folders their ``file_name``s are in
    data.instances / data.val_instances  optional: instances_*.json — object boxes (the regions with
                                         ``data.boxes=truth``) and classes

ViLBERT's masked regions regress a class distribution per region: the one the region files carry
(MMF ``cls_prob``, ``.npz`` ``class_probs``), or else the COCO class of the annotated object the
region overlaps by IoU ≥ 0.5 (class 0, "background": none). With the instances, evaluation also fills
in every masked object word (the COCO class names) with and without the regions.
"""

from __future__ import annotations

import torch

from ...data.coco import read_coco_captions, read_coco_instances
from ...data.image_files import file_inside
from ...eval.metrics import box_iou
from ..config import ConfigError
from ..data import tokenize_all
from ..region_data import RegionCaptions
from ..region_task_data import IOU
from ..user_regions import Picture, picture_regions
from . import Source, register_source
from .region_files import REGION_SETTINGS, images_folder, split_setting

CAPTIONS = 5  # per picture (COCO gives 5–7): the first five, repeated where there are fewer


def _instances(kind, split: str):
    path = split_setting(kind, split, "instances", needed=False)
    if path is None:
        return None, {}, []
    images, objects, problems = read_coco_instances(path)
    return path, objects, problems


def class_targets(boxes: torch.Tensor, mask: torch.Tensor, objects: list, classes: list[str]) -> torch.Tensor:
    """Regions [N, R, 4] (mask [N, R]) of pictures with annotated ``objects`` (per picture a
    :class:`~polymodal.data.coco.CocoObjects` or None) → one-hot targets [N, R, 1 + C]: the class of the
    object a region overlaps by IoU ≥ 0.5, else 0 (background)."""
    index = {c: i + 1 for i, c in enumerate(classes)}
    out = torch.zeros(*boxes.shape[:2], 1 + len(classes))
    out[..., 0] = 1.0
    for n, found in enumerate(objects):
        if found is None or not found.boxes:
            continue
        iou = box_iou(boxes[n], torch.tensor(found.boxes))  # [R, K]
        best, which = iou.max(dim=1)
        for r in range(boxes.shape[1]):
            name = found.names[int(which[r])]
            if mask[n, r] and best[r] >= IOU and name in index:
                out[n, r] = 0.0
                out[n, r, index[name]] = 1.0
    return out * mask[..., None]


def coco_region_captions(kind, split: str, with_classes: bool = False) -> RegionCaptions | None:
    path = split_setting(kind, split, "path")
    if path is None:
        return None
    images, problems = read_coco_captions(path)
    folder = images_folder(kind, split)
    if folder is None and not kind.cfg.data.regions:
        raise ConfigError(f"data.kind coco_captions needs data.images (the folder of {path}'s pictures) or data.regions")
    instances, objects, more = _instances(kind, split)
    problems += more
    if split == "train" and not hasattr(kind, "_coco_classes"):  # the training classes, from the file just read
        kind._coco_classes = sorted({n for o in objects.values() for n in o.names})
    pictures = []
    for im in images:
        where = f"{path}: image {im.id}"
        try:
            file = file_inside(folder, im.file_name, where) if folder else None
        except ValueError as e:  # reported as a picture without regions, unless data.regions has it
            file, where = None, str(e)
        found = objects.get(im.id)
        boxes = torch.tensor(found.boxes).reshape(-1, 4) if found is not None and found.boxes else None
        pictures.append(Picture(str(im.id), file, boxes, where))
    regions = picture_regions(kind, pictures, split)
    kind.report_skipped(problems + regions.problems, split)
    kept = [images[i] for i in regions.kept]
    texts = [[im.captions[k % len(im.captions)] for k in range(CAPTIONS)] for im in kept]
    f = regions.features
    data = RegionCaptions(f.features, f.mask, f.locations(), *tokenize_all(texts, kind.tokenizer), texts)
    classes = coco_classes(kind)
    if classes:
        data.word_groups = {"object": classes}
    if with_classes:
        data.region_targets, data.metrics = _targets(kind, f, [objects.get(im.id) for im in kept], classes, instances)
    return data


def coco_classes(kind) -> list[str]:
    """The class names of the training instances (fixed for the run, so validation targets line up)."""
    if not hasattr(kind, "_coco_classes"):
        d = kind.cfg.data
        kind._coco_classes = sorted({n for o in read_coco_instances(d.instances)[1].values() for n in o.names}) \
            if d.instances else []
    return kind._coco_classes


def _targets(kind, f, objects: list, classes: list[str], instances) -> tuple[torch.Tensor, dict]:
    if f.class_probs is not None:
        return f.class_probs, {}
    if instances is None:
        raise ConfigError("objective.kind masked_multimodal needs each region's class distribution: region files that "
                          "carry one (data.regions: MMF cls_prob, .npz class_probs) or data.instances (COCO "
                          "instances.json) to label the regions by the objects they cover")
    targets = class_targets(f.boxes, f.mask, objects, classes)
    top = targets.argmax(-1)[f.mask.bool()]
    objects_only = top[top > 0]
    majority = torch.bincount(objects_only).max().item() / len(objects_only) if len(objects_only) else 0.0
    return targets, {"masked_region_majority_baseline": majority,
                     "regions_on_an_object": len(objects_only) / max(len(top), 1)}


register_source(Source("coco_captions", "region_captions", coco_region_captions,
                       ("path", "val_path", "images", "val_images", "instances", "val_instances", *REGION_SETTINGS),
                       about="COCO captions JSON (+ instances) about your pictures"))
register_source(Source("coco_captions", "region_captions_with_classes",
                       lambda kind, split: coco_region_captions(kind, split, with_classes=True),
                       ("path", "val_path", "images", "val_images", "instances", "val_instances", *REGION_SETTINGS),
                       about="COCO captions JSON + instances (region classes) about your pictures"))
