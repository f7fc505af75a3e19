"""Samples per second per core of the synthetic world, per modality set.

    python benchmarks/world.py [--n 500] [--size 64]

Runs in one thread (torch and numpy single-threaded) so the number is per core. Targets
(issue 3): ≥ 500/s for image+caption+depth+thermal at 64 px; ≥ 100/s with audio, 8-frame video
and IMU added; documents ≥ 50 pages/s.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from polymodal.world import WorldDataset  # noqa: E402

SETS = {
    "image+caption+depth+thermal": ("image", "caption", "depth", "thermal"),
    "image+caption+regions+vqa+refexp": ("image", "caption", "regions", "vqa", "refexp"),
    "+audio+video(8 frames)+imu": ("image", "caption", "depth", "thermal", "audio", "video", "imu"),
    "document pages": ("document",),
    "all implemented": ("image", "caption", "depth", "thermal", "regions", "vqa", "refexp", "audio", "video", "imu",
                        "document"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, modalities in SETS.items():
        ds = WorldDataset("train", args.n, image_size=args.size, modalities=modalities)
        ds[0]
        start = time.perf_counter()
        for i in range(args.n):
            ds[i]
        rate = args.n / (time.perf_counter() - start)
        print(f"{name:36s} {args.size:4d}px  {rate:8.0f} samples/s/core")


if __name__ == "__main__":
    main()
