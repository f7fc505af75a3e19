"""Export the world as WebDataset shards (standard extensions: .png, .json, .wav, .npy, .mp4) plus a
COCO-captions JSON, and read such shards back.

Each shard is written under a temporary name and renamed when complete, so an interrupted export
never leaves a shard that a reader would take as whole; :func:`shard_paths` ignores temporaries.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import av
import numpy as np
import soundfile
import webdataset as wds
from PIL import Image

from .audio import SAMPLE_RATE, render_audio
from .captions import captions
from .dataset import check_options
from .documents import funsd, render_document
from .labels import referring_expressions, vqa
from .render import render
from .scene import sample_scene
from .video import FPS, render_video

SHARD_PATTERN = "world-{split}-{shard:05d}.tar"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _mp4(frames: np.ndarray, fps: int = FPS) -> bytes:
    """[T, H, W, 3] uint8 → H.264 MP4 (yuv420p; near-lossless at crf 12), the same bytes for the same
    frames. x264 is pinned for that: one thread, and no macroblock-tree / rate-control lookahead —
    on these tiny frames they made the output depend on what the process had encoded before
    (13 of 40 clips changed when encoded in another order)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "threads": "1", "x264-params": "mbtree=0:rc-lookahead=0"}
        stream.codec_context.thread_count = 1
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = i, Fraction(1, fps)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def sample_record(split: str, index: int, seed: int, modalities: tuple[str, ...], image_size: int,
                  frames: int = 8, audio_seconds: float = 1.0) -> dict:
    """One WebDataset record: ``__key__`` plus one entry per file extension."""
    scene = sample_scene(seed, split, index)
    meta: dict = {"index": index, "split": split, "seed": seed, "place": scene.place,
                  "objects": [dataclasses.asdict(o) for o in scene.objects]}
    record: dict = {"__key__": f"{split}-{index:08d}"}
    if set(modalities) & {"image", "depth", "thermal", "regions", "refexp"}:
        r = render(scene, image_size)
        if "image" in modalities:
            record["png"] = _png(r.image)
        if "depth" in modalities:
            record["depth.npy"] = _npy(r.depth)
        if "thermal" in modalities:
            record["thermal.npy"] = _npy(r.thermal)
        if "regions" in modalities:
            meta["boxes"] = r.boxes.tolist()
        if "refexp" in modalities:
            meta["refexp"] = [{"phrase": e["phrase"], "box": r.boxes[e["object"]].tolist()}
                              for e in referring_expressions(scene)]
    if "caption" in modalities:
        meta["captions"] = [c["text"] for c in captions(scene)]
    if "vqa" in modalities:
        meta["vqa"] = vqa(scene)
    if "audio" in modalities:
        record["wav"] = _wav(render_audio(scene, audio_seconds))
    if set(modalities) & {"video", "imu"}:
        clip = render_video(scene, frames, image_size)
        if "video" in modalities:
            record["mp4"] = _mp4(clip.frames)
            meta["narration"] = [dataclasses.asdict(g) for g in clip.narration]
        if "imu" in modalities:
            record["imu.npy"] = _npy(clip.imu)
    if "document" in modalities:
        doc = render_document(seed, split, index)
        record["document.png"] = _png(doc.image)
        meta["document"] = {**funsd(doc), "qa": doc.qa, "line_ids": doc.line_ids.tolist()}
    record["json"] = json.dumps(meta).encode()
    return record


