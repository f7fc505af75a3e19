"""``data.kind=vqa_v2``: questions about the user's pictures in the VQA v2 layout, for ``vqa``.

    data.questions / data.annotations      the VQA v2 JSON files (data.val_* for validation)
    data.images                            the pictures, found by image id (COCO_train2014_%012d.jpg,
                                           000000000009.jpg, 9.jpg, 9.png); not needed with data.regions

Evaluation (the ``vqa`` kind's) is VQA accuracy over the 10 annotators, per question type and
answer type, next to the majority answer and the most common answer per question type.
"""

from __future__ import annotations

from ...data.image_files import ImagesById
from ...data.vqa import read_vqa_v2
from ..config import ConfigError
from ..region_data import RegionQuestions
from ..user_regions import Picture
from . import Source, register_source
from .region_files import REGION_SETTINGS, images_folder, split_setting, texts_about


def vqa_v2_questions(kind, split: str) -> RegionQuestions | None:
    questions = split_setting(kind, split, "questions")
    if questions is None:
        return None
    annotations = split_setting(kind, split, "annotations")
    if annotations is None:
        raise ConfigError("data.val_questions needs data.val_annotations (the answers to score against)")
    problems: list[str] = []
    rows = read_vqa_v2(questions, annotations, problems)
    folder = images_folder(kind, split)
    images = ImagesById(folder) if folder else None
    pictures, index = [], {}
    for q in rows:
        key = str(q.image_id)
        if key not in index:
            index[key] = len(pictures)
            path = images.get(q.image_id) if images is not None else None
            if path is None and not kind.cfg.data.regions:
                where = f"{questions}: question {q.question_id}"
                pictures.append(Picture(key, None, where=f"{where}: image {key} is not in {folder}"))
            else:
                pictures.append(Picture(key, path, where=f"{questions}: image {key}"))
    wheres = [f"{questions}: question {q.question_id}" for q in rows]
    texts, kept, more = texts_about(kind, pictures, [index[str(q.image_id)] for q in rows], [q.question for q in rows],
                                    wheres, split)
    kind.report_skipped(problems + more, split)
    chosen = [rows[i] for i in kept]
    return RegionQuestions(texts.regions, texts.region_mask, texts.locations, texts.scene_of, texts.ids, texts.mask,
                           texts.texts, [q.answers for q in chosen], [q.question_type or "?" for q in chosen],
                           [q.answer_type or "?" for q in chosen])


register_source(Source("vqa_v2", "region_questions", vqa_v2_questions,
                       ("questions", "annotations", "images", "val_questions", "val_annotations", "val_images",
                        *REGION_SETTINGS), about="VQA v2 questions + annotations JSON about your pictures"))
