"""World scenes rendered into memory as pictures with their captions or one label each."""

from __future__ import annotations

import torch

from .captions import captions
from .render import render
from .scene import PLACES, sample_scene


def world_captions(split: str, n: int, seed: int, size: int) -> tuple[torch.Tensor, list[list[str]]]:
    """Render ``n`` scenes of ``split`` → (images uint8 [n, 3, S, S], captions [n][3])."""
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    texts = []
    for i in range(n):
        scene = sample_scene(seed, split, i)
        images[i] = torch.from_numpy(render(scene, size).image).permute(2, 0, 1)
        texts.append([c["text"] for c in captions(scene)])
    return images, texts


def world_groups(split: str, n: int, seed: int) -> torch.Tensor:
    """Hard-negative group of each scene [n]: scenes that share the place and the set of colours,
    so telling them apart takes their shapes, counts and sizes."""
    ids: dict[tuple, int] = {}
    keys = []
    for i in range(n):
        scene = sample_scene(seed, split, i)
        keys.append(ids.setdefault((scene.place, frozenset(o.colour for o in scene.objects)), len(ids)))
    return torch.tensor(keys)


def world_labels(split: str, n: int, seed: int, size: int, label: str) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Render ``n`` scenes of ``split`` with one label each → (images uint8 [n, 3, S, S], labels
    int64 [n], class names). ``label``: ``place`` (the scene's place) or ``count`` (1–4 objects)."""
    if label not in ("place", "count"):
        raise ValueError(f"unknown world label {label!r}; known: place, count")
    classes = list(PLACES) if label == "place" else [1, 2, 3, 4]
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    for i in range(n):
        scene = sample_scene(seed, split, i)
        images[i] = torch.from_numpy(render(scene, size).image).permute(2, 0, 1)
        labels[i] = classes.index(scene.place if label == "place" else len(scene.objects))
    return images, labels, classes
