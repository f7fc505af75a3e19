"""The world's region tasks written as the files people have — VQA v2, VCR, a RefCOCO-style table and
Hateful Memes — so that the path from files to a trained model can be shown (and measured) end to end.
``polymodal world export --format FORMAT`` runs it.

Each call writes one split's pictures (PNG, ``image_size`` px) and annotation files into ``out``, and
merges the pictures' true object boxes into ``out/boxes.json`` ({"file name": [[x0, y0, x1, y1], ...]}):
with ``data.boxes=out/boxes.json`` a run on the files reads the same regions (the whole picture, then
each object) that the world source reads. The examples are the world source's, one for one.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ..fileio import atomic_write
from .labels import consistency, referring_expressions, vqa
from .render import render
from .scene import Scene, sample_scene
from .sources.regions import vcr_scenes

FORMATS = ("vqa_v2", "vcr", "refcoco", "memes")
PER_SCENE = 4  # VQA questions per scene, as the world source asks them
ANNOTATORS = 10  # VQA v2's answers per question: the world's one answer, given by all ten


def _picture(out: Path, folder: str, name: str, scene: Scene, size: int, boxes: dict) -> str:
    """Render ``scene`` to ``out/folder/name`` and note its object boxes; returns the path relative to ``out/folder``."""
    r = render(scene, size)
    (out / folder / name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(r.image).save(out / folder / name)
    boxes[name] = [[float(v) for v in b] for b in r.boxes]
    return name


def _write_json(path: Path, value) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(value)))


def answer_type(answer: str) -> str:
    return "yes/no" if answer in ("yes", "no") else "number" if answer.isdigit() else "other"


def export_vqa_v2(out: Path, split: str, n: int, seed: int, size: int, boxes: dict) -> list[Path]:
    folder = f"{split}2014"
    questions, annotations = [], []
    for i in range(n):
        scene = sample_scene(seed, split, i)
        _picture(out, folder, f"COCO_{split}2014_{i:012d}.png", scene, size, boxes)
        for k, q in enumerate(vqa(scene, PER_SCENE)):
            qid = i * 100 + k
            questions.append({"question_id": qid, "image_id": i, "question": q["question"]})
            annotations.append({"question_id": qid, "image_id": i, "question_type": q["type"],
                                "answer_type": answer_type(q["answer"]), "multiple_choice_answer": q["answer"],
                                "answers": [{"answer": q["answer"], "answer_confidence": "yes", "answer_id": j + 1}
                                            for j in range(ANNOTATORS)]})
    q_file = out / f"v2_OpenEnded_mscoco_{split}2014_questions.json"
    a_file = out / f"v2_mscoco_{split}2014_annotations.json"
    _write_json(q_file, {"task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": f"{split}2014",
                         "questions": questions})
    _write_json(a_file, {"data_type": "mscoco", "data_subtype": f"{split}2014", "annotations": annotations})
    return [q_file, a_file]


def export_vcr(out: Path, split: str, n: int, seed: int, size: int, boxes: dict) -> list[Path]:
    scenes, items, _ = vcr_scenes(split, n, seed)
    lines = []
    for i, (scene, item) in enumerate(zip(scenes, items)):
        stem = f"world_{split}/{split}_{i:06d}"
        name = _picture(out, "vcr1images", f"{stem}.png", scene, size, boxes)
        boxes.pop(name)  # VCR's boxes live in its metadata files
        r = render(scene, size)
        meta = {"boxes": [[*map(float, b), 1.0] for b in r.boxes], "names": [o.shape for o in scene.objects],
                "width": size, "height": size, "segms": []}
        (out / "vcr1images" / f"{stem}.json").write_text(json.dumps(meta))
        lines.append({"img_fn": f"{stem}.png", "metadata_fn": f"{stem}.json", "objects": meta["names"],
                      "question": item["question"].split(), "answer_choices": [a.split() for a in item["answers"]],
                      "rationale_choices": [r_.split() for r_ in item["rationales"]], "answer_label": item["answer"],
                      "rationale_label": item["rationale"], "annot_id": f"{split}-{i}"})
    path = out / f"{split}.jsonl"
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(x) + "\n" for x in lines)))
    return [path]


def export_refcoco(out: Path, split: str, n: int, seed: int, size: int, boxes: dict) -> list[Path]:
    rows = []
    for i in range(n):
        scene = sample_scene(seed, split, i)
        name = _picture(out, "images", f"{split}_{i:06d}.png", scene, size, boxes)
        true = boxes[name]
        for e in referring_expressions(scene):
            rows.append({"image": name, "expression": e["phrase"], "box": true[e["object"]], "boxes": true, "split": split})
    path = out / f"refs_{split}.jsonl"
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(x) + "\n" for x in rows)))
    return [path]


def export_memes(out: Path, split: str, n: int, seed: int, size: int, boxes: dict) -> list[Path]:
    lines = []
    for i in range(n):
        item = consistency(sample_scene(seed, split, i))
        name = _picture(out, "img", f"{split}_{i:06d}.png", item["scene"], size, boxes)
        lines.append({"id": f"{split}_{i}", "img": f"img/{name}", "label": item["label"], "text": item["statement"]})
    path = out / f"{split}.jsonl"
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(x) + "\n" for x in lines)))
    return [path]


EXPORTERS = {"vqa_v2": export_vqa_v2, "vcr": export_vcr, "refcoco": export_refcoco, "memes": export_memes}


def export_task_files(out: str | Path, fmt: str, split: str, n: int, seed: int = 0, size: int = 64) -> list[Path]:
    """Write ``n`` world items of ``split`` in format ``fmt`` (one of :data:`FORMATS`) into ``out``;
    returns the annotation files written (and ``out/boxes.json`` where the format has no boxes)."""
    if fmt not in EXPORTERS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    box_file = out / "boxes.json"
    boxes = json.loads(box_file.read_text()) if box_file.is_file() else {}
    written = EXPORTERS[fmt](out, split, n, seed, size, boxes)
    if boxes:
        _write_json(box_file, boxes)
        written.append(box_file)
    return written
