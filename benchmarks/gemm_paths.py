"""CPU GEMM paths and what prepacked oneDNN linears give a whole model (issue 16, first part).

    python benchmarks/gemm_paths.py [--n 2048] [--threads 2] [--batch 32]

1. The fp32 GEMM rate (GFLOP/s) of an n×n×n product on each path this machine has: ``F.linear``
   (PyTorch's default: MKL), numpy (its BLAS), oneDNN through ``torch.utils.mkldnn.to_mkldnn``, and
   oneDNN with the weight prepacked (``polymodal.layers.packed_linear``), best of 5 after a warm-up.
2. ViT-B/32's image tower (the ``clip-vit-b-32`` preset, random weights, 224 px) with its linears plain
   and packed, fp32 and bf16 weights: images/s, alternating runs, median of 3, and the max difference
   / min cosine to plain fp32.
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from encode import alternating_medians  # noqa: E402


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def gemm_rates(n: int) -> dict[str, float]:
    from torch.utils import mkldnn

    from polymodal.layers.packed_linear import PackedLinear, available

    lin = torch.nn.Linear(n, n, bias=False).eval()
    x = torch.randn(n, n)
    a = x.numpy()
    paths = {"F.linear (MKL)": lambda: lin(x), "numpy": lambda: a @ a}
    paths["oneDNN (to_mkldnn)"] = (lambda m=mkldnn.to_mkldnn(copy.deepcopy(lin)): m(x))
    if available():
        paths["oneDNN prepacked"] = (lambda m=PackedLinear(copy.deepcopy(lin), n): m(x))
    out = {}
    with torch.no_grad():
        for name, fn in paths.items():
            fn()
            best = min(_timed(fn) for _ in range(5))
            out[name] = 2 * n ** 3 / best / 1e9
    return out


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    import polymodal
    from polymodal.layers.packed_linear import pack_linears

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} threads")
    print(f"\n1. fp32 GEMM {args.n}³\n| path | GFLOP/s |\n|---|---|")
    for name, rate in gemm_rates(args.n).items():
        print(f"| {name} | {rate:.0f} |", flush=True)
    torch.manual_seed(0)
    plain = polymodal.create("clip-vit-b-32").eval()
    packed = copy.deepcopy(plain)
    n = pack_linears(packed)
    x = torch.randn(args.batch, 3, 224, 224)
    models = {"plain fp32": (plain, x), "packed fp32": (packed, x),
              "plain bf16 weights": (copy.deepcopy(plain).to(torch.bfloat16), x.bfloat16()),
              "packed bf16 weights": (copy.deepcopy(packed).to(torch.bfloat16), x.bfloat16())}
    jobs = {}
    for name, (m, inp) in models.items():
        def run(m=m, inp=inp):
            with torch.no_grad():
                return m.embed("image", inp).float()
        jobs[name] = run
    want = jobs["plain fp32"]()
    med = alternating_medians(jobs, 3)
    print(f"\n2. clip-vit-b-32 image tower, batch {args.batch}, 224 px ({n} linears packed), median of 3")
    print("| model | images/s | vs plain fp32 | max abs diff | min cosine |\n|---|---|---|---|---|")
    for name, fn in jobs.items():
        got = fn()
        print(f"| {name} | {args.batch / med[name]:.1f} | {med['plain fp32'] / med[name]:.2f}× | "
              f"{(got - want).abs().max().item():.1e} | {F.cosine_similarity(got, want).min().item():.5f} |",
              flush=True)


if __name__ == "__main__":
    main()
