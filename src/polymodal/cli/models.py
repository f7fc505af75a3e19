"""``polymodal models | info | convert | export``: the presets, what a checkpoint is, and changing its format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .app import app, console, fail, problem, safe


@app.command()
def models() -> None:
    """List the presets with their parameter counts."""
    import torch

    from ..registry import PRESETS, build, family_of

    table = Table(title="polymodal presets")
    for col in ("preset", "family", "parameters", "input"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for name, make in PRESETS.items():
        config = make()
        with torch.device("meta"):  # count without allocating
            n = sum(p.numel() for p in build(config).parameters())
        vision = getattr(config, "vision", config)
        size = f"{vision.image_size}px" if hasattr(vision, "image_size") else "text"
        table.add_row(name, family_of(config), f"{n / 1e6:,.1f}M", size)
    console.print(table)


@app.command()
def info(checkpoints: Annotated[list[Path], typer.Argument(help="checkpoint files or folders")]) -> None:
    """Show each checkpoint's detected layout, family, architecture and parameter count."""
    from ..weights import CheckpointError, describe

    failed = []
    for checkpoint in checkpoints:
        try:
            d = describe(checkpoint)
        except (CheckpointError, FileNotFoundError, ValueError, TypeError, OSError) as e:
            problem("error:", e if str(checkpoint) in str(e) else f"{checkpoint}: {e}")
            failed.append(checkpoint)
            continue
        console.print(f"[bold]{d['file']}[/bold]\nlayout: {d['layout']} ({d['description']})\n"
                      f"family: {d['family']}\ntensors: {d['tensors']}\nparameters: {d['parameters']:,}\n"
                      f"licence: {safe(d['licence'] or 'none in the folder')}", highlight=False)
        if d["supported"]:
            console.print_json(json.dumps(d["config"]))
        else:
            console.print(f"a {d['description']} checkpoint; not supported yet")
    if failed:
        raise typer.Exit(2)


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="a checkpoint file or folder in any supported layout")],
    out: Annotated[Path, typer.Argument(help="folder for model.safetensors + config.json")],
    trust_torchscript: Annotated[bool, typer.Option(help="allow a TorchScript archive (it holds code)")] = False,
) -> None:
    """Convert a checkpoint to polymodal's own format (safetensors + config.json), once: e.g. an
    OpenAI CLIP TorchScript .pt, so that it never has to be loaded as code again."""
    from ..weights import CheckpointError, load_checkpoint, save
    from ..weights import trust_torchscript as allowing

    try:
        with allowing(trust_torchscript):
            model = load_checkpoint(source)
    except (CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    save(model, out)
    console.print(f"wrote {safe(out / 'model.safetensors')} and {safe(out / 'config.json')}", highlight=False)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="a model folder or checkpoint file in any supported layout")],
    format: Annotated[str, typer.Option("--format", help="onnx or openvino (one file per embedding tower), "
                                                         "hf (a transformers CLIPModel folder) or open_clip")],
    out: Annotated[Path, typer.Option(help="the folder to write (usable on its own)")],
    tolerance: Annotated[float, typer.Option(help="largest |Δ| allowed between the export and the model")] = 1e-4,
) -> None:
    """Export a model to take elsewhere, verified: every tower is run on fresh inputs against the model
    and the max |Δ| printed; a difference above --tolerance is an error."""
    from ..export.folder import export_model
    from ..export.onnx import ExportError
    from ..weights import CheckpointError

    try:
        diffs = export_model(model, format, out, tolerance)
    except (ExportError, CheckpointError, ValueError, OSError) as e:
        fail(str(e))
    for modality, diff in diffs.items():
        console.print(f"{modality:8s} max |Δ| vs the model {diff:.2e}", highlight=False)
    console.print(f"wrote {format} export of {safe(model)} to {safe(out)}", highlight=False)
