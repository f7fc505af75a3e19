"""The bottom-up-attention Faster R-CNN's checkpoints, in the two layouts they are shared in:

* ``lxmert-frcnn`` — transformers' LXMERT demo (``unc-nlp/frcnn-vg-finetuned``: ``pytorch_model.bin`` +
  ``config.yaml``); its anchors are stored as a parameter (checked against the config, then dropped), its
  batch norms carry ``num_batches_tracked`` (dropped);
* ``detectron2-frcnn-vg`` — detectron2 pickles of the Caffe model (``faster_rcnn_from_caffe_attr.pkl`` of
  py-bottom-up-attention): ``{"model": {name: numpy array}}``, read by the restricted unpickler of
  :mod:`polymodal.weights.files`.

Both name modules as detectron2 does; ours differ only in three prefixes. The architecture is read off
the tensors; thresholds, anchors and input sizes come from ``config.yaml`` when the folder has one (then
boxes are chosen the demo's way, ``fixed``), else the bottom-up-attention defaults. Class and attribute
names come from ``objects_vocab.txt`` / ``attributes_vocab.txt`` (or ``objects.txt`` / ``attributes.txt``)
beside the weights: one per line, synonyms after a comma.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import yaml

from ..models.frcnn import FasterRCNNConfig, cell_anchors
from .files import CheckpointError
from .layout import Layout, register_layout

PREFIXES = {"proposal_generator.rpn_head.": "rpn.", "roi_heads.res5.": "head.res5.",
            "roi_heads.box_predictor.": "head.predictor."}
ANCHORS = "proposal_generator.anchor_generator.cell_anchors.0"
MAX_CONFIG_BYTES = 1 << 20
VOCABULARIES = {"class_names": ("objects_vocab.txt", "objects.txt"),
                "attribute_names": ("attributes_vocab.txt", "attributes.txt")}


def _is_frcnn(keys: set[str]) -> bool:
    return {"backbone.stem.conv1.weight", "proposal_generator.rpn_head.conv.weight",
            "roi_heads.box_predictor.cls_score.weight"} <= keys and "roi_heads.res5.0.conv1.weight" in keys


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        if key.endswith("num_batches_tracked") or key == ANCHORS:
            continue
        for old, new in PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value.float() if value.is_floating_point() else value
    return out


def _blocks(sd: dict, prefix: str) -> int:
    return len({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))})


def _read_yaml(folder: Path | None) -> dict | None:
    file = folder / "config.yaml" if folder is not None else None
    if file is None or not file.is_file():
        return None
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{file} is larger than {MAX_CONFIG_BYTES} bytes; not a detector config")
    try:
        cfg = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{file} does not hold a mapping of settings")
    return cfg


def _names(folder: Path | None, candidates: tuple[str, ...], n: int) -> tuple[str, ...]:
    for name in candidates:
        file = folder / name if folder is not None else None
        if file is not None and file.is_file() and not file.is_symlink():
            if file.stat().st_size > MAX_CONFIG_BYTES:
                raise CheckpointError(f"{file} is larger than {MAX_CONFIG_BYTES} bytes; not a vocabulary")
            names = tuple(line.split(",")[0].strip() for line in file.read_text(errors="replace").splitlines()
                          if line.strip())
            if len(names) == n + 1 and names[0] in ("__background__", "__no_attribute__"):
                names = names[1:]
            if len(names) != n:
                raise CheckpointError(f"{file} names {len(names)} labels; the checkpoint has {n}")
            return names
    return ()


def _from_yaml(cfg: dict, source: str) -> dict:
    """Our settings from the demo's config.yaml (every key the reference reads that we use)."""
    def get(path: str, default=None):
        node = cfg
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is None:
                    raise CheckpointError(f"{source}: config.yaml lacks {path}")
                return default
            node = node[part]
        return node

    if get("SIZE_DIVISIBILITY", 0) not in (0, None):
        raise CheckpointError(f"{source}: config.yaml SIZE_DIVISIBILITY {get('SIZE_DIVISIBILITY')} is not supported "
                              "(the reference does not implement it either)")
    if get("RESNETS.NORM", "BN") not in ("BN", "FrozenBN"):
        raise CheckpointError(f"{source}: config.yaml RESNETS.NORM {get('RESNETS.NORM')!r} is not supported")
    sizes, ratios = get("ANCHOR_GENERATOR.SIZES"), get("ANCHOR_GENERATOR.ASPECT_RATIOS")
    if len(sizes) != 1 or len(ratios) != 1:
        raise CheckpointError(f"{source}: config.yaml ANCHOR_GENERATOR has {len(sizes)} levels; the C4 detector has one")
    nms = get("ROI_HEADS.NMS_THRESH_TEST")
    fmt = get("INPUT.FORMAT", "RGB")
    return dict(
        stride_in_1x1=bool(get("RESNETS.STRIDE_IN_1X1")), caffe_maxpool=bool(get("MODEL.MAX_POOL", False)),
        anchor_sizes=tuple(float(v) for v in sizes[0]), anchor_ratios=tuple(float(v) for v in ratios[0]),
        anchor_offset=float(get("ANCHOR_GENERATOR.OFFSET", 0.0)),
        rpn_box_weights=tuple(float(v) for v in get("RPN.BBOX_REG_WEIGHTS")), rpn_nms=float(get("RPN.NMS_THRESH")),
        rpn_pre_nms=int(get("RPN.PRE_NMS_TOPK_TEST")), rpn_post_nms=int(get("RPN.POST_NMS_TOPK_TEST")),
        rpn_min_size=float(get("PROPOSAL_GENERATOR.MIN_SIZE", 0.0)),
        pool_size=int(get("ROI_BOX_HEAD.POOLER_RESOLUTION")), res5_dilated=not get("ROI_BOX_HEAD.RES5HALVE", True),
        box_weights=tuple(float(v) for v in get("ROI_BOX_HEAD.BBOX_REG_WEIGHTS")),
        selection="fixed", nms_thresholds=tuple(float(v) for v in (nms if isinstance(nms, list) else [nms])),
        score_threshold=float(get("ROI_HEADS.SCORE_THRESH_TEST")),
        min_boxes=int(get("MIN_DETECTIONS")), max_boxes=int(get("MAX_DETECTIONS")),
        # The demo reads files as RGB and, when FORMAT is "RGB", flips them: the network sees the other order.
        channel_order="BGR" if fmt == "RGB" else "RGB",
        pixel_mean=tuple(float(v) for v in get("MODEL.PIXEL_MEAN")),
        pixel_std=tuple(float(v) for v in get("MODEL.PIXEL_STD")),
        min_size=int(get("INPUT.MIN_SIZE_TEST")), max_size=int(get("INPUT.MAX_SIZE_TEST")))


def infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> FasterRCNNConfig:
    source = str(folder) if folder is not None else "checkpoint"
    bottleneck = sd["backbone.res2.0.conv1.weight"].shape[0]
    groups = bottleneck // sd["backbone.res2.0.conv2.weight"].shape[1]
    stages = sorted({int(m.group(1)) for k in sd if (m := re.match(r"backbone\.res(\d)\.", k))})
    settings = dict(
        depths=tuple(_blocks(sd, f"backbone.res{s}.") for s in stages),
        stem_channels=sd["backbone.stem.conv1.weight"].shape[0],
        res2_channels=sd["backbone.res2.0.conv3.weight"].shape[0], groups=groups,
        width_per_group=bottleneck // groups,
        rpn_channels=sd["proposal_generator.rpn_head.conv.weight"].shape[0],
        res5_blocks=_blocks(sd, "roi_heads.res5."),
        num_classes=sd["roi_heads.box_predictor.cls_score.weight"].shape[0] - 1,
        num_attributes=(sd["roi_heads.box_predictor.attr_score.weight"].shape[0] - 1
                        if "roi_heads.box_predictor.attr_score.weight" in sd else 0),
        class_agnostic_boxes=sd["roi_heads.box_predictor.bbox_pred.weight"].shape[0] == 4)
    yaml_cfg = cfg if cfg is not None and "MODEL" in cfg else _read_yaml(folder)
    if yaml_cfg is not None:
        settings.update(_from_yaml(yaml_cfg, source))
    for field, files in VOCABULARIES.items():
        n = settings["num_classes" if field == "class_names" else "num_attributes"]
        settings[field] = _names(folder, files, n)
    config = FasterRCNNConfig(**settings)
    anchors_per_cell = sd["proposal_generator.rpn_head.objectness_logits.weight"].shape[0]
    computed = cell_anchors(config.anchor_sizes, config.anchor_ratios)
    if len(computed) != anchors_per_cell:
        raise CheckpointError(f"{source}: the RPN predicts {anchors_per_cell} anchors per cell; the anchor settings "
                              f"give {len(computed)} (sizes {config.anchor_sizes}, ratios {config.anchor_ratios})")
    if ANCHORS in sd and (sd[ANCHORS].shape != computed.shape or not torch.allclose(sd[ANCHORS].float(), computed,
                                                                                      atol=1e-3)):
        raise CheckpointError(f"{source}: {ANCHORS} does not match the anchors of sizes {config.anchor_sizes} "
                              f"and ratios {config.anchor_ratios}")
    return config


register_layout(Layout("lxmert-frcnn", "frcnn", "transformers LXMERT-demo Faster R-CNN (bottom-up attention)",
                       lambda keys, folder: _is_frcnn(keys) and ANCHORS in keys, priority=80,
                       convert=convert, infer_config=infer))
register_layout(Layout("detectron2-frcnn-vg", "frcnn", "detectron2 Faster R-CNN C4 (bottom-up attention)",
                       lambda keys, folder: _is_frcnn(keys) and ANCHORS not in keys, priority=80,
                       convert=convert, infer_config=infer))
