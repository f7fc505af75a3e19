"""The synthetic world: properties, not snapshots of random output."""

import hashlib
import json
import random
import re
import subprocess
import sys

import numpy as np
import pytest

from polymodal.world import (ANSWERS, COLOURS, HELD_OUT, SHAPES, WorldDataset, captions, referring_expressions,
                                  render, sample_scene, vqa)
from polymodal.world.captions import RELATION_WORDS, SYNONYMS
from polymodal.world.render import object_mask

ALL = ("image", "caption", "depth", "thermal", "regions", "vqa", "refexp")


def _digest(split, indices, seed=0):
    ds = WorldDataset(split, 100, seed=seed, modalities=ALL)
    out = {}
    for i in indices:
        item = ds[i]
        h = hashlib.sha256()
        for key in ("image", "depth", "thermal", "boxes"):
            h.update(item[key].numpy().tobytes())
        h.update(json.dumps([item["captions"], item["vqa"], item["refexp"]], sort_keys=True).encode())
        out[i] = h.hexdigest()
    return out


def test_samples_are_identical_across_processes_and_call_order():
    order = list(range(40))
    here = _digest("val", order)
    random.Random(1).shuffle(order)
    code = ("import json, sys; sys.path.insert(0, 'tests/world'); from test_world import _digest; "
            f"print(json.dumps(_digest('val', {order})))")
    other = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert {int(k): v for k, v in other.items()} == here
    assert _digest("val", [5], seed=1)[5] != here[5]  # and the seed matters


def test_held_out_combinations_never_in_train_but_in_test():
    train = [(o.colour, o.shape) for i in range(3000) for o in sample_scene(0, "train", i).objects]
    test = [(o.colour, o.shape) for i in range(1000) for o in sample_scene(0, "test", i).objects]
    assert not set(train) & HELD_OUT
    assert set(test) & HELD_OUT == HELD_OUT
    assert len(set(train)) == len(COLOURS) * len(SHAPES) - len(HELD_OUT)


def test_scene_sizes_and_counts_follow_the_spec():
    counts = [len(sample_scene(0, "train", i).objects) for i in range(800)]
    assert set(counts) == {1, 2, 3, 4}


def _answer(scene, q):
    """An independent reading of the scene for each structured question."""
    objs, a = scene.objects, q["args"]
    if q["type"] == "count":
        return str(sum(o.colour == a["colour"] if "colour" in a else o.shape == a["shape"] for o in objs))
    if q["type"] == "exists":
        return "yes" if any((o.colour, o.shape) == (a["colour"], a["shape"]) for o in objs) else "no"
    if q["type"] == "colour":
        (o,) = [o for o in objs if o.shape == a["shape"]]
        return o.colour
    if q["type"] == "shape":
        (o,) = [o for o in objs if o.colour == a["colour"]]
        return o.shape
    x, y = objs[a["a"]], objs[a["b"]]
    holds = {"left": y.x - x.x > 0.15, "above": y.y - x.y > 0.15, "nearer": x.depth < y.depth}[a["relation"]]
    return "yes" if holds else "no"


def test_every_vqa_answer_is_recomputed_independently():
    seen_types = set()
    for i in range(400):
        scene = sample_scene(0, "train", i)
        for q in vqa(scene):
            assert q["answer"] in ANSWERS
            assert _answer(scene, q) == q["answer"], q
            seen_types.add(q["type"])
    assert seen_types == {"count", "exists", "colour", "shape", "relation", "compare"}


def _matches(scene, phrase):
    words = phrase.removeprefix("the ").split()
    if words[0] == "leftmost":
        group = [i for i, o in enumerate(scene.objects) if (o.colour, o.shape) == (words[1], words[2])]
        return [min(group, key=lambda i: scene.objects[i].x)]
    return [i for i, o in enumerate(scene.objects)
            if all(w in (o.colour, o.shape, o.size) for w in words)]


def test_referring_expressions_pick_exactly_one_object():
    n = 0
    for i in range(400):
        scene = sample_scene(0, "val", i)
        for ref in referring_expressions(scene):
            assert _matches(scene, ref["phrase"]) == [ref["object"]], ref["phrase"]
            n += 1
    assert n > 400


def test_boxes_lie_inside_the_image_and_match_the_pixels():
    for i in range(150):
        scene = sample_scene(0, "test", i)
        r = render(scene, 64)
        for k, obj in enumerate(scene.objects):
            x0, y0, x1, y1 = r.boxes[k].astype(int)
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            mine = r.object_ids == k
            assert not mine[:, :x0].any() and not mine[:, x1:].any() and not mine[:y0].any() and not mine[y1:].any()
            assert mine[y0].any() and mine[y1 - 1].any() and mine[:, x0].any() and mine[:, x1 - 1].any()
            # The visible pixels carry the object's colour (rendering noise and shading aside) …
            mean = r.image[mine].astype(float).mean(axis=0)
            assert np.abs(mean - np.array(COLOURS[obj.colour]) * 0.975).max() < 25
            # … and only nearer objects hide it.
            hidden = object_mask(obj, 64) & ~mine
            assert all(scene.objects[j].depth < obj.depth for j in np.unique(r.object_ids[hidden]))


def test_depth_ordering_matches_the_captions_nearer_than():
    pattern = {split: re.compile(r"the ([a-z ]+?) is (" + "|".join(map(re.escape, RELATION_WORDS[kind].values()))
                                 + r") the ([a-z ]+?)\.", re.IGNORECASE)
               for split, kind in (("train", "train"), ("test", "test"))}
    checked = 0
    for split in ("train", "test"):
        words = {v: k for k, v in RELATION_WORDS["train" if split == "train" else "test"].items()}
        for i in range(300):
            scene = sample_scene(0, split, i)
            r = render(scene, 64)
            for cap in captions(scene):
                m = pattern[split].search(cap["text"])
                if not m or words[m.group(2)] not in ("nearer", "farther"):
                    continue
                (a,), (b,) = _matches(scene, m.group(1)), _matches(scene, m.group(3))
                da, db = (float(np.median(r.depth[r.object_ids == k])) for k in (a, b))
                assert (da < db) == (words[m.group(2)] == "nearer"), cap["text"]
                checked += 1
    assert checked > 100


def test_train_and_test_captions_use_different_templates():
    def frames(split):
        out = set()
        for i in range(200):
            for c in captions(sample_scene(0, split, i)):
                text = c["text"].lower()
                for word in [*COLOURS, *[s for syn in SYNONYMS.values() for s in syn]]:
                    text = text.replace(word, "X")
                out.add(re.sub(r"[^a-z ]", "", text.split(" x")[0]))
        return out

    assert not frames("train") & frames("test")


def test_thermal_shows_object_temperatures_over_the_ambient():
    scene = next(s for s in (sample_scene(0, "train", i) for i in range(100))
                 if any(o.temperature == "hot" for o in s.objects))
    r = render(scene, 64)
    k = next(k for k, o in enumerate(scene.objects) if o.temperature == "hot")
    assert abs(np.median(r.thermal[r.object_ids == k]) - 65.0) < 1.0
    assert np.median(r.thermal[r.object_ids == -1]) < 45


@pytest.mark.parametrize("kwargs, message", [
    ({"modalities": ("image", "smell")}, "unknown modalities"),
    ({"n": 0}, "positive"),
    ({"image_size": 16}, "too small"),
    ({"split": "holdout"}, "unknown split"),
])
def test_invalid_options_fail_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WorldDataset(**{"split": "train", "n": 10, **kwargs})
