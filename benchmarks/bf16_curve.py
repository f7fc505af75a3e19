"""bf16 autocast vs fp32 training on the world: the same run (same data, tokenizer, seed) twice.

    python benchmarks/bf16_curve.py [--steps 200] [--train-n 8000]

Prints the mean loss over each 25-step window for both precisions and their difference, next to
the step-to-step noise of the fp32 curve itself (the std of fp32 loss minus its 25-step moving
mean), so "matches within noise" is a number, not an impression.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from polymodal.train.config import load_config
from polymodal.train.trainer import Trainer


def losses(tmp: Path, precision: str, args, tokenizer: str | None) -> tuple[list[float], Path]:
    out = tmp / precision
    over = [f"train.steps={args.steps}", f"data.train_n={args.train_n}", "data.val_n=100", f"train.precision={precision}",
            "train.log_every=1", "optim.lr=1e-3", "optim.warmup_steps=50", f"train.out={out}", "train.ckpt_every=100000"]
    if tokenizer:
        over.append(f"data.tokenizer={tokenizer}")
    trainer = Trainer(load_config("configs/clip-world-tiny.yaml", over))
    return [r["loss"] for r in trainer.train()], out / "tokenizer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--train-n", type=int, default=8000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fp32, tok = losses(Path(tmp), "fp32", args, None)
        bf16, _ = losses(Path(tmp), "bf16", args, str(tok))
    a, b, w = np.array(fp32), np.array(bf16), 25
    moving = np.convolve(a, np.ones(w) / w, mode="same")
    noise = float(np.std((a - moving)[w:-w]))
    print(f"clip-world-tiny, batch 128, {args.steps} steps; fp32 step-to-step noise (std) {noise:.3f}")
    print("| steps | fp32 mean loss | bf16 mean loss | bf16 − fp32 |\n|---|---|---|---|")
    for s in range(0, args.steps, w):
        print(f"| {s + 1}–{s + w} | {a[s:s + w].mean():.3f} | {b[s:s + w].mean():.3f} | {b[s:s + w].mean() - a[s:s + w].mean():+.3f} |")
    print(json.dumps({"max_abs_window_diff": float(max(abs(b[s:s + w].mean() - a[s:s + w].mean())
                                                       for s in range(0, args.steps, w))), "fp32_noise_std": noise}))


if __name__ == "__main__":
    main()
