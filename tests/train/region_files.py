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


def write_memes(folder: Path, photos: list[Path], name: str, first_id: int = 1) -> Path:
    """Hateful Memes' layout: NAME.jsonl beside img/ID.png; two memes per picture (the label turns on the
    text and the picture together)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for k, photo in enumerate(photos):
        image_id = first_id + k
        Image.open(photo).convert("RGB").save(folder / "img" / f"{image_id:05d}.png")
        for j, text in enumerate(("look at this fine picture", "nobody wants this one")):
            lines.append({"id": image_id * 10 + j, "img": f"img/{image_id:05d}.png", "label": (k + j) % 2, "text": text})
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _objects(size: tuple[int, int]) -> list[tuple[list[float], str]]:
    w, h = size
    return [([0.0, 0.0, w / 2, h / 2], "person"), ([w / 2, h / 2, float(w), float(h)], "dog")]


def write_coco(folder: Path, pictures: list[tuple[int, Path]], name: str) -> tuple[Path, Path]:
    """captions_NAME.json (5 captions a picture) and instances_NAME.json (a person top left, a dog bottom right)."""
    images, captions, objects = [], [], []
    for image_id, file in pictures:
        w, h = picture_size(file)
        images.append({"id": image_id, "file_name": file.name, "width": w, "height": h, "license": 1})
        for j in range(5):
            captions.append({"id": image_id * 10 + j, "image_id": image_id,
                             "caption": f"A person with a dog {['outside', 'inside', 'at home', 'in a park', 'here'][j]}."})
        for k, (box, cls) in enumerate(_objects((w, h))):
            x0, y0, x1, y1 = box
            objects.append({"id": image_id * 10 + k, "image_id": image_id, "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "category_id": 1 if cls == "person" else 18, "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    categories = [{"id": 1, "name": "person", "supercategory": "person"}, {"id": 18, "name": "dog", "supercategory": "animal"}]
    c, i = folder / f"captions_{name}.json", folder / f"instances_{name}.json"
    c.write_text(json.dumps({"info": {}, "licenses": [], "images": images, "annotations": captions}))
    i.write_text(json.dumps({"info": {}, "licenses": [], "images": images, "annotations": objects, "categories": categories}))
    return c, i


def write_refcoco(folder: Path, train: list[tuple[int, Path]], val: list[tuple[int, Path]]) -> tuple[Path, Path]:
    """refs(unc).p (a protocol-2 pickle of plain dicts, as released) and instances.json over both splits."""
    _, instances = write_coco(folder, train + val, "refcoco")
    refs = []
    for split, pictures in (("train", train), ("val", val)):
        for image_id, file in pictures:
            for k, (text, other) in enumerate((("the person top left", "the upper left one"), ("the dog", "bottom right"))):
                refs.append({"ref_id": image_id * 10 + k, "ann_id": image_id * 10 + k, "image_id": image_id,
                             "split": split, "category_id": 1 if k == 0 else 18, "sent_ids": [1, 2],
                             "file_name": file.stem + f"_{image_id * 10 + k}.jpg",
                             "sentences": [{"tokens": text.split(), "raw": text, "sent_id": 1, "sent": text},
                                           {"tokens": other.split(), "raw": other, "sent_id": 2, "sent": other}]})
    path = folder / "refs(unc).p"
    path.write_bytes(pickle.dumps(refs, protocol=2))
    return path, instances


def write_vcr(folder: Path, photos: list[Path], name: str) -> Path:
    """VCR's layout: NAME.jsonl and vcr1images/movie/PIC.jpg + PIC.json (boxes with scores, names, size)."""
    movie = folder / "vcr1images" / "lsmdc_0001_Movie"
    movie.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, photo in enumerate(photos):
        stem = f"{name}_{k:03d}@0"
        image = Image.open(photo).convert("RGB")
        image.save(movie / f"{stem}.jpg")
        boxes = [box + [0.99] for box, _ in _objects(image.size)]
        (movie / f"{stem}.json").write_text(json.dumps({"boxes": boxes, "segms": [], "names": ["person", "dog"],
                                                         "width": image.size[0], "height": image.size[1]}))
        answers = [["They", "are", "friends", "."], [[0], "is", "asleep", "."], [[1], "is", "hungry", "."],
                   ["It", "is", "raining", "."]]
        rationales = [[[0, 1], "sit", "together", "."], ["The", "sky", "is", "grey", "."],
                      [[1], "looks", "at", "a", "bowl", "."], ["Nobody", "moves", "."]]
        lines.append({"movie": "0001_Movie", "objects": ["person", "dog"], "img_fn": f"lsmdc_0001_Movie/{stem}.jpg",
                      "metadata_fn": f"lsmdc_0001_Movie/{stem}.json", "question": ["How", "is", [0], "related", "to",
                                                                                     [1], "?"],
                      "answer_choices": answers, "rationale_choices": rationales, "answer_label": k % 4,
                      "rationale_label": (k + 1) % 4, "annot_id": f"{name}-{k}", "question_number": 1})
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
