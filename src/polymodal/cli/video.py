"""``polymodal video features | localize | search``: per-second features for VideoCLIP, steps in time, clips of videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import console, fail, problem, safe


video_app = typer.Typer(no_args_is_help=True, help="Videos: per-second features for VideoCLIP.")


@video_app.command("features")
def video_features_cmd(
    videos: Annotated[list[Path], typer.Argument(help="video files (.mp4, .webm, .mkv, …)")],
    out: Annotated[Path, typer.Option(help="folder for one VIDEO_NAME.npy (seconds × dim) per video")],
    backbone: Annotated[str, typer.Option(help="s3d (MIL-NCE S3D-G, 512-d) or clip (a polymodal image tower)")] = "s3d",
    weights: Annotated[Optional[Path], typer.Option(help="s3d: s3d_howto100m.pth or a folder; clip: a model folder")] = None,
    fps: Annotated[Optional[int], typer.Option(help="frames per second fed to the backbone (s3d: 30, clip: 2)")] = None,
    size: Annotated[Optional[int], typer.Option(help="s3d: frame size after resize + centre crop (224)")] = None,
    batch: Annotated[int, typer.Option(help="seconds per backbone call")] = 8,
    max_minutes: Annotated[float, typer.Option(help="refuse videos longer than this")] = 180.0,
    bf16: Annotated[bool, typer.Option(help="s3d: bf16 weights, ≈ 1.8× faster on CPUs with AVX512-BF16/AMX "
                                                "but approximate (see docs/benchmarks.md)")] = False,
) -> None:
    """One feature vector per second of each video (MMPT's layout: OUT/NAME.npy, seconds × dim).
    Existing files are skipped, so a stopped run resumes; a bad video is reported and skipped."""
    from ..tasks.embedder import video_backbone
    from ..tasks.video_features import extract_folder
    from ..weights import CheckpointError

    if weights is None:
        fail("--weights is required: polymodal downloads nothing (s3d: the official s3d_howto100m.pth)")
    if (fps is not None and not 1 <= fps <= 60) or (size is not None and not 16 <= size <= 1024) or batch < 1 \
            or not 0 < max_minutes <= 24 * 60:
        fail("--fps must be 1–60, --size 16–1024, --batch ≥ 1 and --max-minutes 0–1440")
    try:
        chosen = video_backbone(backbone, weights, fps, size, bf16)
        counts = extract_folder(list(videos), out, chosen, report=lambda line: console.print(line, highlight=False),
                                batch=batch, max_seconds=max_minutes * 60)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        fail(str(e))
    console.print(f"{counts['done']} written, {counts['skipped']} already there, {counts['failed']} failed → {safe(out)}")
    if counts["failed"] and not counts["done"] and not counts["skipped"]:
        raise typer.Exit(1)


def _videoclip(model: Path, s3d: Optional[Path], need_backbone: bool = True):
    """(embedder with its video clipper, or None when the folder names no frame backbone and no --s3d is given)."""
    from ..tasks.embedder import Embedder
    from ..tasks.embedder import frame_backbone
    from ..tasks.video_search import VideoClipper
    from ..weights import CheckpointError

    embedder = Embedder.from_checkpoint(model)
    if type(embedder.model).__name__ != "VideoCLIP":
        raise CheckpointError(f"{model} holds a {type(embedder.model).__name__}, not a VideoCLIP")
    if s3d is not None:
        backbone = frame_backbone(model, s3d)
        if backbone.dim != embedder.model.config.input_dim:  # before any video is decoded
            raise CheckpointError(f"--s3d {s3d} makes {backbone.dim}-d features; {model} reads "
                                  f"{embedder.model.config.input_dim}-d ones")
        embedder.video_clips = VideoClipper(embedder.model, backbone)
    if need_backbone and embedder.video_clips is None:
        frame_backbone(model)  # raises, saying what is missing
    return embedder


@video_app.command("localize")
def video_localize_cmd(
    model: Annotated[Path, typer.Argument(help="a VideoCLIP model folder (with its tokenizer)")],
    video: Annotated[Path, typer.Argument(help="a video file, or its per-second features (.npy from polymodal video features)")],
    steps: Annotated[Path, typer.Option(help="a text file, one step per line")],
    out: Annotated[Path, typer.Option(help="the timeline PNG to write")] = Path("timeline.png"),
    window: Annotated[int, typer.Option(help="seconds of video scored around each second")] = 3,
    s3d: Annotated[Optional[Path], typer.Option(help="S3D weights (s3d_howto100m.pth) for an MMPT model's features")] = None,
) -> None:
    """Where in the video does each step happen? Prints each step's best second and writes a
    timeline PNG of the per-second scores. A video file is decoded and turned into features with the
    model's frame backbone (frame_tower.json beside a polymodal model, or --s3d)."""
    import torch

    from ..arrays import read_features
    from ..modalities.video import VideoReadError
    from ..tasks.localize import MAX_STEPS, check_feature_record, plot_timeline, read_text_bounded, step_scores
    from ..weights import CheckpointError

    if not out.parent.is_dir():  # checked before any work that would be lost
        fail(f"--out {out}: the folder {out.parent} does not exist")
    try:
        texts = [line.strip() for line in read_text_bounded(steps).splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"{steps} has no steps (one per line)")
        if len(texts) > MAX_STEPS:
            raise ValueError(f"{steps}: {len(texts)} steps; at most {MAX_STEPS} are placed on one timeline")
        embedder = _videoclip(model, s3d, need_backbone=video.suffix != ".npy")
        net = embedder.model
        if video.suffix == ".npy":
            check_feature_record(video, model, s3d is not None)
            feats = torch.from_numpy(read_features(video))
        else:
            feats = embedder.video_clips.features(video).float()
        if feats.dim() != 2 or feats.shape[1] != net.config.input_dim:
            raise ValueError(f"{video}: expected [seconds, {net.config.input_dim}] features, got {tuple(feats.shape)}")
        scores = step_scores(net, feats, texts, embedder.tokenizer, window)
    except (CheckpointError, VideoReadError, ValueError, OSError) as e:
        fail(str(e))
    for text, column in zip(texts, scores.T):
        console.print(f"{int(column.argmax())} s  {text}", highlight=False)
    console.print(f"wrote {plot_timeline(scores, texts, out)}")


@video_app.command("search")
def video_search_cmd(
    model: Annotated[Path, typer.Argument(help="a VideoCLIP model folder (with its tokenizer)")],
    folder: Annotated[Path, typer.Argument(help="the folder of videos to search (indexed on first use, then updated)")],
    query: Annotated[str, typer.Argument(help="what happens, in words")],
    k: Annotated[int, typer.Option("-k", help="number of clips")] = 10,
    index: Annotated[Optional[Path], typer.Option(help="the index folder (default: a cache folder for FOLDER and "
                                                        "MODEL under $XDG_CACHE_HOME/polymodal, never inside FOLDER)")] = None,
    s3d: Annotated[Optional[Path], typer.Option(help="S3D weights (s3d_howto100m.pth) for an MMPT model's features")] = None,
) -> None:
    """Find the moments of FOLDER's videos that show QUERY: ranked clips with their start–end times.
    The videos are indexed as clips (4 s, every 2 s) the first time and updated on later calls."""
    from ..modalities.video import VideoReadError
    from ..search.ingest import index_folder
    from ..search.query import query_vector
    from ..search.store import StoreError, Store
    from ..tasks.video_search import CLIP, video_index_dir
    from ..weights import CheckpointError

    try:
        embedder = _videoclip(model, s3d)
        store = Store(index or video_index_dir(folder, model), embedder.dim, embedder.model_id,
                      str(model.resolve()), "flat")
        report = index_folder(folder, embedder, store)
        results = store.search(query_vector(embedder, query), k, {"video"})
    except (CheckpointError, StoreError, VideoReadError, ValueError, NotADirectoryError, OSError) as e:
        fail(str(e))
    for path, error in report.failed:
        problem("skipped", error if path in error else f'{path}: {error}', "yellow")
    root = folder.resolve()
    for rank, (item, score) in enumerate(results, 1):  # one plain line per clip: easy to read and to pipe
        start, end = (float(t) for t in item.path.rsplit(CLIP, 1)[1].split(","))
        name = Path(item.file).relative_to(root) if Path(item.file).is_relative_to(root) else item.file
        console.print(f"{rank:>3}  {score:.3f}  {start:>6g}–{end:g} s  {name}", highlight=False, markup=False,
                      soft_wrap=True)
