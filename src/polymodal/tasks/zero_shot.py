"""Zero-shot classification (CLIP): embed a prompt per class (averaged over a template ensemble)
and pick the class whose text embedding is nearest to the image."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..modalities.image import ImageReadError, load_image
from .embedder import Embedder

DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.")


class ZeroShotClassifier:
    """``classes`` → a [C, E] weight matrix; ``predict(images)`` → probabilities [N, C]."""

    def __init__(self, encoder: Embedder, classes: list[str], templates: tuple[str, ...] = DEFAULT_TEMPLATES):
        if not classes:
            raise ValueError("zero-shot classification needs at least one class name")
        bad = [t for t in templates if "{}" not in t]
        if bad:
            raise ValueError(f"templates must contain '{{}}' for the class name: {bad}")
        self.encoder, self.classes = encoder, list(classes)
        prompts = [t.format(c) for c in classes for t in templates]
        emb = encoder.embed_texts(prompts, truncate=False).view(len(classes), len(templates), -1)
        self.weights = F.normalize(emb.mean(dim=1), dim=-1)  # prompt ensemble, re-normalised

    @torch.no_grad()
    def predict(self, images: list) -> torch.Tensor:
        """Images (PIL or paths) → class probabilities [N, C]."""
        logits = self.encoder.scale() * self.encoder.embed_images(images) @ self.weights.T
        return logits.softmax(dim=-1)

    def rank(self, images: list, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the ``top_k`` (class, probability) pairs, best first."""
        probs = self.predict(images)
        top = probs.topk(min(top_k, len(self.classes)), dim=-1)
        return [[(self.classes[i], p) for p, i in zip(row_p.tolist(), row_i.tolist())]
                for row_p, row_i in zip(top.values, top.indices)]

    def rank_files(self, paths: list[Path], top_k: int = 5) -> tuple[list[tuple[Path, list]], list[str]]:
        """:meth:`rank` for image files, one at a time: ([(path, ranked pairs)], the unreadable ones
        as "file: reason" — they never stop the rest)."""
        ranked, failed = [], []
        for path in paths:
            try:
                image = load_image(path)
            except ImageReadError as e:
                failed.append(str(e))
                continue
            ranked.append((path, self.rank([image], top_k)[0]))
        return ranked, failed
