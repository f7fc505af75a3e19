"""``polymodal regions | vqa | attention``: a picture's region features, questions about it, word × region attention."""

from __future__ import annotations

from json import dumps as json_dumps
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .app import app, console, fail, load_encoder, read_boxes, problem, safe
from .detect import run_detector


@app.command()
def regions(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    out: Annotated[Path, typer.Option(help="folder for one NAME.npz per image (boxes, features, image_w, image_h)")],
    boxes: Annotated[Optional[Path], typer.Option(help='JSON: {"image file name": [[x0, y0, x1, y1], ...], ...} '
                                                       "in pixels (with --checkpoint)")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="a model folder whose image tower reads the regions "
                                                            "(CLIP or ImageBind)")] = None,
    detector: Annotated[Optional[Path], typer.Option(help="instead of --boxes and --checkpoint: a bottom-up-attention "
                                                          "detector that finds the boxes and their features")] = None,
    format: Annotated[str, typer.Option("--format", help="with --detector: npz, mmf or tsv")] = "npz",
    count: Annotated[Optional[str], typer.Option("--count", help='with --detector: boxes per picture, "36" or '
                                                                 '"10-100"')] = None,
    batch: Annotated[int, typer.Option(min=1, help="pictures per forward pass")] = 2,
) -> None:
    """Region features for training: a detector's boxes and pooled features (``--detector``), or RoI-align
    over an image tower's patch grid for boxes you give (``--boxes`` + ``--checkpoint``). Writes what
    ``polymodal.data.regions`` reads; bad images or boxes are reported, the rest are written, and the
    exit code is 1 if any failed."""
    from ..tasks.region_extractor import RegionExtractor, read_box_table, write_region_files

    if detector is not None:
        if boxes is not None or checkpoint is not None:
            fail("--detector finds its own boxes: give it without --boxes and --checkpoint")
        _, done, failed = run_detector(images, detector, out, format, False, count, None, None, batch)
        console.print(f"wrote region features of {len(done)} image(s) to {safe(out)}")
        if failed:
            raise typer.Exit(1)
        return
    if boxes is None or checkpoint is None:
        fail("give --boxes and --checkpoint (an image tower reads your boxes), or --detector")
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    try:
        table = read_box_table(boxes)
    except (OSError, ValueError) as e:
        fail(f"{boxes}: {e}")
    encoder = load_encoder(checkpoint, device="cpu")  # the extractor reads the tower's patch grid on the CPU
    tower = encoder.model.visual if hasattr(encoder.model, "visual") else encoder.model.encoders["image"]
    written, failed = write_region_files(RegionExtractor(tower, encoder.transform), images, table, out, str(boxes))
    console.print(f"wrote region features of {written} image(s) to {safe(out)}")
    for line in failed:
        problem("failed:", line)
    if failed:
        raise typer.Exit(1)


