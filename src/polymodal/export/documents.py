"""A LayoutLMv2 / v3 document task model (entities, QA, classification) → one ONNX file, verified on pages
it was not traced with before it is kept.

    manifest = export_document_onnx(model, "out/")   # out/document.onnx + out/export.json

Inputs are what :class:`~polymodal.tasks.documents.DocumentModel` hands the model per window: ``ids``
[B, L], ``boxes`` [B, L, 4] (0–1000 grid), ``attention_mask`` [B, L], ``token_type_ids`` [B, L] (and
``image`` [B, 3, H, W] where the model reads the page), with B and L dynamic; outputs are the task's logits under their own names. The
speed paths that branch on data or write in place (the padding check of the relative bias, the chunked
dense-bias attention) step aside while exporting (``torch.compiler.is_exporting``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .onnx import MANIFEST, OPSET, ExportError, _quiet, fp32_eval

OUTPUTS = {"entities": ("tag_logits",), "qa": ("start_logits", "end_logits"), "classify": ("logits",)}
FILE = "document.onnx"


class _Task(nn.Module):
    """The task model with positional inputs and a tuple of outputs (what export traces)."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, ids, boxes, attention_mask, token_type_ids, image=None):
        out = self.model(ids, boxes, image, attention_mask, token_type_ids)
        return tuple(out[n] for n in self.names)


