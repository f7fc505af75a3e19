"""VQA v2 files (questions + annotations JSON) and answer vocabularies.

    questions:   {"questions": [{"question_id", "image_id", "question"}, ...]}
    annotations: {"annotations": [{"question_id", "image_id", "answers": [{"answer", ...} × 10],
                                   "multiple_choice_answer", "question_type", "answer_type"}, ...]}

Soft targets follow the standard recipe: answer a scores ``min(#annotators who gave a / 3, 1)``
(see :func:`polymodal.eval.metrics.vqa_score`), trained with binary cross-entropy.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..eval.metrics import normalize_answer

MAX_JSON_BYTES = 2 << 30  # VQA v2 train annotations are ≈ 330 MB


class VQAFormatError(ValueError):
    """A VQA file is missing, too large, or not in the VQA v2 layout; the message names file and key."""


@dataclass
class Question:
    question_id: int
    image_id: int | str
    question: str
    answers: list[str]  # every annotator's answer (10 in VQA v2); empty for test questions
    question_type: str = ""


def _load(path: Path, key: str) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise VQAFormatError(f"{path}: no such file")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise VQAFormatError(f"{path}: {path.stat().st_size} bytes is more than a VQA file holds")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VQAFormatError(f"{path}: not JSON ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise VQAFormatError(f"{path}: expected an object with a {key!r} list (the VQA v2 layout)")
    return data[key]


def read_vqa_v2(questions: str | Path, annotations: str | Path | None = None) -> list[Question]:
    """Questions joined with their annotators' answers (none for a test split without annotations).
    A record without the needed keys raises, naming the file and the record's position."""
    answers: dict[int, tuple[list[str], str]] = {}
    if annotations is not None:
        for i, a in enumerate(_load(annotations, "annotations")):
            try:
                answers[int(a["question_id"])] = ([str(x["answer"]) for x in a["answers"]], str(a.get("question_type", "")))
            except (KeyError, TypeError, ValueError) as e:
                raise VQAFormatError(f"{annotations}: annotation {i} lacks {e} (needs question_id and answers)") from None
    out = []
    for i, q in enumerate(_load(questions, "questions")):
        try:
            qid = int(q["question_id"])
            found, kind = answers.get(qid, ([], ""))
            out.append(Question(qid, q["image_id"], str(q["question"]), found, kind))
        except (KeyError, TypeError, ValueError) as e:
            raise VQAFormatError(f"{questions}: question {i} lacks {e} (needs question_id, image_id, question)") from None
    if annotations is not None:
        missing = sum(not q.answers for q in out)
        if missing:
            raise VQAFormatError(f"{annotations}: {missing} of {len(out)} questions have no annotation")
    return out


def answer_vocabulary(answer_lists: list[list[str]], min_count: int = 1) -> list[str]:
    """Normalised answers given at least ``min_count`` times in training, most frequent first
    (ties alphabetical, so the order is reproducible)."""
    counts = Counter(normalize_answer(a) for answers in answer_lists for a in answers)
    return sorted((a for a, n in counts.items() if n >= min_count), key=lambda a: (-counts[a], a))


def soft_targets(answer_lists: list[list[str]], vocabulary: list[str]) -> torch.Tensor:
    """[N, A] float: answer a of question n scores min(#annotators who gave a / min(3, #annotators), 1);
    answers outside the vocabulary are left out (the question can then score at most < 1)."""
    index = {a: i for i, a in enumerate(vocabulary)}
    out = torch.zeros(len(answer_lists), len(vocabulary))
    for n, answers in enumerate(answer_lists):
        for a, count in Counter(normalize_answer(x) for x in answers).items():
            if a in index:
                out[n, index[a]] = min(count / min(3, len(answers)), 1.0)
    return out