@app.command()
def vqa(
    model: Annotated[Path, typer.Argument(help="a VQA model folder (train.out/model of an objective.kind=vqa run)")],
    image: Annotated[Path, typer.Argument(help="the picture")],
    question: Annotated[str, typer.Argument(help='e.g. "what colour is the square?"')],
    boxes: Annotated[Optional[Path], typer.Option(help="JSON list of [x0, y0, x1, y1] pixel boxes (default: a 2 × 2 grid)")] = None,
    region_tower: Annotated[Optional[Path], typer.Option(help="the image tower that read the training regions "
                                                               "(default: the one the folder records)")] = None,
    k: Annotated[int, typer.Option("-k", help="answers to show")] = 5,
    detector: Annotated[Optional[Path], typer.Option(help="a bottom-up-attention detector: MODEL is then a released "
                                                          "checkpoint that reads its regions (transformers' "
                                                          "VisualBertForQuestionAnswering or ViLBERT's 12-in-1)")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option(help="with --detector: a folder with the checkpoint's vocab.txt "
                                                           "or tokenizer.json (default: MODEL's folder)")] = None,
    task: Annotated[int, typer.Option(help="ViLBERT 12-in-1: 1 (VQA), 2 (GenomeQA) or 15 (GQA)")] = 1,
) -> None:
    """Answer a question about a picture: the top answers with their scores."""
    from ..modalities.image import ImageReadError, load_image
    from ..modalities.text import TruncationError
    from ..tasks.vqa import VQAPredictor
    from ..weights import CheckpointError

    try:
        if detector is not None:
            from ..tasks.released_vqa import ReleasedModel

            if boxes is not None or region_tower is not None:
                fail("--detector finds the regions itself: give it without --boxes and --region-tower")
            answers, _ = ReleasedModel(model, detector, tokenizer).answer(load_image(image), question, k, task)
        else:
            chosen = read_boxes(boxes)
            predictor = VQAPredictor(model, region_tower)
            answers = predictor(load_image(image), question, chosen, k)
    except TruncationError as e:
        fail(f"the question is too long for this model: {e}")
    except (ImageReadError, CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    table = Table("rank", "answer", "score")
    for rank, (answer, score) in enumerate(answers, 1):
        table.add_row(str(rank), answer, f"{score:.3f}")
    console.print(table)


@app.command()
def attention(
    model: Annotated[Path, typer.Argument(help="a VisualBERT model folder (a pretraining or VQA run's model)")],
    image: Annotated[Path, typer.Argument(help="the picture")],
    text: Annotated[str, typer.Argument(help='e.g. "a red circle left of a star"')],
    out: Annotated[Path, typer.Option(help="the PNG to write")] = Path("attention.png"),
    boxes: Annotated[Optional[Path], typer.Option(help="JSON list of [x0, y0, x1, y1] pixel boxes (default: a 2 × 2 grid)")] = None,
    region_tower: Annotated[Optional[Path], typer.Option(help="the image tower that read the training regions "
                                                               "(default: the one the folder records)")] = None,
) -> None:
    """Draw how each word attends to each region, per layer and head (word × region heat maps)."""
    from ..modalities.image import ImageReadError, load_image
    from ..modalities.text import TruncationError, load_tokenizer
    from ..tasks.grounding import plot_word_region, word_region_map
    from ..tasks.vqa import picture_regions
    from ..tasks.region_tower import load_region_tower
    from ..tasks.region_tower import region_extractor
    from ..weights import CheckpointError, load_checkpoint

    try:
        net = load_checkpoint(model)
        net = getattr(net, "trunk", net).eval()
        if not hasattr(net, "forward_features") or not hasattr(net, "region_stem") or hasattr(net, "image_pooler"):
            raise ValueError(f"{model} holds a {type(net).__name__}; word × region maps need a single-stream "
                             "region model (VisualBERT)")
        tokenizer = load_tokenizer(model)
        extractor = region_extractor(str(region_tower or load_region_tower(model)["tower"]))
        regions = picture_regions(extractor, load_image(image), read_boxes(boxes))
        words, att = word_region_map(net, tokenizer, regions, text)
    except TruncationError as e:
        fail(f"the text is too long for this model: {e}")
    except (ImageReadError, CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    plot_word_region(words, att, out, f"{image.name}: {text}")
    console.print(f"wrote {safe(out)} ({att.shape[0]} layers × {att.shape[1]} heads, {len(words)} tokens × "
                  f"{att.shape[-1]} regions)", highlight=False)


@app.command()
def refer(
    model: Annotated[Path, typer.Argument(help="ViLBERT's 12-in-1 checkpoint (vilbert-multi-task VILBertForVLTasks)")],
    image: Annotated[Path, typer.Argument(help="the picture")],
    phrase: Annotated[str, typer.Argument(help='e.g. "the dog on the left"')],
    detector: Annotated[Path, typer.Option(help="the bottom-up-attention detector whose boxes the phrase picks from")],
    out: Annotated[Optional[Path], typer.Option(help="PNG to write with the chosen box drawn")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option(help="a folder with vocab.txt or tokenizer.json "
                                                           "(default: MODEL's folder)")] = None,
    task: Annotated[int, typer.Option(help="9 (RefCOCO), 10 (RefCOCO+) or 11 (RefCOCOg)")] = 11,
) -> None:
    """Find the region a phrase refers to: the detector's boxes scored by the checkpoint's referring head;
    prints the chosen box (pixels) and its probability, and draws it with --out."""
    from ..modalities.image import ImageReadError, load_image
    from ..tasks.draw_boxes import draw_boxes
    from ..tasks.released_vqa import ReleasedModel
    from ..weights import CheckpointError

    try:
        picture = load_image(image)
        box, score, _ = ReleasedModel(model, detector, tokenizer).refer(picture, phrase, task)
        if out is not None:
            draw_boxes(picture, box[None], [f"{phrase} {score:.2f}"], out)
    except (ImageReadError, CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    console.print_json(json_dumps({"box": [round(float(v), 1) for v in box], "score": round(score, 4),
                                   "drawn": None if out is None else str(out)}))
