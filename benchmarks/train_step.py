"""Training throughput: polymodal CLIP vs transformers.CLIPModel, same config, batch and optimiser.

    python benchmarks/train_step.py [--steps 8] [--batch 128] [--threads 2]

Both models get identical weights (ours loads the HF state dict), the same random batch, AdamW
and the symmetric InfoNCE loss; runs alternate in one process. Prints samples/s, ours/HF ratios
for fp32 and our bf16-autocast path, and peak resident-memory growth per sample.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import peak_rss_growth_mib  # noqa: E402

import polymodal  # noqa: E402
from polymodal.objectives import ClipLoss  # noqa: E402


def hf_config(transformers):
    """clip-world-tiny's towers in transformers' terms, with a patch stem (HF has no conv stem)."""
    return transformers.CLIPConfig(
        text_config=dict(vocab_size=1024, hidden_size=192, intermediate_size=768, num_hidden_layers=4,
                         num_attention_heads=3, max_position_embeddings=64, hidden_act="gelu",
                         eos_token_id=1023, bos_token_id=1022),
        vision_config=dict(hidden_size=192, intermediate_size=768, num_hidden_layers=4, num_attention_heads=3,
                           image_size=64, patch_size=8, hidden_act="gelu"),
        projection_dim=128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    torch.manual_seed(0)
    hf = transformers.CLIPModel(hf_config(transformers))
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ours = polymodal.load(tmp)
    hf.train(), ours.train()
    b = args.batch
    pixels = torch.randn(b, 3, 64, 64)
    ids = torch.randint(0, 1022, (b, 40))
    ids[:, 0], ids[:, -1] = 1022, 1023
    mask = torch.ones_like(ids)
    loss_fn = ClipLoss()
    opts = {"hf": torch.optim.AdamW(hf.parameters(), lr=1e-4), "ours": torch.optim.AdamW(ours.parameters(), lr=1e-4)}

    def hf_step():
        out = hf(input_ids=ids, pixel_values=pixels, attention_mask=mask)
        loss = loss_fn(out.image_embeds, out.text_embeds, hf.logit_scale.exp())
        opts["hf"].zero_grad(set_to_none=True)
        loss.backward()
        opts["hf"].step()

    def ours_step(bf16: bool = False):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            out = ours(pixels, ids, mask)
            loss = loss_fn(out["image_features"].float(), out["text_features"].float(), out["logit_scale"])
        opts["ours"].zero_grad(set_to_none=True)
        loss.backward()
        opts["ours"].step()

    jobs = {"hf fp32": hf_step, "ours fp32": ours_step, "ours bf16": lambda: ours_step(True)}
    for fn in jobs.values():
        fn()
    times = {k: [] for k in jobs}
    for _ in range(args.steps):
        for k, fn in jobs.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    mem = {k: peak_rss_growth_mib(fn) for k, fn in jobs.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__}, {args.threads} threads, batch {b}, clip-world-tiny towers (patch stem), "
          f"median of {args.steps} alternating steps")
    for k in jobs:
        print(f"  {k:10s} {b / med[k]:8.1f} samples/s  x{med['hf fp32'] / med[k]:.2f} vs hf fp32  "
              f"peak RSS +{mem[k] * 1024 / b:.0f} KiB/sample")


if __name__ == "__main__":
    main()
