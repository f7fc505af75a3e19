"""How-to videos of the world, for VideoCLIP: a scene in which 3–5 steps happen one after another
(an object moves, appears, disappears or changes colour), each lasting 2–4 s, narrated like a real
transcript — sometimes late or early, sometimes about something that is not there.

The video (frames and the true step times) is a pure function of (seed, split, index). The narration
depends on ``shift_rate`` only through which segments are shifted: each segment draws its own
u ~ U(0, 1) and is shifted when u < shift_rate, so a higher rate shifts a superset of the segments
and the same videos serve every rate of an experiment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .render import render
from .scene import COLOURS, HELD_OUT, SHAPES, Scene, WorldObject, sample_rng, sample_scene
from .video import Segment

FPS = 4
MOVE = 0.3  # how far a moving object travels during its step (fraction of the width)
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@dataclass
class Step:
    start: float  # seconds
    end: float
    text: str  # "the red circle moves left", "a blue star appears", "the green square turns yellow", …
    object: int  # the object it happens to
    action: str  # "move", "appear", "disappear", "colour"
    arg: str  # the direction, or the new colour


@dataclass
class HowToVideo:
    frames: np.ndarray  # [T, H, W, 3] uint8 at FPS
    steps: list[Step]
    narration: list[Segment]  # one per step (maybe shifted) + maybe one about something absent
    duration: float  # seconds

    @property
    def seconds(self) -> int:
        return int(np.ceil(self.duration))


def _steps(scene: Scene, rng: np.random.Generator) -> tuple[list[Step], set[int], float]:
    """The steps, the objects hidden at the start, and the video's duration."""
    objs = list(scene.objects)
    hidden = {int(rng.integers(len(objs)))} if len(objs) > 1 and rng.random() < 0.5 else set()
    visible, colour = set(range(len(objs))) - hidden, {k: o.colour for k, o in enumerate(objs)}
    pos = {k: [o.x, o.y] for k, o in enumerate(objs)}
    t, steps = float(rng.uniform(0.3, 1.0)), []
    for _ in range(int(rng.integers(3, 6))):
        options = [("appear", k, "") for k in sorted(set(range(len(objs))) - visible)]
        options += [("disappear", k, "") for k in sorted(visible) if len(visible) > 1]
        for k in sorted(visible):
            o = objs[k]
            for name, (dx, dy) in DIRECTIONS.items():
                x, y = pos[k][0] + dx * MOVE, pos[k][1] + dy * MOVE
                if o.radius <= x <= 1 - o.radius and o.radius <= y <= 1 - o.radius:
                    options.append(("move", k, name))
            allowed = [c for c in COLOURS if c != colour[k] and (scene.split != "train" or (c, o.shape) not in HELD_OUT)]
            options.append(("colour", k, allowed[int(rng.integers(len(allowed)))]))
        action, k, arg = options[int(rng.integers(len(options)))]
        name = f"{colour[k]} {objs[k].shape}"
        text = {"appear": f"a {name} appears", "disappear": f"the {name} disappears",
                "move": f"the {name} moves {arg}", "colour": f"the {name} turns {arg}"}[action]
        duration = float(rng.uniform(2.0, 4.0))
        steps.append(Step(t, t + duration, text, k, action, arg))
        if action == "appear":
            visible.add(k)
        elif action == "disappear":
            visible.discard(k)
        elif action == "move":
            dx, dy = DIRECTIONS[arg]
            pos[k] = [pos[k][0] + dx * MOVE, pos[k][1] + dy * MOVE]
        else:
            colour[k] = arg
        t += duration + float(rng.uniform(0.0, 1.0))
    return steps, hidden, t + float(rng.uniform(0.0, 0.5))


def _objects_at(scene: Scene, steps: list[Step], hidden: set[int], t: float) -> tuple[WorldObject, ...]:
    """The scene's objects as they are at time ``t``: moves are gradual over their step; appearing,
    disappearing and colour changes happen at the step's middle."""
    objs, shown = list(scene.objects), set(range(len(scene.objects))) - hidden
    for s in steps:
        if t < s.start:
            break
        o, half = objs[s.object], (s.start + s.end) / 2
        if s.action == "move":
            f = min((t - s.start) / (s.end - s.start), 1.0)
            dx, dy = DIRECTIONS[s.arg]
            objs[s.object] = dataclasses.replace(o, x=o.x + dx * MOVE * f, y=o.y + dy * MOVE * f)
            if f < 1.0:  # the next steps have not started either
                continue
        elif t >= half:
            if s.action == "colour":
                objs[s.object] = dataclasses.replace(o, colour=s.arg)
            elif s.action == "appear":
                shown.add(s.object)
            else:
                shown.discard(s.object)
    return tuple(o for k, o in enumerate(objs) if k in shown)


def _narrate(scene: Scene, steps: list[Step], duration: float, shift_rate: float) -> list[Segment]:
    rng = sample_rng(scene.seed, scene.split, scene.index, "howto-narration")
    out = []
    for s in steps:
        u, sign, size = rng.random(), rng.choice([-1.0, 1.0]), rng.uniform(1.0, 2.5)  # drawn whatever the rate
        shift = float(sign * size) if u < shift_rate else 0.0
        start, end = float(np.clip(s.start + shift, 0, duration)), float(np.clip(s.end + shift, 0, duration))
        out.append(Segment(start, end, s.text, s.start, s.end, True, []))
    if rng.random() < 0.15:  # a sentence about an object that is not in the video
        present = {(o.colour, o.shape) for o in scene.objects} | {(s.arg, scene.objects[s.object].shape) for s in steps}
        absent = [(c, sh) for c in COLOURS for sh in SHAPES if (c, sh) not in present
                  and (scene.split != "train" or (c, sh) not in HELD_OUT)]
        c, sh = absent[int(rng.integers(len(absent)))]
        start = float(rng.uniform(0, max(duration - 2.0, 0.0)))
        out.append(Segment(start, min(start + 2.0, duration), f"the {c} {sh} moves left", start, start, False, []))
    return sorted(out, key=lambda g: g.start)


def howto_video(seed: int, split: str, index: int, shift_rate: float = 0.25, size: int = 64,
                frames: bool = True) -> HowToVideo:
    """The how-to video of scene (seed, split, index), narrated with ``shift_rate`` of its segments
    moved 1–2.5 s earlier or later. ``frames=False`` skips rendering (``frames`` is then empty):
    the steps and narration alone, for a run whose frame features are cached."""
    if not 0.0 <= shift_rate <= 1.0:
        raise ValueError(f"shift_rate must be in [0, 1], got {shift_rate}")
    scene = sample_scene(seed, split, index)
    steps, hidden, duration = _steps(scene, sample_rng(seed, split, index, "howto"))
    times = np.arange(int(np.ceil(duration * FPS))) / FPS if frames else np.zeros(0)
    pictures = [render(dataclasses.replace(scene, objects=_objects_at(scene, steps, hidden, float(t))), size,
                       image_only=True).image for t in times]
    pictures = np.stack(pictures) if pictures else np.zeros((0, size, size, 3), np.uint8)
    return HowToVideo(pictures, steps, _narrate(scene, steps, duration, shift_rate), duration)
