"""Task labels computed from a scene: VQA questions with a fixed answer vocabulary and
referring expressions that pick exactly one object."""

from __future__ import annotations

import numpy as np

from .captions import RELATION_WORDS, plural, relations, unique_name
from .scene import COLOURS, SHAPES, Scene, sample_rng

ANSWERS = ("yes", "no", *COLOURS, *SHAPES, *(str(k) for k in range(5)))
ANSWER_INDEX = {a: i for i, a in enumerate(ANSWERS)}
QUESTION_TYPES = ("count", "exists", "colour", "shape", "relation", "compare")


def vqa(scene: Scene, n: int = 4) -> list[dict]:
    """``n`` questions: {"question", "answer" (in :data:`ANSWERS`), "type", "args"}; ``args`` is the
    structured query the answer was computed from."""
    rng = sample_rng(scene.seed, scene.split, scene.index, "vqa")
    out = []
    for _ in range(n):
        for _attempt in range(20):
            q = _question(scene, rng, QUESTION_TYPES[rng.integers(len(QUESTION_TYPES))])
            if q is not None:
                out.append(q)
                break
    return out


def _question(scene: Scene, rng: np.random.Generator, kind: str) -> dict | None:
    objs = scene.objects
    colours, shapes = tuple(COLOURS), SHAPES
    if kind == "count":
        if rng.random() < 0.5:
            c = colours[rng.integers(len(colours))]
            return _q(f"how many {c} objects are there?", str(scene.count(colour=c)), kind, {"colour": c})
        s = shapes[rng.integers(len(shapes))]
        return _q(f"how many {plural(s)} are there?", str(scene.count(shape=s)), kind, {"shape": s})
    if kind == "exists":
        o = objs[rng.integers(len(objs))]
        c = o.colour if rng.random() < 0.5 else colours[rng.integers(len(colours))]
        answer = "yes" if scene.count(c, o.shape) else "no"
        return _q(f"is there a {c} {o.shape}?", answer, kind, {"colour": c, "shape": o.shape})
    if kind == "colour":
        unique = [o for o in objs if scene.count(shape=o.shape) == 1]
        if not unique:
            return None
        o = unique[rng.integers(len(unique))]
        return _q(f"what colour is the {o.shape}?", o.colour, kind, {"shape": o.shape})
    if kind == "shape":
        unique = [o for o in objs if scene.count(colour=o.colour) == 1]
        if not unique:
            return None
        o = unique[rng.integers(len(unique))]
        return _q(f"what shape is the {o.colour} object?", o.shape, kind, {"colour": o.colour})
    pairs = [(i, r, j) for i, r, j in relations(scene) if r in (("left", "above") if kind == "relation" else ("nearer",))
             and unique_name(scene, objs[i]) and unique_name(scene, objs[j])]
    if not pairs:
        return None
    i, rel, j = pairs[rng.integers(len(pairs))]
    if rng.random() < 0.5:  # ask the other way round: the answer is then "no"
        i, j = j, i
    a, b = unique_name(scene, objs[i]), unique_name(scene, objs[j])
    word = RELATION_WORDS["train"][rel]
    holds = (i, rel, j) in relations(scene)
    return _q(f"is the {a} {word} the {b}?", "yes" if holds else "no", kind, {"a": i, "relation": rel, "b": j})


def _q(question: str, answer: str, kind: str, args: dict) -> dict:
    assert answer in ANSWER_INDEX, answer
    return {"question": question, "answer": answer, "type": kind, "args": args}


def referring_expressions(scene: Scene) -> list[dict]:
    """For every object that can be named alone: {"phrase", "object": index}. Also 'the leftmost X'
    when several objects share colour and shape."""
    out = []
    for i, o in enumerate(scene.objects):
        name = unique_name(scene, o)
        if name is not None:
            out.append({"phrase": f"the {name}", "object": i})
    for (colour, shape) in {(o.colour, o.shape) for o in scene.objects}:
        group = [i for i, o in enumerate(scene.objects) if (o.colour, o.shape) == (colour, shape)]
        if len(group) > 1:
            xs = sorted(group, key=lambda k: scene.objects[k].x)
            if scene.objects[xs[1]].x - scene.objects[xs[0]].x > 0.1:
                out.append({"phrase": f"the leftmost {colour} {shape}", "object": xs[0]})
    return sorted(out, key=lambda r: r["object"])


__all__ = ["ANSWERS", "referring_expressions", "vqa"]
