"""The lecture's claim 2 on the world: per layer and head of the VisualBERT pretraining run, the
fraction of shape and colour words whose most-attended object region is an object of that shape or
colour, against chance (500 val scenes, first captions).

    python scripts/attention_grounding.py [--model runs/visualbert-world/model] [--tower runs/pipeline/clip/model]
"""

from __future__ import annotations

import argparse

from polymodal.world.scene import sample_scene
from polymodal.modalities.text import load_tokenizer
from polymodal.world.grounding import world_grounding
from polymodal.world.sources.regions import world_region_captions
from polymodal.tasks.region_tower import region_extractor
from polymodal.weights import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/visualbert-world/model")
    parser.add_argument("--tower", default="runs/pipeline/clip/model")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    model, tokenizer = load_checkpoint(args.model), load_tokenizer(args.model)
    data = world_region_captions("val", args.n, 0, 64, region_extractor(args.tower), tokenizer)
    scenes = [sample_scene(0, "val", i) for i in range(args.n)]
    print("| words | n | chance | best head | its accuracy | median head | heads above chance + 0.05 |")
    print("|---|---|---|---|---|---|---|")
    for attribute in ("colour", "shape"):
        r = world_grounding(model, data, scenes, tokenizer, attribute)
        heads = sorted(((v, k) for k, v in r.items() if k.startswith("layer")), reverse=True)
        median = heads[len(heads) // 2][0]
        above = sum(v > r["chance"] + 0.05 for v, _ in heads)
        print(f"| {attribute} | {r['words']} | {r['chance']:.3f} | {heads[0][1]} | {heads[0][0]:.3f} | {median:.3f} "
              f"| {above} of {len(heads)} |")


if __name__ == "__main__":
    main()
