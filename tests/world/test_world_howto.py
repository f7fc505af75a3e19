"""The world's how-to videos (VideoCLIP's data): steps in sequence, frames that show them, and
narration shifted at a rate that nests (a higher rate shifts a superset of the segments)."""

import numpy as np
import pytest

from polymodal.world.howto import FPS, howto_video
from polymodal.world.scene import COLOURS, HELD_OUT


def test_videos_are_deterministic_and_steps_follow_each_other():
    a, b = howto_video(0, "train", 3), howto_video(0, "train", 3)
    assert np.array_equal(a.frames, b.frames) and a.steps == b.steps and a.narration == b.narration
    for i in range(30):
        v = howto_video(0, "train", i)
        assert 3 <= len(v.steps) <= 5 and len(v.frames) == int(np.ceil(v.duration * FPS))
        for s, t in zip(v.steps, v.steps[1:]):
            assert 2.0 <= s.end - s.start <= 4.0 and s.end <= t.start
        assert v.steps[-1].end <= v.duration


def test_a_colour_change_is_seen_in_the_frames():
    for i in range(60):
        v = howto_video(0, "val", i)
        step = next((s for s in v.steps if s.action == "colour"), None)
        if step is None:
            continue
        before, after = v.frames[int(step.start * FPS)], v.frames[min(int(step.end * FPS), len(v.frames) - 1)]
        target = np.array(COLOURS[step.arg])

        def pixels_of_the_new_colour(frame):
            return int((np.abs(frame.reshape(-1, 3).astype(int) - target).sum(1) < 40).sum())

        assert pixels_of_the_new_colour(after) > pixels_of_the_new_colour(before) + 20  # the object's area
        return
    pytest.fail("no colour step in 60 videos")


def test_shift_rates_nest_and_keep_the_true_times():
    for i in range(20):
        rates = {r: howto_video(0, "train", i, shift_rate=r).narration for r in (0.0, 0.25, 0.5, 1.0)}
        shifted = {r: {g.text for g in segs if g.visible and (g.start, g.end) != (g.true_start, g.true_end)}
                   for r, segs in rates.items()}
        assert shifted[0.0] == set()
        assert shifted[0.25] <= shifted[0.5] <= shifted[1.0]
        for g in rates[1.0]:
            if g.visible:  # a shift of 1–2.5 s, clipped to the video
                assert g.start != g.true_start or g.end != g.true_end
    with pytest.raises(ValueError, match="shift_rate"):
        howto_video(0, "train", 0, shift_rate=1.5)


def test_training_videos_never_show_held_out_pairs_and_absent_sentences_are_absent():
    absent = 0
    for i in range(80):
        v = howto_video(0, "train", i)
        shapes = {s.object: s for s in v.steps}
        for s in v.steps:
            if s.action == "colour":
                shape = s.text.split()[2]
                assert (s.arg, shape) not in HELD_OUT
        for g in v.narration:
            if not g.visible:
                absent += 1
                words = g.text.split()
                assert all(f"{words[1]} {words[2]}" not in s.text for s in v.steps)
        assert shapes  # every video has steps
    assert absent > 3  # about 15 % of the videos have one
