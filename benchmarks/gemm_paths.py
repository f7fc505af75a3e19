"""CPU inference at the hardware's limit (issue 16): every GEMM path this machine has, and ViT-B/32's
towers under PyTorch (plain and oneDNN-prepacked, fp32 and bf16), ONNX Runtime and OpenVINO, side
by side in one process.

    python benchmarks/gemm_paths.py [--threads 2] [--image-batch 32] [--text-batch 64] [--repeats 3]

1. GEMM rates (``cpu_gemm.gemm_rates``): n³ products per path and precision; the best fp32 and bf16
   paths are the ceilings the rest is measured against.
2. Each tower of the ``clip-vit-b-32`` preset (random weights; images 224 px, texts of 77 tokens):
   items/s (median of alternating runs), GFLOP/s and its share of the best GEMM rate of its
   precision, ratios to ONNX Runtime fp32 and OpenVINO bf16, max |Δ| / min cosine to PyTorch fp32
   (memory: section 4). The row "torch fp32, auto" is what the Embedder runs:
   the path ``polymodal.layers.cpu_path`` picks on this machine.
3. The model's own linear shapes replayed as bare GEMMs on the plain and prepacked paths (the
   ceiling of the whole forward), and the training question: the backward GEMMs of those shapes
   (dY·W, dYᵀ·X) on MKL vs oneDNN, conversions to oneDNN's layout included.
4. ``--memory``: peak memory of one call per runtime, each in a fresh process (a warm process
   reuses what an earlier call freed, which hides it): max RSS after the call minus RSS before it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from cpu_gemm import _best, best, gemm_rates  # noqa: E402
from timing import alternating_medians, flops  # noqa: E402


def linear_shapes(model, fn) -> list[tuple[int, int, int]]:
    """(M, K, N) of every ``nn.Linear`` call in one ``fn()``."""
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: shapes.append(
        (inp[0].numel() // inp[0].shape[-1], mod.in_features, mod.out_features)))
        for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.inference_mode():
        fn()
    for h in hooks:
        h.remove()
    return shapes


def replay_rates(shapes) -> dict[str, float]:
    """GFLOP/s of the shapes' forward GEMMs (plain, prepacked) and backward GEMMs (MKL, oneDNN)."""
    from polymodal.layers.packed_linear import PackedLinear

    work = sum(2 * m * k * n for m, k, n in shapes)
    unique = {s: (torch.randn(s[0], s[1]), torch.nn.Linear(s[1], s[2])) for s in set(shapes)}
    packed = {s: PackedLinear(lin, s[0]) for s, (_, lin) in unique.items()}
    grads = {s: torch.randn(s[0], s[2]) for s in unique}
    out = {}
    with torch.inference_mode():
        out["forward, plain (MKL)"] = work / _best(lambda: [F.linear(unique[s][0], unique[s][1].weight)
                                                            for s in shapes], 3) / 1e9
        out["forward, oneDNN prepacked"] = work / _best(lambda: [packed[s](unique[s][0]) for s in shapes], 3) / 1e9

        def backward_mkl():
            for s in shapes:
                x, lin = unique[s]
                grads[s] @ lin.weight  # dX = dY · W
                grads[s].T @ x  # dW = dYᵀ · X

        def backward_onednn():  # the same products through oneDNN, converting operands as training would
            for s in shapes:
                x, lin = unique[s]
                dy = grads[s].to_mkldnn()
                torch._C._nn.mkldnn_linear(dy, lin.weight.T.contiguous().to_mkldnn(), None).to_dense()
                torch._C._nn.mkldnn_linear(grads[s].T.contiguous().to_mkldnn(), x.T.contiguous().to_mkldnn(),
                                           None).to_dense()
        out["backward, MKL"] = 2 * work / _best(backward_mkl, 3) / 1e9
        out["backward, oneDNN"] = 2 * work / _best(backward_onednn, 3) / 1e9
    return out


