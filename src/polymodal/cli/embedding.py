"""``polymodal embed | zero-shot``: files into embeddings, pictures into prompted classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .app import BACKEND, BF16, DEVICE, app, console, fail, load_encoder, problem, safe


@app.command()
def embed(
    files: Annotated[list[Path], typer.Argument(help="images, or .txt files (one text per non-empty line)")],
    checkpoint: Annotated[Path, typer.Option(help="a CLIP-style checkpoint folder with its tokenizer")],
    out: Annotated[Path, typer.Option(help="folder for embeddings.npy and index.jsonl")],
    batch_size: int = 32,
    truncate: Annotated[bool, typer.Option(help="cut texts longer than the context instead of failing them")] = False,
    bf16: Annotated[bool, BF16] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Embed files into embeddings.npy [N, E] plus index.jsonl saying what each row is.

    Unreadable files are reported by name and skipped; the exit code is 1 if any failed."""
    from ..tasks.embed_files import embed_files

    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    embedded = embed_files(load_encoder(checkpoint, bf16, device, backend), files, batch_size, truncate)
    embedded.save(out)
    console.print(f"wrote {len(embedded.rows)} embeddings of dim {embedded.vectors.shape[1]} to {safe(out)}")
    for line in embedded.failed:
        problem("failed:", line)
    if embedded.failed:
        raise typer.Exit(1)


@app.command("zero-shot")
def zero_shot(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    checkpoint: Annotated[Path, typer.Option(help="a CLIP-style checkpoint folder with its tokenizer")],
    labels: Annotated[Optional[str], typer.Option(help="comma-separated class names")] = None,
    labels_file: Annotated[Optional[Path], typer.Option(help="one class name per line")] = None,
    template: Annotated[Optional[list[str]], typer.Option(help="prompt template(s) with {} (repeatable)")] = None,
    top_k: int = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")] = False,
    bf16: Annotated[bool, BF16] = False,
    device: Annotated[str, DEVICE] = "auto",
    backend: Annotated[str, BACKEND] = "torch",
) -> None:
    """Rank class names for each image. Unreadable images are reported and the rest still ranked."""
    from ..tasks import ZeroShotClassifier
    from ..tasks.zero_shot import DEFAULT_TEMPLATES

    names = [x.strip() for x in labels.split(",")] if labels else []
    if labels_file:
        if not labels_file.is_file():
            fail(f"labels file not found: {labels_file}")
        names += [x.strip() for x in labels_file.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        fail("give class names with --labels or --labels-file")
    encoder = load_encoder(checkpoint, bf16, device, backend)
    try:
        classifier = ZeroShotClassifier(encoder, names, tuple(template) if template else DEFAULT_TEMPLATES)
    except ValueError as e:
        fail(str(e))
    ranked, failed = classifier.rank_files(images, top_k)
    table = Table(title="zero-shot")
    table.add_column("image", overflow="fold")
    for k in range(min(top_k, len(names))):
        table.add_column(f"#{k + 1}")
    for path, pairs in ranked:
        if as_json:
            print(json.dumps({"image": str(path), "labels": [{"label": c, "p": round(p, 4)} for c, p in pairs]}))
        else:
            table.add_row(str(path), *[f"{c} ({p:.0%})" for c, p in pairs])
    if not as_json:
        console.print(table)
    for line in failed:
        problem("failed:", line)
    if failed:
        raise typer.Exit(1)