def _inputs(model, batch: int, length: int, seed: int, pad_last: bool) -> dict:
    """Valid page inputs: word ids, sorted boxes on the 0–1000 grid, a mask (the last row padded)."""
    c = model.config.trunk
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, c.bert.vocab_size, (batch, length), generator=g)
    x0 = torch.randint(0, 900, (batch, length, 1), generator=g)
    y0 = torch.randint(0, 900, (batch, length, 1), generator=g)
    boxes = torch.cat([x0, y0, x0 + torch.randint(1, 100, (batch, length, 1), generator=g),
                       y0 + torch.randint(1, 100, (batch, length, 1), generator=g)], -1)
    mask = torch.ones(batch, length, dtype=torch.long)
    if pad_last:
        mask[-1, length // 2:] = 0
        ids[-1, length // 2:] = 0
    types = torch.zeros_like(ids)
    types[:, length // 3:] = min(1, c.bert.type_vocab_size - 1)  # question | page segments, where the model has two
    out = {"ids": ids, "boxes": boxes, "attention_mask": mask, "token_type_ids": types}
    if c.visual_tokens:
        out["image"] = torch.rand(batch, 3, c.image_size, c.image_size, generator=g) * 255
    return out


def export_document_onnx(model: nn.Module, folder: str | Path, tolerance: float = 1e-4, opset: int = OPSET) -> dict:
    """Write ``document.onnx`` + ``export.json`` (task, inputs, outputs, max |Δ| on fresh pages) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = fp32_eval(model)
    task = model.config.task
    if task not in OUTPUTS:
        raise ExportError(f"a {task!r} document model has nothing to export (entities, qa or classify)")
    names = OUTPUTS[task]
    traced = _inputs(model, 2, 16, 0, pad_last=False)
    batch, length = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("length", min=2, max=512)
    dynamic = {"ids": {0: batch, 1: length}, "boxes": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length},
               "token_type_ids": {0: batch, 1: length}}
    if "image" in traced:
        dynamic["image"] = {0: batch}
    path = folder / FILE
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            torch.onnx.export(_Task(model, names), tuple(traced.values()), str(path), dynamo=True, opset_version=opset,
                              input_names=list(traced), output_names=list(names), dynamic_shapes=dynamic,
                              external_data=False, verbose=False)
    except Exception as e:  # noqa: BLE001 — the exporter raises many kinds; all mean the same here
        path.unlink(missing_ok=True)
        raise ExportError(f"the {task} document model could not be exported to ONNX: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}") from e
    diff = verify_document_onnx(model, path, names, tolerance)
    manifest = {"format": "onnx", "opset": opset, "torch": torch.__version__, "tolerance": tolerance, "task": task,
                "file": FILE, "inputs": list(traced), "outputs": list(names), "max_abs_diff": diff}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def verify_document_onnx(model: nn.Module, path: Path, names: tuple[str, ...], tolerance: float) -> float:
    """Max |Δ| between ``path`` under ONNX Runtime and ``model`` on pages of another batch and length than
    the traced one (one of them padded), over the real (unpadded) positions; above ``tolerance`` the file
    is removed and :class:`ExportError` raised."""
    import onnxruntime as ort

    inputs = _inputs(model, 3, 23, 1, pad_last=True)
    with torch.no_grad():
        expected = _Task(model, names)(*inputs.values())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    diff = 0.0
    for name, mine, theirs in zip(names, expected, got):
        theirs = torch.from_numpy(theirs)
        real = torch.isfinite(mine) & torch.isfinite(theirs)  # QA puts −inf on padding
        if not torch.equal(torch.isfinite(mine), torch.isfinite(theirs)):
            diff = float("inf")
            break
        diff = max(diff, float((mine[real] - theirs[real]).abs().max()))
    if not diff <= tolerance:
        path.unlink(missing_ok=True)
        raise ExportError(f"{path.name}: the exported document model differs from the model by {diff:.3g} "
                          f"(> {tolerance:g}) on pages of shape {tuple(inputs['ids'].shape)}")
    return diff


def export_document_openvino(model: nn.Module, folder: str | Path, tolerance: float = 1e-4) -> dict:
    """``document.xml`` / ``.bin`` (from the verified ONNX export) + ``export.json``, verified in f32."""
    import tempfile

    import openvino as ov

    from .openvino import compile_tower

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = fp32_eval(model)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = export_document_onnx(model, tmp, tolerance)
        xml = folder / "document.xml"
        try:
            ov.save_model(ov.convert_model(str(Path(tmp) / FILE)), str(xml), compress_to_fp16=False)
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"the {manifest['task']} document model could not be converted to OpenVINO: {e}") from e
    names = tuple(manifest["outputs"])
    inputs = _inputs(model, 3, 23, 1, pad_last=True)
    with torch.no_grad():
        expected = _Task(model, names)(*inputs.values())
    compiled = compile_tower(xml, "f32")
    result = compiled({k: v.numpy() for k, v in inputs.items()})
    got = [torch.from_numpy(result[compiled.output(i)]) for i in range(len(names))]
    diff = max(float((e[torch.isfinite(e)] - g[torch.isfinite(e)]).abs().max()) for e, g in zip(expected, got))
    if not diff <= tolerance:
        for f in (xml, xml.with_suffix(".bin")):
            f.unlink(missing_ok=True)
        raise ExportError(f"{xml.name}: the OpenVINO document model differs from the model by {diff:.3g}")
    manifest.update(format="openvino", file=xml.name, onnx_max_abs_diff=manifest["max_abs_diff"], max_abs_diff=diff)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


class DocumentRuntime:
    """An exported document model under ONNX Runtime or OpenVINO: ``run(ids, boxes, image, attention_mask)``
    → {output name: tensor}, as the torch model's forward returns them."""

    def __init__(self, folder: str | Path, backend: str, precision: str = "f32"):
        self.folder, self.backend = Path(folder), backend
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        file = str(self.folder / self.manifest["file"])
        if backend == "onnxruntime":
            import onnxruntime as ort

            session = ort.InferenceSession(file, providers=["CPUExecutionProvider"])
            self._run = lambda feeds: session.run(None, feeds)
        else:
            from .openvino import compile_tower

            compiled = compile_tower(Path(file), precision)
            outputs = [compiled.output(i) for i in range(len(self.manifest["outputs"]))]
            self._run = lambda feeds: [compiled(feeds)[o] for o in outputs]

    def run(self, ids, boxes, image, attention_mask, token_type_ids=None) -> dict:
        types = torch.zeros_like(ids) if token_type_ids is None else token_type_ids
        given = {"ids": ids, "boxes": boxes, "attention_mask": attention_mask, "token_type_ids": types, "image": image}
        feeds = {name: given[name].detach().cpu().numpy() for name in self.manifest["inputs"]}
        feeds = {k: v.astype("float32") if k == "image" else v.astype("int64") for k, v in feeds.items()}
        return {name: torch.from_numpy(out) for name, out in zip(self.manifest["outputs"], self._run(feeds))}


def exported_document(model: nn.Module, model_id: str, backend: str, precision: str = "f32") -> DocumentRuntime:
    """``model`` under ``backend``, exported and verified on first use and cached by ``model_id`` (its
    weights hash) under the export cache, as the embedding towers are."""
    from .runtime import cached_export, check_backend

    check_backend(backend, precision)
    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    export = export_document_onnx if fmt == "onnx" else export_document_openvino
    folder = cached_export(f"{model_id}-document-{fmt}-torch{torch.__version__}", lambda tmp: export(model, tmp))
    return DocumentRuntime(folder, backend, precision)
