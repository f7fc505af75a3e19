"""Small files in the field's real layouts (VQA v2, VCR, RefCOCO, Hateful Memes, COCO captions) about
real pictures, written by the tests of the region sources."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

from PIL import Image

QUESTIONS = [("what color is the hat?", "what color", "other", "black"), ("is there a person?", "is there", "yes/no", "yes"),
             ("how many people are there?", "how many", "number", "1")]


def coco_pictures(photos: list[Path], folder: Path, split: str = "train2014", first_id: int = 1) -> list[tuple[int, Path]]:
    """The photos copied under COCO's names (COCO_train2014_000000000001.jpg, …): (image id, file)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, photo in enumerate(photos):
        image_id = first_id + k
        target = folder / f"COCO_{split}_{image_id:012d}{photo.suffix}"
        shutil.copyfile(photo, target)
        out.append((image_id, target))
    return out


def write_vqa_v2(folder: Path, pictures: list[tuple[int, Path]], name: str, first_qid: int = 1) -> tuple[Path, Path]:
    """Three questions per picture with ten annotators' answers each (the answer depends on the picture)."""
    questions, annotations = [], []
    qid = first_qid
    for image_id, _ in pictures:
        for k, (text, qtype, atype, answer) in enumerate(QUESTIONS):
            given = answer if image_id % 2 else {"black": "white", "yes": "no", "1": "2"}[answer]
            questions.append({"question_id": qid, "image_id": image_id, "question": text})
            annotations.append({"question_id": qid, "image_id": image_id, "question_type": qtype, "answer_type": atype,
                                "multiple_choice_answer": given,
                                "answers": [{"answer": given if j < 8 else "maybe", "answer_confidence": "yes",
                                             "answer_id": j + 1} for j in range(10)]})
            qid += 1
    q, a = folder / f"{name}_questions.json", folder / f"{name}_annotations.json"
    q.write_text(json.dumps({"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "questions": questions}))
    a.write_text(json.dumps({"info": {}, "data_type": "mscoco", "annotations": annotations}))
    return q, a


def picture_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size
