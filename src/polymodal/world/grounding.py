"""Attention grounding on the world (the lecture's VisualBERT figure, measured): which shape and colour
words the captions use, and which shape and colour each scene's object regions have."""

from __future__ import annotations

from ..modalities.text import TextTokenizer
from ..tasks.grounding import grounding_accuracy
from .captions import SYNONYMS, plural
from .scene import COLOURS, Scene


def attribute_words(attribute: str) -> dict[str, str]:
    """Word → the value it names: ``attribute`` "shape" (every shape name, synonyms and plurals) or "colour"."""
    if attribute == "shape":
        return {w: shape for shape, names in SYNONYMS.items() for n in names for w in (n, plural(n))}
    if attribute == "colour":
        return {c: c for c in COLOURS}
    raise ValueError(f"attribute {attribute!r}: choose shape or colour")


def world_grounding(model, data, scenes: list[Scene], tokenizer: TextTokenizer, attribute: str = "shape",
                    batch: int = 64) -> dict:
    """:func:`~polymodal.tasks.grounding.grounding_accuracy` on captions of ``scenes`` (regions: the
    whole image, then the scene's objects in order) for the words of ``attribute``."""
    values = [[getattr(o, attribute) for o in scene.objects] for scene in scenes]
    return grounding_accuracy(model, data, values, tokenizer, attribute_words(attribute), batch)
