"""`polymodal regions`: pictures per second through an image tower's RoI-align, one picture at a time
(the path before batching) against ``--batch`` pictures per forward pass, end to end (decode, resize,
tower, RoI-align, write .npz), on the real pictures matplotlib ships (JPEG and PNG, 128–1,100 px).

    python benchmarks/regions.py [--preset clip-world-minilm] [--n 64] [--batch 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib
import torch

import polymodal
from polymodal.tasks.region_extractor import RegionExtractor, write_region_files
from polymodal.tasks.embedder import Embedder

from timing import alternating_medians


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="clip-world-minilm")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--pictures", choices=("photos", "world"), default="photos",
                    help="matplotlib's photos and icons, or 64 px world renders with their object boxes")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = Path(matplotlib.get_data_path())
    photos = [data / "sample_data" / "grace_hopper.jpg", data / "sample_data" / "Minduka_Present_Blue_Pack.png",
              data / "sample_data" / "logo2.png", *sorted((data / "images").glob("*_large.png"))]
    work = Path(tempfile.mkdtemp())
    images, table = [], {}
    from PIL import Image

    for k in range(a.n):
        if a.pictures == "world":
            from polymodal.world.render import render
            from polymodal.world.scene import sample_scene

            r = render(sample_scene(0, "val", k), 64)
            images.append(work / f"p{k:04d}.png")
            Image.fromarray(r.image).save(images[-1])
            table[images[-1].name] = [[0, 0, 64, 64], *r.boxes.tolist()]
            continue
        src = photos[k % len(photos)]
        images.append(work / f"p{k:04d}{src.suffix}")
        shutil.copyfile(src, images[-1])
        w, h = Image.open(src).size
        table[images[-1].name] = [[0, 0, w, h], [0, 0, w / 2, h / 2], [w / 2, h / 2, w, h],
                                  [w / 4, h / 4, 3 * w / 4, 3 * h / 4]]
    folder = work / "model"
    polymodal.save(polymodal.create(a.preset), folder)
    embedder = Embedder.from_checkpoint(str(folder))
    tower = embedder.model.visual if hasattr(embedder.model, "visual") else embedder.model.encoders["image"]
    extractor = RegionExtractor(tower, embedder.transform)
    with torch.inference_mode():
        times = alternating_medians({
            "one at a time": lambda: write_region_files(extractor, images, table, work / "one", batch=1),
            f"batch {a.batch}": lambda: write_region_files(extractor, images, table, work / "many", batch=a.batch),
        }, a.steps)
    one, many = times["one at a time"], times[f"batch {a.batch}"]
    same = all(torch.allclose(torch.from_numpy(__import__("numpy").load(work / "one" / f"{p.stem}.npz")["features"]),
                              torch.from_numpy(__import__("numpy").load(work / "many" / f"{p.stem}.npz")["features"]),
                              atol=1e-4) for p in images)
    print(json.dumps({"preset": a.preset, "pictures": f"{a.n} {a.pictures}", "threads": a.threads,
                      "one_at_a_time_s_per_picture": round(one / a.n, 4), "batched_s_per_picture": round(many / a.n, 4),
                      "speedup": round(one / many, 2), "same_features": same}))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
