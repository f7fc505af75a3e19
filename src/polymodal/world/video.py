"""Video of a scene: T frames in which objects move, one may appear and the camera may pan, with a
narration that, like real transcripts, is sometimes shifted in time or mentions what is not
visible; plus the IMU (accelerometer + gyroscope) of the camera's motion."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .render import render
from .scene import COLOURS, SHAPES, Scene, sample_rng

FPS = 8
IMU_RATE = 100  # Hz
GRAVITY = 9.81
FOV_RAD = 1.0  # horizontal field of view: a pan of the full width turns the camera by 1 rad
MIN_SPEED = 0.15  # image widths per second below which motion is not narrated


@dataclass
class Segment:
    start: float  # seconds
    end: float
    text: str
    true_start: float  # where the event really is (equal to start when aligned)
    true_end: float
    visible: bool  # False: the sentence mentions something that is not in the video
    frames: list[int]  # frames that show the event (empty when not visible)


@dataclass
class VideoClip:
    frames: np.ndarray  # [T, H, W, 3] uint8
    narration: list[Segment]
    imu: np.ndarray  # [6, N] float32: accel x, y, z (m/s²), gyro x, y, z (rad/s)
    pan_speed: float  # image widths per second (positive: the camera turns right)


def _pan_velocity(t: np.ndarray, speed: float, duration: float) -> np.ndarray:
    """Camera pan speed over time: smooth ramp up during the first and down during the last quarter."""
    ramp = np.clip(np.minimum(t, duration - t) / (duration / 4), 0.0, 1.0)
    return speed * (3 * ramp**2 - 2 * ramp**3)


def _pan_offset(t: np.ndarray, speed: float, duration: float) -> np.ndarray:
    """Integral of :func:`_pan_velocity` (numerically, on a fine grid)."""
    grid = np.linspace(0.0, duration, 2001)
    offset = np.concatenate([[0.0], np.cumsum(_pan_velocity(grid[1:], speed, duration)) * (grid[1] - grid[0])])
    return np.interp(t, grid, offset)


def render_video(scene: Scene, frames: int = 8, size: int = 64) -> VideoClip:
    """A clip of ``frames`` frames at :data:`FPS` with narration and IMU."""
    if not 2 <= frames <= 64:
        raise ValueError(f"frames must be between 2 and 64, got {frames}")
    rng = sample_rng(scene.seed, scene.split, scene.index, "video")
    duration = frames / FPS
    times = np.arange(frames) / FPS
    pan_speed = float(rng.choice([0.0, 0.0, -0.3, 0.3]))
    pan = _pan_offset(times, pan_speed, duration)
    velocity = [(float(v[0]), float(v[1])) if rng.random() < 0.6 else (0.0, 0.0)
                for v in rng.uniform(-0.4, 0.4, (len(scene.objects), 2))]
    appear = {int(rng.integers(len(scene.objects))): int(rng.integers(1, frames - 1))} if (
        len(scene.objects) > 1 and rng.random() < 0.3) else {}
    shown = []
    for f, t in enumerate(times):
        objects = [dataclasses.replace(o, x=float(np.clip(o.x + vx * t - pan[f], o.radius, 1 - o.radius)),
                                       y=float(np.clip(o.y + vy * t, o.radius, 1 - o.radius)))
                   for k, (o, (vx, vy)) in enumerate(zip(scene.objects, velocity)) if appear.get(k, 0) <= f]
        shown.append(render(dataclasses.replace(scene, objects=tuple(objects)), size, pan=float(pan[f]),
                            image_only=True).image)
    narration = _narrate(scene, velocity, appear, pan_speed, frames, rng)
    return VideoClip(np.stack(shown), narration, _imu(pan_speed, duration, rng), pan_speed)


def _narrate(scene, velocity, appear, pan_speed, frames, rng) -> list[Segment]:
    duration = frames / FPS
    events = []
    for k, (o, (vx, vy)) in enumerate(zip(scene.objects, velocity)):
        start = appear.get(k, 0)
        if abs(vx) >= max(abs(vy), MIN_SPEED):
            events.append((f"the {o.name} moves {'right' if vx > 0 else 'left'}", start))
        elif abs(vy) >= MIN_SPEED:
            events.append((f"the {o.name} moves {'down' if vy > 0 else 'up'}", start))
        if k in appear:
            events.append((f"a {o.name} appears", start))
    if pan_speed:
        events.append((f"the camera pans {'right' if pan_speed > 0 else 'left'}", 0))
    segments = []
    for text, first in events:
        start, end = first / FPS, duration
        shift = float(rng.choice([-1, 1]) * rng.uniform(0.25, 0.5)) if rng.random() < 0.3 else 0.0
        segments.append(Segment(float(np.clip(start + shift, 0, duration)), float(np.clip(end + shift, 0, duration)),
                                text, start, end, True, list(range(first, frames))))
    if rng.random() < 0.2:  # a sentence about something that is not there
        present = {(o.colour, o.shape) for o in scene.objects}
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        c, s = absent[rng.integers(len(absent))]
        segments.append(Segment(0.0, duration, f"a {c} {s} rolls past", 0.0, duration, False, []))
    return sorted(segments, key=lambda g: g.start)


def _imu(pan_speed: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """[6, N]: the camera turns about its vertical (z) axis as it pans; the accelerometer sees
    gravity plus the tangential acceleration of the turn, both with sensor noise."""
    t = np.arange(int(round(duration * IMU_RATE))) / IMU_RATE
    yaw_rate = _pan_velocity(t, pan_speed, duration) * FOV_RAD
    lateral = np.gradient(yaw_rate, 1 / IMU_RATE) * 0.5  # 0.5 m lever arm
    imu = np.stack([lateral, np.zeros_like(t), np.full_like(t, GRAVITY), np.zeros_like(t), np.zeros_like(t), yaw_rate])
    noise = rng.normal(0, 1, imu.shape) * np.array([0.05, 0.05, 0.05, 0.01, 0.01, 0.01])[:, None]
    return (imu + noise).astype(np.float32)


DIRECTIONS = ("left", "right", "up", "down")


def video_questions(clip: VideoClip) -> list[dict]:
    """Multiple-choice video QA from the clip's visible motion events:
    {"question", "choices" (the four directions), "answer" (index), "frames" (where it happens)}."""
    out = []
    for seg in clip.narration:
        words = seg.text.split()
        if seg.visible and len(words) == 5 and words[3] == "moves":
            out.append({"question": f"which way does the {words[1]} {words[2]} move?", "choices": list(DIRECTIONS),
                        "answer": DIRECTIONS.index(words[4]), "frames": seg.frames})
    return out
