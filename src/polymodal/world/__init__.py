"""The synthetic multimodal world (spec: shared/specs/world.md): deterministic scenes rendered in
every modality (image, captions, regions, depth, thermal, audio, video + narration, IMU,
documents) with task labels (retrieval, VQA, VCR, referring expressions, consistency, video QA and
step localisation, document key–value / QA / class), WebDataset export and a contact sheet."""

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
