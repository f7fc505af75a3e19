"""CLIP training and image encoding on one GPU: polymodal vs transformers.CLIPModel, eager and compiled,
same weights and same random batch in one process. Prints one table and writes JSON.

    python benchmarks/gpu_train.py                        # CLIP ViT-B/16, batch 256, bf16, on cuda
    python benchmarks/gpu_train.py --device cpu --tiny    # toy size (what the test suite runs)

Per case: train samples/s and MFU (FLOPs of one step counted by ``torch.utils.flop_counter`` ×
steps/s ÷ the GPU's dense bf16 peak, from the table below or ``--peak-tflops``), image-encode
images/s at ``--encode-batch``, and peak device memory (CUDA only). A train step is forward of both
towers, the symmetric InfoNCE loss, backward and a fused AdamW step, under bf16 autocast.
Designed to finish in under 8 minutes on an H100 (compilation included).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import polymodal  # noqa: E402
from polymodal.objectives import ClipLoss  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), by a substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.4,
                    "GH200": 989.4, "B200": 2250.0, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10G": 70.0,
                    "RTX 4090": 165.2}


def hf_config(transformers, tiny: bool):
    """CLIP ViT-B/16 (image 224, text 77) in transformers' terms; ``tiny``: a 2-layer toy."""
    if tiny:
        text = dict(vocab_size=1000, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                    max_position_embeddings=16, bos_token_id=998, eos_token_id=999)
        vision = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                      image_size=32, patch_size=8)
        return transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)
    text = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407)
    vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  image_size=224, patch_size=16)
    return transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Case:
    """One model (ours or HF, eager or compiled): its train step and its image encoder."""

    def __init__(self, name: str, model: torch.nn.Module, kind: str, compiled: bool, device: torch.device):
        self.name, self.kind, self.device = name, kind, device
        self.model = model.to(device).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-5, fused=device.type == "cuda" or None)
        self.loss_fn = ClipLoss()
        self.forward = torch.compile(self.model) if compiled else self.model
        encode = self.model.encode_image if kind == "ours" else self.model.get_image_features
        self.encode = torch.compile(encode) if compiled else encode

    def loss(self, pixels, ids, mask):
        if self.kind == "ours":
            out = self.forward(pixels, ids, mask)
            return self.loss_fn(out["image_features"].float(), out["text_features"].float(), out["logit_scale"])
        out = self.forward(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        return self.loss_fn(out.image_embeds.float(), out.text_embeds.float(), self.model.logit_scale.exp())

    def step(self, batch) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            loss = self.loss(*batch)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()

    @torch.inference_mode()
    def embed(self, pixels) -> torch.Tensor:
        self.model.eval()
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return self.encode(pixels)
        finally:
            self.model.train()


def timed(fn, device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """(seconds per call after ``warmup`` calls, seconds the warm-up took: compilation shows there)."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps, warm


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def measure(case: Case, batch: tuple, encode_pixels: torch.Tensor, warmup: int, steps: int) -> dict:
    """One case's row: train samples/s (+ FLOPs of a step, eager only), encode images/s, peak memory."""
    device, cuda = case.device, case.device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    train_s, warm_s = timed(lambda: case.step(batch), device, warmup, steps)
    flops = None if case.forward is not case.model else count_flops(lambda: case.step(batch))
    train_mem = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    encode_s, _ = timed(lambda: case.embed(encode_pixels), device, warmup, steps)
    encode_mem = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    return {"case": case.name, "train_samples_per_s": len(batch[0]) / train_s, "train_step_flops": flops,
            "warmup_s": warm_s, "encode_images_per_s": len(encode_pixels) / encode_s, "train_peak_gib": train_mem,
            "encode_peak_gib": encode_mem, "final_loss": float(case.step(batch))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="a 2-layer toy CLIP, batch 8 (CPU smoke test)")
    p.add_argument("--batch", type=int, default=None, help="train batch (default 256; tiny 8)")
    p.add_argument("--encode-batch", type=int, default=None, help="image-encode batch (default 1024; tiny 16)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per case (default 10; tiny 2)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="eager cases only")
    p.add_argument("--only", default="ours,hf", help="comma-separated: ours, hf")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: by GPU name)")
    p.add_argument("--out", default="gpu_train.json")
    args = p.parse_args(argv)
    import transformers

    from polymodal.devices import resolve

    device = resolve(args.device)
    batch = args.batch or (8 if args.tiny else 256)
    encode_batch = args.encode_batch or (16 if args.tiny else 1024)
    steps = args.steps or (2 if args.tiny else 10)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(0)
    hf_cfg = hf_config(transformers, args.tiny)
    reference = transformers.CLIPModel._from_config(hf_cfg, attn_implementation="sdpa")
    with tempfile.TemporaryDirectory() as tmp:  # ours gets the same weights through our HF loader
        reference.save_pretrained(tmp)
        ours_model = polymodal.load(tmp)
    size, context, vocab = hf_cfg.vision_config.image_size, hf_cfg.text_config.max_position_embeddings, \
        hf_cfg.text_config.vocab_size
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, size, size, generator=g).to(device)
    ids = torch.randint(1, vocab - 2, (batch, context), generator=g)
    ids[:, 0], ids[:, -1] = vocab - 2, vocab - 1  # BOT … EOT, where both models pool
    ids, mask = ids.to(device), torch.ones(batch, context, dtype=torch.long, device=device)
    encode_pixels = torch.randn(encode_batch, 3, size, size, generator=g).to(device)

    kinds = [k.strip() for k in args.only.split(",")]
    variants = [("eager", False)] + ([] if args.no_compile else [("compiled", True)])
    rows = []
    peak = peak_tflops(device, args.peak_tflops)
    for kind in kinds:
        for label, compiled in variants:
            torch.manual_seed(0)
            model = copy.deepcopy(ours_model if kind == "ours" else reference)
            rows.append(measure(Case(f"{kind} {label}", model, kind, compiled, device), (pixels, ids, mask),
                                encode_pixels, args.warmup, steps))
    flops = {r["case"].split()[0]: r["train_step_flops"] for r in rows if r["train_step_flops"]}
    for r in rows:  # compiled runs do the same FLOPs as their eager twin
        r["train_step_flops"] = flops.get(r["case"].split()[0])
        achieved = r["train_step_flops"] * r["train_samples_per_s"] / batch if r["train_step_flops"] else None
        r["achieved_tflops"] = achieved / 1e12 if achieved else None
        r["mfu"] = achieved / (peak * 1e12) if achieved and peak else None
    best_peer = max((r["train_samples_per_s"] for r in rows if r["case"].startswith("hf")), default=None)
    from polymodal.layers.cpu_path import cpu_name

    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
              "torch": torch.__version__, "transformers": transformers.__version__,
              "model": "toy CLIP (2 layers)" if args.tiny else "CLIP ViT-B/16 (image 224, text 77)",
              "batch": batch, "encode_batch": encode_batch, "steps": steps, "precision": "bf16 autocast",
              "peak_bf16_tflops": peak, "rows": rows,
              "ours_vs_best_hf": {r["case"]: r["train_samples_per_s"] / best_peer for r in rows
                                  if r["case"].startswith("ours") and best_peer}}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"{result['model']} on {result['device']}, batch {result['batch']}, {result['precision']}, "
          f"torch {result['torch']}, transformers {result['transformers']}")
    print(f"{'case':16s} {'train samples/s':>16s} {'TFLOP/s':>8s} {'MFU':>6s} {'encode img/s':>13s} "
          f"{'train GiB':>9s} {'encode GiB':>10s} {'warm-up s':>9s}")
    def fmt(value, spec: str, width: int) -> str:
        return format(value, spec).rjust(width) if value is not None else "n/a".rjust(width)

    for r in result["rows"]:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(f"{r['case']:16s} {fmt(r['train_samples_per_s'], ',.1f', 16)} {fmt(r['achieved_tflops'], '.2f', 8)} "
              f"{mfu:>6s} {fmt(r['encode_images_per_s'], ',.1f', 13)} {fmt(r['train_peak_gib'], '.2f', 9)} "
              f"{fmt(r['encode_peak_gib'], '.2f', 10)} {r['warmup_s']:9.1f}")
    for case, ratio in result["ours_vs_best_hf"].items():
        print(f"{case} vs the best HF train step: {ratio:.2f}x")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
