"""Every embedding tower of a model → one ONNX file, verified against the model before it is kept.

    manifest = export_onnx(model, "out/")      # out/image.onnx, out/text.onnx, …, out/export.json

Each tower is ``model.embed(modality, *inputs)`` (the head output before L2 normalisation, as the
:class:`~polymodal.tasks.Embedder` reads it), traced by PyTorch's ONNX exporter (``dynamo=True``)
with a dynamic batch axis and, for text and video features, a dynamic sequence axis. After export
each file is run with ONNX Runtime on inputs it was not traced with (another batch size and length,
with padding) and compared with the PyTorch model: the max |Δ| is recorded in ``export.json`` and a
difference above ``tolerance`` is an :class:`ExportError` (the file is not left behind).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..registry import embed_examples

MANIFEST = "export.json"
OPSET = 18
OUTPUT = "tower_output"  # (a name no intermediate value takes: "embedding" is aten.embedding's)


class ExportError(RuntimeError):
    """An export that failed or does not reproduce the model (the message names the tower)."""


@dataclass
class Tower:
    """One embedding tower: ``model.embed(modality, *args)``; ``names`` its ONNX inputs; ``longest`` the
    longest sequence (dim 1) it takes, or None when only the batch varies."""

    modality: str
    args: tuple[torch.Tensor, ...]
    names: tuple[str, ...]
    longest: int | None


class _Embed(nn.Module):
    """``model.embed(modality, ...)`` as a module with positional tensor inputs (what export traces)."""

    def __init__(self, model: nn.Module, modality: str):
        super().__init__()
        self.model, self.modality = model, modality

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model.embed(self.modality, *inputs)


def towers(model: nn.Module) -> list[Tower]:
    """The model's embedding towers with example inputs (from its family's ``embed_examples``)."""
    out = []
    for modality, (args, longest) in embed_examples(model.config).items():
        names = ("ids", "attention_mask") if len(args) == 2 and modality == "text" else \
            ("features", "attention_mask") if len(args) == 2 else ("input",)
        out.append(Tower(modality, tuple(args), names, longest))
    return out


def _dynamic_shapes(tower: Tower) -> tuple[dict, ...]:
    batch = torch.export.Dim("batch", min=1, max=65536)
    if tower.longest is None:
        return tuple({0: batch} for _ in tower.args)
    length = torch.export.Dim("length", min=1, max=tower.longest)
    return tuple({0: batch, 1: length} for _ in tower.args)


def probe_inputs(tower: Tower, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs unlike the traced ones, as a tokenizer or reader makes them: batch 3, another length
    (when it varies), the last row half padding — what verification runs."""
    g = torch.Generator().manual_seed(seed)
    first = tower.args[0]
    length = None
    if tower.longest is not None:
        traced = first.shape[1]
        length = traced + 3 if traced + 3 <= tower.longest else max(2, traced - 1)
    cut = max(2, (length or 2) // 2)  # the padded row's real length
    masked = len(tower.args) == 2
    out = []
    for a in tower.args:
        shape = (3, *a.shape[1:]) if length is None else (3, length, *a.shape[2:])
        if a.is_floating_point():
            out.append(torch.randn(shape, generator=g, dtype=a.dtype))
        elif masked and a is tower.args[1]:  # the mask
            mask = torch.ones(shape, dtype=a.dtype)
            mask[-1, cut:] = 0
            out.append(mask)
        else:  # ids: the example's first token, words it uses, its last token (EOT/[SEP]) last, then padding
            eot = a[0, -1]
            words = a.flatten()[a.flatten() != eot]
            ids = words[torch.randint(len(words), shape, generator=g)] if len(words) else torch.full(shape, int(eot))
            ids[:, 0], ids[:, -1] = a[0, 0], eot
            if masked:
                ids[-1, cut - 1], ids[-1, cut:] = eot, 0
            out.append(ids)
    return tuple(out)


def fp32_eval(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with fp32 weights (a converted copy when they are not: the caller's model
    keeps its dtype)."""
    if any(p.dtype != torch.float32 for p in model.parameters()):
        model = copy.deepcopy(model).float()
    return model.eval()


def export_onnx(model: nn.Module, folder: str | Path, tolerance: float = 1e-4, opset: int = OPSET) -> dict:
    """Write ``MODALITY.onnx`` for every tower of ``model`` into ``folder`` plus ``export.json``
    (towers, inputs, max |Δ| against the model). Raises :class:`ExportError` naming the tower when
    one cannot be exported or does not reproduce the model within ``tolerance``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = fp32_eval(model)
    manifest = {"format": "onnx", "opset": opset, "torch": torch.__version__, "tolerance": tolerance, "towers": {}}
    for tower in towers(model):
        path = folder / f"{tower.modality}.onnx"
        try:
            with torch.no_grad(), warnings.catch_warnings(), _quiet("torch.onnx"):
                warnings.simplefilter("ignore")
                torch.onnx.export(_Embed(model, tower.modality), tower.args, str(path), dynamo=True, opset_version=opset,
                                  input_names=list(tower.names), output_names=[OUTPUT],
                                  dynamic_shapes=(_dynamic_shapes(tower),), external_data=False, verbose=False)
        except Exception as e:  # noqa: BLE001 — the exporter raises many kinds; all mean the same here
            path.unlink(missing_ok=True)
            raise ExportError(f"the {tower.modality} tower could not be exported to ONNX: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e
        diff = verify_onnx(model, path, tower, tolerance)
        manifest["towers"][tower.modality] = {"file": path.name, "inputs": list(tower.names),
                                              "rank": [a.dim() for a in tower.args], "longest": tower.longest,
                                              "max_abs_diff": diff}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


@contextlib.contextmanager
def _quiet(logger: str):
    """The exporter logs a warning per torchvision op it cannot register (torchvision is not a
    dependency): hide them for the call."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def verify_onnx(model: nn.Module, path: Path, tower: Tower, tolerance: float) -> float:
    """Max |Δ| between ``path`` under ONNX Runtime and ``model`` on :func:`probe_inputs`; above
    ``tolerance`` the file is removed and :class:`ExportError` raised."""
    import onnxruntime as ort

    inputs = probe_inputs(tower)
    with torch.no_grad():
        expected = model.embed(tower.modality, *inputs).float()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: a.numpy() for n, a in zip(tower.names, inputs)})[0]
    diff = float((torch.from_numpy(got) - expected).abs().max())
    if not diff <= tolerance:
        path.unlink(missing_ok=True)
        raise ExportError(f"{path.name}: the exported {tower.modality} tower differs from the model by {diff:.3g} "
                          f"(> {tolerance:g}) on inputs of shape {[tuple(a.shape) for a in inputs]}")
    return diff
