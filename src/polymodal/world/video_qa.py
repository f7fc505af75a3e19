"""Multiple-choice video QA on the world's how-to videos (MSR-VTT's multiple-choice test, made
harder): for each step of a video, its clip (the step's true time) and five sentences, one of them
what happens. The four others are chosen to need the video: half say something else happens to the
same object (another direction, another colour, appearing instead of moving), half say the same
thing happens to another object of the scene or a changed colour of it. Chance is 1/5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .howto import DIRECTIONS, howto_video
from .scene import COLOURS, sample_rng, sample_scene

OPTIONS = 5


@dataclass(frozen=True)
class VideoQuestion:
    video: int
    start: float  # the step's true span, seconds
    end: float
    options: tuple[str, ...]
    answer: int  # index of the right option


def _about(name: str) -> list[str]:
    """Every sentence the world can say about an object called ``name`` ("red circle")."""
    colour = name.split()[0]
    return ([f"a {name} appears", f"the {name} disappears"] + [f"the {name} moves {d}" for d in DIRECTIONS]
            + [f"the {name} turns {c}" for c in COLOURS if c != colour])


def _name(text: str) -> str:
    """The object a step's sentence is about: "the red circle moves left" → "red circle"."""
    return " ".join(text.split()[1:3])


def howto_questions(seed: int, split: str, n: int) -> list[VideoQuestion]:
    """One question per step of the first ``n`` how-to videos of ``split`` (a pure function of the arguments)."""
    out = []
    for v in range(n):
        video = howto_video(seed, split, v, 0.0, frames=False)
        scene = sample_scene(seed, split, v)
        rng = sample_rng(seed, split, v, "howto-qa")
        names = {f"{o.colour} {o.shape}" for o in scene.objects} | {_name(s.text) for s in video.steps}
        for step in video.steps:
            own = _name(step.text)
            others = sorted((names | {f"{c} {own.split()[1]}" for c in COLOURS}) - {own})
            same_object = [t for t in _about(own) if t != step.text]
            same_action = [t for t in (step.text.replace(own, o) for o in others)
                           if not t.endswith(f"turns {_name(t).split()[0]}")]
            picked = list(rng.choice(same_object, 2, replace=False)) + list(rng.choice(same_action, 2, replace=False))
            options = picked + [step.text]
            order = rng.permutation(OPTIONS)
            out.append(VideoQuestion(v, step.start, step.end, tuple(str(options[i]) for i in order),
                                     int(np.flatnonzero(order == OPTIONS - 1)[0])))
    return out
