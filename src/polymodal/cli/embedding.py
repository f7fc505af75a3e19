"""``polymodal embed | zero-shot``: files into embeddings, pictures into prompted classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .app import BACKEND, BF16, DEVICE, TEXT_SUFFIXES, app, console, err, fail, load_encoder


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
    import numpy as np

    from ..modalities.image import ImageReadError, load_image
    from ..modalities.text import TruncationError

    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    encoder = load_encoder(checkpoint, bf16, device, backend)
    rows, vectors, failed = [], [], []
    images, texts = [], []
    for f in files:
        try:
            if f.suffix.lower() in TEXT_SUFFIXES:
                lines = [(i, t.strip()) for i, t in enumerate(f.read_text(encoding="utf-8").splitlines()) if t.strip()]
                texts += [({"file": str(f), "line": i + 1, "modality": "text", "text": t}, t) for i, t in lines]
            else:
                images.append(({"file": str(f), "modality": "image"}, load_image(f)))
        except (ImageReadError, OSError, UnicodeDecodeError) as e:
            failed.append(f"{f}: {e}")
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        vectors.append(encoder.embed_images([img for _, img in chunk]).numpy())
        rows += [meta for meta, _ in chunk]
    for meta, text in texts:  # one at a time so that one over-long text fails alone
        try:
            vectors.append(encoder.embed_texts([text], truncate=truncate).numpy())
            rows.append(meta)
        except (TruncationError, ValueError) as e:
            failed.append(f"{meta['file']}:{meta['line']}: {e}")
    out.mkdir(parents=True, exist_ok=True)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    np.save(out / "embeddings.npy", matrix.astype(np.float32))
    with open(out / "index.jsonl", "w") as f:
        for i, meta in enumerate(rows):
            f.write(json.dumps({"row": i, **meta}) + "\n")
    console.print(f"wrote {len(rows)} embeddings of dim {matrix.shape[1]} to {out}")
    for line in failed:
        err.print(f"[red]failed:[/red] {line}")
    if failed:
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
    from ..modalities.image import ImageReadError, load_image
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
    failed = []
    table = Table(title="zero-shot")
    table.add_column("image", overflow="fold")
    for k in range(min(top_k, len(names))):
        table.add_column(f"#{k + 1}")
    for path in images:
        try:
            img = load_image(path)
        except ImageReadError as e:
            failed.append(str(e))
            continue
        ranked = classifier.rank([img], top_k)[0]
        if as_json:
            print(json.dumps({"image": str(path), "labels": [{"label": c, "p": round(p, 4)} for c, p in ranked]}))
        else:
            table.add_row(str(path), *[f"{c} ({p:.0%})" for c, p in ranked])
    if not as_json:
        console.print(table)
    for line in failed:
        err.print(f"[red]failed:[/red] {line}")
    if failed:
        raise typer.Exit(1)
