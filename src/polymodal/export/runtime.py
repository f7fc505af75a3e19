"""Running exported towers behind the :class:`~polymodal.tasks.Embedder`: ``--backend onnxruntime`` or
``--backend openvino`` instead of PyTorch.

The towers are exported from the loaded model once, verified, and cached by the model's weights hash
(``$POLYMODAL_CACHE``, default ``~/.cache/polymodal``), so a second start reuses them. Inputs and
outputs are the PyTorch tower's: ``embed(modality, x [B, ...], mask) → [B, E]`` (fp32, CPU).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .onnx import MANIFEST

BACKENDS = ("torch", "onnxruntime", "openvino")
EXTRA = {"onnxruntime": "onnx", "openvino": "openvino"}  # pip install 'polymodal[EXTRA]'


def cache_root() -> Path:
    return Path(os.environ.get("POLYMODAL_CACHE") or Path.home() / ".cache" / "polymodal")


def check_backend(backend: str, precision: str = "f32") -> None:
    """Raise ValueError for an unknown backend, a missing extra or a precision it does not run."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    if backend == "torch":
        return
    try:
        __import__(backend)  # the backend's name is its package's
    except ImportError as e:
        raise ValueError(f"backend {backend} needs {backend}: pip install 'polymodal[{EXTRA[backend]}]'") from e
    if backend == "onnxruntime" and precision != "f32":
        raise ValueError("the onnxruntime backend runs fp32 (its CPU kernels have no bf16); use --backend openvino "
                         "or torch for bf16")


class ExportedTowers:
    """The towers of one export folder (``export.json`` beside them) under ``backend``."""

    def __init__(self, folder: str | Path, backend: str, precision: str = "f32", threads: int = 0):
        self.folder, self.backend, self.precision = Path(folder), backend, precision
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        self.threads = threads or torch.get_num_threads()
        self._runners: dict = {}

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.manifest["towers"])

    def _runner(self, modality: str):
        if modality not in self._runners:
            entry = self.manifest["towers"].get(modality)
            if entry is None:
                raise KeyError(f"{self.folder} has no {modality!r} tower; it has: {', '.join(self.modalities)}")
            path = self.folder / entry["file"]
            if self.backend == "onnxruntime":
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self._runners[modality] = lambda feeds: session.run(None, feeds)[0]
            else:
                from .openvino import compile_tower

                compiled = compile_tower(path, self.precision, self.threads)
                request = compiled.create_infer_request()
                out = compiled.output(0)
                self._runners[modality] = lambda feeds: request.infer(feeds)[out]
        return self._runners[modality]

    def takes(self, modality: str, x: torch.Tensor) -> bool:
        """Whether an exported tower runs ``x`` (its own rank, or one more: clips of one sample)."""
        entry = self.manifest["towers"].get(modality)
        return entry is not None and x.dim() in (entry["rank"][0], entry["rank"][0] + 1)

    def embed(self, modality: str, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One batch → [B, E] fp32, as ``model.embed``. An input with one more leading axis than the
        tower takes ([B, S, ...]: clips of one sample) is run as B·S rows and averaged over S, as
        the PyTorch model does."""
        run = self._runner(modality)  # a modality without a tower is a KeyError naming the ones there are
        entry = self.manifest["towers"][modality]
        rank = entry["rank"][0]
        clips = x.dim() == rank + 1
        if not self.takes(modality, x):
            raise ValueError(f"the exported {modality} tower takes inputs of {rank} dimensions (or {rank + 1} with "
                             f"clips), not {tuple(x.shape)}; use --backend torch for this input")
        b = x.shape[0]
        if clips:
            x = x.reshape(-1, *x.shape[2:])
            attention_mask = attention_mask.reshape(len(x), -1) if attention_mask is not None else None
        names = entry["inputs"]
        feeds = {names[0]: np.ascontiguousarray(x.detach().cpu().float().numpy() if x.is_floating_point()
                                                else x.detach().cpu().numpy())}
        if len(names) == 2:
            mask = attention_mask if attention_mask is not None else torch.ones(x.shape[:2], dtype=torch.long)
            feeds[names[1]] = np.ascontiguousarray(mask.detach().cpu().to(torch.long).numpy())
        out = torch.from_numpy(np.asarray(run(feeds))).float()
        return out.reshape(b, -1, out.shape[-1]).mean(1) if clips else out


def cached_export(name: str, export) -> Path:
    """The export folder ``name`` under :func:`cache_root`, made by ``export(tmp_folder)`` on first use: written
    beside it and renamed into place, so a half-written export is never found (two processes may race; the
    first rename wins)."""
    folder = cache_root() / "exports" / name
    if not (folder / MANIFEST).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
        try:
            export(tmp)
            try:
                tmp.rename(folder)
            except OSError:
                if not (folder / MANIFEST).is_file():  # not another process that got there first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def exported_towers(model: nn.Module, model_id: str, backend: str, precision: str = "f32",
                    threads: int = 0) -> ExportedTowers:
    """``model``'s towers under ``backend`` (``onnxruntime`` or ``openvino``), exported and verified
    on first use and cached under :func:`cache_root` by ``model_id`` (its weights hash)."""
    check_backend(backend, precision)
    fmt = "onnx" if backend == "onnxruntime" else "openvino"

    def export(tmp: Path) -> None:
        if fmt == "onnx":
            from .onnx import export_onnx

            export_onnx(model, tmp)
        else:
            from .openvino import export_openvino

            export_openvino(model, tmp)

    folder = cached_export(f"{model_id}-{fmt}-torch{torch.__version__}", export)
    return ExportedTowers(folder, backend, precision, threads)
