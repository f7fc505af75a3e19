"""A minimal generator of captioned shape images for the demo and tests: one coloured shape of a
given size on a noisy background. (The full synthetic world is ``polymodal.data.world``'s job.)"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (215, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (235, 205, 30), "purple": (140, 50, 190), "orange": (245, 135, 25),
}
SHAPES = ("circle", "square", "triangle", "star")
SIZES = ("small", "large")
# One unseen shape per colour, and every shape unseen in some colour: for zero-shot tests.
HELD_OUT = {("red", "triangle"), ("green", "star"), ("blue", "circle"), ("yellow", "square"),
            ("purple", "star"), ("orange", "circle")}


@dataclass(frozen=True)
class ShapeScene:
    colour: str
    shape: str
    size: str

    @property
    def label(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.colour} {self.shape}"


def all_scenes(held_out: bool | None = None) -> list[ShapeScene]:
    """Every (colour, shape, size); ``held_out`` True/False keeps only the held-out/seen combinations."""
    scenes = [ShapeScene(c, s, z) for c, s, z in itertools.product(COLOURS, SHAPES, SIZES)]
    if held_out is None:
        return scenes
    return [x for x in scenes if ((x.colour, x.shape) in HELD_OUT) == held_out]


def render(scene: ShapeScene, size: int, rng: np.random.Generator) -> Image.Image:
    """The scene as an RGB image [size × size], position and background drawn from ``rng``."""
    bg = rng.integers(150, 235, 3)
    noise = rng.normal(0, 12, (size, size, 3))
    img = Image.fromarray(np.clip(bg + noise, 0, 255).astype(np.uint8))
    r = size * (rng.uniform(0.12, 0.18) if scene.size == "small" else rng.uniform(0.28, 0.36))
    cx, cy = rng.uniform(r + 1, size - r - 1, 2)
    jitter = rng.integers(-15, 16, 3)
    fill = tuple(int(v) for v in np.clip(np.array(COLOURS[scene.colour]) + jitter, 0, 255))
    draw = ImageDraw.Draw(img)
    if scene.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif scene.shape == "square":
        s = r * 0.85
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif scene.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r * 0.95, cy + r * 0.8), (cx + r * 0.95, cy + r * 0.8)], fill=fill)
    else:
        points = [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                   cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5)) for k in range(10)]
        draw.polygon(points, fill=fill)
    return img
