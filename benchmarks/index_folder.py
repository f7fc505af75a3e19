"""Indexing a real, messy folder: files/s and peak memory on ≥ 5,000 mixed files, then the re-index
of an unchanged folder against its floor (a bare ``os.walk`` + ``stat`` of the same files).

    python benchmarks/index_folder.py [--model runs/imagebind-world/model] [--scenes 750] [--keep DIR]

The folder: world test scenes as ordinary files (png, wav, txt, depth/thermal/IMU .npy, and mp4 for
one scene in eight), real pictures and sounds from installable packages (scikit-image's sample
images, Debian's ``sound-theme-freedesktop`` Ogg Vorbis ``.oga`` sounds; each copied into several
sub-folders), and 1 % hostile files (decompression bombs of every kind, a PNG header claiming
14000² pixels, NaN IMU, HTML, empty and truncated files, links to ``/etc/passwd``). Without
``--model`` the model is the world ImageBind architecture (``clip-world-tiny`` towers, the
``imagebind-world`` sensor sizes) with random weights: the same compute as the trained one.

Sample files: ``pip install --target /tmp/skimage --no-deps scikit-image`` and
``apt-get install sound-theme-freedesktop``; missing ones are reported and left out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "search"))
import hostile_files  # noqa: E402  (the bombs the tests use)

SKIMAGE = Path("/tmp/skimage/skimage/data")
SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")


def model_folder(args, tmp: Path) -> Path:
    if args.model:
        return Path(args.model)
    import torch

    import polymodal
    from polymodal.world import WorldDataset
    from polymodal.world.sensor_inputs import world_processor
    from polymodal.models.imagebind import imagebind_from_clip
    from polymodal.modalities.text import train_tokenizer
    from polymodal.registry import preset

    torch.manual_seed(0)
    model = imagebind_from_clip(polymodal.create("clip-world-tiny"), preset("imagebind-world"))
    folder = tmp / "model"
    polymodal.save(model, folder, processor=world_processor(model.config))
    texts = [WorldDataset("train", 256, modalities=("caption",))[i]["caption"] for i in range(256)]
    train_tokenizer(texts, "clip", 1024, context_length=64).save(folder)
    return folder


def hostile(folder: Path, n: int) -> int:
    """About ``n`` hostile files, cycling through every kind; returns how many were written."""
    folder.mkdir(parents=True)
    made = {"bomb.mp4": hostile_files.video_bomb(folder / "bomb.mp4", 3000),
            "bomb.flac": hostile_files.flac_bomb(folder / "bomb.flac", 1800),
            "bomb.pdf": hostile_files.pdf_bomb(folder / "bomb.pdf"),
            "pixels.png": hostile_files.png_pixel_bomb(folder / "pixels.png"),
            "claims.png": hostile_files.png_header_bomb(folder / "claims.png")}
    imu = np.zeros((6, 256), np.float32)
    imu[0, 3] = np.nan
    np.save(folder / "nan_imu.npy", imu)
    (folder / "evil.html").write_text("<script>alert(1)</script>")
    (folder / "empty.png").write_bytes(b"")
    (folder / "cut.png").write_bytes(made["pixels.png"].read_bytes()[:5000])
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    kinds = sorted(folder.iterdir())
    count = len(kinds)
    i = 0
    while count < n:
        src = kinds[i % len(kinds)]
        if not src.is_symlink():
            shutil.copy(src, folder / f"{i}_{src.name}")
            count += 1
        i += 1
    return count


def real_samples(folder: Path, copies: int) -> tuple[int, int]:
    photos = sorted(p for p in SKIMAGE.glob("*") if p.suffix in (".png", ".jpg", ".gif", ".tif")) if SKIMAGE.is_dir() else []
    sounds = sorted(SOUNDS.glob("*.oga")) if SOUNDS.is_dir() else []
    for c in range(copies):
        (folder / f"photos{c}").mkdir(parents=True)
        (folder / f"sounds{c}").mkdir(parents=True)
        for p in photos:
            shutil.copy(p, folder / f"photos{c}" / p.name)
        for s in sounds:
            shutil.copy(s, folder / f"sounds{c}" / s.name)
    return len(photos) * copies, len(sounds) * copies


def bare_walk(folder: Path) -> int:
    n = 0
    for root, dirs, files in os.walk(folder):
        for f in files:
            os.stat(os.path.join(root, f), follow_symlinks=False)
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--scenes", type=int, default=750)
    parser.add_argument("--copies", type=int, default=5, help="copies of each real sample")
    parser.add_argument("--keep", default=None, help="build the folder here and keep it")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    from polymodal.world.files import write_files
    from polymodal.search.ingest import index_folder
    from polymodal.search.store import Store
    from polymodal.tasks import Embedder

    tmp = Path(args.keep or tempfile.mkdtemp())
    folder = tmp / "folder"
    t = time.perf_counter()
    model = model_folder(args, tmp)
    embedder = Embedder.from_checkpoint(model)
    size = embedder.processor.image.size
    still = ("image", "audio", "caption", "depth", "thermal", "imu")
    write_files(folder / "world", "test", args.scenes, image_size=size, modalities=still)
    write_files(folder / "world_video", "test", args.scenes // 8, image_size=size, modalities=("video",))
    photos, sounds = real_samples(folder / "real", args.copies)
    world = sum(1 for _ in (folder / "world").iterdir()) + sum(1 for _ in (folder / "world_video").iterdir())
    bad = hostile(folder / "hostile", max((world + photos + sounds) // 100, 10))
    total = world + photos + sounds + bad
    print(f"folder: {total} files = {world} world + {photos} photos + {sounds} sounds + {bad} hostile "
          f"(built in {time.perf_counter() - t:.0f} s); model {model if args.model else 'world ImageBind, random weights'}; "
          f"torch {torch.__version__}, 2 threads, {os.cpu_count()} CPUs")
    store = Store(tmp / "index", embedder.dim, embedder.model_id, str(model))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    report = index_folder(folder, embedder, store, 32)
    first = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    again = index_folder(folder, embedder, store, 32)
    second = time.perf_counter() - t
    t = time.perf_counter()
    walked = bare_walk(folder)
    floor = time.perf_counter() - t
    result = {"files": total, "indexed": sum(store.counts()["indexed"].values()), "failed": len(report.failed),
              "index_s": first, "files_per_s": total / first, "peak_rss_mb": peak, "rss_before_mb": before,
              "reindex_s": second, "reindex_s_per_10k": second / total * 1e4, "walk_stat_s": floor,
              "reindex_vs_walk": second / floor, "reindex_unchanged": again.unchanged, "walked": walked}
    print("| files | indexed | failed (reported, run went on) | index s | files/s | peak RSS MB (before) "
          "| re-index s | s per 10k files | bare walk+stat s | re-index ÷ walk |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {total} | {result['indexed']} | {result['failed']} | {first:.0f} | {result['files_per_s']:.1f} "
          f"| {peak:.0f} ({before:.0f}) | {second:.2f} | {result['reindex_s_per_10k']:.2f} | {floor:.3f} "
          f"| {result['reindex_vs_walk']:.1f} |")
    kinds: dict[str, int] = {}
    for _, error in report.failed:
        key = error.split(": ", 1)[-1][:60]
        kinds[key] = kinds.get(key, 0) + 1
    for error, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {n:4d} × {error}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if not args.keep:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
