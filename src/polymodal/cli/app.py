"""The ``polymodal`` application and what its command groups share: the consoles, the one way a
command fails (a red line naming the problem, exit code 2), and the options several commands take."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multimodal transformers that load official checkpoints.")
console = Console()
# Problems go to stderr one line each, never wrapped (a script greps them; a wrapped path is two lines).
err = Console(stderr=True, soft_wrap=True, highlight=False)

# Characters that would forge or reorder output lines when a file name holds them: line and page
# breaks, and Unicode's bidirectional overrides (a right-to-left override shows "txt.exe" as "exe.txt").
_FORGING = re.compile("[\x00-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\n``, ``\\u202e``): one line, in order."""
    return _FORGING.sub(lambda m: repr(m.group())[1:-1], str(text))


def safe(text: object) -> str:
    """Text from outside (a file name, a message quoting one) made safe to print with rich: its markup
    escaped (``[red]`` and ``[/`` are text, not styles) and control / bidi characters shown as escapes."""
    from rich.markup import escape

    return escape(printable(text))


def problem(label: str, message: object, style: str = "red") -> None:
    """One line on stderr: ``label`` (e.g. "failed:") in ``style``, then ``message`` printed as text."""
    err.print(f"[{style}]{label}[/{style}] {safe(message)}")


def fail(message: str) -> None:
    problem("error:", message)  # shapes like [seconds, 512] are text, not markup
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