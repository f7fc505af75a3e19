"""The ``polymodal`` application and what its command groups share: the consoles, the one way a
command fails (a red line naming the problem, exit code 2), and the options several commands take."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multimodal transformers that load official checkpoints.")
console = Console()
err = Console(stderr=True)



def fail(message: str) -> None:
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}")  # shapes like [seconds, 512] are text, not markup
    raise typer.Exit(2)


def read_boxes(path: Path | None) -> list | None:
    """--boxes: a JSON list of [x0, y0, x1, y1] pixel boxes (None when not given)."""
    if path is None:
        return None
    listed = json.loads(path.read_text())
    if not isinstance(listed, list) or not all(isinstance(b, list) and len(b) == 4 for b in listed):
        raise ValueError(f"{path}: expected a JSON list of [x0, y0, x1, y1] boxes")
    return listed


BF16 = typer.Option("--bf16", help="run the model in bfloat16 (faster on CPUs with AVX512-BF16/AMX)")


BACKEND = typer.Option("--backend", help="what runs the towers: torch, onnxruntime or openvino (CPU; exported, "
                                          "verified and cached on first use; needs polymodal[onnx] / [openvino])")


DEVICE = typer.Option("--device", help="where the model runs: auto (a CUDA GPU when present), cpu, cuda or cuda:N")


def device_for(backend: str, device: str) -> str:
    """``auto`` is the CPU for the exported backends (they run there)."""
    return "cpu" if backend != "torch" and device == "auto" else device


def with_device(overrides: list[str], device: str | None) -> list[str]:
    """A run's key=value overrides, with ``--device X`` as ``train.device=X``."""
    return [*overrides, f"train.device={device}"] if device else list(overrides)


def load_encoder(checkpoint: Path, bf16: bool = False, device: str = "auto", backend: str = "torch"):
    import torch

    from ..tasks import Embedder
    from ..weights import CheckpointError

    try:
        return Embedder.from_checkpoint(checkpoint, torch.bfloat16 if bf16 else torch.float32,
                                        device_for(backend, device), backend)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        fail(str(e))