"""The R@1 ceiling of ambiguous world captions: every caption fits its own scene, and a scene
fits another's caption exactly when nothing the caption states tells them apart."""

import dataclasses

import pytest

from polymodal.world.captions import captions
from polymodal.world.scene import sample_scene
from polymodal.world.recipes.caption_ceiling import fits, recall_at_1_ceiling


def test_every_caption_fits_its_own_scene_and_states_its_objects():
    for i in range(300):
        scene = sample_scene(0, "val", i)
        for caption in captions(scene):
            assert fits(caption, scene, scene)
            stated = {(c, s): n for c, s, n, _ in caption["objects"]}
            assert sum(stated.values()) == len(scene.objects)
            for colour, shape, n, size in caption["objects"]:
                assert f"{colour} " in caption["text"].lower()
                if size is not None:
                    assert f"{size} {colour}" in caption["text"].lower()


def test_a_changed_place_shape_or_stated_size_no_longer_fits():
    scene = next(s for s in (sample_scene(0, "val", i) for i in range(500)) if len(s.objects) == 1)
    caption = {"objects": ((scene.objects[0].colour, scene.objects[0].shape, 1, scene.objects[0].size),),
               "relation": None}
    other_place = dataclasses.replace(scene, place="kitchen" if scene.place != "kitchen" else "beach")
    assert not fits(caption, scene, other_place)
    obj = scene.objects[0]
    other_shape = dataclasses.replace(scene, objects=(dataclasses.replace(obj, shape="star" if obj.shape != "star" else "cross"),))
    assert not fits(caption, scene, other_shape)
    other_size = dataclasses.replace(scene, objects=(dataclasses.replace(obj, size="small" if obj.size == "large" else "large"),))
    assert not fits(caption, scene, other_size)
    unsized = {**caption, "objects": ((obj.colour, obj.shape, 1, None),)}
    assert fits(unsized, scene, other_size)  # the caption did not say the size: a tie


def test_ceiling_counts_ties():
    scene = sample_scene(0, "val", 0)
    caption = captions(scene)[0]
    assert recall_at_1_ceiling([scene], [caption])["r1_ceiling"] == 1.0
    twin = dataclasses.replace(scene, index=10_000)  # the same content: the caption fits both
    result = recall_at_1_ceiling([scene, twin], [caption, caption])
    assert result["r1_ceiling"] == pytest.approx(0.5) and result["ambiguous_fraction"] == 1.0
