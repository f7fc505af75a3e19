"""The synthetic multimodal world (spec: shared/specs/world.md): deterministic scenes rendered in
several modalities with task labels. Implemented so far: image, captions, regions, depth,
thermal, VQA, referring expressions."""

from .captions import captions
from .dataset import MODALITIES, WorldDataset, check_options
from .labels import ANSWERS, referring_expressions, vqa
from .render import noisy_boxes, render
from .scene import COLOURS, HELD_OUT, PLACES, SHAPES, SPLITS, Scene, WorldObject, sample_scene

__all__ = [
    "ANSWERS", "COLOURS", "HELD_OUT", "MODALITIES", "PLACES", "SHAPES", "SPLITS", "Scene", "WorldDataset",
    "WorldObject", "captions", "check_options", "noisy_boxes", "referring_expressions", "render",
    "sample_scene", "vqa",
]
