"""World scenes written as ordinary files, one per modality — what a person's folder looks like:
``sceneNNNNN.png``, ``.wav``, ``.mp4``, ``.txt`` (a caption), ``_depth.npy`` (metres),
``_thermal.npy`` (°C), ``_imu.npy`` ([6, T]); optionally a JSONL file of each scene's labels.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import numpy as np

from .dataset import WorldDataset
from .export import _mp4, _png, _wav

FILE_MODALITIES = ("image", "audio", "video", "caption", "depth", "thermal", "imu")


def write_files(out: str | Path, split: str = "test", n: int = 100, seed: int = 0, image_size: int = 64,
                modalities: tuple[str, ...] = FILE_MODALITIES, start: int = 0, labels: str | Path | None = None,
                progress: Callable[[int], None] | None = None) -> Path:
    """Write scenes ``start .. start + n - 1`` of ``split`` into ``out`` (created); with ``labels``, append
    each scene's place and objects to that JSONL file."""
    unknown = [m for m in modalities if m not in FILE_MODALITIES]
    if unknown:
        raise ValueError(f"unknown file modalities {unknown}; choose from {', '.join(FILE_MODALITIES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = WorldDataset(split, start + n, seed, image_size, modalities=tuple(modalities), frames=8)
    with open(labels or "/dev/null", "a") as label_file:
        for i in range(start, start + n):
            it, stem = ds[i], out / f"scene{i:05d}"
            if "image" in it:
                Path(f"{stem}.png").write_bytes(_png(it["image"].permute(1, 2, 0).numpy()))
            if "audio" in it:
                Path(f"{stem}.wav").write_bytes(_wav(it["audio"].numpy()))
            if "video" in it:
                Path(f"{stem}.mp4").write_bytes(_mp4(it["video"].permute(0, 2, 3, 1).numpy()))
            if "caption" in it:
                Path(f"{stem}.txt").write_text(it["caption"] + "\n")
            for m in ("depth", "thermal"):
                if m in it:
                    np.save(f"{stem}_{m}.npy", it[m][0].numpy())
            if "imu" in it:
                np.save(f"{stem}_imu.npy", it["imu"].numpy())
            scene = it["scene"]
            label_file.write(json.dumps({"scene": stem.name, "split": split, "index": i, "place": scene.place,
                                     "objects": [dataclasses.asdict(o) for o in scene.objects]}) + "\n")
            if progress is not None:
                progress(1)
    return out
