"""``polymodal world …``: the synthetic world's shards, how-to videos, ordinary files, documents and previews."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import console, fail, safe


world_app = typer.Typer(no_args_is_help=True, help="The synthetic multimodal world: export shards, preview.")


@world_app.command("export")
def world_export(
    out: Annotated[Path, typer.Option(help="output folder for the .tar shards and the COCO captions JSON")],
    split: str = "train",
    n: Annotated[int, typer.Option(help="number of samples")] = 1000,
    seed: int = 0,
    modalities: Annotated[str, typer.Option(help="comma-separated")] = "image,caption",
    image_size: int = 64,
    shard_size: int = 1000,
    frames: int = 8,
    format: Annotated[str, typer.Option("--format", help="webdataset (shards of every modality), or a region task's "
                                                         "files: vqa_v2, vcr, refcoco, memes")] = "webdataset",
) -> None:
    """Write world samples as WebDataset shards (.png .json .wav .npy .mp4) + captions_SPLIT.json, or
    (--format) one split of a region task in the layout of VQA v2, VCR, a RefCOCO table or Hateful
    Memes, with the pictures and boxes.json (their object boxes: data.boxes for the same regions)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..world.dataset import check_options
    from ..world.export import export
    from ..world.task_files import FORMATS, export_task_files

    if format != "webdataset":
        if format not in FORMATS:
            fail(f"--format must be webdataset or one of {', '.join(FORMATS)}, got {format!r}")
        try:
            check_options(split, n, ("image",), image_size)
            if out.exists() and not out.is_dir():
                raise ValueError(f"--out {out} exists and is a file")
        except ValueError as e:
            fail(str(e))
        written = export_task_files(out, format, split, n, seed, image_size)
        console.print(f"wrote {n} {split} scenes as {format}: {', '.join(str(p) for p in written)}", highlight=False)
        return

    names = tuple(m.strip() for m in modalities.split(",") if m.strip())
    try:  # every option is checked before any sample is made
        check_options(split, n, names, image_size)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is a file")
        if shard_size <= 0 or not 2 <= frames <= 64:
            raise ValueError("--shard-size must be positive and --frames between 2 and 64")
    except ValueError as e:
        fail(str(e))
    with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("export", total=n)
        paths = export(out, split, n, seed, names, image_size, shard_size, frames,
                       progress=lambda k: bar.advance(task, k))
    console.print(f"wrote {len(paths)} shard(s) of {split} to {safe(out)}")


@world_app.command("howto")
def world_howto(
    out: Annotated[Path, typer.Option(help="folder for videos/*.mp4, narration.csv and steps.csv (created)")],
    split: str = "val",
    n: Annotated[int, typer.Option(help="number of videos")] = 20,
    seed: int = 0,
    shift_rate: Annotated[float, typer.Option(help="share of narration segments shifted 1–2.5 s")] = 0.25,
    size: int = 64,
) -> None:
    """Write the world's narrated how-to videos as .mp4 files with their transcript (video,start,end,text)
    and true step times: data in the layout of HowTo100M / YouCook2 captions."""
    from ..world.export import export_howto

    if not 1 <= n <= 100_000 or not 0.0 <= shift_rate <= 1.0 or not 32 <= size <= 512:
        fail("--n must be 1–100000, --shift-rate 0–1 and --size 32–512")
    if split not in ("train", "val", "test"):
        fail(f"--split must be train, val or test, got {split!r}")
    paths = export_howto(out, split, n, seed, shift_rate, size)
    console.print(f"wrote {len(paths)} videos, narration.csv and steps.csv to {safe(out)}")


@world_app.command("files")
def world_files(
    out: Annotated[Path, typer.Option(help="folder for the files (created)")],
    split: str = "test",
    n: Annotated[int, typer.Option(help="number of scenes")] = 100,
    seed: int = 0,
    image_size: int = 64,
    modalities: Annotated[str, typer.Option(help="comma-separated")] = "image,audio,video,caption,depth,thermal,imu",
    labels: Annotated[Optional[Path], typer.Option(help="also write each scene's labels to this JSONL file")] = None,
) -> None:
    """Write world scenes as ordinary files (.png .wav .mp4 .txt *_depth.npy *_thermal.npy *_imu.npy)
    — a folder to try `polymodal index` on."""
    from ..world.files import write_files

    names = tuple(m.strip() for m in modalities.split(",") if m.strip())
    try:
        with console.status(f"writing {n} scenes"):
            write_files(out, split, n, seed, image_size, names, labels=labels)
    except ValueError as e:
        fail(str(e))
    console.print(f"wrote {n} {split} scenes to {safe(out)}")


@world_app.command("documents")
def world_documents_cmd(
    out: Annotated[Path, typer.Argument(help="folder to write (created)")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    n: Annotated[int, typer.Option(help="documents")] = 20,
    seed: Annotated[int, typer.Option()] = 0,
    pdf: Annotated[bool, typer.Option(help="also each page as an image-only PDF (pdf/NAME.pdf)")] = False,
) -> None:
    """The world's documents as FUNSD (images/ + annotations/), DocVQA (docvqa.json) and class
    folders (classes/CLASS/), with ground-truth words, entities, links, QA pairs and classes."""
    from ..world.document_files import write_documents
    from ..world.scene import SPLITS

    if split not in SPLITS or not 1 <= n <= 100_000:
        fail(f"--split must be one of {SPLITS} and --n 1–100000")
    write_documents(out, split, n, seed, pdf)
    console.print(f"{n} documents → {safe(out)}")


@world_app.command("preview")
def world_preview(
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("world-preview.png"),
    split: str = "val",
    samples: int = 4,
    seed: int = 0,
) -> None:
    """Draw a contact sheet: every modality of a few samples side by side."""
    from ..world.preview import contact_sheet
    from ..world.scene import SPLITS

    if split not in SPLITS or samples <= 0:
        fail(f"--split must be one of {SPLITS} and --samples positive")
    if out.is_dir():
        fail(f"--out {out} is a folder; give a .png file name")
    console.print(f"wrote {contact_sheet(out, split, tuple(range(samples)), seed)}")
