"""Document models exported: PyTorch vs ONNX Runtime vs OpenVINO on the same weights, side by side.

    python benchmarks/doc_export.py [--preset layoutlmv3-base] [--task qa] [--batch 2] [--tokens 512] [--steps 5]

A task model of the preset's size with random weights (the speed does not depend on them), exported by
:mod:`polymodal.export.documents` (verified there against the model), then the same batch of windows —
``--tokens`` words on the 0–1000 grid and the page image — through PyTorch fp32 (the CPU path the
``doc`` commands use), ONNX Runtime and OpenVINO (f32; bf16 too where OpenVINO runs it), alternating,
median of ``--steps``. Threads: ``--threads`` for all three.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import alternating_medians  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="layoutlmv3-base")
    ap.add_argument("--task", default="qa", choices=["qa", "entities", "classify"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from polymodal.export.documents import DocumentRuntime, _inputs, export_document_onnx, export_document_openvino
    from polymodal.layers.cpu_path import set_linear_path
    from polymodal.models.document_tasks import DocumentTaskConfig
    from polymodal.registry import build, preset

    torch.manual_seed(0)
    model = build(DocumentTaskConfig(preset(args.preset), args.task, 7, link_dim=0)).eval()
    inputs = _inputs(model, args.batch, args.tokens, 3, pad_last=False)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_manifest = export_document_onnx(model, Path(tmp) / "onnx")
        runtimes = {"onnxruntime f32": DocumentRuntime(Path(tmp) / "onnx", "onnxruntime")}
        try:
            ov_manifest = export_document_openvino(model, Path(tmp) / "ov")
            runtimes["openvino f32"] = DocumentRuntime(Path(tmp) / "ov", "openvino", "f32")
            runtimes["openvino bf16"] = DocumentRuntime(Path(tmp) / "ov", "openvino", "bf16")
        except ImportError:
            ov_manifest = None
        set_linear_path(model, "auto")
        image = inputs.get("image")

        def torch_job():
            with torch.inference_mode():
                model(inputs["ids"], inputs["boxes"], image, inputs["attention_mask"], inputs["token_type_ids"])

        jobs = {"torch f32": torch_job}
        for name, runtime in runtimes.items():
            jobs[name] = (lambda r=runtime: r.run(inputs["ids"], inputs["boxes"], image, inputs["attention_mask"],
                                                 inputs["token_type_ids"]))
        seconds = alternating_medians(jobs, args.steps)
    windows_per_s = {k: args.batch / v for k, v in seconds.items()}
    results = {"preset": args.preset, "task": args.task, "batch": args.batch, "tokens": args.tokens,
               "threads": args.threads, "torch": torch.__version__,
               "onnx_max_abs_diff": onnx_manifest["max_abs_diff"],
               "openvino_max_abs_diff": None if ov_manifest is None else ov_manifest["max_abs_diff"],
               "windows_per_s": {k: round(v, 3) for k, v in windows_per_s.items()},
               "vs_torch": {k: round(v / windows_per_s["torch f32"], 3) for k, v in windows_per_s.items()}}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
