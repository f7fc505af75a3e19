"""Scenes of the synthetic world: a place and 1–4 objects, sampled as a pure function of
``(seed, split, index)``.

Held-out compositions: the (colour, shape) pairs in :data:`HELD_OUT` never appear in the
``train`` split; in ``val``/``test`` each object is drawn from them with probability
``HELD_OUT_RATE``, so zero-shot and compositional generalisation can be measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

PLACES = {
    # name: (top colour, bottom colour, ambient temperature °C)
    "beach": ((150, 195, 230), (222, 205, 160), 28.0),
    "forest": ((95, 125, 90), (60, 85, 55), 15.0),
    "city": ((165, 170, 178), (110, 112, 118), 20.0),
    "kitchen": ((225, 215, 195), (165, 130, 95), 22.0),
    "desert": ((235, 200, 150), (200, 150, 95), 38.0),
}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
COLOURS = {
    "red": (220, 30, 35), "green": (30, 175, 60), "blue": (35, 75, 225), "yellow": (245, 215, 20),
    "purple": (135, 45, 185), "orange": (250, 125, 15), "white": (248, 248, 248), "black": (20, 20, 22),
}
SIZES = ("small", "large")
TEMPERATURES = {"cold": 4.0, "warm": 33.0, "hot": 65.0}
HELD_OUT = frozenset({
    ("purple", "star"), ("red", "hexagon"), ("green", "cross"), ("blue", "triangle"),
    ("yellow", "circle"), ("orange", "square"), ("white", "star"), ("black", "circle"),
})
HELD_OUT_RATE = 0.3
SPLITS = ("train", "val", "test")
# Object radius as a fraction of the image side, by size.
RADIUS = {"small": (0.09, 0.12), "large": (0.17, 0.22)}


@dataclass(frozen=True)
class WorldObject:
    shape: str
    colour: str
    size: str
    x: float  # centre, fraction of width (0 = left)
    y: float  # centre, fraction of height (0 = top)
    radius: float  # fraction of the image side
    depth: float  # metres from the camera
    temperature: str

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    seed: int
    split: str
    index: int
    place: str
    objects: tuple[WorldObject, ...] = field(default_factory=tuple)

    def count(self, colour: str | None = None, shape: str | None = None) -> int:
        return sum(1 for o in self.objects if (colour is None or o.colour == colour)
                   and (shape is None or o.shape == shape))


def sample_rng(seed: int, split: str, index: int, stream: str = "scene") -> np.random.Generator:
    """An independent generator for one sample and one purpose (scene, render noise, captions, …).

    Derived by hashing, so it is identical in every process and independent of call order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
    if index < 0:
        raise ValueError(f"sample index must be >= 0, got {index}")
    digest = hashlib.sha256(f"polymodal-world|{seed}|{split}|{index}|{stream}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


def _pick_kind(rng: np.random.Generator, split: str) -> tuple[str, str]:
    if split != "train" and rng.random() < HELD_OUT_RATE:
        pairs = sorted(HELD_OUT)
        return pairs[rng.integers(len(pairs))]
    while True:
        pair = (COLOURS_LIST[rng.integers(len(COLOURS_LIST))], SHAPES[rng.integers(len(SHAPES))])
        if pair not in HELD_OUT:
            return pair


COLOURS_LIST = tuple(COLOURS)


def sample_scene(seed: int, split: str, index: int, max_objects: int = 4) -> Scene:
    """Scene ``index`` of ``split`` under ``seed``: a place and 1–``max_objects`` objects whose centres
    are far enough apart that each stays mostly visible, with distinct depths (≥ 0.5 m apart)."""
    rng = sample_rng(seed, split, index)
    place = tuple(PLACES)[rng.integers(len(PLACES))]
    n = int(rng.integers(1, max_objects + 1))
    objects: list[WorldObject] = []
    depths = sorted(rng.choice(np.arange(1.0, 9.0, 0.5), size=n, replace=False).tolist())
    rng.shuffle(depths)
    attempts = 0
    while len(objects) < n:
        attempts += 1
        colour, shape = _pick_kind(rng, split)
        size = SIZES[rng.integers(2)]
        radius = float(rng.uniform(*RADIUS[size]))
        x, y = (float(v) for v in rng.uniform(radius + 0.02, 1 - radius - 0.02, 2))
        # Keep centres apart so that no object hides more than about half of another.
        if attempts < 200 and any(np.hypot(x - o.x, y - o.y) < 0.85 * max(radius, o.radius) + 0.5 * min(radius, o.radius)
                                  for o in objects):
            continue
        temperature = tuple(TEMPERATURES)[rng.integers(len(TEMPERATURES))]
        objects.append(WorldObject(shape, colour, size, x, y, radius, float(depths[len(objects)]), temperature))
    return Scene(seed, split, index, place, tuple(objects))
