"""VQA v2 files (questions + annotations JSON) and answer vocabularies.

    questions:   {"questions": [{"question_id", "image_id", "question"}, ...]}
    annotations: {"annotations": [{"question_id", "image_id", "answers": [{"answer", ...} × 10],
                                   "multiple_choice_answer", "question_type", "answer_type"}, ...]}

Soft targets follow the standard recipe: answer a scores ``min(#annotators who gave a / 3, 1)``
(see :func:`polymodal.eval.metrics.vqa_score`), trained with binary cross-entropy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..eval.metrics import normalize_answer
from .records import AnnotationFormatError, json_list

ANNOTATORS = 10  # answers per question in VQA v2
VQAFormatError = AnnotationFormatError  # the name this module's callers know


@dataclass
class Question:
    question_id: int
    image_id: int | str
    question: str
    answers: list[str]  # every annotator's answer (10 in VQA v2); empty for test questions
    question_type: str = ""
    answer_type: str = ""


def _problem(problems: list[str] | None, message: str) -> None:
    if problems is None:
        raise VQAFormatError(message)
    problems.append(message)


def read_vqa_v2(questions: str | Path, annotations: str | Path | None = None,
                problems: list[str] | None = None) -> list[Question]:
    """Questions joined with their annotators' answers (none for a test split without annotations).
    A bad record (missing keys, not :data:`ANNOTATORS` answers, an annotation whose question is not in
    ``questions``, a question without an annotation) names the file and the record's position: it
    raises, or with ``problems`` given is listed there and left out while the rest load."""
    answers: dict[int, tuple[list[str], str, str]] = {}
    if annotations is not None:
        for i, a in enumerate(json_list(annotations, "annotations", "VQA v2")):
            try:
                found = [str(x["answer"]) for x in a["answers"]]
                qid = int(a["question_id"])
            except (KeyError, TypeError, ValueError) as e:
                _problem(problems, f"{annotations}: annotation {i} lacks {e} (needs question_id and answers)")
                continue
            if len(found) != ANNOTATORS:
                _problem(problems, f"{annotations}: annotation {i} (question {qid}) has {len(found)} answers, "
                                   f"VQA v2 gives {ANNOTATORS}")
                continue
            answers[qid] = (found, str(a.get("question_type", "")), str(a.get("answer_type", "")))
    out, asked = [], set()
    for i, q in enumerate(json_list(questions, "questions", "VQA v2")):
        try:
            qid = int(q["question_id"])
            text, image = str(q["question"]), q["image_id"]
        except (KeyError, TypeError, ValueError) as e:
            _problem(problems, f"{questions}: question {i} lacks {e} (needs question_id, image_id, question)")
            continue
        asked.add(qid)
        if annotations is not None and qid not in answers:
            _problem(problems, f"{questions}: question {i} (id {qid}) has no usable annotation in {annotations}")
            continue
        found, kind, answer_kind = answers.get(qid, ([], "", ""))
        out.append(Question(qid, image, text, found, kind, answer_kind))
    for qid in sorted(set(answers) - asked):
        _problem(problems, f"{annotations}: the annotation of question {qid} has no question in {questions}")
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
