"""Calibrated relevance: how a hit's similarity compares with the best hits of unrelated queries.

A raw cosine means different things for different models, modalities and queries (a text query's
cosines to images sit near 0.2 for CLIP, an image query's to images near 0.6), so no fixed cutoff
can say "nothing here fits". Instead:

1. per modality, the index keeps the similarity of the best hit of each of a fixed set of
   background queries that are unrelated to any collection (:data:`BACKGROUND`) — what "the best an
   unrelated query finds here" looks like — as its mean ``m`` and sd ``d``;
2. the relevance of a hit at similarity ``s`` is the probability that an unrelated query's best hit
   scores lower, under a Gumbel fit to ``m`` and ``d`` (the best of many similarities is a maximum,
   whose distribution is Gumbel's; a normal fit's thin tail put near misses and true matches
   together at 0.999…): ``exp(−exp(−(s − μ) / β))`` with ``β = d·√6 / π``, ``μ = m − 0.5772 β``.
   0.5 is about a typical unrelated query's best hit; 0.99 better than 99 % of them.

Standardising each query by its own similarities to a sample of the items first (some queries are
close to everything) was tried and measured worse: AUROC 0.876 against 0.908 for the calibrated
cosine on the main job's folder (benchmarks/search_relevance.py).

The calibration is rebuilt after every indexing run that changed the index (``calibration.json``,
stamped with the generation it was built from) and on first use when it is missing or stale.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..fileio import atomic_write

MIN_SD = 1e-3
EULER_GAMMA = 0.5772156649
VERSION = 3  # of calibration.json: a file of another version is rebuilt
DEFAULT_MIN_RELEVANCE = 0.99  # benchmarks/search_relevance.py: on the main job's folder, P 0.78 R 0.93 (images)
# Queries about nothing a collection is likely to hold together: everyday scenes, objects, documents,
# sounds, in plain words. Their best hits are the yardstick of "unrelated".
BACKGROUND = (
    "a recipe for lentil soup", "the stock market closed lower today", "a chess opening for beginners",
    "instructions for assembling a bookshelf", "a violin concerto in D minor", "the rules of cricket",
    "a tax return form for self employed workers", "a lighthouse in a winter storm", "how to replace a bicycle chain",
    "an astronaut repairing a satellite", "a wedding cake with white roses", "a traffic jam on a motorway",
    "the life cycle of a butterfly", "a knitting pattern for a scarf", "a volcano erupting at night",
    "a train timetable for the weekend", "the anatomy of the human heart", "a jazz band playing in a club",
    "a passport photo of a smiling man", "a map of the london underground", "a cup of coffee on a wooden table",
    "a goalkeeper saving a penalty", "the periodic table of elements", "a dentist examining teeth",
    "a hot air balloon over a valley", "a spreadsheet of monthly expenses", "a cat sleeping on a keyboard",
    "a medieval castle on a hill", "a thunderstorm over the ocean", "a child learning to ride a bike",
    "a doctor's prescription for antibiotics", "a skyscraper under construction", "a bowl of ramen noodles",
    "an orchestra tuning before a concert", "a field of sunflowers in summer", "a laptop with a cracked screen",
    "the minutes of a board meeting", "a surfer riding a large wave", "a pair of running shoes",
    "a helicopter landing on a rooftop", "a birthday party with balloons", "a library with tall shelves",
    "a snowboarder jumping off a ramp", "a car engine being repaired", "the lyrics of a folk song",
    "an elephant drinking at a river", "a microscope image of cells", "a crowded train station at rush hour",
    "a garden with tomato plants", "a contract for renting an apartment", "a dog catching a frisbee",
    "a bridge lit up at night", "a bakery display of croissants", "a runner crossing the finish line",
    "a thermometer showing a fever", "a desert road at sunset", "a church choir singing a hymn",
    "a parking ticket on a windshield", "a scuba diver near a coral reef", "a pile of autumn leaves",
    "a power plant with cooling towers", "a classroom with a blackboard", "an airplane taking off in the rain",
    "a farmer driving a tractor",
)


@dataclass
class ModalityNull:
    mean: float  # of the background queries' best-hit similarity
    sd: float


class Calibration:
    """The relevance yardstick of one index (see the module's docstring)."""

    def __init__(self, generation: int, nulls: dict[str, ModalityNull]):
        self.generation = generation
        self.nulls = nulls

    # -------------------------------------------------------------------- building and keeping
    @classmethod
    def build(cls, store, embed_texts: Callable[[list[str]], np.ndarray]) -> "Calibration":
        """From the index's items and the background queries embedded by ``embed_texts`` → [B, E]."""
        generation = store.generation()
        with warnings.catch_warnings():  # a small model's context cuts some of them short: no matter
            warnings.simplefilter("ignore", UserWarning)
            background = np.asarray(embed_texts(list(BACKGROUND)), np.float32)
        nulls = {}
        for modality, index in store.faiss().items():
            if index.ntotal == 0:
                continue
            best, _ = index.search(background, 1)
            nulls[modality] = ModalityNull(float(best[:, 0].mean()), max(float(best[:, 0].std()), MIN_SD))
        return cls(generation, nulls)

    def save(self, folder) -> None:
        record = {"version": VERSION, "generation": self.generation, "nulls": {m: [n.mean, n.sd] for m, n in self.nulls.items()}}
        atomic_write(folder / "calibration.json", lambda p: open(p, "w").write(json.dumps(record)))

    @classmethod
    def load(cls, store) -> "Calibration | None":
        """The saved calibration when it was built from the index's current generation, else None."""
        try:
            record = json.loads((store.folder / "calibration.json").read_text())
            if record.get("version") != VERSION or record["generation"] != store.generation():
                return None
            nulls = {str(m): ModalityNull(float(a), float(b)) for m, (a, b) in record["nulls"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(record["generation"], nulls)

    @classmethod
    def current(cls, store, embed_texts: Callable[[list[str]], np.ndarray]) -> "Calibration":
        """The saved one when current, else built (and saved when the folder is writable)."""
        found = cls.load(store)
        if found is None:
            found = cls.build(store, embed_texts)
            try:
                found.save(store.folder)
            except OSError:  # a read-only index still answers; it rebuilds next time
                pass
        return found

    # ------------------------------------------------------------------------------- using
    def relevance(self, modality: str | None, similarities: np.ndarray) -> np.ndarray:
        """[N] relevance in [0, 1] of items of ``modality`` at ``similarities`` [N] to a query (NaN for
        a modality the index had no items of when calibrated)."""
        null = self.nulls.get(modality or "")
        similarities = np.asarray(similarities, np.float32)
        if null is None:
            return np.full(similarities.shape, np.nan, np.float32)
        beta = null.sd * math.sqrt(6) / math.pi
        mu = null.mean - EULER_GAMMA * beta
        return np.exp(-np.exp(-(similarities.astype(np.float64) - mu) / beta)).astype(np.float32)