def runtime_table(model, inputs: dict, ceiling: dict, repeats: int = 3, threads: int = 2) -> dict:
    """Sections 2 and 3 for ``model``'s towers on ``inputs`` ({tower: args of model.embed}); prints the
    tables and returns {tower: {runtime: items/s}}."""
    from polymodal.export.onnx import export_onnx
    from polymodal.export.openvino import export_openvino
    from polymodal.export.runtime import ExportedTowers
    from polymodal.layers.cpu_path import choose
    from polymodal.layers.packed_linear import pack_linears

    model = model.eval()
    auto = copy.deepcopy(model)
    chosen = choose(auto)
    packed = copy.deepcopy(model)
    pack_linears(packed)
    bf16, bf16_packed = copy.deepcopy(model).bfloat16(), copy.deepcopy(packed).bfloat16()
    tmp = Path(tempfile.mkdtemp())
    export_onnx(model, tmp / "onnx")
    export_openvino(model, tmp / "ov")
    ort = ExportedTowers(tmp / "onnx", "onnxruntime", threads=threads)
    ov32 = ExportedTowers(tmp / "ov", "openvino", "f32", threads)
    ov16 = ExportedTowers(tmp / "ov", "openvino", "bf16", threads)
    results = {}
    for tower, x in inputs.items():
        x16 = tuple(t.bfloat16() if t.is_floating_point() else t for t in x)
        jobs = {"torch fp32, plain": lambda: model.embed(tower, *x),
                f"torch fp32, auto ({chosen})": lambda: auto.embed(tower, *x),
                "torch fp32, prepacked": lambda: packed.embed(tower, *x),
                "ONNX Runtime fp32": lambda: ort.embed(tower, *x), "OpenVINO f32": lambda: ov32.embed(tower, *x),
                "torch bf16, plain": lambda: bf16.embed(tower, *x16),
                "torch bf16, prepacked": lambda: bf16_packed.embed(tower, *x16),
                "OpenVINO bf16": lambda: ov16.embed(tower, *x16)}
        with torch.inference_mode():
            work = flops(jobs["torch fp32, plain"])
            want = jobs["torch fp32, plain"]().float()
            outputs = {k: fn().float() for k, fn in jobs.items()}
            med = alternating_medians(jobs, repeats)
        n = len(x[0])
        results[tower] = {k: n / v for k, v in med.items()}
        print(f"\n2. {tower} tower, batch {n} ({work / 1e9:.0f} GFLOP), median of {repeats}")
        print("| runtime | items/s | GFLOP/s | of best GEMM | vs ORT fp32 | vs OpenVINO bf16 | max abs diff | min cosine"
              " |\n|---|---|---|---|---|---|---|---|")
        for k in jobs:
            rate = work / med[k] / 1e9
            ceil = ceiling["bf16" if "bf16" in k else "fp32"][1]
            print(f"| {k} | {n / med[k]:.1f} | {rate:.0f} | {rate / ceil:.0%} | {med['ONNX Runtime fp32'] / med[k]:.2f}× | "
                  f"{med['OpenVINO bf16'] / med[k]:.2f}× | {(outputs[k] - want).abs().max().item():.1e} | "
                  f"{F.cosine_similarity(outputs[k], want).min().item():.5f} |", flush=True)
        replay = replay_rates(linear_shapes(model, jobs["torch fp32, plain"]))
        print(f"\n3. {tower} tower's own linear shapes as bare GEMMs (best fp32 path {ceiling['fp32'][1]:.0f} GFLOP/s)"
              "\n| GEMMs | GFLOP/s | of best fp32 GEMM |\n|---|---|---|")
        for k, v in replay.items():
            print(f"| {k} | {v:.0f} | {v / ceiling['fp32'][1]:.0%} |", flush=True)
    return results


def print_gemm_rates(n: int, threads: int) -> dict:
    """Section 1; returns {"fp32": (path, GFLOP/s), "bf16": (path, GFLOP/s)}, the best of each."""
    rates = gemm_rates(n, threads)
    print(f"\n1. GEMM {n}³\n| path | GFLOP/s |\n|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} |", flush=True)
    ceiling = {p: best(rates, p) for p in ("fp32", "bf16")}
    print(f"best fp32: {ceiling['fp32'][0]} {ceiling['fp32'][1]:.0f}; best bf16: {ceiling['bf16'][0]} "
          f"{ceiling['bf16'][1]:.0f} GFLOP/s")
    return ceiling


