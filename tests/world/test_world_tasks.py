"""VCR items and consistency ("fake post") pairs of the world."""

from collections import Counter

import numpy as np

from polymodal.world import sample_scene
from polymodal.world.captions import NUMBERS, plural
from polymodal.world.labels import consistency, grid_cell, vcr


def test_vcr_has_exactly_one_right_answer_and_rationale():
    made = 0
    for i in range(300):
        scene = sample_scene(0, "train", i)
        item = vcr(scene)
        if item is None:
            assert all(scene.count(shape=o.shape) > 1 for o in scene.objects)
            continue
        made += 1
        shape = item["question"].split()[-1].rstrip("?")
        (obj,) = [o for o in scene.objects if o.shape == shape]
        right = [k for k, a in enumerate(item["answers"]) if a == obj.colour]
        assert right == [item["answer"]] and len(set(item["answers"])) == 4
        cell = grid_cell(obj.x, obj.y)
        place = f"{'on' if cell in ('left', 'right') else 'in'} the {cell} of the picture"
        true_r = [k for k, r in enumerate(item["rationales"]) if f" {place} " in r]
        assert true_r == [item["rationale"]]
    assert made > 150
    assert Counter(vcr(sample_scene(0, "train", i))["answer"] for i in range(300)
                   if vcr(sample_scene(0, "train", i))).keys() == {0, 1, 2, 3}


def _holds(statement, scene):
    """Evaluate a statement on a scene, independently of how it was made."""
    words = statement.rstrip(".").split()
    if words[:2] == ["there", "is"]:
        return scene.count(words[3], words[4]) >= 1
    if words[:2] == ["there", "are"]:
        n = {v: k for k, v in NUMBERS.items()}[words[2]]
        shape = next(s for s in {o.shape for o in scene.objects} | {"circle", "square", "triangle", "star", "hexagon",
                                                                      "cross"} if plural(s) == words[4])
        return scene.count(words[3], shape) == n
    a, b = statement.removeprefix("the ").rstrip(".").split(" is to the left of the ")

    def find(name):
        parts = name.split()
        (obj,) = [o for o in scene.objects if all(p in (o.colour, o.shape, o.size) for p in parts)]
        return obj

    return find(b).x - find(a).x > 0.15


def test_consistency_labels_are_true_balanced_and_text_only_is_at_chance():
    items = [consistency(sample_scene(0, "train", i)) for i in range(1500)]
    labels = [it["label"] for it in items]
    assert abs(np.mean(labels) - 0.5) < 0.04
    for it in items:
        assert _holds(it["statement"], it["scene"]) == bool(it["label"]), it["statement"]
    # The statement's distribution does not depend on the label: kinds and words alike.
    for feature in (lambda it: it["kind"], lambda it: it["statement"].split()[3] if it["kind"] != "relation" else "-"):
        pos = Counter(feature(it) for it in items if it["label"] == 1)
        neg = Counter(feature(it) for it in items if it["label"] == 0)
        for key in pos.keys() | neg.keys():
            p, q = pos[key] / sum(pos.values()), neg[key] / sum(neg.values())
            assert abs(p - q) < 0.05, (key, p, q)
    # …and neither do simple image-side statistics of the scene shown: object count and colours.
    def share(label, feature):
        counts = Counter(v for it in items if it["label"] == label for v in feature(it["scene"]))
        return {k: v / sum(counts.values()) for k, v in counts.items()}

    for feature, tolerance in ((lambda s: [len(s.objects)], 0.05), (lambda s: [o.colour for o in s.objects], 0.03)):
        pos, neg = share(1, feature), share(0, feature)
        for key in pos.keys() | neg.keys():
            assert abs(pos.get(key, 0) - neg.get(key, 0)) < tolerance, key
