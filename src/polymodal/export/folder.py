"""``polymodal export MODEL --format onnx|openvino|hf|open_clip --out DIR``: a model folder → a folder
usable on its own elsewhere, verified against the model before the command reports success.

* ``onnx`` / ``openvino``: one file per embedding tower (:mod:`.onnx`, :mod:`.openvino`), plus
  ``export.json`` (inputs, max |Δ| per tower), ``config.json`` (the architecture), the processor
  (``processor_config.json``: image/audio normalisation) and the tokenizer files.
* ``hf`` / ``open_clip`` (CLIP only): :mod:`.clip_layouts`; the written folder is read back with our
  own loader and its embeddings compared with the model's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..modalities.processor import processor_for
from ..modalities.text import copy_tokenizer, tokenizer_files
from ..registry import config_to_dict
from .clip_layouts import check_exportable, save_hf_clip, save_open_clip
from .onnx import ExportError, fp32_eval, probe_inputs, towers

FORMATS = ("onnx", "openvino", "hf", "open_clip")


def export_model(source: str | Path, fmt: str, out: str | Path, tolerance: float = 1e-4) -> dict:
    """Export the model at ``source`` (any supported layout) as ``fmt`` into ``out``; returns
    ``{modality: max |Δ|}``. Raises :class:`ExportError` (or ValueError for an unknown format)."""
    from ..weights import load_checkpoint

    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not one of {FORMATS}")
    source, out = Path(source), Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder")
    folder = source if source.is_dir() else source.parent
    tokenizer_files(folder)  # a link or a FIFO among the files to carry along is refused before any work
    model = fp32_eval(load_checkpoint(source))
    processor = processor_for(model, folder) if hasattr(model, "modalities") else None
    from ..models.document_tasks import DocumentTaskModel

    if fmt in ("onnx", "openvino") and isinstance(model, DocumentTaskModel):
        from .documents import export_document_onnx, export_document_openvino

        manifest = (export_document_onnx if fmt == "onnx" else export_document_openvino)(model, out, tolerance)
        (out / "config.json").write_text(json.dumps(config_to_dict(model.config), indent=1))
        from ..documents.processor import LABELS_FILE, PROCESSOR_FILE, TOKENIZER_FILE

        for name in (PROCESSOR_FILE, TOKENIZER_FILE, LABELS_FILE):  # what a page needs beside the model
            if (folder / name).is_file() and not (folder / name).is_symlink():
                shutil.copyfile(folder / name, out / name)
        return {manifest["task"]: manifest["max_abs_diff"]}
    if fmt in ("onnx", "openvino"):
        if not hasattr(model, "embed"):
            raise ExportError(f"{source} holds a {type(model).__name__}, which has no embedding towers to export")
        if fmt == "onnx":
            from .onnx import export_onnx as export
        else:
            from .openvino import export_openvino as export
        manifest = export(model, out, tolerance)
        (out / "config.json").write_text(json.dumps(config_to_dict(model.config), indent=1))
        if processor is not None:
            processor.save(out)
        copy_tokenizer(folder, out)
        return {m: t["max_abs_diff"] for m, t in manifest["towers"].items()}

    check_exportable(model)
    (save_hf_clip if fmt == "hf" else save_open_clip)(model, out, folder, processor)
    return verify_reloaded(model, out, tolerance)


def verify_reloaded(model, out: Path, tolerance: float) -> dict:
    """Read ``out`` back with our loader and compare every tower's embedding with ``model``'s."""
    from ..weights import load_checkpoint

    again = fp32_eval(load_checkpoint(out))
    diffs = {}
    for tower in towers(model):
        inputs = probe_inputs(tower)
        with torch.no_grad():
            diffs[tower.modality] = float((again.embed(tower.modality, *inputs) -
                                           model.embed(tower.modality, *inputs)).abs().max())
    bad = {m: d for m, d in diffs.items() if not d <= tolerance}
    if bad:
        raise ExportError(f"{out}: read back, the export differs from the model: {bad} (> {tolerance:g})")
    return diffs
