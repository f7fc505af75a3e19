"""Task labels computed from a scene: VQA questions with a fixed answer vocabulary, referring
expressions that pick exactly one object, VCR items and consistency ("fake post") pairs."""

from __future__ import annotations

import dataclasses

import numpy as np

from .captions import NUMBERS, RELATION_WORDS, plural, relations, unique_name
from .scene import COLOURS, HELD_OUT, SHAPES, Scene, sample_rng

ANSWERS = ("yes", "no", *COLOURS, *SHAPES, *(str(k) for k in range(5)))
ANSWER_INDEX = {a: i for i, a in enumerate(ANSWERS)}
QUESTION_TYPES = ("count", "exists", "colour", "shape", "relation", "compare")
# What a detector would name a region: every colour × shape, and nothing (index 0)
REGION_CLASSES = ("background", *(f"{c} {s}" for c in COLOURS for s in SHAPES))


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


GRID = (("top left", "top", "top right"), ("left", "centre", "right"), ("bottom left", "bottom", "bottom right"))


def grid_cell(x: float, y: float) -> str:
    """Where a centre lies on a 3×3 grid of the picture ('top left', …, 'centre', …)."""
    return GRID[min(int(y * 3), 2)][min(int(x * 3), 2)]


def _where(cell: str) -> str:
    return f"on the {cell}" if cell in ("left", "right") else f"in the {cell}"


def vcr(scene: Scene) -> dict | None:
    """VCR-style 4-way items: Q→A (which colour) and QA→R (which rationale supports it), each
    with exactly one right choice, or None when no shape is unique in the scene."""
    rng = sample_rng(scene.seed, scene.split, scene.index, "vcr")
    unique = [o for o in scene.objects if scene.count(shape=o.shape) == 1]
    if not unique:
        return None
    o = unique[rng.integers(len(unique))]
    colours = [c for c in COLOURS if c != o.colour]
    answers = [o.colour, *(colours[k] for k in rng.choice(len(colours), 3, replace=False))]
    cell = grid_cell(o.x, o.y)
    cells = [c for row in GRID for c in row if c != cell]
    rationales = [f"the {o.shape} {_where(cell)} of the picture is {o.colour}"] + [
        f"the {o.shape} {_where(cells[k])} of the picture is {o.colour}" for k in rng.choice(len(cells), 3, replace=False)]
    order_a, order_r = rng.permutation(4), rng.permutation(4)
    return {"question": f"what colour is the {o.shape}?",
            "answers": [answers[k] for k in order_a], "answer": int(np.flatnonzero(order_a == 0)[0]),
            "rationales": [rationales[k] for k in order_r], "rationale": int(np.flatnonzero(order_r == 0)[0]),
            "object": scene.objects.index(o)}


def consistency(scene: Scene) -> dict:
    """A "fake post" pair built like Hateful Memes' benign confounders: a statement that is true of
    ``scene`` and, for label 0, a minimally edited scene of which it is false (one object's colour
    changed, one of a counted group given another shape, or two objects' horizontal positions swapped). The statement never depends
    on the label, so text alone is at chance; the edited scenes are drawn like any other.

    Returns {"statement", "kind", "label" (1 agrees / 0 contradicts), "scene" (the one to show)}."""
    rng = sample_rng(scene.seed, scene.split, scene.index, "consistency")
    objs = list(scene.objects)
    options = []
    for i, o in enumerate(objs):
        if scene.count(o.colour, o.shape) == 1:
            options.append(("colour", i))
    for i, r, j in relations(scene):
        if r == "left" and unique_name(scene, objs[i]) and unique_name(scene, objs[j]):
            options.append(("relation", (i, j)))
    for pair in sorted({(o.colour, o.shape) for o in objs if scene.count(o.colour, o.shape) > 1}):
        options.append(("count", pair))
    kind, arg = options[rng.integers(len(options))]
    label = int(rng.integers(2))
    if kind == "colour":
        o = objs[arg]
        statement = f"there is a {o.colour} {o.shape}."
        others = [c for c in COLOURS if c != o.colour and (c, o.shape) not in _held_out(scene.split)]
        edited = dataclasses.replace(o, colour=others[rng.integers(len(others))])
        objs_false = objs[:arg] + [edited] + objs[arg + 1:]
    elif kind == "count":
        colour, shape = arg
        n = scene.count(colour, shape)
        statement = f"there are {NUMBERS[n]} {colour} {plural(shape)}."
        k = next(k for k, o in enumerate(objs) if (o.colour, o.shape) == arg)
        shapes = [x for x in SHAPES if x != shape and (colour, x) not in _held_out(scene.split)]
        objs_false = list(objs)
        objs_false[k] = dataclasses.replace(objs[k], shape=shapes[rng.integers(len(shapes))])
    else:
        i, j = arg
        statement = f"the {unique_name(scene, objs[i])} is to the left of the {unique_name(scene, objs[j])}."
        objs_false = list(objs)
        objs_false[i] = dataclasses.replace(objs[i], x=objs[j].x)
        objs_false[j] = dataclasses.replace(objs[j], x=objs[i].x)
    shown = scene if label else dataclasses.replace(scene, objects=tuple(objs_false))
    return {"statement": statement, "kind": kind, "label": label, "scene": shown}


def _held_out(split: str) -> frozenset:
    """Combinations an edit must not create: the held-out pairs, in the train split only."""
    return HELD_OUT if split == "train" else frozenset()
