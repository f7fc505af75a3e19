"""``polymodal verify | choose | entail``: released VisualBERT / ViLBERT task checkpoints on your pictures,
their regions found by the bottom-up-attention detector (``vqa --detector`` and ``refer`` live beside
the other region commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .app import app, console, fail, safe

DetectorOption = Annotated[Path, typer.Option(help="the bottom-up-attention detector the checkpoint's features came from")]
TokenizerOption = Annotated[Optional[Path], typer.Option(help="a folder with vocab.txt or tokenizer.json "
                                                              "(default: MODEL's folder)")]


def _released(model: Path, detector: Path, tokenizer: Path | None):
    from ..tasks.released_vqa import ReleasedModel

    return ReleasedModel(model, detector, tokenizer)


def _errors():
    from ..modalities.image import ImageReadError
    from ..weights import CheckpointError

    return ImageReadError, CheckpointError, ValueError, OSError


@app.command()
def verify(
    model: Annotated[Path, typer.Argument(help="an NLVR2 checkpoint: VisualBertForVisualReasoning or ViLBERT 12-in-1")],
    left: Annotated[Path, typer.Argument(help="the left picture")],
    right: Annotated[Path, typer.Argument(help="the right picture")],
    statement: Annotated[str, typer.Argument(help='e.g. "one image shows exactly two dogs"')],
    detector: DetectorOption,
    tokenizer: TokenizerOption = None,
) -> None:
    """Whether a statement holds of two pictures (NLVR2): prints its probability of being true."""
    from ..modalities.image import load_image
    from ..tasks.released_vqa import verify as run

    try:
        probability, _ = run(_released(model, detector, tokenizer), load_image(left), load_image(right), statement)
    except _errors() as e:
        fail(str(e))
    console.print_json(json.dumps({"statement": statement, "true": probability > 0.5,
                                   "probability": round(probability, 4)}))


@app.command()
def choose(
    model: Annotated[Path, typer.Argument(help="a VCR checkpoint (VisualBertForMultipleChoice) or ViLBERT 12-in-1")],
    image: Annotated[Path, typer.Argument(help="the picture")],
    choices: Annotated[list[str], typer.Argument(help="the candidate answers (or captions, with --question '')")],
    question: Annotated[str, typer.Option(help="the question the choices answer; empty: rank them as captions")],
    detector: DetectorOption,
    tokenizer: TokenizerOption = None,
    task: Annotated[int, typer.Option(help="ViLBERT: 5 (VCR Q→A), 6 (QA→R), 7 / 8 (caption retrieval)")] = 5,
) -> None:
    """Which of several answers fits a question about a picture (VCR), or which caption fits it best."""
    from ..modalities.image import load_image
    from ..tasks.released_vqa import choose as run

    try:
        probabilities, _ = run(_released(model, detector, tokenizer), load_image(image), question, choices, task)
    except _errors() as e:
        fail(str(e))
    table = Table("rank", "choice", "probability")
    for rank, k in enumerate(sorted(range(len(choices)), key=lambda k: -probabilities[k]), 1):
        table.add_row(str(rank), safe(choices[k]), f"{probabilities[k]:.3f}")
    console.print(table)


@app.command()
def entail(
    model: Annotated[Path, typer.Argument(help="ViLBERT's 12-in-1 checkpoint (task 13, SNLI-VE)")],
    image: Annotated[Path, typer.Argument(help="the picture (the premise)")],
    hypothesis: Annotated[str, typer.Argument(help='e.g. "two people are outdoors"')],
    detector: DetectorOption,
    tokenizer: TokenizerOption = None,
) -> None:
    """Does the picture entail, contradict or leave open a sentence (visual entailment)?"""
    from ..modalities.image import load_image
    from ..tasks.released_vqa import entail as run

    try:
        probabilities, _ = run(_released(model, detector, tokenizer), load_image(image), hypothesis)
    except _errors() as e:
        fail(str(e))
    console.print_json(json.dumps({"label": max(probabilities, key=probabilities.get),
                                   **{k: round(v, 4) for k, v in probabilities.items()}}))
