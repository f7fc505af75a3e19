"""Map-style datasets over the world: sample ``i`` is computed on demand from (seed, split, i), so
any worker or rank can make any sample and DistributedSampler splits work without duplicates."""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from .audio import render_audio
from .captions import captions
from .documents import funsd, render_document
from .labels import ANSWER_INDEX, referring_expressions, vqa
from .render import MIN_SIZE, noisy_boxes, render
from .scene import SPLITS, sample_rng, sample_scene
from .video import render_video

MODALITIES = ("image", "caption", "depth", "thermal", "regions", "vqa", "refexp", "audio", "video", "imu", "document")


def check_options(split: str, n: int, modalities: Iterable[str], image_size: int) -> tuple[str, ...]:
    """Validate generator options before any work starts; returns the modalities as a tuple."""
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; available: {', '.join(MODALITIES)}")
    if not modalities:
        raise ValueError("choose at least one modality")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
    if n <= 0:
        raise ValueError(f"the number of samples must be positive, got {n}")
    if image_size < MIN_SIZE:
        raise ValueError(f"image size {image_size} is too small for the objects; use at least {MIN_SIZE}")
    return modalities


class WorldDataset(Dataset):
    """``n`` samples of ``split``; each item is a dict with the requested modalities.

    * image: uint8 [3, S, S]; depth, thermal: float32 [1, S, S]
    * caption: str (paraphrase ``i % 3``); captions: all paraphrases
    * regions: boxes float32 [N, 4] (x0, y0, x1, y1 pixels) + labels (colour, shape) strings; with
      ``detector_noise``, also detections [M, 4] (jittered, some missed, maybe one false) and
      detection_source [M] (true object index, -1 for a false positive)
    * vqa: list of question dicts, answer ids in ``labels.ANSWERS``; refexp: list of {phrase, box}
    * audio: float32 [seconds · 16000]; video: uint8 [T, 3, S, S] + narration (list of dicts);
      imu: float32 [6, T / 8 · 100] (the camera of the video)
    * document: page uint8 [3, 400, 320] + ``document_labels`` (FUNSD layout: entities with word
      boxes, labels and key→value links; the class; QA pairs) — independent of the scene
    * scene: the :class:`Scene` itself (labels, place, objects)
    """

    def __init__(self, split: str = "train", n: int = 1000, seed: int = 0, image_size: int = 64,
                 modalities: Iterable[str] = ("image", "caption"), frames: int = 8, audio_seconds: float = 1.0,
                 detector_noise: bool = False):
        self.modalities = check_options(split, n, modalities, image_size)
        if not 2 <= frames <= 64:
            raise ValueError(f"frames must be between 2 and 64, got {frames}")
        if audio_seconds <= 0:
            raise ValueError(f"audio_seconds must be positive, got {audio_seconds}")
        self.split, self.n, self.seed, self.image_size = split, n, seed, image_size
        self.frames, self.audio_seconds, self.detector_noise = frames, audio_seconds, detector_noise

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples")
        scene = sample_scene(self.seed, self.split, index)
        item: dict = {"index": index, "scene": scene, "place": scene.place}
        wants = set(self.modalities)
        if wants & {"image", "depth", "thermal", "regions", "refexp"}:
            r = render(scene, self.image_size)
            if "image" in wants:
                item["image"] = torch.from_numpy(np.ascontiguousarray(r.image.transpose(2, 0, 1)))
            if "depth" in wants:
                item["depth"] = torch.from_numpy(r.depth)[None]
            if "thermal" in wants:
                item["thermal"] = torch.from_numpy(r.thermal)[None]
            if "regions" in wants:
                item["boxes"] = torch.from_numpy(r.boxes)
                item["labels"] = [(o.colour, o.shape) for o in scene.objects]
                if self.detector_noise:  # what a detector would hand VisualBERT/ViLBERT
                    rng = sample_rng(self.seed, self.split, index, "detector")
                    boxes, source = noisy_boxes(r.boxes, self.image_size, rng)
                    item["detections"] = torch.from_numpy(boxes)
                    item["detection_source"] = torch.from_numpy(source)
            if "refexp" in wants:
                item["refexp"] = [{"phrase": e["phrase"], "box": r.boxes[e["object"]].tolist()}
                                  for e in referring_expressions(scene)]
        if "caption" in wants:
            texts = [c["text"] for c in captions(scene)]
            item["captions"], item["caption"] = texts, texts[index % len(texts)]
        if "audio" in wants:
            item["audio"] = torch.from_numpy(render_audio(scene, self.audio_seconds))
        if wants & {"video", "imu"}:
            clip = render_video(scene, self.frames, self.image_size)
            if "video" in wants:
                item["video"] = torch.from_numpy(np.ascontiguousarray(clip.frames.transpose(0, 3, 1, 2)))
                item["narration"] = [dataclasses.asdict(g) for g in clip.narration]
            if "imu" in wants:
                item["imu"] = torch.from_numpy(clip.imu)
        if "document" in wants:
            doc = render_document(self.seed, self.split, index)
            item["document"] = torch.from_numpy(np.ascontiguousarray(doc.image.transpose(2, 0, 1)))
            item["document_labels"] = {**funsd(doc), "qa": doc.qa, "line_ids": doc.line_ids.tolist()}
        if "vqa" in wants:
            item["vqa"] = [{**q, "answer_id": ANSWER_INDEX[q["answer"]]} for q in vqa(scene)]
        return item
