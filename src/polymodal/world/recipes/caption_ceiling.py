"""How well a perfect model could do text→image retrieval on world captions.

A caption states the place, every object's colour and shape with counts, sometimes a lone object's
size and sometimes one relation. Other gallery scenes can match all of that (a second "red circle
on a beach" of another size or position): a perfect model must then guess among them, so its
expected Recall@1 is the mean over captions of 1 / (number of gallery scenes the caption fits).
"""

from __future__ import annotations

from collections import Counter

from ..captions import unique_name
from ..scene import Scene

# Relations an RGB image shows. Depth ("nearer than") is visible only where objects overlap.
VISIBLE = ("left", "right", "above", "below")


def _holds(a, rel: str, b) -> bool:
    """``a rel b`` as a reader would judge it (any offset counts, not only the captions' 0.15)."""
    return {"left": a.x < b.x, "right": a.x > b.x, "above": a.y < b.y, "below": a.y > b.y,
            "nearer": a.depth < b.depth, "farther": a.depth > b.depth}[rel]


def _named(scene: Scene, name: str) -> list:
    return [o for o in scene.objects if name in (o.name, f"{o.size} {o.name}")]


def fits(caption: dict, source: Scene, candidate: Scene, relations: tuple[str, ...] = VISIBLE) -> bool:
    """Whether ``candidate`` matches everything ``caption`` (a ``captions(source)`` entry) states;
    stated relations outside ``relations`` are ignored."""
    if candidate.place != source.place:
        return False
    if Counter((o.colour, o.shape) for o in candidate.objects) != Counter(
            {(c, s): n for c, s, n, _ in caption["objects"]}):
        return False
    for colour, shape, n, size in caption["objects"]:
        if size is not None and not any(o.size == size for o in candidate.objects
                                        if (o.colour, o.shape) == (colour, shape)):
            return False
    if caption["relation"] is not None:
        i, rel, j = caption["relation"]
        if rel in relations:
            a_name = unique_name(source, source.objects[i])
            b_name = unique_name(source, source.objects[j])
            if not any(_holds(a, rel, b) for a in _named(candidate, a_name) for b in _named(candidate, b_name)
                       if a is not b):
                return False
    return True


def recall_at_1_ceiling(sources: list[Scene], caption_of: list[dict],
                        relations: tuple[str, ...] = VISIBLE) -> dict:
    """Expected text→image R@1 of a perfect model over the gallery ``sources`` (scene k's caption is
    ``caption_of[k]``), with the share of captions that fit more than one scene."""
    inverse, ambiguous = 0.0, 0
    by_place: dict[str, list[Scene]] = {}
    for s in sources:
        by_place.setdefault(s.place, []).append(s)
    for source, caption in zip(sources, caption_of):
        n = sum(fits(caption, source, other, relations) for other in by_place[source.place])
        inverse += 1 / n
        ambiguous += n > 1
    return {"r1_ceiling": inverse / len(sources), "ambiguous_fraction": ambiguous / len(sources)}
