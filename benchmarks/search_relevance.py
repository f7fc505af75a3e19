"""Is "no good match" right? Calibrated relevance on the folder the main job indexes.

    python benchmarks/search_relevance.py [--run runs/pipeline] [--threshold 0.99]

Needs a finished ``polymodal pipeline`` run (its ImageBind model, its index of 100 held-out world
scenes). Queries, each searched over the index's images (meaning, as a user searching photos):

- **with a match**: for each indexed scene, a paraphrase of its caption that is not the one in its
  .txt file (another template) — its own picture is the true match;
- **without, in the world**: captions of other test scenes whose place and set of (colour, shape)
  objects no indexed scene has (a scene sharing some objects is still there: near misses);
- **without, off the world**: everyday requests (:data:`OFF_WORLD`; none of them is a background
  query of :mod:`polymodal.search.relevance`).

For the top hit of each query: AUROC of the calibrated relevance and of the raw cosine (positives
against each negative set and both), and precision / recall of "a good match" at ``--threshold``
(the default of ``--min-relevance``). Also reported: how often the top hit of a positive is its own
scene (R@1), and the same decision over every modality in hybrid mode (words count there).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from polymodal.search.relevance import DEFAULT_MIN_RELEVANCE

OFF_WORLD = (
    "a golden retriever swimming in a lake", "the invoice from my plumber", "a bowl of spaghetti carbonara",
    "snow on a mountain cabin roof", "my grandmother's birthday party", "a red sports car on a racetrack",
    "the eiffel tower at night", "a baby sleeping in a cot", "a football stadium full of fans",
    "fireworks over a harbour", "a cup of green tea", "a man fixing a roof", "a horse in a field of poppies",
    "an old typewriter on a desk", "a queue outside a cinema", "a rainbow over a waterfall",
    "a pizza coming out of an oven", "a boy playing the drums", "a penguin on an ice floe", "a crowded beach bar",
    "a receipt for groceries", "a sailing boat in a storm", "a kitten playing with wool", "a dentist appointment letter",
    "the northern lights over a forest", "a tractor ploughing a field", "a bride throwing her bouquet",
    "a skateboarder in a park", "a pile of books on a bed", "a monkey eating a banana",
)


def scene_key(scene) -> tuple:
    return scene.place, frozenset((o.colour, o.shape) for o in scene.objects)


def main() -> None:
    from polymodal.eval.metrics import auroc
    from polymodal.search.hybrid import Searcher
    from polymodal.search.query import embedder_for
    from polymodal.search.store import Store
    from polymodal.world.captions import captions
    from polymodal.world.scene import sample_scene

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/pipeline"))
    ap.add_argument("--threshold", type=float, default=DEFAULT_MIN_RELEVANCE)
    args = ap.parse_args()
    store = Store(args.run / "index")
    searcher = Searcher(store, embedder_for(store))
    embedder = searcher.embedder
    indexed = {}
    for (path,) in store.db.execute("SELECT file FROM items WHERE modality = 'image' AND error IS NULL"):
        stem = Path(path).stem
        if stem.startswith("scene"):
            indexed[int(stem[5:])] = path
    scenes = {i: sample_scene(0, "test", i) for i in indexed}
    keys = {scene_key(s) for s in scenes.values()}
    positives, targets = [], []
    for i, scene in sorted(scenes.items()):
        file_caption = Path(indexed[i]).with_suffix(".txt").read_text().strip()
        options = [c["text"] for c in captions(scene, 4) if c["text"] != file_caption]
        positives.append(options[0] if options else file_caption)
        targets.append(indexed[i])
    near = []
    j = max(indexed) + 1
    while len(near) < len(positives):
        scene = sample_scene(0, "test", j)
        if scene_key(scene) not in keys:
            near.append(captions(scene, 1)[0]["text"])
        j += 1
    sets = {"with a match": positives, "none, in the world": near, "none, off the world": list(OFF_WORLD)}

    def top(queries, modalities, mode):
        out = []
        for q in queries:
            vector = embedder.embed_texts([q])[0].numpy()
            hits = searcher.search(vector, q, 1, mode, modalities).hits
            out.append((hits[0].relevance, hits[0].similarity, hits[0].item.file) if hits else (0.0, -1.0, None))
        return out

    print(f"index {store.folder}: {len(indexed)} scenes; {len(positives)} queries with a match, "
          f"{len(near)} near misses, {len(OFF_WORLD)} off-world; threshold {args.threshold}\n")
    for label, modalities, mode in (("images, meaning", {"image"}, "meaning"), ("every modality, hybrid", None, "hybrid")):
        results = {name: top(queries, modalities, mode) for name, queries in sets.items()}
        pos = results["with a match"]
        r1 = np.mean([f is not None and Path(f).stem.split("_")[0] == Path(t).stem for (_, _, f), t in zip(pos, targets)])
        print(f"### {label}\n\nR@1 of the queries with a match (the top hit is of its scene): {r1:.3f}\n")
        print("| negatives | AUROC relevance | AUROC raw cosine | precision | recall |")
        print("|---|---|---|---|---|")
        for name in ("none, in the world", "none, off the world", "both"):
            neg = results[name] if name != "both" else results["none, in the world"] + results["none, off the world"]
            rel = torch.tensor([r for r, _, _ in pos + neg], dtype=torch.float64)
            cos = torch.tensor([c for _, c, _ in pos + neg], dtype=torch.float64)
            labels = torch.tensor([1] * len(pos) + [0] * len(neg))
            said = rel >= args.threshold
            tp = int((said & labels.bool()).sum())
            precision = tp / max(int(said.sum()), 1)
            recall = tp / len(pos)
            print(f"| {name} | {auroc(rel, labels):.3f} | {auroc(cos, labels):.3f} | {precision:.3f} | {recall:.3f} |")
        print("\nThresholds, both negative sets: " + "; ".join(
            f"{t}: P {_pr(rel, labels, t)[0]:.2f} R {_pr(rel, labels, t)[1]:.2f}" for t in SWEEP) + "\n")


SWEEP = (0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999)


def _pr(rel, labels, t):
    said = rel >= t
    tp = int((said & labels.bool()).sum())
    return tp / max(int(said.sum()), 1), tp / int(labels.sum())


if __name__ == "__main__":
    main()
