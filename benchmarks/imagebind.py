"""ImageBind embedding throughput per modality on CPU: ours vs an official-style trunk.

    python benchmarks/imagebind.py [--presets imagebind-tiny,imagebind-huge] [--batches 1,8] [--threads 2]
                                   [--what timing,memory]

The official ImageBind cannot be installed here (it needs timm/torchvision), so the reference is
its trunk's construction rebuilt from torch modules with the same weights: seq-first
``nn.MultiheadAttention`` (packed in_proj, ``add_bias_kv``), ``nn.LayerNorm``, ``nn.GELU`` —
``BlockWithMasking`` as ``imagebind/models/transformer.py`` writes it — behind our stems and heads.
Its outputs are checked against ours before timing. For each preset and modality (random weights;
huge has ImageBind's sizes) it prints embeddings/s for ours in fp32 and bf16 and the reference in
fp32 and the ratio ours/reference; then (``memory``) the peak resident memory of a fresh process
that builds one modality's encoder and embeds one batch (weights + activations + the runtime).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from polymodal.models.imagebind import Postprocessor, build_encoder  # noqa: E402
from polymodal.registry import preset  # noqa: E402

MODALITIES = ("image", "text", "audio", "depth", "thermal", "imu")


class OfficialBlock(nn.Module):
    """ImageBind's ``BlockWithMasking``: x + attn(norm_1(x)), x + mlp(norm_2(x)); seq-first MHA."""

    def __init__(self, ours):
        super().__init__()
        dim = ours.norm1.normalized_shape[0]
        heads = ours.attn.num_heads
        bias_kv = ours.attn.bias_k is not None
        self.attn = nn.MultiheadAttention(dim, heads, bias=True, add_bias_kv=bias_kv)
        self.norm_1, self.norm_2 = ours.norm1, ours.norm2
        self.mlp = nn.Sequential(ours.mlp.fc1, nn.GELU(), ours.mlp.fc2)
        with torch.no_grad():
            self.attn.in_proj_weight.copy_(ours.attn.qkv.weight)
            self.attn.in_proj_bias.copy_(ours.attn.qkv.bias)
            self.attn.out_proj.weight.copy_(ours.attn.out.weight)
            self.attn.out_proj.bias.copy_(ours.attn.out.bias)
            if bias_kv:
                self.attn.bias_k.copy_(ours.attn.bias_k.transpose(0, 1))
                self.attn.bias_v.copy_(ours.attn.bias_v.transpose(0, 1))

    def forward(self, x, attn_mask=None):  # x [L, B, D]
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.norm_2(x))


class OfficialTrunk(nn.Module):
    """Rearranges [B, L, D] → [L, B, D], runs the official-style blocks, and back."""

    def __init__(self, ours_transformer):
        super().__init__()
        self.blocks = nn.ModuleList(OfficialBlock(b) for b in ours_transformer.blocks)

    def forward(self, x, need_weights=False, is_causal=False, **_):
        n = x.shape[1]
        mask = torch.full((n, n), float("-inf"), dtype=x.dtype).triu(1) if is_causal else None
        x = x.transpose(0, 1)
        for block in self.blocks:
            x = block(x, mask)
        return x.transpose(0, 1), None


def reference_of(encoder: nn.Module) -> nn.Module:
    """A copy of ``encoder`` whose trunk is the official-style one (stems and heads unchanged)."""
    import copy

    ref = copy.deepcopy(encoder)
    ref.transformer = OfficialTrunk(ref.transformer)
    return ref


def inputs_for(config, modality: str, batch: int, dtype=torch.float32):
    c = config
    if modality == "image":
        return (torch.randn(batch, 3, c.image_size, c.image_size, dtype=dtype),)
    if modality == "text":
        ids = torch.randint(1, c.text.vocab_size - 2, (batch, c.text.context_length))
        ids[:, -1] = c.text.vocab_size - 1  # EOT, the largest id
        return (ids,)
    if modality == "audio":
        return (torch.randn(batch, 1, c.audio_mel_bins, c.audio_frames, dtype=dtype),)
    if modality in ("depth", "thermal"):
        return (torch.randn(batch, 1, c.map_size, c.map_size, dtype=dtype),)
    return (torch.randn(batch, 6, c.imu_length, dtype=dtype),)


def rate(fn, batch: int, repeats: int, budget_s: float) -> float:
    fn()
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return batch / statistics.median(times)


def peak_memory_mib(name: str, modality: str, batch: int, dtype: str, threads: int) -> float:
    """Peak RSS (MiB) of a child process that builds the encoder and embeds one batch."""
    out = subprocess.run([sys.executable, __file__, "--child", f"{name},{modality},{batch},{dtype}",
                          "--threads", str(threads)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def child(spec: str) -> None:
    name, modality, batch, dtype = spec.split(",")
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    config = preset(name)
    torch.manual_seed(0)
    torch.set_default_dtype(dt)  # build in the target dtype: no fp32 copy of the weights ever exists
    encoder = build_encoder(config, modality).eval()
    with torch.inference_mode():
        encoder(*inputs_for(config, modality, int(batch), dt))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="imagebind-tiny,imagebind-huge")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timing per measurement at most")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--what", default="timing,memory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        return child(args.child)
    batches = [int(b) for b in args.batches.split(",")]
    if "timing" in args.what:
        timing(args, batches)
    if "memory" in args.what:
        print("\npeak resident memory (MiB) of a fresh process: build one encoder, embed one batch")
        print("| preset | modality | batch | fp32 | bf16 |\n|---|---|---|---|---|")
        for name in args.presets.split(","):
            for m in args.modalities.split(","):
                for batch in batches:
                    fp32, bf16 = (peak_memory_mib(name, m, batch, d, args.threads) for d in ("fp32", "bf16"))
                    print(f"| {name} | {m} | {batch} | {fp32:,.0f} | {bf16:,.0f} |", flush=True)


def timing(args, batches: list[int]) -> None:
    print(f"torch {torch.__version__}, {args.threads} threads; embeddings/s (median of ≤{args.repeats} calls)")
    print("| preset | modality | params | batch | ours fp32 | reference fp32 | ours / ref | ours bf16 | bf16 / fp32 "
          "| max |ours − ref| |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.presets.split(","):
        config = preset(name)
        for m in args.modalities.split(","):
            torch.manual_seed(0)
            encoder = build_encoder(config, m).eval()
            post = Postprocessor(None)
            params = sum(p.numel() for p in encoder.parameters())
            ref = reference_of(encoder).eval()
            with torch.no_grad():
                x = inputs_for(config, m, 2)
                diff = (post(encoder(*x)) - post(ref(*x))).abs().max().item()
            for batch in batches:
                x = inputs_for(config, m, batch)
                with torch.inference_mode():
                    ours = rate(lambda: encoder(*x), batch, args.repeats, args.budget)
                    theirs = rate(lambda: ref(*x), batch, args.repeats, args.budget)
                encoder_bf16 = encoder.to(torch.bfloat16)
                xb = inputs_for(config, m, batch, torch.bfloat16)
                with torch.inference_mode():
                    bf16 = rate(lambda: encoder_bf16(*xb), batch, args.repeats, args.budget)
                encoder.float()
                print(f"| {name} | {m} | {params:,} | {batch} | {ours:.2f} | {theirs:.2f} | "
                      f"{ours / theirs:.2f} | {bf16:.2f} | {bf16 / ours:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
