"""The GEMM rate of every path this CPU has (shared by the benchmarks): an n×n×n product, best of 5
after a warm-up, in GFLOP/s. fp32: PyTorch's default (``F.linear``: MKL), numpy's BLAS, oneDNN via
``to_mkldnn``, oneDNN with the weight prepacked (``polymodal.layers.packed_linear``), ONNX Runtime's
MatMul (MLAS) and OpenVINO's (f32 pinned); bf16: PyTorch, prepacked oneDNN and OpenVINO bf16.
Paths whose package is not installed are left out.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from polymodal.layers.cpu_path import best_time as _best


def _matmul_onnx(n: int, folder: Path) -> Path:
    """An ONNX graph Y = X @ W with W [n, n] a constant (what an exported linear is)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "matmul",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])], [w])
    path = folder / "matmul.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def gemm_rates(n: int = 2048, threads: int | None = None) -> dict[str, float]:
    """``{path: GFLOP/s}`` for every path available here (names say the precision)."""
    from torch.utils import mkldnn

    from polymodal.layers.packed_linear import PackedLinear, available

    threads = threads or torch.get_num_threads()
    lin = torch.nn.Linear(n, n, bias=False).eval()
    x = torch.randn(n, n)
    a = x.numpy()
    paths = {"fp32 F.linear (MKL)": lambda: lin(x), "fp32 numpy": lambda: a @ a,
             "fp32 oneDNN (to_mkldnn)": (lambda m=mkldnn.to_mkldnn(copy.deepcopy(lin)): m(x))}
    lin16, x16 = copy.deepcopy(lin).to(torch.bfloat16), x.bfloat16()
    paths["bf16 F.linear"] = lambda: lin16(x16)
    if available():
        paths["fp32 oneDNN prepacked"] = (lambda m=PackedLinear(copy.deepcopy(lin), n): m(x))
        paths["bf16 oneDNN prepacked"] = (lambda m=PackedLinear(copy.deepcopy(lin16), n): m(x16))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = _matmul_onnx(n, Path(tmp))
        except ImportError:
            model = None
        if model is not None:
            try:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
                paths["fp32 ONNX Runtime (MLAS)"] = lambda: session.run(None, {"X": a})
            except ImportError:
                pass
            try:
                from polymodal.export.openvino import compile_tower

                for precision in ("f32", "bf16"):
                    compiled = compile_tower(model, precision, threads)  # one Core for the process
                    name = "fp32 OpenVINO" if precision == "f32" else "bf16 OpenVINO"
                    paths[name] = (lambda c=compiled: c({"X": a}))
            except ImportError:
                pass
        out = {}
        with torch.inference_mode():
            for name, fn in paths.items():
                out[name] = 2 * n ** 3 / _best(fn) / 1e9
    return out


def best(rates: dict[str, float], precision: str = "fp32") -> tuple[str, float]:
    """The fastest path of ``precision``: (name, GFLOP/s)."""
    return max(((k, v) for k, v in rates.items() if k.startswith(precision)), key=lambda kv: kv[1])
