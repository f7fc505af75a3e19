"""One map-style dataset per task, each item a pure function of (seed, split, index), so they work
with any DataLoader worker count and DistributedSampler. Images are uint8 [3, S, S]."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .captions import captions
from .dataset import check_options
from .documents import funsd, render_document
from .labels import ANSWER_INDEX, consistency, referring_expressions, vcr, vqa
from .render import render
from .scene import Scene, sample_scene
from .video import render_video, video_questions


def _image(scene: Scene, size: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(render(scene, size).image.transpose(2, 0, 1)))


class _WorldTask(Dataset):
    modality = "image"

    def __init__(self, split: str = "train", n: int = 1000, seed: int = 0, image_size: int = 64):
        check_options(split, n, (self.modality,), image_size)
        self.split, self.n, self.seed, self.image_size = split, n, seed, image_size

    def __len__(self) -> int:
        return self.n

    def scene(self, index: int) -> Scene:
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples")
        return sample_scene(self.seed, self.split, index)


class CaptionDataset(_WorldTask):
    """Retrieval / zero-shot: {"image", "caption" (paraphrase index % 3), "place", "objects"}."""

    def __getitem__(self, index):
        scene = self.scene(index)
        return {"image": _image(scene, self.image_size), "caption": captions(scene)[index % 3]["text"],
                "place": scene.place, "objects": [o.name for o in scene.objects]}


class VQADataset(_WorldTask):
    """{"image", "question", "answer_id"} — the first question of each scene (answers: labels.ANSWERS)."""

    def __getitem__(self, index):
        scene = self.scene(index)
        q = vqa(scene, n=1)[0]
        return {"image": _image(scene, self.image_size), "question": q["question"], "answer_id": ANSWER_INDEX[q["answer"]]}


class RefExpDataset(_WorldTask):
    """{"image", "phrase", "box" [4] (pixels)} — the first expression of each scene."""

    def __getitem__(self, index):
        scene = self.scene(index)
        r = render(scene, self.image_size)
        ref = referring_expressions(scene)[0]
        return {"image": torch.from_numpy(np.ascontiguousarray(r.image.transpose(2, 0, 1))), "phrase": ref["phrase"],
                "box": torch.from_numpy(r.boxes[ref["object"]])}


class ConsistencyDataset(_WorldTask):
    """{"image", "statement", "label"}: 1 = the statement agrees with the image, 0 = contradicts."""

    def __getitem__(self, index):
        item = consistency(self.scene(index))
        return {"image": _image(item["scene"], self.image_size), "statement": item["statement"], "label": item["label"]}


class VCRDataset(_WorldTask):
    """{"image", "question", "answers", "answer", "rationales", "rationale"}. Scenes without a
    unique shape have no item; index i then uses scene i + k·n for the smallest such k."""

    def __getitem__(self, index):
        scene = self.scene(index)
        k = 0
        while (item := vcr(scene)) is None:
            k += 1
            scene = sample_scene(self.seed, self.split, index + k * self.n)
        return {"image": _image(scene, self.image_size), **{key: v for key, v in item.items() if key != "object"}}


class VideoDataset(_WorldTask):
    """{"video" uint8 [T, 3, S, S], "narration", "questions" (multiple choice), "imu" [6, N]}."""

    modality = "video"

    def __init__(self, split="train", n=1000, seed=0, image_size=64, frames: int = 8):
        super().__init__(split, n, seed, image_size)
        self.frames = frames

    def __getitem__(self, index):
        clip = render_video(self.scene(index), self.frames, self.image_size)
        return {"video": torch.from_numpy(np.ascontiguousarray(clip.frames.transpose(0, 3, 1, 2))),
                "narration": [{"start": g.start, "end": g.end, "text": g.text, "frames": g.frames, "visible": g.visible}
                              for g in clip.narration],
                "questions": video_questions(clip), "imu": torch.from_numpy(clip.imu)}


class DocumentDataset(_WorldTask):
    """{"page" uint8 [3, 400, 320], "words", "boxes" [N, 4], "line_ids", "labels" (FUNSD), "qa", "doc_class"}."""

    modality = "document"

    def __getitem__(self, index):
        self.scene(index)  # range check
        doc = render_document(self.seed, self.split, index)
        return {"page": torch.from_numpy(np.ascontiguousarray(doc.image.transpose(2, 0, 1))), "words": doc.words,
                "boxes": torch.from_numpy(doc.boxes), "line_ids": torch.from_numpy(doc.line_ids),
                "labels": funsd(doc), "qa": doc.qa, "doc_class": doc.doc_class}
