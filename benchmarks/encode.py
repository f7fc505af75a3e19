"""Encoding throughput: polymodal CLIP vs transformers.CLIPModel, same ViT-B/32 weights, CPU.

    python benchmarks/encode.py [--repeats 5] [--threads 2]

Runs both implementations alternately in one process on the same inputs (image batch 32 at
224 px, text batch 256 at context 77), and prints throughput, the ratio ours/HF, achieved GFLOP/s
against the best GEMM path this CPU has (MKL, oneDNN, ONNX Runtime, OpenVINO: ``cpu_gemm.py``) and
against the model's own GEMM shapes, peak resident-memory growth per call, and our bf16 inference
path with its cosine similarity to fp32. Then (unless ``--no-runtimes``) the same model under
ONNX Runtime and OpenVINO, fp32 and bf16, side by side with ours (``gemm_paths.runtime_table``;
text batch 64 there).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
import torch.nn.functional as F

import polymodal
from timing import _timed, flops, peak_rss_growth_mib  # noqa: E402


def linear_gemm_rate(model: torch.nn.Module, fn, dtype: torch.dtype, repeats: int = 3) -> float:
    """GFLOP/s of the model's own GEMMs alone: every ``nn.Linear`` call of one ``fn()`` recorded as
    (M, K, N), then replayed as bare matmuls of those shapes. This is the ceiling the whole forward
    can approach (attention, norms and activations add time but few FLOPs)."""
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: shapes.append(
        (inp[0].numel() // inp[0].shape[-1], mod.in_features, mod.out_features)))
        for m in model.modules() if isinstance(m, torch.nn.Linear)]
    fn()
    for h in hooks:
        h.remove()
    operands = {shape: (torch.randn(shape[0], shape[1], dtype=dtype), torch.randn(shape[2], shape[1], dtype=dtype))
                for shape in set(shapes)}
    replay = lambda: [operands[s][0] @ operands[s][1].T for s in shapes]  # noqa: E731
    replay()
    best = min(_timed(replay) for _ in range(repeats))
    return sum(2 * m * k * n for m, k, n in shapes) / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--text-batch", type=int, default=256)
    parser.add_argument("--no-runtimes", action="store_true", help="skip the ONNX Runtime / OpenVINO comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    torch.manual_seed(0)
    hf = transformers.CLIPModel(transformers.CLIPConfig()).eval()  # the standard ViT-B/32 configuration
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ours = polymodal.load(tmp).eval()
    import copy

    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)
    ours_whole = copy.deepcopy(ours)  # without inference micro-batching, to show what it buys
    for m in ours_whole.modules():
        if hasattr(m, "inference_chunk_tokens"):
            m.inference_chunk_tokens = None

    images = torch.randn(args.image_batch, 3, 224, 224)
    ids = torch.randint(0, 49406, (args.text_batch, 77))
    ids[:, 0] = 49406
    ids[torch.arange(args.text_batch), torch.randint(5, 77, (args.text_batch,))] = 49407  # EOT, the largest id
    mask = torch.ones_like(ids)

    jobs = {
        "image": {
            "hf": lambda: hf.get_image_features(pixel_values=images),
            "ours": lambda: ours.encode_image(images),
            "ours_whole": lambda: ours_whole.encode_image(images),
            "ours_bf16": lambda: ours_bf16.encode_image(images.bfloat16()),
            "n": args.image_batch,
        },
        "text": {
            "hf": lambda: hf.get_text_features(input_ids=ids, attention_mask=mask),
            "ours": lambda: ours.encode_text(ids),
            "ours_whole": lambda: ours_whole.encode_text(ids),
            "ours_bf16": lambda: ours_bf16.encode_text(ids),
            "n": args.text_batch,
        },
    }
    from gemm_paths import print_gemm_rates, runtime_table

    from polymodal.layers.cpu_path import cpu_name

    print(f"{cpu_name()}, torch {torch.__version__}, {args.threads} threads")
    ceiling = print_gemm_rates(2048, args.threads)
    best_fp32 = ceiling["fp32"][1]
    with torch.inference_mode():
        for name, job in jobs.items():
            ref = _features(job["hf"]())
            got = job["ours"]().float()
            got16 = job["ours_bf16"]().float()
            max_diff = (got - ref).abs().max().item()
            cos16 = F.cosine_similarity(got16, got, dim=-1).min().item()
            work = flops(job["ours"])
            model_gemm = linear_gemm_rate(ours, job["ours"], torch.float32)
            times = {k: [] for k in ("hf", "ours", "ours_whole", "ours_bf16")}
            for _ in range(args.repeats):  # alternate so drift hits all alike
                for k in times:
                    times[k].append(_timed(job[k]))
            med = {k: statistics.median(v) for k, v in times.items()}
            mem = {k: peak_rss_growth_mib(job[k]) for k in times}
            print(f"\n{name} encoding, batch {job['n']} ({work / 1e9:.0f} GFLOP per batch), "
                  f"median of {args.repeats}; max |ours - hf| = {max_diff:.1e}; bf16 min cosine = {cos16:.5f}")
            print(f"  the model's own GEMM shapes alone run at {model_gemm:.0f} GFLOP/s fp32")
            for k in times:
                rate = job["n"] / med[k]
                gflops = work / med[k] / 1e9
                print(f"  {k:10s} {rate:8.1f} /s  {gflops:6.0f} GFLOP/s ({gflops / model_gemm:5.0%} of its fp32 GEMM rate, "
                      f"{gflops / best_fp32:5.0%} of the best fp32 path)  x{med['hf'] / med[k]:.2f} vs hf  "
                      f"peak RSS +{mem[k]:.0f} MiB")
    if not args.no_runtimes:
        runtime_table(ours, {"image": (images,), "text": (ids[:64], mask[:64])}, ceiling, args.repeats, args.threads)


def _features(out):
    return out.pooler_output if hasattr(out, "pooler_output") else out


if __name__ == "__main__":
    main()
