"""Captions: several paraphrases per scene with synonyms, counts and relations (left of, above,
nearer than). Train and val/test use different templates and relation wordings, so a model
cannot pass by memorising strings."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .scene import Scene, WorldObject, sample_rng

SYNONYMS = {
    "circle": ("circle", "disc"), "square": ("square", "box"), "triangle": ("triangle",),
    "star": ("star",), "hexagon": ("hexagon",), "cross": ("cross", "plus sign"),
}
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
TEMPLATES = {
    "train": ("{objects} {where}.", "a photo of {objects} {where}.", "{objects}, {place} background."),
    "test": ("a picture showing {objects} {where}.", "you can see {objects} {where}.",
             "an image of a {place} scene with {objects}."),
}
WHERE = {"beach": "on a beach", "forest": "in a forest", "city": "in a city", "kitchen": "in a kitchen",
         "desert": "in a desert"}
RELATION_WORDS = {
    "train": {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below",
              "nearer": "nearer than", "farther": "farther away than"},
    "test": {"left": "left of", "right": "right of", "above": "higher than", "below": "lower than",
             "nearer": "closer than", "farther": "further than"},
}
MIN_OFFSET = 0.15  # fraction of the image: smaller horizontal/vertical offsets are not stated


def template_set(split: str) -> str:
    return "train" if split == "train" else "test"


def plural(word: str) -> str:
    return word + ("es" if word.endswith(("x", "s")) else "s")


def objects_phrase(scene: Scene, rng: np.random.Generator) -> tuple[str, tuple]:
    """'two red circles and a large blue star' (counts per colour+shape; size when alone), and what
    it states: ((colour, shape, count, size or None), …)."""
    groups = Counter((o.colour, o.shape) for o in scene.objects)
    parts, stated = [], []
    for (colour, shape), n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])):
        noun = SYNONYMS[shape][rng.integers(len(SYNONYMS[shape]))]
        if n == 1:
            size = next(o.size for o in scene.objects if (o.colour, o.shape) == (colour, shape))
            with_size = rng.random() < 0.5
            adj = f"{size} {colour}" if with_size else colour
            parts.append(f"{'an' if adj[0] in 'aeiou' else 'a'} {adj} {noun}")
            stated.append((colour, shape, 1, size if with_size else None))
        else:
            parts.append(f"{NUMBERS[n]} {colour} {plural(noun)}")
            stated.append((colour, shape, n, None))
    phrase = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return phrase, tuple(stated)


def unique_name(scene: Scene, obj: WorldObject) -> str | None:
    """The shortest of 'colour shape' / 'size colour shape' that names ``obj`` alone, else None."""
    if scene.count(obj.colour, obj.shape) == 1:
        return obj.name
    same = [o for o in scene.objects if (o.colour, o.shape, o.size) == (obj.colour, obj.shape, obj.size)]
    return f"{obj.size} {obj.name}" if len(same) == 1 else None


def relations(scene: Scene) -> list[tuple[int, str, int]]:
    """All stated relations (i, rel, j): i is left of / above / nearer than j (and the inverses)."""
    out = []
    for i, a in enumerate(scene.objects):
        for j, b in enumerate(scene.objects):
            if i == j:
                continue
            if b.x - a.x > MIN_OFFSET:
                out.append((i, "left", j))
            if a.x - b.x > MIN_OFFSET:
                out.append((i, "right", j))
            if b.y - a.y > MIN_OFFSET:
                out.append((i, "above", j))
            if a.y - b.y > MIN_OFFSET:
                out.append((i, "below", j))
            out.append((i, "nearer" if a.depth < b.depth else "farther", j))
    return out


def relation_sentence(scene: Scene, rng: np.random.Generator, words: dict) -> tuple[str, tuple] | None:
    named = [(i, r, j) for i, r, j in relations(scene)
             if unique_name(scene, scene.objects[i]) and unique_name(scene, scene.objects[j])]
    if not named:
        return None
    i, rel, j = named[rng.integers(len(named))]
    a, b = unique_name(scene, scene.objects[i]), unique_name(scene, scene.objects[j])
    return f"the {a} is {words[rel]} the {b}.", (i, rel, j)


def captions(scene: Scene, n: int = 3) -> list[dict]:
    """``n`` paraphrases, deterministic per sample: [{"text", "relation": (i, rel, j) or None,
    "objects": ((colour, shape, count, size or None), …) as the text states them}]."""
    rng = sample_rng(scene.seed, scene.split, scene.index, "captions")
    kind = template_set(scene.split)
    out = []
    for k in range(n):
        template = TEMPLATES[kind][k % len(TEMPLATES[kind])]
        phrase, stated = objects_phrase(scene, rng)
        text = template.format(objects=phrase, place=scene.place, where=WHERE[scene.place])
        relation = relation_sentence(scene, rng, RELATION_WORDS[kind]) if len(scene.objects) > 1 else None
        if relation is not None and rng.random() < 0.7:
            text, rel = f"{text} {relation[0][0].upper()}{relation[0][1:]}", relation[1]
        else:
            rel = None
        out.append({"text": text[0].upper() + text[1:], "relation": rel, "objects": stated})
    return out
