"""Audio, video, narration and IMU of the synthetic world."""

import dataclasses

import numpy as np
import pytest

from polymodal.world import WorldDataset, sample_scene
from polymodal.world.audio import SAMPLE_RATE, render_audio
from polymodal.world.video import FPS, IMU_RATE, render_video


def _energy(x):
    return float(np.mean(x.astype(np.float64) ** 2))


def test_audio_is_16khz_mono_and_louder_when_objects_are_larger():
    rises = 0
    for i in range(60):
        scene = sample_scene(0, "train", i)
        small = dataclasses.replace(scene, objects=tuple(dataclasses.replace(o, size="small") for o in scene.objects))
        large = dataclasses.replace(scene, objects=tuple(dataclasses.replace(o, size="large") for o in scene.objects))
        a, b = render_audio(small), render_audio(large)
        assert a.shape == (SAMPLE_RATE,) and a.dtype == np.float32 and np.abs(b).max() <= 1.0
        rises += _energy(b) > _energy(a)
    assert rises == 60


def test_audio_spectrum_identifies_the_shape():
    """A lone circle peaks at its 440 Hz tone; a lone square at 220 Hz."""
    base = sample_scene(0, "train", 0)
    for shape, hz in (("circle", 440), ("square", 220)):
        obj = dataclasses.replace(base.objects[0], shape=shape, size="large")
        spectrum = np.abs(np.fft.rfft(render_audio(dataclasses.replace(base, objects=(obj,)))))
        assert abs(int(np.argmax(spectrum[50:])) + 50 - hz) <= 2  # 1 Hz bins for 1 s of audio


def _centroid_x(frame, colour):
    from polymodal.world.scene import COLOURS

    close = np.abs(frame.astype(int) - np.array(COLOURS[colour])).max(axis=-1) < 40
    return np.flatnonzero(close.any(axis=0)).mean() if close.any() else None


def test_narrated_horizontal_motion_is_seen_in_the_frames():
    checked = 0
    for i in range(120):
        scene = sample_scene(0, "train", i)
        clip = render_video(scene)
        assert clip.frames.shape == (8, 64, 64, 3)
        if clip.pan_speed != 0:
            continue
        for seg in clip.narration:
            words = seg.text.split()
            if not seg.visible or words[-2] != "moves" or words[-1] not in ("left", "right"):
                continue
            colour = words[1]
            if sum(o.colour == colour for o in scene.objects) != 1:
                continue
            xs = [_centroid_x(clip.frames[f], colour) for f in (seg.frames[0], seg.frames[-1])]
            if None in xs:
                continue
            assert (xs[1] > xs[0]) == (words[-1] == "right"), seg.text
            checked += 1
    assert checked > 10


def test_narration_misalignment_and_invisible_mentions_are_labelled():
    shifted = invisible = 0
    for i in range(300):
        scene = sample_scene(0, "test", i)
        for seg in render_video(scene).narration:
            assert 0 <= seg.start <= seg.end <= 8 / FPS
            if (seg.start, seg.end) != (seg.true_start, seg.true_end):
                shifted += 1
            if not seg.visible:
                invisible += 1
                colour, shape = seg.text.split()[1:3]
                assert scene.count(colour, shape) == 0 and seg.frames == []
    assert shifted > 20 and invisible > 20


def test_imu_follows_the_camera_pan():
    seen = set()
    for i in range(80):
        clip = render_video(sample_scene(0, "val", i))
        assert clip.imu.shape == (6, 8 / FPS * IMU_RATE)
        yaw = clip.imu[5].sum() / IMU_RATE  # integrated gyro z, radians
        assert abs(clip.imu[2].mean() - 9.81) < 0.05  # gravity on z
        if clip.pan_speed == 0:
            assert abs(yaw) < 0.05
        else:
            assert np.sign(yaw) == np.sign(clip.pan_speed) and abs(yaw) > 0.1
        seen.add(np.sign(clip.pan_speed))
    assert seen == {-1.0, 0.0, 1.0}


def test_dataset_serves_audio_video_imu():
    item = WorldDataset("train", 4, modalities=("audio", "video", "imu"), frames=12, audio_seconds=2.0)[1]
    assert tuple(item["audio"].shape) == (32000,)
    assert tuple(item["video"].shape) == (12, 3, 64, 64)
    assert tuple(item["imu"].shape) == (6, 150)
    assert all({"start", "end", "text", "visible", "frames"} <= set(s) for s in item["narration"])
    with pytest.raises(ValueError, match="frames"):
        WorldDataset("train", 4, modalities=("video",), frames=1)