def export(out: str | Path, split: str = "train", n: int = 1000, seed: int = 0,
           modalities: Iterable[str] = ("image", "caption"), image_size: int = 64, shard_size: int = 1000,
           frames: int = 8, audio_seconds: float = 1.0,
           progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write ``n`` samples as shards of ``shard_size`` into ``out`` (+ ``captions_{split}.json``
    when captions are exported). Options are checked before any work. Returns the shard paths."""
    modalities = check_options(split, n, modalities, image_size)
    if shard_size <= 0:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output folder {out} exists and is a file")
    out.mkdir(parents=True, exist_ok=True)
    paths, coco_images, coco_captions = [], [], []
    for shard, start in enumerate(range(0, n, shard_size)):
        final = out / SHARD_PATTERN.format(split=split, shard=shard)
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as f, wds.TarWriter(f, encoder=False) as sink:
            for index in range(start, min(start + shard_size, n)):
                record = sample_record(split, index, seed, modalities, image_size, frames, audio_seconds)
                sink.write(record)
                if "caption" in modalities:
                    meta = json.loads(record["json"])
                    coco_images.append({"id": index, "file_name": f"{record['__key__']}.png",
                                        "width": image_size, "height": image_size})
                    coco_captions += [{"id": len(coco_captions), "image_id": index, "caption": c}
                                      for c in meta["captions"]]
                if progress:
                    progress(1)
        os.replace(tmp, final)
        paths.append(final)
    if coco_images:
        coco = {"info": {"description": f"polymodal synthetic world, split {split}, seed {seed}"},
                "images": coco_images, "annotations": coco_captions}
        (out / f"captions_{split}.json").write_text(json.dumps(coco))
    return paths


def shard_paths(folder: str | Path, split: str | None = None) -> list[Path]:
    """Complete shards in ``folder`` (temporaries of an interrupted export are skipped)."""
    pattern = f"world-{split}-*.tar" if split else "world-*.tar"
    return sorted(Path(folder).glob(pattern))


def decode(record: dict) -> dict:
    """Raw WebDataset record → arrays: image [H, W, 3] uint8, depth/thermal [H, W], audio [N],
    video [T, H, W, 3] uint8, imu [6, N], meta (the JSON)."""
    out = {"key": record["__key__"], "meta": json.loads(record["json"])}
    if "png" in record:
        out["image"] = np.asarray(Image.open(io.BytesIO(record["png"])).convert("RGB"))
    if "document.png" in record:
        out["document"] = np.asarray(Image.open(io.BytesIO(record["document.png"])).convert("RGB"))
    for name in ("depth", "thermal", "imu"):
        if f"{name}.npy" in record:
            out[name] = np.load(io.BytesIO(record[f"{name}.npy"]), allow_pickle=False)
    if "wav" in record:
        out["audio"], _ = soundfile.read(io.BytesIO(record["wav"]), dtype="float32")
    if "mp4" in record:
        with av.open(io.BytesIO(record["mp4"])) as container:
            out["video"] = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return out


def read_shards(folder: str | Path, split: str | None = None) -> Iterator[dict]:
    """Decoded samples of every complete shard in ``folder``, in order."""
    paths = shard_paths(folder, split)
    if not paths:
        raise FileNotFoundError(f"no world shards in {folder}")
    dataset = wds.WebDataset([str(p) for p in paths], shardshuffle=False, empty_check=False)
    for record in dataset:
        yield decode(record)


def export_howto(out: str | Path, split: str, n: int, seed: int = 0, shift_rate: float = 0.25,
                 size: int = 64) -> list[Path]:
    """The how-to videos of ``split`` as files, as a user's data would come: ``OUT/videos/NAME.mp4``
    (4 fps), ``OUT/narration.csv`` (``video,start,end,text``: the transcript, shifted for
    ``shift_rate`` of its segments) and ``OUT/steps.csv`` (the true step times, for localisation)."""
    import csv

    from .howto import FPS as HOWTO_FPS, howto_video

    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    paths, narration, steps = [], [], []
    for i in range(n):
        video = howto_video(seed, split, i, shift_rate, size)
        path = out / "videos" / f"{split}-{i:05d}.mp4"
        path.write_bytes(_mp4(video.frames, HOWTO_FPS))
        paths.append(path)
        narration += [(path.name, f"{g.start:.2f}", f"{g.end:.2f}", g.text) for g in video.narration]
        steps += [(path.name, f"{s.start:.2f}", f"{s.end:.2f}", s.text) for s in video.steps]
    for name, rows in (("narration.csv", narration), ("steps.csv", steps)):
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["video", "start", "end", "text"])
            writer.writerows(rows)
    return paths