RUNTIMES = ("torch fp32, plain", "torch fp32, auto", "ONNX Runtime fp32", "OpenVINO f32", "torch bf16, plain",
            "torch bf16, auto", "OpenVINO bf16")


def one_call_memory(runtime: str, tower: str, batch: int, threads: int) -> float:
    """In this (fresh) process: build ``runtime`` for clip-vit-b-32, then MiB of max-RSS growth over
    one call on a batch of ``batch``."""
    import resource

    import polymodal
    from polymodal.export.runtime import ExportedTowers
    from polymodal.layers.cpu_path import choose

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = polymodal.create("clip-vit-b-32").eval()
    g = torch.Generator().manual_seed(0)
    if tower == "image":
        x = (torch.randn(batch, 3, 224, 224, generator=g),)
    else:
        ids = torch.randint(1, 49406, (batch, 77), generator=g)
        x = (ids, torch.ones_like(ids))
    bf16 = "bf16" in runtime
    if runtime.startswith("torch"):
        model = model.bfloat16() if bf16 else model
        if "auto" in runtime:
            choose(model)
        x = tuple(t.bfloat16() if t.is_floating_point() and bf16 else t for t in x)
        run = lambda: model.embed(tower, *x)  # noqa: E731
    else:
        tmp = Path(tempfile.mkdtemp())
        if runtime.startswith("ONNX"):
            from polymodal.export.onnx import export_onnx

            export_onnx(model, tmp)
            towers = ExportedTowers(tmp, "onnxruntime", threads=threads)
        else:
            from polymodal.export.openvino import export_openvino

            export_openvino(model, tmp)
            towers = ExportedTowers(tmp, "openvino", "bf16" if bf16 else "f32", threads)
        towers._runner(tower)  # compiled before the measurement
        run = lambda: towers.embed(tower, *x)  # noqa: E731
    import gc

    gc.collect()
    before = _rss_mib()
    with torch.inference_mode():
        run()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4 / 1024


def memory_table(image_batch: int, text_batch: int, threads: int) -> None:
    import subprocess

    print("\n4. peak memory of one call, fresh process per runtime (MiB of max-RSS growth)")
    print(f"| runtime | image ×{image_batch} | text ×{text_batch} |\n|---|---|---|")
    for runtime in RUNTIMES:
        cells = []
        for tower, batch in (("image", image_batch), ("text", text_batch)):
            out = subprocess.run([sys.executable, __file__, "--one-call", runtime, tower, str(batch), str(threads)],
                                 capture_output=True, text=True)
            cells.append(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr[-200:]}")
        print(f"| {runtime} | {cells[0]} | {cells[1]} |", flush=True)


def main() -> None:
    import polymodal
    from polymodal.layers.cpu_path import cpu_name

    if len(sys.argv) > 1 and sys.argv[1] == "--one-call":
        runtime, tower, batch, threads = sys.argv[2:6]
        print(f"+{one_call_memory(runtime, tower, int(batch), int(threads)):.0f}")
        return

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--text-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--memory", action="store_true", help="only section 4 (fresh process per runtime)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory:
        memory_table(args.image_batch, args.text_batch, args.threads)
        return
    import onnxruntime  # the comparison needs both runtimes: pip install '.[onnx,openvino]'
    import openvino

    print(f"{cpu_name()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"openvino {openvino.__version__}, {args.threads} threads")
    ceiling = print_gemm_rates(args.n, args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 49406, (args.text_batch, 77), generator=g)
    ids[:, 0], ids[:, -1] = 49406, 49407
    runtime_table(polymodal.create("clip-vit-b-32"), {
        "image": (torch.randn(args.image_batch, 3, 224, 224, generator=g),), "text": (ids, torch.ones_like(ids))},
        ceiling, args.repeats, args.threads)


if __name__ == "__main__":
    main()
