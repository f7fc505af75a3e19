"""Rendering a scene: RGB image, depth (metres), thermal (°C), per-pixel object ids and the
visible boxes of the objects. Objects are painted far to near, so nearer objects occlude."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .scene import COLOURS, PLACES, TEMPERATURES, Scene, WorldObject, sample_rng

MIN_SIZE = 32  # below this the small objects are a few pixels wide and shapes become unreadable
BACKGROUND_DEPTH = (12.0, 20.0)  # bottom row (ground, nearer) → top row (far)


@dataclass
class Rendering:
    image: np.ndarray  # [H, W, 3] uint8
    depth: np.ndarray  # [H, W] float32, metres
    thermal: np.ndarray  # [H, W] float32, °C
    object_ids: np.ndarray  # [H, W] int8, index into scene.objects, -1 = background
    boxes: np.ndarray  # [N, 4] float32 (x0, y0, x1, y1) in pixels, x1/y1 exclusive; visible part
    visible: np.ndarray  # [N] float32, visible fraction of each object's own area


def _outline(obj: WorldObject, size: int) -> list:
    """Polygons (or an ellipse box, tagged) that draw ``obj`` on a ``size`` canvas."""
    cx, cy, r = obj.x * size, obj.y * size, obj.radius * size
    if obj.shape == "circle":
        return [("ellipse", (cx - r, cy - r, cx + r, cy + r))]
    if obj.shape == "square":
        s = r * 0.85
        return [("polygon", [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)])]
    if obj.shape == "triangle":
        return [("polygon", [(cx, cy - r), (cx - r * 0.95, cy + r * 0.8), (cx + r * 0.95, cy + r * 0.8)])]
    if obj.shape == "star":
        return [("polygon", [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                              cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5)) for k in range(10)])]
    if obj.shape == "hexagon":
        return [("polygon", [(cx + r * math.cos(k * math.pi / 3), cy + r * math.sin(k * math.pi / 3)) for k in range(6)])]
    if obj.shape == "cross":
        a = r * 0.36
        return [("polygon", [(cx - a, cy - r), (cx + a, cy - r), (cx + a, cy + r), (cx - a, cy + r)]),
                ("polygon", [(cx - r, cy - a), (cx + r, cy - a), (cx + r, cy + a), (cx - r, cy + a)])]
    raise ValueError(f"unknown shape {obj.shape!r}")


def object_mask(obj: WorldObject, size: int) -> np.ndarray:
    """[size, size] bool: the pixels ``obj`` covers when nothing is in front of it."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for kind, geometry in _outline(obj, size):
        (draw.ellipse if kind == "ellipse" else draw.polygon)(geometry, fill=1)
    return np.asarray(canvas, dtype=bool)


def render(scene: Scene, size: int = 64, pan: float = 0.0, image_only: bool = False) -> Rendering:
    """Render ``scene`` at ``size``×``size``; deterministic in (seed, split, index, size).

    ``pan`` shifts the background's faint vertical stripes by that fraction of the width, so that
    a camera pan is visible in video frames (objects carry their own positions). ``image_only``
    skips the depth, thermal and box outputs (left empty), as video frames need only pixels."""
    if size < MIN_SIZE:
        raise ValueError(f"image size {size} is too small for the objects; use at least {MIN_SIZE}")
    rng = sample_rng(scene.seed, scene.split, scene.index, f"render{size}")
    top, bottom, ambient = PLACES[scene.place]
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    cols = (np.arange(size, dtype=np.float32) / size + pan)[None, :, None]
    stripes = 1.0 + 0.07 * np.sin(2 * np.pi * 3 * cols)
    image = (np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t) * stripes
    depth = np.repeat((BACKGROUND_DEPTH[1] - (BACKGROUND_DEPTH[1] - BACKGROUND_DEPTH[0]) * t[:, :, 0]), size, axis=1)
    thermal = np.full((size, size), ambient, np.float32) - 3.0 * t[:, :, 0]  # the ground is a little cooler
    ids = np.full((size, size), -1, np.int8)
    masks = [object_mask(o, size) for o in scene.objects]
    for i in sorted(range(len(scene.objects)), key=lambda k: -scene.objects[k].depth):  # far → near
        obj, m = scene.objects[i], masks[i]
        ids[m] = i
        shade = rng.uniform(0.9, 1.05)
        image[m] = np.array(COLOURS[obj.colour], np.float32) * shade
        depth[m] = obj.depth
        thermal[m] = TEMPERATURES[obj.temperature]
    image += rng.standard_normal(image.shape, dtype=np.float32) * 5.0
    image = np.clip(image, 0, 255).astype(np.uint8)
    if image_only:
        empty = np.zeros((0,), np.float32)
        return Rendering(image, empty, empty, ids, np.zeros((0, 4), np.float32), empty)
    thermal += rng.standard_normal(thermal.shape, dtype=np.float32) * 0.5
    boxes = np.zeros((len(scene.objects), 4), np.float32)
    visible = np.zeros(len(scene.objects), np.float32)
    for i, m in enumerate(masks):
        seen = ids == i
        visible[i] = seen.sum() / max(m.sum(), 1)
        if seen.any():
            rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return Rendering(image, depth.astype(np.float32), thermal.astype(np.float32), ids, boxes, visible)


def noisy_boxes(boxes: np.ndarray, size: int, rng: np.random.Generator, jitter: float = 0.05,
                miss: float = 0.1, false_positive: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like regions from true boxes [N, 4]: each box jittered by up to ``jitter`` of its size,
    dropped with probability ``miss``, plus one random false box with probability ``false_positive``.

    Returns (boxes [M, 4], source [M]) where source is the true object index or -1 for a false box."""
    out, source = [], []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if rng.random() < miss:
            continue
        w, h = x1 - x0, y1 - y0
        d = rng.uniform(-jitter, jitter, 4) * np.array([w, h, w, h])
        out.append(np.clip([x0 + d[0], y0 + d[1], x1 + d[2], y1 + d[3]], 0, size))
        source.append(i)
    if rng.random() < false_positive:
        x0, y0 = rng.uniform(0, size * 0.7, 2)
        w, h = rng.uniform(size * 0.1, size * 0.3, 2)
        out.append(np.clip([x0, y0, x0 + w, y0 + h], 0, size))
        source.append(-1)
    return np.asarray(out, np.float32).reshape(-1, 4), np.asarray(source, np.int64)
