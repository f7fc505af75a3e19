"""``polymodal detect``: labelled boxes and region features of pictures, from the bottom-up-attention detector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .app import app, console, fail, problem, safe

BoxesOption = Annotated[Optional[str], typer.Option(
    "--boxes", help='boxes per picture: "36" (exactly) or "10-100" (the detector\'s own range by default)')]
SelectionOption = Annotated[Optional[str], typer.Option(
    help="how boxes are chosen: bottom-up (per-class NMS + score threshold, as the VisualBERT / ViLBERT "
         "features were made) or fixed (the LXMERT demo's); default: what the detector folder says")]


def box_range(boxes: str | None) -> dict:
    """ "36" → min = max = 36; "10-100" → 10 and 100; None → no override."""
    if boxes is None:
        return {}
    try:
        lo, _, hi = boxes.partition("-")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        fail(f'--boxes takes a count or a range, e.g. "36" or "10-100"; got {boxes!r}')
    if not 1 <= lo <= hi:
        fail(f"--boxes {boxes}: need 1 ≤ min ≤ max")
    return {"min_boxes": lo, "max_boxes": hi}


def run_detector(images: list[Path], detector: Path, out: Path, fmt: str, draw: bool, boxes: str | None,
                 selection: str | None, threshold: float | None, batch: int) -> tuple:
    """Load the detector, detect in every image with a progress bar, report the bad ones; → what was done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..tasks.detector import Detector, detect_files
    from ..weights import CheckpointError

    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    try:
        found = Detector.load(detector, batch_size=batch, selection=selection, score_threshold=threshold,
                              **box_range(boxes))
    except (CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    with Progress(TextColumn("detecting"), BarColumn(), MofNCompleteColumn(), console=console,
                  disable=len(images) < 2) as bar:
        task = bar.add_task("detect", total=len(images))
        try:
            done, failed = detect_files(found, images, out, fmt, draw, on_done=lambda n: bar.advance(task, n))
        except ValueError as e:
            fail(str(e))
    for line in failed:
        problem("failed:", line)
    return found, done, failed


@app.command()
def detect(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    detector: Annotated[Path, typer.Option(help="a detector folder or file: the LXMERT demo's frcnn-vg-finetuned "
                                                "(pytorch_model.bin + config.yaml), a detectron2 .pkl, or ours")],
    out: Annotated[Path, typer.Option(help="folder for NAME.detected.png and the region features")],
    format: Annotated[str, typer.Option("--format", help="region files: npz (NAME.npz), mmf (NAME.npy + "
                                                         "NAME_info.npy) or tsv (regions.tsv, bottom-up-attention)")] = "npz",
    boxes: BoxesOption = None,
    selection: SelectionOption = None,
    threshold: Annotated[Optional[float], typer.Option(help="score a box needs (bottom-up selection)")] = None,
    batch: Annotated[int, typer.Option(min=1, help="pictures per forward pass")] = 2,
    draw: Annotated[bool, typer.Option(help="write NAME.detected.png with the labelled boxes")] = True,
) -> None:
    """Detect objects with their attributes in pictures: labelled boxes drawn on each, and each box's
    pooled feature written in the format VisualBERT / ViLBERT / MMF code reads. A picture that cannot be
    read is reported and the others go on; the exit code is 1 if any failed."""
    found, done, failed = run_detector(images, detector, out, format, draw, boxes, selection, threshold, batch)
    table = Table("image", "boxes", "most confident")
    for path, r in done:
        top = ", ".join(f"{found.label(r, k)} {float(r.scores[k]):.2f}" for k in range(min(3, len(r.boxes))))
        table.add_row(safe(path.name), str(len(r.boxes)), safe(top))
    console.print(table)
    console.print(f"wrote {len(done)} picture(s) to {safe(out)}")
    if failed:
        raise typer.Exit(1)
