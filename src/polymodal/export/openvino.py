"""ONNX towers → OpenVINO IR (``MODALITY.xml`` + ``.bin``), verified against the model like the ONNX export.

OpenVINO runs bf16 by default on CPUs that have it (its ``INFERENCE_PRECISION_HINT``); verification
pins f32 so that the files are checked, not the precision. The weights are kept in fp32
(``compress_to_fp16=False``).
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from . import onnx
from .onnx import MANIFEST, ExportError, Tower, fp32_eval, probe_inputs, towers


@functools.cache
def _core():
    """One OpenVINO Core for the process. A compiled model must not outlive the Core that loaded its
    device plugin: freeing one after a temporary Core was gone crashed the process (a segfault at a
    later garbage collection)."""
    import openvino as ov

    return ov.Core()


def compile_tower(xml: Path, precision: str = "f32", threads: int = 0):
    """An OpenVINO compiled model for one tower on the CPU (``precision`` f32 or bf16)."""
    config = {"INFERENCE_PRECISION_HINT": precision}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return _core().compile_model(str(xml), "CPU", config)


def export_openvino(model: nn.Module, folder: str | Path, tolerance: float = 1e-4) -> dict:
    """``MODALITY.xml``/``.bin`` for every tower of ``model`` in ``folder`` plus ``export.json``;
    :class:`ExportError` names a tower that does not reproduce the model within ``tolerance`` (f32)."""
    import openvino as ov

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = fp32_eval(model)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = onnx.export_onnx(model, tmp, tolerance)
        by_name = {t.modality: t for t in towers(model)}
        for modality, entry in manifest["towers"].items():
            xml = folder / f"{modality}.xml"
            try:
                ov.save_model(ov.convert_model(str(Path(tmp) / entry["file"])), str(xml), compress_to_fp16=False)
            except Exception as e:  # noqa: BLE001
                raise ExportError(f"the {modality} tower could not be converted to OpenVINO: {e}") from e
            entry.update(file=xml.name, onnx_max_abs_diff=entry["max_abs_diff"],
                         max_abs_diff=verify_openvino(model, xml, by_name[modality], tolerance))
    manifest["format"] = "openvino"
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def verify_openvino(model: nn.Module, xml: Path, tower: Tower, tolerance: float) -> float:
    inputs = probe_inputs(tower)
    with torch.no_grad():
        expected = model.embed(tower.modality, *inputs).float()
    compiled = compile_tower(xml, "f32")
    got = compiled({n: a.numpy() for n, a in zip(tower.names, inputs)})[compiled.output(0)]
    diff = float((torch.from_numpy(got) - expected).abs().max())
    if not diff <= tolerance:
        for f in (xml, xml.with_suffix(".bin")):
            f.unlink(missing_ok=True)
        raise ExportError(f"{xml.name}: the OpenVINO {tower.modality} tower differs from the model by {diff:.3g} "
                          f"(> {tolerance:g})")
    return diff
