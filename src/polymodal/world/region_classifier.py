"""A small classifier of region features into object classes: the stand-in for the detector's class
head whose softmax (Visual Genome's 1601 classes in the paper) ViLBERT's masked-region objective
regresses to. On the world the classes are colour × shape plus "background"
(``polymodal.world.labels.REGION_CLASSES``), learnt from the true object boxes and from boxes that
cover no object, all read by the same frozen image tower as the regions themselves.

    features [..., D] ─ Linear(D, hidden) ─ GELU ─ Linear(hidden, C) ─▶ logits [..., C]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .labels import REGION_CLASSES
from .render import render
from .scene import sample_rng, sample_scene
from ..tasks.region_extractor import RegionExtractor


class RegionClassifier(nn.Module):
    """Region features [..., D] → class logits [..., C]."""

    def __init__(self, dim: int, classes: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)

    @torch.no_grad()
    def distribution(self, features: torch.Tensor) -> torch.Tensor:
        """Softmax class distributions [..., C] of features [..., D]."""
        return self.eval()(features).softmax(-1)


def train_region_classifier(features: torch.Tensor, labels: torch.Tensor, classes: int, steps: int = 400,
                            batch: int = 256, lr: float = 2e-3, seed: int = 0) -> RegionClassifier:
    """Fit a :class:`RegionClassifier` to features [N, D] with labels [N] by AdamW + cross-entropy."""
    if len(features) != len(labels) or len(features) == 0:
        raise ValueError(f"expected as many labels as features (> 0), got {len(features)} and {len(labels)}")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the caller's RNG stream is left as it was
        torch.manual_seed(seed)
        model = RegionClassifier(features.shape[1], classes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(features), (min(batch, len(features)),), generator=g)
        loss = F.cross_entropy(model(features[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def background_box(boxes: np.ndarray, size: int, rng: np.random.Generator, tries: int = 20) -> np.ndarray | None:
    """A box of 10–30 % of the side that covers no box of ``boxes`` [N, 4]: at most 10 % of it lies
    in any of them, and it holds at most 10 % of any of them; None when ``tries`` draws find none."""
    for _ in range(tries):
        w, h = rng.uniform(0.1, 0.3, 2) * size
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        box = np.array([x0, y0, x0 + w, y0 + h], np.float32)
        inter = (np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
                 * np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None))
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if not len(boxes) or (inter <= 0.1 * w * h).all() and (inter <= 0.1 * np.maximum(areas, 1e-9)).all():
            return box
    return None


@torch.no_grad()
def world_region_labels(split: str, n: int, seed: int, size: int, extractor: RegionExtractor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [M, D] and labels [M] (indices into ``REGION_CLASSES``) of ``n`` world scenes: every
    object's true box, and one box per scene that covers no object ("background")."""
    index = {name: i for i, name in enumerate(REGION_CLASSES)}
    features, labels = [], []
    for i in range(n):
        scene = sample_scene(seed, split, i)
        r = render(scene, size)
        extra = background_box(r.boxes, size, sample_rng(seed, split, i, "background"))
        boxes = r.boxes if extra is None else np.concatenate([r.boxes, extra[None]])
        features.append(extractor(Image.fromarray(r.image), torch.from_numpy(boxes).float()).features)
        labels += [index[f"{o.colour} {o.shape}"] for o in scene.objects] + ([] if extra is None else [0])
    return torch.cat(features), torch.tensor(labels)
