"""What binding through images buys: emergent zero-shot classification of sensor readings with
text prompts, cross-modal retrieval, and embedding arithmetic — on held-out world scenes.

Zero-shot tasks (whichever facts the sensor carries):

* ``shape``: which shape is in the scene (6 classes); a prediction counts when that shape is
  among the scene's objects.
* ``place``: beach/forest/city/kitchen/desert (5 classes).
* ``count``: how many objects, 1–4 (4 classes); the prompts list that many random objects, as
  the captions do.
* ``camera``: the camera pans left / pans right / stays still (3 classes; IMU).
"""

from __future__ import annotations

import itertools
import random

import torch
import torch.nn.functional as F

from ..captions import WHERE
from ..scene import COLOURS, PLACES, SHAPES, Scene
from ...eval.metrics import retrieval_metrics

TASKS = {"audio": ("place", "shape"), "depth": ("count", "shape"), "thermal": ("place", "count"),
         "imu": ("camera",)}
COUNTS = (1, 2, 3, 4)
CAMERA = ("the camera pans left", "the camera pans right", "the camera is still")


def prompts(task: str) -> list[list[str]]:
    """Per class, the prompt ensemble (phrased as the world's captions are) whose mean embedding
    is the class embedding."""
    if task == "shape":
        return [[f"An image of a {place} scene with a {colour} {shape}." for colour in COLOURS for place in PLACES]
                for shape in SHAPES]
    if task == "place":
        return [[f"A picture showing a {colour} {shape} {WHERE[place]}." for colour, shape in
                 itertools.product(COLOURS, SHAPES)] for place in PLACES]
    if task == "count":
        rng = random.Random(0)
        colours, places = list(COLOURS), list(PLACES)

        def listing(k: int) -> str:
            items = [f"a {rng.choice(colours)} {rng.choice(SHAPES)}" for _ in range(k)]
            return items[0] if k == 1 else ", ".join(items[:-1]) + " and " + items[-1]

        return [[f"A picture showing {listing(k)} {WHERE[rng.choice(places)]}." for _ in range(60)] for k in COUNTS]
    if task == "camera":
        return [[c, f"{c}."] for c in CAMERA]
    raise ValueError(f"unknown zero-shot task {task!r}")


def class_embeddings(task: str, embed_texts) -> torch.Tensor:
    """[C, E]: normalised mean of each class's normalised prompt embeddings."""
    groups = prompts(task)
    flat = embed_texts([p for g in groups for p in g])
    sizes = [len(g) for g in groups]
    return F.normalize(torch.stack([chunk.mean(0) for chunk in flat.split(sizes)]), dim=-1)


def truth(task: str, scenes: list[Scene], pan: torch.Tensor | None = None) -> torch.Tensor:
    """[N, C] bool: which classes are correct for each scene."""
    if task == "shape":
        return torch.tensor([[any(o.shape == s for o in sc.objects) for s in SHAPES] for sc in scenes])
    if task == "place":
        return torch.tensor([[sc.place == p for p in PLACES] for sc in scenes])
    if task == "count":
        return torch.tensor([[len(sc.objects) == k for k in COUNTS] for sc in scenes])
    if task == "camera":
        return torch.stack([pan == -1, pan == 1, pan == 0], dim=1)
    raise ValueError(f"unknown zero-shot task {task!r}")


def zero_shot(emb: torch.Tensor, classes: torch.Tensor, correct: torch.Tensor) -> dict:
    """Top-1 hit rate of nearest-class prediction: emb [N, E], classes [C, E], correct [N, C] bool.

    ``chance`` is the best constant guess's hit rate (the majority class), the bar a model that
    ignores its input can reach."""
    pred = (F.normalize(emb, dim=-1) @ classes.T).argmax(dim=1)
    hit = correct[torch.arange(len(pred)), pred].float().mean().item()
    chance = correct.float().mean(dim=0).max().item()
    return {"top1": hit, "chance": chance}


def retrieval(query: torch.Tensor, gallery: torch.Tensor) -> dict:
    """Recall@1/5 of row i of ``query`` finding row i of ``gallery`` (both [N, E])."""
    m = retrieval_metrics(F.normalize(query, dim=-1), F.normalize(gallery, dim=-1), ks=(1, 5))
    return {"R@1": m["image_to_text_R@1"], "R@5": m["image_to_text_R@5"]}


def arithmetic(image: torch.Tensor, sensor: torch.Tensor, scenes: list[Scene], pairs: int = 300,
               seed: int = 0) -> dict:
    """Image of scene A + sensor reading of scene B (another place) → nearest other scene's image.

    Success: the retrieved scene holds one of A's objects (same colour and shape) *and* is in B's
    place. Rates for the image alone, the sensor alone and their sum (of normalised embeddings).
    """
    g = torch.Generator().manual_seed(seed)
    n = len(scenes)
    kinds = [{(o.colour, o.shape) for o in sc.objects} for sc in scenes]
    image, sensor = F.normalize(image, dim=-1), F.normalize(sensor, dim=-1)
    counts = {"image": 0, "sensor": 0, "sum": 0}
    done = 0
    while done < pairs:
        a, b = torch.randint(n, (2,), generator=g).tolist()
        if scenes[a].place == scenes[b].place:
            continue
        done += 1
        for name, q in (("image", image[a]), ("sensor", sensor[b]), ("sum", image[a] + sensor[b])):
            scores = image @ q
            scores[[a, b]] = float("-inf")
            r = int(scores.argmax())
            counts[name] += bool(kinds[r] & kinds[a]) and scenes[r].place == scenes[b].place
    return {k: v / pairs for k, v in counts.items()}
